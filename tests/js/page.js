// Module script of the browser test page (tests/test_parity_browser.py, tests/test_js_leaks.py):
// exposes window.runJob(job) and window.decodeBlob(url), then sets window.pageReady.
// job: {bundle (URL), backend, repeat?, images: [{name, url, width?, height?, blob?: true, options?}]}
import * as tf from '@tensorflow/tfjs';

import { createFaceAnalyzer } from '/facepack/index.js';
import { toRgbTensor } from '/facepack/input.js';

async function loadInput(item) {
  const response = await fetch(item.url);
  if (!response.ok) throw new Error(`${item.url}: HTTP ${response.status}`);
  if (item.blob) return response.blob();
  return { data: new Uint8Array(await response.arrayBuffer()), width: item.width, height: item.height };
}

window.runJob = async (job) => {
  const analyzer = await createFaceAnalyzer({ modelUrl: job.bundle, backend: job.backend });
  const tensors = { before: tf.memory().numTensors };
  const results = [];
  for (const item of job.images) {
    const input = await loadInput(item);
    let result;
    for (let i = 0; i < (job.repeat ?? 1); i++) result = await analyzer.analyze(input, item.options);
    results.push({ name: item.name, ...result });
  }
  tensors.after = tf.memory().numTensors;
  analyzer.dispose();
  tensors.after_dispose = tf.memory().numTensors;
  return { backend: analyzer.backend, results, tensors, isolated: self.crossOriginIsolated };
};

window.decodeBlob = async (url) => {
  const blob = await (await fetch(url)).blob();
  const t = await toRgbTensor(blob);
  try {
    return { shape: t.shape, data: Array.from(await t.data()) };
  } finally {
    t.dispose();
  }
};

window.pageReady = true;
