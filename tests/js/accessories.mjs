/**
 * Node runner for tests/test_accessories.py: the JS accessory geometry on given keypoints, the
 * art, the errors, and the calls drawAccessories makes on a recording 2D context.
 *
 *   node tests/js/accessories.mjs JOB.json  ->  {transforms, anchors, art, errors, calls}
 *
 * JOB: {spec (manifest "spec"), cases: [keypoints], draw: {faces, kinds}}.
 */
import { readFileSync } from 'node:fs';

import { ACCESSORIES, ACCESSORY_ART, accessoryTransform, drawAccessories, faceAnchors } from '../../static/facepack/accessories.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const transforms = job.cases.map((points) => ACCESSORIES.map((kind) => accessoryTransform(points, kind, job.spec)));
const anchors = job.cases.map((points) => faceAnchors(points, job.spec));
const errors = {};
const attempt = (name, fn) => { try { fn(); errors[name] = 'no error'; } catch (err) { errors[name] = err.message; } };
attempt('kind', () => accessoryTransform(job.cases[0], 'monocle', job.spec));
attempt('count', () => faceAnchors(job.cases[0].slice(0, 10), job.spec));
// A recording context: every call drawAccessories makes, in order (Node has no canvas).
globalThis.Path2D = class { constructor(d) { this.d = d; } };
const calls = [];
const ctx = {
  save: () => calls.push(['save']),
  restore: () => calls.push(['restore']),
  transform: (...m) => calls.push(['transform', ...m]),
  fill: (path) => calls.push(['fill', ctx.fillStyle, path.d]),
  fillStyle: null,
};
drawAccessories(ctx, job.draw.faces, job.draw.kinds, job.spec);
attempt('no keypoints', () => drawAccessories(ctx, [{ box: {} }], ['hat'], job.spec));
process.stdout.write(JSON.stringify({ accessories: ACCESSORIES, transforms, anchors, art: ACCESSORY_ART, errors, calls }));
