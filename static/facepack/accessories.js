/**
 * A fun overlay from the facial keypoints: sunglasses and a hat, placed, scaled and rotated.
 * Same geometry and art as facepack/accessories.py (read its docstring for the rules):
 *
 *   import { drawAccessories } from './facepack/accessories.js';
 *   drawAccessories(ctx, faces, ['sunglasses', 'hat'], analyzer.manifest.spec);
 *
 * Eye centres are the means of the eye points (68: spec.ibug68_groups right_eye / left_eye;
 * Kaggle-15: right_eye_center / left_eye_center), the brow the four brow ends; the point indices
 * come from the manifest's spec, never from this file.
 */

export const ACCESSORIES = Object.freeze(['sunglasses', 'hat']);

// mirrors facepack/accessories.py:ART (kind -> [SVG path data in art units, CSS fill], drawn in order)
export const ACCESSORY_ART = Object.freeze({
  sunglasses: [
    ['M -0.97 -0.27 L 0.97 -0.27 L 0.95 -0.17 L -0.95 -0.17 Z '
      + 'M -0.14 -0.2 C -0.05 -0.26 0.05 -0.26 0.14 -0.2 L 0.14 -0.12 C 0.05 -0.18 -0.05 -0.18 -0.14 -0.12 Z '
      + 'M 0.93 -0.26 L 1.08 -0.24 L 1.08 -0.18 L 0.93 -0.17 Z '
      + 'M -0.93 -0.26 L -1.08 -0.24 L -1.08 -0.18 L -0.93 -0.17 Z', 'rgba(12,12,14,1)'],
    ['M 0.12 -0.2 C 0.3 -0.25 0.7 -0.25 0.9 -0.2 C 0.93 -0.05 0.88 0.18 0.74 0.25 '
      + 'C 0.6 0.3 0.3 0.29 0.2 0.22 C 0.11 0.15 0.09 -0.05 0.12 -0.2 Z '
      + 'M -0.12 -0.2 C -0.3 -0.25 -0.7 -0.25 -0.9 -0.2 C -0.93 -0.05 -0.88 0.18 -0.74 0.25 '
      + 'C -0.6 0.3 -0.3 0.29 -0.2 0.22 C -0.11 0.15 -0.09 -0.05 -0.12 -0.2 Z', 'rgba(27,29,36,0.93)'],
    ['M 0.26 -0.16 L 0.34 -0.16 L 0.25 0.04 L 0.18 0.04 Z '
      + 'M -0.74 -0.16 L -0.66 -0.16 L -0.75 0.04 L -0.82 0.04 Z', 'rgba(255,255,255,0.35)'],
  ],
  hat: [
    ['M -0.72 -0.36 C -0.72 -0.47 0.72 -0.47 0.72 -0.36 C 0.72 -0.25 -0.72 -0.25 -0.72 -0.36 Z', 'rgba(30,30,38,1)'],
    ['M -0.44 -0.38 L -0.4 -1.24 C -0.2 -1.3 0.2 -1.3 0.4 -1.24 L 0.44 -0.38 '
      + 'C 0.2 -0.32 -0.2 -0.32 -0.44 -0.38 Z', 'rgba(34,34,42,1)'],
    ['M -0.434 -0.5 L 0.434 -0.5 L 0.43 -0.62 L -0.43 -0.62 Z', 'rgba(179,38,46,1)'],
    ['M -0.4 -1.24 C -0.2 -1.19 0.2 -1.19 0.4 -1.24 C 0.2 -1.3 -0.2 -1.3 -0.4 -1.24 Z', 'rgba(62,62,74,1)'],
  ],
});

function mean(points) {
  let x = 0;
  let y = 0;
  for (const p of points) { x += p[0]; y += p[1]; }
  return [x / points.length, y / points.length];
}

function range(p, [start, stop]) {
  return p.slice(start, stop);
}

/**
 * Eye centres and brow line of one face (mirrors facepack/accessories.py:face_anchors).
 * @param {number[][]} keypoints 68 or 15 [x, y] image pixels
 * @param {object} spec manifest.json "spec" (keypoints.formats, ibug68_groups, kaggle15_names)
 * @returns {{eyeRight: number[], eyeLeft: number[], browCenter: number[], browWidth: number}}
 */
export function faceAnchors(keypoints, spec) {
  const n = Array.isArray(keypoints) ? keypoints.length : -1;
  if (!spec.keypoints.formats[String(n)] || !keypoints.every((p) => Array.isArray(p) && p.length === 2)) {
    throw new Error(`keypoints: expected 68 or 15 [x, y] image pixels, got ${n} points`);
  }
  let eyeRight;
  let eyeLeft;
  let ends; // [right outer, right inner, left inner, left outer]
  if (n === spec.keypoints.formats['68'].count) {
    const g = spec.ibug68_groups;
    eyeRight = mean(range(keypoints, g.right_eye));
    eyeLeft = mean(range(keypoints, g.left_eye));
    ends = [g.right_brow[0], g.right_brow[1] - 1, g.left_brow[0], g.left_brow[1] - 1];
  } else {
    const idx = (name) => spec.kaggle15_names.indexOf(name);
    eyeRight = keypoints[idx('right_eye_center')];
    eyeLeft = keypoints[idx('left_eye_center')];
    ends = ['right_eyebrow_outer_end', 'right_eyebrow_inner_end', 'left_eyebrow_inner_end', 'left_eyebrow_outer_end'].map(idx);
  }
  const brow = ends.map((i) => keypoints[i]);
  const outerR = brow[0];
  const outerL = brow[brow.length - 1];
  return { eyeRight, eyeLeft, browCenter: mean(brow), browWidth: Math.hypot(outerL[0] - outerR[0], outerL[1] - outerR[1]) };
}

function checkKind(kind) {
  if (!ACCESSORIES.includes(kind)) throw new Error(`accessory kind must be one of ${ACCESSORIES.join(', ')}, got ${JSON.stringify(kind)}`);
}

/**
 * Where one accessory goes (mirrors facepack/accessories.py:accessory_transform).
 * @returns {{kind: string, center: number[], angle: number, scale: number}} centre in image
 *   pixels, angle in radians (y down: positive turns clockwise on screen), scale in px per art unit
 */
export function accessoryTransform(keypoints, kind, spec) {
  checkKind(kind);
  const a = faceAnchors(keypoints, spec);
  const [rx, ry] = a.eyeRight;
  const [lx, ly] = a.eyeLeft;
  const angle = Math.atan2(ly - ry, lx - rx);
  if (kind === 'sunglasses') {
    return { kind, center: [(rx + lx) / 2, (ry + ly) / 2], angle, scale: Math.hypot(lx - rx, ly - ry) };
  }
  return { kind, center: a.browCenter, angle, scale: a.browWidth };
}

/** Art-frame [u, v] -> image [x, y] by a transform (mirrors facepack/accessories.py:to_image). */
export function toImage(transform, [u, v]) {
  const c = Math.cos(transform.angle);
  const s = Math.sin(transform.angle);
  const k = transform.scale;
  return [transform.center[0] + k * (u * c - v * s), transform.center[1] + k * (u * s + v * c)];
}

/**
 * Draw the accessories on every face onto a 2D context (canvas or OffscreenCanvas; a worker's
 * OffscreenCanvas works too). Drawn in image pixels on top of the context's current transform
 * (scale the context first to draw on a resized view of the photo); the context's state is restored.
 * @param {CanvasRenderingContext2D|OffscreenCanvasRenderingContext2D} ctx
 * @param {object[]} faces analyze() faces (each with `keypoints`)
 * @param {string[]} kinds names from ACCESSORIES, drawn in the order given
 * @param {object} spec manifest.json "spec" (analyzer.manifest.spec)
 * @throws {Error} a bad kind; a face without keypoints (load the 'keypoints' model)
 */
export function drawAccessories(ctx, faces, kinds, spec) {
  kinds.forEach(checkKind);
  faces.forEach((face, i) => {
    if (!face.keypoints || !face.keypoints.length) {
      throw new Error(`drawAccessories: face ${i} has no keypoints (load the 'keypoints' model)`);
    }
    for (const kind of kinds) {
      const t = accessoryTransform(face.keypoints, kind, spec);
      const c = Math.cos(t.angle) * t.scale;
      const s = Math.sin(t.angle) * t.scale;
      ctx.save();
      ctx.transform(c, s, -s, c, t.center[0], t.center[1]);
      for (const [d, fill] of ACCESSORY_ART[kind]) {
        ctx.fillStyle = fill;
        ctx.fill(new Path2D(d));
      }
      ctx.restore();
    }
  });
}
