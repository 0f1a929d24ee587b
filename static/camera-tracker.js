/**
 * Camera frames in real time (issue 15): faces are tracked between full detections, and the
 * expensive stages run only when their answer can have changed. Used by analysis-worker.js; no
 * DOM, and no imports: the facepack library's modules are passed in (the worker imports them
 * through its import-map loader, so they are the same module instances the analyzer uses).
 *
 * Per frame (bench/bench_camera.py measures each stage; README "The page" has the numbers):
 *   - full detection (the whole MTCNN cascade, pipeline.js:detectStage) on the first frame, every
 *     FULL_EVERY frames, and whenever a tracked face is lost;
 *   - otherwise each tracked face is re-found by O-Net alone (mtcnn.js:outputBoxes) on the square
 *     around its last box: O-Net's box regression follows a face that moved a fraction of its size
 *     between frames, and its score says whether the face is still there (below the detector's
 *     threshold_onet: lost, and the frame falls back to a full detection);
 *   - keypoints on every frame (they move with the face);
 *   - the beauty score and its Grad-CAM only for a face seen for the first time, or once it has
 *     carried its score for SCORE_EVERY frames; in between the face keeps them, marked with
 *     `scoredFramesAgo` (> 0: from an earlier frame) so the page says so, and the heatmap follows
 *     the face (its square is the beauty crop square of the new box).
 * A face of the new frame takes over an old face's score only when their boxes overlap by
 * IoU >= MATCH_IOU (the same face, moved a little); anything else is a new face and is scored.
 */

export const FULL_EVERY = 15; // frames between full detections while faces are tracked (~1 s at 15 fps)
export const SCORE_EVERY = 10; // frames a face keeps its beauty score and Grad-CAM before they are computed again
export const MATCH_IOU = 0.5; // box overlap above which a face in the new frame is the same face as before

/** Intersection over union of two {x, y, width, height} boxes. */
export function boxIou(a, b) {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/**
 * Each new face's best match among the old faces (IoU >= MATCH_IOU), each old face used once,
 * greedily by overlap. @returns {(object|null)[]} per new face, the old face or null
 */
export function matchFaces(faces, previous) {
  const pairs = [];
  faces.forEach((f, i) => previous.forEach((p, j) => {
    const iou = boxIou(f.box, p.box);
    if (iou >= MATCH_IOU) pairs.push([iou, i, j]);
  }));
  pairs.sort((a, b) => b[0] - a[0]);
  const out = faces.map(() => null);
  const used = new Set();
  for (const [, i, j] of pairs) {
    if (out[i] || used.has(j)) continue;
    out[i] = previous[j];
    used.add(j);
  }
  return out;
}

/**
 * A tracker over loaded model sets.
 * @param {object} lib the library's modules: {tf, pipeline, mtcnn, boxes, options, input, crop}
 *   (static/facepack/{pipeline,mtcnn,ops/boxes,options,input,crop}.js; tf: '@tensorflow/tfjs')
 * @param {object} spec the manifest's spec
 * @param {object} sets pipeline.js:loadModelSets of 'detector' and any of 'keypoints', 'beauty'
 * @returns {{frame: Function, reset: Function}}
 */
export function createTracker(lib, spec, sets) {
  const rules = lib.crop.cropRules(spec, sets.keypoints?.model.entry.points_format);
  const state = { faces: [], frame: 0, sinceFull: 0 };

  /**
   * The frame as float32 RGB: {image: tf.Tensor3D, pixels: its values}. A camera frame is opaque,
   * where spec.alpha_rule leaves colours as they are, so its values are the RGB bytes, copied into
   * one reused buffer (no tensor read-back); a frame with any transparent pixel goes through the
   * library's input path (input.js:toRgbTensor) instead.
   */
  async function frameTensor({ data, width, height }) {
    const n = width * height;
    if (!state.values || state.values.length !== n * 3) state.values = new Float32Array(n * 3);
    const values = state.values;
    let opaque = 255;
    for (let i = 0, j = 0; i < n; i += 1, j += 3) {
      const o = i * 4;
      values[j] = data[o];
      values[j + 1] = data[o + 1];
      values[j + 2] = data[o + 2];
      opaque &= data[o + 3];
    }
    if (opaque !== 255) {
      const image = await lib.input.toRgbTensor({ data, width, height }, spec);
      return { image, pixels: await image.data() };
    }
    return { image: lib.tf.tensor3d(values, [height, width, 3], 'float32'), pixels: values };
  }

  /** O-Net on the square around each tracked face's box: the faces still there, in frame pixels. */
  async function refine(image, pixels, opts) {
    const [height, width] = image.shape;
    const p = lib.options.detectorParams(spec, opts.minFaceSize, opts.detectorPreset);
    const squares = lib.boxes.resizeToSquare(state.faces.map(({ box }) => (
      { x1: box.x, y1: box.y, x2: box.x + box.width, y2: box.y + box.height, score: 1 })));
    // The patch rule of the bundle (spec.mtcnn.patch_resize), sampling the values already read.
    const how = lib.mtcnn.patchSampler ? lib.mtcnn.patchSampler(image, p, pixels) : undefined;
    const found = lib.boxes.limitBoxes(await lib.mtcnn.outputBoxes(sets.detector.onet, image, squares, p, how), width, height);
    const faces = lib.mtcnn.boxesToFaces(found, 1, 1, spec.landmarks5);
    return lib.pipeline.filterFaces(faces, opts.minConfidence, opts.minBoxSize);
  }

  /**
   * Analyse one frame.
   * @param {{data: Uint8ClampedArray, width: number, height: number}} rgba the frame's RGBA bytes
   * @param {object} options analyze() options (options.js:ANALYZE_DEFAULTS)
   * @returns {Promise<object>} the library's result shape ({faces, backend, timings, image}) plus
   *   `tracking`: 'full' | 'track' (how the faces were found) and `scored`: faces scored this frame;
   *   a face's `scoredFramesAgo` (0: this frame) says how old its beauty score and heatmap are
   */
  async function frame(rgba, options) {
    const opts = lib.options.resolveAnalyzeOptions(options, spec);
    const timings = { decode: 0, detect: 0, crop: 0, keypoints: 0, beauty: 0, gradcam: 0 };
    const t0 = performance.now();
    let t = t0;
    const lap = (key) => { const now = performance.now(); timings[key] = (timings[key] ?? 0) + now - t; t = now; };
    state.frame += 1;
    const { image, pixels } = await frameTensor(rgba);
    try {
      lap('decode');
      let tracking = 'track';
      let faces = [];
      if (state.faces.length && state.sinceFull < FULL_EVERY) {
        faces = await refine(image, pixels, opts);
        state.sinceFull += 1;
        if (faces.length < state.faces.length) tracking = 'lost'; // a face left or was missed: look everywhere now
      } else {
        tracking = 'full';
      }
      if (tracking !== 'track') {
        faces = await lib.pipeline.detectStage(sets.detector, spec, image, opts, pixels);
        state.sinceFull = 0;
        tracking = 'full';
      }
      faces = faces.slice(0, opts.maxFaces ?? undefined);
      lap('detect');
      // Scores carried over from the same face in the previous frame; a new face, or one whose
      // score is SCORE_EVERY frames old, makes this frame a scoring frame (all faces, one batch).
      const matches = matchFaces(faces, state.faces);
      const score = sets.beauty && faces.some((f, i) => !matches[i]?.beauty || matches[i].scoredFramesAgo + 1 >= SCORE_EVERY);
      const stages = { keypoints: sets.keypoints };
      if (score) stages.beauty = sets.beauty;
      await lib.pipeline.describeFaces(stages, spec, image, faces, { heatmaps: opts.heatmaps && score }, lap, pixels);
      faces.forEach((face, i) => {
        const old = matches[i];
        if (score) {
          face.scoredFramesAgo = 0;
        } else if (old?.beauty) {
          face.beauty = old.beauty;
          face.scoredFramesAgo = old.scoredFramesAgo + 1;
          if (old.heatmap && opts.heatmaps) {
            const [x, y, side] = lib.crop.faceSquare(face.box, rules.beauty);
            face.heatmap = { ...old.heatmap, square: { x, y, side } }; // follows the face
          }
        }
      });
      state.faces = faces;
      timings.total = performance.now() - t0;
      return { faces, backend: lib.tf.getBackend(), timings, image: { width: rgba.width, height: rgba.height },
        tracking, scored: score ? faces.length : 0 };
    } finally {
      image.dispose();
    }
  }

  /** Forget the tracked faces (a new stream, or other settings): the next frame is a full detection. */
  function reset() {
    Object.assign(state, { faces: [], frame: 0, sinceFull: 0 });
  }

  return { frame, reset };
}
