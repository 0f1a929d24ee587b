/**
 * What an image file is before it is decoded: its format (by magic number, telling HEIC from
 * AVIF inside the ISO-BMFF "ftyp" box) and its size in pixels from its header (PNG, JPEG, GIF,
 * BMP, WebP), so the analysis worker can refuse a photo that is too large with its true size
 * instead of letting the decoder fail, and name a format the browser cannot read.
 * No imports, no DOM: used by analysis-worker.js (tests/test_page.py drives it).
 */

// Magic numbers of the image formats (to tell "damaged image" from "not an image").
const SIGNATURES = [
  { type: 'PNG', bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'JPEG', bytes: [0xff, 0xd8, 0xff] },
  { type: 'GIF', bytes: [0x47, 0x49, 0x46, 0x38] },
  { type: 'BMP', bytes: [0x42, 0x4d] },
  { type: 'ICO', bytes: [0x00, 0x00, 0x01, 0x00] },
  { type: 'WebP', bytes: [0x52, 0x49, 0x46, 0x46], at8: [0x57, 0x45, 0x42, 0x50] },
];
// ISO-BMFF brands (ftyp major or compatible brand) of still-image formats.
const HEIF_BRANDS = { avif: 'AVIF', avis: 'AVIF', heic: 'HEIC', heix: 'HEIC', heim: 'HEIC', heis: 'HEIC',
  hevc: 'HEIC', hevx: 'HEIC', mif1: 'HEIF', msf1: 'HEIF' };
const FTYP = [0x66, 0x74, 0x79, 0x70]; // "ftyp" at byte 4

const ascii = (bytes, start, end) => String.fromCharCode(...bytes.subarray(start, end));

/** The format of ISO-BMFF bytes ('AVIF' | 'HEIC' | 'HEIF') from the ftyp box, or null. */
function isoBrand(bytes) {
  if (!FTYP.every((b, i) => bytes[4 + i] === b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxEnd = Math.min(view.getUint32(0), bytes.length);
  const brands = [ascii(bytes, 8, 12)];
  for (let at = 16; at + 4 <= boxEnd; at += 4) brands.push(ascii(bytes, at, at + 4));
  // AVIF files also list mif1: an AVIF brand anywhere wins; otherwise the first HEIF brand.
  if (brands.some((b) => HEIF_BRANDS[b] === 'AVIF')) return 'AVIF';
  for (const b of brands) if (HEIF_BRANDS[b]) return HEIF_BRANDS[b];
  return null;
}

/**
 * The image format of a file's first bytes: 'PNG' | 'JPEG' | 'GIF' | 'BMP' | 'ICO' | 'WebP' |
 * 'AVIF' | 'HEIC' | 'HEIF', or null when none matches.
 * @param {Uint8Array} bytes the file (at least its first 64 bytes)
 */
export function sniffImageType(bytes) {
  const matches = (sig, offset) => sig.every((b, i) => bytes[offset + i] === b);
  for (const s of SIGNATURES) {
    if (!matches(s.bytes, 0)) continue;
    if (s.at8 && !matches(s.at8, 8)) continue;
    return s.type;
  }
  return bytes.length >= 12 ? isoBrand(bytes) : null;
}

function jpegSize(bytes, view) {
  let pos = 2;
  while (pos + 9 < bytes.length) {
    if (bytes[pos] !== 0xff) return null;
    const marker = bytes[pos + 1];
    if (marker === 0xff) { pos += 1; continue; } // fill byte
    // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC): height, width at +5, +7.
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { width: view.getUint16(pos + 7), height: view.getUint16(pos + 5) };
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { pos += 2; continue; }
    pos += 2 + view.getUint16(pos + 2);
  }
  return null;
}

function webpSize(bytes, view) {
  const chunk = ascii(bytes, 12, 16);
  if (chunk === 'VP8X' && bytes.length >= 30) {
    const u24 = (at) => bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
    return { width: u24(24) + 1, height: u24(27) + 1 };
  }
  if (chunk === 'VP8 ' && bytes.length >= 30) {
    return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  }
  if (chunk === 'VP8L' && bytes.length >= 25) {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  return null;
}

/**
 * Width and height in pixels that the file's header declares, or null when the format is not
 * one of PNG, JPEG, GIF, BMP, WebP or the header is cut short. (Before EXIF rotation.)
 * @param {Uint8Array} bytes the whole file
 * @param {string|null} type sniffImageType(bytes)
 * @returns {{width: number, height: number}|null}
 */
export function headerSize(bytes, type) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    switch (type) {
      case 'PNG': return ascii(bytes, 12, 16) === 'IHDR' ? { width: view.getUint32(16), height: view.getUint32(20) } : null;
      case 'JPEG': return jpegSize(bytes, view);
      case 'GIF': return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
      case 'BMP': return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
      case 'WebP': return webpSize(bytes, view);
      default: return null;
    }
  } catch (err) {
    if (err instanceof RangeError) return null; // header cut short
    throw err;
  }
}
