// Module script of the browser test page (tests/test_parity_browser.py, tests/test_js_leaks.py):
// exposes window.runJob(job) and window.decodeBlob(url, bundle), then sets window.pageReady.
// job: {bundle (URL), backend, repeat?, wasmThreads?, images: [{name, url, width?, height?, blob?: true, options?}]}
// The photo loop is tests/js/photo_loop.js (served at /tests/js/), which bench/parity_page.js shares.
import * as tf from '@tensorflow/tfjs';

import { createFaceAnalyzer } from '/facepack/index.js';
import { toRgbTensor } from '/facepack/input.js';
import { analyzePhotos } from '/tests/js/photo_loop.js';

window.runJob = async (job) => {
  const cores = navigator.hardwareConcurrency;
  const warnings = [];
  const consoleWarn = console.warn;
  console.warn = (...args) => { warnings.push(args.join(' ')); consoleWarn(...args); };
  let analyzer;
  try {
    analyzer = await createFaceAnalyzer({ modelUrl: job.bundle, backend: job.backend,
                                          ...(job.wasmThreads ? { wasmThreads: job.wasmThreads } : {}) });
  } finally {
    console.warn = consoleWarn;
  }
  const tensors = { before: tf.memory().numTensors };
  const results = await analyzePhotos(analyzer, job.images, job.repeat ?? 1);
  tensors.after = tf.memory().numTensors;
  analyzer.dispose();
  tensors.after_dispose = tf.memory().numTensors;
  return { backend: analyzer.backend, results, tensors, isolated: self.crossOriginIsolated, wasmThreads: analyzer.wasmThreads, warnings,
           cores: { before: cores, after: navigator.hardwareConcurrency,
                    own: Object.prototype.hasOwnProperty.call(navigator, 'hardwareConcurrency') } };
};

// Two analyzers created at once (a fresh page: neither has started WASM): both start, the backend
// once, with the first one's thread count; navigator as it was.
window.twoAtOnce = async (bundle, threads) => {
  const cores = navigator.hardwareConcurrency;
  const settled = await Promise.allSettled(threads.map((n) => createFaceAnalyzer(
    { modelUrl: bundle, backend: 'wasm', models: ['detector'], wasmThreads: n })));
  const out = settled.map((r) => (r.status === 'fulfilled' ? { threads: r.value.wasmThreads } : { error: String(r.reason?.message ?? r.reason) }));
  for (const r of settled) if (r.status === 'fulfilled') r.value.dispose();
  return { analyzers: out, cores: { before: cores, after: navigator.hardwareConcurrency,
                                    own: Object.prototype.hasOwnProperty.call(navigator, 'hardwareConcurrency') } };
};

window.decodeBlob = async (url, bundle) => {
  const blob = await (await fetch(url)).blob();
  const { spec } = await (await fetch(`${bundle}/manifest.json`)).json();
  const t = await toRgbTensor(blob, spec);
  try {
    return { shape: t.shape, data: Array.from(await t.data()) };
  } finally {
    t.dispose();
  }
};

// Every browser input kind of one PNG -> {kind: faces}; pixels should be identical for all.
window.inputKinds = async (bundle, url) => {
  const analyzer = await createFaceAnalyzer({ modelUrl: bundle, backend: 'wasm', models: ['detector'] });
  const blob = await (await fetch(url)).blob();
  const img = new Image();
  img.src = URL.createObjectURL(blob);
  await img.decode();
  const bitmap = await createImageBitmap(blob);
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const imageData = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const inputs = {
    blob, image: img, bitmap, canvas, imagedata: imageData,
    raw_rgba: { data: imageData.data, width: imageData.width, height: imageData.height },
  };
  const before = tf.memory().numTensors;
  const faces = {};
  for (const [kind, input] of Object.entries(inputs)) faces[kind] = (await analyzer.analyze(input)).faces;
  const after = tf.memory().numTensors;
  analyzer.dispose();
  return { faces, leaked: after - before };
};

window.pageReady = true;
