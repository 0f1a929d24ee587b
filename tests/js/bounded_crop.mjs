/**
 * Node runner for tests/test_bounded_crop.py: crops of one large raw photo on several backends.
 *
 *   node tests/js/bounded_crop.mjs JOB.json  ->  {results: {backend: {ms, native_ms, tensors}}}
 *
 * JOB: {path, shape: [H, W, C] (uint8 file, row-major), boxes: [[y1, x1, y2, x2], ...] normalised,
 *       size, pad, backends: ['cpu', 'wasm'], out: prefix, native?: true}
 * Writes the float32 crops of static/facepack/ops/bounded_crop.js:boundedCropAndResize to
 * `${out}.${backend}.f32` and, with native, TF.js's own tf.image.cropAndResize to
 * `${out}.${backend}.native.f32` (to measure what the bounded crop fixes). The photo is held as a
 * float32 tensor, as the pipeline holds it (input.js:toRgbTensor).
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { boundedCropAndResize } from '../../static/facepack/ops/bounded_crop.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const [height, width, channels] = job.shape;
const cropSize = [job.size, job.size];
let values = new Float32Array(readFileSync(job.path));
const results = {};
for (const name of job.backends) {
  const backend = await useBackend(name);
  if (backend !== name) throw new Error(`bounded_crop.mjs: backend ${name} did not start (got ${backend})`);
  const image = tf.tensor3d(values, [height, width, channels], 'float32');
  let t = performance.now();
  const crops = await boundedCropAndResize(image, job.boxes, cropSize, job.pad);
  writeFileSync(`${job.out}.${name}.f32`, await crops.data());
  const ms = performance.now() - t;
  crops.dispose();
  let nativeMs = null;
  if (job.native) {
    t = performance.now();
    const native = tf.tidy(() => tf.image.cropAndResize(tf.expandDims(image, 0), tf.tensor2d(job.boxes, [job.boxes.length, 4]),
      tf.zeros([job.boxes.length], 'int32'), cropSize, 'bilinear', job.pad));
    writeFileSync(`${job.out}.${name}.native.f32`, await native.data());
    nativeMs = performance.now() - t;
    native.dispose();
  }
  image.dispose();
  results[name] = { ms, native_ms: nativeMs, tensors: tf.memory().numTensors };
}
values = null;
process.stdout.write(JSON.stringify({ results }));
