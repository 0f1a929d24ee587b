/**
 * The PNG integrity rule (manifest spec.png_checksums = "refuse"), applied before decoding:
 * a PNG with a chunk that fails its CRC, or that ends inside a chunk, is refused. Mirrors
 * facepack/data/png_check.py:png_problem word for word (browsers and PIL each refuse only some
 * such files, and not the same ones; see there). Used by the page (app.js) and the library's
 * Blob/File input (input.js). No imports: the page loads it before the library.
 */

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHUNK_HEAD = 8; // 4-byte length + 4-byte type
const CHUNK_CRC = 4;

let crcTable = null;

/** CRC-32 (ISO 3309, as zlib.crc32 and the PNG specification compute it) of bytes[start, end). */
export function crc32(bytes, start = 0, end = bytes.length) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Why a PNG breaks the rule (one line, the words of png_check.py), or null when it passes or
 * is not a PNG. Walks the chunks up to IEND (bytes after it are ignored).
 * @param {Uint8Array} bytes the whole file
 * @returns {string|null}
 */
export function pngProblem(bytes) {
  if (bytes.length < SIGNATURE.length || SIGNATURE.some((b, i) => bytes[i] !== b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = SIGNATURE.length;
  while (pos < bytes.length) {
    if (pos + CHUNK_HEAD > bytes.length) return 'damaged PNG: the file ends inside a chunk header (truncated)';
    const length = view.getUint32(pos);
    const name = String.fromCharCode(...bytes.subarray(pos + 4, pos + CHUNK_HEAD));
    if (!/^[A-Za-z]{4}$/.test(name)) return 'damaged PNG: a chunk has an invalid type (the file is not a well-formed PNG)';
    const end = pos + CHUNK_HEAD + length;
    if (end + CHUNK_CRC > bytes.length) return `damaged PNG: the file ends inside its ${name} chunk (truncated)`;
    if (crc32(bytes, pos + 4, end) !== view.getUint32(end)) {
      return `damaged PNG: its ${name} chunk fails its CRC check (the file was changed after it was written)`;
    }
    if (name === 'IEND') return null;
    pos = end + CHUNK_CRC;
  }
  return null;
}
