/**
 * Resizing, UpSampling2D and CenterCrop with Keras semantics (tf.image.resize: half-pixel
 * centres, no antialiasing). TF.js 4.22's Resizing drops the batch axis, its bilinear
 * UpSampling2D samples without half-pixel centres, and its CenterCrop fails on batched models;
 * the three class names are re-registered here.
 */
import * as tf from '@tensorflow/tfjs';
import { channelsLastOnly, one } from './common.js';

const METHODS = ['bilinear', 'nearest'];

function checkInterpolation(name, interpolation) {
  if (!METHODS.includes(interpolation)) {
    throw new Error(`${name}: interpolation ${JSON.stringify(interpolation)} is not supported in TF.js (use ${METHODS.join(' or ')})`);
  }
}

/** tf.image.resize(x, [h, w], method) of Keras/TF 2 (half-pixel centres) for (B, H, W, C). */
export function kerasResize(x, height, width, interpolation) {
  return interpolation === 'bilinear'
    ? tf.image.resizeBilinear(x, [height, width], false, true)
    : tf.image.resizeNearestNeighbor(x, [height, width], false, true);
}

/**
 * The centred crop Keras takes before resizing with crop_to_aspect_ratio=True, as
 * [top, left, cropHeight, cropWidth]; mirrors keras/src/backend/tensorflow/image.py:resize
 * (float32 arithmetic, truncation towards zero).
 */
export function aspectCrop(height, width, targetHeight, targetWidth) {
  const f = Math.fround;
  const cropHeight = Math.max(Math.min(height, Math.trunc(f(f(width * targetHeight) / targetWidth))), 1);
  const cropWidth = Math.max(Math.min(width, Math.trunc(f(f(height * targetWidth) / targetHeight))), 1);
  return [Math.trunc(f(height - cropHeight) / 2), Math.trunc(f(width - cropWidth) / 2), cropHeight, cropWidth];
}

/**
 * The part Resizing and CenterCrop share: channels-last (B, H, W, C) in, (B, height, width, C) out,
 * computed by the subclass's `resizeFloat32(x)` (x: the input cast to float32) under tf.tidy.
 */
class ToSizeLayer extends tf.layers.Layer {
  constructor(config) {
    super(config);
    this.height = config.height;
    this.width = config.width;
    channelsLastOnly(this.name, config.dataFormat);
  }

  computeOutputShape(inputShape) {
    return [inputShape[0], this.height, this.width, inputShape[3]];
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      return this.resizeFloat32(x.dtype === 'float32' ? x : x.cast('float32'));
    });
  }

  getConfig() {
    return { ...super.getConfig(), height: this.height, width: this.width };
  }
}

/** mirrors keras/src/layers/preprocessing/image_preprocessing/resizing.py (channels last). */
export class Resizing extends ToSizeLayer {
  static className = 'Resizing';

  constructor(config) {
    super(config);
    this.interpolation = config.interpolation ?? 'bilinear';
    this.cropToAspectRatio = config.cropToAspectRatio ?? false;
    checkInterpolation(this.name, this.interpolation);
  }

  resizeFloat32(x) {
    if (!this.cropToAspectRatio) return kerasResize(x, this.height, this.width, this.interpolation);
    const [top, left, h, w] = aspectCrop(x.shape[1], x.shape[2], this.height, this.width);
    return kerasResize(x.slice([0, top, left, 0], [-1, h, w, -1]), this.height, this.width, this.interpolation);
  }

  getConfig() {
    return { ...super.getConfig(), interpolation: this.interpolation, cropToAspectRatio: this.cropToAspectRatio };
  }
}
tf.serialization.registerClass(Resizing);

/** mirrors keras/src/layers/reshaping/up_sampling2d.py (channels last). */
export class UpSampling2D extends tf.layers.Layer {
  static className = 'UpSampling2D';

  constructor(config) {
    super(config);
    this.size = config.size == null ? [2, 2] : [].concat(config.size);
    if (this.size.length === 1) this.size = [this.size[0], this.size[0]];
    this.dataFormat = config.dataFormat ?? 'channelsLast';
    if (this.dataFormat !== 'channelsLast') throw new Error(`${this.name}: only data_format channels_last is supported`);
    this.interpolation = config.interpolation ?? 'nearest';
    checkInterpolation(this.name, this.interpolation);
  }

  computeOutputShape(inputShape) {
    const scale = (d, s) => (d == null ? null : d * s);
    return [inputShape[0], scale(inputShape[1], this.size[0]), scale(inputShape[2], this.size[1]), inputShape[3]];
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = one(inputs);
      const [h, w] = [x.shape[1] * this.size[0], x.shape[2] * this.size[1]];
      // nearest with an integer factor repeats pixels (Keras: ops.repeat), which resizing
      // without half-pixel centres does exactly
      return this.interpolation === 'nearest' ? tf.image.resizeNearestNeighbor(x, [h, w])
        : kerasResize(x, h, w, 'bilinear');
    });
  }

  getConfig() {
    return { ...super.getConfig(), size: this.size, dataFormat: this.dataFormat, interpolation: this.interpolation };
  }
}
tf.serialization.registerClass(UpSampling2D);

/**
 * mirrors keras/src/layers/preprocessing/image_preprocessing/center_crop.py: a centred crop, or
 * when the input is smaller than the target, the aspect-ratio crop + bilinear resize of
 * smart_resize. (TF.js 4.22's CenterCrop rejects batched inputs at load time.)
 */
export class CenterCrop extends ToSizeLayer {
  static className = 'CenterCrop';

  resizeFloat32(x) {
    const [hDiff, wDiff] = [x.shape[1] - this.height, x.shape[2] - this.width];
    if (hDiff >= 0 && wDiff >= 0) {
      return x.slice([0, Math.trunc(hDiff / 2), Math.trunc(wDiff / 2), 0], [-1, this.height, this.width, -1]);
    }
    const [top, left, h, w] = aspectCrop(x.shape[1], x.shape[2], this.height, this.width);
    return kerasResize(x.slice([0, top, left, 0], [-1, h, w, -1]), this.height, this.width, 'bilinear');
  }
}
tf.serialization.registerClass(CenterCrop);
