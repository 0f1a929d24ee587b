/**
 * Node runner for tests/test_mtcnn_readbacks.py: mtcnn.js:detectFaces on one photo, counting the
 * tensors read back to JavaScript (Tensor data / dataSync / array / arraySync), issue 14.
 *
 *   node tests/js/mtcnn_readbacks.mjs JOB.json  ->  {readbacks, boxes, backend}
 *
 * JOB: {bundle, backend, image: {path, width, height}} (raw RGB, tests/jsharness.py:write_raw);
 * the photo's values are passed to detectFaces (as pipeline.js does), so every readback counted
 * is a net's output.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { loadManifest } from '../../static/facepack/io.js';
import { detectFaces } from '../../static/facepack/mtcnn.js';
import { detectorParams } from '../../static/facepack/options.js';
import { disposeModelSets, loadModelSets } from '../../static/facepack/pipeline.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
await useBackend(job.backend);
const manifest = await loadManifest(job.bundle);
const { spec } = manifest;
const sets = await loadModelSets(job.bundle, manifest, ['detector']);
const { width, height, path } = job.image;
const values = new Float32Array(new Uint8Array(readFileSync(path)));
const image = tf.tensor3d(values, [height, width, 3], 'float32');
let readbacks = 0;
for (const name of ['data', 'dataSync', 'array', 'arraySync']) {
  const orig = tf.Tensor.prototype[name];
  tf.Tensor.prototype[name] = function counted(...args) { readbacks += 1; return orig.apply(this, args); };
}
const boxes = await detectFaces(sets.detector, image, detectorParams(spec, spec.mtcnn.min_face_size_px), values);
image.dispose();
disposeModelSets(sets);
process.stdout.write(JSON.stringify({ readbacks, boxes: boxes.length, backend: tf.getBackend() }));
