/**
 * Area-sampled (box-filtered, antialiased) R-Net / O-Net patches: spec.mtcnn.patch_resize "area".
 *
 * Mirrors facepack/detect/mtcnn_detector.py:area_patches (the formula, its source and why are in
 * its docstring and the module's): the photo is a continuous image (pixel (y, x) fills
 * [x, x + 1) x [y, y + 1), padValue outside); the samples sit where the package's bilinear
 * crop_and_resize puts them (areaAxis), each widened to a footprint of f = max(step, 1) pixels;
 * the output is the exact mean of the image over the two footprints' rectangle (f > 1: every
 * source pixel under it, edge pixels by their overlap, as OpenCV INTER_AREA / MATLAB imresize's
 * antialiasing; f = 1: linear interpolation between pixel centres). It is continuous in the box
 * coordinates, so a 1e-7 px box difference between JS and Python stays a 1e-7 px difference
 * through R-Net and O-Net (bilinear patches of a large noisy box amplified it ~10x per stage).
 *
 * Computed in float64 (Float64Array) from the integral image of pixels - padValue, with the same
 * operations in the same order as the Python (numpy) twin, so the two agree bit for bit on the
 * same pixels; rounded once to float32. Cost: the integral image once per photo (H W C adds,
 * built on the first patch), then 4 interpolated reads per output value whatever the box size
 * (a 24 x 24 patch of a 1000-px box costs what one of a 24-px box does).
 */
import { footprintCorners } from './footprint.js';

/**
 * Integral image of pixels - padValue: (H + 1) x (W + 1) x C, S[j][i] = sum over y < j, x < i.
 * Rows are accumulated first (down each column), then along each row, in order
 * (mirrors mtcnn_detector.py:integral_image: cumsum(cumsum(., axis=0), axis=1)).
 * @param {ArrayLike<number>} pixels row-major [H, W, C]
 * @param {Float64Array} [into] (H + 1) (W + 1) C values to write the table into (reused memory)
 * @returns {Float64Array}
 */
export function integralImage(pixels, height, width, channels, padValue, into = null) {
  if (pixels.length !== height * width * channels) {
    throw new Error(`area patches: expected ${height * width * channels} values for [${height}, ${width}, ${channels}], got ${pixels.length}`);
  }
  const rowLen = (width + 1) * channels;
  const table = into ?? new Float64Array((height + 1) * rowLen);
  if (into) { // a reused buffer: zero what the loop below does not write (row 0, column 0)
    if (into.length !== (height + 1) * rowLen) throw new Error(`area patches: the integral image buffer must hold ${(height + 1) * rowLen} values, got ${into.length}`);
    table.fill(0, 0, rowLen);
    for (let at = rowLen; at < table.length; at += rowLen) table.fill(0, at, at + channels);
  }
  const column = new Float64Array(width * channels); // running column sums (cumsum over rows)
  const end = width * channels;
  for (let y = 0; y < height; y++) {
    const src = y * width * channels;
    const dst = (y + 1) * rowLen + channels;
    if (channels === 3) { // the same adds per channel in the same order, the 3 channels in one pass
      let run0 = 0, run1 = 0, run2 = 0;
      for (let k = 0; k < end; k += 3) {
        const s0 = column[k] + (pixels[src + k] - padValue);
        const s1 = column[k + 1] + (pixels[src + k + 1] - padValue);
        const s2 = column[k + 2] + (pixels[src + k + 2] - padValue);
        column[k] = s0; column[k + 1] = s1; column[k + 2] = s2;
        run0 += s0; run1 += s1; run2 += s2;
        table[dst + k] = run0; table[dst + k + 1] = run1; table[dst + k + 2] = run2;
      }
      continue;
    }
    for (let c = 0; c < channels; c++) {
      let run = 0; // cumsum along the row, per channel
      for (let k = c; k < end; k += channels) {
        const sum = column[k] + (pixels[src + k] - padValue);
        column[k] = sum;
        run += sum;
        table[dst + k] = run;
      }
    }
  }
  return table;
}

/**
 * Footprint corners along one axis (mirrors mtcnn_detector.py:_area_axis): the samples sit
 * where crop_and_resize puts them, c = z1 (L - 1) / L + o s + 0.5 with
 * s = (z2 - z1) (L - 1) / L / (size - 1), widened to f = max(s, 1) pixels.
 * @returns {{lowCell: Int32Array, lowFrac: Float64Array, highCell: Int32Array, highFrac: Float64Array, foot: number}}
 */
export function areaAxis(start, stop, size, length) {
  if (!(size >= 2)) throw new Error(`area patches: size must be >= 2 pixels, got ${size}`);
  const first = start * (length - 1) / length;
  const step = (stop - start) * (length - 1) / length / (size - 1);
  const centres = new Float64Array(size);
  for (let o = 0; o < size; o++) centres[o] = first + o * step + 0.5;
  return footprintCorners(centres, Math.max(step, 1), length);
}

/**
 * One spare integral-image buffer, handed from a released AreaPatcher to the next one (a camera
 * loop's photos share one: allocating and first touching 30 MB of float64 for a 1280 x 996 photo
 * costs about as much as filling it). Only a released patcher's buffer is kept, so two patchers
 * never share memory. A table taken before the last releaseSpareBuffers() is not kept (`drops`).
 */
let spare = null;
let drops = 0; // releaseSpareBuffers() calls so far

function takeBuffer(length) {
  if (spare && spare.buffer.byteLength >= length * Float64Array.BYTES_PER_ELEMENT) {
    const buf = new Float64Array(spare.buffer, 0, length);
    spare = null;
    return buf;
  }
  return new Float64Array(length);
}

/**
 * Drop the spare integral-image buffer (up to ~39 MB for a 1280 px detection image) so the
 * garbage collector can free it; analyzer.dispose() calls this. Outputs are unchanged (the next
 * patcher allocates a new buffer). Another live analyzer only loses the reuse.
 */
export function releaseSpareBuffers() {
  spare = null;
  drops += 1; // a patcher in use now (an analyze() still running) drops its table on release()
}

/** Bytes held by the spare integral-image buffer (0 when none): for leak tests. */
export function spareBufferBytes() {
  return spare ? spare.buffer.byteLength : 0;
}

/** Area-sampled patches of one photo; the integral image is built on first use and shared. */
export class AreaPatcher {
  /**
   * @param {ArrayLike<number>} pixels row-major [H, W, C] (raw RGB for the MTCNN nets)
   * @param {number} padValue value of the plane outside the photo (spec.mtcnn.patch_pad_value)
   */
  constructor(pixels, height, width, channels, padValue) {
    Object.assign(this, { pixels, height, width, channels, padValue });
    this.table = null;
    this.drops = drops; // releaseSpareBuffers() calls when its table was built (release keeps it only if none since)
  }

  /**
   * Done with this photo: its integral image's memory goes to the next patcher (a later
   * patches() call rebuilds it). Optional; without it the garbage collector frees it.
   */
  release() {
    const kept = this.table && this.drops === drops; // not after releaseSpareBuffers (dispose) freed the spare
    if (kept && (!spare || spare.buffer.byteLength < this.table.buffer.byteLength)) spare = this.table;
    this.table = null;
  }

  /**
   * @param {number[][]} boxes [x1, y1, x2, y2] each, pixels of the photo (continuous coordinates)
   * @param {number} size output side (pixels)
   * @returns {Float32Array} [N, size, size, C] row-major
   */
  patches(boxes, size) {
    if (!this.table) {
      const length = (this.height + 1) * (this.width + 1) * this.channels;
      this.table = integralImage(this.pixels, this.height, this.width, this.channels, this.padValue, takeBuffer(length));
      this.drops = drops;
    }
    const { table, channels: C, padValue: pad } = this;
    const rowLen = (this.width + 1) * C;
    const out = new Float32Array(boxes.length * size * size * C);
    // I(corner) = bilinear interpolation of the table, x first then y (the Python twin's order):
    // r0 = T[j, i] + a (T[j, i+1] - T[j, i]); r1 = the same on row j + 1; I = r0 + b (r1 - r0)
    if (C === 3) {
      patches3(table, rowLen, boxes, size, this.width, this.height, pad, out);
      return out;
    }
    let k = 0;
    for (const [x1, y1, x2, y2] of boxes) {
      const X = areaAxis(x1, x2, size, this.width);
      const Y = areaAxis(y1, y2, size, this.height);
      const area = X.foot * Y.foot;
      for (let py = 0; py < size; py++) {
        const rl = Y.lowCell[py] * rowLen; const bl = Y.lowFrac[py];
        const rh = Y.highCell[py] * rowLen; const bh = Y.highFrac[py];
        for (let ox = 0; ox < size; ox++) {
          const cl = X.lowCell[ox] * C; const al = X.lowFrac[ox];
          const ch = X.highCell[ox] * C; const ah = X.highFrac[ox];
          for (let c = 0; c < C; c++) {
            let p = rh + ch + c; let q = p + rowLen;
            let r0 = table[p] + ah * (table[p + C] - table[p]);
            let r1 = table[q] + ah * (table[q + C] - table[q]);
            const hh = r0 + bh * (r1 - r0);
            p = rh + cl + c; q = p + rowLen;
            r0 = table[p] + al * (table[p + C] - table[p]);
            r1 = table[q] + al * (table[q + C] - table[q]);
            const hl = r0 + bh * (r1 - r0);
            p = rl + ch + c; q = p + rowLen;
            r0 = table[p] + ah * (table[p + C] - table[p]);
            r1 = table[q] + ah * (table[q + C] - table[q]);
            const lh = r0 + bl * (r1 - r0);
            p = rl + cl + c; q = p + rowLen;
            r0 = table[p] + al * (table[p + C] - table[p]);
            r1 = table[q] + al * (table[q + C] - table[q]);
            const ll = r0 + bl * (r1 - r0);
            out[k++] = pad + ((hh - hl) - (lh - ll)) / area;
          }
        }
      }
    }
    return out;
  }
}

/**
 * AreaPatcher.patches for 3 channels: per output value the same float64 operations in the same
 * order as the general loop (one corner's 3 channels read together: adjacent in the table).
 */
function patches3(table, rowLen, boxes, size, width, height, pad, out) {
  let k = 0;
  const corner = (p, a, b) => { // I at table offset p (row j, column i): x then y
    const q = p + rowLen;
    const r0 = table[p] + a * (table[p + 3] - table[p]);
    const r1 = table[q] + a * (table[q + 3] - table[q]);
    return r0 + b * (r1 - r0);
  };
  for (const [x1, y1, x2, y2] of boxes) {
    const X = areaAxis(x1, x2, size, width);
    const Y = areaAxis(y1, y2, size, height);
    const area = X.foot * Y.foot;
    for (let py = 0; py < size; py++) {
      const rl = Y.lowCell[py] * rowLen; const bl = Y.lowFrac[py];
      const rh = Y.highCell[py] * rowLen; const bh = Y.highFrac[py];
      for (let ox = 0; ox < size; ox++) {
        const cl = X.lowCell[ox] * 3; const al = X.lowFrac[ox];
        const ch = X.highCell[ox] * 3; const ah = X.highFrac[ox];
        for (let c = 0; c < 3; c++) {
          const hh = corner(rh + ch + c, ah, bh);
          const hl = corner(rh + cl + c, al, bh);
          const lh = corner(rl + ch + c, ah, bl);
          const ll = corner(rl + cl + c, al, bl);
          out[k++] = pad + ((hh - hl) - (lh - ll)) / area;
        }
      }
    }
  }
}
