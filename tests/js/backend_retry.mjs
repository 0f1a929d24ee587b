/**
 * Node runner for tests/test_backend_retry.py: the WASM backend starts on a retry after a failed
 * start (a wasmPaths folder without the .wasm files, then the right one).
 *
 *   node tests/js/backend_retry.mjs JOB.json  ->  {first, second, third}
 *
 * JOB: {wrong: folder without .wasm files, right: folder with them (or null: the default),
 *   appFirst?: the app calls setWasmPaths(wrong) and tf.setBackend('wasm') itself first -> {app, named, auto}}.
 * Each entry: {ok, backend, value (2 + 3 on that backend), message, code}.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';

import { selectBackend } from '../../static/facepack/backend.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));

async function attempt(requested, wasmPaths) {
  try {
    const r = await selectBackend(requested, { wasmPaths });
    const x = tf.add(tf.scalar(2), tf.scalar(3));
    const value = (await x.data())[0];
    x.dispose();
    return { ok: true, backend: r.backend, value, failures: r.failures };
  } catch (err) {
    return { ok: false, message: err.message, code: err.code ?? null };
  }
}

const out = {};
if (job.appFirst) {
  // The app's own failed start, before facepack gave TF.js a location: TF.js takes none after it.
  setWasmPaths(job.wrong);
  out.app = await tf.setBackend('wasm');
  out.named = await attempt('wasm', job.right);
  out.auto = await attempt('auto', job.right);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
out.first = await attempt('wasm', job.wrong);
out.auto = await attempt('auto', job.wrong); // falls back to CPU and says why
out.second = await attempt('wasm', job.right);
out.third = await attempt('wasm', job.wrong); // started: its location is fixed, the call keeps it
process.stdout.write(JSON.stringify(out));
