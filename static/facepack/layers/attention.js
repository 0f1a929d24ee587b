/**
 * Attention (Luong dot / Bahdanau concat scores) and MultiHeadAttention with Keras semantics
 * (TF.js 4.22 has neither). Call arguments (use_causal_mask, the value/key tensors of
 * MultiHeadAttention) reach these layers as config.callArgs, put there by functional.js.
 * Inference only: dropout is not applied.
 */
import * as tf from '@tensorflow/tfjs';

import { callInputs } from './functional.js';

// mirrors keras/src/layers/attention/attention.py:_apply_scores (1e9 for float32 scores)
const MASK_PENALTY = 1e9;

/** (1, T, S) lower-triangular causal mask as 0/1 floats: key j visible from query i when i >= j. */
function causalMask(queryLength, keyLength) {
  return tf.tidy(() => {
    const rows = tf.range(0, queryLength, 1, 'int32').reshape([queryLength, 1]);
    const cols = tf.range(0, keyLength, 1, 'int32').reshape([1, keyLength]);
    return tf.greaterEqual(rows, cols).cast('float32').expandDims(0);
  });
}

/** Attention's masked softmax (attention.py:_apply_scores): masked scores lowered by 1e9. */
function softmaxWithMask(scores, mask) {
  return mask == null ? tf.softmax(scores) : tf.softmax(scores.sub(tf.scalar(1).sub(mask).mul(MASK_PENALTY)));
}

/**
 * MultiHeadAttention's masked softmax: masked scores set to -1e9 (a fully masked row gives a
 * uniform row), as Keras 3's dot_product_attention path does
 * (keras/src/backend/tensorflow/nn.py:_apply_masks); with dropout > 0 Keras takes its Softmax-layer
 * path instead (keras/src/layers/activations/softmax.py), which also zeroes the masked weights.
 */
function softmaxWhereMask(scores, mask, zeroMasked) {
  if (mask == null) return tf.softmax(scores);
  const keep = tf.greater(mask, 0.5);
  const weights = tf.softmax(tf.where(keep, scores, tf.fill(scores.shape, -MASK_PENALTY)));
  return zeroMasked ? tf.where(keep, weights, 0) : weights;
}

/**
 * The Keras masks of [query, value, key] at predict time. TF.js passes only the first input's
 * mask (tfjs-layers executor.ts: kwargs.mask = inputMasks[0]); the exporter allows masked
 * inputs only when every input is the same tensor (self-attention), where that mask is all of them.
 */
function inputMasks(mask, sameInputs) {
  if (Array.isArray(mask)) return mask;
  if (mask == null) return [];
  return sameInputs ? [mask, mask, mask] : [mask];
}

const ATTENTION_INPUTS = ['query', 'value', 'key'];

/** mirrors keras/src/layers/attention/attention.py (inputs [query, value] or [query, value, key]). */
export class Attention extends tf.layers.Layer {
  static className = 'Attention';

  constructor(config) {
    super(config);
    this.useScale = config.useScale ?? false;
    this.scoreMode = config.scoreMode ?? 'dot';
    if (!['dot', 'concat'].includes(this.scoreMode)) {
      throw new Error(`${this.name}: score_mode must be "dot" or "concat", got ${JSON.stringify(this.scoreMode)}`);
    }
    this.callArgs = config.callArgs ?? {};
    this.supportsMasking = true;
  }

  build() {
    if (this.useScale) this.scaleWeight = this.addWeight('scale', [], 'float32', tf.initializers.ones());
    if (this.scoreMode === 'concat') {
      this.concatScoreWeight = this.addWeight('concat_score_weight', [], 'float32', tf.initializers.ones());
    }
    this.built = true;
  }

  computeOutputShape(inputShape) {
    const { query: q, value: v } = callInputs(inputShape, this.callArgs, ATTENTION_INPUTS);
    return [...q.slice(0, -1), v[v.length - 1]];
  }

  computeMask(inputs, mask) {
    return (Array.isArray(mask) ? mask[0] : mask) ?? null;
  }

  call(inputs, kwargs) {
    return tf.tidy(() => {
      const { query, value, key = value } = callInputs(inputs, this.callArgs, ATTENTION_INPUTS);
      const masks = inputMasks(kwargs?.mask, this.callArgs.sameInputs);
      let scores;
      if (this.scoreMode === 'dot') {
        scores = tf.matMul(query, key, false, true);
        if (this.useScale) scores = scores.mul(this.scaleWeight.read());
      } else {
        let sum = query.expandDims(-2).add(key.expandDims(-3));
        if (this.useScale) sum = sum.mul(this.scaleWeight.read());
        scores = tf.tanh(sum).sum(-1).mul(this.concatScoreWeight.read());
      }
      let mask = masks[1] != null ? masks[1].cast('float32').expandDims(-2) : null;
      if (this.callArgs.useCausalMask) {
        const causal = causalMask(scores.shape[1], scores.shape[2]);
        mask = mask == null ? causal : mask.mul(causal);
      }
      let result = tf.matMul(softmaxWithMask(scores, mask), value);
      if (masks[0] != null) result = result.mul(masks[0].cast('float32').expandDims(-1));
      return result;
    });
  }

  getConfig() {
    return { ...super.getConfig(), useScale: this.useScale, scoreMode: this.scoreMode, callArgs: this.callArgs };
  }
}
tf.serialization.registerClass(Attention);

/**
 * mirrors keras/src/layers/attention/multi_head_attention.py for rank-3 inputs
 * (batch, length, features) and the default attention_axes. Weights as tf_keras writes them:
 * <layer>/{query,key,value}/kernel (D, heads, dim) and /bias (heads, dim),
 * <layer>/attention_output/kernel (heads, value_dim, out) and /bias (out).
 */
export class MultiHeadAttention extends tf.layers.Layer {
  static className = 'MultiHeadAttention';

  constructor(config) {
    super(config);
    this.numHeads = config.numHeads;
    this.keyDim = config.keyDim;
    this.valueDim = config.valueDim ?? config.keyDim;
    this.useBias = config.useBias ?? true;
    this.dropout = config.dropout ?? 0;
    this.outputShape_ = config.outputShape ?? null;
    this.attentionAxes = config.attentionAxes ?? null;
    this.callArgs = config.callArgs ?? {};
    const axes = this.attentionAxes == null ? null : [].concat(this.attentionAxes);
    if (axes != null && !(axes.length === 1 && (axes[0] === 1 || axes[0] === -2))) {
      throw new Error(`${this.name}: attention_axes ${JSON.stringify(this.attentionAxes)} is not supported (only the sequence axis of rank-3 inputs)`);
    }
    this.supportsMasking = true;
    const known = new Set(['names', 'index', 'sameInputs', 'useCausalMask']);
    for (const k of Object.keys(this.callArgs)) {
      if (!known.has(k)) throw new Error(`${this.name}: call argument ${k} is not supported`);
    }
  }

  outputDim(queryShape) {
    if (this.outputShape_ == null) return queryShape[queryShape.length - 1];
    const out = [].concat(this.outputShape_);
    if (out.length !== 1) throw new Error(`${this.name}: output_shape ${JSON.stringify(this.outputShape_)} must be one number`);
    return out[0];
  }

  /** {query, value, key, attentionMask?} (tensors or shapes): key defaults to value, value to query. */
  split(inputs) {
    const named = callInputs(inputs, this.callArgs, ['query', 'value', 'key']);
    named.value = named.value ?? named.query;
    named.key = named.key ?? named.value;
    return named;
  }

  build(inputShape) {
    const { query, value, key } = this.split(inputShape);
    const dense = (name, inDim, dim) => {
      const kernel = this.addWeight(`${name}/kernel`, [inDim, this.numHeads, dim], 'float32', tf.initializers.glorotUniform({}));
      const bias = this.useBias ? this.addWeight(`${name}/bias`, [this.numHeads, dim], 'float32', tf.initializers.zeros()) : null;
      return { kernel, bias };
    };
    this.queryDense = dense('query', query[query.length - 1], this.keyDim);
    this.keyDense = dense('key', key[key.length - 1], this.keyDim);
    this.valueDense = dense('value', value[value.length - 1], this.valueDim);
    const out = this.outputDim(query);
    this.outputKernel = this.addWeight('attention_output/kernel', [this.numHeads, this.valueDim, out], 'float32',
      tf.initializers.glorotUniform({}));
    this.outputBias = this.useBias ? this.addWeight('attention_output/bias', [out], 'float32', tf.initializers.zeros()) : null;
    this.built = true;
  }

  computeOutputShape(inputShape) {
    const { query } = this.split(inputShape);
    return [...query.slice(0, -1), this.outputDim(query)];
  }

  /** (B, L, D) -> (B, heads, L, dim): the EinsumDense "abc,cde->abde", then heads first. */
  project(x, { kernel, bias }, dim) {
    const [b, l, d] = x.shape;
    let y = tf.matMul(x.reshape([b * l, d]), kernel.read().reshape([d, this.numHeads * dim]));
    if (bias) y = y.add(bias.read().reshape([this.numHeads * dim]));
    return y.reshape([b, l, this.numHeads, dim]).transpose([0, 2, 1, 3]);
  }

  computeMask(inputs, mask) {
    return (Array.isArray(mask) ? mask[0] : mask) ?? null;
  }

  call(inputs, kwargs) {
    return tf.tidy(() => {
      const { query, value, key, attentionMask } = this.split(inputs);
      // mirrors multi_head_attention.py:_compute_attention_mask: query [B, T, 1] & value, key [B, 1, S]
      const [queryMask, valueMask, keyMask] = inputMasks(kwargs?.mask, this.callArgs.sameInputs);
      const q = this.project(query, this.queryDense, this.keyDim).mul(1 / Math.sqrt(this.keyDim));
      const k = this.project(key, this.keyDense, this.keyDim);
      const v = this.project(value, this.valueDense, this.valueDim);
      const scores = tf.matMul(q, k, false, true); // (B, heads, T, S)
      const parts = [];
      if (queryMask != null) parts.push(queryMask.cast('float32').expandDims(-1));
      if (valueMask != null) parts.push(valueMask.cast('float32').expandDims(-2));
      if (keyMask != null && key !== value) parts.push(keyMask.cast('float32').expandDims(-2));
      if (this.callArgs.useCausalMask) parts.push(causalMask(scores.shape[2], scores.shape[3]));
      if (attentionMask != null) parts.push(attentionMask.cast('float32'));
      const mask = parts.length ? parts.reduce((a, b) => a.mul(b)).expandDims(1) : null; // heads axis
      const context = tf.matMul(softmaxWhereMask(scores, mask, this.dropout > 0), v); // (B, heads, T, value_dim)
      const [b, , t] = context.shape;
      const flat = context.transpose([0, 2, 1, 3]).reshape([b * t, this.numHeads * this.valueDim]);
      const out = this.outputKernel.read().shape[2];
      let y = tf.matMul(flat, this.outputKernel.read().reshape([this.numHeads * this.valueDim, out]));
      if (this.outputBias) y = y.add(this.outputBias.read());
      return y.reshape([b, t, out]);
    });
  }

  getConfig() {
    return { ...super.getConfig(), numHeads: this.numHeads, keyDim: this.keyDim, valueDim: this.valueDim,
      useBias: this.useBias, dropout: this.dropout, outputShape: this.outputShape_, attentionAxes: this.attentionAxes, callArgs: this.callArgs };
  }
}
tf.serialization.registerClass(MultiHeadAttention);
