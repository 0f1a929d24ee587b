// Module script of bench/bench_parity.py's Chromium page: ONE analyzer, made by the library's own
// createFaceAnalyzer with the backend flag the page passes ('wasm' | 'webgl'), kept for every chunk
// of photos the sweep sends to this browser - as the real page keeps one analyzer for all the photos
// a user drops. Reusing it (models loaded once, WebGL programs compiled once per shape) changes the
// time a sweep takes, not the code path or the numbers: analyze(input, options) is called exactly
// as tests/js/page.js:runJob calls it: both run tests/js/photo_loop.js:analyzePhotos (served at /tests/js/).
//   window.openAnalyzer(bundleUrl, backend) -> {backend, load_ms}
//   window.analyzeImages([{name, url, width, height, options}]) -> [{name, faces, timings}]
//     (url: raw RGB bytes, jsharness.write_raw)
import { createFaceAnalyzer } from '/facepack/index.js';
import { analyzePhotos } from '/tests/js/photo_loop.js';

let analyzer = null;

window.openAnalyzer = async (bundle, backend) => {
  if (analyzer) analyzer.dispose();
  const t0 = performance.now();
  analyzer = await createFaceAnalyzer({ modelUrl: bundle, backend });
  return { backend: analyzer.backend, load_ms: performance.now() - t0 };
};

window.analyzeImages = async (images) => {
  if (!analyzer) throw new Error('analyzeImages: call openAnalyzer(bundle, backend) first');
  const results = await analyzePhotos(analyzer, images);
  return results.map(({ name, faces, timings }) => ({ name, faces, timings }));
};

window.pageReady = true;
