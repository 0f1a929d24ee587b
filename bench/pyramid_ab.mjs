/**
 * The P-Net pyramid's AREA resize, this tree's static/facepack/ops/area_resize.js against another
 * copy's (e.g. the one `bench_speed_peers.py --before REF` unpacks under bench/results/before-REF/),
 * on generated photos of the detector's sizes: process-CPU ms of a whole pyramid (the default
 * pyramid: min face size, scale factor, min size and normalisation offset read from
 * facepack/spec.py:spec_dict()["mtcnn"] through options.js:detectorParams, as the page's detector
 * takes them; levels of >= 11 px, what the shipped P-Net accepts), fastest of `repeat`, and how
 * many output values differ in any bit (issue 14).
 *
 *   node bench/pyramid_ab.mjs OTHER/area_resize.js [repeat=10]
 *
 * Prints one JSON line per photo size: {size, levels, before_cpu_ms, after_cpu_ms, ratio, values, differing}.
 * The spec is read with the repository's Python ($PYTHON, else .venv/bin/python, else python3), so the
 * levels timed follow facepack/spec.py (not a possibly older manifest).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { AreaResizer } from '../static/facepack/ops/area_resize.js';
import { buildScalePyramid, scaledShape } from '../static/facepack/ops/boxes.js';
import { detectorParams } from '../static/facepack/options.js';

const [other, repeatArg] = process.argv.slice(2);
if (!other) throw new Error('usage: node bench/pyramid_ab.mjs OTHER/area_resize.js [repeat]');
const { AreaResizer: Before } = await import(pathToFileURL(other).href);
const repeat = Number(repeatArg ?? 10);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const venv = `${ROOT}.venv/bin/python`;
const python = process.env.PYTHON ?? (existsSync(venv) ? venv : 'python3');
const spec = JSON.parse(execFileSync(python, ['-c', 'import json; from facepack import spec; print(json.dumps(spec.spec_dict()))'],
  { cwd: ROOT, encoding: 'utf8' }));
const params = detectorParams(spec, spec.mtcnn.min_face_size_px);
const P_NET_MIN_LEVEL = 11; // the smallest level side the shipped P-Net accepts (mtcnn.js:pnetAccepts)
const PYRAMID = { minFaceSize: params.minFaceSize, scaleFactor: params.scaleFactor, minSize: params.minSize,
  minLevel: P_NET_MIN_LEVEL, offset: params.normalizeOffset };
const SIZES = [[512, 512], [1024, 817], [720, 1280], [996, 1280]];

function pyramid(Resizer, data, h, w) {
  const shapes = buildScalePyramid(w, h, PYRAMID.minFaceSize, PYRAMID.scaleFactor, PYRAMID.minSize)
    .map((s) => scaledShape(h, w, s)).filter(([a, b]) => Math.min(a, b) >= PYRAMID.minLevel);
  const resizer = new Resizer(data, h, w, 3, PYRAMID.offset);
  resizer.plan?.(shapes);
  return shapes.map(([a, b]) => resizer.resize(a, b));
}

function cpuMs(fn) {
  const u0 = process.cpuUsage();
  fn();
  const u = process.cpuUsage(u0);
  return (u.user + u.system) / 1000;
}

for (const [h, w] of SIZES) {
  let seed = h * 7919 + w;
  const data = new Float32Array(h * w * 3);
  for (let i = 0; i < data.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    data[i] = Math.floor((seed / 2 ** 32) * 256);
  }
  const a = pyramid(Before, data, h, w);
  const b = pyramid(AreaResizer, data, h, w);
  let values = 0, differing = 0;
  a.forEach((level, k) => level.forEach((v, i) => { values += 1; if (!Object.is(v, b[k][i])) differing += 1; }));
  let before = Infinity, after = Infinity;
  for (let r = 0; r < repeat; r++) { // interleaved, so that a busy spell hits both
    before = Math.min(before, cpuMs(() => pyramid(Before, data, h, w)));
    after = Math.min(after, cpuMs(() => pyramid(AreaResizer, data, h, w)));
  }
  const round = (x) => Math.round(x * 10) / 10;
  process.stdout.write(`${JSON.stringify({ size: `${w}x${h}`, levels: a.length, before_cpu_ms: round(before),
    after_cpu_ms: round(after), ratio: Math.round((after / before) * 100) / 100, values, differing })}\n`);
}
