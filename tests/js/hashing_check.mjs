// The hash functions of static/facepack/layers/hashing.js on many inputs, for
// tests/test_export_hashing.py (which checks them against TensorFlow).
//
//   node tests/js/hashing_check.mjs JOB.json
//
// JOB.json: {"out": DIR,
//            "runs": [{"ids": FILE of little-endian int32 ids, "salt": null | [k0, k1], "bins": [n, ...]}],
//            "strings": [hex, ...], "salts": [[k0, k1], ...],
//            "time": N (optional: time the Hashing layer's call on N distinct int32 ids, cpu backend)}
// Run r writes DIR/r_hi.u32 and DIR/r_lo.u32 (each id's 64-bit hash of its decimal string, in
// halves: FarmHash Fingerprint64, or SipHash-2-4 keyed by the salt) and DIR/r_bins_<n>.i32
// (hashBin(id, n, salt)). Prints {strings: [{farm, sip: [per salt]}] (64-bit hashes in decimal),
// seconds: {runs: [hashing each run's ids], layer, layer_salt (per N ids)}}.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { Hashing, decimalString, fingerprint64, hashBin, sipHash24 } from '../../static/facepack/layers/hashing.js';

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
const result = { strings: [], seconds: { runs: [] } };
const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const key = (salt) => (salt == null ? null : salt.map((v) => BigInt.asUintN(64, BigInt(v))));
for (const [r, run] of (job.runs ?? []).entries()) {
  const buf = await readFile(run.ids);
  const ids = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const salt = key(run.salt);
  const hi = new Uint32Array(ids.length);
  const lo = new Uint32Array(ids.length);
  const start = performance.now();
  for (let i = 0; i < ids.length; i++) {
    const bytes = ascii(decimalString(ids[i]));
    const h = salt == null ? fingerprint64(bytes) : sipHash24(salt[0], salt[1], bytes);
    hi[i] = Number(h >> 32n);
    lo[i] = Number(h & 0xffffffffn);
  }
  result.seconds.runs.push((performance.now() - start) / 1000);
  await writeFile(path.join(job.out, `${r}_hi.u32`), Buffer.from(hi.buffer));
  await writeFile(path.join(job.out, `${r}_lo.u32`), Buffer.from(lo.buffer));
  for (const n of run.bins ?? []) {
    const bins = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) bins[i] = hashBin(ids[i], n, salt);
    await writeFile(path.join(job.out, `${r}_bins_${n}.i32`), Buffer.from(bins.buffer));
  }
}
for (const hex of job.strings ?? []) {
  const bytes = Uint8Array.from(Buffer.from(hex, 'hex'));
  result.strings.push({
    farm: fingerprint64(bytes).toString(),
    sip: (job.salts ?? []).map((s) => { const [a, b] = key(s); return sipHash24(a, b, bytes).toString(); }),
  });
}
if (job.time) {
  await tf.setBackend('cpu');
  const ids = tf.tensor1d(Int32Array.from({ length: job.time }, (_, i) => i * 2147 - 1073741824), 'int32');
  for (const [name, config] of [['layer', {}], ['layer_salt', { salt: [133, 137] }]]) {
    const layer = new Hashing({ numBins: 1000, name, ...config });
    const start = performance.now();
    tf.dispose(layer.apply(ids));
    result.seconds[name] = (performance.now() - start) / 1000;
  }
  ids.dispose();
}
console.log(JSON.stringify(result));
