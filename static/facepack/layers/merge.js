/**
 * Merge layers: Keras' output mask, and Subtract.
 *
 * TF.js 4.22's Merge.computeMask returns the FIRST mask with a leading axis added (and skips the
 * last input), so a masked sequence through Add/Multiply/... reached the next layer as a
 * (1, B, T) mask and broke it (e.g. LSTM after a residual Add). Add, Multiply, Average, Maximum
 * and Minimum are re-registered with tf_keras' rule, the AND of the inputs' masks (tf_keras
 * merging/base_merge.py:compute_mask; Keras 3 ORs them and zeroes masked values, so the exporter
 * refuses Keras 3 merges of masked inputs: bridge.py:_check_no_masks). TF.js has no Subtract
 * layer (the bridge writes one for `x - y`): added here.
 */
import * as tf from '@tensorflow/tfjs';

/** mirrors tf_keras' Merge.compute_mask: AND of the masks present. */
export function mergeMask(mask) {
  if (mask == null) return null;
  const masks = [].concat(mask).filter((m) => m != null);
  if (!masks.length) return null;
  return tf.tidy(() => tf.all(tf.stack(masks.map((m) => m.cast('bool'))), 0));
}

function withKerasMask(Builtin, className) {
  const Merged = class extends Builtin {
    computeMask(inputs, mask) {
      return mergeMask(mask);
    }
  };
  Object.defineProperty(Merged, 'className', { value: className });
  Object.defineProperty(Merged, 'name', { value: className });
  tf.serialization.registerClass(Merged);
  return Merged;
}

export const Add = withKerasMask(tf.layers.add({}).constructor, 'Add');
export const Multiply = withKerasMask(tf.layers.multiply({}).constructor, 'Multiply');
export const Average = withKerasMask(tf.layers.average({}).constructor, 'Average');
export const Maximum = withKerasMask(tf.layers.maximum({}).constructor, 'Maximum');
export const Minimum = withKerasMask(tf.layers.minimum({}).constructor, 'Minimum');

/** mirrors keras/src/layers/merging/subtract.py: inputs[0] - inputs[1]. */
export class Subtract extends tf.layers.Layer {
  static className = 'Subtract';

  constructor(config) {
    super(config);
    this.supportsMasking = true;
  }

  computeOutputShape(inputShape) {
    const [a, b] = inputShape;
    const rank = Math.max(a.length, b.length);
    const pad = (s) => [...Array(rank - s.length).fill(1), ...s];
    return pad(a).map((d, i) => (d === 1 ? pad(b)[i] : d));
  }

  computeMask(inputs, mask) {
    return mergeMask(mask);
  }

  call(inputs) {
    if (!Array.isArray(inputs) || inputs.length !== 2) throw new Error(`${this.name}: Subtract needs exactly 2 inputs`);
    return tf.tidy(() => tf.sub(inputs[0], inputs[1]));
  }
}
tf.serialization.registerClass(Subtract);
