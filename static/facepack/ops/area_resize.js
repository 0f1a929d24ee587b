/**
 * Exact AREA resize (TF.js has none), as two small matrix products.
 *
 * Mirrors tf.image.resize(method="area") == tensorflow/core/kernels/image/resize_area_op.cc with
 * align_corners=false, which the `mtcnn` package uses for its P-Net pyramid
 * (mtcnn/utils/images.py:scale_images). Along one axis, output cell o covers input cells
 * [o * s, (o + 1) * s) with s = in / out (float32 arithmetic, as in the kernel); each input cell
 * contributes its overlap length. The 2-D resize is separable: out = A_h @ img @ A_w^T.
 * Twin: tests/test_js_ops.py compares it with tf.image.resize.
 */
import * as tf from '@tensorflow/tfjs';

const f32 = Math.fround;

/**
 * Overlap-weight matrix of one axis, row-major [outSize, inSize], rows summing to 1.
 * @param {number} inSize input length (pixels)
 * @param {number} outSize output length (pixels)
 * @returns {Float32Array}
 */
export function areaWeights(inSize, outSize) {
  if (!(Number.isInteger(inSize) && inSize > 0 && Number.isInteger(outSize) && outSize > 0)) {
    throw new Error(`areaWeights: sizes must be positive integers, got in=${inSize} out=${outSize}`);
  }
  const scale = f32(inSize / outSize);
  const weights = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const start = f32(o * scale);
    const stop = f32((o + 1) * scale);
    for (let i = Math.floor(start); i < Math.ceil(stop); i++) {
      let overlap;
      if (i < start) overlap = i + 1 > stop ? scale : f32(i + 1 - start);
      else overlap = i + 1 > stop ? f32(stop - i) : 1;
      const col = Math.min(i, inSize - 1); // the kernel's BoundIfNeeded
      weights[o * inSize + col] += overlap / scale;
    }
  }
  return Float32Array.from(weights);
}

/**
 * AREA-resize an [H, W, C] float32 tensor to [outH, outW, C]. Returns a new tensor (caller disposes).
 * @param {tf.Tensor3D} image
 * @param {number} outH
 * @param {number} outW
 * @returns {tf.Tensor3D}
 */
export function areaResize(image, outH, outW) {
  const [h, w, c] = image.shape;
  return tf.tidy(() => {
    const ah = tf.tensor2d(areaWeights(h, outH), [outH, h]);
    const aw = tf.tensor2d(areaWeights(w, outW), [outW, w]);
    const rows = tf.matMul(ah, tf.reshape(image, [h, w * c])); // [outH, W*C]
    const cols = tf.reshape(tf.transpose(tf.reshape(rows, [outH, w, c]), [1, 0, 2]), [w, outH * c]);
    const out = tf.matMul(aw, cols); // [outW, outH*C]
    return tf.transpose(tf.reshape(out, [outW, outH, c]), [1, 0, 2]);
  });
}
