/**
 * Weight-free reshaping and pooling layers that TF.js 4.22 lacks, channels last only:
 * ZeroPadding1D (also used by the bridge for causal Conv1D: facepack/export/bridge.py:_causal_conv1d),
 * Cropping1D, UpSampling1D, ZeroPadding3D, Cropping3D, UpSampling3D, GlobalAveragePooling3D,
 * GlobalMaxPooling3D. Each mirrors the Keras layer of the same name (keras/src/layers/reshaping/,
 * keras/src/layers/pooling/). Re-registered with Keras' mask handling: Reshape (drops the mask),
 * GlobalAveragePooling1D (mean over the unmasked steps).
 */
import * as tf from '@tensorflow/tfjs';
import { channelsLastOnly, one, registerVariants } from './common.js';

/** Keras' padding/cropping argument for `dims` spatial axes -> [[before, after], ...]. */
export function pairs(value, dims, fallback) {
  const v = value ?? fallback;
  if (typeof v === 'number') return Array.from({ length: dims }, () => [v, v]);
  if (dims === 1) return [Array.isArray(v) ? [v[0], v[1]] : [v, v]];
  return v.map((p) => (Array.isArray(p) ? [p[0], p[1]] : [p, p]));
}

class SpatialLayer extends tf.layers.Layer {
  /** @param {number} dims spatial axes (after batch, before channels) */
  constructor(config, dims) {
    super(config);
    this.dims = dims;
    channelsLastOnly(this.name, config.dataFormat);
  }
}

class Padding extends SpatialLayer {
  constructor(config, dims) {
    super(config, dims);
    this.padding = pairs(config.padding, dims, 1);
  }

  computeOutputShape(s) {
    return s.map((d, i) => (i === 0 || i > this.dims || d == null ? d : d + this.padding[i - 1][0] + this.padding[i - 1][1]));
  }

  /** One spatial axis at a time on a rank-3 view (TF.js WebGL cannot compile a rank-5 pad shader). */
  call(inputs) {
    return tf.tidy(() => {
      let x = one(inputs);
      this.padding.forEach(([before, after], k) => {
        const shape = x.shape;
        const axis = k + 1;
        const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
        const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
        const padded = tf.pad(x.reshape([outer, shape[axis], inner]), [[0, 0], [before, after], [0, 0]]);
        x = padded.reshape([...shape.slice(0, axis), shape[axis] + before + after, ...shape.slice(axis + 1)]);
      });
      return x;
    });
  }

  getConfig() {
    return { ...super.getConfig(), padding: this.padding };
  }
}

class Cropping extends SpatialLayer {
  constructor(config, dims) {
    super(config, dims);
    this.cropping = pairs(config.cropping, dims, 1);
  }

  computeOutputShape(s) {
    return s.map((d, i) => (i === 0 || i > this.dims || d == null ? d : d - this.cropping[i - 1][0] - this.cropping[i - 1][1]));
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      const begin = [0, ...this.cropping.map((c) => c[0]), 0];
      const size = x.shape.map((d, i) => (i === 0 || i > this.dims ? -1 : d - this.cropping[i - 1][0] - this.cropping[i - 1][1]));
      return x.slice(begin, size);
    });
  }

  getConfig() {
    return { ...super.getConfig(), cropping: this.cropping };
  }
}

class UpSampling extends SpatialLayer {
  constructor(config, dims) {
    super(config, dims);
    const size = config.size ?? 2;
    this.size = typeof size === 'number' ? Array(dims).fill(size) : [...size];
  }

  computeOutputShape(s) {
    return s.map((d, i) => (i === 0 || i > this.dims || d == null ? d : d * this.size[i - 1]));
  }

  /** Keras: ops.repeat along each spatial axis (every element `size` times, in place). */
  call(inputs) {
    return tf.tidy(() => {
      let x = one(inputs);
      this.size.forEach((s, k) => {
        const axis = k + 1;
        const shape = x.shape;
        const reps = [...shape.map(() => 1), 1];
        reps[axis + 1] = s;
        x = x.expandDims(axis + 1).tile(reps);
        x = x.reshape([...shape.slice(0, axis), shape[axis] * s, ...shape.slice(axis + 1)]);
      });
      return x;
    });
  }

  getConfig() {
    return { ...super.getConfig(), size: this.size };
  }
}

class GlobalPooling3D extends SpatialLayer {
  constructor(config, reduce) {
    super(config, 3);
    this.keepdims = config.keepdims ?? false;
    this.reduce = reduce;
  }

  computeOutputShape(s) {
    return this.keepdims ? [s[0], 1, 1, 1, s[4]] : [s[0], s[4]];
  }

  call(inputs) {
    return tf.tidy(() => this.reduce(one(inputs), [1, 2, 3], this.keepdims));
  }

  getConfig() {
    return { ...super.getConfig(), keepdims: this.keepdims };
  }
}

/** The registered layers: [class name, base class, its second constructor argument]. */
export const {
  ZeroPadding1D, ZeroPadding3D, Cropping1D, Cropping3D, UpSampling1D, UpSampling3D, GlobalAveragePooling3D,
  GlobalMaxPooling3D,
} = registerVariants([
  ['ZeroPadding1D', Padding, 1],
  ['ZeroPadding3D', Padding, 3],
  ['Cropping1D', Cropping, 1],
  ['Cropping3D', Cropping, 3],
  ['UpSampling1D', UpSampling, 1],
  ['UpSampling3D', UpSampling, 3],
  ['GlobalAveragePooling3D', GlobalPooling3D, tf.mean],
  ['GlobalMaxPooling3D', GlobalPooling3D, tf.max],
]);

const BuiltinReshape = tf.layers.reshape({ targetShape: [1] }).constructor;

/** `Base` taking a Keras mask and passing none on (TF.js 4.22 refuses a mask on these layers). */
function dropsMask(Base) {
  return class extends Base {
    constructor(args) {
      super(args);
      this.supportsMasking = true;
    }

    computeMask() {
      return null;
    }
  };
}

/** Reshape drops the Keras mask (Keras 3 and tf_keras do; TF.js 4.22's layer does not support masks). */
export class Reshape extends dropsMask(BuiltinReshape) {
  static className = 'Reshape';
}
tf.serialization.registerClass(Reshape);

const BuiltinGAP1D = tf.layers.globalAveragePooling1d({}).constructor;

/** mirrors keras/src/layers/pooling/global_average_pooling1d.py: the mean over unmasked steps. */
export class GlobalAveragePooling1D extends dropsMask(BuiltinGAP1D) {
  static className = 'GlobalAveragePooling1D';

  call(inputs, kwargs) {
    const mask = kwargs == null ? null : [].concat(kwargs.mask)[0];
    if (mask == null) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const x = one(inputs);
      const m = mask.cast(x.dtype).expandDims(-1);
      return tf.sum(x.mul(m), 1).div(tf.sum(m, 1));
    });
  }
}
tf.serialization.registerClass(GlobalAveragePooling1D);
