/**
 * Convolutions TF.js 4.22 gets wrong; their class names are re-registered:
 *
 * - DepthwiseConv2D ignored dilation_rate (tfjs-layers convolutional_depthwise.ts: "TODO(cais):
 *   Add support for dilation"): a dilated depthwise conv ran undilated with a wrong output shape.
 *   call() passes the dilations to tf.depthwiseConv2d. Also carries the bridge's DepthwiseConv1D /
 *   SeparableConv1D rewrites (facepack/export/bridge.py:_conv1d_via_2d).
 * - Conv3DTranspose: the WASM backend's Conv3DBackpropInputV2 kernel returns wrong values (zeros
 *   for stride 2). call() computes the transposed conv as a plain conv3d of the zero-dilated,
 *   padded input with the flipped kernel, on every backend.
 * - Conv1D and Conv2D with groups > 1 (TF.js has no grouped convolution: the kernel shape did not
 *   even load): one convolution per channel group, concatenated; groups = 1 runs TF.js' own call.
 */
import * as tf from '@tensorflow/tfjs';

const BuiltinDepthwiseConv2D = tf.layers.depthwiseConv2d({ kernelSize: 1 }).constructor;

/** Keras' conv output length (keras/src/ops/operation_utils.py) for one spatial axis. */
function outputLength(length, kernel, padding, stride, dilation) {
  if (length == null) return null;
  const effective = kernel + (kernel - 1) * (dilation - 1);
  const size = padding === 'same' ? length : length - effective + 1;
  return Math.floor((size + stride - 1) / stride);
}

export class DepthwiseConv2D extends BuiltinDepthwiseConv2D {
  static className = 'DepthwiseConv2D';

  constructor(args) {
    super(args);
    if (this.dataFormat !== 'channelsLast') throw new Error(`${this.name}: only data_format channels_last is supported`);
  }

  dilations() {
    const d = this.dilationRate == null ? 1 : this.dilationRate;
    return typeof d === 'number' ? [d, d] : [d[0], d[1] ?? d[0]];
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      let y = tf.depthwiseConv2d(x, this.depthwiseKernel.read(), this.strides, this.padding, 'NHWC', this.dilations());
      if (this.useBias) y = y.add(this.bias.read());
      return this.activation != null ? this.activation.apply(y) : y;
    });
  }

  computeOutputShape(inputShape) {
    const s = Array.isArray(inputShape[0]) ? inputShape[0] : inputShape;
    const [dh, dw] = this.dilations();
    return [s[0], outputLength(s[1], this.kernelSize[0], this.padding, this.strides[0], dh),
      outputLength(s[2], this.kernelSize[1], this.padding, this.strides[1], dw), s[3] * this.depthMultiplier];
  }
}
tf.serialization.registerClass(DepthwiseConv2D);

const BuiltinConv3DTranspose = tf.layers.conv3dTranspose({ filters: 1, kernelSize: 1 }).constructor;

/** `x` with zeros inserted between elements (stride - 1 each) and `before`/`after` zeros, per spatial axis,
 * working on rank-3 views (TF.js WebGL cannot compile rank-5 pad shaders). */
function dilateAndPad(x, strides, before, after) {
  let y = x;
  strides.forEach((s, k) => {
    const axis = k + 1;
    const shape = y.shape;
    const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const n = shape[axis];
    let v = y.reshape([outer * n, 1, inner]);
    if (s > 1) v = tf.pad(v, [[0, 0], [0, s - 1], [0, 0]]).reshape([outer, n * s, inner]).slice([0, 0, 0], [-1, (n - 1) * s + 1, -1]);
    else v = v.reshape([outer, n, inner]);
    v = tf.pad(v, [[0, 0], [before[k], after[k]], [0, 0]]);
    y = v.reshape([...shape.slice(0, axis), v.shape[1], ...shape.slice(axis + 1)]);
  });
  return y;
}

/** mirrors keras/src/layers/convolutional/conv3d_transpose.py (channels last, dilation 1, no output_padding). */
export class Conv3DTranspose extends BuiltinConv3DTranspose {
  static className = 'Conv3DTranspose';

  constructor(args) {
    super(args);
    if (this.dataFormat !== 'channelsLast') throw new Error(`${this.name}: only data_format channels_last is supported`);
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const kernel = this.kernel.read(); // (kd, kh, kw, filters, in)
      const k = kernel.shape.slice(0, 3);
      const s = this.strides;
      // full transposed output: (d - 1) * s + k, by a valid conv3d over the dilated input padded by k - 1
      const full = dilateAndPad(x, s, k.map((v) => v - 1), k.map((v) => v - 1));
      // flipping all three spatial axes = reversing their flattened index (WebGL has no rank-5 reverse)
      const [kd, kh, kw, filters, channels] = kernel.shape;
      const flipped = tf.reverse(kernel.reshape([kd * kh * kw, filters, channels]), 0)
        .reshape(kernel.shape).transpose([0, 1, 2, 4, 3]);
      let y = tf.conv3d(full, flipped, 1, 'valid');
      // Keras' output length (deconv_output_length): valid d * s + max(k - s, 0), same d * s (cropped
      // max(k - s, 0) / 2 from the start); zeros at the end where the full output is shorter (k < s)
      const extra = k.map((kv, i) => Math.max(kv - s[i], 0));
      const size = x.shape.slice(1, 4).map((d, i) => d * s[i] + (this.padding === 'same' ? 0 : extra[i]));
      const start = this.padding === 'same' ? extra.map((e) => Math.floor(e / 2)) : [0, 0, 0];
      const short = size.map((o, i) => Math.max(0, start[i] + o - y.shape[i + 1]));
      if (short.some((v) => v > 0)) y = dilateAndPad(y, [1, 1, 1], [0, 0, 0], short);
      y = y.slice([0, ...start, 0], [-1, ...size, -1]);
      if (this.useBias) y = y.add(this.bias.read());
      return this.activation != null ? this.activation.apply(y) : y;
    });
  }
}
tf.serialization.registerClass(Conv3DTranspose);

/** TF.js' Conv1D / Conv2D class extended with Keras' `groups` (keras/src/layers/convolutional/base_conv.py). */
function groupedConv(Builtin, className, rank) {
  const Grouped = class extends Builtin {
    constructor(args) {
      super(args);
      this.groups = args.groups ?? 1;
      if (this.groups > 1 && this.dataFormat !== 'channelsLast') {
        throw new Error(`${this.name}: grouped convolution needs data_format channels_last`);
      }
    }

    build(inputShape) {
      if (this.groups === 1) {
        super.build(inputShape);
        return;
      }
      const s = Array.isArray(inputShape[0]) ? inputShape[0] : inputShape;
      const inputDim = s[s.length - 1];
      if (inputDim % this.groups !== 0 || this.filters % this.groups !== 0) {
        throw new Error(`${this.name}: ${inputDim} channels / ${this.filters} filters are not divisible into ${this.groups} groups`);
      }
      this.kernel = this.addWeight('kernel', [...this.kernelSize, inputDim / this.groups, this.filters], null,
        this.kernelInitializer, this.kernelRegularizer, true, this.kernelConstraint);
      this.bias = this.useBias ? this.addWeight('bias', [this.filters], null, this.biasInitializer, this.biasRegularizer,
        true, this.biasConstraint) : null;
      this.built = true;
    }

    call(inputs, kwargs) {
      if (this.groups === 1) return super.call(inputs, kwargs);
      return tf.tidy(() => {
        const x = Array.isArray(inputs) ? inputs[0] : inputs;
        const channels = x.shape[x.rank - 1];
        if (rank === 2 && this.groups === channels) { // one input channel per group: a depthwise conv
          const [kh, kw] = this.kernelSize;
          const kernel = this.kernel.read().reshape([kh, kw, channels, this.filters / channels]);
          const dil = [].concat(this.dilationRate);
          let y = tf.depthwiseConv2d(x, kernel, this.strides, this.padding, 'NHWC', dil.length === 1 ? [dil[0], dil[0]] : dil);
          if (this.bias) y = y.add(this.bias.read());
          return this.activation != null ? this.activation.apply(y) : y;
        }
        const xs = tf.split(x, this.groups, -1);
        const ks = tf.split(this.kernel.read(), this.groups, -1);
        const dil = [].concat(this.dilationRate);
        const parts = xs.map((xi, g) => (rank === 1
          ? tf.conv1d(xi, ks[g], this.strides[0], this.padding, 'NWC', dil[0])
          : tf.conv2d(xi, ks[g], this.strides, this.padding, 'NHWC', dil.length === 1 ? [dil[0], dil[0]] : dil)));
        let y = tf.concat(parts, -1);
        if (this.bias) y = y.add(this.bias.read());
        return this.activation != null ? this.activation.apply(y) : y;
      });
    }

    getConfig() {
      return { ...super.getConfig(), groups: this.groups };
    }
  };
  Object.defineProperty(Grouped, 'className', { value: className });
  Object.defineProperty(Grouped, 'name', { value: className });
  tf.serialization.registerClass(Grouped);
  return Grouped;
}

export const Conv1D = groupedConv(tf.layers.conv1d({ filters: 1, kernelSize: 1 }).constructor, 'Conv1D', 1);
export const Conv2D = groupedConv(tf.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor, 'Conv2D', 2);
