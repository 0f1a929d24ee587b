/**
 * Node runner for the stage-parity test: given faces (the Python reference's detections), run
 * the JS crop, keypoint, beauty and Grad-CAM stages (static/facepack/pipeline.js:describeFaces).
 *
 *   node tests/js/describe.mjs JOB.json  ->  {backend, results: [{name, faces}]}
 *
 * JOB: {bundle, backend?, images: [{name, path, width, height, faces: [{box, score, landmarks5}]}]}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { loadManifest } from '../../static/facepack/io.js';
import { describeFaces, disposeModelSets, loadModelSets } from '../../static/facepack/pipeline.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const backend = await useBackend(job.backend ?? 'wasm');
const manifest = await loadManifest(job.bundle);
const sets = await loadModelSets(job.bundle, manifest, ['beauty', 'keypoints']);
const results = [];
for (const item of job.images) {
  const data = Float32Array.from(new Uint8Array(readFileSync(item.path)));
  const image = tf.tensor3d(data, [item.height, item.width, 3]);
  const faces = await describeFaces(sets, manifest.spec, image, item.faces, { heatmaps: true });
  image.dispose();
  results.push({ name: item.name, faces });
}
disposeModelSets(sets);
process.stdout.write(JSON.stringify({ backend, results, tensors: tf.memory().numTensors }));
