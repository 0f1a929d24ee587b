/**
 * Facial keypoints: crops -> (N, 2P) interleaved x0, y0, x1, y1, ... in crop units -> photo
 * pixels. Mirrors facepack/pipeline.py:keypoints and facepack/crop.py:crop_points_to_image.
 */
import * as tf from '@tensorflow/tfjs';

import { cropToImage } from './crop.js';
import { runModel } from './io.js';

/** Raw outputs [N, 2P] of the keypoint model as a Float32Array. */
export async function keypointOutputs(model, crops) {
  const out = tf.tidy(() => runModel(model, crops)[0]);
  try {
    return { data: await out.data(), width: out.shape[out.shape.length - 1] };
  } finally {
    out.dispose();
  }
}

/**
 * Crop-unit outputs -> per face [[x, y], ...] in photo pixels.
 * @param {Float32Array} data [n, 2P] row-major
 * @param {number} width 2P
 * @param {number[][]} squares [x0, y0, side] per face
 */
export function pointsToImage(data, width, squares) {
  return squares.map(([x0, y0, side], i) => {
    const row = data.subarray(i * width, (i + 1) * width);
    const points = [];
    for (let k = 0; k < width; k += 2) points.push(cropToImage(row[k], row[k + 1], x0, y0, side));
    return points;
  });
}
