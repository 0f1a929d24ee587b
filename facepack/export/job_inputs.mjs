// The raw input files of a node_check.mjs job (shared by node_check.mjs and graph_locate.mjs).
import { readFile } from 'node:fs/promises';

/**
 * One job input: a raw little-endian file of float32 / int32 values, or bool as one byte each.
 * @param {{file: string, shape: number[], dtype?: string}} spec
 * @returns {Promise<{data: Float32Array|Int32Array|Uint8Array, shape: number[], dtype: string}>}
 */
export async function readInput(spec) {
  const buf = await readFile(spec.file);
  const dtype = spec.dtype || 'float32';
  const data = dtype === 'int32' ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)
    : dtype === 'bool' ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
      : new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return { data, shape: spec.shape, dtype };
}
