/**
 * The two settings objects of the public API and their defaults, filled in HERE and only here
 * (DESIGN.md "Style"). Unknown keys throw an Error naming the key. Every number the pipeline
 * uses comes from the bundle's manifest.json "spec" (facepack/spec.py:spec_dict), read by the
 * small accessors at the bottom; none is repeated in the JavaScript.
 */

/** Load-time settings of createFaceAnalyzer(modelConfig). */
export const MODEL_CONFIG_DEFAULTS = Object.freeze({
  /** Bundle root: URL (browser, or http(s) in Node) or folder path / file:// URL (Node). Required. */
  modelUrl: undefined,
  /** 'webgl' | 'wasm' | 'cpu' | 'auto'; falls back along backend.js:backendOrder. */
  backend: 'auto',
  /**
   * Which models to load: any of 'detector', 'beauty', 'keypoints', 'attributes' ('detector'
   * needed). Not given: these three, plus 'attributes' when the bundle has that model (index.js:modelSetNames).
   */
  models: Object.freeze(['detector', 'beauty', 'keypoints']),
  /** Where the WASM backend's .wasm files are (prefix URL/folder); null: next to the wasm module. */
  wasmPaths: null,
  /**
   * WASM backend threads: 'auto' (TF.js's own: half the logical cores, at least 1) or an integer
   * from 1 to 8 (e.g. 2 on a 2-core machine: faster when the machine is otherwise idle, much slower
   * when it is busy; backend.js module comment). Threads need a cross-origin isolated page
   * (COOP/COEP headers); Node and other pages run 1. Fixed once the WASM backend has started (the
   * first analyzer or model of the page starts it).
   */
  wasmThreads: 'auto',
});

/** Per-call settings of analyzer.analyze(input, options). */
export const ANALYZE_DEFAULTS = Object.freeze({
  /** Keep at most this many faces (highest detector score first); null: all. */
  maxFaces: null,
  /**
   * Where the detector's search starts: smallest face it looks for, in pixels of the image it
   * sees (photos over spec.detect_max_side_px are downscaled first: on a 2560-px photo, 20 here
   * is 40 photo pixels); null: the preset's, else the manifest's spec.mtcnn.min_face_size_px.
   */
  minFaceSize: null,
  /**
   * Detector settings preset, a name of the manifest's spec.mtcnn_presets overlaid on spec.mtcnn:
   * 'fast' starts the pyramid at 40 px (faster still; misses faces under ~40 px);
   * 'packageCompatible' gives the `mtcnn` Python package's own defaults (its pyramid from 20 px,
   * slower than the default's); null: spec.mtcnn
   * (mirrors facepack/detect/mtcnn_detector.py:resolve_options).
   */
  detectorPreset: null,
  /**
   * Drop detected faces whose detector confidence (0..1) is below this; null: the manifest's
   * spec.face_filter.min_confidence. Applied before maxFaces (mirrors facepack/pipeline.py:filter_faces).
   */
  minConfidence: null,
  /**
   * Drop detected faces whose box's longer side is under this many input-image pixels; null:
   * the manifest's spec.face_filter.min_box_size_px. Applied before maxFaces.
   */
  minBoxSize: null,
  /** Compute a Grad-CAM heatmap per face (needs the beauty model). */
  heatmaps: false,
  /**
   * Run keypoints, beauty and Grad-CAM on at most this many faces, the largest (box's longer side;
   * the others keep box, score and landmarks5 only), e.g. on crowds; 0: none; null: every face.
   * Applied after maxFaces (mirrors facepack/pipeline.py:per_face_targets).
   */
  perFaceLimit: null,
  /**
   * Keypoints by test-time mirror averaging: the keypoint model also runs on each face's mirrored
   * crop (one batch of 2 per face) and the un-mirrored points are averaged with the direct ones;
   * null: the manifest's spec.keypoints.mirror_average (mirrors facepack/pipeline.py mirror_keypoints).
   */
  mirrorKeypoints: null,
});

export const MODEL_NAMES = Object.freeze(['detector', 'beauty', 'keypoints', 'attributes']);

/** A value as an error message shows it: JSON where that is exact, else its type and text (NaN, 2n, new Number(2)). */
export function shown(value) {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return `${value}n (a BigInt)`;
  if (value instanceof Number || value instanceof String) return `${JSON.stringify(value.valueOf())} (a ${value.constructor.name} object)`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch (err) {
    return String(value);
  }
}

/** Threads TF.js's WASM pool can use: its build pre-creates 8 workers (tfjs-backend-wasm src/cc/BUILD.bazel PTHREAD_POOL_SIZE). */
export const MAX_WASM_THREADS = 8;

/**
 * Refuse a wasmThreads setting that is neither 'auto' nor an integer from 1 to MAX_WASM_THREADS.
 * @param {*} value
 * @param {string} what the setting's name in the message
 * @throws {Error}
 */
export function checkWasmThreads(value, what) {
  if (value !== 'auto' && !(Number.isInteger(value) && value >= 1 && value <= MAX_WASM_THREADS)) {
    throw new Error(`${what}: expected 'auto' or an integer from 1 to ${MAX_WASM_THREADS}, got ${shown(value)}`);
  }
}

function checkKeys(given, defaults, what) {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new Error(`${what} must be an object, got ${JSON.stringify(given)}`);
  }
  for (const key of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(defaults, key)) {
      throw new Error(`${what}: unknown key "${key}"; expected one of ${Object.keys(defaults).join(', ')}`);
    }
  }
}

/**
 * modelConfig with defaults filled in and values checked.
 * @param {object} config
 * @returns {{modelUrl: string, backend: string, models: string[], wasmPaths: string|object|null,
 *   wasmThreads: 'auto'|number}}
 */
export function resolveModelConfig(config) {
  checkKeys(config, MODEL_CONFIG_DEFAULTS, 'modelConfig');
  const out = { ...MODEL_CONFIG_DEFAULTS, ...config };
  if (out.modelUrl instanceof URL) out.modelUrl = out.modelUrl.href;
  if (typeof out.modelUrl !== 'string' || !out.modelUrl) {
    throw new Error(`modelConfig.modelUrl: expected the bundle's URL or folder, got ${JSON.stringify(out.modelUrl)}`);
  }
  const backends = ['webgl', 'wasm', 'cpu', 'auto'];
  if (!backends.includes(out.backend)) {
    throw new Error(`modelConfig.backend: expected one of ${backends.join(', ')}, got ${JSON.stringify(out.backend)}`);
  }
  if (!Array.isArray(out.models) || !out.models.length || out.models.some((m) => !MODEL_NAMES.includes(m))) {
    throw new Error(`modelConfig.models: expected a non-empty list of ${MODEL_NAMES.join(', ')}, got ${JSON.stringify(out.models)}`);
  }
  if (!out.models.includes('detector')) {
    throw new Error(`modelConfig.models: 'detector' is needed to find faces, got ${JSON.stringify(out.models)}`);
  }
  out.models = [...new Set(out.models)];
  checkWasmThreads(out.wasmThreads, 'modelConfig.wasmThreads');
  return out;
}

/**
 * analyze() options with defaults filled in from ANALYZE_DEFAULTS and the manifest spec.
 * @param {object|undefined} options
 * @param {object} spec manifest.json "spec"
 */
export function resolveAnalyzeOptions(options, spec) {
  const given = options ?? {};
  checkKeys(given, ANALYZE_DEFAULTS, 'analyze options');
  const out = { ...ANALYZE_DEFAULTS, ...given };
  if (out.maxFaces !== null && !(Number.isInteger(out.maxFaces) && out.maxFaces >= 1)) {
    throw new Error(`analyze options.maxFaces: expected an integer >= 1 or null, got ${JSON.stringify(out.maxFaces)}`);
  }
  if (out.minFaceSize === null) out.minFaceSize = detectorSpec(spec, out.detectorPreset).min_face_size_px;
  if (!(typeof out.minFaceSize === 'number' && out.minFaceSize > 0)) {
    throw new Error(`analyze options.minFaceSize: expected a positive number of pixels, got ${JSON.stringify(out.minFaceSize)}`);
  }
  const filter = spec.face_filter;
  if (!filter) {
    throw new Error('manifest spec.face_filter is missing (a bundle exported before it existed): re-export it with convert/to_tfjs.py');
  }
  if (out.minConfidence === null) out.minConfidence = filter.min_confidence;
  if (!(typeof out.minConfidence === 'number' && out.minConfidence >= 0 && out.minConfidence <= 1)) {
    throw new Error(`analyze options.minConfidence: expected a number from 0 to 1, got ${JSON.stringify(out.minConfidence)}`);
  }
  if (out.minBoxSize === null) out.minBoxSize = filter.min_box_size_px;
  if (!(typeof out.minBoxSize === 'number' && out.minBoxSize >= 0 && Number.isFinite(out.minBoxSize))) {
    throw new Error(`analyze options.minBoxSize: expected a number of pixels >= 0, got ${JSON.stringify(out.minBoxSize)}`);
  }
  if (out.perFaceLimit !== null && !(Number.isInteger(out.perFaceLimit) && out.perFaceLimit >= 0)) {
    throw new Error(`analyze options.perFaceLimit: expected an integer >= 0 or null, got ${JSON.stringify(out.perFaceLimit)}`);
  }
  if (out.mirrorKeypoints === null) out.mirrorKeypoints = spec.keypoints?.mirror_average === true;
  if (typeof out.mirrorKeypoints !== 'boolean') {
    throw new Error(`analyze options.mirrorKeypoints: expected true, false or null, got ${JSON.stringify(out.mirrorKeypoints)}`);
  }
  if (typeof out.heatmaps !== 'boolean') {
    throw new Error(`analyze options.heatmaps: expected true or false, got ${JSON.stringify(out.heatmaps)}`);
  }
  return out;
}

/**
 * spec.mtcnn overlaid by the preset named (spec.mtcnn_presets; null: spec.mtcnn as it is).
 * @param {object} spec manifest.json "spec"
 * @param {string|null} preset
 */
export function detectorSpec(spec, preset) {
  if (preset === null || preset === undefined) return spec.mtcnn;
  const presets = spec.mtcnn_presets;
  if (!presets) {
    throw new Error(`analyze options.detectorPreset: the manifest has no spec.mtcnn_presets (a bundle exported before it existed): re-export it with convert/to_tfjs.py`);
  }
  if (typeof preset !== 'string' || !Object.prototype.hasOwnProperty.call(presets, preset)) {
    throw new Error(`analyze options.detectorPreset: expected one of ${Object.keys(presets).join(', ')} or null, got ${JSON.stringify(preset)}`);
  }
  return { ...spec.mtcnn, ...presets[preset] };
}

/**
 * The detector's numbers, from the manifest spec (mirrors the `mtcnn` package's keyword
 * arguments, written out in facepack/spec.py:MTCNN, with the preset's overlay).
 * @param {object} spec manifest.json "spec"
 * @param {number} minFaceSize pixels of the image the detector sees
 * @param {string|null} [preset] a name of spec.mtcnn_presets
 */
export function detectorParams(spec, minFaceSize, preset = null) {
  const m = detectorSpec(spec, preset);
  return {
    minFaceSize,
    minSize: m.min_size_px,
    scaleFactor: m.scale_factor,
    thresholdPnet: m.threshold_pnet,
    thresholdRnet: m.threshold_rnet,
    thresholdOnet: m.threshold_onet,
    nmsPnet1: m.nms_pnet1,
    nmsPnet2: m.nms_pnet2,
    nmsRnet: m.nms_rnet,
    nmsOnet: m.nms_onet,
    rnetInput: m.rnet_input_px,
    onetInput: m.onet_input_px,
    patchPadValue: m.patch_pad_value,
    patchResize: m.patch_resize, // 'area' or 'bilinear'; absent (older bundles): mtcnn.js:patchSampler's 'bilinear'
    normalizeOffset: m.normalize.offset, // the pyramid is resized centred on it (ops/area_resize.js)
    landmarkCount: spec.landmarks5.length,
    landmarkNames: spec.landmarks5,
  };
}
