// Run many exported TF.js layers models on one backend in one Node process, for
// tests/test_js_layers.py (the custom layers of static/facepack/layers/ against Keras).
//
//   node tests/js/layers_parity.mjs JOB.json
//
// JOB.json: {"backend": "cpu"|"wasm", "out": DIR,
//            "models": [{"name", "dir" (holding model.json), "inputs": [{"file", "shape"}]}
//                       | {"name", "op": "erfc", "inputs": [...]}]}   (a registered function, no model)
// Inputs are raw little-endian float32. Output k of model i goes to DIR/<i>_<k>.f32. Prints
// {backend, results: [{name, shapes, files} | {name, error}]}: one failing model does not stop the rest.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { useBackend } from '../../static/facepack/backend.js';
// io.js registers the custom layers (import './layers/index.js'), as the page and the npm package do.
import { loadArtifacts } from '../../static/facepack/io.js';
import { erfc } from '../../static/facepack/layers/index.js';

const OPS = { erfc };

async function loadAny(dir) {
  const artifacts = await loadArtifacts(path.join(dir, 'model.json'));
  const handler = tf.io.fromMemory(artifacts);
  return artifacts.format === 'graph-model' ? tf.loadGraphModel(handler) : tf.loadLayersModel(handler);
}

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
const active = await useBackend(job.backend);
const results = [];
for (const [i, spec] of job.models.entries()) {
  try {
    const model = spec.op ? { predict: (x) => OPS[spec.op](x), dispose() {} } : await loadAny(spec.dir);
    const xs = [];
    for (const input of spec.inputs) {
      const buf = await readFile(input.file);
      xs.push(tf.tensor(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), input.shape, 'float32'));
    }
    const before = tf.memory().numTensors;
    // as the library runs a layers model (io.js runModel: apply), twice: a second call must not
    // see state left by the first
    const run = () => (model instanceof tf.LayersModel ? model.apply(xs.length === 1 ? xs[0] : xs, { training: false })
      : model.predict(xs.length === 1 ? xs[0] : xs));
    tf.dispose(run());
    const out = run();
    const outs = Array.isArray(out) ? out : [out];
    const files = [];
    for (const [k, t] of outs.entries()) {
      const file = path.join(job.out, `${i}_${k}.f32`);
      const values = await t.data();
      await writeFile(file, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
      files.push(file);
    }
    const shapes = outs.map((t) => t.shape);
    tf.dispose(outs);
    const leaked = tf.memory().numTensors - before;
    tf.dispose(xs);
    model.dispose();
    results.push(leaked ? { name: spec.name, error: `leaked ${leaked} tensors` } : { name: spec.name, shapes, files });
  } catch (err) {
    results.push({ name: spec.name, error: String(err && err.message ? err.message : err).split('\n')[0] });
  }
}
console.log(JSON.stringify({ backend: active, results }));
