/**
 * Deterministic large test photos, made where they are used (Node scripts and Chromium pages), so
 * no 100-MB+ image travels from Python: tests/test_crops_past_2_24.py:big_photo is the Python twin
 * (the same integers, so both sides crop the same pixels).
 *
 * Value of flat index i = (y * width + x) * 3 + c (uint8, never clipped or wrapped):
 *   floor(128 y / height) + floor(64 x / width)   a smooth diagonal gradient, 0..190
 *   + NOISE[i % NOISE_PERIOD]                      noise 0..63, so a tap read from a wrong index
 *                                                  shows in the crop (the period is prime: it
 *                                                  divides no row length)
 * NOISE[k] = imul(h ^ (h >>> 15), 0x85EBCA6B) >>> 26 with h = imul(k ^ seed, 0x9E3779B1) (uint32).
 * No module imports: the page imports it as /testjs/big_photo.mjs.
 */

export const NOISE_PERIOD = 65521;

/**
 * @param {number} height
 * @param {number} width
 * @param {number} seed uint32
 * @returns {Uint8Array} row-major [height, width, 3]
 */
export function bigPhoto(height, width, seed) {
  const noise = new Uint8Array(NOISE_PERIOD);
  for (let k = 0; k < NOISE_PERIOD; k++) {
    const h = Math.imul(k ^ seed, 0x9E3779B1);
    noise[k] = Math.imul(h ^ (h >>> 15), 0x85EBCA6B) >>> 26;
  }
  const out = new Uint8Array(height * width * 3);
  const gx = new Uint8Array(width);
  for (let x = 0; x < width; x++) gx[x] = Math.floor((64 * x) / width);
  let i = 0;
  let k = 0;
  for (let y = 0; y < height; y++) {
    const gy = Math.floor((128 * y) / height);
    for (let x = 0; x < width; x++) {
      const g = gy + gx[x];
      for (let c = 0; c < 3; c++, i++) {
        out[i] = g + noise[k];
        if (++k === NOISE_PERIOD) k = 0;
      }
    }
  }
  return out;
}

/**
 * The three ops that read a large photo's pixels, with the pipeline's call pattern (index.js:
 * the photo's values read once, then passed to every op): the bilinear crops and the area crops
 * (crop.js:cropSquares, spec.crop.downscale "bilinear" / "area") and the detection downscale
 * (input.js:resizeForDetection). Shared by tests/js/big_photo_crops.mjs (Node) and the page of
 * tests/test_crops_past_2_24.py; the library's modules are passed in (their URLs differ).
 * @param {object} lib {tf, cropSquares, cropSampler, cropBoxToTf, resizeForDetection}
 * @param {tf.Tensor3D} image float32 [H, W, 3]
 * @param {ArrayLike<number>} pixels the photo's values (`await image.data()` or the decoded values)
 * @param {object} job {bilinear: squares, area: squares, size, spec, native?: true}
 * @returns {Promise<{bilinear: Float32Array, area: Float32Array, detect: Float32Array,
 *   detectShape: number[], samplers: string[][], native: Float32Array|null, nativeError?: string, ms: object}>}
 */
export async function runOps(lib, image, pixels, job) {
  const { tf } = lib;
  const [height, width] = image.shape;
  const ms = {};
  const out = { samplers: [], native: null, ms };
  for (const mode of ['bilinear', 'area']) {
    const spec = { ...job.spec, crop: { ...job.spec.crop, downscale: mode } };
    const t = performance.now();
    const crops = await lib.cropSquares(image, job[mode], job.size, spec, pixels);
    out[mode] = await crops.data();
    ms[mode] = performance.now() - t;
    crops.dispose();
    out.samplers.push(job[mode].map((sq) => lib.cropSampler(sq, job.size, spec)));
  }
  let t = performance.now();
  const det = await lib.resizeForDetection(image, job.spec, pixels);
  out.detect = det.values;
  out.detectShape = det.image.shape;
  ms.detect = performance.now() - t;
  if (det.image !== image) det.image.dispose();
  if (job.native) { // TF.js's own kernel on the same bilinear crops: what bounded_crop.js replaces
    t = performance.now();
    const boxes = job.bilinear.map(([x0, y0, side]) => lib.cropBoxToTf(x0, y0, side, job.size, height, width));
    try {
      const native = tf.tidy(() => tf.image.cropAndResize(tf.expandDims(image, 0), tf.tensor2d(boxes, [boxes.length, 4]),
        tf.zeros([boxes.length], 'int32'), [job.size, job.size], 'bilinear', job.spec.crop.pad_value));
      out.native = await native.data();
      native.dispose();
    } catch (err) { // e.g. WebGL: the kernel needs a texture of the whole photo beyond the GPU's limit
      out.nativeError = String(err.message ?? err).split('\n')[0];
    }
    ms.native = performance.now() - t;
  }
  return out;
}

/** Count of positions where `pixels` (float32 values read back) differ from the uint8 photo `rgb`. */
export function countMismatches(pixels, rgb) {
  if (pixels.length !== rgb.length) return Math.max(pixels.length, rgb.length);
  let bad = 0;
  for (let i = 0; i < rgb.length; i++) if (pixels[i] !== rgb[i]) bad++;
  return bad;
}
