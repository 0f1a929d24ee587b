/**
 * Bilinear crop-and-resize that stays exact on photos of any size, on every backend.
 *
 * Why: TF.js's own cropAndResize kernels address the flattened image with float32 arithmetic
 * (WASM: the batch/row offsets; WebGL: texture coordinates), so once a crop lies beyond about
 * 2^24 values into the image (a 12 MP photo, face in its lower half) they read the wrong
 * pixels: measured up to 213 grey levels off at 4032 x 3024 and 244 at 12000 x 9000 on WASM,
 * while the cpu backend is right. Here the sample positions are computed on the CPU, in
 * JavaScript, exactly as tensorflow/core/kernels/image/crop_and_resize_op.cc (CPU, float32)
 * computes them for tf.image.crop_and_resize, which facepack/crop.py:crop_squares runs on the
 * full photo (the reference). The four bilinear taps of every output pixel are read from the
 * photo's values (one `image.data()`, indexed by JavaScript numbers: exact to 2^53) and blended
 * with the kernel's own float32 formula
 *   top = tl + (tr - tl) * x_lerp;  bottom = bl + (br - bl) * x_lerp;  out = top + (bottom - top) * y_lerp
 * (Math.fround after every step). No backend kernel touches the photo, so the crops are the
 * same on cpu, wasm and webgl and equal Python's bit for bit on the same pixels
 * (tests/test_bounded_crop.py: 12, 24 and 108 MP on cpu and wasm). Gathering the taps with
 * tf.gather (integer indices, also exact) took ~40 ms per 224 x 224 crop on WASM; this loop
 * takes a few ms, plus one read of the photo per analysis.
 *
 * Used by crop.js (beauty and keypoint crops of the full photo) and mtcnn.js (R-Net and O-Net
 * patches of the detection image), i.e. every crop the library takes.
 */
import * as tf from '@tensorflow/tfjs';

const f32 = Math.fround;

/** Largest count of values whose flat indices are all exact in float32 (2^24): TF.js kernels are right below it. */
export const EXACT_INDEX_LIMIT = 16777216; // 2 ** 24 (the 24 would read as a spec constant)

/**
 * Sample positions of one axis for one box, as crop_and_resize_op.cc computes them (float32).
 * @param {number} a1 box start, normalised (rounded to float32 here, as the boxes tensor is)
 * @param {number} a2 box end, normalised
 * @param {number} imageSize image length along the axis (pixels)
 * @param {number} cropSize output length along the axis (pixels)
 * @returns {{lo: Int32Array, hi: Int32Array, lerp: Float32Array, valid: Uint8Array}} per output
 *   pixel: the two input indices, the weight of `hi`, and whether the sample lies inside the
 *   image (else the output is the extrapolation value; lo = hi = 0 then)
 */
export function cropAxisTaps(a1, a2, imageSize, cropSize) {
  const lo = new Int32Array(cropSize);
  const hi = new Int32Array(cropSize);
  const lerp = new Float32Array(cropSize);
  const valid = new Uint8Array(cropSize);
  const b1 = f32(a1);
  const b2 = f32(a2);
  const last = imageSize - 1;
  // height_scale = (y2 - y1) * (image_height - 1) / (crop_height - 1), each step in float
  const scale = cropSize > 1 ? f32(f32(f32(b2 - b1) * last) / (cropSize - 1)) : 0;
  for (let i = 0; i < cropSize; i++) {
    // in_y = y1 * (image_height - 1) + y * height_scale  (one output: 0.5 * (y1 + y2) * (image_height - 1), in double)
    const v = cropSize > 1 ? f32(f32(b1 * last) + f32(i * scale)) : f32(0.5 * f32(b1 + b2) * last);
    if (v < 0 || v > last) continue; // extrapolated
    lo[i] = Math.floor(v);
    hi[i] = Math.ceil(v);
    lerp[i] = f32(v - lo[i]);
    valid[i] = 1;
  }
  return { lo, hi, lerp, valid };
}

/**
 * Bilinear crops of row-major [H, W, C] pixels (crop_and_resize_op.cc's CPU kernel, float32,
 * written out: every product and sum rounded to float32 as the kernel's `float` arithmetic is).
 * @param {ArrayLike<number>} pixels H * W * C values (Float32Array, Int32Array, Uint8Array...)
 * @param {[number, number, number]} shape [H, W, C]
 * @param {number[][]} boxes normalised [y1, x1, y2, x2] each (crop_and_resize's convention)
 * @param {[number, number]} cropSize [cropHeight, cropWidth] (pixels)
 * @param {number} extrapolationValue output value of samples outside the image
 * @returns {Float32Array} [N, cropHeight, cropWidth, C] row-major
 */
export function cropAndResizePixels(pixels, shape, boxes, cropSize, extrapolationValue) {
  const [height, width, channels] = shape;
  if (pixels.length !== height * width * channels) {
    throw new Error(`crop: expected ${height * width * channels} values for [${shape}], got ${pixels.length}`);
  }
  const [ch, cw] = cropSize;
  const out = new Float32Array(boxes.length * ch * cw * channels);
  const pad = f32(extrapolationValue);
  if (channels === 3) {
    cropAndResize3(pixels, width, height, boxes, ch, cw, pad, out);
    return out;
  }
  let k = 0;
  for (const [y1, x1, y2, x2] of boxes) {
    const ys = cropAxisTaps(y1, y2, height, ch);
    const xs = cropAxisTaps(x1, x2, width, cw);
    for (let i = 0; i < ch; i++) {
      if (!ys.valid[i]) {
        out.fill(pad, k, k + cw * channels);
        k += cw * channels;
        continue;
      }
      const top = ys.lo[i] * width;
      const bottom = ys.hi[i] * width;
      const yl = ys.lerp[i];
      for (let j = 0; j < cw; j++) {
        if (!xs.valid[j]) {
          for (let c = 0; c < channels; c++) out[k++] = pad;
          continue;
        }
        const xl = xs.lerp[j];
        const tl = (top + xs.lo[j]) * channels;
        const tr = (top + xs.hi[j]) * channels;
        const bl = (bottom + xs.lo[j]) * channels;
        const br = (bottom + xs.hi[j]) * channels;
        for (let c = 0; c < channels; c++) {
          const vtl = f32(pixels[tl + c]);
          const vbl = f32(pixels[bl + c]);
          const t = f32(vtl + f32(f32(f32(pixels[tr + c]) - vtl) * xl));
          const b = f32(vbl + f32(f32(f32(pixels[br + c]) - vbl) * xl));
          out[k++] = f32(t + f32(f32(b - t) * yl));
        }
      }
    }
  }
  return out;
}

/**
 * cropAndResizePixels for 3 channels: every output value from the same float32 operations on the
 * same operands; the x-blended top and bottom rows (t and b of the formula) are computed once per
 * pair of source rows and reused by the next output rows that sample the same pair (an upscaled
 * face crop samples each pair 2-3 times).
 */
function cropAndResize3(pixels, width, height, boxes, ch, cw, pad, out) {
  const rowLen = cw * 3;
  const tops = new Float32Array(rowLen);
  const bottoms = new Float32Array(rowLen);
  const lo = new Int32Array(cw); // per output column: the taps' offsets in a row, and the weight
  const hi = new Int32Array(cw);
  let k = 0;
  for (const [y1, x1, y2, x2] of boxes) {
    const ys = cropAxisTaps(y1, y2, height, ch);
    const xs = cropAxisTaps(x1, x2, width, cw);
    let allValid = true;
    for (let j = 0; j < cw; j++) { lo[j] = xs.lo[j] * 3; hi[j] = xs.hi[j] * 3; allValid = allValid && xs.valid[j] === 1; }
    let heldTop = -1; let heldBottom = -1; // source rows whose blends `tops` / `bottoms` hold
    for (let i = 0; i < ch; i++) {
      if (!ys.valid[i]) {
        out.fill(pad, k, k + rowLen);
        k += rowLen;
        continue;
      }
      if (ys.lo[i] !== heldTop || ys.hi[i] !== heldBottom) {
        heldTop = ys.lo[i]; heldBottom = ys.hi[i];
        const top = heldTop * width * 3;
        const bottom = heldBottom * width * 3;
        for (let j = 0, m = 0; j < cw; j++, m += 3) {
          if (!xs.valid[j]) continue;
          const xl = xs.lerp[j];
          const tl = top + lo[j]; const tr = top + hi[j];
          const bl = bottom + lo[j]; const br = bottom + hi[j];
          for (let c = 0; c < 3; c++) {
            const vtl = f32(pixels[tl + c]);
            const vbl = f32(pixels[bl + c]);
            tops[m + c] = vtl + f32(f32(f32(pixels[tr + c]) - vtl) * xl); // stored: f32(...), as above
            bottoms[m + c] = vbl + f32(f32(f32(pixels[br + c]) - vbl) * xl);
          }
        }
      }
      const yl = ys.lerp[i];
      if (allValid) { // every column inside the photo (a face crop, usually): one flat pass
        for (let m = 0; m < rowLen; m++) {
          const t = tops[m];
          out[k++] = t + f32(f32(bottoms[m] - t) * yl);
        }
        continue;
      }
      for (let j = 0, m = 0; j < cw; j++, m += 3) {
        if (!xs.valid[j]) {
          out[k++] = pad; out[k++] = pad; out[k++] = pad;
          continue;
        }
        for (let c = 0; c < 3; c++) {
          const t = tops[m + c];
          out[k++] = t + f32(f32(bottoms[m + c] - t) * yl);
        }
      }
    }
  }
}

/**
 * cropAndResizePixels of a tensor: tf.image.cropAndResize semantics for one image and every
 * box from it, exact on any backend and photo size. Caller disposes the result.
 * @param {tf.Tensor3D} image [H, W, C], any dtype (values are read as float32, as the kernel does)
 * @param {number[][]} boxes normalised [y1, x1, y2, x2] each
 * @param {[number, number]} cropSize [cropHeight, cropWidth] (pixels)
 * @param {number} extrapolationValue output value of samples outside the image
 * @param {object} [opts]
 * @param {string} [opts.method] only 'bilinear' (the spec's crop.method)
 * @param {ArrayLike<number>} [opts.pixels] `await image.data()` when the caller already has it
 *   (saves reading the photo once per call)
 * @param {boolean} [opts.preferKernel] run the backend's tf.image.cropAndResize instead when the
 *   image has at most EXACT_INDEX_LIMIT values (every flat index exact in float32): faster on
 *   small images (no read-back), within float32 rounding of the exact path, not bit-equal
 * @returns {Promise<tf.Tensor4D>} float32 [N, cropHeight, cropWidth, C]
 */
export async function boundedCropAndResize(image, boxes, cropSize, extrapolationValue,
  { method = 'bilinear', pixels = null, preferKernel = false } = {}) {
  if (method !== 'bilinear') {
    throw new Error(`crop method: only "bilinear" is implemented, got ${JSON.stringify(method)}`);
  }
  if (image.rank !== 3) throw new Error(`crop: expected an image of shape [height, width, channels], got [${image.shape}]`);
  const [ch, cw] = cropSize;
  const channels = image.shape[2];
  if (!boxes.length) return tf.zeros([0, ch, cw, channels]);
  if (preferKernel && image.size <= EXACT_INDEX_LIMIT) {
    return tf.tidy(() => tf.image.cropAndResize(tf.expandDims(image, 0), tf.tensor2d(boxes, [boxes.length, 4]),
      tf.zeros([boxes.length], 'int32'), cropSize, method, extrapolationValue));
  }
  const values = pixels ?? await image.data();
  return tf.tensor4d(cropAndResizePixels(values, image.shape, boxes, cropSize, extrapolationValue),
    [boxes.length, ch, cw, channels], 'float32');
}
