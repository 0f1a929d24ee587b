/**
 * The pipeline's stages over loaded models, in the order of facepack/pipeline.py:FacePipeline.analyze:
 * detect (mtcnn.js, on the downscaled photo when it is very large) -> crop (crop.js) ->
 * keypoints (keypoints.js) -> beauty (beauty.js) -> Grad-CAM (gradcam.js) -> attributes
 * (attributes.js, when the bundle has an attributes model).
 *
 * Model sets are plain objects built by loadModelSets (no module-level singletons); index.js
 * wraps them in the public analyzer.
 */
import * as tf from '@tensorflow/tfjs';

import { analyzeAttributes } from './attributes.js';
import { beautyForward, beautyResults } from './beauty.js';
import { cropRules, cropSquares, faceSquare } from './crop.js';
import { gradcamGrid, heatmapRecord } from './gradcam.js';
import { resizeForDetection } from './input.js';
import { loadModel, manifestEntry, runModel } from './io.js';
import { keypointOutputs, pointsToImage } from './keypoints.js';
import { boxesToFaces, detectFaces } from './mtcnn.js';
import { fuseLayersModel } from './ops/fuse_layers.js';
import { detectorParams } from './options.js';

// modelConfig.models name -> {role: manifest model name}.
export const MODEL_SETS = Object.freeze({
  detector: { pnet: 'mtcnn_pnet', rnet: 'mtcnn_rnet', onet: 'mtcnn_onet' },
  beauty: { features: 'beauty_features', head: 'beauty_head' },
  keypoints: { model: 'keypoints' },
  attributes: { model: 'attributes' },
});
// Mirrors facepack/pipeline.py:TIMING_KEYS (plus 'attributes' when that model is loaded: ATTRIBUTES_TIMING_KEY).
export const TIMING_KEYS = Object.freeze(['decode', 'detect', 'crop', 'keypoints', 'beauty', 'gradcam', 'total']);
export const ATTRIBUTES_TIMING_KEY = 'attributes';

/**
 * Load the models of the named sets: {detector: {pnet, rnet, onet}, beauty: {features, head}, ...}.
 * Layers models get their conv -> batch norm -> ReLU chains fused (ops/fuse_layers.js: the beauty
 * and keypoint models, 3-5x faster on WASM; the MTCNN nets have none and are unchanged).
 * @param {string} modelUrl bundle root
 * @param {object} manifest its manifest.json
 * @param {string[]} names keys of MODEL_SETS
 */
export async function loadModelSets(modelUrl, manifest, names) {
  const sets = {};
  for (const name of names) {
    sets[name] = {};
    for (const [role, modelName] of Object.entries(MODEL_SETS[name])) {
      const loaded = await loadModel(modelUrl, manifestEntry(manifest, modelName));
      if (loaded.format === 'layers-model') fuseLayersModel(loaded.model);
      sets[name][role] = loaded;
    }
  }
  return sets;
}

/** Dispose every model of the sets. */
export function disposeModelSets(sets) {
  for (const set of Object.values(sets)) for (const loaded of Object.values(set)) loaded.model.dispose();
}

/**
 * The manifest's left/right index permutation of a keypoint format (spec.mirror_permutation,
 * facepack/spec.py:MIRROR_PERMUTATION); an Error naming the format when the bundle lacks it.
 * @param {object} spec manifest spec
 * @param {string|number|undefined} format the keypoint model's points_format ("68" | "15")
 */
export function mirrorPermutation(spec, format) {
  const perm = spec.mirror_permutation?.[String(format)];
  if (!Array.isArray(perm)) {
    throw new Error(`analyze options.mirrorKeypoints: the manifest's spec.mirror_permutation has no format ${JSON.stringify(format)}; re-export the bundle with convert/to_tfjs.py`);
  }
  return perm;
}

/** Square input side of a loaded model (its manifest "input_size"). */
export function inputSize(loaded) {
  const size = loaded.entry.input_size;
  if (!Number.isInteger(size)) {
    throw new Error(`manifest model at "${loaded.entry.path}": expected an integer "input_size", got ${JSON.stringify(size)}`);
  }
  return size;
}

/** Run every loaded model once (and a Grad-CAM) so kernels/shaders are ready before the first photo. */
export function warmUp(sets, spec) {
  tf.tidy(() => {
    const zeros = (size) => tf.zeros([1, size, size, 3]);
    if (sets.detector) {
      runModel(sets.detector.pnet, zeros(spec.mtcnn.rnet_input_px));
      runModel(sets.detector.rnet, zeros(spec.mtcnn.rnet_input_px));
      runModel(sets.detector.onet, zeros(spec.mtcnn.onet_input_px));
    }
    if (sets.keypoints) runModel(sets.keypoints.model, zeros(inputSize(sets.keypoints.model)));
    if (sets.attributes) runModel(sets.attributes.model, zeros(inputSize(sets.attributes.model)));
    if (sets.beauty) {
      const fmap = runModel(sets.beauty.features, zeros(inputSize(sets.beauty.features)))[0];
      runModel(sets.beauty.head, fmap);
      gradcamGrid(sets.beauty.head, fmap, spec.beauty.bins);
    }
  });
}

/**
 * The faces with score >= minConfidence and max(box width, height) >= minBoxSize (photo pixels),
 * order kept (mirrors facepack/pipeline.py:filter_faces; defaults: manifest spec.face_filter).
 * @param {object[]} faces {box, score, ...}
 * @param {number} minConfidence 0..1
 * @param {number} minBoxSize pixels
 */
export function filterFaces(faces, minConfidence, minBoxSize) {
  return faces.filter((f) => f.score >= minConfidence && Math.max(f.box.width, f.box.height) >= minBoxSize);
}

/**
 * Stage 2: faces {box, score, landmarks5} in photo pixels, confidence descending, filtered
 * (filterFaces), at most maxFaces (mirrors facepack/pipeline.py:detect, filter_faces and the
 * [:max_faces] of analyze).
 * @param {object} detector loaded {pnet, rnet, onet}
 * @param {object} spec manifest spec
 * @param {tf.Tensor3D} image float32 [H, W, 3]
 * @param {{minFaceSize: number, detectorPreset: string|null, minConfidence: number, minBoxSize: number,
 *   maxFaces: number|null}} opts
 *   resolved analyze options
 * @param {ArrayLike<number>} [pixels] `await image.data()` when the caller has it (read once per photo)
 */
export async function detectStage(detector, spec, image, opts, pixels = null) {
  const det = await resizeForDetection(image, spec, pixels);
  try {
    const boxes = await detectFaces(detector, det.image, detectorParams(spec, opts.minFaceSize, opts.detectorPreset), det.values);
    const faces = boxesToFaces(boxes, det.sx, det.sy, spec.landmarks5);
    return filterFaces(faces, opts.minConfidence, opts.minBoxSize).slice(0, opts.maxFaces ?? undefined);
  } finally {
    if (det.resized) det.image.dispose();
  }
}

/**
 * The faces the per-face models run on: all of them, or (`limit`, an integer) the `limit` largest
 * by the box's longer side (photo pixels; equal sides: the earlier face), kept in the faces' order
 * (mirrors facepack/pipeline.py:per_face_targets).
 * @param {object[]} faces {box, ...}
 * @param {number|null} limit
 */
export function perFaceTargets(faces, limit) {
  if (limit === null || limit === undefined || faces.length <= limit) return faces;
  const side = faces.map((f) => Math.max(f.box.width, f.box.height));
  const largest = faces.map((_, i) => i).sort((a, b) => (side[b] - side[a]) || (a - b)).slice(0, limit);
  const keep = new Set(largest);
  return faces.filter((_, i) => keep.has(i));
}

/**
 * Stages 3-4 for given faces: adds keypoints, beauty, (opts.heatmaps) heatmap and attributes
 * ({name: {probability, on}}, attributes.js) to each face (to the opts.perFaceLimit largest only,
 * when set: perFaceTargets), for the model sets loaded; each model runs once on the batch of all
 * those faces' crops. `lap(key)` is called after each stage (timings; 'attributes' only when that
 * model is loaded). Mirrors facepack/pipeline.py:FacePipeline.describe.
 * @param {object} sets loaded model sets
 * @param {object} spec manifest spec
 * @param {tf.Tensor3D} image float32 [H, W, 3] (the original photo)
 * @param {object[]} allFaces detectStage output (modified in place and returned)
 * @param {{heatmaps: boolean, perFaceLimit?: number|null, mirrorKeypoints?: boolean}} opts
 *   (mirrorKeypoints: test-time mirror averaging of the keypoint model, keypoints.js:keypointOutputs)
 * @param {(key: string) => void} [lap]
 * @param {ArrayLike<number>} [pixels] `await image.data()` when the caller has it (read once per photo)
 */
export async function describeFaces(sets, spec, image, allFaces, opts, lap = () => {}, pixels = null) {
  const rules = cropRules(spec, sets.keypoints?.model.entry.points_format);
  const faces = perFaceTargets(allFaces, opts.perFaceLimit);
  const owned = [];
  try {
    // 3. crop
    const crops = {};
    // The photo's values, read once for both crops (ops/bounded_crop.js samples them on the CPU).
    const values = pixels ?? (faces.length && (sets.keypoints || sets.beauty || sets.attributes) ? await image.data() : null);
    for (const [kind, model] of [['keypoints', sets.keypoints?.model], ['beauty', sets.beauty?.features]]) {
      if (!model) continue;
      const size = inputSize(model);
      const squares = faces.map((f) => faceSquare(f.box, rules[kind]));
      crops[kind] = { squares, size, tensor: await cropSquares(image, squares, size, spec, values) };
      owned.push(crops[kind].tensor);
    }
    lap('crop');
    // 4. models
    if (crops.keypoints && faces.length) {
      // mirrors facepack/pipeline.py:FacePipeline.describe (mirror_keypoints)
      const mirror = opts.mirrorKeypoints ?? spec.keypoints.mirror_average === true; // unset: the spec's default
      const perm = mirror ? mirrorPermutation(spec, sets.keypoints.model.entry.points_format) : null;
      const { data, width } = await keypointOutputs(sets.keypoints.model, crops.keypoints.tensor, perm);
      pointsToImage(data, width, crops.keypoints.squares).forEach((points, i) => { faces[i].keypoints = points; });
    }
    lap('keypoints');
    let fmap = null;
    if (crops.beauty && faces.length) {
      const forward = beautyForward(sets.beauty, crops.beauty.tensor);
      fmap = forward.fmap;
      owned.push(forward.fmap, forward.probs);
      beautyResults(await forward.probs.data(), faces.length, spec).forEach((r, i) => { faces[i].beauty = r; });
    }
    lap('beauty');
    if (opts.heatmaps && fmap) {
      const grid = gradcamGrid(sets.beauty.head, fmap, spec.beauty.bins);
      owned.push(grid);
      (await grid.array()).forEach((g, i) => {
        faces[i].heatmap = heatmapRecord(g, crops.beauty.squares[i], crops.beauty.size);
      });
    }
    lap('gradcam');
    if (sets.attributes) {
      if (faces.length) {
        const { model } = sets.attributes;
        const found = await analyzeAttributes(model, model.entry, spec, image, faces.map((f) => f.box), values);
        found.forEach((a, i) => { faces[i].attributes = a; });
      }
      lap(ATTRIBUTES_TIMING_KEY);
    }
    return allFaces;
  } finally {
    tf.dispose(owned);
  }
}
