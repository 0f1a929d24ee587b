/**
 * Node side of bench/bench_speed.py: time the facepack library (static/facepack) on raw RGB photos.
 *
 *   node bench/speed.mjs JOB.json  ->  one JSON document on stdout (bench/runner.mjs:benchAnalyzer)
 *
 * JOB: {bundle, backend ('wasm'|'cpu'), repeat, heatmaps, images: [{name, path, width, height}],
 *       options?: more analyze options, library?: path of another copy's index.js (a "before" run),
 *       models?: modelConfig.models (e.g. ['detector', 'keypoints']: no beauty model loaded or run),
 *       warmup?: untimed passes over every photo first (runner.mjs)}
 * (raw files written by tests/jsharness.py:write_raw).
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';

import { pathToFileURL } from 'node:url';

import { benchAnalyzer } from './runner.mjs';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { createFaceAnalyzer } = await import(job.library ? pathToFileURL(job.library).href : '../static/facepack/index.js');
const images = job.images.map((item) => ({
  name: item.name,
  input: { data: new Uint8Array(readFileSync(item.path)), width: item.width, height: item.height },
}));
// Each call's timings gain cpu: this process's CPU ms (a loaded machine inflates them less than the wall clock).
async function createTimed(config) {
  const analyzer = await createFaceAnalyzer(config);
  const analyze = async (input, options) => {
    const cpu0 = process.cpuUsage();
    const result = await analyzer.analyze(input, options);
    const cpu = process.cpuUsage(cpu0);
    return { ...result, timings: { ...result.timings, cpu: (cpu.user + cpu.system) / 1000 } };
  };
  return { ...analyzer, analyze, dispose: () => analyzer.dispose() };
}
const out = await benchAnalyzer(createTimed, tf, { modelUrl: job.bundle, backend: job.backend, ...(job.models ? { models: job.models } : {}) }, images,
  { repeat: job.repeat, heatmaps: job.heatmaps ?? true, options: job.options ?? {}, warmup: job.warmup ?? 0 });
if (out.backend === 'wasm') out.env.threads = getThreadsCount();
process.stdout.write(JSON.stringify(out));
