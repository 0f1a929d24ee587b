/**
 * Square face crops by the spec's crop rule, sampled as tf.image.crop_and_resize samples them.
 *
 * Mirrors facepack/crop.py and facepack/pipeline.py:face_square / CROP_RULES; the geometry
 * functions mirror facepack/spec.py (square_box, crop_box_to_tf, crop_to_image) and read every
 * number (margins, the detector-to-points mapping, the pad value) from the manifest's spec.
 */
import * as tf from '@tensorflow/tfjs';
import { areaCrop } from './ops/area_crop.js';
import { boundedCropAndResize } from './ops/bounded_crop.js';

/** Face box -> square [x0, y0, side] (mirrors facepack/spec.py:square_box). */
export function squareBox(x, y, w, h, margin) {
  const side = Math.max(w, h) * (1.0 + 2.0 * margin);
  const cx = x + w / 2.0;
  const cy = y + h / 2.0;
  return [cx - side / 2.0, cy - side / 2.0, side];
}

/**
 * Square (pixels) -> normalised [y1, x1, y2, x2] for cropAndResize, so output pixel i samples
 * x0 + (i + 0.5) * side / outSize - 0.5 (mirrors facepack/spec.py:crop_box_to_tf).
 */
export function cropBoxToTf(x0, y0, side, outSize, imageH, imageW) {
  const step = side / outSize;
  const firstY = y0 + 0.5 * step - 0.5;
  const lastY = y0 + (outSize - 0.5) * step - 0.5;
  const firstX = x0 + 0.5 * step - 0.5;
  const lastX = x0 + (outSize - 0.5) * step - 0.5;
  const hy = Math.max(imageH - 1, 1);
  const hx = Math.max(imageW - 1, 1);
  return [firstY / hy, firstX / hx, lastY / hy, lastX / hx];
}

/** Crop-relative (0..1) point -> image pixels (mirrors facepack/spec.py:crop_to_image). */
export function cropToImage(u, v, x0, y0, side) {
  return [x0 + u * side, y0 + v * side];
}

/**
 * MTCNN box -> estimated box of the keypoints (mirrors facepack/crop.py:detector_to_points_box).
 * @param {{x:number,y:number,width:number,height:number}} box
 * @param {{scale:number,dx:number,dy:number}} mapping manifest spec.keypoints.formats[format].detector_to_points_box
 */
export function detectorToPointsBox(box, mapping) {
  const side = Math.max(box.width, box.height);
  const cx = box.x + box.width / 2.0 + mapping.dx * side;
  const cy = box.y + box.height / 2.0 + mapping.dy * side;
  const newSide = mapping.scale * side;
  return { x: cx - newSide / 2.0, y: cy - newSide / 2.0, width: newSide, height: newSide };
}

/**
 * The crop rule of each model (mirrors facepack/pipeline.py:CROP_RULES): its margin and
 * whether the detector box is first mapped to the keypoints' box, by the keypoint model's
 * format (mirrors facepack/crop.py:points_box_mapping).
 * @param {object} spec manifest.json "spec"
 * @param {string} [pointsFormat] the keypoint model's manifest "points_format" ("68" | "15");
 *   without it (no keypoint model loaded) there is no keypoint rule
 */
export function cropRules(spec, pointsFormat) {
  const rules = { beauty: { margin: spec.beauty.crop_margin, pointsBox: null }, keypoints: null };
  if (pointsFormat !== undefined) {
    const format = spec.keypoints.formats[pointsFormat];
    if (!format) {
      throw new Error(`keypoint model: "points_format" must be one of ${Object.keys(spec.keypoints.formats).join(', ')}, got ${JSON.stringify(pointsFormat)}`);
    }
    rules.keypoints = { margin: spec.keypoints.crop_margin, pointsBox: format.detector_to_points_box };
  }
  return rules;
}

/** The [x0, y0, side] square a model sees for a face box (mirrors facepack/pipeline.py:face_square). */
export function faceSquare(box, rule) {
  const b = rule.pointsBox ? detectorToPointsBox(box, rule.pointsBox) : box;
  return squareBox(b.x, b.y, b.width, b.height, rule.margin);
}

/**
 * How a square is sampled (mirrors facepack/crop.py:check_downscale / uses_area): 'area' when
 * the manifest's spec.crop.downscale is "area" and the square is larger than `size` photo pixels
 * (downscaling), else 'bilinear'. Bundles exported before spec.crop.downscale existed: 'bilinear'.
 * @returns {'area'|'bilinear'}
 */
export function cropSampler(square, size, spec) {
  const mode = spec.crop.downscale ?? 'bilinear';
  if (mode !== 'area' && mode !== 'bilinear') {
    throw new Error(`crop downscale: expected 'area' or 'bilinear', got ${JSON.stringify(mode)} (the manifest's spec.crop.downscale)`);
  }
  return mode === 'area' && square[2] / size > 1 ? 'area' : 'bilinear';
}

/**
 * Crops [N, size, size, 3] float32 of `image` for the squares (mirrors facepack/crop.py:crop_squares).
 * Upscaled squares (and every square when spec.crop.downscale is "bilinear") are sampled by
 * ops/bounded_crop.js:boundedCropAndResize, crop_and_resize's CPU float32 arithmetic written out
 * (TF.js's own cropAndResize reads wrong pixels past ~2^24 values into the photo on WASM);
 * downscaled ones by ops/area_crop.js:areaCrop, the exact box-filter mean (antialiased). Both
 * run in JavaScript on the photo's values, so the crops equal Python's bit for bit on any photo
 * size and backend. Caller disposes.
 * @param {tf.Tensor3D} image float32 [H, W, 3] raw RGB
 * @param {number[][]} squares [x0, y0, side] each
 * @param {number} size output side (pixels)
 * @param {object} spec manifest.json "spec" (crop.method, crop.pad_value, crop.downscale)
 * @param {ArrayLike<number>} [pixels] `await image.data()` if the caller has it (read once per photo)
 * @returns {Promise<tf.Tensor4D>}
 */
export async function cropSquares(image, squares, size, spec, pixels = null) {
  const [h, w, c] = image.shape;
  const area = squares.map((sq) => cropSampler(sq, size, spec) === 'area');
  if (!area.some(Boolean)) {
    const boxes = squares.map(([x0, y0, side]) => cropBoxToTf(x0, y0, side, size, h, w));
    return boundedCropAndResize(image, boxes, [size, size], spec.crop.pad_value, { method: spec.crop.method, pixels });
  }
  const values = pixels ?? await image.data();
  const per = size * size * c;
  const out = new Float32Array(squares.length * per);
  const rest = squares.map((_, k) => k).filter((k) => !area[k]);
  if (rest.length) {
    const boxes = rest.map((k) => cropBoxToTf(...squares[k], size, h, w));
    const bilinear = await boundedCropAndResize(image, boxes, [size, size], spec.crop.pad_value,
      { method: spec.crop.method, pixels: values });
    const data = bilinear.dataSync();
    bilinear.dispose();
    rest.forEach((k, n) => out.set(data.subarray(n * per, (n + 1) * per), k * per));
  }
  squares.forEach((sq, k) => {
    if (area[k]) areaCrop(values, [h, w, c], sq, size, spec.crop.pad_value, out.subarray(k * per, (k + 1) * per));
  });
  return tf.tensor4d(out, [squares.length, size, size, c], 'float32');
}
