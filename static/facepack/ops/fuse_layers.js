/**
 * Inference fusion of a loaded Keras layers model (issue 14): every chain
 *   Conv2D | DepthwiseConv2D  ->  BatchNormalization  [->  ReLU (max_value 6 or none, no slope/threshold)]
 * runs as ONE tf.fused.conv2d / tf.fused.depthwiseConv2d with the batch norm folded into its
 * kernel and bias and the ReLU as the fused activation ('relu6' / 'relu'); the folded layers pass
 * their input through. On the WASM backend the separate FusedBatchNorm and the ReLU6's Minimum
 * (layers/activations.js:kerasRelu) took two thirds of MobileNetV2's time: the beauty and keypoint
 * models run about 3x faster, measured in bench/README.md.
 *
 * The fold is TF's own inference batch norm, y = x * a + (beta - mean * a) with
 * a = gamma / sqrt(variance + epsilon) (tf.nn.batch_normalization, what Keras 3 calls), moved into
 * the convolution: kernel * a per output channel, bias (bias - mean) * a + beta, computed in
 * float64 and rounded once to float32. Only the summation order changes: the outputs differ from
 * the unfused model's by float32 rounding (measured on the shipped float16 bundle, 25 random
 * crops: beauty features 7e-6 of 5.2, beauty score 2e-5 of 100 points, keypoints 4e-7 crop units;
 * tests/test_js_fuse.py, and end to end against Python tests/test_parity_node.py).
 *
 * Only layers applied once whose output feeds only the next layer of the chain (and is not a
 * model output) are folded; anything else is left as it is. The model is changed in place and
 * stays differentiable (Grad-CAM's tf.grad runs through it).
 */
import * as tf from '@tensorflow/tfjs';

const CONVS = new Set(['Conv2D', 'DepthwiseConv2D']);

function className(layer) {
  return layer.getClassName ? layer.getClassName() : layer.constructor.className;
}

/** The one layer that consumes `layer`'s output, or null (several, none, or a model output). */
function soleConsumer(model, layer) {
  if (layer.inboundNodes.length !== 1 || layer.outboundNodes.length !== 1) return null;
  const out = layer.inboundNodes[0].outputTensors;
  if (out.length !== 1 || model.outputs.some((t) => t.id === out[0].id)) return null;
  const next = layer.outboundNodes[0].outboundLayer;
  if (!next || next.inboundNodes.length !== 1 || next.inboundNodes[0].inputTensors.length !== 1) return null;
  return next;
}

/** 'relu6' / 'relu' for a ReLU layer (or Activation 'relu') that fuses, else null. */
function fusedActivation(layer) {
  const name = className(layer);
  if (name === 'ReLU') {
    if ((layer.threshold ?? 0) !== 0 || (layer.negativeSlope ?? 0) !== 0) return null;
    if (layer.maxValue == null) return 'relu';
    return layer.maxValue === 6 ? 'relu6' : null;
  }
  if (name === 'Activation' && layer.activation?.getClassName?.() === 'relu') return 'relu';
  return null;
}

function isPlainConv(layer) {
  const name = className(layer);
  if (!CONVS.has(name) || layer.dataFormat !== 'channelsLast') return false;
  if (layer.activation && layer.activation.getClassName() !== 'linear') return false;
  if ((layer.groups ?? 1) !== 1) return false;
  const d = layer.dilationRate ?? 1;
  return (Array.isArray(d) ? d : [d]).every((v) => v === 1);
}

function isPlainBatchNorm(layer) {
  if (className(layer) !== 'BatchNormalization') return false;
  const axis = Array.isArray(layer.axis) ? layer.axis : [layer.axis];
  return axis.length === 1 && (axis[0] === -1 || axis[0] === 3);
}

/** Folded [kernel, bias] tensors of conv + bn (see the module note). */
function foldedWeights(conv, bn) {
  const depthwise = className(conv) === 'DepthwiseConv2D';
  const kernelVar = depthwise ? conv.depthwiseKernel : conv.kernel;
  const kernel = kernelVar.read().dataSync();
  const shape = kernelVar.shape; // conv [kh, kw, in, out]; depthwise [kh, kw, in, multiplier]
  const outChannels = depthwise ? shape[2] * shape[3] : shape[3];
  const read = (v, fill) => (v ? v.read().dataSync() : new Float32Array(outChannels).fill(fill));
  const gamma = bn.scale ? read(bn.gamma, 1) : read(null, 1);
  const beta = bn.center ? read(bn.beta, 0) : read(null, 0);
  const mean = read(bn.movingMean, 0);
  const variance = read(bn.movingVariance, 1);
  const bias = conv.useBias && conv.bias ? conv.bias.read().dataSync() : new Float32Array(outChannels);
  const a = new Float64Array(outChannels);
  const b = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    a[o] = gamma[o] / Math.sqrt(variance[o] + bn.epsilon);
    b[o] = (bias[o] - mean[o]) * a[o] + beta[o];
  }
  // The output channel is the kernel's fastest axis for both layouts (depthwise: in * multiplier).
  const k = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) k[i] = kernel[i] * a[i % outChannels];
  return [tf.tensor(k, shape, 'float32'), tf.tensor1d(b, 'float32')];
}

/**
 * A folded layer's call: its input, as a new tensor on the same data (a same-shape reshape: no copy
 * on cpu, wasm or webgl; differentiable). Returning the input tensor itself makes tfjs-layers'
 * Layer.apply clone it (an Identity kernel, on WASM a full copy of the activation). That matters
 * for model.predict / execute, which call Layer.apply per layer (the beauty model, batch 4, WASM:
 * 93 copies, 124 ms CPU, now 11 and 109 ms); the library itself runs models with model.apply
 * (io.js:runModel), whose internal graph calls layer.call and never cloned (9 copies, 112 ms,
 * before and after), so analyze() is as fast as before.
 */
function passThrough(inputs) {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  return tf.reshape(x, x.shape);
}

/**
 * Fold the conv -> batch norm [-> ReLU] chains of a loaded layers model in place.
 * @param {tf.LayersModel} model
 * @returns {number} chains folded (0: the model is unchanged)
 */
export function fuseLayersModel(model) {
  if (!model || !Array.isArray(model.layers)) return 0;
  const owned = [];
  let count = 0;
  for (const conv of model.layers) {
    if (!isPlainConv(conv)) continue;
    const bn = soleConsumer(model, conv);
    if (!bn || !isPlainBatchNorm(bn)) continue;
    const next = soleConsumer(model, bn);
    const activation = next ? fusedActivation(next) : null;
    const [kernel, bias] = foldedWeights(conv, bn);
    owned.push(kernel, bias);
    const depthwise = className(conv) === 'DepthwiseConv2D';
    const { strides, padding } = conv;
    conv.call = (inputs) => tf.tidy(() => {
      const x = passThrough(inputs);
      const args = { x, filter: kernel, strides, pad: padding, dataFormat: 'NHWC', bias, activation: activation ?? 'linear' };
      return depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
    });
    bn.call = passThrough;
    if (activation) next.call = passThrough;
    count += 1;
  }
  if (count) {
    const dispose = model.dispose.bind(model);
    model.dispose = () => { tf.dispose(owned); return dispose(); };
  }
  return count;
}
