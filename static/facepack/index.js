/**
 * facepack: faces, 5 landmarks, facial keypoints, a beauty score and its Grad-CAM, client-side.
 *
 *   import { createFaceAnalyzer } from './facepack/index.js';
 *   const analyzer = await createFaceAnalyzer({ modelUrl: '/models' });
 *   const { faces, timings } = await analyzer.analyze(imageElement, { heatmaps: true });
 *   analyzer.dispose();
 *
 * Stages (one module each): input.js -> mtcnn.js -> crop.js -> keypoints.js, beauty.js,
 * gradcam.js, run in order by pipeline.js. Results equal facepack/pipeline.py:FacePipeline.analyze
 * (tests/test_parity_node.py, tests/test_parity_browser.py).
 */
import * as tf from '@tensorflow/tfjs';

import { selectBackend } from './backend.js';
import { heatmapToCrop, upsampleGrid } from './gradcam.js';
import { toRgbTensor } from './input.js';
import { loadManifest } from './io.js';
import { ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS, resolveAnalyzeOptions, resolveModelConfig } from './options.js';
import { TIMING_KEYS, describeFaces, detectStage, disposeModelSets, loadModelSets, warmUp } from './pipeline.js';

export { load } from './generic.js';
export { ensureBackend, selectBackend, useBackend } from './backend.js';
export { heatmapToCrop, upsampleGrid, ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS, TIMING_KEYS };
export { checkGuided, createGuidedExplainer, guidedMaps } from './guided.js';
export { ACCESSORIES, accessoryTransform, drawAccessories } from './accessories.js';

/**
 * Load the bundle's models on the chosen backend (warmed up) and return an analyzer.
 * @param {object} modelConfig see options.js:MODEL_CONFIG_DEFAULTS
 * @returns {Promise<{analyze: Function, dispose: Function, backend: string, backendReason: string,
 *   manifest: object, models: string[]}>}
 * @throws {Error} a backend asked for by name that cannot start (err.code 'backend-unavailable',
 *   backend.js:selectBackend); a model file the server answers with HTML or an error (io.js:readBinary)
 */
export async function createFaceAnalyzer(modelConfig) {
  const config = resolveModelConfig(modelConfig);
  const { backend, reason: backendReason } = await selectBackend(config.backend, { wasmPaths: config.wasmPaths });
  const manifest = await loadManifest(config.modelUrl);
  const spec = manifest.spec;
  const sets = await loadModelSets(config.modelUrl, manifest, config.models);
  warmUp(sets, spec);
  let disposed = false;

  /**
   * Faces in `input` with everything the loaded models give, in input-image pixels.
   * @param {*} input see input.js:toRgbTensor
   * @param {object} [options] see options.js:ANALYZE_DEFAULTS
   * @returns {Promise<{faces: object[], backend: string, timings: object, image: {width: number, height: number}}>}
   */
  async function analyze(input, options) {
    if (disposed) throw new Error('analyze: this analyzer was disposed');
    const opts = resolveAnalyzeOptions(options, spec);
    if (opts.heatmaps && !sets.beauty) {
      throw new Error("analyze options.heatmaps: needs the 'beauty' model, which modelConfig.models did not load");
    }
    const timings = Object.fromEntries(TIMING_KEYS.map((k) => [k, 0]));
    const tStart = performance.now();
    let t = tStart;
    const lap = (key) => { const now = performance.now(); timings[key] += now - t; t = now; };
    // 1. decode
    const image = await toRgbTensor(input, spec);
    try {
      const [height, width] = image.shape;
      lap('decode');
      // 2. detect
      // The photo's values, read once: the detection downscale and the crops sample them on the
      // CPU (input.js:resizeForDetection, ops/bounded_crop.js), exact on any photo size and backend.
      const pixels = await image.data();
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

  function dispose() {
    if (!disposed) disposeModelSets(sets);
    disposed = true;
  }

  return { analyze, dispose, backend, backendReason, manifest, models: Object.keys(sets) };
}
