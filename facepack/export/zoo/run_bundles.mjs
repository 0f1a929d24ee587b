// Run many exported TF.js models in ONE Node process on one backend and write their outputs.
// Driven by facepack/export/zoo/harness.py:run_batch (the conformance test and bench/bench_export.py);
// mirrors facepack/export/node_check.mjs, but for any number of inputs of any dtype, both model
// formats (graph models through executeAsync, which also runs control flow), and two libraries:
//
//   node run_bundles.mjs JOB.json
//
// JOB.json: {"backend": "cpu"|"wasm", "library": "facepack"|"plain", "out": DIR, "requests": [
//   {"id": "m0", "bundle": DIR, "name": "causal_conv1d"}          facepack: a bundle + manifest name
//   {"id": "m1", "modelJson": FILE}                               plain: any model.json (official converter)
//   ... each with "inputs": [{"file": F, "shape": [...], "dtype": "float32"|"int32", "name": "input_a"}]]}
// library "facepack" loads through the repo's JS library (static/facepack/io.js, with its registered
// layers/kernels when static/facepack/layers/ exists); "plain" uses TF.js 4.22 alone, as a user of
// the official converter has it. Output k of request id is written to DIR/<id>_<k>.f32 (float32);
// DIR/result.json: {backend, results: [{id, format, shapes, files} | {id, error}]}.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
const LIBRARY = path.join(REPO, 'static', 'facepack');
const WASM_DIR = path.join(REPO, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep;

const [jobPath] = process.argv.slice(2);
if (!jobPath) {
  console.error('usage: node run_bundles.mjs JOB.json');
  process.exit(2);
}
const job = JSON.parse(await readFile(jobPath, 'utf8'));
if (job.backend === 'wasm') setWasmPaths(WASM_DIR);
if (!(await tf.setBackend(job.backend))) throw new Error(`TF.js backend ${job.backend} failed to start`);
await tf.ready();

async function facepackLoader() {
  // the library's own entry point (static/facepack/generic.js: load -> predictAsync), which
  // registers the layers/kernels bundles may need (static/facepack/layers/) through io.js
  const generic = await import(path.join(LIBRARY, 'generic.js'));
  const registry = path.join(LIBRARY, 'layers', 'index.js');
  if (existsSync(registry)) await import(registry);
  return async (req) => {
    const net = await generic.load(req.bundle, req.name);
    return { model: net, format: net.entry.format, net };
  };
}

function plainLoader() {
  // tf.io.fromMemory with the model.json and its shards read from disk (no tfjs-node file://)
  return async (req) => {
    const modelJson = JSON.parse(await readFile(req.modelJson, 'utf8'));
    const folder = path.dirname(req.modelJson);
    const specs = [];
    const buffers = [];
    for (const group of modelJson.weightsManifest || []) {
      specs.push(...group.weights);
      for (const p of group.paths) {
        const b = await readFile(path.join(folder, p));
        buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      }
    }
    const artifacts = {
      modelTopology: modelJson.modelTopology,
      format: modelJson.format,
      generatedBy: modelJson.generatedBy,
      convertedBy: modelJson.convertedBy,
      signature: modelJson.signature,
      userDefinedMetadata: modelJson.userDefinedMetadata,
      modelInitializer: modelJson.modelInitializer,
      weightSpecs: specs,
      weightData: tf.io.concatenateArrayBuffers(buffers),
    };
    const handler = tf.io.fromMemory(artifacts);
    const isGraph = modelJson.format === 'graph-model';
    return { model: isGraph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler),
      format: isGraph ? 'graph-model' : 'layers-model' };
  };
}

async function readInput(spec) {
  const buf = await readFile(spec.file);
  const Typed = spec.dtype === 'int32' ? Int32Array : Float32Array;
  const data = new Typed(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return tf.tensor(data, spec.shape, spec.dtype === 'int32' ? 'int32' : 'float32');
}

const bare = (name) => name.replace(/:\d+$/, '');

async function run(loaded, inputs, specs) {
  const { model, format, net } = loaded;
  if (net) {  // facepack: inputs in the manifest's order (the Keras model's), outputs likewise
    const x = inputs.length === 1 ? inputs[0] : inputs;
    const out = net.predictAsync ? await net.predictAsync(x) : net.predict(x);
    return Array.isArray(out) ? out : [out];
  }
  if (format === 'layers-model') {
    const out = model.predict(inputs.length === 1 ? inputs[0] : inputs);
    return Array.isArray(out) ? out : [out];
  }
  // graph model: inputs by name when the request's names are the model's, else in order; each
  // cast to the dtype the graph declares (token ids may be int32 or float in the signature)
  const names = model.inputs.map((t) => bare(t.name));
  const byName = specs.every((s) => s.name && names.includes(s.name)) && names.length === specs.length;
  const feed = {};
  model.inputs.forEach((t, i) => {
    const x = byName ? inputs[specs.findIndex((s) => s.name === names[i])] : inputs[i];
    feed[t.name] = t.dtype && t.dtype !== x.dtype ? tf.cast(x, t.dtype) : x;
  });
  let out;
  try {
    out = await model.executeAsync(feed);
  } catch (err) {  // what a user would try next: the synchronous executor (no dynamic-op analysis)
    try {
      out = model.execute(feed);
    } catch (err2) {
      throw err;
    }
  }
  return Array.isArray(out) ? out : [out];
}

const load = job.library === 'facepack' ? await facepackLoader() : plainLoader();
const results = [];
for (const req of job.requests) {
  let inputs = [];
  let outs = [];
  let loaded = null;
  try {
    inputs = await Promise.all(req.inputs.map(readInput));
    loaded = await load(req);
    outs = await run(loaded, inputs, req.inputs);
    const files = [];
    for (const [k, t] of outs.entries()) {
      const file = path.join(job.out, `${req.id}_${k}.f32`);
      // By value, not tf.cast: on the cpu backend a cast of an int32 or bool tensor to float32 keeps
      // the old Int32Array / Uint8Array storage, whose bytes read as float32 are wrong numbers.
      const values = Float32Array.from(await t.data());
      await writeFile(file, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
      files.push(file);
    }
    results.push({ id: req.id, format: loaded.format, shapes: outs.map((t) => t.shape), files });
  } catch (err) {
    results.push({ id: req.id, error: String(err && err.message ? err.message : err).split('\n')[0].slice(0, 400) });
  } finally {
    tf.dispose([...inputs, ...outs]);
    if (loaded && loaded.model && loaded.model.dispose) loaded.model.dispose();
  }
}
await writeFile(path.join(job.out, 'result.json'), JSON.stringify({ backend: tf.getBackend(), results }));
