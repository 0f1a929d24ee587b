/**
 * Node runner for tests/test_js_api.py: the public API's contract, one named check each.
 *
 *   node tests/js/api.mjs JOB.json  ->  {checks: {name: {ok, detail}}, params, ...}
 *
 * JOB: {bundle, photo: {path, width, height} (RGB, one face), pair: {...} (two faces)}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { createFaceAnalyzer, load } from '../../static/facepack/index.js';
import { wasmThreadCount } from '../../static/facepack/backend.js';
import { loadManifest } from '../../static/facepack/io.js';
import { detectorParams, resolveAnalyzeOptions } from '../../static/facepack/options.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const checks = {};

async function check(name, fn) {
  if (process.env.API_TRACE) console.error("check:", name);
  try {
    const detail = await fn();
    checks[name] = { ok: detail === undefined || detail === true, detail: detail === true ? null : detail ?? null };
  } catch (err) {
    checks[name] = { ok: false, detail: `threw: ${err.message}` };
  }
}

async function throwsMentioning(fn, ...words) {
  try {
    await fn();
  } catch (err) {
    const missing = words.filter((w) => !err.message.includes(w));
    return missing.length ? `error "${err.message}" does not mention ${missing.join(', ')}` : true;
  }
  return 'did not throw';
}

const rawRgb = (item) => ({ data: new Uint8Array(readFileSync(item.path)), width: item.width, height: item.height });
const photo = rawRgb(job.photo);
const pair = rawRgb(job.pair);
const sameFaces = (a, b) => JSON.stringify(a.map((f) => [f.box, f.score, f.landmarks5]))
  === JSON.stringify(b.map((f) => [f.box, f.score, f.landmarks5]));

// --- settings ---------------------------------------------------------------------------------
await check('unknown modelConfig key names the key', () => throwsMentioning(
  () => createFaceAnalyzer({ modelUrl: job.bundle, backnd: 'wasm' }), 'backnd'));
await check('bad backend names the value', () => throwsMentioning(
  () => createFaceAnalyzer({ modelUrl: job.bundle, backend: 'gpu' }), 'backend', 'gpu'));
await check('bad wasmThreads names the option and the value', async () => {
  const cases = [['two', '"two"'], [0, 'got 0'], [9, 'got 9'], [1.5, 'got 1.5'], [null, 'got null'], [NaN, 'got NaN'],
    [Infinity, 'got Infinity'], [2n, 'got 2n (a BigInt)'], [new Number(2), 'got 2 (a Number object)']]; // eslint-disable-line no-new-wrappers
  for (const [bad, says] of cases) {
    const got = await throwsMentioning(() => createFaceAnalyzer({ modelUrl: job.bundle, wasmThreads: bad }),
      'modelConfig.wasmThreads', says);
    if (got !== true) return `${String(bad)}: ${got}`;
  }
  return true;
});
await check('wasmThreadCount: auto is TF.js half of the cores, a number is itself', () => {
  const got = [['auto', 1], ['auto', 2], ['auto', 3], ['auto', 4], ['auto', 8], ['auto', 32], ['auto', undefined], [2, 2], [8, 1]]
    .map(([r, c]) => wasmThreadCount(r, c));
  return JSON.stringify(got) === JSON.stringify([1, 1, 1, 2, 4, 8, 1, 2, 8]) ? true : JSON.stringify(got);
});
await check('missing modelUrl is an error', () => throwsMentioning(() => createFaceAnalyzer({}), 'modelUrl'));
await check('models without the detector is an error', () => throwsMentioning(
  () => createFaceAnalyzer({ modelUrl: job.bundle, models: ['beauty'] }), 'detector'));
await check('unknown model set names it', () => throwsMentioning(
  () => createFaceAnalyzer({ modelUrl: job.bundle, models: ['detector', 'age'] }), 'age'));
await check('missing bundle names the file', () => throwsMentioning(
  () => createFaceAnalyzer({ modelUrl: `${job.bundle}/nowhere`, backend: 'wasm' }), 'nowhere', 'manifest.json'));

// --- full analyzer ----------------------------------------------------------------------------
const coresBefore = globalThis.navigator?.hardwareConcurrency;
const warned = [];
const consoleWarn = console.warn;
console.warn = (...args) => warned.push(args.join(' '));
const analyzer = await createFaceAnalyzer({ modelUrl: job.bundle, backend: 'wasm', wasmThreads: 2 });
(await createFaceAnalyzer({ modelUrl: job.bundle, backend: 'wasm', wasmThreads: 2, models: ['detector'] })).dispose();
console.warn = consoleWarn;
await check('Node WASM runs 1 thread whatever wasmThreads asks, says so once, navigator untouched', () => (
  analyzer.wasmThreads === 1 && globalThis.navigator?.hardwareConcurrency === coresBefore
    && !Object.prototype.hasOwnProperty.call(globalThis.navigator ?? {}, 'hardwareConcurrency')
    && warned.length === 1 && warned[0].includes('wasmThreads 2 not applied') && warned[0].includes('Node')
    ? true : `wasmThreads ${analyzer.wasmThreads}, cores ${coresBefore} -> ${globalThis.navigator?.hardwareConcurrency}, `
      + `warnings ${JSON.stringify(warned)}`));
const base = await analyzer.analyze(photo, { heatmaps: true });
await check('unknown analyze option names the key', () => throwsMentioning(
  () => analyzer.analyze(photo, { max_faces: 1 }), 'max_faces'));
await check('bad maxFaces names the option', () => throwsMentioning(
  () => analyzer.analyze(photo, { maxFaces: 0 }), 'maxFaces'));
await check('bad heatmaps names the option', () => throwsMentioning(
  () => analyzer.analyze(photo, { heatmaps: 'yes' }), 'heatmaps'));
await check('misspelt minConfidance names the key', () => throwsMentioning(
  () => analyzer.analyze(photo, { minConfidance: 0.5 }), 'minConfidance'));
await check('bad minConfidence names the option', () => throwsMentioning(
  () => analyzer.analyze(photo, { minConfidence: 1.5 }), 'minConfidence'));
await check('bad minBoxSize names the option', () => throwsMentioning(
  () => analyzer.analyze(photo, { minBoxSize: -1 }), 'minBoxSize'));
await check('face filter defaults come from the manifest', () => {
  const spec = analyzer.manifest.spec;
  const own = resolveAnalyzeOptions({}, spec);
  if (own.minConfidence !== spec.face_filter.min_confidence || own.minBoxSize !== spec.face_filter.min_box_size_px) {
    return `defaults ${own.minConfidence}, ${own.minBoxSize} vs manifest ${JSON.stringify(spec.face_filter)}`;
  }
  const other = resolveAnalyzeOptions({}, { ...spec, face_filter: { min_confidence: 0.125, min_box_size_px: 7 } });
  return other.minConfidence === 0.125 && other.minBoxSize === 7 ? true : JSON.stringify(other);
});
await check('a face exactly at both thresholds is kept, just above either is dropped', async () => {
  const f = base.faces[0];
  const side = Math.max(f.box.width, f.box.height);
  const at = await analyzer.analyze(photo, { minConfidence: f.score, minBoxSize: side });
  const overScore = await analyzer.analyze(photo, { minConfidence: Math.min(1, f.score + 1e-6), minBoxSize: 0 });
  const overSide = await analyzer.analyze(photo, { minConfidence: 0, minBoxSize: side + 1e-6 });
  const counts = [at.faces.length, overScore.faces.length, overSide.faces.length];
  return JSON.stringify(counts) === '[1,0,0]' ? true : `kept ${counts}`;
});
await check('bad input is described', () => throwsMentioning(() => analyzer.analyze('photo.jpg'), 'input', 'String'));
await check('wrong data length is described', () => throwsMentioning(
  () => analyzer.analyze({ data: new Uint8Array(10), width: 4, height: 4 }), 'RGBA', '10'));
await check('result shape', () => {
  const f = base.faces[0];
  const keys = JSON.stringify(Object.keys(f).sort());
  if (base.faces.length !== 1) return `expected 1 face, got ${base.faces.length}`;
  if (keys !== JSON.stringify(['beauty', 'box', 'heatmap', 'keypoints', 'landmarks5', 'score'])) return keys;
  if (JSON.stringify(Object.keys(f.box)) !== JSON.stringify(['x', 'y', 'width', 'height'])) return 'box keys';
  if (JSON.stringify(Object.keys(f.beauty).sort()) !== JSON.stringify(['distribution', 'score', 'score_1to5'])) return 'beauty keys';
  if (base.backend !== 'wasm') return `backend ${base.backend}`;
  if (base.image.width !== photo.width || base.image.height !== photo.height) return 'image size';
  const timingKeys = ['detect', 'crop', 'beauty', 'keypoints', 'gradcam', 'total'];
  if (!timingKeys.every((k) => typeof base.timings[k] === 'number')) return `timings ${JSON.stringify(base.timings)}`;
  return true;
});
await check('no heatmap unless asked', async () => {
  const r = await analyzer.analyze(photo);
  return r.faces.length === 1 && !('heatmap' in r.faces[0]) ? true : JSON.stringify(Object.keys(r.faces[0] ?? {}));
});
await check('RGBA, clamped, int32/float32 tensor and 4-channel tensor inputs give the same faces', async () => {
  const n = photo.width * photo.height;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    rgba.set(photo.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255; // opaque: the alpha rule (spec.alpha_rule) leaves the colours as they are
  }
  const t3 = tf.tensor3d(Int32Array.from(photo.data), [photo.height, photo.width, 3], 'int32');
  const t4 = tf.tensor3d(Float32Array.from(rgba), [photo.height, photo.width, 4]);
  const tf32 = tf.tensor3d(Float32Array.from(photo.data), [photo.height, photo.width, 3]);
  const before = tf.memory().numTensors;
  const results = [await analyzer.analyze({ data: rgba, width: photo.width, height: photo.height }),
    await analyzer.analyze(t3), await analyzer.analyze(t4), await analyzer.analyze(tf32)];
  const after = tf.memory().numTensors;
  const alive = !t3.isDisposed && !t4.isDisposed && !tf32.isDisposed && (await tf32.data()).length === photo.data.length;
  tf.dispose([t3, t4, tf32]);
  if (!alive) return 'analyze disposed the caller\'s tensor';
  if (after !== before) return `tensors ${before} -> ${after}`;
  const bad = results.findIndex((r) => !sameFaces(r.faces, base.faces));
  return bad === -1 ? true : `input ${bad} gave ${JSON.stringify(results[bad].faces.map((f) => f.box))}`;
});
await check('maxFaces keeps the most confident', async () => {
  const all = await analyzer.analyze(pair);
  if (all.faces.length < 2) return `expected 2 or more faces in the pair photo, got ${all.faces.length}`;
  if (all.faces.some((f, i) => i && f.score > all.faces[i - 1].score)) return 'not confidence descending';
  for (const maxFaces of [1, 2]) {
    const some = await analyzer.analyze(pair, { maxFaces });
    if (!sameFaces(some.faces, all.faces.slice(0, maxFaces))) return `maxFaces: ${maxFaces} differs`;
  }
  return true;
});
await check('minFaceSize above the face finds nothing', async () => {
  const r = await analyzer.analyze(photo, { minFaceSize: Math.min(photo.width, photo.height) });
  return r.faces.length === 0 ? true : `found ${r.faces.length}`;
});
await check('a large minFaceSize skips pyramid levels too small for P-Net', async () => {
  // The mtcnn package raises here (empty convolution output); the port skips those levels.
  const r = await analyzer.analyze(photo, { minFaceSize: 60 });
  if (r.faces.length !== 1) return `found ${r.faces.length}`;
  const a = r.faces[0].box;
  const b = base.faces[0].box;
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const iou = (ix * iy) / (a.width * a.height + b.width * b.height - ix * iy);
  return iou > 0.8 ? true : `IoU with the default detection ${iou}`;
});
const manifest = await loadManifest(job.bundle);
const params = detectorParams(manifest.spec, manifest.spec.mtcnn.min_face_size_px);
analyzer.dispose();
await check('analyze after dispose is an error', () => throwsMentioning(() => analyzer.analyze(photo), 'disposed'));

// --- subsets and fallback ---------------------------------------------------------------------
await check('detector only: no model fields, heatmaps refused', async () => {
  const det = await createFaceAnalyzer({ modelUrl: job.bundle, backend: 'wasm', models: ['detector'] });
  try {
    const r = await det.analyze(photo);
    if (!sameFaces(r.faces, base.faces)) return 'faces differ from the full analyzer';
    if (Object.keys(r.faces[0]).some((k) => ['beauty', 'keypoints', 'heatmap'].includes(k))) return 'has model fields';
    return throwsMentioning(() => det.analyze(photo, { heatmaps: true }), 'beauty');
  } finally {
    det.dispose();
  }
});
await check('webgl in Node throws (an explicit backend never changes silently)', async () => {
  try {
    (await createFaceAnalyzer({ modelUrl: job.bundle, backend: 'webgl', models: ['detector'] })).dispose();
    return 'did not throw';
  } catch (err) {
    return err.code === 'backend-unavailable' && /backend "webgl" could not start/.test(err.message) ? true : err.message;
  }
});
await check('every model set leaves no tensors behind (load, analyze, dispose)', async () => {
  const start = tf.memory().numTensors;
  for (const models of [['detector'], ['detector', 'keypoints'], ['detector', 'beauty']]) {
    const a = await createFaceAnalyzer({ modelUrl: job.bundle, backend: 'wasm', models });
    const before = tf.memory().numTensors;
    await a.analyze(photo, { heatmaps: models.includes('beauty') });
    if (tf.memory().numTensors !== before) return `${models}: ${before} -> ${tf.memory().numTensors}`;
    a.dispose();
  }
  return tf.memory().numTensors === start ? true : `after dispose: ${start} -> ${tf.memory().numTensors}`;
});

// --- generic loader ---------------------------------------------------------------------------
await check('generic load(): predict, no leaks, dispose', async () => {
  const start = tf.memory().numTensors;
  const net = await load(job.bundle, 'keypoints');
  const size = net.entry.input_size;
  const x = tf.zeros([2, size, size, 3]);
  const y = net.predict(x);
  const y2 = net.predict({ data: new Float32Array(size * size * 3), shape: [1, size, size, 3] });
  const shape = y.shape;
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(y, [0, 0], [1, -1]), y2))));
  const same = (await diff.data())[0] === 0;
  diff.dispose();
  tf.dispose([x, y, y2]);
  net.dispose();
  const z = tf.zeros([1, size, size, 3]);
  const disposedError = await throwsMentioning(() => net.predict(z), 'disposed');
  z.dispose();
  if (JSON.stringify(shape) !== JSON.stringify([2, net.entry.outputs[0].shape[1]])) return `shape ${shape}`;
  if (!same) return 'tensor and {data, shape} inputs differ';
  if (disposedError !== true) return disposedError;
  const leaked = tf.memory().numTensors - start;
  return leaked === 0 ? true : `${leaked} tensors left`;
});
await check('generic load() of an unknown name lists the models', () => throwsMentioning(
  () => load(job.bundle, 'age'), 'age', 'beauty_head', 'mtcnn_pnet'));

process.stdout.write(JSON.stringify({ checks, params, spec: manifest.spec, backend: tf.getBackend() }));
