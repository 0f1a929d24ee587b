/**
 * Node runner for tests/test_crops_past_2_24.py: the bilinear crops, area crops and detection
 * downscale of one large photo (made here from a seed: tests/js/big_photo.mjs) on each backend.
 *
 *   node tests/js/big_photo_crops.mjs JOB.json  ->  {results: {backend: {ms, tensors, mismatches, samplers, detectShape}}}
 *
 * JOB: {height, width, seed, backends: ['cpu', 'wasm'], bilinear: [[x0, y0, side], ...],
 *       area: [[x0, y0, side], ...], size, spec: manifest "spec", out: prefix ('' writes nothing),
 *       native?: true, dump?: true (the photo's values as `photo`: small photos only)}
 * Per backend the photo is held as a float32 tensor on that backend and read back once
 * (`await image.data()`, as index.js does for tensor inputs); `mismatches` counts read-back
 * values that differ from the photo. Writes `${out}.${backend}.${op}.f32` for op in bilinear,
 * area, detect (and native: TF.js's own cropAndResize on the bilinear crops, for the report).
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { cropBoxToTf, cropSampler, cropSquares } from '../../static/facepack/crop.js';
import { resizeForDetection } from '../../static/facepack/input.js';
import { bigPhoto, countMismatches, runOps } from './big_photo.mjs';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const lib = { tf, cropSquares, cropSampler, cropBoxToTf, resizeForDetection };
let t = performance.now();
const rgb = bigPhoto(job.height, job.width, job.seed);
const makeMs = performance.now() - t;
const results = {};
for (const name of job.backends) {
  const backend = await useBackend(name);
  if (backend !== name) throw new Error(`big_photo_crops.mjs: backend ${name} did not start (got ${backend})`);
  t = performance.now();
  const image = tf.tensor3d(new Float32Array(rgb), [job.height, job.width, 3], 'float32');
  let pixels = await image.data();
  const readMs = performance.now() - t;
  const mismatches = countMismatches(pixels, rgb);
  const out = await runOps(lib, image, pixels, job);
  pixels = null;
  image.dispose();
  for (const op of ['bilinear', 'area', 'detect', 'native']) {
    if (job.out && out[op]) writeFileSync(`${job.out}.${name}.${op}.f32`, out[op]);
  }
  results[name] = { ms: { make: makeMs, read: readMs, ...out.ms }, mismatches, samplers: out.samplers,
    detectShape: out.detectShape, tensors: tf.memory().numTensors };
}
process.stdout.write(JSON.stringify({ results, ...(job.dump ? { photo: Array.from(rgb) } : {}) }));
