/**
 * Node runner for tests/test_area_patches_reuse.py: the R/O-Net area patcher
 * (static/facepack/ops/area_patches.js) gives the same bits when its integral image lives in a
 * buffer that a released patcher of another photo (another size, other values) left behind, as a
 * camera loop does, and when a released patcher is used again.
 *
 *   node tests/js/area_patches_reuse.mjs JOB.json  ->  {cases: [{reused, differing, values}],
 *     release_after_drop: {spare_bytes, next_photo_spare_bytes}}
 *
 * JOB: {seed, cases: [[height, width], ...]} photos made here from the seed (grey levels
 * 0..255 and a pad value), 12 boxes each (inside, straddling and outside the photo), sizes 24, 48.
 */
import { readFileSync } from 'node:fs';

import {
  AreaPatcher, integralImage, releaseSpareBuffers, spareBufferBytes,
} from '../../static/facepack/ops/area_patches.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let seed = job.seed;
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };

/** Reference patches: the table built in fresh memory, then the same patcher code. */
function fresh(pixels, h, w, pad, boxes, size) {
  const p = new AreaPatcher(pixels, h, w, 3, pad);
  p.table = integralImage(pixels, h, w, 3, pad);
  return p.patches(boxes, size);
}

const bits = (a) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const cases = [];
let previous = null; // the buffer the last released patcher left
for (const [h, w] of job.cases) {
  const pixels = new Float32Array(h * w * 3).map(() => Math.floor(random() * 256));
  const pad = Math.floor(random() * 256);
  const boxes = Array.from({ length: 12 }, () => {
    const side = 2 + random() * 1.5 * Math.max(h, w);
    const x1 = (random() - 0.4) * w; const y1 = (random() - 0.4) * h;
    return [x1, y1, x1 + side * (0.6 + 0.8 * random()), y1 + side];
  });
  const patcher = new AreaPatcher(pixels, h, w, 3, pad);
  let differing = 0; let values = 0;
  for (const size of [24, 48]) {
    const want = bits(fresh(pixels, h, w, pad, boxes, size));
    const got = bits(patcher.patches(boxes, size));
    values += want.length;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) differing += 1;
  }
  const reused = previous !== null && patcher.table.buffer === previous;
  const table = patcher.table.buffer;
  patcher.release();
  const again = bits(patcher.patches(boxes, 24)); // rebuilt after release (takes the spare back)
  const want = bits(fresh(pixels, h, w, pad, boxes, 24));
  for (let i = 0; i < want.length; i++) if (again[i] !== want[i]) differing += 1;
  values += want.length;
  patcher.release();
  previous = table;
  cases.push({ reused, differing, values });
}

// releaseSpareBuffers() (analyzer.dispose()) while a patcher's table is in use: that patcher's
// release() afterwards must not refill the spare buffer (the memory dispose meant to free), and
// the next photo's patcher still hands its buffer on as before.
const [h, w] = job.cases[0];
const pixels = new Float32Array(h * w * 3).map(() => Math.floor(random() * 256));
const inUse = new AreaPatcher(pixels, h, w, 3, 0);
inUse.patches([[0, 0, w / 2, h / 2]], 24);
releaseSpareBuffers();
inUse.release();
const afterDrop = spareBufferBytes();
const next = new AreaPatcher(pixels, h, w, 3, 0);
next.patches([[0, 0, w / 2, h / 2]], 24);
next.release();
process.stdout.write(JSON.stringify({
  cases, release_after_drop: { spare_bytes: afterDrop, next_photo_spare_bytes: spareBufferBytes() },
}));
