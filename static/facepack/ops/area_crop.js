/**
 * Area-sampled (box-filtered, antialiased) square face crops: spec.crop.downscale "area".
 *
 * Mirrors facepack/crop.py:area_axis / area_crop (the formula, and why, are in their docstrings):
 * the photo is a continuous image (pixel (y, x) fills [x, x + 1) x [y, y + 1), padValue outside);
 * crop pixel o along an axis has centre start + (o + 0.5) step, step = side / size, and the
 * footprint of f = max(step, 1) pixels around it; the output is the exact mean of the photo over
 * the two footprints' rectangle. Float64 (Float64Array), the same operations in the same order as
 * the Python twin, so the two agree bit for bit on the same pixels (tests/test_crop_area.py);
 * rounded once to float32.
 *
 * Only the rows and columns under the square are visited, indexed by JavaScript numbers (exact
 * to 2^53), so it is exact on photos of any size (the 2^24 rule of ops/bounded_crop.js), and its
 * memory is the crop's rows x the square's width, not the photo's.
 */
import { footprintCorners } from './footprint.js';

/**
 * Footprint corners along one axis (mirrors facepack/crop.py:area_axis; the corners: ops/footprint.js).
 * @returns {{lowCell: Int32Array, lowFrac: Float64Array, highCell: Int32Array, highFrac: Float64Array, foot: number}}
 */
export function cropAreaAxis(start, side, size, length) {
  const step = side / size;
  const centres = new Float64Array(size);
  for (let o = 0; o < size; o++) centres[o] = start + (o + 0.5) * step;
  return footprintCorners(centres, Math.max(step, 1), length);
}

/**
 * One area-sampled square crop (mirrors facepack/crop.py:area_crop, step for step).
 * @param {ArrayLike<number>} pixels row-major [H, W, C] photo values
 * @param {[number, number, number]} shape [H, W, C]
 * @param {number[]} square [x0, y0, side] (continuous photo pixels)
 * @param {number} size output side (pixels)
 * @param {number} padValue value outside the photo (spec.crop.pad_value)
 * @param {Float32Array} [out] where to write size * size * C values (a view into a batch)
 * @returns {Float32Array} [size, size, C] row-major
 */
export function areaCrop(pixels, shape, square, size, padValue, out = null) {
  const [height, width, C] = shape;
  if (pixels.length !== height * width * C) {
    throw new Error(`area crop: expected ${height * width * C} values for [${shape}], got ${pixels.length}`);
  }
  const [x0, y0, side] = square;
  const Y = cropAreaAxis(y0, side, size, height);
  const X = cropAreaAxis(x0, side, size, width);
  const r0 = Y.lowCell[0]; const r1 = Y.highCell[size - 1] + 1; // rows [r0, r1)
  const c0 = X.lowCell[0]; const c1 = X.highCell[size - 1] + 1; // columns [c0, c1)
  const wr = c1 - c0; const rowLen = wr * C;
  // 1. rows: running column sums S (float64, row by row); at a crop row's corners
  //    I(t) = S[j] + b (S[j + 1] - S[j]); V = I(high) - I(low) (stored into V in two steps).
  // Rows under no corner are summed in place, four rows per pass (the same float64 additions in
  // the same order: S[j + 1] = S[j] + row j, row after row), which cuts the memory traffic of the
  // ~H x W x C loop (a 2500-px square: 19 M values) to a quarter of the running sums.
  const V = new Float64Array(size * rowLen);
  let sum = new Float64Array(rowLen);
  let next = new Float64Array(rowLen);
  const rowStride = width * C;
  let lowAt = 0; let highAt = 0; // next crop row whose low / high corner is still to come
  let j = r0;
  while (j < r1 && highAt < size) {
    const corner = Math.min(lowAt < size ? Y.lowCell[lowAt] : r1, Y.highCell[highAt]);
    if (corner > j) { // rows j .. corner - 1: no corner (only S[corner] is needed)
      const end = Math.min(corner, r1);
      let at = (j * width + c0) * C;
      let r = j;
      for (; r + 4 <= end; r += 4, at += 4 * rowStride) { // 4 rows per pass, added in row order
        const a1 = at + rowStride; const a2 = a1 + rowStride; const a3 = a2 + rowStride;
        for (let k = 0; k < rowLen; k++) {
          sum[k] = (((sum[k] + (pixels[at + k] - padValue)) + (pixels[a1 + k] - padValue))
            + (pixels[a2 + k] - padValue)) + (pixels[a3 + k] - padValue);
        }
      }
      for (; r < end; r++, at += rowStride) {
        for (let k = 0; k < rowLen; k++) sum[k] += pixels[at + k] - padValue;
      }
      j = end;
      continue;
    }
    const base = (j * width + c0) * C;
    const low = lowAt < size && Y.lowCell[lowAt] === j;
    const high = Y.highCell[highAt] === j && highAt < lowAt + (low ? 1 : 0);
    const single = !(low && lowAt + 1 < size && Y.lowCell[lowAt + 1] === j)
      && !(high && highAt + 1 < size && Y.highCell[highAt + 1] === j);
    if (single) { // at most one low and one high corner on row j (always, inside the photo): one pass
      const vl = lowAt * rowLen; const bl = low ? Y.lowFrac[lowAt] : 0;
      const vh = highAt * rowLen; const bh = high ? Y.highFrac[highAt] : 0;
      if (low && high) {
        for (let k = 0; k < rowLen; k++) {
          const s0 = sum[k]; const s1 = s0 + (pixels[base + k] - padValue);
          V[vl + k] = s0 + bl * (s1 - s0); // the low corner first: it may be the same crop row's
          V[vh + k] = (s0 + bh * (s1 - s0)) - V[vh + k];
          sum[k] = s1;
        }
      } else if (low) {
        for (let k = 0; k < rowLen; k++) {
          const s0 = sum[k]; const s1 = s0 + (pixels[base + k] - padValue);
          V[vl + k] = s0 + bl * (s1 - s0);
          sum[k] = s1;
        }
      } else {
        for (let k = 0; k < rowLen; k++) {
          const s0 = sum[k]; const s1 = s0 + (pixels[base + k] - padValue);
          V[vh + k] = (s0 + bh * (s1 - s0)) - V[vh + k];
          sum[k] = s1;
        }
      }
      if (low) lowAt++;
      if (high) highAt++;
      j++;
      continue;
    }
    for (let k = 0; k < rowLen; k++) next[k] = sum[k] + (pixels[base + k] - padValue);
    while (lowAt < size && Y.lowCell[lowAt] === j) {
      const b = Y.lowFrac[lowAt]; const v = lowAt * rowLen;
      for (let k = 0; k < rowLen; k++) V[v + k] = sum[k] + b * (next[k] - sum[k]);
      lowAt++;
    }
    while (highAt < size && Y.highCell[highAt] === j && highAt < lowAt) {
      const b = Y.highFrac[highAt]; const v = highAt * rowLen;
      for (let k = 0; k < rowLen; k++) V[v + k] = (sum[k] + b * (next[k] - sum[k])) - V[v + k];
      highAt++;
    }
    const swap = sum; sum = next; next = swap; // S[j + 1] becomes the running sum (no copy)
    j++;
  }
  // 2. columns: T[i] = V[0] + ... + V[i - 1] in order; J(t) = T[i] + a (T[i + 1] - T[i]);
  //    out = pad + (J(high) - J(low)) / (f_x f_y), rounded to float32.
  const result = out ?? new Float32Array(size * size * C);
  const T = new Float64Array((wr + 1) * C);
  const area = X.foot * Y.foot;
  let k = 0;
  for (let o = 0; o < size; o++) {
    const v = o * rowLen;
    for (let c = 0; c < C; c++) { T[c] = 0; T[C + c] = V[v + c]; } // numpy's cumsum starts at V[0]
    for (let i = 2 * C, end = (wr + 1) * C; i < end; i++) T[i] = T[i - C] + V[v + i - C]; // T[i+1] = T[i] + V[i]
    for (let p = 0; p < size; p++) {
      const il = (X.lowCell[p] - c0) * C; const al = X.lowFrac[p];
      const ih = (X.highCell[p] - c0) * C; const ah = X.highFrac[p];
      for (let c = 0; c < C; c++) {
        const ll = T[il + c]; const hl = T[ih + c];
        const low = ll + al * (T[il + C + c] - ll);
        const high = hl + ah * (T[ih + C + c] - hl);
        result[k++] = padValue + (high - low) / area;
      }
    }
  }
  return result;
}
