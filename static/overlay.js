/**
 * Drawing a result over its photo, shared by the page (app.js: the zoomable view) and the
 * analysis worker (analysis-worker.js: the annotated PNG download), on any 2D context
 * (CanvasRenderingContext2D or OffscreenCanvasRenderingContext2D). No DOM, no imports.
 *
 * Coordinates: faces are in photo pixels; a view {scale, dx, dy, width, height} maps photo pixel
 * (x, y) to context pixel (dx + x * scale, dy + y * scale) on a context of width x height.
 * Marks are sized in context pixels from the face's size on screen (so the 68 points stay
 * visible on a 30 px face and do not blot out a large one), times `unit` (device pixel ratio).
 */

export const FACE_COLORS = ['#ff3b6b', '#2fd0ff', '#ffd23f', '#7cff6b', '#c77dff', '#ff9f1c'];
// Grad-CAM colour map: value 0..1 -> [r, g, b, alpha 0..1]. Low values are transparent and every
// colour is bright, so the overlay tints the photo where the model looked and never darkens it.
const HEATMAP_STOPS = [
  [0.0, [40, 90, 255, 0]],
  [0.25, [0, 200, 255, 0.16]],
  [0.5, [60, 255, 120, 0.3]],
  [0.75, [255, 220, 0, 0.42]],
  [1.0, [255, 40, 20, 0.55]],
];
const HEATMAP_FEATHER = 0.15; // fraction of the square's side over which the overlay fades out at its edges
const LABEL_FONT_PX = 13; // label text height, context pixels per unit
const LABEL_PAD_PX = 4;
// Mark sizes as fractions of the face box width on screen, clamped to [min, max] context pixels per unit.
const KEYPOINT_RADIUS = { fraction: 0.011, min: 0.9, max: 3 };
const LANDMARK_RADIUS = { fraction: 0.022, min: 1.6, max: 5 };
const BOX_LINE = { fraction: 0.012, min: 1.25, max: 3 };

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** Heatmap colour of value v (0..1): [r, g, b, a] with a in 0..1, linear between HEATMAP_STOPS. */
export function heatmapColor(v) {
  const x = clamp(Number(v) || 0, 0, 1);
  let i = 0;
  while (i < HEATMAP_STOPS.length - 2 && x > HEATMAP_STOPS[i + 1][0]) i += 1;
  const [x0, c0] = HEATMAP_STOPS[i];
  const [x1, c1] = HEATMAP_STOPS[i + 1];
  const f = (x - x0) / (x1 - x0);
  return c0.map((c, k) => c + f * (c1[k] - c));
}

/**
 * RGBA bytes of an upsampled heatmap ({width, height, data} in 0..1, row-major): colour map with
 * alpha, faded out near the square's edges (no hard square outline).
 * @returns {Uint8ClampedArray} width * height * 4
 */
export function heatmapRgba(map) {
  const { width, height, data } = map;
  const out = new Uint8ClampedArray(width * height * 4);
  const fx = Math.max(1, HEATMAP_FEATHER * width);
  const fy = Math.max(1, HEATMAP_FEATHER * height);
  for (let y = 0; y < height; y += 1) {
    const wy = clamp(Math.min(y + 0.5, height - y - 0.5) / fy, 0, 1);
    for (let x = 0; x < width; x += 1) {
      const wx = clamp(Math.min(x + 0.5, width - x - 0.5) / fx, 0, 1);
      const [r, g, b, a] = heatmapColor(data[y * width + x]);
      const o = (y * width + x) * 4;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
      out[o + 3] = Math.round(255 * a * wx * wy);
    }
  }
  return out;
}

/** The label text of face `index` (0-based): its number and, with a beauty score, the score. */
export function labelText(face, index, withScore) {
  return withScore && face.beauty ? `${index + 1} · ${face.beauty.score.toFixed(1)}` : `${index + 1}`;
}

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/**
 * Place one label box of size w x h next to a face box (context pixels), inside [0, W] x [0, H],
 * overlapping none of `placed`. Candidates: above the box, inside its top, below it, inside its
 * bottom (left-aligned, then right-aligned). Returns {x, y, w, h} or null when none is free.
 */
export function placeLabel(box, w, h, W, H, placed) {
  const xs = [box.x, box.x + box.w - w];
  const ys = [box.y - h, box.y, box.y + box.h, box.y + box.h - h];
  for (const y of ys) {
    for (const x of xs) {
      const r = { x: clamp(x, 0, Math.max(0, W - w)), y: clamp(y, 0, Math.max(0, H - h)), w, h };
      if (!placed.some((p) => overlaps(p, r))) return r;
    }
  }
  return null;
}

function drawDot(ctx, x, y, radius, fill, stroke, lineWidth) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  if (stroke) {
    ctx.lineWidth = lineWidth;
    ctx.strokeStyle = stroke;
    ctx.stroke();
  }
}

/**
 * Draw every face's heatmap (optional), box, 68 keypoints, 5 detector points and numbered label.
 * @param {CanvasRenderingContext2D|OffscreenCanvasRenderingContext2D} ctx
 * @param {object[]} faces result faces (photo pixels)
 * @param {{scale: number, dx: number, dy: number, width: number, height: number}} view
 * @param {{overlays?: (CanvasImageSource|null)[], heatmaps?: boolean, unit?: number}} [opts]
 *   overlays: one upsampled, coloured heatmap image per face (drawn over heatmap.square)
 * @returns {{index: number, x: number, y: number, w: number, h: number, text: string, overlapping: boolean}[]}
 *   the labels as placed (context pixels)
 */
export function drawFaces(ctx, faces, view, { overlays = [], heatmaps = true, unit = 1 } = {}) {
  const { scale, dx, dy, width: W, height: H } = view;
  const toX = (x) => dx + x * scale;
  const toY = (y) => dy + y * scale;
  ctx.save();
  if (heatmaps) {
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    faces.forEach((face, i) => {
      const overlay = overlays[i];
      if (!overlay || !face.heatmap) return;
      const { x, y, side } = face.heatmap.square;
      ctx.drawImage(overlay, toX(x), toY(y), side * scale, side * scale);
    });
  }
  const boxes = faces.map((f) => ({ x: toX(f.box.x), y: toY(f.box.y), w: f.box.width * scale, h: f.box.height * scale }));
  faces.forEach((face, i) => {
    const color = FACE_COLORS[i % FACE_COLORS.length];
    const b = boxes[i];
    const size = (spec) => unit * clamp((b.w / unit) * spec.fraction, spec.min, spec.max);
    ctx.lineWidth = size(BOX_LINE);
    ctx.strokeStyle = color;
    ctx.strokeRect(b.x, b.y, b.w, b.h);
    const kr = size(KEYPOINT_RADIUS);
    for (const [px, py] of face.keypoints ?? []) drawDot(ctx, toX(px), toY(py), kr, color);
    const lr = size(LANDMARK_RADIUS);
    for (const [px, py] of Object.values(face.landmarks5 ?? {})) drawDot(ctx, toX(px), toY(py), lr, '#ffffff', color, lr / 2.5);
  });
  // Labels last, largest faces first (they have the most room), never over one another.
  const fontPx = LABEL_FONT_PX * unit;
  const pad = LABEL_PAD_PX * unit;
  const h = fontPx + 2 * pad;
  ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = 'middle';
  const order = boxes.map((b, i) => i).sort((a, c) => boxes[c].w - boxes[a].w || a - c);
  const placed = [];
  const labels = [];
  for (const i of order) {
    let text = labelText(faces[i], i, true);
    let w = ctx.measureText(text).width + 2 * pad;
    let rect = placeLabel(boxes[i], w, h, W, H, placed);
    if (!rect) { // no room for the score: the number alone (the list has the score)
      text = labelText(faces[i], i, false);
      w = ctx.measureText(text).width + 2 * pad;
      rect = placeLabel(boxes[i], w, h, W, H, placed);
    }
    const overlapping = !rect;
    if (!rect) rect = { x: clamp(boxes[i].x, 0, Math.max(0, W - w)), y: clamp(boxes[i].y, 0, Math.max(0, H - h)), w, h };
    placed.push(rect);
    ctx.fillStyle = FACE_COLORS[i % FACE_COLORS.length];
    ctx.fillRect(rect.x, rect.y, rect.w, rect.h);
    ctx.fillStyle = '#000000';
    ctx.fillText(text, rect.x + pad, rect.y + h / 2);
    labels.push({ index: i, ...rect, text, overlapping });
  }
  ctx.restore();
  return labels.sort((a, b) => a.index - b.index);
}
