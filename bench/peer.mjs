/**
 * The peer side of bench/bench_peer.py: @vladmandic/face-api (installed in bench/peer/) in Node on
 * the WASM backend (its dist/face-api.node-wasm.js: @tensorflow/tfjs + tfjs-backend-wasm, no
 * tfjs-node), on raw RGB photos and crops.
 *
 *   node bench/peer.mjs JOB.json  ->  one JSON document on stdout
 *
 * JOB: {repeat, photos: [{name, path, width, height}], labelled: [...same], crops: [...same],
 *       detectors?: subset of ['tiny', 'ssd'] (default both), warmup?: untimed passes over every
 *       photo with each detector + landmarks before the timed calls (default 0)}
 * Output: {versions, load_ms, photos: [{name, tiny: {ms: [...], boxes}, ssd: {...}}],
 *          labelled: [{name, ssd: [{box, points}], tiny: [...]}], crops: [{name, ms, points}]}
 * Points and boxes are in the input's pixels; ms are per call (first call included, the caller
 * takes medians of the later ones).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PEER = join(here, 'peer', 'node_modules', '@vladmandic', 'face-api');
const faceapi = require(join(PEER, 'dist', 'face-api.node-wasm.js'));
const { tf } = faceapi;
const wasm = require('@tensorflow/tfjs-backend-wasm');

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TINY = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
const SSD = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 });

function tensorOf(item) {
  const data = new Uint8Array(readFileSync(item.path));
  return tf.tensor3d(Int32Array.from(data), [item.height, item.width, 3], 'int32');
}
const box = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });
const points = (landmarks) => landmarks.positions.map((p) => [p.x, p.y]);

async function timed(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const cpu = process.cpuUsage(cpu0);
  return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, value };
}

wasm.setWasmPaths(join(here, '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
await tf.setBackend('wasm');
await tf.ready();
const t0 = performance.now();
const modelDir = join(PEER, 'model');
await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
const loadMs = performance.now() - t0;

const out = { versions: { faceapi: faceapi.version, tfjs: tf.version_core, backend: tf.getBackend(),
                          threads: wasm.getThreadsCount() }, load_ms: loadMs, photos: [], labelled: [], crops: [] };
const DETECTORS = [['tiny', TINY], ['ssd', SSD]].filter(([key]) => (job.detectors ?? ['tiny', 'ssd']).includes(key));
for (let w = 0; w < (job.warmup ?? 0); w++) {
  for (const item of job.photos) {
    const t = tensorOf(item);
    for (const [, opts] of DETECTORS) await faceapi.detectAllFaces(t, opts).withFaceLandmarks(); // eslint-disable-line no-await-in-loop
    t.dispose();
  }
}
for (const item of job.photos) {
  const t = tensorOf(item);
  const entry = { name: item.name };
  for (const [key, opts] of DETECTORS) {
    const detectMs = [];
    const e2eMs = [];
    const e2eCpuMs = []; // this process's CPU ms (a loaded machine inflates them less than the wall clock)
    let found = [];
    for (let i = 0; i < job.repeat; i++) {
      const det = await timed(() => faceapi.detectAllFaces(t, opts));
      detectMs.push(det.ms);
      const e2e = await timed(() => faceapi.detectAllFaces(t, opts).withFaceLandmarks());
      e2eMs.push(e2e.ms);
      e2eCpuMs.push(e2e.cpuMs);
      found = e2e.value;
    }
    entry[key] = { detect_ms: detectMs, e2e_ms: e2eMs, e2e_cpu_ms: e2eCpuMs,
                   faces: found.map((f) => ({ box: box(f.detection.box), score: f.detection.score, points: points(f.landmarks) })) };
  }
  t.dispose();
  out.photos.push(entry);
}
for (const item of job.labelled) {
  const t = tensorOf(item);
  const entry = { name: item.name };
  for (const [key, opts] of DETECTORS) {
    const found = await faceapi.detectAllFaces(t, opts).withFaceLandmarks();
    entry[key] = found.map((f) => ({ box: box(f.detection.box), score: f.detection.score, points: points(f.landmarks) }));
  }
  t.dispose();
  out.labelled.push(entry);
}
for (const item of job.crops) {
  const t = tensorOf(item);
  const res = await timed(() => faceapi.nets.faceLandmark68Net.detectLandmarks(t));
  out.crops.push({ name: item.name, ms: res.ms, points: points(res.value) });
  t.dispose();
}
out.tensors_left = tf.memory().numTensors;
process.stdout.write(JSON.stringify(out));
