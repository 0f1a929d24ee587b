// The P-Net pyramid's AREA resize as of commit 0466c5e (the [h + 1, w * c] prefix-table version),
// kept verbatim below as the reference for tests/test_mtcnn_pyramid.py:test_sweep_equals_the_previous_table_version.
// Not used by the library.
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
 * Several AREA resizes of one photo (the P-Net pyramid), each equal to areaResizePixels.
 *
 * Pass 1 (rows) of a level needs, per output row, the overlap-weighted sum of the input rows its
 * cell covers. Summed directly that reads about (in / out + 1) input rows per output row, so
 * every level re-reads the whole photo. With column-wise prefix sums P[i] = sum_{k < i} row k
 * (float64, built once per photo when a level wants it) the same sum is F(stop) - F(start),
 * F(t) = P[floor t] + (t - floor t) * row[floor t]: four reads per output row, whatever the scale.
 * Both give the kernel's weights exactly (t - floor t equals its float32 overlap: start and stop
 * are float32 and the difference is a multiple of their ulp below 1) and differ only in float64
 * rounding (|P| <= 255 * h, so ~1e-11 grey levels), far below the float32 output's resolution.
 * A level uses the prefix sums when they cost fewer reads (4 * outH < h + outH: scales under
 * about 1/3); the large first levels read directly. Pass 2 (columns) is always direct: it reads
 * the small pass-1 result. Measured: see bench/README.md (issue 14).
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
    Object.assign(this, { data, h, w, c, offset, prefix: null });
  }

  /** Column-wise prefix sums of data - offset, [h + 1, w * c] float64 (built on first use). */
  rowPrefix() {
    if (this.prefix) return this.prefix;
    const { data, h, offset } = this;
    const stride = this.w * this.c;
    const prefix = new Float64Array((h + 1) * stride);
    for (let i = 0; i < h; i++) {
      const src = i * stride, prev = i * stride, dst = (i + 1) * stride;
      for (let j = 0; j < stride; j++) prefix[dst + j] = prefix[prev + j] + (data[src + j] - offset);
    }
    this.prefix = prefix;
    return prefix;
  }

  /**
   * Pass 1 by prefix sums: tmp[y] = (F(stop_y) - F(start_y)) / scale (see the class note).
   * @returns {Float64Array} [outH, w * c]
   */
  rowsByPrefix(outH) {
    const { data, h, offset } = this;
    const stride = this.w * this.c;
    const prefix = this.rowPrefix();
    const scale = f32(h / outH);
    const tmp = new Float64Array(outH * stride);
    // F(t) at a cell boundary t: the prefix row below t plus the covered part of row floor(t)
    // (rows past the last are the last row again: the kernel's BoundIfNeeded).
    const bound = (t) => {
      const i = Math.min(Math.floor(t), h);
      return { row: i, frac: t - i, src: Math.min(i, h - 1) * stride };
    };
    let lo = bound(0);
    for (let y = 0; y < outH; y++) {
      const hi = bound(f32((y + 1) * scale));
      if (y > 0) lo = bound(f32(y * scale));
      const dst = y * stride;
      const pHi = hi.row * stride, pLo = lo.row * stride;
      for (let j = 0; j < stride; j++) {
        const fHi = prefix[pHi + j] + hi.frac * (data[hi.src + j] - offset);
        const fLo = prefix[pLo + j] + lo.frac * (data[lo.src + j] - offset);
        tmp[dst + j] = (fHi - fLo) / scale;
      }
    }
    return tmp;
  }

  /**
   * Pass 1 summed directly: tmp[y] = sum_i A_h[y, i] * (data[i] - offset).
   * @returns {Float64Array} [outH, w * c]
   */
  rowsDirect(outH) {
    const { data, h, offset } = this;
    const stride = this.w * this.c;
    const rowTaps = areaTaps(h, outH);
    const tmp = new Float64Array(outH * stride);
    for (let y = 0; y < outH; y++) {
      const { index, weight } = rowTaps[y];
      const dst = y * stride;
      for (let k = 0; k < index.length; k++) {
        const src = index[k] * stride;
        const wk = weight[k];
        for (let j = 0; j < stride; j++) tmp[dst + j] += wk * (data[src + j] - offset);
      }
    }
    return tmp;
  }

  /**
   * One level: [outH, outW, c] float32, offset + resize(data - offset).
   * @param {number} outH
   * @param {number} outW
   * @returns {Float32Array}
   */
  resize(outH, outW) {
    const { h, w, c, offset } = this;
    if (!(Number.isInteger(outH) && outH > 0 && Number.isInteger(outW) && outW > 0)) {
      throw new Error(`area resize: sizes must be positive integers, got out=${outH}x${outW}`);
    }
    const tmp = 4 * outH < h + outH ? this.rowsByPrefix(outH) : this.rowsDirect(outH);
    // Pass 2: columns. out[y, x] = sum_j A_w[x, j] * tmp[y, j]
    const colTaps = areaTaps(w, outW);
    const rowStride = w * c;
    const out = new Float32Array(outH * outW * c);
    for (let y = 0; y < outH; y++) {
      const row = y * rowStride;
      for (let x = 0; x < outW; x++) {
        const { index, weight } = colTaps[x];
        const dst = (y * outW + x) * c;
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          for (let k = 0; k < index.length; k++) sum += weight[k] * tmp[row + index[k] * c + ch];
          out[dst + ch] = sum + offset;
        }
      }
    }
    return out;
  }
}
