/**
 * CategoryEncoding, replacing TF.js 4.22's: Keras 3's keras.layers.CategoryEncoding at inference
 * (keras/src/layers/preprocessing/category_encoding.py, Keras 3.15, on the TensorFlow backend).
 * The difference that matters: Keras drops an id >= num_tokens (the TensorFlow fast path,
 * keras/src/utils/tf_utils.py:tf_encode_categorical_inputs, is tf.math.bincount with
 * minlength = maxlength = num_tokens; the one_hot path gives a row of zeros), while TF.js' layer
 * throws "Input values must be between 0 < values <= numTokens" for the whole batch. Here such an
 * id gives zeros as in Keras (encoding.js:encodeCategorical). Shapes as Keras: "one_hot" replaces a
 * last axis of 1 (else appends one); "multi_hot" / "count" take (batch, n) to (batch, num_tokens)
 * and a rank-1 input as one sample, (n,) to (num_tokens,).
 *
 * Not reproduced: a negative id, which Keras refuses (bincount: "Input arr must be non-negative"),
 * gives zeros here; count_weights and sparse outputs throw.
 */
import * as tf from '@tensorflow/tfjs';

import { one } from './common.js';
import { encodeCategorical, encodedShape, modeName } from './encoding.js';

const MODES = ['one_hot', 'multi_hot', 'count'];

export class CategoryEncoding extends tf.layers.Layer {
  static className = 'CategoryEncoding';

  constructor(config) {
    super({ ...config, dtype: 'float32' });
    this.config = { ...config };
    this.mode = modeName(config.outputMode ?? 'multi_hot');
    if (!MODES.includes(this.mode)) {
      throw new Error(`CategoryEncoding ${this.name}: output_mode ${JSON.stringify(config.outputMode)} is not one of ${MODES.join(', ')}`);
    }
    if (config.sparse) throw new Error(`CategoryEncoding ${this.name}: sparse=True is not implemented`);
    this.numTokens = config.numTokens;
    if (!Number.isInteger(this.numTokens) || this.numTokens < 1) {
      throw new Error(`CategoryEncoding ${this.name}: num_tokens must be a positive integer, got ${JSON.stringify(this.numTokens)}`);
    }
  }

  call(inputs, kwargs = {}) {
    if (kwargs.countWeights != null) {
      throw new Error(`CategoryEncoding ${this.name}: count_weights is not implemented`);
    }
    return tf.tidy(() => {
      let ids = one(inputs);
      if (ids.dtype !== 'int32') ids = tf.cast(ids, 'int32');
      const label = `CategoryEncoding ${this.name}`;
      if (ids.rank === 1 && this.mode !== 'one_hot') { // one sample of n ids
        return encodeCategorical(ids.expandDims(0), this.mode, this.numTokens, 'float32', label).squeeze([0]);
      }
      return encodeCategorical(ids, this.mode, this.numTokens, 'float32', label);
    });
  }

  computeOutputShape(inputShape) {
    if (inputShape.length === 1 && this.mode !== 'one_hot') return [this.numTokens];
    return encodedShape(inputShape, this.mode, this.numTokens);
  }

  getConfig() {
    return { ...super.getConfig(), ...this.config, dtype: 'float32' };
  }
}
tf.serialization.registerClass(CategoryEncoding);
