// Run exported models of a bundle in Node on one or more TF.js backends and write their outputs,
// through the repo's JS library (static/facepack/generic.js, predictAsync: graph models with
// control flow included). Driven by facepack/export/node_check.py; mirrors the parity checks of
// facepack/export/keras_export.py and bundle.py on the Python side.
//
//   node facepack/export/node_check.mjs BUNDLE BACKENDS JOB.json     (BACKENDS: "cpu,wasm")
//   node facepack/export/node_check.mjs --serve BACKENDS -           (jobs named on stdin, see below)
//
// JOB.json: {"requests": [{"name": "m", "inputs": [{"file": "x.bin", "shape": [2, 8], "dtype": "int32",
//                                                 "key": "tokens"}]}], "out": "DIR"}
// (with "key" on every input, predictAsync gets an object by input name, else an array / one input)
// Inputs are raw little-endian float32 / int32 (bool: one byte each). Output k of request i on
// backend b goes to DIR/<b>_<i>_<k>.bin; DIR/result.json is {backends: {b: active name},
// results: {b: [{name, shapes, dtypes, files} | {name, error}]}}. A failing request (load or
// run) is recorded with its error message and the others still run.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { useBackend } from '../../static/facepack/backend.js';
import { load } from '../../static/facepack/generic.js';

import { readInput } from './job_inputs.mjs';

const [bundleArg, backendList, jobArg] = process.argv.slice(2);
if (!bundleArg || !backendList || !jobArg) {
  console.error('usage: node node_check.mjs BUNDLE BACKENDS JOB.json | node node_check.mjs --serve BACKENDS -');
  process.exit(2);
}

// The array type each output dtype is written as (node_check.py reads <f4 / <i4 / u1 by the dtype).
const WRITTEN_AS = { float32: Float32Array, int32: Int32Array, bool: Uint8Array };

/** An output's values as the array its dtype is written as. data() returns the backing store as
 * it is, which need not match the dtype: TF.js' cpu Cast keeps the input's data when no precision is
 * lost (bool -> int32 keeps a 1-byte Uint8Array, int32 -> float32 an Int32Array), so writing its
 * bytes gave 1 byte per int32 element ("cannot reshape" in Python) or int32 bits read as float32. */
function outputValues(dtype, shape, values, k) {
  const As = WRITTEN_AS[dtype];
  if (!As) throw new Error(`output ${k} has dtype ${dtype}, which the check cannot compare (float32, int32, bool)`);
  const typed = values instanceof As ? values : As.from(values);
  const size = shape.reduce((a, b) => a * b, 1);
  if (typed.length !== size) throw new Error(`output ${k} (${dtype} [${shape}]) has ${typed.length} values, not ${size}`);
  return typed;
}

async function runOne(bundle, job, backend, i, req) {
  const inputs = await Promise.all(req.inputs.map(readInput));
  const net = await load(bundle, req.name);
  try {
    const before = tf.memory().numTensors;
    const byName = req.inputs.length > 0 && req.inputs.every((s) => s.key);
    const x = byName ? Object.fromEntries(req.inputs.map((s, k) => [s.key, inputs[k]]))
      : (inputs.length === 1 ? inputs[0] : inputs);
    const out = await net.predictAsync(x);
    const outs = Array.isArray(out) ? out : [out];
    const files = [];
    for (const [k, t] of outs.entries()) {
      const file = path.join(job.out, `${backend}_${i}_${k}.bin`);
      const values = outputValues(t.dtype, t.shape, await t.data(), k);
      await writeFile(file, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
      files.push(file);
    }
    const result = { name: req.name, shapes: outs.map((t) => t.shape), dtypes: outs.map((t) => t.dtype), files };
    tf.dispose(outs);
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) throw new Error(`${req.name}: leaked ${leaked} tensors`);
    return result;
  } finally {
    net.dispose();
  }
}

/** Run one job on every backend of `backendList`; writes job.out/result.json. */
async function runJob(bundle, job) {
  const backends = {};
  const results = {};
  for (const backend of backendList.split(',')) {
    let active = null;
    try {
      active = await useBackend(backend);
    } catch (err) {
      active = `failed: ${err.message}`;
    }
    backends[backend] = active;
    results[backend] = [];
    for (const [i, req] of job.requests.entries()) {
      if (active !== backend) {
        results[backend].push({ name: req.name, error: `TF.js backend ${backend} requested, ${active} in use` });
        continue;
      }
      try {
        results[backend].push(await runOne(bundle, job, backend, i, req));
      } catch (err) {
        results[backend].push({ name: req.name, error: String((err && err.message) || err) });
      }
    }
  }
  await writeFile(path.join(job.out, 'result.json'), JSON.stringify({ backends, results }));
}

if (bundleArg === '--serve') {
  // Started ahead of time by node_check.py:NodeSession: load TF.js and start every backend now,
  // then run each job named on stdin ({"bundle", "requests", "out"}, one path per line), answering
  // "done" (or "failed <message>") on stdout; exits when stdin closes.
  for (const backend of backendList.split(',')) {
    try {
      await useBackend(backend);
    } catch (err) {
      // reported per request when a job runs
    }
  }
  process.stdout.write('ready\n');
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    try {
      const job = JSON.parse(await readFile(line.trim(), 'utf8'));
      await runJob(job.bundle, job);
      process.stdout.write('done\n');
    } catch (err) {
      process.stdout.write(`failed ${String((err && err.message) || err).split('\n')[0]}\n`);
    }
  }
} else {
  await runJob(bundleArg, JSON.parse(await readFile(jobArg, 'utf8')));
}
