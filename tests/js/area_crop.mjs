/**
 * Node runner for the area-sampled face crops (static/facepack/crop.js:cropSquares with
 * spec.crop.downscale "area", static/facepack/ops/area_crop.js), compared with
 * facepack/crop.py:crop_squares by tests/test_crop_area.py.
 *
 *   node tests/js/area_crop.mjs JOB.json  ->  {results: [{backend, crops: {data, shape}, samplers}]}
 *
 * JOB: {backends: ['cpu', 'wasm'], image: {data: flat list, shape: [H, W, C]} or {path, shape}
 *       (raw uint8 bytes, row-major: large photos), squares: [[x0, y0, side], ...], size,
 *       spec: manifest "spec" (its crop part is read)}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { cropSampler, cropSquares } from '../../static/facepack/crop.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const backend of job.backends) {
  await useBackend(backend);
  const data = job.image.path ? Float32Array.from(readFileSync(job.image.path)) : job.image.data;
  const image = tf.tensor(data, job.image.shape, 'float32');
  const crops = await cropSquares(image, job.squares, job.size, job.spec);
  results.push({ backend: tf.getBackend(), crops: { data: Array.from(await crops.data()), shape: crops.shape },
    samplers: job.squares.map((sq) => cropSampler(sq, job.size, job.spec)) });
  tf.dispose([image, crops]);
}
process.stdout.write(JSON.stringify({ results }));
