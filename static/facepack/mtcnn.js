/**
 * MTCNN face detection, ported stage by stage from the `mtcnn` 1.0.0 package
 * (mtcnn/stages/stage_pnet.py, stage_rnet.py, stage_onet.py; mtcnn/mtcnn.py:detect_faces).
 *
 * The exported nets (facepack/export/mtcnn_nets.py) take raw RGB 0..255 and normalise inside,
 * so the pyramid and the patches are cut from the raw photo; a patch pixel outside the photo is
 * spec.mtcnn.patch_pad_value (the package's 0 after normalisation). Every number comes from
 * the manifest's spec via options.js:detectorParams.
 */
import * as tf from '@tensorflow/tfjs';

import { runModel } from './io.js';
import { AreaPatcher } from './ops/area_patches.js';
import { AreaResizer } from './ops/area_resize.js';
import { boundedCropAndResize } from './ops/bounded_crop.js';
import {
  adjustBoxes, adjustLandmarks, buildScalePyramid, generateBoundingBoxes, limitBoxes, patchBoxes,
  pickMatches, replaceScores, resizeToSquare, scaledShape, upscaleBoxes,
} from './ops/boxes.js';
import { nms } from './ops/nms.js';

// P-Net's output cell advances this many pixels of the scaled image: the one 2x2 max-pool of
// its architecture (mirrors generate_bounding_box(strides=2)); not a tunable setting.
const PNET_STRIDE = 2;

// Output order of the exported nets (facepack/export/mtcnn_nets.py:OUTPUT_NAMES).
const OUTPUTS = { pnet: ['bbox_reg', 'prob'], rnet: ['bbox_reg', 'prob'], onet: ['bbox_reg', 'landmarks', 'prob'] };

/**
 * Run one net and read its outputs as {name: Float32Array}; the manifest entry's "outputs"
 * (if given) names them, else the exporter's documented order. ONE readback per call: the
 * outputs are flattened and concatenated on the backend (a copy: the same float32 values) and
 * read together, each output a view of its part (P-Net: 1 readback per pyramid level, not 2;
 * on WebGL each readback is a GPU sync, issue 14). Exported for bench/profile.mjs.
 * @param {'pnet'|'rnet'|'onet'} kind
 * @returns {Promise<object>} {bbox_reg, prob, landmarks? (Float32Array views), <name>Shape}
 */
export async function runNet(net, kind, input) {
  const names = Array.isArray(net.entry.outputs) ? net.entry.outputs.map((o) => (typeof o === 'string' ? o : o.name))
    : OUTPUTS[kind];
  const { joined, shapes } = tf.tidy(() => {
    const tensors = runModel(net, input);
    if (tensors.length !== names.length) {
      throw new Error(`MTCNN ${kind}: expected ${names.length} outputs (${names.join(', ')}), got ${tensors.length}`);
    }
    return { joined: tf.concat(tensors.map((t) => t.reshape([-1]))), shapes: tensors.map((t) => t.shape) };
  });
  try {
    const data = await joined.data();
    const out = {};
    let at = 0;
    names.forEach((name, i) => {
      const size = shapes[i].reduce((a, b) => a * b, 1);
      out[name] = data.subarray(at, at + size);
      out[`${name}Shape`] = shapes[i];
      at += size;
    });
    return out;
  } finally {
    joined.dispose();
  }
}

/**
 * Whether P-Net gives a non-empty output map for an h x w level. With a large minFaceSize the
 * package's pyramid reaches levels smaller than P-Net's receptive field, where the package
 * raises (Keras: "The convolution operation resulted in an empty output"); such levels cannot
 * hold a face, and here they give no proposals (the WASM kernels must never see them).
 */
export function pnetAccepts(pnet, h, w) {
  if (h <= 0 || w <= 0) return false;
  if (pnet.format !== 'layers-model') return true;
  const shapes = pnet.model.computeOutputShape([1, h, w, 3]);
  return (Array.isArray(shapes[0]) ? shapes : [shapes]).every((s) => s[1] > 0 && s[2] > 0);
}

/**
 * Stage 1 (mirrors StagePNet.__call__): P-Net over the AREA pyramid, per-scale NMS, NMS across
 * scales, squares.
 * @param {object} pnet loaded net
 * @param {tf.Tensor3D} image float32 [H, W, 3] raw RGB
 * @param {object} p detector parameters (options.js:detectorParams)
 * @param {ArrayLike<number>} [values] `image`'s values when the caller has them (not read again)
 */
export async function proposeBoxes(pnet, image, p, values = null) {
  const [height, width, channels] = image.shape;
  const scales = buildScalePyramid(width, height, p.minFaceSize, p.scaleFactor, p.minSize);
  const pixels = scales.length ? (values ?? await image.data()) : null;
  const levels = scales.map((scale) => [scale, ...scaledShape(height, width, scale)])
    .filter(([, h, w]) => pnetAccepts(pnet, h, w));
  // One resizer for all levels: the small levels come from one sweep down the photo (ops/area_resize.js).
  // Centred on the normalisation offset: the package resizes the normalised photo.
  const resizer = pixels && new AreaResizer(pixels, height, width, channels, p.normalizeOffset)
    .plan(levels.map(([, h, w]) => [h, w]));
  const perScale = [];
  for (const [scale, h, w] of levels) {
    const level = tf.tensor4d(resizer.resize(h, w), [1, h, w, channels]);
    let out;
    try {
      out = await runNet(pnet, 'pnet', level);
    } finally {
      level.dispose();
    }
    const [, mapH, mapW] = out.probShape;
    const found = generateBoundingBoxes(out.bbox_reg, out.prob, mapH, mapW, p.thresholdPnet, PNET_STRIDE, p.minSize);
    perScale.push(nms(upscaleBoxes(found, scale), p.nmsPnet1, 'union', false));
  }
  const merged = nms(perScale.flat(), p.nmsPnet2, 'union', true);
  return resizeToSquare(merged);
}

/**
 * Patches of `boxes` resized to size x size (raw RGB; the nets normalise), by `method`
 * (spec.mtcnn.patch_resize, options.js:detectorParams patchResize):
 * - 'bilinear': cut as the package does (mirrors mtcnn/utils/images.py:extract_patches:
 *   crop_and_resize, no antialiasing);
 * - 'area': area-sampled, antialiased (mirrors facepack/detect/mtcnn_detector.py:area_patches;
 *   ops/area_patches.js). `sampler` (an AreaPatcher of `image`'s values) is reused across calls
 *   (its integral image is built once per photo); without it one is made here.
 * Caller disposes.
 * @param {tf.Tensor3D} image float32 [H, W, C]
 * @param {Array<{x1:number,y1:number,x2:number,y2:number}>} boxes pixels of `image`
 * @param {{method?: 'area'|'bilinear', sampler?: AreaPatcher}} [how] default 'bilinear' (the package's)
 * @returns {Promise<tf.Tensor4D>} [N, size, size, C]
 */
export async function extractPatches(image, boxes, size, padValue, how = {}) {
  const [height, width, channels] = image.shape;
  const method = how.method ?? 'bilinear';
  if (method === 'area') {
    const sampler = how.sampler ?? new AreaPatcher(await image.data(), height, width, channels, padValue);
    const data = sampler.patches(boxes.map((b) => [b.x1, b.y1, b.x2, b.y2]), size);
    return tf.tensor4d(data, [boxes.length, size, size, channels]);
  }
  if (method !== 'bilinear') {
    throw new Error(`MTCNN patch_resize: expected 'area' or 'bilinear', got ${JSON.stringify(method)} (the manifest's spec.mtcnn.patch_resize)`);
  }
  return boundedCropAndResize(image, patchBoxes(boxes, height, width), [size, size], padValue, { preferKernel: true });
}

/**
 * How detectFaces cuts its patches: {method, sampler} for extractPatches (one AreaPatcher per
 * photo for 'area', its integral image built only if a patch is cut). A manifest without
 * spec.mtcnn.patch_resize (exported before it existed) was made for 'bilinear'.
 * @param {ArrayLike<number>|null} values `image`'s values (needed for 'area')
 */
export function patchSampler(image, p, values) {
  const method = p.patchResize ?? 'bilinear';
  if (method !== 'area') return { method };
  const [height, width, channels] = image.shape;
  return { method, sampler: new AreaPatcher(values, height, width, channels, p.patchPadValue) };
}

/** Stage 2 (mirrors StageRNet.__call__). */
export async function refineBoxes(rnet, image, boxes, p, how = { method: p.patchResize }) {
  if (!boxes.length) return [];
  const patches = await extractPatches(image, boxes, p.rnetInput, p.patchPadValue, how);
  let out;
  try {
    out = await runNet(rnet, 'rnet', patches);
  } finally {
    patches.dispose();
  }
  let result = replaceScores(boxes, out.prob);
  result = adjustBoxes(result, out.bbox_reg);
  result = pickMatches(result, p.thresholdRnet);
  result = nms(result, p.nmsRnet, 'union', true);
  return resizeToSquare(result);
}

/** Stage 3 (mirrors StageONet.__call__): boxes with landmarks [x1..x5, y1..y5]. */
export async function outputBoxes(onet, image, boxes, p, how = { method: p.patchResize }) {
  if (!boxes.length) return [];
  const patches = await extractPatches(image, boxes, p.onetInput, p.patchPadValue, how);
  let out;
  try {
    out = await runNet(onet, 'onet', patches);
  } finally {
    patches.dispose();
  }
  const landmarks = adjustLandmarks(boxes, out.landmarks, p.landmarkCount);
  let result = replaceScores(boxes, out.prob);
  result = adjustBoxes(result, out.bbox_reg).map((b, i) => ({ ...b, landmarks: landmarks[i] }));
  result = pickMatches(result, p.thresholdOnet);
  return nms(result, p.nmsOnet, 'min', true);
}

/**
 * All three stages and the package's post-processing (fit_to_image: corners clamped into the
 * image, landmarks left as they are). Boxes are in pixels of `image`.
 * @param {{pnet: object, rnet: object, onet: object}} nets loaded nets
 * @param {tf.Tensor3D} image float32 [H, W, 3] raw RGB 0..255
 * @param {object} p detector parameters (options.js:detectorParams)
 * @param {ArrayLike<number>} [values] `image`'s values when the caller has them (not read again)
 * @returns {Promise<Array<{x1:number,y1:number,x2:number,y2:number,score:number,landmarks:number[]}>>}
 */
export async function detectFaces(nets, image, p, values = null) {
  const [height, width] = image.shape;
  const pixels = values ?? (p.patchResize === 'area' ? await image.data() : null); // read once
  let boxes = await proposeBoxes(nets.pnet, image, p, pixels);
  const how = patchSampler(image, p, pixels); // R-Net and O-Net share its integral image
  try {
    boxes = await refineBoxes(nets.rnet, image, boxes, p, how);
    boxes = await outputBoxes(nets.onet, image, boxes, p, how);
  } finally {
    how.sampler?.release(); // its integral image's buffer goes to the next photo (ops/area_patches.js)
  }
  return limitBoxes(boxes, width, height);
}

/**
 * Detector boxes -> named faces in original pixels (mirrors
 * facepack/detect/mtcnn_detector.py:rows_to_faces: x divided by sx, y by sy).
 * @param {Array} boxes detectFaces output
 * @param {number} sx detection width / original width
 * @param {number} sy detection height / original height
 * @param {string[]} names manifest spec.landmarks5
 */
export function boxesToFaces(boxes, sx, sy, names) {
  const count = names.length;
  return boxes.map((b) => {
    const landmarks5 = {};
    names.forEach((name, k) => { landmarks5[name] = [b.landmarks[k] / sx, b.landmarks[count + k] / sy]; });
    return {
      box: { x: b.x1 / sx, y: b.y1 / sy, width: (b.x2 - b.x1) / sx, height: (b.y2 - b.y1) / sy },
      score: b.score,
      landmarks5,
    };
  });
}
