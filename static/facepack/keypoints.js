/**
 * Facial keypoints: crops -> (N, 2P) interleaved x0, y0, x1, y1, ... in crop units -> photo
 * pixels. Mirrors facepack/pipeline.py:keypoints and facepack/crop.py:crop_points_to_image.
 */
import * as tf from '@tensorflow/tfjs';

import { cropToImage } from './crop.js';
import { runModel } from './io.js';

/**
 * Outputs [N, 2P] of the keypoint model, row-major, in crop units.
 * With `mirrorPermutation` (P indices: the manifest's spec.mirror_permutation[format]) the model
 * runs once on the batch of the N crops followed by their horizontal mirrors (2N) and the halves
 * are combined by mirrorAverage (test-time mirror averaging); null: the crops only.
 * Mirrors facepack/pipeline.py:keypoints.
 * @param {object} model loaded keypoint model
 * @param {tf.Tensor4D} crops [N, S, S, 3]
 * @param {number[]|null} [mirrorPermutation]
 * @returns {Promise<{data: Float32Array|Float64Array, width: number}>}
 */
export async function keypointOutputs(model, crops, mirrorPermutation = null) {
  const n = crops.shape[0];
  // The mirrors by the FlipLeftRight kernel (the same values as tf.reverse(crops, 2); on WASM 25 96-px
  // crops 1.2 ms instead of 15).
  const out = tf.tidy(() => runModel(model, mirrorPermutation ? tf.concat([crops, tf.image.flipLeftRight(crops)], 0) : crops)[0]);
  try {
    const width = out.shape[out.shape.length - 1];
    const data = await out.data();
    if (!mirrorPermutation) return { data, width };
    return { data: mirrorAverage(data.subarray(0, n * width), data.subarray(n * width), width, mirrorPermutation), width };
  } finally {
    out.dispose();
  }
}

/**
 * Crop-unit points of N crops and of their horizontal mirrors -> their average in the crops'
 * frame: the mirrored points un-mirrored (u -> 1 - u) with point k taken from point
 * permutation[k] (left and right swapped). Mirrors facepack/pipeline.py:mirror_average.
 * @param {ArrayLike<number>} direct [N, 2P] row-major, interleaved x, y
 * @param {ArrayLike<number>} mirrored [N, 2P] of the mirrored crops
 * @param {number} width 2P
 * @param {number[]} permutation P indices
 * @returns {Float64Array} [N, 2P]
 */
export function mirrorAverage(direct, mirrored, width, permutation) {
  if (direct.length !== mirrored.length || direct.length % width !== 0 || permutation.length * 2 !== width) {
    throw new Error(`mirrorAverage: expected two [N, ${permutation.length * 2}] arrays, got lengths ${direct.length} and ${mirrored.length} (width ${width})`);
  }
  const out = new Float64Array(direct.length);
  for (let row = 0; row < direct.length; row += width) {
    for (let k = 0; k < permutation.length; k += 1) {
      const j = row + 2 * permutation[k];
      out[row + 2 * k] = (direct[row + 2 * k] + (1 - mirrored[j])) / 2;
      out[row + 2 * k + 1] = (direct[row + 2 * k + 1] + mirrored[j + 1]) / 2;
    }
  }
  return out;
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
