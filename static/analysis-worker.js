/**
 * The page's analysis worker (module worker, started by app.js): decodes photos, runs the
 * facepack analyzer (WASM or WebGL, both work in a worker: TF.js draws through OffscreenCanvas)
 * and prepares what the page draws, so no analysis work runs on the page's main thread.
 *
 * Protocol (postMessage; ids are the page's request numbers):
 *   page -> worker
 *     {type: 'start', backend, modelUrl, wasmPaths, libraryUrl, imports, baseUrl, manifest}
 *     {type: 'photo', id, file, label, options}    decode a File and analyse it
 *     {type: 'frame', id, bitmap, options, reset}   analyse a camera frame (ImageBitmap, transferred; tracked
 *                                                    between frames by camera-tracker.js, reset: the first frame of a new stream)
 *     {type: 'annotated-png', id, faces, heatmaps, guided, accessories}
 *                                                    the last result's first `faces` faces (the ones the page shows) drawn over
 *                                                    its photo, as a PNG Blob (guided: its guided Grad-CAM;
 *                                                    accessories: sunglasses/hat from the keypoints, facepack/accessories.js)
 *     {type: 'guided', id, faces}                   guided Grad-CAM of the last photo result's first `faces` faces (the ones
 *                                                    the page shows; computed once, not re-analysed)
 *   worker -> page
 *     {type: 'lock-held', lock}                      the Web Lock named by the Worker's `name` is held until the worker ends
 *     {type: 'progress', loaded, total, count, files}   model download (manifest sizes)
 *     {type: 'ready', backend, reason, tfjs, wasmThreads, cores, isolated} | {type: 'start-failed', code, message}
 *     {type: 'decoded', id, pixels, width, height}      display copy of the photo (RGBA {width, height, data}, long side <= DISPLAY_MAX_SIDE_PX)
 *     {type: 'result', id, result, overlays[, frame]}   overlays: one coloured Grad-CAM RGBA {width, height, data} per face (or null);
 *                                                    frame: the camera frame's ImageBitmap, given back (transferred) to be shown with it
 *                                                    (result.tracking 'full' | 'track', faces' scoredFramesAgo: camera-tracker.js)
 *     {type: 'failed', id, code, message} | {type: 'skipped', id} | {type: 'png', id, blob}
 *     {type: 'guided', id, overlays, squares, ms} | {type: 'guided-failed', id, code, message}
 *                                                    one guided Grad-CAM RGBA per face, over squares {x, y, side} (photo pixels)
 * Faces gain `attributes` ({name: {probability, on}}) when the bundle has an attributes model.
 *
 * Queueing: photos are analysed one at a time, newest first; a photo chosen while another is
 * decoding or analysing supersedes it (the older one is answered 'skipped' at the next step), and
 * a photo that arrives before the models are ready waits for them. The page also checks ids, so
 * a result is only ever drawn on the photo it belongs to.
 *
 * Decoding keeps the library's rules: createImageBitmap with premultiplyAlpha 'none' and
 * imageOrientation 'from-image', the analyzer composites alpha by spec.alpha_rule
 * (facepack/input.js), and PNGs with a damaged chunk are refused (facepack/png.js).
 */
import { headerSize, sniffImageType } from './image-files.js';
import { drawAccessories } from './facepack/accessories.js'; // import-free module: a plain import works here
import { drawFaces, heatmapRgba } from './overlay.js';
import { pngProblem } from './facepack/png.js';
import { createTracker } from './camera-tracker.js';
import { createImporter } from './worker-imports.js';

// Largest photo analysed, in pixels: 12000 x 9000 (108 MP), the largest photo issue 15 reports the
// page analysing (31 s on WASM); larger ones were not tried (the float32 copies of a photo take 12
// bytes per pixel, several times over, within WASM's 4 GB).
export const MAX_IMAGE_PIXELS = 12000 * 9000;
const DISPLAY_MAX_SIDE_PX = 2048; // the page's zoomable copy of a photo (analysis uses every pixel)
const BITMAP_OPTIONS = { imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none' };

/** A failure the page shows as is: `code` is its stable #message[data-code]. */
class PhotoError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const state = {
  library: null,
  analyzer: null,
  ready: null, // Promise of the analyzer (null before 'start')
  pending: null, // the newest photo job not yet started
  running: false,
  last: null, // {id, bitmap (full pixels), result, overlays} of the last result (annotated PNG)
  tracker: null,
};

const post = (message, transfer = []) => self.postMessage(message, transfer);

// --- Liveness -------------------------------------------------------------------------------------
// The page names this worker after a Web Lock (new Worker(url, {name})); the worker holds it for its
// whole life and says so ('lock-held'). The browser releases a worker's locks however it ends (out
// of memory, a crash, close(), terminate()) with no 'error' event in most of these cases; the page,
// queued on the same lock (app.js watchWorker), is granted it then and knows the worker is gone.
if (self.name && self.navigator.locks) {
  self.navigator.locks.request(self.name, () => {
    post({ type: 'lock-held', lock: self.name });
    return new Promise(() => {}); // held until the worker ends
  });
}

// --- Start-up -----------------------------------------------------------------------------------
/** Post download progress of the bundle's files as they complete (Resource Timing in the worker). */
function trackDownloads(manifest, modelUrl) {
  const sizes = new Map();
  for (const entry of Object.values(manifest.models)) {
    for (const file of entry.files ?? []) sizes.set(new URL(file.path, modelUrl).href, file.bytes);
  }
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  const done = new Set();
  const record = (entries) => {
    let changed = false;
    for (const entry of entries) {
      const url = entry.name.split(/[?#]/)[0];
      if (sizes.has(url) && !done.has(url)) { done.add(url); changed = true; }
    }
    if (changed) {
      const loaded = [...done].reduce((sum, url) => sum + sizes.get(url), 0);
      post({ type: 'progress', loaded, total, count: done.size, files: sizes.size });
    }
  };
  post({ type: 'progress', loaded: 0, total, count: 0, files: sizes.size });
  const observer = new PerformanceObserver((list) => record(list.getEntries()));
  observer.observe({ type: 'resource', buffered: true });
  return () => {
    record(observer.takeRecords());
    record(performance.getEntriesByType('resource'));
    observer.disconnect();
  };
}

async function start(msg) {
  const modelUrl = new URL(msg.modelUrl, msg.baseUrl).href;
  const stop = trackDownloads(msg.manifest, modelUrl);
  try {
    const importModule = createImporter(msg.imports, msg.baseUrl);
    state.library = await importModule(msg.libraryUrl);
    Object.assign(state, { importModule, modelUrl, libraryUrl: new URL(msg.libraryUrl, msg.baseUrl).href });
    const analyzer = await state.library.createFaceAnalyzer({
      modelUrl, backend: msg.backend, wasmPaths: new URL(msg.wasmPaths, msg.baseUrl).href,
    });
    state.analyzer = analyzer;
    const tf = await importModule('@tensorflow/tfjs');
    let wasmThreads = null;
    if (analyzer.backend === 'wasm') {
      const wasm = await importModule('@tensorflow/tfjs-backend-wasm');
      wasmThreads = wasm.getThreadsCount();
    }
    stop();
    post({ type: 'ready', backend: analyzer.backend, reason: analyzer.backendReason ?? null, tfjs: tf.version.tfjs,
      wasmThreads, cores: navigator.hardwareConcurrency ?? null, isolated: self.crossOriginIsolated });
    return analyzer;
  } catch (err) {
    stop();
    post({ type: 'start-failed', code: err.code ?? 'models-failed', message: err.message });
    throw err;
  }
}

// --- Decoding -----------------------------------------------------------------------------------
const megapixels = (w, h) => `${((w * h) / 1e6).toFixed(w * h < 1e7 ? 1 : 0)} megapixels`;

function tooLarge(name, width, height) {
  const limit = MAX_IMAGE_PIXELS;
  return new PhotoError('too-large', `“${name}” is ${width} × ${height} pixels (${megapixels(width, height)}): too large to `
    + `analyse here; the limit is ${megapixels(limit, 1)} (e.g. 12000 × 9000). Scale it down and choose it again.`);
}

/**
 * File -> ImageBitmap of all its pixels (EXIF orientation applied, alpha not premultiplied).
 * @throws {PhotoError} 'corrupt-image' | 'not-image' | 'unsupported-format' | 'too-large'
 */
async function decodeFile(file, name) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const type = sniffImageType(bytes.subarray(0, 64));
  // The PNG integrity rule (manifest spec.png_checksums; facepack/data/png_check.py words it the same).
  const problem = pngProblem(bytes);
  if (problem) throw new PhotoError('corrupt-image', `“${name}” is not a readable image (${problem}).`);
  const size = headerSize(bytes, type);
  if (size && size.width * size.height > MAX_IMAGE_PIXELS) throw tooLarge(name, size.width, size.height);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, BITMAP_OPTIONS);
  } catch (err) {
    if (type === 'HEIC' || type === 'HEIF') {
      throw new PhotoError('unsupported-format', `“${name}” is a ${type} photo (the iPhone's format), which this browser cannot `
        + 'decode. Save it as JPEG or PNG (on an iPhone: Settings › Camera › Formats › Most Compatible) and choose that.');
    }
    if (type === 'AVIF') {
      throw new PhotoError('corrupt-image', `“${name}” looks like an AVIF image but this browser cannot decode it: `
        + 'the file is damaged, or uses AVIF features this browser lacks. Try a JPEG or PNG.');
    }
    if (type) {
      throw new PhotoError('corrupt-image', `“${name}” looks like a ${type} image but cannot be decoded: the file is damaged or incomplete.`);
    }
    const mime = file.type ? ` (${file.type})` : '';
    throw new PhotoError('not-image', `“${name}”${mime} is not an image this browser can read. Choose a JPEG, PNG, WebP, GIF or BMP photo.`);
  }
  if (!bitmap.width || !bitmap.height) {
    bitmap.close();
    throw new PhotoError('corrupt-image', `“${name}” has no pixels.`);
  }
  if (bitmap.width * bitmap.height > MAX_IMAGE_PIXELS) {
    bitmap.close();
    throw tooLarge(name, bitmap.width, bitmap.height);
  }
  return bitmap;
}

/**
 * The pixels of a copy of `bitmap` for the page's view, its long side at most DISPLAY_MAX_SIDE_PX,
 * as RGBA bytes {width, height, data: ArrayBuffer} (transferred). Bytes, not an ImageBitmap: a
 * bitmap made in a worker may live in the GPU process, and drawing it would make the page's
 * thread wait for that process, which the WebGL backend keeps busy for seconds (shader compiles).
 */
function displayPixels(bitmap) {
  const scale = Math.min(1, DISPLAY_MAX_SIDE_PX / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, width, height);
  return { width, height, data: ctx.getImageData(0, 0, width, height).data.buffer };
}

// --- Analysing ----------------------------------------------------------------------------------
/** One coloured, bilinearly upsampled Grad-CAM image per face as ImageData (null without a heatmap). */
async function heatmapOverlays(faces) {
  return Promise.all(faces.map(async (face) => {
    if (!face.heatmap) return null;
    const map = await state.library.heatmapToCrop(face.heatmap); // mirrors facepack/gradcam.py:upsample
    return new ImageData(heatmapRgba(map), map.width, map.height);
  }));
}

function remember(entry) {
  if (state.last) {
    state.last.bitmap?.close();
    state.last.overlays.forEach((o) => o?.close());
  }
  state.last = entry;
}

/** Analyse `bitmap`; posts the result with its overlays as RGBA bytes (the worker keeps its own for the PNG). */
async function analyse(id, bitmap, options) {
  // Faces carry `attributes` and timings an 'attributes' entry when the bundle has that model (analyze() runs it).
  const result = await state.analyzer.analyze(bitmap, options);
  const overlays = await heatmapOverlays(result.faces);
  const bytes = overlays.map((o) => o && { width: o.width, height: o.height, data: o.data.slice().buffer });
  remember({ id, bitmap, result, overlays: await Promise.all(overlays.map((o) => o && createImageBitmap(o))) });
  post({ type: 'result', id, result, overlays: bytes }, bytes.filter(Boolean).map((b) => b.data));
}

const superseded = (job) => state.pending !== null && state.pending.id > job.id;

async function runPhoto(job) {
  let bitmap = null;
  try {
    bitmap = await decodeFile(job.file, job.label);
    if (superseded(job)) return post({ type: 'skipped', id: job.id });
    const display = displayPixels(bitmap);
    post({ type: 'decoded', id: job.id, pixels: display, width: bitmap.width, height: bitmap.height }, [display.data]);
    if (!state.ready) throw new PhotoError('models-missing', 'the models are not loading');
    await state.ready;
    if (superseded(job)) return post({ type: 'skipped', id: job.id });
    await analyse(job.id, bitmap, job.options);
    bitmap = null; // kept in state.last
  } catch (err) {
    post({ type: 'failed', id: job.id, code: err.code ?? 'analysis-failed', message: err.message });
  } finally {
    bitmap?.close();
  }
  return null;
}

// --- The library's stages, for what analyze() does not do -----------------------------------------
// Tracking camera frames uses the library's stage modules (imported through the same loader: the
// same module instances as the analyzer's) over the analyzer's own loaded models
// (analyzer.modelSets): each model is fetched and loaded once.
const STAGE_MODULES = { pipeline: 'pipeline.js', mtcnn: 'mtcnn.js', boxes: 'ops/boxes.js', options: 'options.js',
  input: 'input.js', crop: 'crop.js' };

/** {lib: the stage modules by name (+ tf), sets: the analyzer's loaded model sets (warmed up)}. */
function stages() {
  if (!state.stages) {
    state.stages = (async () => {
      const lib = { tf: await state.importModule('@tensorflow/tfjs') };
      for (const [key, file] of Object.entries(STAGE_MODULES)) lib[key] = await state.importModule(new URL(file, state.libraryUrl).href);
      if (!state.analyzer.modelSets) {
        throw new PhotoError('models-missing', 'this facepack library does not expose its loaded models (analyzer.modelSets)');
      }
      return { lib, sets: state.analyzer.modelSets };
    })();
  }
  return state.stages;
}

// --- Camera frames: tracking (camera-tracker.js) ------------------------------------------------
/** The tracker, made on the first camera frame. */
function tracker() {
  if (!state.tracker) {
    state.tracker = (async () => {
      const { lib, sets } = await stages();
      return createTracker(lib, state.analyzer.manifest.spec, sets);
    })();
  }
  return state.tracker;
}

/** A frame's RGBA bytes {data, width, height}, read once through one reused canvas. */
function frameRgba(bitmap) {
  const { width, height } = bitmap;
  if (!state.frameCanvas || state.frameCanvas.width !== width || state.frameCanvas.height !== height) {
    state.frameCanvas = new OffscreenCanvas(width, height);
    state.frameContext = state.frameCanvas.getContext('2d', { willReadFrequently: true });
  }
  state.frameContext.drawImage(bitmap, 0, 0);
  return { data: state.frameContext.getImageData(0, 0, width, height).data, width, height };
}

// Coloured Grad-CAM bytes per heatmap grid: a face that keeps its score keeps its overlay (not recoloured).
const overlayCache = new WeakMap();

/** One coloured Grad-CAM RGBA {width, height, data} per face (null without a heatmap), cached per grid. */
async function frameOverlays(faces) {
  return Promise.all(faces.map(async (face) => {
    if (!face.heatmap) return null;
    let rgba = overlayCache.get(face.heatmap.grid);
    if (!rgba) {
      const map = await state.library.heatmapToCrop(face.heatmap); // mirrors facepack/gradcam.py:upsample
      rgba = { width: map.width, height: map.height, data: heatmapRgba(map) };
      overlayCache.set(face.heatmap.grid, rgba);
    }
    return { width: rgba.width, height: rgba.height, data: rgba.data.slice().buffer };
  }));
}

async function runFrame(job) {
  try {
    await state.ready;
    const track = await tracker();
    if (job.reset) track.reset();
    const t0 = performance.now();
    const rgba = frameRgba(job.bitmap);
    const read = performance.now() - t0;
    const result = await track.frame(rgba, job.options);
    const t1 = performance.now();
    const overlays = await frameOverlays(result.faces);
    Object.assign(result.timings, { read, overlay: performance.now() - t1 });
    result.timings.total += read + result.timings.overlay;
    // The frame goes back to the page with its result: the view shows each frame with its own faces.
    remember({ id: job.id, bitmap: null, pixels: rgba, result, overlays: [] });
    post({ type: 'result', id: job.id, result, overlays, frame: job.bitmap },
      [job.bitmap, ...overlays.filter(Boolean).map((b) => b.data)]);
  } catch (err) {
    job.bitmap.close();
    post({ type: 'failed', id: job.id, code: err.code ?? 'analysis-failed', message: err.message });
  }
}

/** Run queued jobs one at a time (newest photo only). */
async function pump() {
  if (state.running) return;
  state.running = true;
  try {
    while (state.pending) {
      const job = state.pending;
      state.pending = null;
      await (job.type === 'photo' ? runPhoto(job) : runFrame(job));
    }
  } finally {
    state.running = false;
  }
}

function enqueue(job) {
  if (state.pending) {
    if (state.pending.type === 'frame') state.pending.bitmap.close();
    post({ type: 'skipped', id: state.pending.id });
  }
  state.pending = job;
  pump();
}

// --- Guided Grad-CAM, on demand --------------------------------------------------------------------
/**
 * Guided Grad-CAM of the last photo's faces (the library's createGuidedExplainer: its own unfused
 * copy of the beauty models, made on first use), coloured like Grad-CAM, one RGBA
 * {width, height, data} per face over its beauty crop square (the square of its Grad-CAM).
 * Computed once per photo when the page first asks (the analysis is not re-run).
 * @throws {PhotoError} 'guided-unavailable' (a backbone with non-ReLU activations, in the library's
 *   words) | 'no-result'
 */
async function guidedOverlays(id, count) {
  const last = state.last;
  if (!last || last.id !== id || !last.bitmap) throw new PhotoError('no-result', 'there is no photo result to explain');
  if (last.guided) return last.guided;
  if (!state.library.createGuidedExplainer) {
    throw new PhotoError('guided-unavailable', 'this facepack library has no guided Grad-CAM (createGuidedExplainer)');
  }
  // The analyzer's own beauty models (unfused for each explain, analyzer.modelSets): nothing is loaded twice.
  state.explainer ??= state.library.createGuidedExplainer(state.modelUrl,
    { manifest: state.analyzer.manifest, models: state.analyzer.modelSets?.beauty });
  let explainer;
  try {
    explainer = await state.explainer;
  } catch (err) {
    if (err.code !== 'guided-unavailable') state.explainer = null; // a passing failure (network): try again next time
    throw new PhotoError(err.code ?? 'guided-failed', err.message);
  }
  const t0 = performance.now();
  // the page shows the first `count` faces (it asks for Max faces + 1 to tell whether there are more)
  const faces = Number.isInteger(count) ? last.result.faces.slice(0, count) : last.result.faces;
  const maps = await explainer.explain(last.bitmap, faces);
  last.guided = {
    ms: performance.now() - t0,
    squares: maps.map((m) => m.square),
    overlays: maps.map((m) => ({ width: m.guidedGradcam.width, height: m.guidedGradcam.height, data: heatmapRgba(m.guidedGradcam) })),
  };
  return last.guided;
}

async function postGuided(msg) {
  try {
    const g = await guidedOverlays(msg.id, msg.faces);
    const overlays = g.overlays.map((o) => ({ width: o.width, height: o.height, data: o.data.slice().buffer }));
    post({ type: 'guided', id: msg.id, overlays, squares: g.squares, ms: g.ms }, overlays.map((o) => o.data));
  } catch (err) {
    post({ type: 'guided-failed', id: msg.id, code: err.code ?? 'guided-failed', message: err.message });
  }
}

// --- The annotated PNG --------------------------------------------------------------------------
async function annotatedPng(msg) {
  const last = state.last;
  if (!last || last.id !== msg.id) {
    post({ type: 'failed', id: msg.id, code: 'no-result', message: 'there is no result to save for this photo yet' });
    return;
  }
  // the page shows the first `faces` faces (it asks for Max faces + 1 to tell whether there are more)
  const faces = Number.isInteger(msg.faces) ? last.result.faces.slice(0, msg.faces) : last.result.faces;
  const { width, height } = last.bitmap ?? last.pixels;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  if (last.bitmap) ctx.drawImage(last.bitmap, 0, 0);
  else ctx.putImageData(new ImageData(last.pixels.data, width, height), 0, 0); // a camera frame (opaque)
  const unit = Math.max(1, Math.max(width, height) / 1000); // marks readable on a large photo
  // The heatmap the page shows: guided Grad-CAM once computed and chosen, else Grad-CAM.
  const overlays = msg.guided && last.guided
    ? await Promise.all(last.guided.overlays.map((o) => createImageBitmap(new ImageData(o.data, o.width, o.height))))
    : last.overlays;
  if (msg.accessories?.length) { // as the view draws them (view-worker.js)
    drawAccessories(ctx, faces.filter((f) => f.keypoints?.length), msg.accessories, state.analyzer.manifest.spec);
  }
  drawFaces(ctx, faces, { scale: 1, dx: 0, dy: 0, width, height },
    { overlays, heatmaps: msg.heatmaps, unit });
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  post({ type: 'png', id: msg.id, blob });
}

// --- Messages -----------------------------------------------------------------------------------
self.addEventListener('message', (event) => {
  const msg = event.data;
  switch (msg.type) {
    case 'start':
      state.ready = start(msg);
      state.ready.catch(() => {}); // reported by start(); jobs waiting on it report their own failure
      break;
    case 'photo':
    case 'frame':
      enqueue(msg);
      break;
    case 'guided':
      postGuided(msg);
      break;
    case 'annotated-png':
      annotatedPng(msg).catch((err) => post({ type: 'failed', id: msg.id, code: 'png-failed', message: err.message }));
      break;
    default:
      post({ type: 'failed', id: msg.id ?? null, code: 'bad-message', message: `unknown message type ${JSON.stringify(msg.type)}` });
  }
});
