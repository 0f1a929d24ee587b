/**
 * Detection only, before vs after, in ONE Node process (WASM): the detector of another copy of the
 * library (e.g. bench/results/before-86dc96f/, unpacked by `bench_speed_peers.py --before 86dc96f`)
 * against this one at the default and the 'fast' preset, interleaved call by call, so that a busy
 * machine slows every column alike. Prints one JSON line per photo: faces found (raw detections) and
 * the fastest and the median of `repeat` calls per column.
 *
 *   node bench/detect_ab.mjs JOB.json
 *
 * JOB: {bundle, before (path of the other copy's static/facepack/mtcnn.js), repeat,
 *       images: [{name, path, width, height}]} (raw RGB, tests/jsharness.py:write_raw)
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

import { useBackend } from '../static/facepack/backend.js';
import { resizeForDetection } from '../static/facepack/input.js';
import { loadManifest, loadModel, manifestEntry } from '../static/facepack/io.js';
import * as now from '../static/facepack/mtcnn.js';
import { detectorParams } from '../static/facepack/options.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const before = await import(pathToFileURL(job.before).href);
await useBackend('wasm');
const manifest = await loadManifest(job.bundle);
const nets = {};
for (const role of ['pnet', 'rnet', 'onet']) nets[role] = await loadModel(job.bundle, manifestEntry(manifest, `mtcnn_${role}`));
const spec = manifest.spec;
const fast = spec.mtcnn_presets.fast.min_face_size_px;
const columns = [['before', before, spec.mtcnn.min_face_size_px], ['after', now, spec.mtcnn.min_face_size_px],
  ['fast', now, fast]];
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const item of job.images) {
  const image = tf.tensor3d(new Uint8Array(readFileSync(item.path)), [item.height, item.width, 3], 'float32');
  const det = await resizeForDetection(image, spec);
  const values = await det.image.data();
  const ms = Object.fromEntries(columns.map(([key]) => [key, []]));
  const faces = {};
  for (let i = 0; i < job.repeat; i++) {
    for (const [key, lib, minFaceSize] of columns) {
      const t0 = performance.now();
      const boxes = await lib.detectFaces(nets, det.image, detectorParams(spec, minFaceSize), values);
      ms[key].push(performance.now() - t0);
      faces[key] = boxes.length;
    }
  }
  const pick = (fn) => Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(fn(v))]));
  process.stdout.write(`${JSON.stringify({ name: item.name, faces, min_ms: pick((v) => Math.min(...v)), median_ms: pick(median) })}\n`);
  tf.dispose(det.resized ? [image, det.image] : [image]);
}
