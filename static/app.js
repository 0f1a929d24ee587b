/**
 * The facepack page: pick, drop or film a face, and analyse it in this browser with the facepack
 * library (static/facepack/index.js). Nothing is uploaded: the server only serves files.
 *
 * The analysis runs in a Web Worker (analysis-worker.js: decoding, the models on WASM or WebGL,
 * Grad-CAM colouring, the annotated PNG); this thread only draws, so the page stays responsive
 * while a photo is analysed. Every request carries an id: a result is drawn only on the photo
 * (or camera frame) it was computed for.
 *
 * Sections: page constants / small DOM helpers / start-up (server status, manifest, worker with
 * download progress) / requests and results / the view (zoom and pan) / result panels /
 * downloads / camera / event wiring.
 *
 * For tests: window.facepackLastResult (the last result drawn, with its `source` label),
 * window.facepackDraws (one {photo, result} pair of labels per drawing of a result),
 * window.facepackLabels (label boxes on the view, canvas pixels), window.facepackLongTasks
 * (main-thread tasks over 50 ms: {start, duration} ms) and window.facepackChosenAt (when the last
 * file was chosen, same clock), body[data-state] ('starting' | 'loading'
 * | 'ready' | 'busy' | 'error'), #message[data-code] (the outcome of the last action, a stable
 * code given to showMessage) with data-seq counting messages, and window.facepackCspViolations.
 */

import { FACE_COLORS } from './overlay.js';
import { renderModels } from './models-panel.js';
import {
  $, addNotice, code, el, formatBytes, formatMs, formatScore, formatScore1to5, removeNotice, setState, showMessage,
} from './page-dom.js';

// --- Page constants (page-only: none of these is a model or pipeline constant) ----------------
const STATUS_URL = '/api/status';
const MODELS_URL = '/models/';
const VENDOR_URL = '/vendor/';
const LIBRARY_URL = '/facepack/index.js';
const WORKER_URL = '/analysis-worker.js';
const VIEW_WORKER_URL = '/view-worker.js';
const WORKER_RESTART_MIN_S = 60; // onWorkerGone restarts a dead worker at most once in this many seconds
const WORKER_LOCK_PREFIX = 'facepack-analysis-worker-'; // + a unique suffix: the Web Lock each analysis worker holds
const MAX_FACES_LIMIT = 50; // upper bound of the "Max faces" field
const FPS_SMOOTHING = 0.1; // weight of the newest interval in the camera's average time between frames
const ZOOM_STEP = 1.5; // one click of + / -
const ZOOM_MAX = 16; // times the fitted size
const WHEEL_ZOOM_PER_PX = 0.002; // wheel delta (px) -> log zoom
const VIEW_MAX_HEIGHT_VH = 0.75; // the view is at most this fraction of the window's height
// Camera frames: the detector's smallest face (pixels of a 640 x 480 frame; a face at arm's length is
// 150-250 px). Full detections start the pyramid there; between them faces are tracked (camera-tracker.js).
const CAMERA_MIN_FACE_PX = 80;
const CAMERA_LOG_FRAMES = 600; // window.facepackCameraLog keeps the last this many frames
// Camera frames sent to the worker and not answered yet: with 2 the worker has the next frame when it
// finishes one (this thread's grab, messages and drawing overlap the analysis instead of adding to it).
const CAMERA_IN_FLIGHT = 2;
const CAMERA_PANEL_MS = 250; // the face list, timings and message follow the camera at most this often

/** A failure the page explains to the user; `code` is stable (tests read #message[data-code]). */
class PageError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// --- Page state (one object, no module-level models) ------------------------------------------
const page = {
  status: null, // /api/status
  manifest: null, // /models/manifest.json
  worker: null,
  started: false, // the worker was asked to load the models
  analyzer: null, // {backend, reason, tfjs, wasmThreads} once the worker's models are ready
  analyzerReady: null, // Promise of that (null when the models cannot load)
  startError: null, // why the models did not load
  webgl: null, // 'WebGL 2' | 'WebGL 1' | null (probed once at start)
  nextId: 1,
  bootDecided: false, // start-up knows whether the models load (until then a chosen photo is held)
  heldPhoto: null, // the File chosen before that
  photo: null, // {id, label, file, shown, width, height}: the photo shown (its pixels are in the view worker)
  viewWorker: null, // view-worker.js: owns the #view canvas and draws it
  viewSize: { width: 1, height: 1, dpr: 1 }, // #view's canvas size, device pixels
  result: null, // {id, result, source, worker} for page.photo (its Grad-CAM overlays are in the view worker;
  // `worker`: the analysis worker that holds its photo, which guided Grad-CAM and the PNG need)
  workerStopped: false, // onWorkerGone gave up restarting, until startAnalyzer loads the models again (the backend selector may)
  pngAfterAnalysis: null, // id of the photo request whose result downloadPng saves when it arrives (after a worker restart)
  lastRestart: null, // performance.now() of onWorkerGone's last automatic restart
  workerLost: null, // what the page says when the analysis worker ended by itself (onWorkerGone), until a new one is ready
  pending: new Map(), // id -> {kind: 'photo' | 'frame', label, limit} of requests not answered yet
  view: { zoom: 1, cx: 0, cy: 0, drag: null },
  camera: { stream: null, running: false, frames: 0, fps: 0, lastTime: 0, inFlight: new Map(), video: null, result: null },
};

// --- Start-up ---------------------------------------------------------------------------------
async function fetchJson(url) {
  const response = await fetch(url, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

/** Notices for whatever the set-up step has not built yet; returns true when the page can run. */
function reportSetup(status) {
  let ok = true;
  if (!status.vendor.present) {
    ok = false;
    addNotice('vendor-missing', 'error', 'TensorFlow.js is not in ', code(`${status.vendor.dir}/`),
      ` (missing: ${status.vendor.missing.join(', ')}). Build it with `, code(status.vendor.command),
      ' and reload.');
  }
  if (!status.library.present) {
    ok = false;
    addNotice('library-missing', 'error', 'The facepack library is missing: ', code('static/facepack/index.js'), '.');
  }
  if (!status.models.present) {
    ok = false;
    const { missing } = status.models;
    const what = missing.length
      ? `missing: ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`
      : status.models.error;
    addNotice('models-missing', 'error', 'The models are not ready in ', code(`${status.models.dir}/`),
      ` (${what}). Build them with `, code(status.models.command),
      ' (after training, or from the shipped models) and reload.');
  }
  return ok;
}


function showProgress(loaded, total, count, files) {
  $('load').hidden = false;
  $('load-progress').max = Math.max(total, 1);
  $('load-progress').value = loaded;
  $('load-text').textContent = `${formatBytes(loaded)} of ${formatBytes(total)} (${count} of ${files} files)`;
}

function showBackend(info) {
  $('backend').textContent = info.backend;
  $('backend').dataset.backend = info.backend;
  $('backend').title = info.reason ?? '';
  $('tfjs-version').textContent = info.tfjs;
  if (info.backend === 'wasm') {
    $('wasm-threads').textContent = `${info.wasmThreads} (${info.cores ?? '?'} logical cores)`;
    $('wasm-threads').dataset.threads = String(info.wasmThreads);
  } else {
    $('wasm-threads').textContent = 'n/a (not on WASM)';
    delete $('wasm-threads').dataset.threads;
  }
}

/** The page's import map (index.html), which the worker applies to the library it imports. */
function importMap() {
  const script = document.querySelector('script[type="importmap"]');
  return script ? JSON.parse(script.textContent).imports ?? {} : {};
}

/**
 * A fresh analysis worker (decoding works at once; the models load on startAnalyzer). It is named
 * after a Web Lock it holds for its life (analysis-worker.js, "Liveness"): watchWorker learns
 * when it ends without an 'error' event.
 */
function createWorker() {
  if (page.worker) page.worker.terminate();
  const lock = `${WORKER_LOCK_PREFIX}${Date.now()}-${Math.random().toString(36).slice(2)}`; // unique across tabs
  const worker = new Worker(WORKER_URL, { type: 'module', name: lock });
  worker.addEventListener('message', (event) => {
    if (event.data?.type === 'lock-held') return watchWorker(worker, event.data.lock);
    if (worker === page.worker) onWorkerMessage(event.data);
    return null;
  });
  worker.addEventListener('error', (event) => {
    if (worker !== page.worker) return;
    setState('error');
    showMessage('error', 'worker-failed', `The analysis worker failed: ${event.message ?? 'it could not start'}.`);
  });
  page.worker = worker;
  page.started = false;
  page.analyzer = null;
  page.pending.clear();
  return worker;
}

/**
 * Wait (a queued Web Lock request) for the lock `worker` holds; the browser grants it when the
 * worker has ended. A worker the page replaced (createWorker) is ignored; the current one is
 * reported and replaced (onWorkerGone).
 */
function watchWorker(worker, lock) {
  navigator.locks.request(lock, () => {
    if (worker === page.worker) onWorkerGone();
  });
}

/**
 * The analysis worker ended without an 'error' event (the browser stops a worker that runs out of
 * memory or crashes, e.g. tfjs-backend-wasm aborting): what it was doing is lost. Say what, and
 * load the models in a new worker (its 'ready' says so again, onReady). A guided Grad-CAM request
 * it died on is not retried by itself (the toggle goes off: turning it on asks the new worker,
 * which analyses the photo again first, requestGuided). A worker that had not reached 'ready', or
 * a second death within WORKER_RESTART_MIN_S of a restart, is not restarted: the page stops in
 * state error with one line (reload, or choose another backend) and keeps a decoding-only worker
 * (workerStopped). Choosing a backend then loads the models again (startAnalyzer clears
 * workerStopped) and that worker is supervised like the first: once ready, its death is restarted
 * when the last automatic restart is WORKER_RESTART_MIN_S old (lastRestart is kept across it).
 */
function onWorkerGone() {
  const guided = page.guidedAsked != null && page.guidedAsked === page.result?.id;
  const photo = page.photo && page.pending.has(page.photo.id) ? page.photo : null;
  const doing = guided ? ' while computing guided Grad-CAM' : photo ? ` while analysing “${photo.label}”` : '';
  page.guidedAsked = null;
  if (guided) $('guided-toggle').checked = false;
  page.pngRequest = null;
  page.pngAfterAnalysis = null;
  stopCamera();
  page.workerLost = `The analysis worker stopped${doing} without reporting an error (the browser ended it: out of memory?)`;
  drawView();
  if (!page.started) { // the models were never loaded in it (they cannot be): decoding only
    createWorker();
    showMessage('error', 'worker-stopped', `${page.workerLost}. A new one was started`, page.workerStopped
      ? ' (it shows photos; the models are not loaded: reload the page, or choose another backend).' : '.');
    page.workerLost = null;
    return;
  }
  // A worker that dies while loading the models would die again in a new one (out of memory on
  // load, a wasm abort): no restart then, nor twice within WORKER_RESTART_MIN_S (review #1).
  const now = performance.now();
  const again = page.lastRestart != null && now - page.lastRestart < WORKER_RESTART_MIN_S * 1000;
  if (!page.analyzer || again) {
    const resolve = page.resolveReady;
    const wasReady = page.analyzer;
    createWorker(); // decoding only (photos are still shown); the backend selector may load the models again
    page.workerStopped = true;
    page.workerLost = null;
    page.startError = 'the analysis worker stopped';
    page.analyzerReady = null;
    resolve?.(null);
    setState('error');
    showMessage('error', 'worker-stopped', wasReady
      ? `The analysis worker stopped again${doing} within ${WORKER_RESTART_MIN_S} s of its restart (out of memory?); `
        + 'reload the page, or choose another backend.'
      : 'The analysis worker stopped while loading the models (out of memory?); reload the page, or choose another backend.');
    return;
  }
  page.lastRestart = now;
  const resolve = page.resolveReady; // whoever waits for the models gets the new worker's
  startAnalyzer(page.requestedBackend).then(resolve);
  showMessage('error', 'worker-stopped', `${page.workerLost}. A new worker is loading the models…`);
}

/**
 * Load the models on `backend` in a fresh worker; resolves to the worker's ready message or null
 * (failures are shown). A named backend that cannot start falls back to 'auto', with a notice.
 */
function startAnalyzer(backend) {
  const worker = page.started ? createWorker() : page.worker;
  page.started = true;
  page.workerStopped = false; // the models load again: onWorkerGone supervises this worker (restarts it when it dies)
  page.startError = null;
  setState('loading');
  $('load-label').textContent = 'Downloading models';
  showMessage('info', 'loading', `Loading the models on ${backend === 'auto' ? 'the best available backend' : backend}…`);
  page.analyzerReady = new Promise((resolve) => { page.resolveReady = resolve; });
  worker.postMessage({ type: 'start', backend, modelUrl: MODELS_URL, wasmPaths: VENDOR_URL, libraryUrl: LIBRARY_URL,
    imports: importMap(), baseUrl: location.href, manifest: page.manifest });
  page.requestedBackend = backend;
  decideBoot();
  return page.analyzerReady;
}

function onReady(info) {
  page.analyzer = info;
  $('load-label').textContent = 'Models loaded';
  const requested = page.requestedBackend;
  if (page.fallbackFrom) {
    // The library's reason when there is one (a .wasm file the server answers with 404 or an HTML
    // page is the server's fault, not the browser's), else the browser lacks it.
    const reason = page.fallbackReason && !(page.fallbackFrom === 'webgl' && !page.webgl)
      ? page.fallbackReason.replace(/^backend "\w+" could not start: /, '') : null;
    if (reason) {
      addNotice('backend-fallback', 'warning', `The ${page.fallbackFrom} backend could not start: ${reason}`,
        `; using ${info.backend} instead.`);
    } else {
      addNotice('backend-fallback', 'warning', `The ${page.fallbackFrom} backend is not available in this browser`,
        page.fallbackFrom === 'webgl' && !page.webgl ? ' (WebGL unavailable)' : '', `; using ${info.backend} instead.`);
    }
    page.fallbackFrom = null;
    page.fallbackReason = null;
  } else if (requested === 'auto' && info.backend !== 'webgl') {
    addNotice('backend-fallback', 'info', `Using ${info.backend}: ${info.reason ?? `WebGL is ${page.webgl ? 'not usable' : 'unavailable'} here`}.`);
  } else {
    removeNotice('backend-fallback');
  }
  showBackend(info);
  page.resolveReady(info);
  const photo = page.photo;
  const lost = page.workerLost; // onWorkerGone: this is the worker that replaced it
  page.workerLost = null;
  if (photo && page.pending.has(photo.id)) {
    showMessage('info', 'analysing', `Analysing “${photo.label}”…`);
    setState('busy');
  } else if (lost) {
    showMessage('warning', 'worker-restarted', `${lost}. A new worker has loaded the models: `,
      page.result ? 'turn guided Grad-CAM on (it analyses the photo again first), or choose a photo.' : 'choose a photo.');
    setState('ready');
  } else {
    showMessage('ok', 'ready', 'Ready: choose or drop a photo, or start the camera.');
    setState('ready'); // last: once the page says ready, its message and backend are shown too
  }
}

function onStartFailed(msg) {
  if (msg.code === 'backend-unavailable' && page.requestedBackend !== 'auto') {
    page.fallbackFrom = page.requestedBackend;
    page.fallbackReason = msg.message ?? null;
    const resolve = page.resolveReady;
    const photo = page.photo;
    const waiting = photo?.file && page.pending.has(photo.id);
    startAnalyzer('auto').then(resolve);
    if (waiting) sendPhoto(photo.file); // the new worker has not seen it
    return;
  }
  page.startError = msg.message;
  page.analyzerReady = null;
  page.resolveReady(null);
  setState('error');
  showMessage('error', 'models-failed', `The models could not be loaded: ${msg.message}. `,
    'If files are missing, build them with ', code(page.status.models.command), '.');
}

/** Start-up has decided whether the models load: send a photo chosen meanwhile. */
function decideBoot() {
  if (page.bootDecided) return;
  page.bootDecided = true;
  const held = page.heldPhoto;
  page.heldPhoto = null;
  if (held) sendPhoto(held);
}

async function boot() {
  window.addEventListener('securitypolicyviolation', (e) => {
    window.facepackCspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`);
  });
  watchLongTasks();
  wireEvents();
  showRuntime();
  createWorker();
  try {
    page.status = await fetchJson(STATUS_URL);
  } catch (err) {
    setState('error');
    showMessage('error', 'status-failed', `The server did not answer ${STATUS_URL}: ${err.message}.`);
    return;
  }
  const runnable = reportSetup(page.status);
  if (page.status.models.present) {
    try {
      page.manifest = await fetchJson(`${MODELS_URL}manifest.json`);
      renderModels(page.manifest);
      page.viewWorker.postMessage({ type: 'spec', spec: page.manifest.spec }); // accessories.js reads its keypoint groups
      fillFilterFields(page.manifest);
    } catch (err) {
      addNotice('manifest-bad', 'error', `${MODELS_URL}manifest.json could not be read (${err.message}). Rebuild it with `,
        code(page.status.models.command), '.');
      return setState('error');
    }
  }
  if (!runnable) {
    setState('error');
    const missing = ['vendor', 'models'].filter((k) => !page.status[k].present);
    showMessage('error', missing.includes('models') ? 'models-missing' : 'setup-missing',
      'The page cannot analyse photos until the set-up step has run: ',
      ...missing.flatMap((k, i) => [i ? ' and ' : '', code(page.status[k].command)]), '.');
    return;
  }
  await startAnalyzer(initialBackend());
}

/** boot(), then whatever it decided, a photo chosen during it is sent on. */
async function bootAndDecide() {
  try {
    await boot();
  } finally {
    decideBoot();
  }
}

/** The backend asked for in the address (?backend=wasm), else the selector's default. */
function initialBackend() {
  const select = $('backend-select');
  const asked = new URLSearchParams(location.search).get('backend');
  if (asked && [...select.options].some((o) => o.value === asked)) select.value = asked;
  else if (asked) addNotice('backend-param', 'warning', `Unknown backend “${asked}” in the address; using ${select.value}.`);
  return select.value;
}

/** Record main-thread tasks over 50 ms (window.facepackLongTasks), the page's responsiveness measure. */
function watchLongTasks() {
  window.facepackLongTasks = [];
  if (!PerformanceObserver.supportedEntryTypes?.includes('longtask')) return;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.facepackLongTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
}

/**
 * 'WebGL 2' | 'WebGL 1' | null, probing a canvas and (as TF.js may use one) an OffscreenCanvas.
 * Probed once, before TF.js makes its own context; each probe context is released at once
 * (browsers cap live WebGL contexts and drop the oldest).
 */
function probeWebgl() {
  const canvases = [document.createElement('canvas')];
  if (typeof OffscreenCanvas !== 'undefined') canvases.push(new OffscreenCanvas(1, 1));
  for (const [kind, label] of [['webgl2', 'WebGL 2'], ['webgl', 'WebGL 1']]) {
    for (const canvas of canvases) {
      const gl = canvas.getContext(kind);
      if (gl) {
        gl.getExtension('WEBGL_lose_context')?.loseContext();
        return label;
      }
    }
  }
  return null;
}

function showRuntime() {
  page.webgl = probeWebgl();
  $('isolated').textContent = window.crossOriginIsolated ? 'yes (WASM threads allowed)' : 'no (single-threaded WASM)';
  $('webgl').textContent = page.webgl ?? 'unavailable';
}

// --- Requests and results ---------------------------------------------------------------------
/** analyze() options from the fields; asks for one face more than the limit to know whether there were more. */
function analysisOptions(heatmaps) {
  return { maxFaces: maxFacesSetting() + 1, heatmaps, ...filterSettings() };
}

/** A request to the analysis worker: `options` (the analyze() options sent) go into the JSON's settings. */
function request(kind, label, limit = null, options = null) {
  const id = page.nextId++;
  page.pending.set(id, { kind, label, limit, options });
  return id;
}

/**
 * Send a photo file to the worker; it becomes the photo shown, and any earlier request's result
 * is no longer drawn. The worker decodes it (the view shows it as soon as it is decoded) and
 * analyses it once the models are ready.
 */
function sendPhoto(file) {
  if (!page.bootDecided) { // the page does not know yet whether the models can load: hold the photo
    page.heldPhoto = file;
    showMessage('info', 'waiting', `“${file.name}” is loaded; it will be analysed as soon as the models are ready.`);
    return;
  }
  for (const [id, r] of page.pending) if (r.kind === 'photo') page.pending.delete(id); // superseded: never drawn
  let options = null; // without models the worker only decodes the photo (and says why it stops there)
  try {
    if (page.analyzerReady) options = analysisOptions(true); // Grad-CAM always: the toggle only redraws
  } catch (err) {
    reportError(err);
    if (page.analyzer) setState('ready');
    return;
  }
  const id = request('photo', file.name, options ? options.maxFaces - 1 : null, options);
  page.photo = { id, label: file.name, file, shown: false, width: 0, height: 0 };
  page.result = null; // the previous photo's result is neither drawn nor saved for this one
  $('download-json').disabled = true;
  $('download-png').disabled = true;
  page.worker.postMessage({ type: 'photo', id, file, label: file.name, options });
  if (page.analyzer) {
    setState('busy');
    showMessage('info', 'analysing', `Analysing “${file.name}”…`);
  } else if (page.analyzerReady) {
    showMessage('info', 'waiting', `“${file.name}” is loaded; it will be analysed as soon as the models are ready.`);
  }
}

/** Re-analyse the photo shown (after a setting changed). */
function reanalyse() {
  if (page.photo?.file && !page.camera.running) sendPhoto(page.photo.file);
}

function loadFile(file) {
  if (!file) return;
  stopCamera();
  sendPhoto(file);
}

function onWorkerMessage(msg) {
  switch (msg.type) {
    case 'progress': return showProgress(msg.loaded, msg.total, msg.count, msg.files);
    case 'ready': return onReady(msg);
    case 'start-failed': return onStartFailed(msg);
    case 'decoded': return onDecoded(msg);
    case 'result': return onResult(msg);
    case 'failed': return onFailed(msg);
    case 'skipped':
      page.pending.delete(msg.id);
      if (page.camera.inFlight.delete(msg.id)) page.camera.onAnswer?.();
      return null;
    case 'png': return onPng(msg);
    case 'guided': return onGuided(msg);
    case 'guided-failed': return onGuidedFailed(msg);
    default: return console.warn('analysis worker: unknown message', msg);
  }
}

function onDecoded(msg) {
  if (page.photo?.id !== msg.id) return; // a newer photo was chosen meanwhile
  page.viewWorker.postMessage({ type: 'photo', slot: 'photo', id: msg.id, pixels: msg.pixels }, [msg.pixels.data]);
  Object.assign(page.photo, { shown: true, width: msg.width, height: msg.height });
  resetView();
  drawView();
  renderFaces(null, 'waiting');
}

function onResult(msg) {
  const req = page.pending.get(msg.id);
  page.pending.delete(msg.id);
  const forPhoto = req?.kind === 'photo' && page.photo?.id === msg.id;
  const sentFrame = req?.kind === 'frame' && page.camera.running ? page.camera.inFlight.get(msg.id) : undefined;
  const forFrame = sentFrame !== undefined;
  if (!forPhoto && !forFrame) { // superseded: never drawn
    msg.frame?.close();
    return;
  }
  const { limit } = req;
  const result = { ...msg.result, faces: msg.result.faces.slice(0, limit), limit, moreFacesThanLimit: msg.result.faces.length > limit };
  const entry = { id: msg.id, result, source: req.label, worker: page.worker, // the worker holds its pixels (guided, PNG)
    options: req.options };
  const holder = forFrame ? page.camera : page; // the camera's results never replace the photo's
  holder.result = entry;
  if (forFrame) page.viewWorker.postMessage({ type: 'photo', slot: 'camera', id: msg.id, bitmap: msg.frame }, [msg.frame]);
  page.viewWorker.postMessage({ type: 'result', slot: forFrame ? 'camera' : 'photo', id: msg.id,
    faces: result.faces, overlays: msg.overlays }, msg.overlays.filter(Boolean).map((o) => o.data));
  window.facepackLastResult = { ...result, source: req.label };
  $('download-json').disabled = false;
  $('download-png').disabled = false;
  if (forFrame) {
    drawView();
    onFrameAnswered(msg.id, sentFrame);
    return;
  }
  $('guided-toggle').disabled = Boolean(page.guidedUnavailable) || !result.faces.some((f) => f.heatmap);
  drawView();
  renderFaces(result);
  renderTimings(result.timings);
  showOutcome(result, req.label);
  setState('ready');
  requestGuided(); // the toggle is on: this photo's guided maps too
  if (page.pngAfterAnalysis === msg.id) { // downloadPng asked for this photo before its worker stopped
    page.pngAfterAnalysis = null;
    downloadPng();
  }
}

function onFailed(msg) {
  if (['png-failed', 'no-result'].includes(msg.code) && page.pngRequest?.id === msg.id) {
    page.pngRequest = null;
    return showMessage('error', msg.code, `The annotated PNG could not be made: ${msg.message}.`);
  }
  const req = page.pending.get(msg.id);
  page.pending.delete(msg.id);
  if (req?.kind === 'frame' && page.camera.inFlight.has(msg.id)) {
    stopCamera();
    return showMessage('error', msg.code, `The camera frame could not be analysed: ${msg.message}.`);
  }
  if (req?.kind !== 'photo' || page.photo?.id !== msg.id) return null; // superseded
  if (msg.code !== 'models-missing' && !['too-large', 'corrupt-image', 'not-image', 'unsupported-format'].includes(msg.code)
      && page.startError) {
    msg.code = 'models-failed';
  }
  switch (msg.code) {
    case 'models-missing':
      showMessage('error', 'models-missing', `“${page.photo.label}” is shown, but it cannot be analysed: the models are not built. `,
        'Build them with ', code(page.status?.models.command ?? 'python convert/to_tfjs.py'), ' and reload the page.');
      break;
    case 'models-failed':
      showMessage('error', 'models-failed', `“${page.photo.label}” cannot be analysed: the models did not load (${page.startError}).`);
      break;
    case 'analysis-failed':
      showMessage('error', 'analysis-failed', `The analysis failed: ${msg.message}`);
      break;
    default:
      showMessage('error', msg.code, msg.message);
  }
  setState(page.analyzer ? 'ready' : (page.analyzerReady ? 'loading' : 'error'));
  return null;
}

function showOutcome(result, label) {
  const n = result.faces.length;
  if (n === 0) {
    showMessage('warning', 'no-face', `No face found in “${label}”. Try a photo where the face is larger, `,
      'lit from the front and not turned far away (faces under “Min confidence” or “Min box px” are not shown).');
  } else if (result.moreFacesThanLimit) {
    const showing = `More than ${result.limit} face${result.limit > 1 ? 's' : ''} found; showing the ${result.limit} the detector is most sure of.`;
    showMessage('warning', 'too-many-faces', showing, result.limit < MAX_FACES_LIMIT
      ? ' Raise “Max faces” to see more.'
      : ` ${MAX_FACES_LIMIT} is the most this page shows; crop the photo to see the others.`);
  } else {
    showMessage('ok', 'ok', `${n} face${n > 1 ? 's' : ''} analysed in ${formatMs(result.timings.total)} ms on ${result.backend}.`);
  }
}

function reportError(err) {
  if (err instanceof PageError) showMessage('error', err.code, err.message);
  else showMessage('error', 'analysis-failed', `The analysis failed: ${err.message}`);
  console.error(err);
}
// --- Analysing --------------------------------------------------------------------------------
/** The "Max faces" field as an integer, or a PageError naming the field. */
function maxFacesSetting() {
  const raw = $('max-faces').value.trim();
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > MAX_FACES_LIMIT) {
    throw new PageError('bad-max-faces', `“Max faces” must be a whole number from 1 to ${MAX_FACES_LIMIT}, got “${raw}”.`);
  }
  return value;
}

/**
 * The face filter fields (minConfidence 0..1, minBoxSize photo pixels) as analyze() options, or a
 * PageError naming the field. Their defaults come from the manifest (fillFilterFields).
 */
function filterSettings() {
  const read = (id, label, ok, expected) => {
    const raw = $(id).value.trim();
    const value = Number(raw);
    if (raw === '' || !Number.isFinite(value) || !ok(value)) {
      throw new PageError(`bad-${id}`, `“${label}” must be ${expected}, got “${raw}”.`);
    }
    return value;
  };
  return {
    minConfidence: read('min-confidence', 'Min confidence', (v) => v >= 0 && v <= 1, 'a number from 0 to 1'),
    minBoxSize: read('min-box-size', 'Min box px', (v) => v >= 0, 'a number of pixels, 0 or more'),
  };
}

/** Fill the face filter fields with the bundle's defaults (manifest spec.face_filter), once. */
function fillFilterFields(manifest) {
  const filter = manifest.spec?.face_filter;
  if (!filter) return;
  if ($('min-confidence').value === '') $('min-confidence').value = String(filter.min_confidence);
  if ($('min-box-size').value === '') $('min-box-size').value = String(filter.min_box_size_px);
}

/**
 * Analyse pixels; asks for one face more than the limit to know whether there were more.
 * @returns {Promise<object>} the library's result with faces cut to the limit, plus

// --- The view: the photo at the width of its panel, zoom and pan ------------------------------
/** The view's canvas size for a photo (device pixels): the panel's width, at most VIEW_MAX_HEIGHT_VH high. */
function sizeCanvas(canvas, imageWidth, imageHeight) {
  const dpr = window.devicePixelRatio || 1;
  const cssWidth = Math.max(1, canvas.parentElement.clientWidth);
  const cssHeight = Math.max(1, Math.min(cssWidth * (imageHeight / imageWidth), window.innerHeight * VIEW_MAX_HEIGHT_VH));
  if (canvas.style.height !== `${cssHeight}px`) canvas.style.height = `${cssHeight}px`; // no layout per camera frame
  page.viewSize = { width: Math.round(cssWidth * dpr), height: Math.round(cssHeight * dpr), dpr };
  return page.viewSize;
}

function resetView() {
  const { width, height } = viewSource() ?? { width: 1, height: 1 };
  Object.assign(page.view, { zoom: 1, cx: width / 2, cy: height / 2 });
}

/** What the view shows: {slot, width, height} in photo pixels (camera: the live video), or null. */
function viewSource() {
  const cam = page.camera;
  if (cam.running && cam.video?.videoWidth) return { slot: 'camera', width: cam.video.videoWidth, height: cam.video.videoHeight };
  if (page.photo?.shown) return { slot: 'photo', width: page.photo.width, height: page.photo.height };
  return null;
}

/** Photo -> canvas mapping {scale, dx, dy, width, height} of the current zoom and pan (pan kept in bounds). */
function viewTransform(size, src) {
  const v = page.view;
  const fit = Math.min(size.width / src.width, size.height / src.height);
  const scale = fit * v.zoom;
  // Keep the photo over the canvas where it is larger than it, centred where it is smaller.
  const half = (extent) => extent / (2 * scale);
  const clampCentre = (c, extent, photo) => (photo * scale <= extent ? photo / 2
    : Math.min(Math.max(c, half(extent)), photo - half(extent)));
  v.cx = clampCentre(v.cx, size.width, src.width);
  v.cy = clampCentre(v.cy, size.height, src.height);
  return { scale, dx: size.width / 2 - v.cx * scale, dy: size.height / 2 - v.cy * scale, width: size.width, height: size.height };
}

/** The result of what the view shows (the camera's latest frame, or the photo), or null. */
function shownResult() {
  return page.camera.running ? page.camera.result : page.result;
}

/** Have the view worker draw the photo (or camera frame) with the result that belongs to it. */
function drawView() {
  const canvas = $('view');
  const src = viewSource();
  if (!src) return;
  const size = sizeCanvas(canvas, src.width, src.height);
  const view = viewTransform(size, src);
  const seq = (page.drawSeq = (page.drawSeq ?? 0) + 1);
  canvas.dataset.requested = String(seq);
  page.viewWorker.postMessage({ type: 'draw', slot: src.slot, seq, width: size.width, height: size.height, view,
    photoWidth: src.width, photoHeight: src.height, heatmaps: $('heatmap-toggle').checked, guided: guidedShown(src.slot), accessories: accessoriesChosen(), unit: size.dpr,
    zoomedIn: page.view.zoom > 2 });
  canvas.classList.add('has-image');
  $('zoom-controls').hidden = false;
  $('zoom-level').textContent = `${Math.round(page.view.zoom * 100)}%`;
  const r = shownResult();
  const label = src.slot === 'camera' ? 'camera frame' : page.photo.label;
  if (!r || (src.slot === 'photo' && r.id !== page.photo.id)) {
    canvas.setAttribute('aria-label', `${label}: being analysed`);
    return;
  }
  window.facepackDraws.push({ photo: label, result: r.source });
  const n = r.result.faces.length;
  canvas.setAttribute('aria-label', `${label}: ${n} face${n === 1 ? '' : 's'} found`);
}

function onViewMessage(msg) {
  if (msg.type !== 'drawn') return;
  window.facepackLabels = msg.labels;
  $('view').dataset.drawn = String(msg.seq); // tests: drawn === requested once the last draw asked for is on screen
}

/** Zoom by `factor` keeping canvas point (px, py) (device pixels; default the centre) in place. */
function zoomBy(factor, px = null, py = null) {
  const src = viewSource();
  if (!src) return;
  const size = page.viewSize;
  const before = viewTransform(size, src);
  const x = px ?? size.width / 2;
  const y = py ?? size.height / 2;
  const photoX = (x - before.dx) / before.scale;
  const photoY = (y - before.dy) / before.scale;
  const v = page.view;
  v.zoom = Math.min(Math.max(v.zoom * factor, 1), ZOOM_MAX);
  const scale = Math.min(size.width / src.width, size.height / src.height) * v.zoom;
  // the photo point under (x, y) stays there: centre = photo point - (canvas offset from centre) / scale
  v.cx = photoX - (x - size.width / 2) / scale;
  v.cy = photoY - (y - size.height / 2) / scale;
  drawView();
}

function wireView() {
  const canvas = $('view');
  const offscreen = canvas.transferControlToOffscreen();
  page.viewWorker = new Worker(VIEW_WORKER_URL, { type: 'module' });
  page.viewWorker.addEventListener('message', (e) => onViewMessage(e.data));
  page.viewWorker.postMessage({ type: 'init', canvas: offscreen }, [offscreen]);
  const toCanvas = (e) => {
    const rect = canvas.getBoundingClientRect();
    return [(e.clientX - rect.left) * (page.viewSize.width / rect.width), (e.clientY - rect.top) * (page.viewSize.height / rect.height)];
  };
  canvas.addEventListener('wheel', (e) => {
    if (!viewSource()) return;
    e.preventDefault();
    zoomBy(Math.exp(-e.deltaY * WHEEL_ZOOM_PER_PX), ...toCanvas(e));
  }, { passive: false });
  canvas.addEventListener('pointerdown', (e) => {
    if (!viewSource()) return;
    canvas.setPointerCapture(e.pointerId);
    page.view.drag = { x: e.clientX, y: e.clientY };
    canvas.classList.add('dragging');
  });
  canvas.addEventListener('pointermove', (e) => {
    const drag = page.view.drag;
    const src = viewSource();
    if (!drag || !src) return;
    const rect = canvas.getBoundingClientRect();
    const t = viewTransform(page.viewSize, src);
    const perCss = page.viewSize.width / rect.width / t.scale; // photo pixels per CSS pixel
    page.view.cx -= (e.clientX - drag.x) * perCss;
    page.view.cy -= (e.clientY - drag.y) * perCss;
    page.view.drag = { x: e.clientX, y: e.clientY };
    drawView();
  });
  const endDrag = () => { page.view.drag = null; canvas.classList.remove('dragging'); };
  canvas.addEventListener('pointerup', endDrag);
  canvas.addEventListener('pointercancel', endDrag);
  canvas.addEventListener('dblclick', (e) => zoomBy(page.view.zoom > 1 ? 1 / page.view.zoom : 2 * ZOOM_STEP, ...toCanvas(e)));
  canvas.addEventListener('keydown', (e) => {
    const step = 40 / (page.view.zoom || 1);
    const keys = { '+': () => zoomBy(ZOOM_STEP), '=': () => zoomBy(ZOOM_STEP), '-': () => zoomBy(1 / ZOOM_STEP),
      0: () => { resetView(); drawView(); }, ArrowLeft: () => { page.view.cx -= step; drawView(); },
      ArrowRight: () => { page.view.cx += step; drawView(); }, ArrowUp: () => { page.view.cy -= step; drawView(); },
      ArrowDown: () => { page.view.cy += step; drawView(); } };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  $('zoom-in').addEventListener('click', () => zoomBy(ZOOM_STEP));
  $('zoom-out').addEventListener('click', () => zoomBy(1 / ZOOM_STEP));
  $('zoom-fit').addEventListener('click', () => { resetView(); drawView(); });
  new ResizeObserver(() => { if (!page.camera.running) drawView(); }).observe(canvas.parentElement);
}

/** The fun overlay chosen: names of facepack/accessories.js:ACCESSORIES, hat under sunglasses. */
function accessoriesChosen() {
  return [['hat', 'hat-toggle'], ['sunglasses', 'sunglasses-toggle']].filter(([, id]) => $(id).checked).map(([k]) => k);
}

// --- Guided Grad-CAM (asked for when the toggle is on; the analysis is not re-run) -------------------
/** Whether the view shows guided Grad-CAM: toggle on, a photo (not the camera), its maps computed. */
function guidedShown(slot) {
  return slot === 'photo' && $('guided-toggle').checked && page.guided?.id === page.result?.id && page.guided?.id != null;
}

/** Ask the worker for the shown photo's guided Grad-CAM if the toggle wants it and it is missing; true if asked. */
function requestGuided() {
  const r = page.result;
  if (!$('guided-toggle').checked || !r || page.camera.running || page.guided?.id === r.id || page.guidedAsked === r.id) return false;
  if (r.worker !== page.worker) { // that worker ended (onWorkerGone): analyse the photo in this one; its result asks again
    reanalyse();
    return true;
  }
  page.guidedAsked = r.id;
  // only the faces shown: the worker's result holds one more than Max faces (to tell moreFacesThanLimit)
  page.worker.postMessage({ type: 'guided', id: r.id, faces: r.result.faces.length });
  showMessage('info', 'guided-computing', 'Computing guided Grad-CAM for this photo…');
  return true;
}

function onGuided(msg) {
  if (page.result?.id !== msg.id) return; // another photo is shown now
  page.guided = { id: msg.id, ms: msg.ms };
  page.viewWorker.postMessage({ type: 'guided', slot: 'photo', id: msg.id, overlays: msg.overlays }, msg.overlays.map((o) => o.data));
  $('row-guided').hidden = false;
  $('t-guided').textContent = formatMs(msg.ms);
  $('t-guided').dataset.ms = String(msg.ms);
  drawView();
  showMessage('ok', 'guided', `Guided Grad-CAM of ${msg.overlays.length} face${msg.overlays.length === 1 ? '' : 's'} computed in ${formatMs(msg.ms)} ms (the analysis was not re-run).`);
}

function onGuidedFailed(msg) {
  if (page.result?.id !== msg.id) return;
  page.guidedAsked = null;
  const toggle = $('guided-toggle');
  toggle.checked = false;
  if (msg.code === 'guided-unavailable') { // a property of the model: stays off
    toggle.disabled = true;
    toggle.parentElement.title = msg.message;
    page.guidedUnavailable = msg.message;
  }
  drawView();
  showMessage('error', msg.code, `Guided Grad-CAM is not available: ${msg.message}`);
}

// --- Result panels ----------------------------------------------------------------------------
/**
 * The face list; each number matches the label on the photo.
 * @param {object|null} result null: nothing to list (`status` 'waiting': a photo is being analysed)
 */
function renderFaces(result, status = 'empty') {
  const faces = result?.faces ?? [];
  $('face-count').textContent = String(faces.length);
  $('face-count').dataset.count = String(faces.length);
  $('faces').dataset.status = result ? (faces.length ? 'found' : 'none') : status;
  const items = faces.map((face, i) => {
    const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.backgroundColor = FACE_COLORS[i % FACE_COLORS.length];
    const { x, y, width, height } = face.box;
    const score = face.beauty
      ? el('div', { class: 'score' },
        el('span', { dataset: { testid: 'face-score', score: String(face.beauty.score) }, text: formatScore(face.beauty.score) }),
        el('small', { text: ' / 100 · ' }),
        el('span', { dataset: { testid: 'face-score-1to5', score: String(face.beauty.score_1to5) }, text: formatScore1to5(face.beauty.score_1to5) }),
        el('small', { text: ' / 5' }),
        face.scoredFramesAgo > 0 // camera: the score (and heatmap) of this face from an earlier frame
          ? el('small', { class: 'muted', dataset: { testid: 'score-age', frames: String(face.scoredFramesAgo) },
            text: ` · scored ${face.scoredFramesAgo} frame${face.scoredFramesAgo > 1 ? 's' : ''} ago` })
          : null)
      : el('div', { class: 'score muted', text: 'no beauty model' });
    return el('li', { class: 'face', dataset: { testid: 'face', index: String(i) } },
      el('div', {}, swatch, `Face ${i + 1}`), score,
      face.attributes ? renderAttributes(face.attributes) : null,
      el('div', { class: 'meta', dataset: { testid: 'face-detail' },
        text: `detector ${face.score.toFixed(3)} · box ${Math.round(x)}, ${Math.round(y)}, ${Math.round(width)}×${Math.round(height)} px`
          + ` · ${face.keypoints?.length ?? 0} keypoints` }));
  });
  $('faces').replaceChildren(...items);
}

/**
 * A face's attributes that are on (probability >= the attribute's threshold, attributes.js), most
 * probable first, as "Name 0.93" (names' underscores as spaces); tagged when the model was trained
 * on synthetic data.
 * @param {Object<string, {probability: number, on: boolean}>} attributes
 */
function renderAttributes(attributes) {
  const on = Object.entries(attributes).filter(([, a]) => a.on).sort((a, b) => b[1].probability - a[1].probability);
  const synthetic = Boolean(page.manifest?.models.attributes?.run?.synthetic);
  const items = on.map(([name, a]) => el('li', { class: 'attribute', dataset: { testid: 'attribute', name, probability: String(a.probability) } },
    `${name.replace(/_/g, ' ')} `, el('span', { class: 'muted', text: a.probability.toFixed(2) })));
  return el('div', { class: 'attributes', dataset: { testid: 'face-attributes', count: String(on.length) } },
    el('small', { class: 'muted', text: on.length ? 'Attributes: ' : 'No attribute is over its threshold. ' }),
    on.length ? el('ul', { class: 'attribute-list' }, ...items) : null,
    synthetic ? el('small', { class: 'tag', dataset: { testid: 'attributes-synthetic' }, text: 'synthetic model' }) : null);
}

function renderTimings(timings = {}) {
  for (const stage of ['decode', 'detect', 'crop', 'beauty', 'keypoints', 'gradcam', 'attributes', 'total']) {
    const cell = $(`t-${stage}`);
    cell.textContent = formatMs(timings[stage]);
    cell.dataset.ms = String(timings[stage] ?? '');
  }
  $('row-attributes').hidden = timings.attributes === undefined;
  // guided Grad-CAM is per photo (onGuided fills it): a new result starts without the last one's
  $('row-guided').hidden = true;
  $('t-guided').textContent = formatMs(undefined);
  $('t-guided').dataset.ms = '';
}


// --- Downloads --------------------------------------------------------------------------------
/** File name stem of the photo shown ("group.jpg" -> "group"). */
function stem() {
  const label = shownResult()?.source ?? 'facepack';
  return label.replace(/\.[^.]+$/, '').replace(/[^\w.-]+/g, '_') || 'facepack';
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/** The result shown as JSON: faces in photo pixels (DESIGN.md "Named results"), timings, settings. */
function downloadJson() {
  const r = shownResult();
  if (!r) return;
  const { faces, image, backend, timings, limit, moreFacesThanLimit } = r.result;
  const doc = {
    source: r.source, image, backend, timings, max_faces: limit, more_faces_than_limit: moreFacesThanLimit,
    settings: resultSettings(r.options),
    models: Object.fromEntries(Object.entries(page.manifest?.models ?? {}).map(
      ([n, e]) => [n, { files: Object.fromEntries((e.files ?? []).map((f) => [f.path, f.sha256])) }])),
    faces,
  };
  saveBlob(new Blob([`${JSON.stringify(doc, null, 2)}\n`], { type: 'application/json' }), `${stem()}.facepack.json`);
  showMessage('ok', 'saved-json', `Saved ${stem()}.facepack.json.`);
}

/**
 * The JSON's settings: the analyze() options a result was computed with, under predict.py's names
 * (results.jsonl "options"), defaults filled in as options.js resolves them. min_face_size is the
 * detector's smallest face (detection-image px), min_box_size the "Min box px" filter (photo px).
 */
function resultSettings(options) {
  const spec = page.manifest?.spec ?? {};
  return {
    min_face_size: options?.minFaceSize ?? spec.mtcnn?.min_face_size_px ?? null,
    min_confidence: options?.minConfidence ?? null,
    min_box_size: options?.minBoxSize ?? null,
    mirror_keypoints: spec.keypoints?.mirror_average === true, // the worker passes no mirrorKeypoints: the spec's default
  };
}

/** Ask the worker for the photo at full size with the result drawn on it. */
function downloadPng() {
  const r = shownResult();
  if (!r) return;
  if (r.worker !== page.worker) { // that worker ended (onWorkerGone): analyse the photo in this one, then save (onResult)
    if (!page.photo?.file || page.camera.running) {
      showMessage('error', 'no-result', 'The analysis worker that held this photo stopped: choose the photo again to save a PNG.');
      return;
    }
    reanalyse();
    page.pngAfterAnalysis = page.photo.id;
    return;
  }
  page.pngRequest = { id: r.id, name: `${stem()}.annotated.png` };
  // faces: only the faces shown (the worker's result holds one more than Max faces, to tell moreFacesThanLimit)
  page.worker.postMessage({ type: 'annotated-png', id: r.id, faces: r.result.faces.length, heatmaps: $('heatmap-toggle').checked,
    guided: guidedShown(page.camera.running ? 'camera' : 'photo'), accessories: accessoriesChosen() });
  showMessage('info', 'saving-png', 'Drawing the annotated PNG…');
}

function onPng(msg) {
  if (page.pngRequest?.id !== msg.id) return;
  saveBlob(msg.blob, page.pngRequest.name);
  showMessage('ok', 'saved-png', `Saved ${page.pngRequest.name}.`);
  page.pngRequest = null;
}

// --- Camera -----------------------------------------------------------------------------------
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    showMessage('error', 'camera-unavailable', 'This browser gives no camera access here (it needs https or localhost).');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (err) {
    const denied = err.name === 'NotAllowedError' || err.name === 'SecurityError';
    showMessage('error', denied ? 'camera-denied' : 'camera-missing', denied
      ? 'Camera access was refused. Allow it in the address bar, or pick a photo instead.'
      : `No camera could be opened (${err.name}: ${err.message}).`);
    return;
  }
  const video = $('camera');
  video.srcObject = stream;
  await video.play();
  Object.assign(page.camera, { stream, running: true, frames: 0, fps: 0, lastTime: 0, inFlight: new Map(), video, result: null,
    videoSeq: 0, grabbedSeq: -1, onVideoFrame: null, interval: 0, sentFrames: 0, onAnswer: null, panelAt: 0, panelFaces: -1 });
  $('guided-toggle').disabled = true; // photos only: the camera's frames show Grad-CAM
  $('camera-button').textContent = 'Stop camera';
  $('camera-button').setAttribute('aria-pressed', 'true');
  showMessage('info', 'camera', 'Camera on: analysing live frames.');
  resetView();
  page.camera.loop = Promise.all([cameraFrameCounter(), cameraAnalysisLoop()]);
}

function stopCamera() {
  const cam = page.camera;
  if (!cam.stream) return;
  cam.running = false;
  cam.stream.getTracks().forEach((t) => t.stop());
  cam.stream = null;
  cam.inFlight.clear();
  cam.onAnswer?.();
  cam.onVideoFrame?.();
  $('camera').srcObject = null;
  $('guided-toggle').disabled = Boolean(page.guidedUnavailable) || !page.result?.result.faces.some((f) => f.heatmap);
  $('camera-button').textContent = 'Start camera';
  $('camera-button').setAttribute('aria-pressed', 'false');
  $('fps').textContent = cam.frames ? `stopped (${cam.fps.toFixed(1)} fps, ${cam.frames} frames)` : '–';
  cam.result = null;
  resetView();
  drawView(); // the photo shown before the camera (if any), with its result
  renderFaces(page.result?.result ?? null);
  showMessage('info', 'camera-stopped', cam.frames
    ? `Camera stopped after ${cam.frames} analysed frames (${cam.fps.toFixed(1)} fps). Choose a photo or start it again.`
    : 'Camera stopped. Choose a photo or start it again.');
}

/** The next new video frame (requestVideoFrameCallback where the browser has it, else the next display frame). */
const nextVideoFrame = (video) => new Promise((resolve) => (video.requestVideoFrameCallback
  ? video.requestVideoFrameCallback(() => resolve()) : requestAnimationFrame(() => resolve())));

/**
 * Count the video's new frames (cam.videoSeq). The view shows the analysed frames, each with its own
 * result (onResult), not the live video under a result from an earlier frame: one frame grab per
 * analysed frame and no drawing at the video's rate on this thread.
 */
async function cameraFrameCounter() {
  const cam = page.camera;
  while (cam.running) {
    await nextVideoFrame(cam.video);
    cam.videoSeq += 1; // a new video frame is showing
    cam.onVideoFrame?.();
  }
}

/** Resolves when a video frame newer than number `seq` (cam.videoSeq) is showing (at once if one is). */
function videoFrameAfter(cam, seq) {
  if (cam.videoSeq > seq) return Promise.resolve();
  return new Promise((resolve) => {
    cam.onVideoFrame = () => { cam.onVideoFrame = null; resolve(); };
  });
}

/**
 * Send the video's frames to the worker, each a new video frame (never the same frame twice), with
 * up to CAMERA_IN_FLIGHT frames sent and not answered: the worker starts the next frame as soon as
 * it has answered one, while this thread grabs, draws and lists. Grad-CAM is always asked for (the
 * worker computes it only on the frames that score a face), so the toggle only redraws.
 */
async function cameraAnalysisLoop() {
  const cam = page.camera;
  await page.analyzerReady;
  while (cam.running) {
    if (!page.analyzer || !cam.video.videoWidth) {
      await nextFrame();
      continue;
    }
    if (cam.inFlight.size >= CAMERA_IN_FLIGHT) {
      await new Promise((resolve) => { cam.onAnswer = () => { cam.onAnswer = null; resolve(); }; });
      continue;
    }
    let options;
    try {
      options = analysisOptions(true);
    } catch (err) {
      reportError(err);
      stopCamera();
      break;
    }
    await videoFrameAfter(cam, cam.grabbedSeq); // never the frame just sent again
    if (!cam.running) break;
    cam.grabbedSeq = cam.videoSeq;
    const sent = performance.now();
    const bitmap = await createImageBitmap(cam.video);
    if (!cam.running) { bitmap.close(); break; }
    const frameOptions = { ...options, minFaceSize: CAMERA_MIN_FACE_PX };
    const id = request('frame', 'camera frame', options.maxFaces - 1, frameOptions);
    cam.inFlight.set(id, sent);
    page.worker.postMessage({ type: 'frame', id, bitmap, options: frameOptions, reset: cam.sentFrames === 0 }, [bitmap]);
    cam.sentFrames += 1;
  }
}

/** A camera frame's result is drawn (onResult): record it, count it, list its faces. */
function onFrameAnswered(id, sent) {
  const cam = page.camera;
  cam.inFlight.delete(id);
  const { faces, tracking, timings } = cam.result.result;
  window.facepackCameraLog.push({ kind: tracking, faces: faces.length, box: faces[0]?.box ?? null,
    scoredFramesAgo: faces[0]?.scoredFramesAgo ?? null, timings, roundTrip: performance.now() - sent, at: sent });
  if (window.facepackCameraLog.length > CAMERA_LOG_FRAMES) window.facepackCameraLog.shift();
  updateFps(cam);
  // The panels at most every CAMERA_PANEL_MS (and when the number of faces changes): the page's own
  // layout and paint would otherwise take CPU from the analysis at every frame.
  const now = performance.now();
  if (faces.length !== cam.panelFaces || !(now - cam.panelAt < CAMERA_PANEL_MS)) {
    Object.assign(cam, { panelAt: now, panelFaces: faces.length });
    renderFaces(cam.result.result);
    renderTimings(timings);
    if (!faces.length) showMessage('info', 'camera-no-face', 'Camera on: no face in view.');
    else showMessage('ok', 'camera', `Camera on: ${faces.length} face${faces.length > 1 ? 's' : ''}.`);
  }
  cam.onAnswer?.();
}

function updateFps(cam) {
  const now = performance.now();
  if (cam.lastTime) { // frames per second = 1 / the smoothed time between analysed frames
    const interval = Math.max(now - cam.lastTime, 1);
    cam.interval = cam.interval ? (1 - FPS_SMOOTHING) * cam.interval + FPS_SMOOTHING * interval : interval;
    cam.fps = 1000 / cam.interval;
  }
  cam.lastTime = now;
  cam.frames += 1;
  const mode = cam.result?.result.tracking === 'track' ? ', tracking' : '';
  $('fps').textContent = cam.frames > 1 ? `${cam.fps.toFixed(1)} fps (${cam.frames} frames${mode})` : 'measuring…';
  $('fps').dataset.fps = String(cam.fps);
  $('fps').dataset.frames = String(cam.frames);
}

// --- Event wiring -----------------------------------------------------------------------------
function wireEvents() {
  $('file-input').addEventListener('change', (e) => {
    window.facepackChosenAt = performance.now(); // tests: long tasks after this are the page's own
    loadFile(e.target.files[0]);
    e.target.value = ''; // choosing the same file again re-analyses it
  });
  const zone = $('dropzone');
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add('dragover'); });
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('dragover'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file) loadFile(file);
    else showMessage('error', 'not-image', 'Nothing to analyse was dropped: drop an image file.');
  });
  // A photo dropped outside the zone must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  $('camera-button').addEventListener('click', () => (page.camera.running ? stopCamera() : startCamera()));
  $('backend-select').addEventListener('change', async (e) => {
    const wasRunning = page.camera.running;
    stopCamera();
    if (!page.manifest || !(page.started || page.workerStopped)) return; // workerStopped: onWorkerGone gave up
    // A fresh worker for the new backend: whatever the old one was doing is dropped with it.
    const photo = page.photo;
    const ready = startAnalyzer(e.target.value);
    if (photo?.file) sendPhoto(photo.file);
    if (!await ready) return;
    if (wasRunning) startCamera();
  });
  $('heatmap-toggle').addEventListener('change', () => drawView()); // Grad-CAM is always computed for photos
  $('guided-toggle').addEventListener('change', () => (requestGuided() ? null : drawView()));
  for (const id of ['sunglasses-toggle', 'hat-toggle']) $(id).addEventListener('change', () => drawView()); // drawn from the keypoints
  for (const id of ['max-faces', 'min-confidence', 'min-box-size']) $(id).addEventListener('change', reanalyse);
  $('download-json').addEventListener('click', downloadJson);
  $('download-png').addEventListener('click', downloadPng);
  wireView();
}

window.facepackLastResult = null;
// Tests: onWorkerGone's supervision state (started: models asked of this worker; stopped: it gave up
// restarting; restarted: it has restarted a worker on this page).
window.facepackWorkerSupervision = () => ({ started: page.started, stopped: page.workerStopped, restarted: page.lastRestart != null });
window.facepackCspViolations = [];
window.facepackDraws = [];
window.facepackLabels = [];
window.facepackCameraLog = [];
bootAndDecide().catch((err) => {
  setState('error');
  showMessage('error', 'page-failed', `The page failed to start: ${err.message}`);
  console.error(err);
});
