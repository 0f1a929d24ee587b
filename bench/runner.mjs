/**
 * Time the facepack analyzer on some photos: shared by Node (bench/speed.mjs) and the browser
 * harness page of bench/bench_speed.py / bench_size.py. No imports: the caller passes the library's
 * createFaceAnalyzer and TF.js, so the same code runs in both places.
 *
 * images: [{name, input}] (input: anything analyzer.analyze takes, e.g. {data, width, height});
 * options: more analyze options for every call (heatmaps is its own argument); warmup: untimed
 * passes over every photo before the timed calls (V8 keeps compiling the WASM and JS hot paths in
 * the background for a while after load, which otherwise slows whichever photo comes first)
 * Returns {backend, load_ms, env, results: [{name, runs: [timings...], faces}]}: runs[0] is the
 * first analyze of that photo (cold for the first photo: the first call after load), the rest warm.
 */
export async function benchAnalyzer(createFaceAnalyzer, tf, config, images,
  { repeat = 5, heatmaps = true, options = {}, warmup = 0 } = {}) {
  const t0 = performance.now();
  const analyzer = await createFaceAnalyzer(config);
  const loadMs = performance.now() - t0;
  for (let w = 0; w < warmup; w++) {
    for (const { input } of images) await analyzer.analyze(input, { ...options, heatmaps }); // eslint-disable-line no-await-in-loop
  }
  const results = [];
  for (const { name, input } of images) {
    const runs = [];
    let faces = [];
    for (let i = 0; i < repeat; i++) {
      const result = await analyzer.analyze(input, { ...options, heatmaps });
      runs.push(result.timings);
      faces = result.faces;
    }
    results.push({ name, runs, faces: faces.map((f) => ({ box: f.box, score: f.score, keypoints: f.keypoints })) });
  }
  const backend = analyzer.backend;
  analyzer.dispose();
  return { backend, load_ms: loadMs, env: await backendEnv(tf, backend), results };
}

/** What the backend runs with: WASM SIMD / threads, the WebGL version. */
export async function backendEnv(tf, backend) {
  const env = {};
  const flags = backend === 'wasm' ? ['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT']
    : backend === 'webgl' ? ['WEBGL_VERSION'] : [];
  for (const flag of flags) {
    try {
      env[flag] = await tf.env().getAsync(flag);
    } catch (err) {
      env[flag] = `unknown (${err.message})`;
    }
  }
  return env;
}
