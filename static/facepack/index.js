/**
 * facepack: faces, 5 landmarks, facial keypoints, a beauty score and its Grad-CAM, client-side.
 *
 *   import { createFaceAnalyzer } from './facepack/index.js';
 *   const analyzer = await createFaceAnalyzer({ modelUrl: '/models' });
 *   const { faces, timings } = await analyzer.analyze(imageElement, { heatmaps: true });
 *   analyzer.dispose();
 *
 * Stages (one module each): input.js -> mtcnn.js -> crop.js -> keypoints.js, beauty.js,
 * gradcam.js, attributes.js (when the bundle has an attributes model), run in order by pipeline.js. Results equal facepack/pipeline.py:FacePipeline.analyze
 * (tests/test_parity_node.py, tests/test_parity_browser.py).
 */
import * as tf from '@tensorflow/tfjs';

import { selectBackend, wasmThreadsInUse } from './backend.js';
import { heatmapToCrop, upsampleGrid } from './gradcam.js';
import { decodeInput } from './input.js';
import { loadManifest } from './io.js';
import { releaseSpareBuffers } from './ops/area_patches.js';
import { ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS, resolveAnalyzeOptions, resolveModelConfig } from './options.js';
import {
  ATTRIBUTES_TIMING_KEY, TIMING_KEYS, describeFaces, detectStage, disposeModelSets, loadModelSets, warmUp,
} from './pipeline.js';

export { load } from './generic.js';
export { ensureBackend, selectBackend, useBackend } from './backend.js';
export { heatmapToCrop, upsampleGrid, ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS, TIMING_KEYS };
export { checkGuided, createGuidedExplainer, guidedMaps } from './guided.js';
export { ACCESSORIES, accessoryTransform, drawAccessories } from './accessories.js';

/**
 * The model sets to load: modelConfig.models as given, or - when it was not given - the default
 * sets plus 'attributes' when the bundle has an attributes model (facepack/export/attributes.py).
 * @param {object|undefined} modelConfig what the caller passed
 * @param {string[]} resolved resolveModelConfig(modelConfig).models
 * @param {object} manifest the bundle's manifest.json
 */
export function modelSetNames(modelConfig, resolved, manifest) {
  const given = modelConfig && modelConfig.models !== undefined;
  return !given && manifest.models.attributes ? [...resolved, 'attributes'] : resolved;
}

/**
 * Load the bundle's models on the chosen backend (warmed up) and return an analyzer.
 *
 * `analyzer.modelSets` holds the loaded models by set (pipeline.js:MODEL_SETS: {detector: {pnet,
 * rnet, onet}, beauty: {features, head}, keypoints: {model}, attributes: {model}}, each
 * io.js:loadModel's {model, format, entry}), so other stages of the same library (e.g. the page's
 * camera tracker: pipeline.js detectStage / describeFaces) run on them instead of loading a second
 * copy. The analyzer owns them: do not dispose them; they are released by analyzer.dispose().
 * Layers models have conv, batch norm and ReLU fused (ops/fuse_layers.js): createGuidedExplainer
 * takes that off while it explains when given them (opts.models: analyzer.modelSets.beauty).
 * @param {object} modelConfig see options.js:MODEL_CONFIG_DEFAULTS
 * @returns {Promise<{analyze: Function, dispose: Function, backend: string, backendReason: string,
 *   wasmThreads: number|null, manifest: object, models: string[], modelSets: object}>} wasmThreads: the
 *   WASM pool's threads (null off WASM)
 * @throws {Error} a backend asked for by name that cannot start (err.code 'backend-unavailable',
 *   backend.js:selectBackend); a model file the server answers with HTML or an error (io.js:readBinary)
 */
export async function createFaceAnalyzer(modelConfig) {
  const config = resolveModelConfig(modelConfig);
  const { backend, reason: backendReason } = await selectBackend(config.backend,
    { wasmPaths: config.wasmPaths, wasmThreads: config.wasmThreads });
  const manifest = await loadManifest(config.modelUrl);
  const spec = manifest.spec;
  const sets = await loadModelSets(config.modelUrl, manifest, modelSetNames(modelConfig, config.models, manifest));
  warmUp(sets, spec);
  let disposed = false; // dispose() was called: analyze() refuses new calls
  let running = 0; // analyze() calls not settled yet: dispose() frees the models when the last one ends
  let freed = false;

  /**
   * Faces in `input` with everything the loaded models give, in input-image pixels (each face's
   * `attributes`, {name: {probability, on}}, when the attributes model is loaded; timings then
   * have an 'attributes' entry).
   * @param {*} input see input.js:toRgbTensor
   * @param {object} [options] see options.js:ANALYZE_DEFAULTS
   * @returns {Promise<{faces: object[], backend: string, timings: object, image: {width: number, height: number}}>}
   */
  async function analyze(input, options) {
    if (disposed) throw new Error('analyze: this analyzer was disposed');
    running += 1;
    try {
      return await analyzeOnce(input, options);
    } finally {
      running -= 1;
      if (disposed) free(); // dispose() came while this call ran: it has finished with the models
    }
  }

  async function analyzeOnce(input, options) {
    const opts = resolveAnalyzeOptions(options, spec);
    if (opts.heatmaps && !sets.beauty) {
      throw new Error("analyze options.heatmaps: needs the 'beauty' model, which modelConfig.models did not load");
    }
    const timings = Object.fromEntries(TIMING_KEYS.map((k) => [k, 0]));
    if (sets.attributes) timings[ATTRIBUTES_TIMING_KEY] = 0;
    const tStart = performance.now();
    let t = tStart;
    const lap = (key) => { const now = performance.now(); timings[key] += now - t; t = now; };
    // 1. decode
    const { image, pixels: decoded } = await decodeInput(input, spec);
    try {
      const [height, width] = image.shape;
      lap('decode');
      // 2. detect
      // The photo's values, read once: the detection downscale and the crops sample them on the
      // CPU (input.js:resizeForDetection, ops/bounded_crop.js), exact on any photo size and backend.
      const pixels = decoded ?? await image.data(); // {data, width, height} inputs: no read-back
      const faces = await detectStage(sets.detector, spec, image, opts, pixels);
      lap('detect');
      // 3-4. crop, keypoints, beauty, Grad-CAM
      await describeFaces(sets, spec, image, faces, opts, lap, pixels);
      timings.total = performance.now() - tStart;
      return { faces, backend: tf.getBackend(), timings, image: { width, height } };
    } finally {
      image.dispose();
    }
  }

  /** The models' tensors and the area patcher's spare buffer, once no analyze() call runs. */
  function free() {
    if (running) return;
    if (!freed) disposeModelSets(sets);
    freed = true;
    releaseSpareBuffers(); // the area patcher's module-level spare buffer (ops/area_patches.js)
  }

  /**
   * Free the models' tensors (and the area patcher's spare integral-image buffer, up to ~39 MB).
   * Later analyze() calls are refused. Calls already running finish normally (with the models):
   * the memory is freed when the last of them settles (its patcher's buffer included).
   */
  function dispose() {
    disposed = true;
    free();
  }

  return { analyze, dispose, backend, backendReason, wasmThreads: wasmThreadsInUse(), manifest, models: Object.keys(sets), modelSets: sets };
}
