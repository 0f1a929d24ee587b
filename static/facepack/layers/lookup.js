/**
 * IntegerLookup (TF.js 4.22 has none): Keras 3's integer vocabulary lookup at inference, for int
 * inputs, with the vocabulary in the layer's config (facepack/export/bridge.py writes the layer's
 * get_vocabulary() there, so an adapted vocabulary travels too). Mirrors
 * keras/src/layers/preprocessing/index_lookup.py (call, _lookup_dense, set_vocabulary) and
 * keras/src/utils/numerical_utils.py:encode_categorical_inputs (Keras 3.15):
 *
 *   - an entry maps to its index: token_start + its position among the tokens, where
 *     token_start = oov_start + num_oov_indices and oov_start = 1 with a mask_token in "int"
 *     mode, else 0;
 *   - an id out of vocabulary maps to oov_start (num_oov_indices 1), to
 *     floormod(id, num_oov_indices) + oov_start (num_oov_indices > 1, oov_method "floormod"), to
 *     hash(decimal string of the id) mod num_oov_indices + oov_start (num_oov_indices > 1,
 *     oov_method "farmhash": FarmHash Fingerprint64, tf.strings.to_hash_bucket_fast, or with a
 *     salt SipHash-2-4 keyed by it, to_hash_bucket_strong; hashing.js's hashBin, bit-exact with
 *     TensorFlow), or is an error (num_oov_indices 0: Keras' tf.Assert; thrown here with Keras'
 *     message);
 *   - the mask_token maps to 0 in "int" mode and is dropped (a row of zeros) in the others;
 *   - output_mode "one_hot" (a last axis of 1 is replaced, else one is appended), "multi_hot" and
 *     "count" (inputs (batch, n) -> (batch, depth)), depth = max_tokens with pad_to_max_tokens,
 *     else the vocabulary size (specials included) (encoding.js, shared with hashing.js);
 *   - invert: indices -> vocabulary ids (the mask_token at 0, oov_token for the OOV indices and
 *     any index outside [0, vocabulary size)).
 *
 * Keras returns int64; TF.js has no int64, so every output is int32 (as facepack sends int64
 * inputs). The farmhash OOV buckets are a per-element JavaScript loop on the CPU over the ids
 * out of vocabulary (a data read-back on GPU backends), as hashing.js. Not implemented (the bridge
 * refuses them first): output_mode "tf_idf", sparse outputs.
 */
import * as tf from '@tensorflow/tfjs';
import { INT32_MAX, one } from './common.js';
import { encodeCategorical, encodedShape, outputMode } from './encoding.js';
import { hashBin, saltKey } from './hashing.js';


export class IntegerLookup extends tf.layers.Layer {
  static className = 'IntegerLookup';

  constructor(config) {
    super({ ...config, dtype: 'int32' });
    this.config = { ...config };
    const mode = outputMode(config.outputMode, `IntegerLookup ${this.name}`);
    if (config.sparse) throw new Error(`IntegerLookup ${this.name}: sparse=True is not implemented`);
    const method = { floormod: 'floormod', floorMod: 'floormod', farmhash: 'farmhash' }[config.oovMethod ?? 'floormod'];
    if (method == null) {
      throw new Error(`IntegerLookup ${this.name}: oov_method ${JSON.stringify(config.oovMethod)} is not implemented (floormod, farmhash)`);
    }
    this.mode = mode;
    this.invert = Boolean(config.invert);
    this.numOov = config.numOovIndices ?? 1;
    // Keras hashes the OOV ids only for num_oov_indices > 1 (a salt is only valid with farmhash)
    this.hashed = method === 'farmhash' && this.numOov > 1;
    this.salt = this.hashed ? saltKey(config.salt, `IntegerLookup ${this.name}`) : null;
    this.maskToken = config.maskToken ?? null;
    this.oovToken = config.oovToken ?? -1;
    const vocabulary = (config.vocabulary ?? []).map(Number);
    this.oovStart = this.maskToken != null && mode === 'int' ? 1 : 0;
    this.tokenStart = this.oovStart + this.numOov;
    // set_vocabulary: a vocabulary that starts with exactly the special tokens has them stripped
    const specials = [...Array(this.oovStart).fill(this.maskToken), ...Array(this.numOov).fill(this.oovToken)];
    const found = vocabulary.length >= specials.length && specials.every((t, i) => vocabulary[i] === t);
    this.tokens = found ? vocabulary.slice(specials.length) : vocabulary;
    if (!this.tokens.length) throw new Error(`IntegerLookup ${this.name}: the config holds no vocabulary`);
    if (this.tokens.some((t) => !Number.isInteger(t) || Math.abs(t) > INT32_MAX)) {
      throw new Error(`IntegerLookup ${this.name}: vocabulary entries must be int32 integers`);
    }
    this.vocabularySize = this.tokenStart + this.tokens.length;
    this.depth = config.padToMaxTokens ? config.maxTokens : this.vocabularySize;
    this.sorted = null;
  }

  build(inputShape) {
    this.tables(); // at load time, so that a predict call makes no lasting tensors
    super.build(inputShape);
  }

  /** int32 tensors of the vocabulary sorted ascending and each entry's index (made once, kept). */
  tables() {
    if (this.sorted == null) {
      const order = this.tokens.map((t, i) => [t, i]).sort((a, b) => a[0] - b[0]);
      this.sorted = tf.keep(tf.tensor2d(order.map(([t]) => t), [1, order.length], 'int32'));
      this.indexOf = tf.keep(tf.tensor1d(order.map(([, i]) => i + this.tokenStart), 'int32'));
      const table = [...Array(this.tokenStart).fill(this.oovToken), ...this.tokens];
      if (this.maskToken != null && this.oovStart === 1) table[0] = this.maskToken;
      this.inverse = tf.keep(tf.tensor1d(table, 'int32'));
    }
    return this;
  }

  /** index_lookup.py:_lookup_dense (not inverted): vocabulary ids -> indices, int32, same shape. */
  lookup(x) {
    const { sorted, indexOf } = this.tables();
    const size = this.tokens.length;
    const flat = x.reshape([1, -1]);
    // (a JS number operand would be a float32 tensor: every constant here is int32)
    const pos = tf.minimum(tf.searchSorted(sorted, flat, 'left'), tf.scalar(size - 1, 'int32')).reshape([-1]);
    const hit = tf.equal(tf.gather(sorted.reshape([-1]), pos), flat.reshape([-1])).reshape(x.shape);
    let fallback;
    if (this.numOov === 0) fallback = tf.fill(x.shape, -1, 'int32');
    else if (this.numOov === 1) fallback = tf.fill(x.shape, this.oovStart, 'int32');
    else if (this.hashed) fallback = this.hashedOov(x, hit);
    else fallback = tf.mod(x, tf.scalar(this.numOov, 'int32')).add(tf.scalar(this.oovStart, 'int32'));
    let out = tf.where(hit, tf.gather(indexOf, pos).reshape(x.shape), fallback);
    if (this.maskToken != null) {
      // "int": the mask maps to 0; other modes drop it (Keras: int64 max, past every bin)
      const value = this.mode === 'int' ? 0 : INT32_MAX;
      out = tf.where(tf.equal(x, tf.scalar(this.maskToken, 'int32')), tf.fill(x.shape, value, 'int32'), out);
    }
    if (this.numOov === 0) {
      const missing = tf.equal(out, tf.scalar(-1, 'int32'));
      if (missing.any().dataSync()[0]) {
        const values = [];
        const ids = x.dataSync();
        const flags = missing.dataSync();
        for (let i = 0; i < flags.length; i++) if (flags[i]) values.push(ids[i]);
        throw new Error(`IntegerLookup ${this.name}: When \`num_oov_indices=0\` all inputs should be in vocabulary, found OOV values [${values.join(' ')}], consider setting \`num_oov_indices=1\`.`);
      }
    }
    return out;
  }

  /**
   * oov_method "farmhash": hashBin(id, num_oov_indices, salt) + oov_start of each id out of
   * vocabulary (`hit` false), as Keras' to_hash_bucket_fast/strong of tf.strings.as_string(id);
   * int32, same shape, 0 where `hit` (those take their entry's index).
   */
  hashedOov(x, hit) {
    const ids = x.dataSync();
    const found = hit.dataSync();
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      if (!found[i]) out[i] = hashBin(ids[i], this.numOov, this.salt) + this.oovStart;
    }
    return tf.tensor(out, x.shape, 'int32');
  }

  /** invert=True: indices -> vocabulary ids (mask_token at 0, oov_token outside the tokens). */
  lookupInverse(x) {
    const { inverse } = this.tables();
    const last = tf.scalar(this.vocabularySize - 1, 'int32');
    const zero = tf.scalar(0, 'int32');
    const inside = tf.logicalAnd(tf.greaterEqual(x, zero), tf.lessEqual(x, last));
    // min/max, not clipByValue: on WASM clipByValue left an int32 index 8 above its bound 7 (measured)
    const values = tf.gather(inverse, tf.maximum(tf.minimum(x, last), zero));
    return tf.where(inside, values, tf.fill(x.shape, this.oovToken, 'int32'));
  }

  call(inputs) {
    return tf.tidy(() => {
      let x = one(inputs);
      if (x.dtype !== 'int32') x = x.cast('int32');
      if (this.invert) return this.lookupInverse(x);
      // int32 rows (TF.js has no int64); a dropped mask (INT32_MAX) is a row of zeros
      return encodeCategorical(this.lookup(x), this.mode, this.depth, 'int32', `IntegerLookup ${this.name}`);
    });
  }

  computeOutputShape(inputShape) {
    return this.invert ? inputShape : encodedShape(inputShape, this.mode, this.depth);
  }

  dispose() {
    const result = super.dispose();
    if (result.refCountAfterDispose === 0 && this.sorted != null) {
      tf.dispose([this.sorted, this.indexOf, this.inverse]);
      this.sorted = null;
    }
    return result;
  }

  getConfig() {
    return { ...super.getConfig(), ...this.config, dtype: 'int32' };
  }
}
tf.serialization.registerClass(IntegerLookup);
