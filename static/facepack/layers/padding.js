/**
 * ZeroPadding1D, which TF.js 4.22 lacks (the bridge also uses it for causal Conv1D:
 * facepack/export/bridge.py:_causal_conv1d).
 */
import * as tf from '@tensorflow/tfjs';

/** mirrors keras/src/layers/reshaping/zero_padding1d.py: (B, T, C) -> (B, left + T + right, C). */
export class ZeroPadding1D extends tf.layers.Layer {
  static className = 'ZeroPadding1D';

  constructor(config) {
    super(config);
    const p = config.padding ?? 1;
    this.padding = Array.isArray(p) ? [p[0], p[1]] : [p, p];
  }

  computeOutputShape(inputShape) {
    const t = inputShape[1] == null ? null : inputShape[1] + this.padding[0] + this.padding[1];
    return [inputShape[0], t, inputShape[2]];
  }

  call(inputs) {
    return tf.tidy(() => tf.pad(Array.isArray(inputs) ? inputs[0] : inputs, [[0, 0], this.padding, [0, 0]]));
  }

  getConfig() {
    return { ...super.getConfig(), padding: this.padding };
  }
}
tf.serialization.registerClass(ZeroPadding1D);
