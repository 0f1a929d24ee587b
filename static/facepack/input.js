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
 * WebGL: browser pixels go through tf.browser.fromPixels on the GPU unless their textures would
 * pass WEBGL_MAX_TEXTURE_SIZE (overTextureLimit: 24 MP on a 4096 GPU, 108 MP on SwiftShader's 8192);
 * those are read on the CPU as the cpu and wasm backends read them and take the {data, width,
 * height} path (bit for bit the wasm decode; tests/test_webgl_big_decode.py).
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

function sourceSize(source) {
  const isVideo = typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement;
  return isVideo ? [source.videoWidth, source.videoHeight] : [source.width, source.height]; // as tf.browser.fromPixels
}

/**
 * Would the WebGL decode of a width x height source (tf.browser.fromPixels, then the alpha rule)
 * ask for a texture over the backend's limit? TF.js 4.22 (tfjs-backend-webgl kernels/FromPixels.js)
 * uploads the pixels to an unpacked int32 texture of logical shape [H, W] (texSubImage2D: the
 * texture must be H x W, so both sides within the limit), runs a program to an
 * [H, W, 4] output (packed when WEBGL_PACK); the rule's ops then make [H, W, 4|3|1] tensors (cast
 * int32 -> float32 shares the texture; slice packed under WEBGL_PACK_ARRAY_OPERATIONS, mul/add/div
 * under WEBGL_PACK_BINARY_OPERATIONS, floor under WEBGL_PACK_UNARY_OPERATIONS; all four default
 * true). Each texture's shape is webgl_util.getTextureShapeFromLogicalShape (a tensor that does
 * not fit as [H, W*C] or [H*W, C] becomes a squarish texture of the same size; packed: twice the
 * limit, stored at half size, getPackedMatrixTextureShapeWidthHeight), and gpgpu_util refuses a
 * texture with a side over WEBGL_MAX_TEXTURE_SIZE ("Requested texture size [..] greater than WebGL
 * maximum"). With all four packing flags on, the packed shapes are checked, else packed and
 * unpacked both: a photo that fits takes the GPU path as before (24 MP under SwiftShader's 8192).
 */
export function overTextureLimit(width, height) {
  if (tf.getBackend() !== 'webgl') return false; // cpu, wasm: fromPixels reads a 2D canvas, no texture
  const max = tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE');
  const shapeOf = tf.webgl_util && tf.webgl_util.getTextureShapeFromLogicalShape;
  if (!shapeOf) return width > max || height > max; // not this TF.js build's rule at hand: sides only
  const fits = (shape, packed) => {
    const [rows, cols] = shapeOf(shape, packed);
    const [r, c] = packed ? [Math.max(1, Math.ceil(rows / 2)), Math.max(1, Math.ceil(cols / 2))] : [rows, cols];
    return r <= max && c <= max;
  };
  // The pixel upload: texSubImage2D of the source into an unpacked texture that must be [H, W]
  // itself; a side over the limit gets a squarish texture the source does not fit (WebGL
  // INVALID_VALUE, unchecked outside debug mode: wrong pixels, not an error, e.g. 2100x600 at 2048).
  const [rows, cols] = shapeOf([height, width], false);
  if (rows !== height || cols !== width || !fits([height, width], false)) return true;
  const allPacked = ['WEBGL_PACK', 'WEBGL_PACK_ARRAY_OPERATIONS', 'WEBGL_PACK_BINARY_OPERATIONS', 'WEBGL_PACK_UNARY_OPERATIONS']
    .every((flag) => tf.env().getBool(flag));
  return ![RGBA, RGB, 1].every((c) => fits([height, width, c], true) && (allPacked || fits([height, width, c], false)));
}

/**
 * A browser pixel source's RGBA bytes read on the CPU exactly as tf.browser.fromPixels reads them
 * on the cpu and wasm backends (neither registers a FromPixels kernel, so tfjs-core ops/browser.js
 * reads them itself): ImageData -> its data; a canvas -> its 2D context's getImageData; an <img>,
 * <video> or ImageBitmap -> drawn at (0, 0, width, height) on a 2D canvas (in a document a
 * canvas element with willReadFrequently: true, in a worker an OffscreenCanvas), getImageData.
 */
function readPixelsOnCpu(source, width, height) {
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) return source.data;
  const own = source.getContext != null ? source.getContext('2d') : null; // null: a WebGL canvas
  if (own) return own.getImageData(0, 0, width, height).data;
  let ctx = null;
  if (typeof document !== 'undefined') {
    ctx = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  } else if (typeof OffscreenCanvas !== 'undefined' && typeof OffscreenCanvasRenderingContext2D !== 'undefined') {
    ctx = new OffscreenCanvas(1, 1).getContext('2d');
  }
  if (!ctx) {
    throw new Error(`input ${width} x ${height} image: too large for this GPU's WebGL textures (WEBGL_MAX_TEXTURE_SIZE ${tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE')}), and no 2D canvas (document or OffscreenCanvas) to read it on the CPU here; pass {data, width, height} or use the wasm backend`);
  }
  ctx.canvas.width = width;
  ctx.canvas.height = height;
  ctx.drawImage(source, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  ctx.canvas.width = 0; // let the photo-sized canvas go
  ctx.canvas.height = 0;
  return data;
}

/**
 * Browser pixels -> {image: float32 [H, W, 3], pixels}: read with alpha (fromPixels 4 channels),
 * then the rule. On WebGL a photo whose textures would pass WEBGL_MAX_TEXTURE_SIZE (a 24 MP photo
 * on a 4096 GPU, 108 MP on SwiftShader's 8192) is read on the CPU instead (readPixelsOnCpu: the
 * bytes the cpu and wasm backends read) and goes the {data, width, height} way: the tensor is
 * never uploaded, the detection downscale and the crops read `pixels`. Smaller photos: unchanged,
 * on the GPU (pixels null).
 */
function fromBrowserPixels(source) {
  const [width, height] = sourceSize(source);
  if (width > 0 && height > 0 && overTextureLimit(width, height)) {
    return fromPixelData({ data: readPixelsOnCpu(source, width, height), width, height });
  }
  return { image: tf.tidy(() => premultiplyTensor(tf.browser.fromPixels(source, RGBA))), pixels: null };
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
 * {data, width, height} inputs, and on WebGL browser pixels too large for its textures), its values: the same float32 numbers `await image.data()` would
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
  if (isBlob(input)) return fromBlob(input);
  if (isBrowserPixels(input)) return fromBrowserPixels(input);
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
