/**
 * Node runner for tests/test_quantize.py: the expected beauty score (0..100) of raw face crops
 * through a bundle's beauty_features -> beauty_head (WASM), for several bundles in one process.
 *
 *   node tests/js/beauty_scores.mjs JOB.json   ->  {scores: {<bundle>: [score per crop]}}
 *
 * JOB: {bundles: [dir, ...], crops: path of n * size * size * 3 float32 values (raw RGB 0..255,
 *       row-major, little-endian), n, size}
 * Mirrors facepack/models/beauty.py:expected_score (probabilities @ bins 0..100).
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { load } from '../../static/facepack/generic.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const bytes = readFileSync(job.crops);
const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const scores = {};
for (const dir of job.bundles) {
  const features = await load(dir, 'beauty_features');
  const head = await load(dir, 'beauty_head');
  const probs = tf.tidy(() => {
    const fmap = features.predict({ data, shape: [job.n, job.size, job.size, 3] });
    return head.predict(fmap);
  });
  const bins = tf.range(0, probs.shape[probs.shape.length - 1]);
  const expected = tf.tidy(() => tf.sum(tf.mul(probs, bins), -1));
  scores[dir] = Array.from(await expected.data());
  tf.dispose([probs, bins, expected]);
}
process.stdout.write(JSON.stringify({ backend: tf.getBackend(), scores }));
