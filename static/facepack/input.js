/**
 * Inputs -> one float32 [H, W, 3] RGB tensor of raw 0..255 pixels, and the detection image.
 *
 * Accepted: tf.Tensor3D ([H, W, 3|4], any dtype), {data, width, height} with RGB or RGBA
 * bytes (Node, ImageData), and in a browser HTMLImageElement, HTMLCanvasElement,
 * OffscreenCanvas, HTMLVideoElement, ImageBitmap, ImageData, and Blob/File (decoded with
 * createImageBitmap, EXIF orientation applied as facepack/data/images.py:load_rgb does).
 * Alpha: every input with an alpha channel is composited onto black by the manifest's
 * spec.alpha_rule ("premultiply": colour c -> round(c * alpha / 255), facepack/spec.py:
 * premultiply_alpha), the one rule every browser decode path reproduces exactly (a canvas keeps
 * colour premultiplied). 16-bit PNG samples become their high byte (spec.sixteen_bit_rule
 * "high_byte"): what Chromium's decoder gives on every path (createImageBitmap, <img>, canvas,
 * WebGL; measured, facepack/spec.py), so nothing here changes them. PNG files with a damaged
 * chunk are refused (png.js, spec.png_checksums).
 */
import * as tf from '@tensorflow/tfjs';

import { resizeBilinearPixels } from './ops/resize_bilinear.js';
import { pngProblem } from './png.js';

const RGB = 3;
const RGBA = 4;

function isBlob(x) {
  return typeof Blob !== 'undefined' && x instanceof Blob;
}

function isBrowserPixels(x) {
  const kinds = ['HTMLImageElement', 'HTMLCanvasElement', 'OffscreenCanvas', 'HTMLVideoElement', 'ImageBitmap', 'ImageData'];
  return kinds.some((k) => typeof globalThis[k] !== 'undefined' && x instanceof globalThis[k]);
}

const ALPHA_MAX = 255; // 8-bit alpha: opaque

/** round(c * a / 255) of 8-bit values as floor((2 * c * a + 255) / 510): no ties, exact in float32. */
function premultiply(c, a) {
  return Math.floor((2 * c * a + ALPHA_MAX) / (2 * ALPHA_MAX));
}

/** [H, W, 4] tensor -> float32 [H, W, 3] composited onto black (spec.alpha_rule). Caller disposes. */
function premultiplyTensor(rgba) {
  return tf.tidy(() => {
    const x = tf.cast(rgba, 'float32');
    const rgb = tf.slice(x, [0, 0, 0], [-1, -1, RGB]);
    const alpha = tf.slice(x, [0, 0, RGB], [-1, -1, 1]);
    return tf.floor(tf.div(tf.add(tf.mul(tf.mul(rgb, alpha), 2), ALPHA_MAX), 2 * ALPHA_MAX));
  });
}

function checkAlphaRule(spec) {
  if (spec.alpha_rule !== 'premultiply') {
    throw new Error(`manifest spec.alpha_rule: only "premultiply" is implemented, got ${JSON.stringify(spec.alpha_rule)} (re-export the bundle with convert/to_tfjs.py)`);
  }
  // absent in manifests written before the rule was named: the browser decoded 16-bit PNGs the same way
  if (spec.sixteen_bit_rule !== undefined && spec.sixteen_bit_rule !== 'high_byte') {
    throw new Error(`manifest spec.sixteen_bit_rule: only "high_byte" is implemented, got ${JSON.stringify(spec.sixteen_bit_rule)} (re-export the bundle with convert/to_tfjs.py)`);
  }
}

function fromTensor(t) {
  if (t.rank !== 3 || ![RGB, RGBA].includes(t.shape[2])) {
    throw new Error(`input tensor: expected shape [height, width, 3 or 4], got [${t.shape}]`);
  }
  return t.shape[2] === RGB ? tf.tidy(() => tf.cast(t, 'float32')) : premultiplyTensor(t);
}

/** {data, width, height} -> {image, pixels}: the tensor and the float32 values it was made from. */
function fromPixelData({ data, width, height }) {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new Error(`input {data, width, height}: width and height must be positive integers, got ${width} x ${height}`);
  }
  const channels = data.length / (width * height);
  if (![RGB, RGBA].includes(channels)) {
    throw new Error(`input {data, width, height}: expected ${width * height * RGB} (RGB) or ${width * height * RGBA} (RGBA) values, got ${data.length}`);
  }
  if (channels === RGB) {
    const values = ArrayBuffer.isView(data) ? new Float32Array(data) : Float32Array.from(data); // typed: native copy
    return { image: tf.tensor3d(values, [height, width, RGB], 'float32'), pixels: values };
  }
  const rgb = new Float32Array(width * height * RGB);
  for (let i = 0, j = 0; j < rgb.length; i += RGBA, j += RGB) {
    const a = data[i + RGB];
    rgb[j] = premultiply(data[i], a);
    rgb[j + 1] = premultiply(data[i + 1], a);
    rgb[j + 2] = premultiply(data[i + 2], a);
  }
  return { image: tf.tensor3d(rgb, [height, width, RGB], 'float32'), pixels: rgb };
}

/** Browser pixels -> float32 [H, W, 3]: read with alpha (fromPixels 4 channels), then the rule. */
function fromBrowserPixels(source) {
  return tf.tidy(() => premultiplyTensor(tf.browser.fromPixels(source, RGBA)));
}

async function fromBlob(blob) {
  if (typeof createImageBitmap === 'undefined') throw new Error('input Blob/File: createImageBitmap is not available here');
  const problem = pngProblem(new Uint8Array(await blob.arrayBuffer()));
  if (problem) throw new Error(`input Blob/File: not a readable image (${problem})`);
  const bitmap = await createImageBitmap(blob, {
    imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none',
  });
  try {
    return fromBrowserPixels(bitmap);
  } finally {
    bitmap.close();
  }
}

/**
 * Any accepted input -> float32 [H, W, 3] tensor and, when they were made in JavaScript (the
 * {data, width, height} inputs), its values: the same float32 numbers `await image.data()` would
 * return, without reading them back from the backend (on WASM a copy of the whole photo; on
 * WebGL a GPU sync). Caller disposes `image` and must not modify `pixels`. Caveat: on WebGL
 * without float32 textures (WEBGL_RENDER_FLOAT32_CAPABLE false) a float RGB input that is not
 * whole numbers is uploaded as float16, while `pixels` keeps float32 (uint8 photos are exact).
 * @param {*} input see the module comment
 * @param {object} spec manifest.json "spec" (alpha_rule)
 * @returns {Promise<{image: tf.Tensor3D, pixels: Float32Array|null}>}
 */
export async function decodeInput(input, spec) {
  checkAlphaRule(spec);
  if (input instanceof tf.Tensor) return { image: fromTensor(input), pixels: null };
  if (isBlob(input)) return { image: await fromBlob(input), pixels: null };
  if (isBrowserPixels(input)) return { image: fromBrowserPixels(input), pixels: null };
  if (input && typeof input === 'object' && 'data' in input && 'width' in input && 'height' in input) {
    return fromPixelData(input);
  }
  const kind = input === null ? 'null' : (input && input.constructor ? input.constructor.name : typeof input);
  throw new Error(`input: expected an image element, canvas, video, ImageBitmap, ImageData, Blob, tf.Tensor3D or {data, width, height}, got ${kind}`);
}

/**
 * Any accepted input -> float32 [H, W, 3] tensor (caller disposes).
 * @param {*} input see the module comment
 * @param {object} spec manifest.json "spec" (alpha_rule)
 * @returns {Promise<tf.Tensor3D>}
 */
export async function toRgbTensor(input, spec) {
  return (await decodeInput(input, spec)).image;
}

/**
 * Size of the detection image (mirrors facepack/spec.py:detect_scale and detect_size).
 * @returns {[number, number]} [height, width]
 */
export function detectSize(h, w, spec) {
  const longest = Math.max(h, w);
  const maxSide = spec.detect_max_side_px;
  if (longest <= maxSide) return [h, w];
  const s = maxSide / longest;
  return [Math.max(1, Math.floor(h * s + 0.5)), Math.max(1, Math.floor(w * s + 0.5))];
}

/**
 * The image the detector sees and the factors mapping its pixels back (mirrors
 * facepack/detect/mtcnn_detector.py:resize_for_detection). `image` is returned as is when no
 * resize is needed; otherwise a new tensor (caller disposes it). The resize is TF's own float32
 * kernel written out (ops/resize_bilinear.js): tf.image.resizeBilinear is up to 0.03 grey
 * levels off, enough to change NMS survivors on crowded photos (issue 12).
 * @param {tf.Tensor3D} image float32 [H, W, 3]
 * @param {object} spec manifest spec
 * @param {ArrayLike<number>} [pixels] `await image.data()` when the caller has it (read once per photo)
 * @returns {Promise<{image: tf.Tensor3D, values: ArrayLike<number>|null, sy: number, sx: number, resized: boolean}>}
 *   `values`: the detection image's values when they are at hand in JavaScript (no second read)
 */
export async function resizeForDetection(image, spec, pixels = null) {
  const [h, w] = image.shape;
  const [newH, newW] = detectSize(h, w, spec);
  if (newH === h && newW === w) return { image, values: pixels, sy: 1.0, sx: 1.0, resized: false };
  if (spec.detect_resize_method !== 'bilinear') {
    throw new Error(`manifest spec.detect_resize_method: only "bilinear" is implemented, got ${JSON.stringify(spec.detect_resize_method)}`);
  }
  if (spec.resize_half_pixel_centers !== true) {
    throw new Error(`manifest spec.resize_half_pixel_centers: only true is implemented, got ${JSON.stringify(spec.resize_half_pixel_centers)}`);
  }
  const c = image.shape[2];
  const values = pixels ?? await image.data();
  const detValues = resizeBilinearPixels(values, h, w, c, newH, newW);
  const resized = tf.tensor3d(detValues, [newH, newW, c], 'float32');
  return { image: resized, values: detValues, sy: newH / h, sx: newW / w, resized: true };
}
