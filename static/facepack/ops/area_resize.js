/**
 * Exact AREA resize (TF.js has none).
 *
 * Mirrors tf.image.resize(method="area") == tensorflow/core/kernels/image/resize_area_op.cc with
 * align_corners=false, which the `mtcnn` package uses for its P-Net pyramid
 * (mtcnn/utils/images.py:scale_images). Along one axis, output cell o covers input cells
 * [o * s, (o + 1) * s) with s = in / out (float32 arithmetic, as in the kernel); each input cell
 * contributes its overlap length / s. The 2-D resize is separable: out = A_h @ img @ A_w^T, with
 * A the per-axis overlap matrices (areaWeights). As A is banded (each output cell touches about
 * s + 1 input cells) the product is computed as two sparse passes over the pixels on the CPU
 * (areaResizePixels): far cheaper than dense matmuls (measured on a busy 2-core machine, the
 * whole pyramid of a 1024 x 817 photo: 1.4 s as WASM matmuls, 0.17 s as these loops) and summed
 * in float64. Twin: tests/test_js_ops.py compares with tf.image.resize.
 *
 * The kernel is NOT affine-invariant: its cell bounds o * s are float32, so one output cell's
 * weights sum to 1 only up to their rounding (measured 1 +- 8e-5 for a 1280 x 996 photo at the
 * first pyramid scale, growing with the side). The package resizes the NORMALISED photo
 * (x - 127.5) / 128, so resizing raw pixels and normalising after (inside the net) moves every
 * level by 127.5 * (sum - 1) = up to 0.01 grey levels: P-Net probabilities then differ by ~1e-3,
 * which reorders near-equal candidates before NMS and changes the surviving boxes on crowded
 * photos (issue 12, item 2). areaResizePixels therefore takes the offset that normalises to 0 and
 * resizes data - offset (then adds it back): the same numbers as the package's resize.
 */

const f32 = Math.fround;

/**
 * Overlap taps of one axis: for each output cell, the input cells it covers and their weights
 * (overlap / scale, summing to 1).
 * @param {number} inSize input length (pixels)
 * @param {number} outSize output length (pixels)
 * @returns {{index: Int32Array, weight: Float64Array}[]}
 */
export function areaTaps(inSize, outSize) {
  if (!(Number.isInteger(inSize) && inSize > 0 && Number.isInteger(outSize) && outSize > 0)) {
    throw new Error(`area resize: sizes must be positive integers, got in=${inSize} out=${outSize}`);
  }
  const scale = f32(inSize / outSize);
  const taps = [];
  for (let o = 0; o < outSize; o++) {
    const start = f32(o * scale);
    const stop = f32((o + 1) * scale);
    const first = Math.floor(start);
    const last = Math.ceil(stop);
    const byIndex = new Map();
    for (let i = first; i < last; i++) {
      let overlap;
      if (i < start) overlap = i + 1 > stop ? scale : f32(i + 1 - start);
      else overlap = i + 1 > stop ? f32(stop - i) : 1;
      const col = Math.min(i, inSize - 1); // the kernel's BoundIfNeeded
      byIndex.set(col, (byIndex.get(col) ?? 0) + overlap / scale);
    }
    taps.push({ index: Int32Array.from(byIndex.keys()), weight: Float64Array.from(byIndex.values()) });
  }
  return taps;
}

/**
 * Dense overlap matrix of one axis, row-major [outSize, inSize] (A_h or A_w above).
 * @returns {Float32Array}
 */
export function areaWeights(inSize, outSize) {
  const m = new Float32Array(outSize * inSize);
  areaTaps(inSize, outSize).forEach(({ index, weight }, o) => {
    index.forEach((i, k) => { m[o * inSize + i] = weight[k]; });
  });
  return m;
}

/**
 * AREA-resize row-major [h, w, c] pixels to [outH, outW, c]: offset + resize(data - offset).
 * @param {Float32Array|Uint8Array} data
 * @param {number} [offset] the value that normalises to 0 (the MTCNN pyramid: the manifest's
 *   spec.mtcnn.normalize.offset, so that the result equals the package's resize of the
 *   normalised photo; see the note at the top). 0: tf.image.resize(data, method="area").
 * @returns {Float32Array}
 */
export function areaResizePixels(data, h, w, c, outH, outW, offset = 0) {
  return new AreaResizer(data, h, w, c, offset).resize(outH, outW);
}

/**
 * Column taps of one axis flattened for the inner loops: output cell x reads the values at
 * index[k] (input cell * channels) with weight[k] for k in [start[x], start[x + 1]), in
 * areaTaps' order (so every sum adds the same terms in the same order).
 */
function flatTaps(inSize, outSize, channels) {
  const taps = areaTaps(inSize, outSize);
  const start = new Int32Array(outSize + 1);
  taps.forEach((t, x) => { start[x + 1] = start[x] + t.index.length; });
  const index = new Int32Array(start[outSize]);
  const weight = new Float64Array(start[outSize]);
  taps.forEach((t, x) => {
    for (let k = 0; k < t.index.length; k++) {
      index[start[x] + k] = t.index[k] * channels;
      weight[start[x] + k] = t.weight[k];
    }
  });
  return { start, index, weight };
}

/**
 * Pass 2 of one output row: out[y, x, ch] = offset + sum_k weight[k] * row[index[k] + ch], the
 * sum started at 0 and taken in tap order (3 channels unrolled: each channel's sum is the same).
 * @param {Float64Array} row one pass-1 row, [w * c]
 * @param {Float32Array} out [outH, outW, c]
 */
function columnsOfRow(row, rowAt, taps, out, y, outW, c, offset) {
  const { start, index, weight } = taps;
  let dst = y * outW * c;
  if (c === 3) {
    for (let x = 0; x < outW; x++, dst += 3) {
      let s0 = 0, s1 = 0, s2 = 0;
      for (let k = start[x], end = start[x + 1]; k < end; k++) {
        const wk = weight[k];
        const p = rowAt + index[k];
        s0 += wk * row[p];
        s1 += wk * row[p + 1];
        s2 += wk * row[p + 2];
      }
      out[dst] = s0 + offset;
      out[dst + 1] = s1 + offset;
      out[dst + 2] = s2 + offset;
    }
    return;
  }
  for (let x = 0; x < outW; x++, dst += c) {
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let k = start[x], end = start[x + 1]; k < end; k++) sum += weight[k] * row[rowAt + index[k] + ch];
      out[dst + ch] = sum + offset;
    }
  }
}

/**
 * Several AREA resizes of one photo (the P-Net pyramid), each equal to areaResizePixels.
 *
 * Separable: pass 1 sums input rows into one row per output row (Float64), pass 2 sums that row's
 * columns into the output row (columnsOfRow). Pass 1 of a level reads, per output row, the
 * overlap-weighted sum of the input rows its cell covers:
 * - large levels (4 * outH >= h + outH, scales over about 1/3) sum those rows directly
 *   (rowsDirect: ~in / out + 1 rows per output row);
 * - the small levels take it from column-wise prefix sums P[i] = sum_{k < i} (row k - offset)
 *   (float64): F(t) = P[floor t] + (t - floor t) * (row[floor t] - offset) at a cell boundary t,
 *   and the output row is (F(stop) - F(start)) / scale. t - floor t equals the kernel's float32
 *   overlap (start and stop are float32; the difference is a multiple of their ulp below 1).
 *   All small levels are computed together in ONE top-to-bottom sweep (sweep): a running prefix
 *   row P (one row of w * c values, in cache) instead of an [h + 1, w * c] table, each level's
 *   F(start) kept from its previous boundary; the photo is read once for all of them.
 * Both ways give the kernel's weights and differ only in float64 rounding (|P| <= 255 * h, so
 * ~1e-11 grey levels), far below the float32 output's resolution. The sweep adds the same terms
 * in the same order as a prefix table would (P[i + 1] = P[i] + (row i - offset)), so its output is
 * the previous table version's bit for bit (tests/test_mtcnn_pyramid.py:
 * test_sweep_equals_the_previous_table_version, against that version kept in
 * tests/js/ref/area_resize_0466c5e.js; against tf.image.resize: tests/test_js_ops.py).
 * Measured: bench/README.md (issue 14).
 */
export class AreaResizer {
  /**
   * @param {Float32Array|Uint8Array} data row-major [h, w, c]
   * @param {number} h
   * @param {number} w
   * @param {number} c
   * @param {number} [offset] see areaResizePixels
   */
  constructor(data, h, w, c, offset = 0) {
    if (data.length !== h * w * c) throw new Error(`area resize: expected ${h * w * c} values for ${h}x${w}x${c}, got ${data.length}`);
    Object.assign(this, { data, h, w, c, offset, planned: [], done: new Map(), taps: new Map() });
  }

  /** Whether an outH-row level takes its rows from prefix sums (the class note). */
  byPrefix(outH) {
    return 4 * outH < this.h + outH;
  }

  /**
   * Announce the levels to come ([[outH, outW], ...], e.g. the whole pyramid): the first
   * prefix-sum level asked for then computes all announced prefix-sum levels in one sweep.
   * Optional: an unannounced level is swept alone when asked for.
   */
  plan(shapes) {
    for (const [outH, outW] of shapes) {
      checkOut(outH, outW);
      if (this.byPrefix(outH)) this.planned.push([outH, outW]);
    }
    return this;
  }

  /** flatTaps of the columns for outW (cached per resizer). */
  columnTaps(outW) {
    let taps = this.taps.get(outW);
    if (!taps) {
      taps = flatTaps(this.w, outW, this.c);
      this.taps.set(outW, taps);
    }
    return taps;
  }

  /**
   * One large level by direct row sums: row[j] = sum_i A_h[y, i] * (data[i] - offset) (the sum
   * started at 0, taps in order), then pass 2.
   * @returns {Float32Array} [outH, outW, c]
   */
  direct(outH, outW) {
    const { data, h, w, c, offset } = this;
    const stride = w * c;
    const rowTaps = areaTaps(h, outH);
    const colTaps = this.columnTaps(outW);
    const row = new Float64Array(stride);
    const out = new Float32Array(outH * outW * c);
    for (let y = 0; y < outH; y++) {
      const { index, weight } = rowTaps[y];
      const n = index.length;
      const s0 = index[0] * stride, w0 = weight[0];
      if (n === 2) {
        const s1 = index[1] * stride, w1 = weight[1];
        for (let j = 0; j < stride; j++) {
          let sum = 0;
          sum += w0 * (data[s0 + j] - offset);
          row[j] = sum + w1 * (data[s1 + j] - offset);
        }
      } else if (n === 3) {
        const s1 = index[1] * stride, w1 = weight[1], s2 = index[2] * stride, w2 = weight[2];
        for (let j = 0; j < stride; j++) {
          let sum = 0;
          sum += w0 * (data[s0 + j] - offset);
          sum += w1 * (data[s1 + j] - offset);
          row[j] = sum + w2 * (data[s2 + j] - offset);
        }
      } else {
        for (let j = 0; j < stride; j++) {
          let sum = 0;
          for (let k = 0; k < n; k++) sum += weight[k] * (data[index[k] * stride + j] - offset);
          row[j] = sum;
        }
      }
      columnsOfRow(row, 0, colTaps, out, y, outW, c, offset);
    }
    return out;
  }

  /**
   * The prefix-sum levels `shapes` in one sweep down the photo (the class note); their outputs
   * go to this.done.
   */
  sweep(shapes) {
    const { data, h, w, c, offset } = this;
    const stride = w * c;
    const levels = shapes.map(([outH, outW]) => {
      const scale = f32(h / outH);
      return {
        outH, outW, scale, colTaps: this.columnTaps(outW), out: new Float32Array(outH * outW * c),
        k: 0, // next cell boundary: t_k = f32(k * scale), k = 0..outH
        fLo: new Float64Array(stride), fHi: new Float64Array(stride),
      };
    });
    // F at boundary t, in the input row floor(t) (clamped to h: rows past the last are the last
    // row again, the kernel's BoundIfNeeded): P[i] + (t - i) * (data[min(i, h - 1)] - offset).
    const rowOf = (t) => Math.min(Math.floor(t), h);
    const prefix = new Float64Array(stride); // P[i] while row i is visited
    const tmp = new Float64Array(stride);
    for (let i = 0; i <= h; i++) {
      const src = Math.min(i, h - 1) * stride;
      for (const L of levels) {
        while (L.k <= L.outH) {
          const t = f32(L.k * L.scale);
          if (rowOf(t) !== i) break;
          const frac = t - i;
          const fHi = L.fHi;
          for (let j = 0; j < stride; j++) fHi[j] = prefix[j] + frac * (data[src + j] - offset);
          if (L.k > 0) {
            const fLo = L.fLo, scale = L.scale;
            for (let j = 0; j < stride; j++) tmp[j] = (fHi[j] - fLo[j]) / scale;
            columnsOfRow(tmp, 0, L.colTaps, L.out, L.k - 1, L.outW, c, offset);
          }
          L.fHi = L.fLo;
          L.fLo = fHi;
          L.k += 1;
        }
      }
      if (i < h) for (let j = 0; j < stride; j++) prefix[j] += data[src + j] - offset;
    }
    for (const L of levels) {
      if (L.k <= L.outH) throw new Error(`area resize: level ${L.outH}x${L.outW} of ${h} rows ended at boundary ${L.k}`);
      this.done.set(`${L.outH}x${L.outW}`, L.out);
    }
  }

  /**
   * One level: [outH, outW, c] float32, offset + resize(data - offset).
   * @param {number} outH
   * @param {number} outW
   * @returns {Float32Array}
   */
  resize(outH, outW) {
    checkOut(outH, outW);
    if (!this.byPrefix(outH)) return this.direct(outH, outW);
    const key = `${outH}x${outW}`;
    if (!this.done.has(key)) {
      const pending = this.planned.filter(([ph, pw]) => !this.done.has(`${ph}x${pw}`));
      const shapes = pending.some(([ph, pw]) => ph === outH && pw === outW) ? pending : [[outH, outW]];
      this.planned = this.planned.filter((s) => !shapes.includes(s));
      this.sweep(shapes.filter(([ph, pw], k) => shapes.findIndex(([qh, qw]) => qh === ph && qw === pw) === k));
    }
    const out = this.done.get(key);
    this.done.delete(key); // handed over: a second call for the same level computes it again
    return out;
  }
}

function checkOut(outH, outW) {
  if (!(Number.isInteger(outH) && outH > 0 && Number.isInteger(outW) && outW > 0)) {
    throw new Error(`area resize: sizes must be positive integers, got out=${outH}x${outW}`);
  }
}
