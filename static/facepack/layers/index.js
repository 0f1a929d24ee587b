/**
 * TF.js layers, activations and graph ops that TF.js 4.22 lacks or computes differently from
 * Keras, registered on import (tf.serialization.registerClass / tf.registerOp) so that
 * tf.loadLayersModel and tf.loadGraphModel find them. static/facepack/io.js imports this module,
 * so the page, Node and the npm package all have them. The exporter
 * (facepack/export/bridge.py) writes these class names as tf_keras does; each one has a parity
 * test against Keras on the cpu and wasm backends (tests/test_js_layers.py) and on WebGL.
 *
 * Registered class names (layers model):
 *
 *   GroupNormalization   new                         normalization.js
 *   UnitNormalization    new                         normalization.js
 *   Attention            new (dot/concat, causal)    attention.js
 *   MultiHeadAttention   new (rank 3, causal, masks) attention.js
 *   GRU                  replaces TF.js' (reset_after=True; False runs TF.js' GRUCell)  recurrent.js
 *   GRUCellResetAfter    new (the cell of the above)  recurrent.js
 *   LSTM, SimpleRNN      replace TF.js' (zero_output_for_mask)  recurrent.js
 *   Bidirectional        replaces TF.js' (zero_output_for_mask = return_sequences, as Keras)  recurrent.js
 *   Resizing             replaces TF.js' (keeps the batch axis; half-pixel centres; crop_to_aspect_ratio)  resizing.js
 *   UpSampling2D         replaces TF.js' (bilinear with half-pixel centres)  resizing.js
 *   CenterCrop           replaces TF.js' (batched input; smart_resize when smaller)  resizing.js
 *   DepthwiseConv2D      replaces TF.js' (dilation_rate was ignored)  conv.js
 *   Conv3DTranspose      replaces TF.js' (WASM kernel wrong; computed as conv3d)  conv.js
 *   Conv1D, Conv2D       replace TF.js' (groups > 1)  conv.js
 *   EinsumDense          new (one matMul; no "..." equations)  einsum_dense.js
 *   Add, Multiply, Average, Maximum, Minimum   replace TF.js' (Keras' output mask)  merge.js
 *   Subtract             new  merge.js
 *   Reshape, GlobalAveragePooling1D   replace TF.js' (Keras masks: dropped / masked mean)  reshaping.js
 *   ReLU                 replaces TF.js' (negative_slope, threshold)  activations.js
 *   ELU                  replaces TF.js' (alpha != 1)  activations.js
 *   Softmax              replaces TF.js' (any axis, several axes)  activations.js
 *   ZeroPadding1D        new (also the causal Conv1D rewrite)  reshaping.js
 *   Cropping1D, UpSampling1D, ZeroPadding3D, Cropping3D, UpSampling3D,
 *   GlobalAveragePooling3D, GlobalMaxPooling3D   new (weight-free)  reshaping.js
 *   Functional           replaces TF.js' (call arguments of Attention / MultiHeadAttention)  functional.js
 *   CategoryEncoding     replaces TF.js' (an id >= num_tokens gives zeros as in Keras; TF.js threw)  category_encoding.js
 *   IntegerLookup        new (vocabulary in the config; OOV by floormod or farmhash (hashing.js); int / one_hot / multi_hot / count, invert)  lookup.js
 *   Hashing              new (int ids: FarmHash64 / SipHash-2-4 with salt of the decimal string; mask_value; int / one_hot / multi_hot / count)  hashing.js
 *   activations 'leaky_relu' (slope 0.2) and 'exponential'  activations.js
 *
 * Graph-model ops: Erfc (exact GELU); Cumsum, Cumprod (replace the converter's: a negative axis made non-negative)  ops.js
 */
export { Attention, MultiHeadAttention } from './attention.js';
export { ELU, ReLU, Softmax, kerasRelu } from './activations.js';
export { Conv1D, Conv2D, Conv3DTranspose, DepthwiseConv2D } from './conv.js';
export { CategoryEncoding } from './category_encoding.js';
export { EinsumDense } from './einsum_dense.js';
export { Functional, callInputs, hoistCallArgs } from './functional.js';
export { Hashing, fingerprint64, hashBin, sipHash24 } from './hashing.js';
export { IntegerLookup } from './lookup.js';
export { Add, Average, Maximum, Minimum, Multiply, Subtract, mergeMask } from './merge.js';
export { GroupNormalization, UnitNormalization } from './normalization.js';
export { REGISTERED_OPS, erfc } from './ops.js';
export {
  Cropping1D, Cropping3D, GlobalAveragePooling1D, GlobalAveragePooling3D, GlobalMaxPooling3D, Reshape, UpSampling1D,
  UpSampling3D, ZeroPadding1D, ZeroPadding3D,
} from './reshaping.js';
export { Bidirectional, GRU, GRUCellResetAfter, LSTM, SimpleRNN } from './recurrent.js';
export { CenterCrop, Resizing, UpSampling2D, aspectCrop, kerasResize } from './resizing.js';

/** Class names registered by this module (see the table above). */
export const REGISTERED_LAYERS = [
  'GroupNormalization', 'UnitNormalization', 'Attention', 'MultiHeadAttention', 'GRU', 'GRUCellResetAfter',
  'LSTM', 'SimpleRNN', 'Bidirectional',
  'Resizing', 'UpSampling2D', 'CenterCrop', 'DepthwiseConv2D', 'Conv3DTranspose', 'Conv1D', 'Conv2D', 'EinsumDense', 'ReLU', 'ELU', 'Softmax', 'ZeroPadding1D',
  'Cropping1D', 'UpSampling1D', 'ZeroPadding3D', 'Cropping3D', 'UpSampling3D', 'GlobalAveragePooling3D',
  'GlobalMaxPooling3D', 'Add', 'Multiply', 'Average', 'Maximum', 'Minimum', 'Subtract', 'Reshape', 'GlobalAveragePooling1D',
  'Functional', 'IntegerLookup', 'Hashing', 'CategoryEncoding',
];
