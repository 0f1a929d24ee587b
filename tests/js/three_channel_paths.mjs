/**
 * Node runner for tests/test_three_channel_paths.py: the 3-channel fast paths of
 * ops/bounded_crop.js:cropAndResizePixels (x-blended rows reused across output rows) and
 * ops/area_patches.js:AreaPatcher.patches (channels unrolled) against their general loops, run on
 * each channel alone as a 1-channel image: the same bits for every value.
 *
 *   node tests/js/three_channel_paths.mjs JOB.json  ->  {crop: {cases, values, differing}, patches: {...}}
 *
 * JOB: {seed, cases}: random photos (up to 70 px a side, grey levels or signed floats), boxes inside,
 * straddling and outside the photo, up- and downscaled, made here from the seed.
 */
import { readFileSync } from 'node:fs';

import { cropAndResizePixels } from '../../static/facepack/ops/bounded_crop.js';
import { AreaPatcher } from '../../static/facepack/ops/area_patches.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let seed = job.seed;
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const channel = (pixels, c) => pixels.filter((_, i) => i % 3 === c);
const bits = (a) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Differing values between `three` ([..., 3]) and the three 1-channel results interleaved. */
function compare(three, ones) {
  const a = bits(three);
  let differing = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== bits(ones[i % 3])[Math.floor(i / 3)]) differing += 1;
  return differing;
}

const crop = { cases: 0, values: 0, differing: 0 };
const patches = { cases: 0, values: 0, differing: 0 };
for (let t = 0; t < job.cases; t++) {
  const h = 1 + Math.floor(random() * 70); const w = 1 + Math.floor(random() * 70);
  const pixels = new Float32Array(h * w * 3).map(() => (t % 2 ? Math.floor(random() * 256) : (random() - 0.5) * 1000));
  const pad = t % 3 ? 0 : random() * 255;
  const boxes = Array.from({ length: 1 + Math.floor(random() * 5) }, () => {
    const y1 = random() * 1.4 - 0.2; const x1 = random() * 1.4 - 0.2;
    return [y1, x1, y1 + (random() - 0.2) * 1.2, x1 + (random() - 0.2) * 1.2];
  });
  const size = [1 + Math.floor(random() * 60), 1 + Math.floor(random() * 60)];
  const three = cropAndResizePixels(pixels, [h, w, 3], boxes, size, pad);
  crop.differing += compare(three, [0, 1, 2].map((c) => cropAndResizePixels(channel(pixels, c), [h, w, 1], boxes, size, pad)));
  crop.values += three.length; crop.cases += 1;
  const pxBoxes = boxes.map(([y1, x1, y2, x2]) => [x1 * w, y1 * h, x2 * w + 0.01, y2 * h + 0.01]); // [x1, y1, x2, y2] px
  const side = [2, 3, 12, 24, 48][t % 5];
  const got = new AreaPatcher(pixels, h, w, 3, pad).patches(pxBoxes, side);
  patches.differing += compare(got, [0, 1, 2].map((c) => new AreaPatcher(channel(pixels, c), h, w, 1, pad).patches(pxBoxes, side)));
  patches.values += got.length; patches.cases += 1;
}
process.stdout.write(JSON.stringify({ crop, patches }));
