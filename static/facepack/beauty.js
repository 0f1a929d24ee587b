/**
 * Beauty score: crops -> feature map (beauty_features) -> distribution over integer scores
 * (beauty_head) -> expected score. Mirrors facepack/pipeline.py:beauty and
 * facepack/models/beauty.py:expected_score / score_to_1to5; bins and label scale from the manifest.
 */
import * as tf from '@tensorflow/tfjs';

import { runModel } from './io.js';

/**
 * Feature maps and probabilities of the crops. Caller disposes both.
 * @param {{features: object, head: object}} models loaded beauty_features and beauty_head
 * @param {tf.Tensor4D} crops [N, S, S, 3] raw RGB
 * @returns {{fmap: tf.Tensor4D, probs: tf.Tensor2D}}
 */
export function beautyForward(models, crops) {
  const fmap = tf.tidy(() => runModel(models.features, crops)[0]);
  const probs = tf.tidy(() => runModel(models.head, fmap)[0]);
  return { fmap, probs };
}

/**
 * Probabilities -> per face {score (0..100), score_1to5, distribution} (mirrors
 * facepack/pipeline.py:beauty; the expectation is summed in float64 as numpy does).
 * @param {Float32Array} probs [n, bins] row-major
 * @param {number} n faces
 * @param {object} spec manifest.json "spec" (beauty.bins, beauty.label_scale)
 */
export function beautyResults(probs, n, spec) {
  const bins = spec.beauty.bins;
  if (probs.length !== n * bins) {
    throw new Error(`beauty_head: expected ${n} x ${bins} probabilities (spec.beauty.bins), got ${probs.length} values`);
  }
  const out = [];
  for (let i = 0; i < n; i++) {
    const distribution = Array.from(probs.subarray(i * bins, (i + 1) * bins));
    let score = 0;
    distribution.forEach((p, k) => { score += p * k; });
    out.push({ score, score_1to5: score / spec.beauty.label_scale, distribution });
  }
  return out;
}
