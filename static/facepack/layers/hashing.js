/**
 * Hashing (TF.js 4.22 has none): Keras 3's keras.layers.Hashing at inference for int ids, bit-exact
 * with Keras on the TensorFlow backend. Mirrors keras/src/layers/preprocessing/hashing.py
 * (call, _hash_values_to_bins) and numerical_utils.encode_categorical_inputs (Keras 3.15):
 *
 *   - each id is hashed as its decimal string (tf.as_string: "-42", "0", "2147483647");
 *   - salt None: bin = FarmHash Fingerprint64(string) mod bins, unsigned 64-bit
 *     (tf.strings.to_hash_bucket_fast; Fingerprint64 is farmhash's farmhashna::Hash64);
 *     with a salt [k0, k1]: bin = SipHash-2-4 keyed by (k0, k1) mod bins
 *     (tf.strings.to_hash_bucket_strong, highwayhash's SipHash);
 *   - mask_value set and num_bins > 1: bins = num_bins - 1, an id equal to mask_value maps to 0
 *     and every other id to 1 + its bin (num_bins 1: no mask, everything in bin 0); else
 *     bins = num_bins;
 *   - output_mode "int" (the bins, same shape), "one_hot" (a last axis of 1 is squeezed first,
 *     then a num_bins axis appended), "multi_hot" and "count" (inputs (batch, n) -> (batch,
 *     num_bins)); bin 0 of a masked id is counted like any other bin, as in Keras (encoding.js,
 *     shared with lookup.js).
 *
 * Keras returns int64 ("int") or float32 (the others); TF.js has no int64, so "int" gives int32
 * (the bins are < num_bins <= 2^31 - 1, which the bridge checks). Inputs: int32 (facepack sends
 * int64 ids as int32), or floats (truncated toward zero as Keras' cast to int64; the mask compares
 * the value before the cast, as Keras does). The hashing is a per-element JavaScript loop on the
 * CPU (a data read-back on GPU backends) in unsigned 32-bit halves (FarmHash of strings up to 16
 * bytes, SipHash) or BigInt (longer FarmHash strings): measured in Node on 1M distinct int32 ids,
 * ~0.3 s a call without a salt and ~1.1 s with one (SipHash keeps a per-call cache, so repeated
 * ids are hashed once). Not implemented (the bridge refuses them first): string inputs, sparse
 * outputs.
 *
 * The hash functions are written from the algorithms' reference descriptions (farmhash's
 * farmhashna::Hash64 and SipHash-2-4 with SipHash's final-packet padding) and checked against
 * TensorFlow on int32 ids and random byte strings of every length class (tests/test_export_hashing.py).
 */
import * as tf from '@tensorflow/tfjs';
import { INT32_MAX, one } from './common.js';
import { encodeCategorical, encodedShape, modeName, outputMode } from './encoding.js';


// --- 64-bit helpers (BigInt, wrapped to unsigned 64 bits) ------------------------------------

const u64 = (v) => BigInt.asUintN(64, v);
const rotr = (v, s) => ((v >> s) | u64(v << (64n - s)));

/** Little-endian unsigned 32 bits of bytes[i..i+3] (a Uint8Array or an array of bytes) as a Number. */
function fetch32n(bytes, i) {
  return (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << (3 * 8))) >>> 0;
}

// farmhash reads 8-byte words; its byte offsets are written as multiples of WORD (24 = 3 * WORD, ...).
const WORD = 8;

const fetch64 = (bytes, i) => (BigInt(fetch32n(bytes, i + 4)) << 32n) | BigInt(fetch32n(bytes, i));

// --- FarmHash Fingerprint64 (farmhashna::Hash64) ------------------------------------------------

const K0 = 0xc3a5c85c97cb3127n;
const K1 = 0xb492b66fbe98f273n;
const K2 = 0x9ae16a3b2f90404fn;

const shiftMix = (v) => v ^ (v >> 47n);

function hashLen16(u, v, mul) {
  let a = u64((u ^ v) * mul);
  a ^= a >> 47n;
  let b = u64((v ^ a) * mul);
  b ^= b >> 47n;
  return u64(b * mul);
}

function hashLen17to32(s, len) {
  const mul = K2 + BigInt(len * 2);
  const a = u64(fetch64(s, 0) * K1);
  const b = fetch64(s, 8);
  const c = u64(fetch64(s, len - 8) * mul);
  const d = u64(fetch64(s, len - 16) * K2);
  return hashLen16(u64(rotr(u64(a + b), 43n) + rotr(c, 30n) + d), u64(a + rotr(u64(b + K2), 18n) + c), mul);
}

function hashLen33to64(s, len) {
  const mul = K2 + BigInt(len * 2);
  const a = u64(fetch64(s, 0) * K2);
  const b = fetch64(s, 8);
  const c = u64(fetch64(s, len - 8) * mul);
  const d = u64(fetch64(s, len - 16) * K2);
  const y = u64(rotr(u64(a + b), 43n) + rotr(c, 30n) + d);
  const z = hashLen16(y, u64(a + rotr(u64(b + K2), 18n) + c), mul);
  const e = u64(fetch64(s, 16) * mul);
  const f = fetch64(s, 3 * WORD);
  const g = u64((y + fetch64(s, len - 32)) * mul);
  const h = u64((z + fetch64(s, len - 3 * WORD)) * mul);
  return hashLen16(u64(rotr(u64(e + f), 43n) + rotr(g, 30n) + h), u64(e + rotr(u64(f + a), 18n) + g), mul);
}

/** farmhashna's WeakHashLen32WithSeeds on the 4 words at s[i..i+31] and seeds a, b: [first, second]. */
function weakHashLen32WithSeeds(s, i, a, b) {
  const w = fetch64(s, i);
  const x = fetch64(s, i + 8);
  const y = fetch64(s, i + 16);
  const z = fetch64(s, i + 3 * WORD);
  a = u64(a + w);
  b = rotr(u64(b + a + z), 21n);
  const c = a;
  a = u64(a + x + y);
  b = u64(b + rotr(a, 44n));
  return [u64(a + z), u64(b + c)];
}

/** Strings over 64 bytes: 64-byte blocks, then the last 64 bytes. */
function hashLong(s, len) {
  const seed = 81n;
  let x = seed;
  let y = u64(seed * K1 + 113n);
  let z = u64(shiftMix(u64(y * K2 + 113n)) * K2);
  let v = [0n, 0n];
  let w = [0n, 0n];
  x = u64(x * K2 + fetch64(s, 0));
  const end = Math.floor((len - 1) / 64) * 64;
  const last64 = len - 64;
  let p = 0;
  do {
    x = u64(rotr(u64(x + y + v[0] + fetch64(s, p + 8)), 37n) * K1);
    y = u64(rotr(u64(y + v[1] + fetch64(s, p + 6 * WORD)), 42n) * K1);
    x ^= w[1];
    y = u64(y + v[0] + fetch64(s, p + 5 * WORD));
    z = u64(rotr(u64(z + w[0]), 33n) * K1);
    v = weakHashLen32WithSeeds(s, p, u64(v[1] * K1), u64(x + w[0]));
    w = weakHashLen32WithSeeds(s, p + 32, u64(z + w[1]), u64(y + fetch64(s, p + 16)));
    [z, x] = [x, z];
    p += 64;
  } while (p !== end);
  const mul = K1 + ((z & 0xffn) << 1n);
  p = last64;
  w[0] = u64(w[0] + BigInt((len - 1) & 63));
  v[0] = u64(v[0] + w[0]);
  w[0] = u64(w[0] + v[0]);
  x = u64(rotr(u64(x + y + v[0] + fetch64(s, p + 8)), 37n) * mul);
  y = u64(rotr(u64(y + v[1] + fetch64(s, p + 6 * WORD)), 42n) * mul);
  x ^= u64(w[1] * 9n);
  y = u64(y + v[0] * 9n + fetch64(s, p + 5 * WORD));
  z = u64(rotr(u64(z + w[0]), 33n) * mul);
  v = weakHashLen32WithSeeds(s, p, u64(v[1] * mul), u64(x + w[0]));
  w = weakHashLen32WithSeeds(s, p + 32, u64(z + w[1]), u64(y + fetch64(s, p + 16)));
  [z, x] = [x, z];
  return hashLen16(u64(hashLen16(v[0], w[0], mul) + shiftMix(y) * K0 + z), u64(hashLen16(v[1], w[1], mul) + x), mul);
}

// farmhashna HashLen0to16 (strings of at most 16 bytes: every int32 id, int64 ids up to 16
// characters) on unsigned 32-bit halves, ~4x faster than BigInt. Results in RH (high) and RL (low).
let RH = 0;
let RL = 0;
const K0H = 0xc3a5c85c;
const K0L = 0x97cb3127;
const K2H = 0x9ae16a3b;
const K2L = 0x2f90404f;

/** (ah:al) * (bh:bl) mod 2^64 -> RH:RL. */
function mul64(ah, al, bh, bl) {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  RL = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = Math.floor(mid / 65536) + Math.floor(p01 / 65536) + Math.floor(p10 / 65536) + a1 * b1;
  RH = (carry + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
}

/** farmhashna HashLen16(u, v, mul) on halves -> RH:RL. */
function hashLen16h(uh, ul, vh, vl, mh, ml) {
  mul64((uh ^ vh) >>> 0, (ul ^ vl) >>> 0, mh, ml);
  const ah = RH;
  const al = (RL ^ (RH >>> 15)) >>> 0;
  mul64((vh ^ ah) >>> 0, (vl ^ al) >>> 0, mh, ml);
  mul64(RH, (RL ^ (RH >>> 15)) >>> 0, mh, ml);
}

/** farmhashna HashLen0to16 on halves -> RH:RL. */
function hashLen0to16h(s, len) {
  if (len >= 8) {
    const ml = K2L + len * 2; // no carry: K2L + 32 < 2^32
    // a = Fetch64(s) + k2
    let al = fetch32n(s, 0) + K2L;
    const ah = (fetch32n(s, 4) + K2H + (al > 0xffffffff ? 1 : 0)) >>> 0;
    al >>>= 0;
    const bl = fetch32n(s, len - 8);
    const bh = fetch32n(s, len - 4);
    // c = Rotate(b, 37) * mul + a: rotate right by 37 = swap halves, then by 5
    mul64(((bl >>> 5) | (bh << 27)) >>> 0, ((bh >>> 5) | (bl << 27)) >>> 0, K2H, ml);
    let cl = RL + al;
    const ch = (RH + ah + (cl > 0xffffffff ? 1 : 0)) >>> 0;
    cl >>>= 0;
    // d = (Rotate(a, 25) + b) * mul
    let rl = (((al >>> 25) | (ah << 7)) >>> 0) + bl;
    const rh = ((((ah >>> 25) | (al << 7)) >>> 0) + bh + (rl > 0xffffffff ? 1 : 0)) >>> 0;
    rl >>>= 0;
    mul64(rh, rl, K2H, ml);
    hashLen16h(ch, cl, RH, RL, K2H, ml);
    return;
  }
  if (len >= 4) {
    const a = fetch32n(s, 0);
    // u = len + (a << 3) (no carry out of the low half past 2^32 + 31... handled)
    let ul = ((a << 3) >>> 0) + len;
    const uh = ((a >>> 29) + (ul > 0xffffffff ? 1 : 0)) >>> 0;
    ul >>>= 0;
    hashLen16h(uh, ul, 0, fetch32n(s, len - 4), K2H, K2L + len * 2);
    return;
  }
  if (len > 0) {
    const y = s[0] + (s[len >> 1] << 8);
    const z = len + (s[len - 1] << 2);
    mul64(0, y, K2H, K2L);
    const yh = RH;
    const yl = RL;
    mul64(0, z, K0H, K0L);
    const xh = (yh ^ RH) >>> 0;
    const xl = (yl ^ RL) >>> 0;
    mul64(xh, (xl ^ (xh >>> 15)) >>> 0, K2H, K2L);
    return;
  }
  RH = K2H;
  RL = K2L;
}

/** (hi * 2^32 + lo) mod n for n < 2^31, in doubles without rounding. */
function mod64(hi, lo, n) {
  let r = hi % n;
  r = (r * 65536) % n;
  return (r * 65536 + lo) % n;
}

/**
 * FarmHash Fingerprint64 of a byte string (Uint8Array), as TensorFlow's Fingerprint64 and
 * tf.strings.to_hash_bucket_fast compute it: an unsigned 64-bit BigInt.
 */
export function fingerprint64(bytes) {
  const len = bytes.length;
  if (len <= 16) {
    hashLen0to16h(bytes, len);
    return (BigInt(RH) << 32n) | BigInt(RL);
  }
  if (len <= 32) return hashLen17to32(bytes, len);
  if (len <= 64) return hashLen33to64(bytes, len);
  return hashLong(bytes, len);
}

// --- SipHash-2-4 -------------------------------------------------------------------------------

// On unsigned 32-bit halves (adds, rotations and xors only): the state is V (v0..v3, high then low).
const V = new Uint32Array(8);

/** V[i] += V[j] (64-bit words i, j: indices of their high halves). */
function sipAdd(i, j) {
  const lo = V[i + 1] + V[j + 1];
  V[i] = V[i] + V[j] + (lo > 0xffffffff ? 1 : 0);
  V[i + 1] = lo;
}

/** V[i] = rotl(V[i], s) ^ V[x], 0 < s < 32. */
function sipRotXor(i, s, x) {
  const h = V[i];
  const l = V[i + 1];
  V[i] = ((h << s) | (l >>> (32 - s))) ^ V[x];
  V[i + 1] = ((l << s) | (h >>> (32 - s))) ^ V[x + 1];
}

function sipSwap(i) {
  const h = V[i];
  V[i] = V[i + 1];
  V[i + 1] = h;
}

function sipRounds(n) {
  for (let r = 0; r < n; r++) {
    sipAdd(0, 2); // v0 += v1
    sipAdd(4, 6); // v2 += v3
    sipRotXor(2, 13, 0); // v1 = rotl(v1, 13) ^ v0
    sipRotXor(6, 16, 4); // v3 = rotl(v3, 16) ^ v2
    sipSwap(0); // v0 = rotl(v0, 32)
    sipAdd(4, 2); // v2 += v1
    sipAdd(0, 6); // v0 += v3
    sipRotXor(2, 17, 4); // v1 = rotl(v1, 17) ^ v2
    sipRotXor(6, 21, 0); // v3 = rotl(v3, 21) ^ v0
    sipSwap(4); // v2 = rotl(v2, 32)
  }
}

function sipCompress(mh, ml) {
  V[6] ^= mh;
  V[7] ^= ml;
  sipRounds(2);
  V[0] ^= mh;
  V[1] ^= ml;
}

/** SipHash-2-4 keyed by the words k0, k1 (each [high, low] unsigned 32-bit halves) -> RH:RL. */
function sipHash24h(k0, k1, bytes) {
  V[0] = 0x736f6d65 ^ k0[0];
  V[1] = 0x70736575 ^ k0[1];
  V[2] = 0x646f7261 ^ k1[0];
  V[3] = 0x6e646f6d ^ k1[1];
  V[4] = 0x6c796765 ^ k0[0];
  V[5] = 0x6e657261 ^ k0[1];
  V[6] = 0x74656462 ^ k1[0];
  V[7] = 0x79746573 ^ k1[1];
  const len = bytes.length;
  const full = len - (len % 8);
  for (let i = 0; i < full; i += 8) sipCompress(fetch32n(bytes, i + 4), fetch32n(bytes, i));
  // the last packet: the remaining bytes, zeros, and the length's low byte at the top
  const tail = [0, 0, 0, 0, 0, 0, 0, len & 0xff];
  for (let i = full; i < len; i++) tail[i - full] = bytes[i];
  sipCompress(fetch32n(tail, 4), fetch32n(tail, 0));
  V[5] ^= 0xff; // v2 ^= 0xff
  sipRounds(4);
  RH = (V[0] ^ V[2] ^ V[4] ^ V[6]) >>> 0;
  RL = (V[1] ^ V[3] ^ V[5] ^ V[7]) >>> 0;
}

/** [high, low] unsigned 32-bit halves of an unsigned 64-bit BigInt. */
const halves = (v) => [Number(v >> 32n), Number(v & 0xffffffffn)];

/**
 * SipHash-2-4 of a byte string keyed by the two unsigned 64-bit words (k0, k1) (BigInts), as
 * tf.strings.to_hash_bucket_strong computes it with key=[k0, k1]: an unsigned 64-bit BigInt.
 */
export function sipHash24(k0, k1, bytes) {
  sipHash24h(halves(k0), halves(k1), bytes);
  return (BigInt(RH) << 32n) | BigInt(RL);
}

// --- ids -> bins ---------------------------------------------------------------------------

/** ASCII bytes of a string of digits and '-'. */
function asciiBytes(text) {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** tf.as_string of an integer (a Number, exact below 2^53, or a BigInt): its decimal string. */
export function decimalString(id) {
  if (typeof id === 'bigint' || Number.isSafeInteger(id)) return String(id);
  return BigInt(id).toString(); // an integer-valued double above 2^53: exact digits
}

/**
 * The Keras Hashing bin of one integer id: FarmHash Fingerprint64 (salt null) or SipHash-2-4
 * (salt [k0, k1]) of its decimal string, mod bins (a Number; the mask is not applied here).
 */
export function hashBin(id, bins, salt = null) {
  const bytes = asciiBytes(decimalString(id));
  if (bins <= INT32_MAX && (salt != null || bytes.length <= 16)) {
    if (salt == null) hashLen0to16h(bytes, bytes.length);
    else sipHash24h(halves(salt[0]), halves(salt[1]), bytes);
    return mod64(RH, RL, bins);
  }
  const hash = salt == null ? fingerprint64(bytes) : sipHash24(salt[0], salt[1], bytes);
  return Number(hash % BigInt(bins));
}

/** Unsigned 64-bit BigInt of a salt word as TensorFlow's int64 key attribute holds it. */
function saltWord(v, label) {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (!Number.isSafeInteger(v)) throw new Error(`${label}: salt values must be integers of magnitude below 2^53, got ${v}`);
  return BigInt.asUintN(64, BigInt(v));
}

/**
 * A config's salt as hashBin takes it: null (FarmHash), or the SipHash key [k0, k1] as unsigned
 * 64-bit BigInts (Keras: one integer is [salt, salt]); throws naming the layer (`label`, e.g.
 * "Hashing hash") for anything else.
 */
export function saltKey(salt, label) {
  if (salt == null) return null;
  const words = Array.isArray(salt) ? salt : [salt, salt];
  if (words.length !== 2) throw new Error(`${label}: salt must be one or two integers`);
  return words.map((v) => saltWord(v, label));
}

export class Hashing extends tf.layers.Layer {
  static className = 'Hashing';

  constructor(config) {
    super({ ...config, dtype: modeName(config.outputMode) === 'int' ? 'int32' : 'float32' });
    this.config = { ...config };
    const mode = outputMode(config.outputMode, `Hashing ${this.name}`);
    if (config.sparse) throw new Error(`Hashing ${this.name}: sparse=True is not implemented`);
    const numBins = config.numBins;
    if (!Number.isInteger(numBins) || numBins < 1 || numBins > INT32_MAX) {
      throw new Error(`Hashing ${this.name}: num_bins must be an integer in [1, 2^31 - 1], got ${numBins}`);
    }
    this.mode = mode;
    this.numBins = numBins;
    this.maskValue = config.maskValue ?? null;
    if (this.maskValue != null && typeof this.maskValue !== 'number') {
      throw new Error(`Hashing ${this.name}: mask_value ${JSON.stringify(this.maskValue)} is not an integer (int inputs only)`);
    }
    this.salt = saltKey(config.salt, `Hashing ${this.name}`);
    this.masked = this.maskValue != null && numBins > 1;
    this.bins = this.masked ? numBins - 1 : numBins;
  }

  /** Keras' _hash_values_to_bins on a tensor of ids: int32 bins, same shape. */
  hashTensor(x) {
    const values = x.dataSync();
    const out = new Int32Array(values.length);
    // SipHash (~4.5 us an id): a per-call cache, repeated ids are hashed once; FarmHash of a short
    // string (~0.3 us) costs about what a Map lookup and insert do, so it runs uncached
    const cache = this.salt == null ? null : new Map();
    const offset = this.masked ? 1 : 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (this.masked && v === this.maskValue) continue; // 0
      let bin = cache?.get(v);
      if (bin === undefined) {
        // floats: Keras casts to int64 first (toward zero); -0 prints as "0" as the int 0 does
        bin = hashBin(Number.isInteger(v) ? v : Math.trunc(v), this.bins, this.salt);
        cache?.set(v, bin);
      }
      out[i] = bin + offset;
    }
    return tf.tensor(out, x.shape, 'int32');
  }

  call(inputs) {
    return tf.tidy(() => {
      const bins = this.hashTensor(one(inputs));
      // float32 rows (Keras' float32); the bins are always inside [0, num_bins)
      return encodeCategorical(bins, this.mode, this.numBins, 'float32', `Hashing ${this.name}`);
    });
  }

  computeOutputShape(inputShape) {
    return encodedShape(inputShape, this.mode, this.numBins);
  }

  getConfig() {
    return { ...super.getConfig(), ...this.config, dtype: this.mode === 'int' ? 'int32' : 'float32' };
  }
}
tf.serialization.registerClass(Hashing);
