/**
 * The beauty stage alone, several bundles interleaved call by call in ONE Node process (WASM),
 * wall and process-CPU ms (issue 14: a smaller beauty input). Each bundle's beauty_features and
 * beauty_head are loaded as the library loads them (io.js loadModel, then ops/fuse_layers.js
 * fuseLayersModel, as pipeline.js:loadModelSets; the number of fused chains is printed), warmed up,
 * then for each batch size N (1 and 25 by default) the library's own calls run on one random
 * N x S x S x 3 crop batch (0..255, S = the manifest's input_size):
 *   forward: beauty.js beautyForward + probs.data()  (pipeline.js stage 'beauty')
 *   gradcam: gradcam.js gradcamGrid on that fmap + grid.array()  (stage 'gradcam', heatmaps on)
 * Prints one JSON line per bundle, batch and part: median / p10 / p90 of the timed calls (the
 * warm-up calls are not timed), wall and CPU ms, and per face (median / N).
 *
 *   node bench/beauty_ab.mjs JOB.json
 *
 * JOB: {bundles: [{name, bundle (folder with manifest.json)}], calls?: 25, warmup?: 3, batches?: [1, 25]}
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';

import { useBackend } from '../static/facepack/backend.js';
import { beautyForward } from '../static/facepack/beauty.js';
import { gradcamGrid } from '../static/facepack/gradcam.js';
import { loadManifest, loadModel, manifestEntry } from '../static/facepack/io.js';
import { fuseLayersModel } from '../static/facepack/ops/fuse_layers.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const calls = job.calls ?? 25;
const warmup = job.warmup ?? 3;
const batches = job.batches ?? [1, 25];
await useBackend('wasm');
const threads = getThreadsCount();

const models = [];
for (const b of job.bundles) {
  const url = b.bundle;
  const manifest = await loadManifest(url);
  const set = {};
  const fused = {};
  for (const role of ['features', 'head']) {
    const loaded = await loadModel(url, manifestEntry(manifest, `beauty_${role}`));
    fused[role] = loaded.format === 'layers-model' ? fuseLayersModel(loaded.model) : 0;
    fused[`${role}_layers`] = loaded.model.layers?.length ?? null;
    set[role] = loaded;
  }
  const size = set.features.entry.input_size;
  models.push({ name: b.name, set, size, bins: manifest.spec.beauty.bins, fused });
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const pct = (v, q) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(q * v.length))];

async function once(m, crops) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const { fmap, probs } = beautyForward(m.set, crops);
  await probs.data();
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  const grid = gradcamGrid(m.set.head, fmap, m.bins);
  await grid.array();
  const t2 = performance.now();
  const c2 = process.cpuUsage(c0);
  tf.dispose([fmap, probs, grid]);
  const cpu = (c) => (c.user + c.system) / 1000;
  return { forward: [t1 - t0, cpu(c1)], gradcam: [t2 - t1, cpu(c2) - cpu(c1)] };
}

for (const n of batches) {
  const inputs = models.map((m) => tf.randomUniform([n, m.size, m.size, 3], 0, 255, 'float32', 7));
  const runs = models.map(() => ({ forward: { wall: [], cpu: [] }, gradcam: { wall: [], cpu: [] } }));
  for (let i = 0; i < warmup + calls; i++) {
    for (let k = 0; k < models.length; k++) {
      const r = await once(models[k], inputs[k]);
      if (i < warmup) continue;
      for (const part of ['forward', 'gradcam']) {
        runs[k][part].wall.push(r[part][0]);
        runs[k][part].cpu.push(r[part][1]);
      }
    }
  }
  tf.dispose(inputs);
  const r1 = (v) => Math.round(v * 10) / 10;
  models.forEach((m, k) => {
    for (const part of ['forward', 'gradcam']) {
      const { wall, cpu } = runs[k][part];
      process.stdout.write(`${JSON.stringify({
        model: m.name, input_size: m.size, batch: n, part, calls: wall.length, threads, fused: m.fused,
        wall_median: r1(median(wall)), wall_p10: r1(pct(wall, 0.1)), wall_p90: r1(pct(wall, 0.9)),
        cpu_median: r1(median(cpu)), cpu_p10: r1(pct(cpu, 0.1)), cpu_p90: r1(pct(cpu, 0.9)),
        wall_per_face: r1(median(wall) / n), cpu_per_face: r1(median(cpu) / n),
      })}\n`);
    }
  });
}
for (const m of models) { m.set.features.model.dispose(); m.set.head.model.dispose(); }
