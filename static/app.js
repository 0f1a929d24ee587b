/**
 * The facepack page: pick, drop or film a face, and analyse it in this browser with the facepack
 * library (static/facepack/index.js). Nothing is uploaded: the server only serves files.
 *
 * Sections: page constants / small DOM helpers / start-up (server status, manifest, library,
 * analyzer with download progress) / decoding a photo / analysing / drawing / result panels /
 * camera / event wiring.
 *
 * For tests: window.facepackLastResult (the last analysis, faces as drawn), body[data-state]
 * ('starting' | 'loading' | 'ready' | 'busy' | 'error'), #message[data-code] (the outcome of the
 * last action, a stable code given to showMessage) with data-seq counting messages, and
 * window.facepackCspViolations.
 */

import { pngProblem } from './facepack/png.js';

// --- Page constants (page-only: none of these is a model or pipeline constant) ----------------
const STATUS_URL = '/api/status';
const MODELS_URL = '/models/';
const VENDOR_URL = '/vendor/';
const LIBRARY_URL = './facepack/index.js';
const MAX_VIEW_SIDE_PX = 1600; // the drawing canvas is at most this big; analysis uses full pixels
const MAX_FACES_LIMIT = 50; // upper bound of the "Max faces" field
const FPS_SMOOTHING = 0.2; // weight of the newest frame in the camera's frame-rate average
const FACE_COLORS = ['#ff3b6b', '#2fd0ff', '#ffd23f', '#7cff6b', '#c77dff', '#ff9f1c'];
const HEATMAP_ALPHA = 0.55; // opacity of the hottest heatmap cell
// Perceptual colormap (matplotlib "inferno", 6 stops) for the Grad-CAM overlay.
const COLORMAP = [[0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164]];
// Magic numbers of the image formats browsers decode (to tell "corrupt image" from "not an image").
const SIGNATURES = [
  { type: 'PNG', bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'JPEG', bytes: [0xff, 0xd8, 0xff] },
  { type: 'GIF', bytes: [0x47, 0x49, 0x46, 0x38] },
  { type: 'BMP', bytes: [0x42, 0x4d] },
  { type: 'ICO', bytes: [0x00, 0x00, 0x01, 0x00] },
  { type: 'WebP', bytes: [0x52, 0x49, 0x46, 0x46], at8: [0x57, 0x45, 0x42, 0x50] },
  { type: 'AVIF', at4: [0x66, 0x74, 0x79, 0x70] },
];

/** A failure the page explains to the user; `code` is stable (tests read #message[data-code]). */
class PageError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// --- Small DOM helpers ------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** "a command" rendered as <code>. */
const code = (text) => el('code', { text });

function setState(state) {
  document.body.dataset.state = state;
  // Switching backends disposes the models: not while they load or run.
  $('backend-select').disabled = state === 'loading' || state === 'busy';
}

/**
 * Show the outcome of the last action.
 * @param {'info'|'ok'|'warning'|'error'} kind
 * @param {string} messageCode stable identifier (data-code)
 * @param {...(string|Node)} parts text and nodes
 */
function showMessage(kind, messageCode, ...parts) {
  const box = $('message');
  box.dataset.kind = kind;
  box.dataset.code = messageCode;
  box.dataset.seq = String(Number(box.dataset.seq ?? 0) + 1); // lets tests see a repeated message
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.replaceChildren(...parts);
}

/** A persistent notice (set-up problems, fallbacks); `id` replaces an earlier one with the same id. */
function addNotice(id, kind, ...parts) {
  const existing = document.querySelector(`#notices [data-notice="${id}"]`);
  const item = el('li', { class: `notice notice-${kind}`, dataset: { notice: id, testid: `notice-${id}` } }, ...parts);
  if (existing) existing.replaceWith(item);
  else $('notices').append(item);
}

function removeNotice(id) {
  document.querySelector(`#notices [data-notice="${id}"]`)?.remove();
}

function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '?';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

const formatMs = (ms) => (Number.isFinite(ms) ? ms.toFixed(1) : '–');
const formatScore = (score) => score.toFixed(1); // 0..100
const formatScore1to5 = (score) => score.toFixed(2); // 1..5

// --- Page state (one object, no module-level models) ------------------------------------------
const page = {
  status: null, // /api/status
  manifest: null, // /models/manifest.json
  library: null, // the facepack module
  analyzer: null,
  analyzerReady: null, // Promise of the analyzer being built (or null)
  webgl: null, // 'WebGL 2' | 'WebGL 1' | null (probed once at start)
  source: null, // {canvas, imageData, label} of the photo shown
  lastResult: null,
  overlays: [], // heatmap overlays of lastResult's faces
  camera: { stream: null, running: false, frames: 0, fps: 0, lastTime: 0, loop: null },
  busy: false,
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

/** Files of the bundle as {url: {key, bytes}} (manifest paths are relative to the bundle root). */
function bundleFiles(manifest, baseUrl) {
  const files = new Map();
  for (const entry of Object.values(manifest.models)) {
    for (const file of entry.files ?? []) {
      const url = new URL(file.path, baseUrl).href;
      files.set(url, { key: url, bytes: file.bytes });
    }
  }
  return files;
}

/**
 * Report download progress per completed file (Resource Timing), with sizes from the manifest.
 * @returns {() => void} stops tracking
 */
function trackDownloads(manifest, onProgress) {
  const files = bundleFiles(manifest, new URL(MODELS_URL, location.href));
  const totals = new Map([...files.values()].map((f) => [f.key, f.bytes]));
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  const done = new Set();
  const record = (entries) => {
    for (const entry of entries) {
      const file = files.get(entry.name.split(/[?#]/)[0]);
      if (!file || done.has(file.key)) continue;
      done.add(file.key);
      const loaded = [...done].reduce((sum, key) => sum + totals.get(key), 0);
      onProgress(loaded, total, done.size, totals.size);
    }
  };
  onProgress(0, total, 0, totals.size);
  if (typeof PerformanceObserver === 'undefined') return () => {};
  const observer = new PerformanceObserver((list) => record(list.getEntries()));
  observer.observe({ type: 'resource', buffered: true });
  return () => {
    record(observer.takeRecords()); // entries not yet delivered to the callback
    observer.disconnect();
  };
}

function showProgress(loaded, total, count, files) {
  $('load').hidden = false;
  $('load-progress').max = Math.max(total, 1);
  $('load-progress').value = loaded;
  $('load-text').textContent = `${formatBytes(loaded)} of ${formatBytes(total)} (${count} of ${files} files)`;
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

/** Backend, WASM thread count and TF.js version, once an analyzer runs. */
async function showBackend(backend) {
  $('backend').textContent = backend;
  $('backend').dataset.backend = backend;
  try {
    const tf = await import('@tensorflow/tfjs');
    $('tfjs-version').textContent = tf.version.tfjs;
    if (backend === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const threads = wasm.getThreadsCount();
      $('wasm-threads').textContent = `${threads} (${navigator.hardwareConcurrency ?? '?'} logical cores)`;
      $('wasm-threads').dataset.threads = String(threads);
    } else {
      $('wasm-threads').textContent = 'n/a (not on WASM)';
    }
  } catch (err) {
    $('wasm-threads').textContent = `unknown (${err.message})`;
  }
}

/** Build (or rebuild, for another backend) the analyzer, showing download progress. */
async function buildAnalyzer(backend) {
  if (page.analyzer) {
    page.analyzer.dispose();
    page.analyzer = null;
  }
  setState('loading');
  $('load-label').textContent = 'Downloading models';
  showMessage('info', 'loading', `Loading the models on ${backend === 'auto' ? 'the best available backend' : backend}…`);
  const stop = trackDownloads(page.manifest, showProgress);
  try {
    const analyzer = await page.library.createFaceAnalyzer({ modelUrl: MODELS_URL, backend, wasmPaths: VENDOR_URL });
    page.analyzer = analyzer;
    return analyzer;
  } finally {
    stop();
  }
}

/** Say so when the backend in use is not the one asked for (e.g. WebGL unavailable). */
function reportFallback(requested, used) {
  if (requested !== 'auto' && requested !== used) {
    addNotice('backend-fallback', 'warning', `The ${requested} backend is not available in this browser`,
      requested === 'webgl' && !page.webgl ? ' (WebGL unavailable)' : '', `; using ${used} instead.`);
  } else if (requested === 'auto' && used !== 'webgl') {
    addNotice('backend-fallback', 'info', `WebGL is ${page.webgl ? 'not usable' : 'unavailable'} here; using ${used}.`);
  } else {
    removeNotice('backend-fallback');
  }
}

/** Build the analyzer for `backend`; never rejects (failures are shown). Returns the analyzer or null. */
async function startAnalyzer(backend) {
  const pending = buildAnalyzer(backend).catch((err) => {
    setState('error');
    showMessage('error', 'models-failed', `The models could not be loaded: ${err.message}. `,
      'If files are missing, build them with ', code(page.status.models.command), '.');
    return null;
  });
  page.analyzerReady = pending;
  const analyzer = await pending;
  if (!analyzer) {
    page.analyzerReady = null;
    return null;
  }
  $('load-label').textContent = 'Models loaded';
  const used = analyzer.backend; // the library falls back along its own order
  reportFallback(backend, used);
  await showBackend(used);
  showMessage('ok', 'ready', 'Ready: choose or drop a photo, or start the camera.');
  setState('ready'); // last: once the page says ready, its message and backend are shown too
  return analyzer;
}

async function boot() {
  window.addEventListener('securitypolicyviolation', (e) => {
    window.facepackCspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`);
  });
  wireEvents();
  showRuntime();
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
  try {
    page.library = await import(LIBRARY_URL);
  } catch (err) {
    setState('error');
    showMessage('error', 'library-failed', `The facepack library could not be loaded: ${err.message}`);
    return;
  }
  await startAnalyzer(initialBackend());
}

/** The backend asked for in the address (?backend=wasm), else the selector's default. */
function initialBackend() {
  const select = $('backend-select');
  const asked = new URLSearchParams(location.search).get('backend');
  if (asked && [...select.options].some((o) => o.value === asked)) select.value = asked;
  else if (asked) addNotice('backend-param', 'warning', `Unknown backend “${asked}” in the address; using ${select.value}.`);
  return select.value;
}

// --- Decoding a photo -------------------------------------------------------------------------
function sniffImageType(bytes) {
  const matches = (sig, offset) => sig.every((b, i) => bytes[offset + i] === b);
  for (const s of SIGNATURES) {
    if (s.bytes && !matches(s.bytes, 0)) continue;
    if (s.at8 && !matches(s.at8, 8)) continue;
    if (s.at4 && !matches(s.at4, 4)) continue;
    return s.type;
  }
  return null;
}

/**
 * File -> {canvas, imageData} of its pixels, decoded by content (EXIF orientation applied, no
 * colour management: facepack/data/images.py:load_rgb does the same with PIL). Transparent
 * pixels: the canvas keeps colour premultiplied by alpha, and the library composites RGBA onto
 * black (spec.alpha_rule), which equals Python's rule exactly on these pixels.
 * @throws {PageError} 'not-image' | 'corrupt-image'
 */
async function decodeImage(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const sniffed = sniffImageType(bytes.subarray(0, 16));
  // The PNG integrity rule (manifest spec.png_checksums; facepack/data/png_check.py words it the same).
  const problem = pngProblem(bytes);
  if (problem) throw new PageError('corrupt-image', `“${file.name}” is not a readable image (${problem}).`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', colorSpaceConversion: 'none',
      premultiplyAlpha: 'none' });
  } catch (err) {
    if (sniffed) {
      throw new PageError('corrupt-image', `“${file.name}” looks like a ${sniffed} image but cannot be decoded: the file is damaged or incomplete.`);
    }
    const type = file.type ? ` (${file.type})` : '';
    throw new PageError('not-image', `“${file.name}”${type} is not an image this browser can read. Choose a JPEG, PNG, WebP, GIF or BMP photo.`);
  }
  try {
    if (!bitmap.width || !bitmap.height) throw new PageError('corrupt-image', `“${file.name}” has no pixels.`);
    return pixelsOf(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** Draw a bitmap, video or canvas to a new canvas of its size; returns {canvas, imageData}. */
function pixelsOf(source, width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return { canvas, imageData: ctx.getImageData(0, 0, width, height) };
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
    minBoxSize: read('min-box-size', 'Min face px', (v) => v >= 0, 'a number of pixels, 0 or more'),
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
 *   {limit, moreFacesThanLimit}
 */
async function runAnalysis(imageData) {
  const limit = maxFacesSetting();
  const analyzer = page.analyzer ?? await page.analyzerReady;
  if (!analyzer) throw new PageError('models-missing', 'The models are not loaded (see the notice above).');
  const result = await analyzer.analyze(imageData, { maxFaces: limit + 1, heatmaps: $('heatmap-toggle').checked,
    ...filterSettings() });
  const more = result.faces.length > limit;
  return { ...result, faces: result.faces.slice(0, limit), limit, moreFacesThanLimit: more };
}

/** Analyse the current photo and show the outcome. */
async function analyzeSource() {
  if (!page.source || page.busy) return;
  if (!page.analyzer && !page.analyzerReady) {
    showMessage('error', 'models-missing', 'The photo is loaded, but the models are not (see the notice above).');
    return;
  }
  page.busy = true;
  setState('busy');
  showMessage('info', 'analysing', `Analysing “${page.source.label}”…`);
  try {
    const result = await runAnalysis(page.source.imageData);
    await publish(result, page.source);
    showOutcome(result);
  } catch (err) {
    reportError(err);
  } finally {
    page.busy = false;
    setState(page.analyzer ? 'ready' : 'error');
  }
}

function showOutcome(result) {
  const n = result.faces.length;
  if (n === 0) {
    showMessage('warning', 'no-face', `No face found in “${page.source.label}”. Try a photo where the face is larger, `,
      'lit from the front and not turned far away (faces under “Min confidence” or “Min face px” are not shown).');
  } else if (result.moreFacesThanLimit) {
    showMessage('warning', 'too-many-faces', `More than ${result.limit} face${result.limit > 1 ? 's' : ''} found; showing the `,
      `${result.limit} the detector is most sure of. Raise “Max faces” to see more.`);
  } else {
    showMessage('ok', 'ok', `${n} face${n > 1 ? 's' : ''} analysed in ${formatMs(result.timings.total)} ms on ${result.backend}.`);
  }
}

function reportError(err) {
  if (err instanceof PageError) showMessage('error', err.code, err.message);
  else showMessage('error', 'analysis-failed', `The analysis failed: ${err.message}`);
  console.error(err);
}

/** Store, draw and list a result. */
async function publish(result, source) {
  page.lastResult = result;
  page.overlays = await heatmapOverlays(result.faces);
  window.facepackLastResult = { ...result, source: source.label };
  drawScene($('view'), source.canvas, result, page.overlays);
  renderFaces(result);
  renderTimings(result.timings);
}

async function loadFile(file) {
  if (!file) return;
  stopCamera();
  try {
    const pixels = await decodeImage(file);
    page.source = { ...pixels, label: file.name };
  } catch (err) {
    reportError(err);
    return;
  }
  if (!page.analyzer && page.analyzerReady) {
    showMessage('info', 'waiting', 'Photo loaded; waiting for the models…');
    await page.analyzerReady;
  }
  if (!page.analyzer) {
    drawScene($('view'), page.source.canvas, { faces: [] });
    showMessage('error', 'models-missing', 'The photo is loaded, but the models are not (see the notice above).');
    return;
  }
  await analyzeSource();
}

// --- Drawing ----------------------------------------------------------------------------------
function colormap(v) {
  const t = Math.min(Math.max(v, 0), 1) * (COLORMAP.length - 1);
  const i = Math.min(Math.floor(t), COLORMAP.length - 2);
  const f = t - i;
  return COLORMAP[i].map((c, k) => Math.round(c + f * (COLORMAP[i + 1][k] - c)));
}

/** Colour an upsampled heatmap ({width, height, data} in 0..1) into a canvas (alpha grows with the value). */
function heatmapCanvas(map) {
  const canvas = document.createElement('canvas');
  canvas.width = map.width;
  canvas.height = map.height;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(map.width, map.height);
  for (let i = 0; i < map.width * map.height; i += 1) {
    const v = Math.min(Math.max(Number(map.data[i]) || 0, 0), 1);
    const [r, g, b] = colormap(v);
    img.data.set([r, g, b, Math.round(255 * HEATMAP_ALPHA * v)], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/**
 * One overlay per face ({canvas, square} or null): the library upsamples each Grad-CAM grid to
 * its crop (facepack/gradcam.py:upsample), drawn over the crop's square in the photo.
 */
async function heatmapOverlays(faces) {
  return Promise.all(faces.map(async (face) => {
    if (!face.heatmap) return null;
    const map = await page.library.heatmapToCrop(face.heatmap);
    return { canvas: heatmapCanvas(map), square: face.heatmap.square };
  }));
}

function drawPoint(ctx, x, y, radius, fill, stroke) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  if (stroke) {
    ctx.strokeStyle = stroke;
    ctx.stroke();
  }
}

function drawFace(ctx, face, index, unit, overlay) {
  const color = FACE_COLORS[index % FACE_COLORS.length];
  const { x, y, width, height } = face.box;
  if (overlay) {
    const { x: sx, y: sy, side } = overlay.square;
    ctx.drawImage(overlay.canvas, sx, sy, side, side);
  }
  ctx.lineWidth = 2 * unit;
  ctx.strokeStyle = color;
  ctx.strokeRect(x, y, width, height);
  for (const [px, py] of face.keypoints ?? []) drawPoint(ctx, px, py, 1.6 * unit, color);
  ctx.lineWidth = unit;
  for (const [px, py] of Object.values(face.landmarks5 ?? {})) drawPoint(ctx, px, py, 3.5 * unit, '#ffffff', color);
  if (face.beauty) {
    const label = `${index + 1}: ${formatScore(face.beauty.score)} · ${formatScore1to5(face.beauty.score_1to5)}/5`;
    ctx.font = `600 ${Math.round(14 * unit)}px system-ui, sans-serif`;
    const pad = 4 * unit;
    const w = ctx.measureText(label).width + 2 * pad;
    const h = 20 * unit;
    const top = y - h >= 0 ? y - h : y + height;
    ctx.fillStyle = color;
    ctx.fillRect(x - unit, top, w, h);
    ctx.fillStyle = '#000000';
    ctx.textBaseline = 'middle';
    ctx.fillText(label, x - unit + pad, top + h / 2);
  }
}

/** Photo (at most MAX_VIEW_SIDE_PX) with every face's box, points, score and optional heatmap. */
function drawScene(canvas, image, result, overlays = []) {
  const scale = Math.min(1, MAX_VIEW_SIDE_PX / Math.max(image.width, image.height));
  canvas.width = Math.round(image.width * scale);
  canvas.height = Math.round(image.height * scale);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  ctx.drawImage(image, 0, 0);
  const unit = Math.max(1, Math.max(image.width, image.height) / 640);
  const showHeatmaps = $('heatmap-toggle').checked;
  result.faces.forEach((face, i) => drawFace(ctx, face, i, unit, showHeatmaps ? overlays[i] : null));
  canvas.classList.add('has-image');
  const n = result.faces.length;
  canvas.setAttribute('aria-label', `${page.source?.label ?? 'Camera frame'}: ${n} face${n === 1 ? '' : 's'} found`);
}

// --- Result panels ----------------------------------------------------------------------------
function renderFaces(result) {
  $('face-count').textContent = String(result.faces.length);
  $('face-count').dataset.count = String(result.faces.length);
  const items = result.faces.map((face, i) => {
    const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.backgroundColor = FACE_COLORS[i % FACE_COLORS.length];
    const { x, y, width, height } = face.box;
    const score = face.beauty
      ? el('div', { class: 'score' },
        el('span', { dataset: { testid: 'face-score', score: String(face.beauty.score) }, text: formatScore(face.beauty.score) }),
        el('small', { text: ' / 100 · ' }),
        el('span', { dataset: { testid: 'face-score-1to5', score: String(face.beauty.score_1to5) }, text: formatScore1to5(face.beauty.score_1to5) }),
        el('small', { text: ' / 5' }))
      : el('div', { class: 'score muted', text: 'no beauty model' });
    return el('li', { class: 'face', dataset: { testid: 'face', index: String(i) } },
      el('div', {}, swatch, `Face ${i + 1}`), score,
      el('div', { class: 'meta', dataset: { testid: 'face-detail' },
        text: `detector ${face.score.toFixed(3)} · box ${Math.round(x)}, ${Math.round(y)}, ${Math.round(width)}×${Math.round(height)} px`
          + ` · ${face.keypoints?.length ?? 0} keypoints` }));
  });
  $('faces').replaceChildren(...items);
}

function renderTimings(timings = {}) {
  for (const stage of ['decode', 'detect', 'crop', 'beauty', 'keypoints', 'gradcam', 'total']) {
    const cell = $(`t-${stage}`);
    cell.textContent = formatMs(timings[stage]);
    cell.dataset.ms = String(timings[stage] ?? '');
  }
}

function describeMetrics(metrics) {
  const entries = Object.entries(metrics ?? {}).filter(([, v]) => typeof v === 'number' || typeof v === 'string');
  if (!entries.length) return 'none recorded';
  return entries.map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`).join(', ');
}

function describeParity(parity) {
  if (!parity || typeof parity.max_abs_diff !== 'number') return 'not checked';
  const ok = parity.max_abs_diff <= parity.tolerance;
  return `${ok ? '✓' : '✗'} max |Δ| ${parity.max_abs_diff.toExponential(1)} (tol ${parity.tolerance.toExponential(0)})`
    + `${parity.against ? ` vs ${parity.against}` : ''}`;
}

/** One row of the models table. */
function modelRow(name, entry, manifest) {
  const run = entry.run ?? {};
  const dataset = run.dataset ?? {};
  const synthetic = Boolean(run.synthetic ?? manifest.synthetic);
  const bytes = entry.bytes ?? (entry.files ?? []).reduce((sum, f) => sum + (f.bytes ?? 0), 0);
  const data = el('td', { text: dataset.name ?? run.source ?? 'unknown' });
  if (synthetic) data.append(el('span', { class: 'tag', text: 'synthetic' }));
  if (run.untrained) data.append(el('span', { class: 'tag', text: 'untrained' }));
  return el('tr', { dataset: { testid: 'model-row', model: name, synthetic: String(synthetic) } },
    el('th', { scope: 'row', text: name }),
    el('td', { text: entry.backbone ?? (name.startsWith('mtcnn') ? 'MTCNN' : '–') }),
    el('td', { text: entry.precision ?? '–' }),
    el('td', { text: entry.input_size ? `${entry.input_size} px` : 'any' }),
    el('td', { text: formatBytes(bytes) }),
    data,
    el('td', { text: describeMetrics(run.metrics) }),
    el('td', { text: describeParity(entry.parity) }));
}

/** Terms of every dataset and licence of every weight source in the bundle: {name: terms}. */
function bundleTerms(manifest) {
  const terms = new Map();
  for (const entry of Object.values(manifest.models)) {
    const run = entry.run ?? {};
    if (run.dataset?.name) terms.set(run.dataset.name, run.dataset.terms ?? 'not recorded');
    else if (run.source) terms.set(run.source, run.license ? `licence: ${run.license}` : 'not recorded');
  }
  return terms;
}

/** What is loaded: one row per model, the synthetic-data notice and the dataset terms. */
function renderModels(manifest) {
  const entries = Object.entries(manifest.models);
  $('models-table').tBodies[0].replaceChildren(...entries.map(([name, entry]) => modelRow(name, entry, manifest)));
  const synthetic = entries.filter(([, e]) => Boolean(e.run?.synthetic ?? manifest.synthetic)).map(([n]) => n);
  const notice = $('synthetic-notice');
  notice.hidden = synthetic.length === 0;
  notice.textContent = synthetic.length
    ? `Trained on synthetic data: ${synthetic.join(', ')}. These models only show that the pipeline works; `
      + 'their scores and keypoints say nothing about real faces.'
    : '';
  const beauty = Object.values(manifest.models).find((e) => String(e.role ?? '').startsWith('beauty'));
  $('beauty-dataset').textContent = beauty?.run?.dataset?.name ?? 'no beauty model loaded';
  const terms = bundleTerms(manifest);
  $('terms').replaceChildren(...[...terms].map(([n, t]) => el('li', {}, el('strong', { text: `${n}: ` }), t)));
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
  Object.assign(page.camera, { stream, running: true, frames: 0, fps: 0, lastTime: 0 });
  $('camera-button').textContent = 'Stop camera';
  $('camera-button').setAttribute('aria-pressed', 'true');
  showMessage('info', 'camera', 'Camera on: analysing live frames.');
  await page.analyzerReady;
  page.camera.loop = cameraLoop();
}

function stopCamera() {
  const cam = page.camera;
  if (!cam.stream) return;
  cam.running = false;
  cam.stream.getTracks().forEach((t) => t.stop());
  cam.stream = null;
  $('camera').srcObject = null;
  $('camera-button').textContent = 'Start camera';
  $('camera-button').setAttribute('aria-pressed', 'false');
  $('fps').textContent = cam.frames ? `stopped (${cam.fps.toFixed(1)} fps, ${cam.frames} frames)` : '–';
}

async function cameraLoop() {
  const cam = page.camera;
  const video = $('camera');
  while (cam.running) {
    if (video.videoWidth && page.analyzer && !page.busy) {
      page.busy = true;
      try {
        const frame = pixelsOf(video, video.videoWidth, video.videoHeight);
        page.source = { ...frame, label: 'camera frame' };
        const result = await runAnalysis(frame.imageData);
        if (!cam.running) break;
        await publish(result, page.source);
        updateFps(cam);
        if (!result.faces.length) showMessage('info', 'camera-no-face', 'Camera on: no face in view.');
        else showMessage('ok', 'camera', `Camera on: ${result.faces.length} face(s).`);
      } catch (err) {
        reportError(err);
        stopCamera();
      } finally {
        page.busy = false;
      }
    }
    await nextFrame();
  }
}

function updateFps(cam) {
  const now = performance.now();
  if (cam.lastTime) {
    const fps = 1000 / Math.max(now - cam.lastTime, 1);
    cam.fps = cam.fps ? (1 - FPS_SMOOTHING) * cam.fps + FPS_SMOOTHING * fps : fps;
  }
  cam.lastTime = now;
  cam.frames += 1;
  $('fps').textContent = cam.frames > 1 ? `${cam.fps.toFixed(1)} fps (${cam.frames} frames)` : 'measuring…';
  $('fps').dataset.fps = String(cam.fps);
  $('fps').dataset.frames = String(cam.frames);
}

// --- Event wiring -----------------------------------------------------------------------------
function wireEvents() {
  $('file-input').addEventListener('change', (e) => {
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
    await page.camera.loop; // the frame being analysed must finish before its models are disposed
    while (page.busy) await nextFrame();
    if (!page.library || !page.manifest) return;
    if (!await startAnalyzer(e.target.value)) return;
    if (wasRunning) startCamera();
    else if (page.source) analyzeSource();
  });
  $('heatmap-toggle').addEventListener('change', () => {
    const needsHeatmaps = $('heatmap-toggle').checked && page.lastResult?.faces.some((f) => !f.heatmap);
    if (needsHeatmaps && !page.camera.running) analyzeSource();
    else if (page.lastResult && page.source) drawScene($('view'), page.source.canvas, page.lastResult, page.overlays);
  });
  for (const id of ['max-faces', 'min-confidence', 'min-box-size']) {
    $(id).addEventListener('change', () => {
      if (page.source && !page.camera.running) analyzeSource();
    });
  }
}

window.facepackLastResult = null;
window.facepackCspViolations = [];
boot().catch((err) => {
  setState('error');
  showMessage('error', 'page-failed', `The page failed to start: ${err.message}`);
  console.error(err);
});
