/**
 * Node runner for tests/test_js_ops.py: the library's pure ops on JSON inputs.
 *
 *   node tests/js/ops.mjs JOB.json  ->  {backend, results: [...]}  (one result per case)
 *
 * JOB: {backend?: 'wasm', cases: [{op, ...args}]}. Boxes travel as rows [x1, y1, x2, y2, score,
 * (10 landmarks)?]; images as {data: flat list, shape: [H, W, C]}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { beautyResults } from '../../static/facepack/beauty.js';
import { cropBoxToTf, cropSquares, cropToImage, detectorToPointsBox, faceSquare, cropRules, squareBox } from '../../static/facepack/crop.js';
import { upsampleGrid } from '../../static/facepack/gradcam.js';
import { detectSize, resizeForDetection } from '../../static/facepack/input.js';
import { extractPatches } from '../../static/facepack/mtcnn.js';
import { areaResizePixels, areaWeights } from '../../static/facepack/ops/area_resize.js';
import * as B from '../../static/facepack/ops/boxes.js';
import { nms } from '../../static/facepack/ops/nms.js';
import { detectorParams, resolveAnalyzeOptions } from '../../static/facepack/options.js';

const toBoxes = (rows) => rows.map((r) => ({
  x1: r[0], y1: r[1], x2: r[2], y2: r[3], score: r[4], ...(r.length > 5 ? { landmarks: r.slice(5) } : {}),
}));
const toRows = (boxes) => boxes.map((b) => [b.x1, b.y1, b.x2, b.y2, b.score, ...(b.landmarks ?? [])]);
const image = ({ data, shape }) => tf.tensor(data, shape, 'float32');
async function flat(t) {
  try {
    return { data: Array.from(await t.data()), shape: t.shape };
  } finally {
    t.dispose();
  }
}

const OPS = {
  areaWeights: (c) => Array.from(areaWeights(c.in, c.out)),
  areaResize: (c) => {
    const [h, w, ch] = c.image.shape;
    return { data: Array.from(areaResizePixels(Float32Array.from(c.image.data), h, w, ch, c.out[0], c.out[1], c.offset ?? 0)), shape: [c.out[0], c.out[1], ch] };
  },
  pyramid: (c) => {
    const scales = B.buildScalePyramid(c.width, c.height, c.minFaceSize, c.scaleFactor, c.minSize);
    return { scales, shapes: scales.map((s) => B.scaledShape(c.height, c.width, s)) };
  },
  roundHalfEven: (c) => c.values.map(B.roundHalfEven),
  nms: (c) => toRows(nms(toBoxes(c.boxes), c.threshold, c.method, c.initialSort)),
  generateBoundingBoxes: (c) => toRows(B.generateBoundingBoxes(Float32Array.from(c.reg), Float32Array.from(c.prob),
    c.h, c.w, c.threshold, c.stride, c.cellSize)),
  upscaleBoxes: (c) => toRows(B.upscaleBoxes(toBoxes(c.boxes), c.scale)),
  resizeToSquare: (c) => toRows(B.resizeToSquare(toBoxes(c.boxes))),
  adjustBoxes: (c) => toRows(B.adjustBoxes(toBoxes(c.boxes), Float32Array.from(c.offsets))),
  adjustLandmarks: (c) => B.adjustLandmarks(toBoxes(c.boxes), Float32Array.from(c.landmarks), c.count),
  replaceScores: (c) => toRows(B.replaceScores(toBoxes(c.boxes), Float32Array.from(c.prob))),
  pickMatches: (c) => toRows(B.pickMatches(toBoxes(c.boxes), c.threshold)),
  limitBoxes: (c) => toRows(B.limitBoxes(toBoxes(c.boxes), c.width, c.height)),
  toPackageJson: (c) => toBoxes(c.boxes).map((b) => B.toPackageJson(b, c.names)),
  extractPatches: async (c) => { const x = image(c.image); const y = await extractPatches(x, toBoxes(c.boxes), c.size, c.padValue); x.dispose(); return flat(y); },
  squareBox: (c) => c.boxes.map(([x, y, w, h]) => squareBox(x, y, w, h, c.margin)),
  cropBoxToTf: (c) => c.squares.map(([x0, y0, side]) => cropBoxToTf(x0, y0, side, c.size, c.imageH, c.imageW)),
  cropToImage: (c) => c.points.map(([u, v]) => cropToImage(u, v, ...c.square)),
  detectorToPointsBox: (c) => c.boxes.map((b) => detectorToPointsBox(b, c.mapping)),
  faceSquare: (c) => c.boxes.map((b) => faceSquare(b, cropRules(c.spec, c.format)[c.kind])),
  cropSquares: async (c) => { const x = image(c.image); const y = await cropSquares(x, c.squares, c.size, c.spec); x.dispose(); return flat(y); },
  detectSize: (c) => c.sizes.map(([h, w]) => detectSize(h, w, c.spec)),
  resizeForDetection: async (c) => {
    const x = image(c.image);
    const r = await resizeForDetection(x, c.spec);
    const out = { sy: r.sy, sx: r.sx, resized: r.resized, ...(await flat(r.image)) };
    if (r.resized) x.dispose();
    return out;
  },
  upsampleGrid: (c) => { const g = tf.tensor3d(c.grid); const y = upsampleGrid(g, c.size); g.dispose(); return flat(y); },
  beautyResults: (c) => beautyResults(Float32Array.from(c.probs.flat()), c.probs.length, c.spec),
  detectorPreset: (c) => {
    try {
      const o = resolveAnalyzeOptions({ detectorPreset: c.preset, ...c.options }, c.spec);
      return { minFaceSize: o.minFaceSize, params: detectorParams(c.spec, o.minFaceSize, o.detectorPreset) };
    } catch (err) {
      return { error: err.message };
    }
  },
};

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const backend = await useBackend(job.backend ?? 'wasm');
const results = [];
for (const c of job.cases) {
  if (!OPS[c.op]) throw new Error(`ops.mjs: unknown op ${JSON.stringify(c.op)}`);
  results.push(await OPS[c.op](c));
}
process.stdout.write(JSON.stringify({ backend, results, tensors: tf.memory().numTensors }));
