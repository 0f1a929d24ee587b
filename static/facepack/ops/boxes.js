/**
 * Box arithmetic of the `mtcnn` 1.0.0 package, ported line by line from mtcnn/utils/bboxes.py,
 * mtcnn/utils/images.py:build_scale_pyramid and mtcnn/utils/landmarks.py:adjust_landmarks.
 *
 * A box is {x1, y1, x2, y2, score, landmarks?}: corners in pixels of the image being processed,
 * score the face probability, landmarks [x1..x5, y1..y5] (the package's column order).
 * All arithmetic is float64, as numpy does it; values that numpy stores in float32 arrays are
 * rounded with Math.fround. Twins: tests/test_js_ops.py runs both sides on the same inputs.
 */
import { sortByScoreDescending } from './nms.js';

/**
 * Pyramid scales (mirrors mtcnn/utils/images.py:build_scale_pyramid).
 * @param {number} width image width (pixels)
 * @param {number} height image height (pixels)
 * @param {number} minFaceSize smallest face to find (pixels)
 * @param {number} scaleFactor ratio between consecutive levels
 * @param {number} minSize P-Net's receptive field (pixels)
 * @returns {number[]}
 */
export function buildScalePyramid(width, height, minFaceSize, scaleFactor, minSize) {
  const minDim = Math.min(width, height);
  const count = roundHalfEven(-((Math.log(minDim / minSize) / Math.log(scaleFactor)) + 1));
  const m = minSize / minFaceSize;
  const scales = [];
  for (let k = 0; k < count; k++) scales.push(m * scaleFactor ** k);
  return scales;
}

/**
 * Size of one pyramid level: tf.image.resize truncates the float size shape * scale.
 * @returns {[number, number]} [height, width]
 */
export function scaledShape(height, width, scale) {
  return [Math.trunc(height * scale), Math.trunc(width * scale)];
}

/**
 * numpy's round (half to even), used by the package's JSON output.
 * @param {number} x
 * @returns {number}
 */
export function roundHalfEven(x) {
  const lower = Math.floor(x);
  const frac = x - lower;
  if (frac > 0.5) return lower + 1;
  if (frac < 0.5) return lower;
  return lower % 2 === 0 ? lower : lower + 1;
}

/**
 * P-Net output maps -> candidate boxes sorted by score (mirrors generate_bounding_box).
 * @param {Float32Array} reg [h, w, 4] row-major regression map
 * @param {Float32Array} prob [h, w, 2] row-major softmax map (channel 1 = face)
 * @param {number} h map height
 * @param {number} w map width
 * @param {number} threshold keep cells with face probability > threshold
 * @param {number} stride P-Net's stride (pixels of the scaled image per map cell)
 * @param {number} cellSize P-Net's receptive field (pixels)
 */
export function generateBoundingBoxes(reg, prob, h, w, threshold, stride, cellSize) {
  const boxes = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const cell = y * w + x;
      const score = prob[cell * 2 + 1];
      if (!(score > threshold)) continue;
      const [r1, r2, r3, r4] = reg.subarray(cell * 4, cell * 4 + 4);
      // The package's corners: (stride * i + 1, stride * i + cellSize), so the cell is cellSize - 1 wide.
      const left = x * stride + 1, top = y * stride + 1;
      const right = x * stride + cellSize, bottom = y * stride + cellSize;
      const regW = right - left, regH = bottom - top;
      boxes.push({ x1: left + r1 * regW, y1: top + r2 * regH, x2: right + r3 * regW, y2: bottom + r4 * regH, score });
    }
  }
  return sortByScoreDescending(boxes);
}

/** Boxes of a pyramid level back to image pixels (mirrors upscale_bboxes). */
export function upscaleBoxes(boxes, scale) {
  return boxes.map((b) => ({ ...b, x1: b.x1 / scale, y1: b.y1 / scale, x2: b.x2 / scale, y2: b.y2 / scale }));
}

/** Squares around the same centre, side = the longer side (mirrors resize_to_square). */
export function resizeToSquare(boxes) {
  return boxes.map((b) => {
    const h = b.y2 - b.y1;
    const w = b.x2 - b.x1;
    const side = Math.max(w, h);
    const x1 = b.x1 + w * 0.5 - side * 0.5;
    const y1 = b.y1 + h * 0.5 - side * 0.5;
    return { ...b, x1, y1, x2: x1 + side, y2: y1 + side };
  });
}

/**
 * Apply R/O-Net box regression (mirrors adjust_bboxes: sizes use the +1 convention).
 * @param {Array} boxes
 * @param {Float32Array} offsets [n, 4] row-major (dx1, dy1, dx2, dy2)
 */
export function adjustBoxes(boxes, offsets) {
  return boxes.map((b, i) => {
    const w = b.x2 - b.x1 + 1;
    const h = b.y2 - b.y1 + 1;
    const o = offsets.subarray(i * 4, i * 4 + 4);
    return { ...b, x1: b.x1 + o[0] * w, y1: b.y1 + o[1] * h, x2: b.x2 + o[2] * w, y2: b.y2 + o[3] * h };
  });
}

/**
 * O-Net landmarks (crop units) -> pixels of the image (mirrors mtcnn/utils/landmarks.py:adjust_landmarks;
 * the package stores the result in a float32 array, hence Math.fround).
 * @param {Array} boxes the boxes the O-Net patches were cut from
 * @param {Float32Array} landmarks [n, 10] row-major, [x1..x5, y1..y5]
 * @param {number} count landmarks per face
 * @returns {number[][]} per box [x1..x5, y1..y5] in pixels
 */
export function adjustLandmarks(boxes, landmarks, count) {
  return boxes.map((b, i) => {
    const w = b.x2 - b.x1 + 1;
    const h = b.y2 - b.y1 + 1;
    const row = landmarks.subarray(i * 2 * count, (i + 1) * 2 * count);
    const out = new Array(2 * count);
    for (let k = 0; k < count; k++) {
      out[k] = Math.fround(w * row[k] + b.x1 - 1);
      out[count + k] = Math.fround(h * row[count + k] + b.y1 - 1);
    }
    return out;
  });
}

/** Replace each box's score with the net's face probability (mirrors replace_confidence). */
export function replaceScores(boxes, prob) {
  return boxes.map((b, i) => ({ ...b, score: prob[i * 2 + 1] }));
}

/** Keep boxes with score > threshold (mirrors pick_matches). */
export function pickMatches(boxes, threshold) {
  return boxes.filter((b) => b.score > threshold);
}

/**
 * Clamp box corners into the image (mirrors limit_bboxes with limit_landmarks=False, the
 * package's default for detect_faces(fit_to_image=True)).
 */
export function limitBoxes(boxes, width, height) {
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  return boxes.map((b) => ({
    ...b, x1: clamp(b.x1, width - 1), y1: clamp(b.y1, height - 1), x2: clamp(b.x2, width - 1), y2: clamp(b.y2, height - 1),
  }));
}

/**
 * Normalised [y1, x1, y2, x2] crop boxes the package gives tf.image.crop_and_resize
 * (mirrors mtcnn/utils/images.py:extract_patches: divides by H and W, not H - 1).
 * @returns {number[][]}
 */
export function patchBoxes(boxes, height, width) {
  return boxes.map((b) => [b.y1 / height, b.x1 / width, b.y2 / height, b.x2 / width]);
}

/**
 * The package's JSON rounding (mirrors to_json/parse_bbox/parse_landmarks): box as
 * [x, y, width, height] and landmarks, each rounded half to even.
 * @param {{x1:number,y1:number,x2:number,y2:number,landmarks:number[]}} b
 * @param {string[]} names landmark names, in the package's column order
 */
export function toPackageJson(b, names) {
  const box = [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1].map(roundHalfEven);
  const count = names.length;
  const keypoints = {};
  names.forEach((name, k) => { keypoints[name] = [roundHalfEven(b.landmarks[k]), roundHalfEven(b.landmarks[count + k])]; });
  return { box, confidence: b.score, keypoints };
}
