/**
 * Node runner for tests/test_mtcnn_pyramid.py: the P-Net pyramid of one photo through
 * static/facepack/ops/area_resize.js:AreaResizer three ways: planned (the levels announced, the
 * small ones computed in one sweep, as mtcnn.js:proposeBoxes does), unplanned (each level alone)
 * and asked for in reverse order and twice (a level handed over is computed again).
 *
 *   node tests/js/pyramid.mjs JOB.json  ->  {levels: [{shape, byPrefix, data}], unplannedDiffer,
 *                                           reverseDiffer, againDiffer}
 *
 * *Differ: values not bit-identical to the planned run's. JOB: {image: {data, shape: [h, w, c]},
 * shapes: [[outH, outW], ...], offset}
 */
import { readFileSync } from 'node:fs';

import { AreaResizer } from '../../static/facepack/ops/area_resize.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const [h, w, c] = job.image.shape;
const data = Float32Array.from(job.image.data);
const make = () => new AreaResizer(data, h, w, c, job.offset);

const planned = make().plan(job.shapes);
const levels = job.shapes.map(([oh, ow]) => ({ shape: [oh, ow], byPrefix: planned.byPrefix(oh), out: planned.resize(oh, ow) }));
const differ = (outs) => outs.reduce((n, out, k) => n + out.reduce((m, v, i) => m + (Object.is(v, levels[k].out[i]) ? 0 : 1), 0), 0);

const alone = make();
const unplanned = job.shapes.map(([oh, ow]) => alone.resize(oh, ow));
const rev = make().plan(job.shapes);
const reverse = [...job.shapes].reverse().map(([oh, ow]) => rev.resize(oh, ow)).reverse();
const again = job.shapes.map(([oh, ow]) => planned.resize(oh, ow));
process.stdout.write(JSON.stringify({
  levels: levels.map((l) => ({ shape: l.shape, byPrefix: l.byPrefix, data: Array.from(l.out) })),
  unplannedDiffer: differ(unplanned), reverseDiffer: differ(reverse), againDiffer: differ(again),
}));
