/**
 * Node runner timing static/facepack/ops/area_crop.js:areaCrop against one plain pass over the same
 * values (tests/test_crop_area.py:test_area_crop_js_costs_about_one_pass_over_the_square).
 *
 *   node tests/js/area_crop_speed.mjs JOB.json  ->  {area_ms, pass_ms, ratio}
 *
 * JOB: {side (photo and square side, pixels), size (crop side), reps}. The photo is side x side x 3
 * float32 (as `await image.data()` gives it); the square covers it. area_ms / pass_ms: the fastest
 * of `reps` runs, process CPU time; the pass is a float64 sum over every value (the least any area
 * crop must do), so their ratio does not depend on the machine or its load.
 */
import { readFileSync } from 'node:fs';

import { areaCrop } from '../../static/facepack/ops/area_crop.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { side, size, reps } = job;
const pixels = new Float32Array(side * side * 3);
let seed = 1;
for (let i = 0; i < pixels.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; pixels[i] = seed >>> 24; }

function cpuMs(fn) {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1000;
}

let sink = 0;
const pass = () => { let acc = 0; for (let i = 0; i < pixels.length; i++) acc += pixels[i]; sink += acc; };
const area = () => { sink += areaCrop(pixels, [side, side, 3], [0.25, 0.5, side - 0.75], size, 0)[0]; };
let areaMs = Infinity; let passMs = Infinity;
for (let r = 0; r < reps; r++) { // interleaved: the same load on both
  passMs = Math.min(passMs, cpuMs(pass));
  areaMs = Math.min(areaMs, cpuMs(area));
}
process.stdout.write(JSON.stringify({ area_ms: areaMs, pass_ms: passMs, ratio: areaMs / passMs, sink }));
