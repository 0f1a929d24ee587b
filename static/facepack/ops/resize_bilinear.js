/**
 * Bilinear resize with half-pixel centres, written out exactly as TensorFlow's CPU kernel
 * (tensorflow/core/kernels/image/resize_bilinear_op.cc, float32) computes
 * tf.image.resize(x, size, "bilinear", antialias=False) - the resize that
 * facepack/detect/mtcnn_detector.py:resize_for_detection applies to photos larger than
 * spec.detect_max_side_px before the detector sees them.
 *
 * Why not tf.image.resizeBilinear: TF.js computes the source coordinate of an output pixel in
 * another order/precision than TF (measured on a 1986 x 1545 photo shrunk to 1280 x 996, WASM:
 * up to 0.027 grey levels, mean 6e-4). On a photo with many faces that noise reorders
 * near-equal P-Net candidates before NMS and changes which boxes survive (issue 12, item 2).
 * Here, as in the kernel, per axis: scale = in / out (float32),
 * src = (i + 0.5) * scale - 0.5 (float32), lower = max(floor(src), 0),
 * upper = min(ceil(src), in - 1), lerp = src - floor(src); per pixel
 *   top = tl + (tr - tl) * xLerp;  bottom = bl + (br - bl) * xLerp;  out = top + (bottom - top) * yLerp
 * with Math.fround after every step (the kernel's SSE path is the same float32 formula). The
 * indices are JavaScript numbers, exact on photos of any size (no 2^24 limit as in the WASM
 * kernels). Twin: tests/test_js_ops.py compares with tf.image.resize bit for bit.
 */

const f32 = Math.fround;

/**
 * Taps of one axis (mirrors compute_interpolation_weights with HalfPixelScaler).
 * @param {number} inSize input length (pixels)
 * @param {number} outSize output length (pixels)
 * @returns {{lower: Int32Array, upper: Int32Array, lerp: Float32Array}}
 */
export function bilinearTaps(inSize, outSize) {
  if (!(Number.isInteger(inSize) && inSize > 0 && Number.isInteger(outSize) && outSize > 0)) {
    throw new Error(`bilinear resize: sizes must be positive integers, got in=${inSize} out=${outSize}`);
  }
  const scale = f32(inSize / outSize);
  const lower = new Int32Array(outSize);
  const upper = new Int32Array(outSize);
  const lerp = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = f32(f32(f32(i + 0.5) * scale) - 0.5);
    const floor = Math.floor(src);
    lower[i] = Math.max(floor, 0);
    upper[i] = Math.min(Math.ceil(src), inSize - 1);
    lerp[i] = f32(src - floor);
  }
  return { lower, upper, lerp };
}

/**
 * Resize row-major [h, w, c] values to [outH, outW, c] (an unchanged size returns a float32 copy,
 * as the kernel does).
 * @param {Float32Array|Uint8Array} data
 * @returns {Float32Array}
 */
export function resizeBilinearPixels(data, h, w, c, outH, outW) {
  if (data.length !== h * w * c) throw new Error(`bilinear resize: expected ${h * w * c} values for ${h}x${w}x${c}, got ${data.length}`);
  if (outH === h && outW === w) return Float32Array.from(data);
  const ys = bilinearTaps(h, outH);
  const xs = bilinearTaps(w, outW);
  const out = new Float32Array(outH * outW * c);
  const rowStride = w * c;
  for (let y = 0; y < outH; y++) {
    const top = ys.lower[y] * rowStride;
    const bottom = ys.upper[y] * rowStride;
    const yLerp = ys.lerp[y];
    for (let x = 0; x < outW; x++) {
      const left = xs.lower[x] * c;
      const right = xs.upper[x] * c;
      const xLerp = xs.lerp[x];
      const dst = (y * outW + x) * c;
      for (let ch = 0; ch < c; ch++) {
        const tl = data[top + left + ch];
        const tr = data[top + right + ch];
        const bl = data[bottom + left + ch];
        const br = data[bottom + right + ch];
        const t = f32(tl + f32(f32(tr - tl) * xLerp));
        const b = f32(bl + f32(f32(br - bl) * xLerp));
        out[dst + ch] = f32(t + f32(f32(b - t) * yLerp));
      }
    }
  }
  return out;
}
