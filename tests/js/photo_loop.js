// The photo loop of the browser parity pages, one implementation for both: tests/js/page.js
// (window.runJob, tests/test_parity_browser.py) and bench/parity_page.js (window.analyzeImages,
// bench/bench_parity.py). Served at /tests/js/ by both (jsharness.static_server routes).
//   item: {name, url, width?, height?, blob?: true, options?}
//     url: raw RGB bytes (jsharness.write_raw; width and height given), or with blob: an image file

/** The analyze() input of one item: {data, width, height} of its raw RGB bytes, or (blob) a Blob. */
export async function loadInput(item) {
  const response = await fetch(item.url);
  if (!response.ok) throw new Error(`${item.url}: HTTP ${response.status}`);
  if (item.blob) return response.blob();
  return { data: new Uint8Array(await response.arrayBuffer()), width: item.width, height: item.height };
}

/**
 * analyzer.analyze(input, item.options) of each item in turn, `repeat` times each (one fetch per
 * item); returns [{name, ...the last call's result}] (faces, backend, timings, image).
 */
export async function analyzePhotos(analyzer, items, repeat = 1) {
  const results = [];
  for (const item of items) {
    const input = await loadInput(item); // eslint-disable-line no-await-in-loop
    let result;
    for (let i = 0; i < repeat; i++) result = await analyzer.analyze(input, item.options); // eslint-disable-line no-await-in-loop
    results.push({ name: item.name, ...result });
  }
  return results;
}
