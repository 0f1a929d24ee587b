/**
 * Node runner for tests/test_attributes_js.py: the attributes stage (static/facepack/attributes.js)
 * on one photo, on every requested backend, plus the leak check.
 *
 *   node tests/js/attributes.mjs JOB.json  ->  {backends: {name: {faces, leaked}}, errors: {...}}
 *
 * JOB: {bundle, photo: {path, width, height} (raw RGB bytes), boxes: [{x, y, width, height}], backends}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { analyzeAttributes, attributeResults, attributeSettings } from '../../static/facepack/attributes.js';
import { useBackend } from '../../static/facepack/backend.js';
import { loadManifest, loadModel, manifestEntry } from '../../static/facepack/io.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const manifest = await loadManifest(job.bundle);
const entry = manifestEntry(manifest, 'attributes');
const rgb = new Uint8Array(readFileSync(job.photo.path));
const out = { backends: {}, errors: {} };

for (const name of job.backends) {
  await useBackend(name);
  const model = await loadModel(job.bundle, entry);
  const image = tf.tensor3d(Float32Array.from(rgb), [job.photo.height, job.photo.width, 3], 'float32');
  await analyzeAttributes(model, entry, manifest.spec, image, job.boxes); // warm-up: weights and kernels
  const before = tf.memory().numTensors;
  const faces = await analyzeAttributes(model, entry, manifest.spec, image, job.boxes);
  const leaked = tf.memory().numTensors - before;
  image.dispose();
  model.model.dispose();
  out.backends[tf.getBackend()] = { faces, leaked };
}

function message(fn) {
  try {
    fn();
  } catch (err) {
    return err.message;
  }
  return null;
}
out.errors.noAttributes = message(() => attributeSettings({ input_size: 48 }));
out.errors.wrongCount = message(() => attributeResults(new Float32Array(3), 1, attributeSettings(entry)));
console.log(JSON.stringify(out));
