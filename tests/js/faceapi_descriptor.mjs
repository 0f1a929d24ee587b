/**
 * Reference run for the dlib ResNet importer's equivalence test (tests/test_importers_dlib.py):
 * @vladmandic/face-api's own faceRecognitionNet computes the 128-d face descriptor of each image.
 *
 *   node tests/js/faceapi_descriptor.mjs JOB.json  ->  {backend, version, results: [{name, descriptor}]}
 *
 * JOB: {backend?: 'cpu' | 'wasm' (default 'cpu': exact float32), images: [{name, path, width,
 * height}]} with raw RGB bytes (tests/jsharness.py:write_raw). Images of 150 x 150 px reach the
 * net unresized (face-api's NetInput.toBatchTensor resizes only other sizes).
 * The Keras twin is facepack/models/importers.py:dlib_descriptor_model.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// face-api's Node WASM build requires @tensorflow/tfjs + tfjs-backend-wasm: the project's copies.
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const packageDir = dirname(require.resolve('@vladmandic/face-api/package.json'));
const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { tf } = faceapi;
await tf.setBackend(job.backend ?? 'cpu');
await tf.ready();
await faceapi.nets.faceRecognitionNet.loadFromDisk(join(packageDir, 'model'));

const results = [];
for (const item of job.images) {
  const pixels = Int32Array.from(new Uint8Array(readFileSync(item.path)));
  const image = tf.tensor3d(pixels, [item.height, item.width, 3], 'int32');
  const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(image);
  image.dispose();
  results.push({ name: item.name, descriptor: Array.from(descriptor) });
}
process.stdout.write(JSON.stringify({ backend: tf.getBackend(), version, results }));
