/**
 * GroupNormalization and UnitNormalization with Keras semantics (TF.js 4.22 has neither).
 * Config keys arrive camel-cased from the tf_keras config (groups, axis, epsilon, center, scale);
 * weights are `<layer>/gamma`, `<layer>/beta` as tf_keras writes them.
 */
import * as tf from '@tensorflow/tfjs';
import { SameShapeLayer, one } from './common.js';

function lastAxis(axis, rank, layer) {
  const a = Array.isArray(axis) ? axis : [axis];
  if (a.length !== 1 || (a[0] !== -1 && a[0] !== rank - 1)) {
    throw new Error(`${layer}: only the last axis is supported (channels last), got axis=${JSON.stringify(axis)}`);
  }
  return rank - 1;
}

/** mirrors keras/src/layers/normalization/group_normalization.py (channels last). */
export class GroupNormalization extends SameShapeLayer {
  static className = 'GroupNormalization';

  constructor(config) {
    super(config, { groups: 32, axis: -1, epsilon: 1e-3, center: true, scale: true });
  }

  build(inputShape) {
    const channels = inputShape[lastAxis(this.axis, inputShape.length, this.name)];
    if (channels % this.groups !== 0) {
      throw new Error(`${this.name}: ${channels} channels are not divisible into ${this.groups} groups`);
    }
    if (this.scale) this.gamma = this.addWeight('gamma', [channels], 'float32', tf.initializers.ones());
    if (this.center) this.beta = this.addWeight('beta', [channels], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      const shape = x.shape;
      const channels = shape[shape.length - 1];
      const grouped = x.reshape([...shape.slice(0, -1), this.groups, channels / this.groups]);
      // reduce over every axis but batch and group: the spatial axes and the channels of a group
      const axes = [...Array(grouped.rank).keys()].filter((a) => a !== 0 && a !== grouped.rank - 2);
      const { mean, variance } = tf.moments(grouped, axes, true);
      const normed = grouped.sub(mean).mul(tf.rsqrt(variance.add(this.epsilon))).reshape(shape);
      let y = normed;
      if (this.scale) y = y.mul(this.gamma.read());
      if (this.center) y = y.add(this.beta.read());
      return y;
    });
  }
}
tf.serialization.registerClass(GroupNormalization);

/** mirrors keras/src/layers/normalization/unit_normalization.py: x / sqrt(max(sum(x^2), 1e-12)). */
export class UnitNormalization extends SameShapeLayer {
  static className = 'UnitNormalization';

  constructor(config) {
    super(config, { axis: -1 });
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      const squareSum = tf.sum(tf.square(x), this.axis, true);
      return x.mul(tf.rsqrt(tf.maximum(squareSum, 1e-12)));
    });
  }
}
tf.serialization.registerClass(UnitNormalization);
