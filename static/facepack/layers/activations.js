/**
 * Activations and activation layers whose Keras options TF.js 4.22 drops or refuses:
 * ReLU(max_value, negative_slope, threshold) (TF.js honours max_value only), ELU(alpha)
 * (TF.js throws unless alpha = 1), and the activation names 'leaky_relu' and 'exponential'
 * (tf_keras writes them; TF.js has no such activation), and Softmax over any axis or several axes
 * (TF.js: the last axis only). The three layer names are re-registered.
 */
import * as tf from '@tensorflow/tfjs';
import { SameShapeLayer, one } from './common.js';

/** mirrors keras/src/activations/activations.py:relu (and ReLU layer). */
export function kerasRelu(x, negativeSlope = 0, maxValue = null, threshold = 0) {
  return tf.tidy(() => {
    let y = threshold !== 0 ? x.mul(tf.greater(x, threshold).cast(x.dtype)) : tf.relu(x);
    if (maxValue != null) y = tf.minimum(y, maxValue);
    if (negativeSlope !== 0) y = y.sub(tf.relu(tf.neg(x).add(threshold)).mul(negativeSlope));
    return y;
  });
}

export class ReLU extends SameShapeLayer {
  static className = 'ReLU';

  constructor(config) {
    super(config, { maxValue: null, negativeSlope: 0, threshold: 0 });
    this.supportsMasking = true;
  }

  call(inputs) {
    return kerasRelu(one(inputs), this.negativeSlope, this.maxValue, this.threshold);
  }
}
tf.serialization.registerClass(ReLU);

/** mirrors keras/src/layers/activations/elu.py: x if x > 0 else alpha * (exp(x) - 1). */
export class ELU extends SameShapeLayer {
  static className = 'ELU';

  constructor(config) {
    super(config, { alpha: 1 });
    this.supportsMasking = true;
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      return tf.where(tf.greater(x, 0), x, tf.elu(x).mul(this.alpha));
    });
  }
}
tf.serialization.registerClass(ELU);

/** An activation given by name in a layer config (`className`): y = fn(x), no config. */
function nameActivation(className, fn) {
  const cls = class extends tf.serialization.Serializable {
    static className = className;

    apply(x) {
      return fn(x);
    }

    getConfig() {
      return {};
    }
  };
  tf.serialization.registerClass(cls);
  return cls;
}

/** 'leaky_relu' as an activation name: Keras 3 and tf.nn default slope 0.2. */
export const LeakyReluActivation = nameActivation('leakyRelu', (x) => tf.leakyRelu(x, 0.2));

/** 'exponential' as an activation name. */
export const ExponentialActivation = nameActivation('exponential', (x) => tf.exp(x));

/** mirrors keras/src/layers/activations/softmax.py (without masks): any axis, or several. */
export class Softmax extends SameShapeLayer {
  static className = 'Softmax';

  constructor(config) {
    super(config, { axis: -1 });
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      const axes = [].concat(this.axis).map((a) => (a < 0 ? a + x.rank : a));
      if (axes.length > 1) return tf.exp(x.sub(tf.logSumExp(x, axes, true)));
      if (axes[0] === x.rank - 1) return tf.softmax(x);
      const perm = [...Array(x.rank).keys()];
      [perm[axes[0]], perm[x.rank - 1]] = [perm[x.rank - 1], perm[axes[0]]];
      return tf.softmax(x.transpose(perm)).transpose(perm);
    });
  }
}
tf.serialization.registerClass(Softmax);
