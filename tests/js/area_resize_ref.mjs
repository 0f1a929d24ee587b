/**
 * Node runner for tests/test_mtcnn_pyramid.py:test_sweep_equals_the_previous_table_version: whole
 * P-Net pyramids through static/facepack/ops/area_resize.js:AreaResizer (planned: the small levels
 * from one sweep, as mtcnn.js:proposeBoxes asks) against the previous version's prefix table
 * (tests/js/ref/area_resize_0466c5e.js, each level alone), on generated photos.
 *
 *   node tests/js/area_resize_ref.mjs JOB.json  ->  {pyramids, levels, swept, values, differing}
 *
 * JOB: {sizes: [[h, w], ...], channels: [1, 3], offsets: [0, 127.5], dtypes: ['float32', 'uint8'],
 *       minFaceSize, scaleFactor, minSize, minLevel}. differing: output values not bit-identical.
 */
import { readFileSync } from 'node:fs';

import { AreaResizer } from '../../static/facepack/ops/area_resize.js';
import { buildScalePyramid, scaledShape } from '../../static/facepack/ops/boxes.js';
import { AreaResizer as Previous } from './ref/area_resize_0466c5e.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let pyramids = 0; let levels = 0; let swept = 0; let values = 0; let differing = 0;
for (const [h, w] of job.sizes) {
  for (const c of job.channels) {
    for (const dtype of job.dtypes) {
      const data = dtype === 'uint8' ? new Uint8Array(h * w * c) : new Float32Array(h * w * c);
      let seed = h * 7919 + w * 31 + c;
      for (let i = 0; i < data.length; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        data[i] = dtype === 'uint8' ? seed >>> 24 : (seed >>> 8) / 65536; // 0..255.99, not integers
      }
      const shapes = buildScalePyramid(w, h, job.minFaceSize, job.scaleFactor, job.minSize)
        .map((s) => scaledShape(h, w, s)).filter(([a, b]) => Math.min(a, b) >= job.minLevel);
      for (const offset of job.offsets) {
        const now = new AreaResizer(data, h, w, c, offset).plan(shapes);
        const before = new Previous(data, h, w, c, offset);
        for (const [oh, ow] of shapes) {
          swept += now.byPrefix(oh) ? 1 : 0;
          const a = now.resize(oh, ow); const b = before.resize(oh, ow);
          values += a.length;
          for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differing += 1;
          levels += 1;
        }
        pyramids += 1;
      }
    }
  }
}
process.stdout.write(JSON.stringify({ pyramids, levels, swept, values, differing }));
