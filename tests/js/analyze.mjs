/**
 * Node runner for the parity and leak tests: analyze raw RGB images with the JS pipeline.
 *
 *   node tests/js/analyze.mjs JOB.json   ->  one JSON document on stdout
 *
 * JOB: {bundle, backend, models?, wasmPaths?, repeat?: n (runs per image, for leaks/timing),
 *       images: [{name, path, width, height, channels (3|4), options?}]}
 * Each image file holds width * height * channels uint8 values, row-major (written by
 * tests/jsharness.py:write_raw). Output: {backend, results: [{name, faces, timings, image,
 * runs_ms}], tensors: {before, after_first, after_all, after_dispose},
 * spare_bytes: {before_dispose, after_dispose} (ops/area_patches.js's kept buffer)}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { createFaceAnalyzer } from '../../static/facepack/index.js';
import { spareBufferBytes } from '../../static/facepack/ops/area_patches.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const config = { modelUrl: job.bundle, backend: job.backend ?? 'wasm' };
if (job.models) config.models = job.models;
if (job.wasmPaths) config.wasmPaths = job.wasmPaths;
const analyzer = await createFaceAnalyzer(config);
const repeat = job.repeat ?? 1;
const results = [];
const tensors = { before: tf.memory().numTensors, after_first: null, after_all: null };
for (const item of job.images) {
  const data = new Uint8Array(readFileSync(item.path));
  const input = { data, width: item.width, height: item.height };
  const runsMs = [];
  let result;
  for (let i = 0; i < repeat; i++) {
    result = await analyzer.analyze(input, item.options);
    runsMs.push(result.timings.total);
    if (tensors.after_first === null) tensors.after_first = tf.memory().numTensors;
  }
  results.push({ name: item.name, ...result, runs_ms: runsMs });
}
tensors.after_all = tf.memory().numTensors;
const spare = { before_dispose: spareBufferBytes() }; // the area patcher's kept integral-image buffer
analyzer.dispose();
tensors.after_dispose = tf.memory().numTensors;
spare.after_dispose = spareBufferBytes();
process.stdout.write(JSON.stringify({ backend: analyzer.backend, results, tensors, spare_bytes: spare }));
