/**
 * face-api's 68-point landmark net (@vladmandic/face-api, MIT) on square face crops, for
 * training/pseudo_labels.py (issue 19: a licence-compatible teacher for more identities).
 *
 *   node training/pseudo_labels_faceapi.mjs CROPS.u8 N SIZE OUT.f32
 *
 * CROPS.u8: N x SIZE x SIZE x 3 raw RGB uint8 (row-major). OUT.f32: N x 68 x 2 float32, the
 * points in crop units (0..1 across the crop; face-api's relativePositions, whose pixel
 * convention training/pseudo_labels.py corrects). Runs on tfjs-backend-wasm (no tfjs-node).
 * Mirrors bench/peer.mjs (model loading) but takes the package from node_modules.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const root = join(here, '..', 'node_modules');
const faceapi = require(join(root, '@vladmandic', 'face-api', 'dist', 'face-api.node-wasm.js'));
const { tf } = faceapi;
const wasm = require('@tensorflow/tfjs-backend-wasm');

const [cropsPath, nText, sizeText, outPath] = process.argv.slice(2);
const n = Number(nText);
const size = Number(sizeText);
const raw = readFileSync(cropsPath);
if (raw.length !== n * size * size * 3) {
  throw new Error(`${cropsPath}: expected ${n} x ${size} x ${size} x 3 bytes, got ${raw.length}`);
}
wasm.setWasmPaths(join(root, '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
await tf.setBackend('wasm');
await tf.ready();
await faceapi.nets.faceLandmark68Net.loadFromDisk(join(root, '@vladmandic', 'face-api', 'model'));
const out = new Float32Array(n * 68 * 2);
const per = size * size * 3;
for (let i = 0; i < n; i++) {
  const t = tf.tensor3d(Int32Array.from(raw.subarray(i * per, (i + 1) * per)), [size, size, 3], 'int32');
  const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(t);
  lm.relativePositions.forEach((p, k) => { out[(i * 68 + k) * 2] = p.x; out[(i * 68 + k) * 2 + 1] = p.y; });
  t.dispose();
}
writeFileSync(outPath, Buffer.from(out.buffer));
