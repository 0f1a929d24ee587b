/**
 * Image files in Node, decoded without native dependencies (pngjs; JPEG by libjpeg-turbo's decoder
 * as mozjpeg in WebAssembly, @jsquash/jpeg: the same pixels as PIL and the browsers), as
 * facepack/data/images.py:load_rgb reads them: PNG (any colour type and bit depth; alpha kept,
 * composited onto black by the pipeline's spec.alpha_rule; 16-bit samples by spec.sixteen_bit_rule,
 * their high byte, as PIL and Chromium decode them) and baseline/progressive JPEG, with
 * the EXIF orientation applied (JPEG APP1 and PNG eXIf, as PIL's exif_transpose) and PNGs with a
 * damaged chunk refused (lib/png.js, spec.png_checksums). Other formats: decode them yourself and
 * pass {data, width, height}.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

import pngjs from 'pngjs';

import { pngProblem } from './lib/png.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];
const JPEG_SOI = [0xff, 0xd8, 0xff];
const ORIENTATION_TAG = 0x0112;
/**
 * Largest image decoded, in pixels: 12000 x 9000 (108 MP), the page's limit too
 * (mirrors static/analysis-worker.js:MAX_IMAGE_PIXELS); decoded RGBA takes 4 bytes a pixel, and the
 * analysis several float32 copies. A 121 MP JPEG took 5 GB and 39 s before this limit.
 */
export const MAX_IMAGE_PIXELS = 12000 * 9000;

/** [width, height] from a PNG's IHDR or a JPEG's SOFn header, or null (read before decoding). */
export function imageSize(bytes) {
  if (startsWith(bytes, PNG_SIGNATURE) && bytes.length >= 24) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return [view.getUint32(16), view.getUint32(20)];
  }
  if (!startsWith(bytes, JPEG_SOI)) return null;
  for (let pos = 2; pos + 9 < bytes.length;) {
    if (bytes[pos] !== 0xff) return null;
    const marker = bytes[pos + 1];
    if (marker === 0xff) { pos += 1; continue; }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) { pos += 2; continue; }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return [(bytes[pos + 7] << 8) | bytes[pos + 8], (bytes[pos + 5] << 8) | bytes[pos + 6]];
    }
    pos += 2 + ((bytes[pos + 2] << 8) | bytes[pos + 3]);
  }
  return null;
}

let jpegDecoder = null;
/**
 * libjpeg-turbo's decoder (mozjpeg 4, islow IDCT and fancy upsampling as in PIL and Chromium),
 * compiled to WebAssembly by @jsquash/jpeg, started once. A pure-JS decoder (jpeg-js) gave other
 * pixels (up to 42 grey levels on a 4:2:0 SCUT-FBP5500 photo) and so other scores than Python.
 * @returns {Promise<(bytes: Uint8Array, options: object) => Promise<{data, width, height}>>}
 */
function mozjpeg() {
  jpegDecoder ??= (async () => {
    const { default: decode, init } = await import('@jsquash/jpeg/decode.js');
    const wasm = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
    await init(await WebAssembly.compile(await readFile(wasm)));
    return decode;
  })();
  return jpegDecoder;
}

const startsWith = (bytes, sig, at = 0) => sig.every((b, i) => bytes[at + i] === b);

/**
 * Why a JPEG is cut short, or null: its markers up to the first start of scan must be whole, and
 * an end-of-image marker (FF D9) must follow it (in entropy-coded data FF is followed only by 00
 * or RSTn). libjpeg only warns ("Premature end of JPEG file") and fills the rest with grey; PIL
 * (facepack/data/images.py:load_rgb) and the browsers refuse such a file, and so does this.
 */
export function jpegProblem(bytes) {
  let pos = 2;
  for (;;) {
    if (pos + 4 > bytes.length) return 'the file is truncated: it ends before the image data';
    if (bytes[pos] !== 0xff) return `no JPEG marker at byte ${pos}`;
    const marker = bytes[pos + 1];
    if (marker === 0xff) { pos += 1; continue; }
    if (marker === 0xda) break; // start of scan
    if (marker === 0xd9) return 'the file ends before any image data';
    pos += 2 + ((bytes[pos + 2] << 8) | bytes[pos + 3]);
  }
  for (let i = pos; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return null;
  }
  return 'the file is truncated: no end-of-image marker after the image data';
}

/** Offset of a PNG's bit depth: signature (8), IHDR length and type (8), width and height (8). */
const PNG_BIT_DEPTH_AT = 24;

/**
 * spec.sixteen_bit_rule "high_byte": 16-bit PNG samples (pngjs with skipRescale) -> v >> 8, what
 * Chromium (every decode path) and PIL (16-bit RGB, RGBA, grey + alpha) give and
 * facepack/data/images.py applies to 16-bit grey. pngjs alone rounds (v * 255 / 65535): 1 level
 * off for 23 % of random samples (2 after the alpha rule; tests/test_alpha_decode.py).
 * @param {Uint16Array} samples
 * @returns {Uint8Array}
 */
function highBytes(samples) {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] >>> 8;
  return out;
}

/** An Error with a one-line message and err.code (the codes the page's analysis worker uses). */
function imageError(message, code) {
  const err = new Error(message);
  err.code = code;
  return err;
}

/** The orientation (1..8) in a TIFF/EXIF block at bytes[start..], or 1. */
function tiffOrientation(bytes, start) {
  if (start + 8 > bytes.length) return 1;
  const little = bytes[start] === 0x49; // 'II' little-endian, 'MM' big-endian
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at) => view.getUint16(at, little);
  const ifd = start + view.getUint32(start + 4, little);
  if (ifd + 2 > bytes.length) return 1;
  for (let i = 0, n = u16(ifd); i < n; i++) {
    const at = ifd + 2 + i * 12;
    if (at + 12 > bytes.length) break;
    if (u16(at) === ORIENTATION_TAG) {
      const value = u16(at + 8);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

/** EXIF orientation (1..8) of a JPEG (APP1 "Exif") or PNG (eXIf chunk); 1 when absent. */
export function exifOrientation(bytes) {
  if (startsWith(bytes, JPEG_SOI)) {
    for (let pos = 2; pos + 4 <= bytes.length && bytes[pos] === 0xff;) {
      const marker = bytes[pos + 1];
      if (marker === 0xda || marker === 0xd9) break; // start of scan / end of image
      const length = (bytes[pos + 2] << 8) | bytes[pos + 3];
      if (marker === 0xe1 && startsWith(bytes, [0x45, 0x78, 0x69, 0x66, 0, 0], pos + 4)) return tiffOrientation(bytes, pos + 10);
      pos += 2 + length;
    }
    return 1;
  }
  if (startsWith(bytes, PNG_SIGNATURE)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let pos = 8; pos + 8 <= bytes.length;) {
      const length = view.getUint32(pos);
      const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
      if (type === 'eXIf') return tiffOrientation(bytes, pos + 8);
      if (type === 'IDAT' || type === 'IEND') break; // eXIf must come before the image data
      pos += 12 + length;
    }
  }
  return 1;
}

/**
 * Pixels turned upright for an EXIF orientation (2..8 as PIL's Image.Transpose in exif_transpose).
 * @param {{data: Uint8Array, width: number, height: number}} image interleaved, any channel count
 * @param {number} orientation 1..8
 */
export function applyOrientation({ data, width, height }, orientation) {
  if (orientation === 1) return { data, width, height };
  const channels = data.length / (width * height);
  const swap = orientation >= 5;
  const [w, h] = swap ? [height, width] : [width, height];
  // source (x, y) of output pixel (u, v)
  const source = {
    2: (u, v) => [width - 1 - u, v],
    3: (u, v) => [width - 1 - u, height - 1 - v],
    4: (u, v) => [u, height - 1 - v],
    5: (u, v) => [v, u],
    6: (u, v) => [v, height - 1 - u],
    7: (u, v) => [width - 1 - v, height - 1 - u],
    8: (u, v) => [width - 1 - v, u],
  }[orientation];
  const out = new Uint8Array(data.length);
  for (let v = 0; v < h; v++) {
    for (let u = 0; u < w; u++) {
      const [x, y] = source(u, v);
      const from = (y * width + x) * channels;
      const to = (v * w + u) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c];
    }
  }
  return { data: out, width: w, height: h };
}

/**
 * A PNG or JPEG file's bytes -> {data, width, height} (RGBA), upright.
 * @param {Uint8Array} bytes the whole file
 * @param {string} [name] used in error messages
 * @returns {Promise<{data: Uint8Array, width: number, height: number}>}
 * @throws {Error} one line naming the file, with err.code: 'not-image' (not PNG/JPEG),
 *   'corrupt-image' (a damaged PNG chunk, a truncated JPEG (jpegProblem), a decoder error), or
 *   'image-too-large' (over MAX_IMAGE_PIXELS, checked from the header before decoding)
 */
export async function decodeImage(bytes, name = `<${bytes.length} bytes>`) {
  const size = imageSize(bytes);
  if (size && size[0] * size[1] > MAX_IMAGE_PIXELS) {
    const err = new Error(`${name}: ${size[0]} x ${size[1]} is ${(size[0] * size[1] / 1e6).toFixed(0)} megapixels, over the `
      + `${MAX_IMAGE_PIXELS / 1e6} MP this library decodes (about 4 bytes a pixel, several times over); downscale it first`);
    err.code = 'image-too-large';
    throw err;
  }
  let image;
  try {
    if (startsWith(bytes, PNG_SIGNATURE)) {
      const problem = pngProblem(bytes);
      if (problem) throw new Error(problem);
      // IHDR comes first (pngProblem has walked the chunks; pngjs refuses a PNG without it there)
      const sixteen = bytes[PNG_BIT_DEPTH_AT] === 16;
      const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: sixteen });
      if (sixteen !== (png.depth === 16)) throw new Error(`PNG bit depth ${png.depth} where its header says ${bytes[PNG_BIT_DEPTH_AT]}`);
      const data = sixteen ? highBytes(png.data) : new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length);
      image = { data, width: png.width, height: png.height };
    } else if (startsWith(bytes, JPEG_SOI)) {
      const problem = jpegProblem(bytes);
      if (problem) throw new Error(problem);
      const decode = await mozjpeg();
      // the raw pixels (preserveOrientation false: mozjpeg does not turn them); EXIF is applied below, as for PNG
      const out = await decode(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
        { preserveOrientation: false });
      image = { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length), width: out.width, height: out.height };
    }
  } catch (err) {
    throw imageError(`${name}: not a readable image (${err.message})`, 'corrupt-image');
  }
  if (!image) {
    throw imageError(`${name}: not a PNG or JPEG file (readImageFile reads those two; decode other formats yourself and pass {data, width, height})`, 'not-image');
  }
  return applyOrientation(image, exifOrientation(bytes));
}

/**
 * Read and decode a PNG or JPEG file (see decodeImage) for analyzer.analyze.
 * @param {string} path
 * @returns {Promise<{data: Uint8Array, width: number, height: number}>}
 * @throws {Error} decodeImage's, or a file that cannot be read: err.code is the system's ('ENOENT',
 *   'EACCES', 'EISDIR', ...)
 */
export async function readImageFile(path) {
  let buf;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw imageError(`${path}: cannot read the image file (${err.code || err.message})`, err.code ?? 'unreadable-file');
  }
  return decodeImage(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), String(path));
}
