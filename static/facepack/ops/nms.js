/**
 * Non-maximum suppression exactly as the `mtcnn` 1.0.0 package does it (its own numpy code,
 * mtcnn/utils/bboxes.py: iou, nms, sort_by_scores, smart_nms_from_bboxes) - NOT
 * tf.image.nonMaxSuppression, which differs: the package drops box j when ANY earlier box
 * (in score order) overlaps it above the threshold, even an earlier box that was itself dropped.
 *
 * A box is {x1, y1, x2, y2, score, ...}; areas use (x2 - x1) * (y2 - y1) (no +1), as the package.
 * Twin: tests/test_js_ops.py runs both on the same random boxes.
 */

/**
 * Indices that sort `scores` descending, as numpy's argsort(scores)[::-1] on a stable sort
 * (ties: the later index first). The package's own argsort is unstable and its tie order depends
 * on numpy's SIMD dispatch (the CPU); the Python reference runs it stable
 * (facepack/detect/mtcnn_detector.py:stable_score_order), so ties - common, trained nets give
 * probability 1.0 - keep the same boxes on both sides.
 * @param {ArrayLike<number>} scores
 * @returns {number[]}
 */
export function argsortDescending(scores) {
  const idx = Array.from(scores, (_, i) => i);
  idx.sort((a, b) => (scores[a] - scores[b]) || (a - b)); // stable ascending
  return idx.reverse();
}

/** Boxes sorted by score, descending (mirrors sort_by_scores(..., ascending=False)). */
export function sortByScoreDescending(boxes) {
  return argsortDescending(boxes.map((b) => b.score)).map((i) => boxes[i]);
}

/**
 * Overlap of boxes a and b by `method` ("union": IoU; "min": intersection / smaller area).
 * Mirrors mtcnn/utils/bboxes.py:iou for one pair (0/0 gives NaN there and here: never suppresses).
 */
export function overlap(a, b, method) {
  const areaA = (a.x2 - a.x1) * (a.y2 - a.y1);
  const areaB = (b.x2 - b.x1) * (b.y2 - b.y1);
  const w = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const h = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const inter = w * h;
  if (method === 'union') return inter / (areaA + areaB - inter);
  if (method === 'min') return inter / Math.min(areaA, areaB);
  throw new Error(`NMS method must be "union" or "min", got ${JSON.stringify(method)}`);
}

/**
 * Indices kept by the package's NMS (mirrors mtcnn/utils/bboxes.py:nms): j survives unless some
 * i < j has overlap(i, j) > threshold. The corners and areas are copied once into typed arrays
 * and the pair test is overlap() inlined (same float64 operations in the same order, so the same
 * decisions): about 10x faster than calling overlap() on objects for the ~1,000 P-Net candidates
 * of a cluttered photo (issue 14).
 * @param {Array<{x1:number,y1:number,x2:number,y2:number}>} boxes in priority order
 * @param {number} threshold
 * @param {"union"|"min"} method
 * @returns {number[]}
 */
export function nmsIndices(boxes, threshold, method) {
  if (method !== 'union' && method !== 'min') {
    throw new Error(`NMS method must be "union" or "min", got ${JSON.stringify(method)}`);
  }
  const n = boxes.length;
  const x1 = new Float64Array(n), y1 = new Float64Array(n), x2 = new Float64Array(n), y2 = new Float64Array(n);
  const area = new Float64Array(n);
  boxes.forEach((b, k) => {
    x1[k] = b.x1; y1[k] = b.y1; x2[k] = b.x2; y2[k] = b.y2;
    area[k] = (b.x2 - b.x1) * (b.y2 - b.y1);
  });
  const union = method === 'union';
  const keep = [];
  for (let j = 0; j < n; j++) {
    let suppressed = false;
    for (let i = 0; i < j; i++) {
      const w = Math.max(0, Math.min(x2[i], x2[j]) - Math.max(x1[i], x1[j]));
      const h = Math.max(0, Math.min(y2[i], y2[j]) - Math.max(y1[i], y1[j]));
      const inter = w * h;
      const o = union ? inter / (area[i] + area[j] - inter) : inter / Math.min(area[i], area[j]);
      if (o > threshold) { suppressed = true; break; }
    }
    if (!suppressed) keep.push(j);
  }
  return keep;
}

/**
 * Mirrors smart_nms_from_bboxes for one image: optional score sort, then nmsIndices.
 * @returns {Array} the kept boxes (same objects)
 */
export function nms(boxes, threshold, method, initialSort) {
  const ordered = initialSort ? sortByScoreDescending(boxes) : boxes;
  return nmsIndices(ordered, threshold, method).map((i) => ordered[i]);
}
