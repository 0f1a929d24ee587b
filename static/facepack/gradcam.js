/**
 * Grad-CAM of the expected beauty score, step for step as facepack/gradcam.py (spec.gradcam):
 * grad of sum_i p_i * i w.r.t. the feature map through the exported beauty_head, spatial-mean
 * channel weights, ReLU of the weighted sum, divided by its per-face max (all-zero stays zero),
 * and (for drawing) a bilinear, half-pixel-centre upsample to the crop size.
 */
import * as tf from '@tensorflow/tfjs';

import { runModel } from './io.js';

/**
 * Steps 1-6 (mirrors facepack/gradcam.py:gradcam_grid): [N, h, w] maps with max 1. Caller disposes.
 * @param {object} head loaded beauty_head
 * @param {tf.Tensor4D} fmap [N, h, w, C] feature maps of the crops
 * @param {number} bins spec.beauty.bins
 */
export function gradcamGrid(head, fmap, bins) {
  return tf.tidy(() => {
    const values = tf.range(0, bins, 1, 'float32');
    // Each face's score depends on its own map only, so the gradient of the sum is per face.
    const totalScore = (a) => tf.sum(tf.mul(runModel(head, a)[0], values));
    const grads = tf.grad(totalScore)(fmap);
    const weights = tf.mean(grads, [1, 2], true); // [N, 1, 1, C]
    const cam = tf.relu(tf.sum(tf.mul(fmap, weights), -1)); // [N, h, w]
    const peak = tf.max(cam, [1, 2], true);
    return tf.div(cam, tf.where(tf.greater(peak, 0), peak, tf.onesLike(peak)));
  });
}

/**
 * Step 7 (mirrors facepack/gradcam.py:upsample): [N, h, w] -> [N, size, size], bilinear,
 * half-pixel centres, no antialias. Caller disposes.
 */
export function upsampleGrid(grid, size) {
  return tf.tidy(() => tf.squeeze(tf.image.resizeBilinear(tf.expandDims(grid, -1), [size, size], false, true), [3]));
}

/**
 * JSON record of one face (mirrors facepack/gradcam.py:heatmap_record).
 * @param {number[][]} grid h x w
 * @param {number[]} square [x0, y0, side]
 * @param {number} cropSize
 */
export function heatmapRecord(grid, square, cropSize) {
  const [x, y, side] = square;
  return { grid, crop_size: cropSize, square: { x, y, side } };
}

/**
 * A face's heatmap upsampled to its crop: {width, height, data: Float32Array} (for drawing;
 * place it over heatmap.square in the photo).
 */
export async function heatmapToCrop(heatmap) {
  const grid = tf.tensor3d([heatmap.grid]);
  const up = upsampleGrid(grid, heatmap.crop_size);
  try {
    return { width: heatmap.crop_size, height: heatmap.crop_size, data: await up.data() };
  } finally {
    tf.dispose([grid, up]);
  }
}
