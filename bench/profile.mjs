/**
 * Where one analyze() spends its time, stage by stage, in Node (WASM): the detection downscale,
 * the P-Net pyramid (AREA resize, P-Net, per-level NMS), the cross-scale NMS, R-Net (patches,
 * net, NMS), O-Net (patches, net, NMS), the crops, keypoints, beauty and Grad-CAM, and how many
 * tensors are read back to JavaScript. The stages are those of static/facepack/mtcnn.js and
 * pipeline.js called one by one (the same functions; only the timers are added), issue 14.
 *
 *   node bench/profile.mjs JOB.json  ->  one JSON line per photo on stdout
 *
 * JOB: {bundle, repeat, heatmaps?, options?: analyze options, images: [{name, path, width, height}]}
 * (raw RGB, tests/jsharness.py:write_raw). Per stage: the fastest of `repeat` calls, in ms (wall
 * clock; total_cpu: the process's CPU ms, which a busy machine inflates less) and in cpu_ms (the
 * process's CPU ms per stage, fastest of `repeat`: on a loaded machine the comparable ones); "counts" and
 * "readbacks" of the last call. The sum of the stages is within a few ms of a whole analyze.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../static/facepack/backend.js';
import { decodeInput, resizeForDetection } from '../static/facepack/input.js';
import { loadManifest } from '../static/facepack/io.js';
import * as mtcnn from '../static/facepack/mtcnn.js';
import { AreaResizer } from '../static/facepack/ops/area_resize.js';
import {
  adjustBoxes, adjustLandmarks, buildScalePyramid, generateBoundingBoxes, limitBoxes, pickMatches, replaceScores,
  resizeToSquare, scaledShape, upscaleBoxes,
} from '../static/facepack/ops/boxes.js';
import { nms } from '../static/facepack/ops/nms.js';
import { detectorParams, resolveAnalyzeOptions } from '../static/facepack/options.js';
import { describeFaces, filterFaces, loadModelSets, warmUp } from '../static/facepack/pipeline.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
await useBackend('wasm');
const manifest = await loadManifest(job.bundle);
const spec = manifest.spec;
const sets = await loadModelSets(job.bundle, manifest, ['detector', 'beauty', 'keypoints']);
warmUp(sets, spec);

// Readbacks: every Tensor.data / dataSync / array / arraySync call.
let readbacks = 0;
for (const name of ['data', 'dataSync', 'array', 'arraySync']) {
  const orig = tf.Tensor.prototype[name];
  tf.Tensor.prototype[name] = function counted(...args) { readbacks += 1; return orig.apply(this, args); };
}

/** detectFaces, stage by stage, with `lap`. */
async function detectTimed(nets, image, p, values, lap, counts) {
  const [height, width, channels] = image.shape;
  const scales = buildScalePyramid(width, height, p.minFaceSize, p.scaleFactor, p.minSize);
  const levels = scales.map((scale) => [scale, ...scaledShape(height, width, scale)])
    .filter(([, h, w]) => mtcnn.pnetAccepts(nets.pnet, h, w));
  const resizer = new AreaResizer(values, height, width, channels, p.normalizeOffset).plan(levels.map(([, h, w]) => [h, w]));
  lap('pnet_setup');
  const perScale = [];
  counts.levels = [];
  for (const [scale, h, w] of levels) {
    const pixels = resizer.resize(h, w);
    lap('pyramid_resize');
    const level = tf.tensor4d(pixels, [1, h, w, channels]);
    const out = await mtcnn.runNet(nets.pnet, 'pnet', level); // one readback, as detectFaces
    level.dispose();
    lap('pnet_net');
    const [, mapH, mapW] = out.probShape;
    const found = generateBoundingBoxes(out.bbox_reg, out.prob, mapH, mapW, p.thresholdPnet, 2, p.minSize);
    perScale.push(nms(upscaleBoxes(found, scale), p.nmsPnet1, 'union', false));
    counts.levels.push(`${h}x${w}:${found.length}`);
    lap('pnet_nms_level');
  }
  const flat = perScale.flat();
  const merged = nms(flat, p.nmsPnet2, 'union', true);
  let boxes = resizeToSquare(merged);
  counts.pnet_raw = flat.length;
  counts.rnet_in = boxes.length;
  const how = mtcnn.patchSampler(image, p, values); // spec.mtcnn.patch_resize, as detectFaces
  lap('pnet_nms_all');
  if (boxes.length) {
    const patches = await mtcnn.extractPatches(image, boxes, p.rnetInput, p.patchPadValue, how);
    lap('rnet_patches');
    const out = await mtcnn.runNet(nets.rnet, 'rnet', patches);
    patches.dispose();
    lap('rnet_net');
    let r = replaceScores(boxes, out.prob);
    r = adjustBoxes(r, out.bbox_reg);
    r = pickMatches(r, p.thresholdRnet);
    counts.rnet_pass = r.length;
    r = nms(r, p.nmsRnet, 'union', true);
    boxes = resizeToSquare(r);
    lap('rnet_nms');
  }
  counts.onet_in = boxes.length;
  if (boxes.length) {
    const patches = await mtcnn.extractPatches(image, boxes, p.onetInput, p.patchPadValue, how);
    lap('onet_patches');
    const out = await mtcnn.runNet(nets.onet, 'onet', patches);
    patches.dispose();
    lap('onet_net');
    const landmarks = adjustLandmarks(boxes, out.landmarks, p.landmarkCount);
    let r = replaceScores(boxes, out.prob);
    r = adjustBoxes(r, out.bbox_reg).map((b, i) => ({ ...b, landmarks: landmarks[i] }));
    r = pickMatches(r, p.thresholdOnet);
    boxes = nms(r, p.nmsOnet, 'min', true);
    lap('onet_nms');
  }
  return limitBoxes(boxes, width, height);
}

for (const item of job.images) {
  const raw = { data: new Uint8Array(readFileSync(item.path)), width: item.width, height: item.height };
  const opts = resolveAnalyzeOptions({ ...(job.options ?? {}), heatmaps: job.heatmaps ?? false }, spec);
  const best = {};
  const bestCpu = {};
  let counts = {};
  let lastReadbacks = 0;
  for (let r = 0; r < job.repeat; r++) {
    const ms = {};
    const cpuMs = {};
    const cpuNow = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
    let t = performance.now();
    let c = cpuNow();
    const t0 = t;
    const cpu0 = process.cpuUsage();
    const lap = (key) => {
      const now = performance.now();
      const cNow = cpuNow();
      ms[key] = (ms[key] ?? 0) + now - t;
      cpuMs[key] = (cpuMs[key] ?? 0) + cNow - c;
      t = now;
      c = cNow;
    };
    readbacks = 0;
    counts = {};
    const { image, pixels: decoded } = await decodeInput(raw, spec); // as index.js:analyze
    const pixels = decoded ?? await image.data();
    lap('decode');
    const det = await resizeForDetection(image, spec, pixels);
    lap('detect_downscale');
    const p = detectorParams(spec, opts.minFaceSize, opts.detectorPreset);
    const boxes = await detectTimed(sets.detector, det.image, p, det.values, lap, counts);
    const faces = filterFaces(mtcnn.boxesToFaces(boxes, det.sx, det.sy, spec.landmarks5), opts.minConfidence,
      opts.minBoxSize).slice(0, opts.maxFaces ?? undefined);
    if (det.resized) det.image.dispose();
    lap('detect_tail');
    counts.faces = faces.length;
    await describeFaces(sets, spec, image, faces, opts, lap, pixels);
    image.dispose();
    ms.total = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    ms.total_cpu = (cpu.user + cpu.system) / 1000; // this process's CPU time: less sensitive to a loaded machine
    for (const [k, v] of Object.entries(ms)) best[k] = Math.min(best[k] ?? Infinity, v);
    for (const [k, v] of Object.entries(cpuMs)) bestCpu[k] = Math.min(bestCpu[k] ?? Infinity, v);
    lastReadbacks = readbacks;
  }
  const round = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  process.stdout.write(`${JSON.stringify({ name: item.name, ms: round(best), cpu_ms: round(bestCpu), counts, readbacks: lastReadbacks })}\n`);
}
