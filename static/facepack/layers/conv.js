/**
 * DepthwiseConv2D with dilation_rate. TF.js 4.22's layer ignores it (tfjs-layers
 * convolutional_depthwise.ts: "TODO(cais): Add support for dilation"), so a dilated depthwise
 * conv ran undilated with a wrong output shape; the class name is re-registered with a call()
 * that passes the dilations to tf.depthwiseConv2d. Also carries the bridge's DepthwiseConv1D /
 * SeparableConv1D rewrites (facepack/export/bridge.py:_conv1d_via_2d).
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
