// Run exported models of a bundle in Node on one TF.js backend and write their outputs, through
// the repo's JS library (static/facepack/generic.js). Driven by facepack/export/node_check.py;
// mirrors facepack/export/bundle.py:export_one (its parity check, on the Python side).
//
//   node facepack/export/node_check.mjs BUNDLE BACKEND JOB.json
//
// JOB.json: {"requests": [{"name": "keypoints", "input": "x.f32", "shape": [2, 96, 96, 3]}], "out": "DIR"}
// Inputs are raw little-endian float32; each output k of request i is written to
// DIR/<i>_<k>.f32 and described in DIR/result.json ({backend, results: [{name, shapes, files}]}).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { useBackend } from '../../static/facepack/backend.js';
import { load } from '../../static/facepack/generic.js';

const [bundle, backend, jobPath] = process.argv.slice(2);
if (!bundle || !backend || !jobPath) {
  console.error('usage: node node_check.mjs BUNDLE BACKEND JOB.json');
  process.exit(2);
}
const job = JSON.parse(await readFile(jobPath, 'utf8'));
const active = await useBackend(backend);
if (active !== backend) throw new Error(`backend ${backend} requested, ${active} in use`);
const results = [];
for (const [i, req] of job.requests.entries()) {
  const buf = await readFile(req.input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const net = await load(bundle, req.name);
  const before = tf.memory().numTensors;
  const out = net.predict({ data, shape: req.shape });
  const outs = Array.isArray(out) ? out : [out];
  const files = [];
  for (const [k, t] of outs.entries()) {
    const file = path.join(job.out, `${i}_${k}.f32`);
    const values = await t.data();
    await writeFile(file, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    files.push(file);
  }
  results.push({ name: req.name, shapes: outs.map((t) => t.shape), files });
  tf.dispose(outs);
  if (tf.memory().numTensors !== before) throw new Error(`${req.name}: leaked ${tf.memory().numTensors - before} tensors`);
  net.dispose();
}
await writeFile(path.join(job.out, 'result.json'), JSON.stringify({ backend: active, results }));
