/**
 * Node runner for the area-sampled MTCNN patches (static/facepack/ops/area_patches.js), compared
 * with facepack/detect/mtcnn_detector.py:area_patches by tests/test_parity_crowd.py.
 *
 *   node tests/js/area_patches.mjs JOB.json  ->  {results: [{backend, patches: {data, shape}}]}
 *
 * JOB: {backends: ['cpu', 'wasm'], image: {data: flat list, shape: [H, W, C]},
 *       boxes: [[x1, y1, x2, y2], ...], size, padValue}. Per backend, mtcnn.js:extractPatches with
 * method 'area' (the image as a float32 tensor of that backend).
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { extractPatches } from '../../static/facepack/mtcnn.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const boxes = job.boxes.map(([x1, y1, x2, y2]) => ({ x1, y1, x2, y2 }));
const results = [];
for (const backend of job.backends) {
  await useBackend(backend);
  const image = tf.tensor(job.image.data, job.image.shape, 'float32');
  const patches = await extractPatches(image, boxes, job.size, job.padValue, { method: 'area' });
  results.push({ backend: tf.getBackend(), patches: { data: Array.from(await patches.data()), shape: patches.shape } });
  tf.dispose([image, patches]);
}
process.stdout.write(JSON.stringify({ results }));
