/**
 * facepack: faces, 5 landmarks, facial keypoints, a beauty score and its Grad-CAM, client-side.
 *
 *   import { createFaceAnalyzer } from './facepack/index.js';
 *   const analyzer = await createFaceAnalyzer({ modelUrl: '/models' });
 *   const { faces, timings } = await analyzer.analyze(imageElement, { heatmaps: true });
 *   analyzer.dispose();
 *
 * Stages (one module each): input.js -> mtcnn.js -> crop.js -> keypoints.js, beauty.js,
 * gradcam.js. Results equal facepack/pipeline.py:FacePipeline.analyze (tests/test_parity_*.py).
 */
import * as tf from '@tensorflow/tfjs';

import { useBackend } from './backend.js';
import { beautyForward, beautyResults } from './beauty.js';
import { cropRules, cropSquares, faceSquare } from './crop.js';
import { gradcamGrid, heatmapRecord, heatmapToCrop, upsampleGrid } from './gradcam.js';
import { resizeForDetection, toRgbTensor } from './input.js';
import { loadManifest, loadModel, manifestEntry, runModel } from './io.js';
import { keypointOutputs, pointsToImage } from './keypoints.js';
import { boxesToFaces, detectFaces } from './mtcnn.js';
import { ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS, detectorParams, resolveAnalyzeOptions, resolveModelConfig } from './options.js';

export { load } from './generic.js';
export { useBackend } from './backend.js';
export { heatmapToCrop, upsampleGrid, ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS };

// modelConfig.models name -> {role: manifest model name}.
const MODEL_SETS = {
  detector: { pnet: 'mtcnn_pnet', rnet: 'mtcnn_rnet', onet: 'mtcnn_onet' },
  beauty: { features: 'beauty_features', head: 'beauty_head' },
  keypoints: { model: 'keypoints' },
};
export const TIMING_KEYS = Object.freeze(['decode', 'detect', 'crop', 'keypoints', 'beauty', 'gradcam', 'total']);

async function loadModelSets(modelUrl, manifest, names) {
  const sets = {};
  for (const name of names) {
    sets[name] = {};
    for (const [role, modelName] of Object.entries(MODEL_SETS[name])) {
      sets[name][role] = await loadModel(modelUrl, manifestEntry(manifest, modelName));
    }
  }
  return sets;
}

/** Square input side of a loaded model (manifest "input_size", else its input shape). */
function inputSize(loaded, name) {
  const size = loaded.entry.input_size ?? (loaded.entry.inputs && loaded.entry.inputs[0].shape[1]);
  if (!Number.isInteger(size)) throw new Error(`manifest model "${name}": expected an integer "input_size", got ${JSON.stringify(size)}`);
  return size;
}

/** Run every loaded model once (and a Grad-CAM) so kernels/shaders are ready before the first photo. */
function warmUp(sets, spec) {
  tf.tidy(() => {
    const zeros = (size) => tf.zeros([1, size, size, 3]);
    if (sets.detector) {
      runModel(sets.detector.pnet, zeros(spec.mtcnn.rnet_input_px));
      runModel(sets.detector.rnet, zeros(spec.mtcnn.rnet_input_px));
      runModel(sets.detector.onet, zeros(spec.mtcnn.onet_input_px));
    }
    if (sets.keypoints) runModel(sets.keypoints.model, zeros(inputSize(sets.keypoints.model, 'keypoints')));
    if (sets.beauty) {
      const fmap = runModel(sets.beauty.features, zeros(inputSize(sets.beauty.features, 'beauty_features')))[0];
      runModel(sets.beauty.head, fmap);
      gradcamGrid(sets.beauty.head, fmap, spec.beauty.bins);
    }
  });
}

/**
 * Load the bundle's models on the chosen backend and return an analyzer.
 * @param {object} modelConfig see options.js:MODEL_CONFIG_DEFAULTS
 * @returns {Promise<{analyze: Function, dispose: Function, backend: string, manifest: object}>}
 */
export async function createFaceAnalyzer(modelConfig) {
  const config = resolveModelConfig(modelConfig);
  const backend = await useBackend(config.backend, { wasmPaths: config.wasmPaths });
  const manifest = await loadManifest(config.modelUrl);
  const spec = manifest.spec;
  const sets = await loadModelSets(config.modelUrl, manifest, config.models);
  const rules = cropRules(spec);
  warmUp(sets, spec);
  let disposed = false;

  /**
   * Faces in `input` with everything the loaded models give.
   * @param {*} input see input.js
   * @param {object} [options] see options.js:ANALYZE_DEFAULTS
   * @returns {Promise<{faces: object[], backend: string, timings: object, image: {width: number, height: number}}>}
   */
  async function analyze(input, options) {
    if (disposed) throw new Error('analyze: this analyzer was disposed');
    const opts = resolveAnalyzeOptions(options, spec);
    if (opts.heatmaps && !sets.beauty) throw new Error("analyze options.heatmaps: needs the 'beauty' model, which modelConfig.models did not load");
    const timings = Object.fromEntries(TIMING_KEYS.map((k) => [k, 0]));
    const tStart = performance.now();
    let t = tStart;
    const lap = (key) => { const now = performance.now(); timings[key] += now - t; t = now; };
    const owned = [];
    try {
      // 1. decode
      const image = await toRgbTensor(input);
      owned.push(image);
      const [height, width] = image.shape;
      lap('decode');
      // 2. detect (on the downscaled photo when it is very large)
      const det = resizeForDetection(image, spec);
      if (det.resized) owned.push(det.image);
      const boxes = await detectFaces(sets.detector, det.image, detectorParams(spec, opts.minFaceSize));
      const faces = boxesToFaces(boxes, det.sx, det.sy, spec.landmarks5).slice(0, opts.maxFaces ?? undefined);
      lap('detect');
      // 3. crop
      const crops = {};
      for (const kind of ['keypoints', 'beauty']) {
        if (!sets[kind]) continue;
        const model = kind === 'beauty' ? sets.beauty.features : sets.keypoints.model;
        const size = inputSize(model, kind);
        const squares = faces.map((f) => faceSquare(f.box, rules[kind]));
        crops[kind] = { squares, size, tensor: cropSquares(image, squares, size, spec) };
        owned.push(crops[kind].tensor);
      }
      lap('crop');
      // 4. models
      if (sets.keypoints && faces.length) {
        const { data, width: w } = await keypointOutputs(sets.keypoints.model, crops.keypoints.tensor);
        pointsToImage(data, w, crops.keypoints.squares).forEach((points, i) => { faces[i].keypoints = points; });
      }
      lap('keypoints');
      let fmap = null;
      if (sets.beauty && faces.length) {
        const forward = beautyForward(sets.beauty, crops.beauty.tensor);
        fmap = forward.fmap;
        owned.push(forward.fmap, forward.probs);
        beautyResults(await forward.probs.data(), faces.length, spec).forEach((r, i) => { faces[i].beauty = r; });
      }
      lap('beauty');
      if (opts.heatmaps && fmap) {
        const grid = gradcamGrid(sets.beauty.head, fmap, spec.beauty.bins);
        owned.push(grid);
        const grids = await grid.array();
        grids.forEach((g, i) => { faces[i].heatmap = heatmapRecord(g, crops.beauty.squares[i], crops.beauty.size); });
      }
      lap('gradcam');
      timings.total = performance.now() - tStart;
      return { faces, backend: tf.getBackend(), timings, image: { width, height } };
    } finally {
      tf.dispose(owned);
    }
  }

  function dispose() {
    if (disposed) return;
    disposed = true;
    for (const set of Object.values(sets)) for (const loaded of Object.values(set)) loaded.model.dispose();
  }

  return { analyze, dispose, backend, manifest, models: Object.keys(sets) };
}
