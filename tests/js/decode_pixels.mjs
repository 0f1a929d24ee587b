/**
 * Node runner for tests/test_input_decode.py: input.js:decodeInput hands back the float32 values
 * its tensor was made from ({data, width, height} inputs), so analyze() skips reading the photo
 * back; they must be the tensor's values bit for bit (RGB and RGBA, typed and plain arrays), and
 * absent (null) for a tensor input, whose values live on the backend.
 *
 *   node tests/js/decode_pixels.mjs JOB.json  ->  {cases: [{name, pixels, same, differing, values, shape}], leaked}
 *   (same: `pixels` is the very array data() returned, which makes the comparison empty)
 *
 * JOB: {backend, seed, height, width}: photos made here from the seed.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { decodeInput } from '../../static/facepack/input.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
await useBackend(job.backend);
const spec = { alpha_rule: 'premultiply' };
let seed = job.seed;
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const { height: h, width: w } = job;
const bytes = (n) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
const rgb = bytes(h * w * 3);
const rgba = bytes(h * w * 4);
const inputs = {
  rgb_uint8: { data: rgb, width: w, height: h },
  rgb_float32: { data: Float32Array.from(rgb, (v) => v + random()), width: w, height: h },
  rgb_array: { data: Array.from(rgb), width: w, height: h },
  rgba_uint8: { data: rgba, width: w, height: h },
  rgba_clamped: { data: new Uint8ClampedArray(rgba), width: w, height: h }, // ImageData's kind
  tensor: tf.tensor3d(rgb, [h, w, 3], 'int32'),
};
const before = tf.memory().numTensors;
const cases = [];
for (const [name, input] of Object.entries(inputs)) {
  const { image, pixels } = await decodeInput(input, spec);
  const want = await image.data();
  let differing = 0;
  if (pixels) {
    const a = new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.length);
    const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
    differing = a.length === b.length ? a.reduce((n, v, i) => n + (v !== b[i] ? 1 : 0), 0) : -1;
  }
  cases.push({ name, pixels: pixels !== null, same: pixels === want, differing, values: want.length, shape: image.shape });
  image.dispose();
}
const leaked = tf.memory().numTensors - before;
process.stdout.write(JSON.stringify({ cases, leaked }));
