/**
 * The categorical encoding shared by lookup.js (IntegerLookup) and hashing.js (Hashing): Keras 3's
 * keras/src/utils/numerical_utils.py:encode_categorical_inputs (Keras 3.15) on int32 indices,
 * dense outputs only. Not registered, not re-exported by index.js.
 */
import * as tf from '@tensorflow/tfjs';

/** The output modes both layers implement ("tf_idf" and sparse outputs are refused by the bridge). */
export const MODES = ['int', 'one_hot', 'multi_hot', 'count'];
// TF.js camel-cases the config's string values too ('multi_hot' arrives as 'multiHot')
const MODE_NAMES = {
  int: 'int', one_hot: 'one_hot', oneHot: 'one_hot', multi_hot: 'multi_hot', multiHot: 'multi_hot', binary: 'multi_hot',
  count: 'count',
};

/** A config's output_mode (absent: "int") under its Keras name, checked by outputMode. */
export function modeName(configMode) {
  return MODE_NAMES[configMode ?? 'int'] ?? configMode;
}

/**
 * A config's output_mode (absent: "int") as one of MODES; throws naming the layer (`label`, e.g.
 * "IntegerLookup lookup") for any other.
 */
export function outputMode(configMode, label) {
  const mode = modeName(configMode);
  if (!MODES.includes(mode)) {
    throw new Error(`${label}: output_mode ${JSON.stringify(configMode)} is not implemented (supported: ${MODES.join(', ')})`);
  }
  return mode;
}

/**
 * A one-hot row of `depth` per int32 index (the result has one more axis, last), `dtype` 1/0, and
 * zeros for an index outside [0, depth) (Keras: IntegerLookup's masked ids, int64 max, land past
 * every bin and are dropped).
 *
 * Built with where(), not with tf.oneHot or a cast, for two TF.js 4.22 backend quirks (measured):
 *   - cpu: Cast keeps the input's backing store under the new dtype (no encoding change), so
 *     equal(...).cast('int32') has a Uint8Array behind an int32 tensor, and
 *     tf.oneHot(...).cast('float32') an Int32Array behind a float32 one: data() hands out the wrong
 *     array type;
 *   - wasm: tf.oneHot(..., 'float32') wrote int32 bits into the float32 output (1 read as 1e-45).
 */
export function oneHotRows(indices, depth, dtype) {
  const hit = tf.equal(indices.expandDims(-1), tf.range(0, depth, 1, 'int32'));
  return tf.where(hit, tf.ones(hit.shape, dtype), tf.zeros(hit.shape, dtype));
}

/**
 * encode_categorical_inputs for output_mode "one_hot", "multi_hot" or "count" on int32 `indices`
 * ("int" returns them as they are), `dtype` values:
 *   - "one_hot": a last axis of 1 is replaced by the depth axis, else one is appended;
 *   - "multi_hot" / "count": indices (batch, n) -> (batch, depth), 1 where an index occurs / the
 *     number of times it does; throws naming the layer (`label`) for another rank.
 */
export function encodeCategorical(indices, mode, depth, dtype, label) {
  if (mode === 'int') return indices;
  if (mode === 'one_hot') {
    const last = indices.rank > 1 && indices.shape[indices.rank - 1] === 1;
    return oneHotRows(last ? indices.squeeze([indices.rank - 1]) : indices, depth, dtype);
  }
  if (indices.rank !== 2) {
    throw new Error(`${label}: output_mode ${mode} needs inputs of shape (batch, n), got rank ${indices.rank}`);
  }
  const hot = oneHotRows(indices, depth, dtype);
  return mode === 'multi_hot' ? hot.max(1) : hot.sum(1);
}

/** The output shape encodeCategorical gives for inputs of `inputShape` (batch included). */
export function encodedShape(inputShape, mode, depth) {
  if (mode === 'int') return inputShape;
  if (mode === 'one_hot') {
    const last = inputShape.length > 1 && inputShape[inputShape.length - 1] === 1;
    return [...(last ? inputShape.slice(0, -1) : inputShape), depth];
  }
  return [inputShape[0], depth];
}
