/**
 * Node runner for tests/test_guided.py: guided backprop / guided Grad-CAM of the bundle's beauty
 * models on given crops, once per backend, plus the library's refusal and restore checks.
 *
 *   node tests/js/guided.mjs JOB.json  ->  {results: {backend: {guided, guidedGradcam, gradcam, tensorsLeaked}}, checks}
 *
 * JOB: {bundle, backends: ['cpu', 'wasm'], crops: {path (float32 raw), n, size},
 *   explain?: {path (RGB bytes), width, height, faces: [{box}]}} (explain runs on the last backend).
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { checkGuided, createGuidedExplainer, GUIDED_BATCH_FACES, guidedMaps, withGuidedRelu, withUnfusedLayers } from '../../static/facepack/guided.js';
import { loadManifest, loadModel, manifestEntry } from '../../static/facepack/io.js';
import { fuseLayersModel } from '../../static/facepack/ops/fuse_layers.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const manifest = await loadManifest(job.bundle);
const buf = readFileSync(job.crops.path);
const cropValues = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const { n, size } = job.crops;
const results = {};
for (const backend of job.backends) {
  await useBackend(backend);
  const models = {
    features: await loadModel(job.bundle, manifestEntry(manifest, 'beauty_features')),
    head: await loadModel(job.bundle, manifestEntry(manifest, 'beauty_head')),
  };
  const crops = tf.tensor4d(cropValues, [n, size, size, 3]);
  const before = tf.memory().numTensors;
  const t0 = performance.now();
  const maps = guidedMaps(models, crops, manifest.spec.beauty.bins);
  const ms = performance.now() - t0;
  const out = {};
  for (const [key, t] of Object.entries(maps)) out[key] = Array.from(await t.data());
  tf.dispose(Object.values(maps));
  results[backend] = { ...out, ms, tensorsLeaked: tf.memory().numTensors - before };
  crops.dispose();
  models.features.model.dispose();
  models.head.model.dispose();
}

let explained = null;
if (job.explain) {
  const before = tf.memory().numTensors;
  const explainer = await createGuidedExplainer(job.bundle);
  const e = job.explain;
  const maps = await explainer.explain({ data: new Uint8Array(readFileSync(e.path)), width: e.width, height: e.height }, e.faces);
  // A crowd (job.crowd faces cycling through e.faces shifted by 0, 7, 14 px) in one explain: batched
  // (GUIDED_BATCH_FACES), the same maps as one face per call, no tensors kept across calls.
  let crowd = null;
  if (job.crowd) {
    const photo = { data: new Uint8Array(readFileSync(e.path)), width: e.width, height: e.height };
    const box = e.faces[0].box;
    const distinct = [0, 7, 14].map((d) => ({ box: { ...box, x: box.x + d, y: box.y + d } }));
    const single = [];
    for (const f of distinct) single.push((await explainer.explain(photo, [f]))[0]);
    const faces = Array.from({ length: job.crowd }, (_, i) => distinct[i % distinct.length]);
    const counts = [];
    let crowdDiff = 0;
    for (let call = 0; call < 2; call += 1) {
      const t = Date.now();
      const got = await explainer.explain(photo, faces);
      counts.push({ numTensors: tf.memory().numTensors, ms: Date.now() - t, n: got.length });
      got.forEach((m, i) => {
        const want = single[i % distinct.length];
        for (const k of ['guided', 'guidedGradcam']) {
          crowdDiff = Math.max(crowdDiff, m[k].data.reduce((acc, v, j) => Math.max(acc, Math.abs(v - want[k].data[j])), 0));
        }
      });
    }
    const distinctDiff = single[0].guided.data.reduce((acc, v, j) => Math.max(acc, Math.abs(v - single[1].guided.data[j])), 0);
    crowd = { counts, crowdDiff, distinctDiff, batch: GUIDED_BATCH_FACES };
  }
  explainer.dispose();
  // The same with an analyzer's fused models shared (opts.models): equal maps, the fusion put back.
  const fusedSet = {
    features: await loadModel(job.bundle, manifestEntry(manifest, 'beauty_features')),
    head: await loadModel(job.bundle, manifestEntry(manifest, 'beauty_head')),
  };
  const chains = fuseLayersModel(fusedSet.features.model) + fuseLayersModel(fusedSet.head.model);
  const ownCalls = () => fusedSet.features.model.layers.filter((l) => Object.prototype.hasOwnProperty.call(l, 'call')).length;
  const callsBefore = ownCalls();
  const side = fusedSet.features.entry.input_size;
  const probe = tf.ones([1, side, side, 3]);
  const outBefore = fusedSet.features.model.predict(probe);
  const sharedExplainer = await createGuidedExplainer(job.bundle, { manifest, models: fusedSet });
  const sharedMaps = await sharedExplainer.explain({ data: new Uint8Array(readFileSync(e.path)), width: e.width, height: e.height }, e.faces);
  sharedExplainer.dispose();
  const outAfter = fusedSet.features.model.predict(probe);
  const diff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  const sharedDiff = Math.max(...maps.flatMap((m, i) => [diff(m.guided.data, sharedMaps[i].guided.data),
    diff(m.guidedGradcam.data, sharedMaps[i].guidedGradcam.data)]));
  const shared = { chains, callsBefore, callsAfter: ownCalls(), sharedDiff,
    outputChange: diff(await outBefore.data(), await outAfter.data()), stillUsable: fusedSet.features.model.layers.length > 0 };
  tf.dispose([probe, outBefore, outAfter]);
  fusedSet.features.model.dispose();
  fusedSet.head.model.dispose();
  explained = {
    backend: tf.getBackend(),
    faces: maps.map((m) => ({ square: m.square, crop_size: m.crop_size, guided: Array.from(m.guided.data),
      guidedGradcam: Array.from(m.guidedGradcam.data) })),
    shared,
    crowd,
    tensorsLeaked: tf.memory().numTensors - before,
  };
}

// Checks (names are asserted by the test): refusal of other activations, gradients restored.
const checks = {};
const swish = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [4, 4, 3], filters: 2, kernelSize: 1, name: 'stem' }),
  tf.layers.activation({ activation: 'swish', name: 'stem_activation' })] });
for (const [name, loaded] of [['swish', { model: swish, format: 'layers-model', entry: { path: 'swish' } }],
  ['graph', { model: null, format: 'graph-model', entry: { path: 'beauty_features' } }]]) {
  try {
    checkGuided(loaded);
    checks[name] = 'accepted';
  } catch (err) {
    checks[name] = `${err.code}: ${err.message}`;
  }
}
swish.dispose();
// A model fused in place (what pipeline.js:loadModelSets does) is refused.
const fused = await loadModel(job.bundle, manifestEntry(manifest, 'beauty_features'));
checks.fused_chains = fuseLayersModel(fused.model);
try {
  checkGuided(fused);
  checks.fused = 'accepted';
} catch (err) {
  checks.fused = `${err.code}: ${err.message}`;
}
fused.model.dispose();
// withUnfusedLayers puts back a call a layer already had as its own property (and removes its own).
const plain = await loadModel(job.bundle, manifestEntry(manifest, 'beauty_features'));
const [convA, convB] = plain.model.layers.filter((l) => l.getClassName() === 'Conv2D');
const ownCall = (inputs) => Object.getPrototypeOf(convA).call.call(convA, inputs);
convA.call = ownCall;
withUnfusedLayers(plain.model, () => { checks.unfused_during = convB.call !== Object.getPrototypeOf(convB).call; });
checks.own_call_restored = convA.call === ownCall;
checks.prototype_call_restored = !Object.prototype.hasOwnProperty.call(convB, 'call');
plain.model.dispose();
const x = tf.tensor1d([-1, 2, 3, 7]);
const dy = tf.tensor1d([1, -1, 1, 1]);
const vjp = (f) => Array.from(tf.grad((v) => tf.sum(tf.mul(f(v), dy)))(x).dataSync());
checks.relu_guided = withGuidedRelu(() => vjp(tf.relu));
checks.relu6_guided = withGuidedRelu(() => vjp(tf.relu6));
checks.relu_after = vjp(tf.relu);
checks.relu6_after = vjp(tf.relu6);
tf.dispose([x, dy]);
process.stdout.write(JSON.stringify({ results, checks, explained }));
