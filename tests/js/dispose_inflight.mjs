/**
 * analyzer.dispose() called while an analyze() is running (tests/test_js_leaks.py).
 *
 *   node tests/js/dispose_inflight.mjs JOB.json   ->  one JSON document on stdout
 *
 * JOB: {bundle, image: {path, width, height} (raw RGB, jsharness.write_raw, one face)}.
 * One analyze() first (its R/O-Net area patcher leaves the spare integral-image buffer of
 * ops/area_patches.js filled); then a second analyze() whose O-Net call disposes the analyzer just
 * before the net runs (the patcher's table is built, its release() still to come: the moment a
 * release could refill the spare buffer that dispose() dropped). Output: {first_faces, hooked,
 * outcome: {resolved, faces?, error?}, spare_bytes: {before_dispose, after_settled},
 * tensors_after_settled, after_dispose_error}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { createFaceAnalyzer } from '../../static/facepack/index.js';
import { spareBufferBytes } from '../../static/facepack/ops/area_patches.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const analyzer = await createFaceAnalyzer({ modelUrl: job.bundle, backend: 'wasm' });
const input = { data: new Uint8Array(readFileSync(job.image.path)), width: job.image.width, height: job.image.height };
const first = await analyzer.analyze(input);
const spareBefore = spareBufferBytes();

// O-Net's next run disposes the analyzer first (runModel: 'apply' for a layers model, else 'execute').
const onet = analyzer.modelSets.detector.onet;
const method = onet.format === 'layers-model' ? 'apply' : 'execute';
const original = onet.model[method];
let hooked = false;
onet.model[method] = function disposingFirst(...args) {
  if (!hooked) {
    hooked = true;
    analyzer.dispose();
  }
  return original.apply(this, args);
};

const outcome = {};
try {
  const second = await analyzer.analyze(input);
  Object.assign(outcome, { resolved: true, faces: second.faces });
} catch (err) {
  Object.assign(outcome, { resolved: false, error: String(err?.message ?? err) });
}
let afterDisposeError = null;
try {
  await analyzer.analyze(input);
} catch (err) {
  afterDisposeError = String(err?.message ?? err);
}
process.stdout.write(JSON.stringify({
  first_faces: first.faces, hooked, outcome, after_dispose_error: afterDisposeError,
  spare_bytes: { before_dispose: spareBefore, after_settled: spareBufferBytes() },
  tensors_after_settled: tf.memory().numTensors,
}));
