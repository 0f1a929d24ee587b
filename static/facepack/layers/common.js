/**
 * Helpers shared by the custom layers of this folder (not registered, not re-exported by index.js).
 */
import * as tf from '@tensorflow/tfjs';

/** The int32 range: TF.js computes integer tensors (ids) as int32, it has no int64. */
export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

/** The tensor a single-input layer runs on: `inputs`, or its first element when TF.js passes a list. */
export function one(inputs) {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

/** Throws unless `dataFormat` (camel-cased Keras data_format, or absent) is channels last. */
export function channelsLastOnly(layer, dataFormat) {
  if (dataFormat != null && dataFormat !== 'channelsLast') {
    throw new Error(`${layer}: only data_format channels_last is supported, got ${dataFormat}`);
  }
}

/**
 * A layer whose output shape is its input shape and whose config is the fields of `defaults`:
 * each field is `config[key] ?? defaults[key]` and getConfig writes them back in that order.
 */
export class SameShapeLayer extends tf.layers.Layer {
  /**
   * @param {object} config the layer's config (camel-cased Keras keys)
   * @param {object} defaults field name -> value when the config has none (null allowed)
   */
  constructor(config, defaults) {
    super(config);
    this.configFields = Object.keys(defaults);
    for (const key of this.configFields) this[key] = config[key] ?? defaults[key];
  }

  computeOutputShape(inputShape) {
    return inputShape;
  }

  getConfig() {
    const config = super.getConfig();
    for (const key of this.configFields) config[key] = this[key];
    return config;
  }
}

/**
 * Registers `subclass(Base)` under `className` for each [className, Base, ...args] row, where the
 * subclass's constructor is `(config) => new Base(config, ...args)`; returns them by class name.
 */
export function registerVariants(rows) {
  const classes = {};
  for (const [className, Base, ...args] of rows) {
    const cls = class extends Base {
      constructor(config) {
        super(config, ...args);
      }
    };
    Object.defineProperty(cls, 'name', { value: className });
    cls.className = className;
    tf.serialization.registerClass(cls);
    classes[className] = cls;
  }
  return classes;
}
