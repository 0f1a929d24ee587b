/**
 * Guided backpropagation and guided Grad-CAM of the expected beauty score, step for step as
 * facepack/guided.py (mirrors guided_maps):
 *
 * 1. s = sum_i p_i * i through beauty_features and beauty_head (the forward pass is unchanged)
 * 2. G = ds/dcrops with every ReLU / ReLU6 passing back dy * [0 < x < max] * [dy > 0]
 *    (Springenberg et al. 2015): the Relu and Relu6 kernel gradients are swapped for the guided
 *    rule for the duration of one synchronous tf.grad call and restored afterwards (withGuidedRelu).
 *    During that call the model's Conv2D and BatchNormalization layers run unfused (withUnfusedLayers):
 *    the fused op's gradient always computes the filter gradient too, which the CPU backend
 *    takes ~18 s for (64 px MobileNetV2) and the WASM backend has no kernel for; the unfused
 *    op's gradient computes only what the input needs. WASM also lacks the depthwise input
 *    gradient, registered by wasm_grad_kernels.js.
 * 3. saliency = sum over RGB of |G|; guided = normalisePercentile(saliency)        [N, S, S]
 * 4. guided Grad-CAM = normalisePercentile(saliency * upsampled Grad-CAM (gradcam.js)) [N, S, S]
 *
 * Display normalisation (mirrors guided.py:normalise_percentile): each face's map is divided by its
 * 99th percentile (DISPLAY_QUANTILE), the ascending-sorted value at index floor(0.99 * (n - 1))
 * (no interpolation), and clipped to 0..1; not by its max, because gradient magnitudes are
 * heavy-tailed and one pixel would set the scale (the map came out near black).
 *
 * The layers model's ReLU(max_value) layer computes relu then clipByValue, whose own gradient
 * already zeroes x > max, so overriding Relu and Relu6 covers ReLU, ReLU6 and Activation('relu6').
 * Backbones with other non-linearities (swish, hard-swish, sigmoid gates) and graph-model bundles
 * throw an error with err.code 'guided-unavailable' (checkGuided).
 */
import * as tf from '@tensorflow/tfjs';

import { ensureBackend } from './backend.js';
import { cropRules, cropSquares, faceSquare } from './crop.js';
import { gradcamGrid, upsampleGrid } from './gradcam.js';
import { toRgbTensor } from './input.js';
import { loadManifest, loadModel, manifestEntry, runModel } from './io.js';
import { registerWasmGradKernels } from './wasm_grad_kernels.js';

registerWasmGradKernels();

// mirrors facepack/guided.py: LINEAR_ACTIVATIONS, RELU_ACTIVATIONS, ACTIVATION_LAYERS
const LINEAR_ACTIVATIONS = ['linear'];
const RELU_ACTIVATIONS = ['relu', 'relu6'];
const ACTIVATION_LAYERS = ['LeakyReLU', 'PReLU', 'ELU', 'Softmax', 'ThresholdedReLU'];
const RELU6_TOP = 6;

function unavailable(what) {
  const err = new Error(`guided backpropagation is defined for ReLU backbones only: ${what}; `
    + 'use a mobilenet_v2, resnet50 or efficientnet_lite* beauty model, or plain Grad-CAM');
  err.code = 'guided-unavailable';
  return err;
}

function activationName(fn) {
  return fn && typeof fn.getClassName === 'function' ? fn.getClassName().toLowerCase() : 'linear';
}

function checkLayers(layers) {
  for (const layer of layers) {
    if (Array.isArray(layer.layers) && layer.layers.length) {
      checkLayers(layer.layers);
      continue;
    }
    const cls = layer.getClassName();
    if (cls === 'ReLU') continue;
    if (ACTIVATION_LAYERS.includes(cls)) throw unavailable(`layer '${layer.name}' uses ${cls}`);
    const name = activationName(layer.activation);
    if (cls === 'Activation') {
      if (!RELU_ACTIVATIONS.includes(name) && !LINEAR_ACTIVATIONS.includes(name)) {
        throw unavailable(`layer '${layer.name}' uses activation '${name}'`);
      }
    } else if (layer.activation && !LINEAR_ACTIVATIONS.includes(name)) {
      throw unavailable(`layer '${layer.name}' uses a fused activation '${name}'`);
    }
  }
}

/**
 * Throw (err.code 'guided-unavailable', naming the layer) unless guided backprop is defined for
 * the loaded beauty_features model (mirrors facepack/guided.py:check_guided); err.code
 * 'guided-fused-model' for a model whose layers were fused in place (ops/fuse_layers.js).
 * @param {{model: object, format: string, entry: object}} features loaded beauty_features
 */
export function checkGuided(features) {
  if (features.format !== 'layers-model') {
    throw unavailable(`model '${features.entry?.path}' is a ${features.format} (guided backprop reads the layers model's activations)`);
  }
  const patched = patchedLayers(features.model.layers);
  if (patched.length) {
    const err = new Error(`model '${features.entry?.path}': ${patched.length} layers run replaced calls (e.g. '${patched[0].name}'; `
      + 'pipeline.js:loadModelSets fuses conv, batch norm and ReLU6 into one op, ops/fuse_layers.js), so the ReLUs '
      + 'cannot be guided; use createGuidedExplainer, or a copy loaded with io.js:loadModel');
    err.code = 'guided-fused-model';
    throw err;
  }
  checkLayers(features.model.layers);
}

/**
 * Run the synchronous `fn` with the layers model's replaced calls (ops/fuse_layers.js: conv with the
 * batch norm and ReLU folded in, the folded layers passing their input through) taken off, so the
 * model computes its own original layers (the fusion keeps their weights); they are put back
 * before returning, also when fn throws. fn must not await.
 * @template T
 * @param {object} model a tf.LayersModel
 * @param {() => T} fn
 * @returns {T}
 */
export function withOriginalLayers(model, fn) {
  const layers = patchedLayers(model.layers);
  const own = layers.map((layer) => Object.getOwnPropertyDescriptor(layer, 'call'));
  layers.forEach((layer) => { delete layer.call; });
  try {
    return fn();
  } finally {
    layers.forEach((layer, i) => Object.defineProperty(layer, 'call', own[i]));
  }
}

function patchedLayers(layers, out = []) {
  for (const layer of layers) {
    if (Array.isArray(layer.layers) && layer.layers.length) patchedLayers(layer.layers, out);
    else if (Object.prototype.hasOwnProperty.call(layer, 'call')) out.push(layer);
  }
  return out;
}

function guidedReluGrad(kernelName, top) {
  // dx = dy * [0 < x < top] * [dy > 0]  (mirrors facepack/guided.py:GuidedReLU.call.grad)
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return {
        x: () => {
          let passes = tf.logicalAnd(tf.greater(x, 0), tf.greater(dy, 0));
          if (top !== null) passes = tf.logicalAnd(passes, tf.less(x, top));
          return tf.where(passes, dy, tf.zerosLike(dy));
        },
      };
    },
  };
}

/**
 * Run the synchronous `fn` with the Relu and Relu6 gradients guided; the previous gradients are
 * restored before returning (also when fn throws). fn must not await: the swap is global.
 * @template T
 * @param {() => T} fn
 * @returns {T}
 */
export function withGuidedRelu(fn) {
  const guided = [guidedReluGrad('Relu', null), guidedReluGrad('Relu6', RELU6_TOP)];
  const previous = guided.map((g) => tf.getGradient(g.kernelName));
  guided.forEach((g) => tf.registerGradient(g));
  try {
    return fn();
  } finally {
    guided.forEach((g, i) => {
      if (previous[i]) tf.registerGradient(previous[i]);
      else tf.unregisterGradient(g.kernelName);
    });
  }
}

function unfusedConv2dCall(layer) {
  // Same sums as tfjs-layers Conv2D.call (conv2dWithBiasActivation, NHWC), as separate ops.
  return (inputs) => tf.tidy(() => {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const padding = layer.padding === 'same' ? 'same' : 'valid';
    let y = tf.conv2d(x, layer.kernel.read(), layer.strides, padding, 'NHWC', layer.dilationRate);
    if (layer.bias) y = tf.add(y, layer.bias.read());
    return layer.activation ? layer.activation.apply(y) : y;
  });
}

function unfusedBatchNormCall(layer) {
  // Inference batch norm on the last axis as tf ops: (x - mean) * gamma / sqrt(var + eps) + beta
  // (tfjs-layers BatchNormalization.call, training false). Its gradient is dy * the per-channel factor;
  // the fused kernel's gradient tiles every statistic to the input's shape (~1.7 s per 224 px face on wasm).
  return (inputs) => tf.tidy(() => {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    let factor = tf.rsqrt(tf.add(layer.movingVariance.read(), layer.epsilon));
    if (layer.gamma) factor = tf.mul(factor, layer.gamma.read());
    const y = tf.mul(tf.sub(x, layer.movingMean.read()), factor);
    return layer.beta ? tf.add(y, layer.beta.read()) : y;
  });
}

function lastAxisNorm(layer) {
  // Keras 2 writes the axis as a one-element list ([3]); tfjs-layers keeps it as given.
  const axis = Array.isArray(layer.axis) && layer.axis.length === 1 ? layer.axis[0] : layer.axis;
  return axis === -1 || axis === layer.inputSpec?.[0]?.ndim - 1;
}

// class name -> [applies to this layer?, replacement call]
const UNFUSED = {
  Conv2D: [(l) => l.dataFormat === 'channelsLast' && l.rank === 2, unfusedConv2dCall],
  BatchNormalization: [lastAxisNorm, unfusedBatchNormCall],
};

function unfusableLayers(layers, out = []) {
  for (const layer of layers) {
    if (Array.isArray(layer.layers) && layer.layers.length) unfusableLayers(layer.layers, out);
    else if (UNFUSED[layer.getClassName()]?.[0](layer)) out.push(layer);
  }
  return out;
}

/**
 * Run the synchronous `fn` with the layers model's Conv2D and (last-axis) BatchNormalization
 * layers computing separate tf ops instead of the fused kernels (same values up to float
 * rounding; gradients that skip the unused filter gradient and the statistics' tiling).
 * The layers are restored before returning. fn must not await.
 * @template T
 * @param {object} model a tf.LayersModel
 * @param {() => T} fn
 * @returns {T}
 */
export function withUnfusedLayers(model, fn) {
  const layers = unfusableLayers(model.layers);
  const own = layers.map((layer) => Object.getOwnPropertyDescriptor(layer, 'call')); // a patched call stays
  layers.forEach((layer) => { layer.call = UNFUSED[layer.getClassName()][1](layer); });
  try {
    return fn();
  } finally {
    layers.forEach((layer, i) => {
      if (own[i]) Object.defineProperty(layer, 'call', own[i]);
      else delete layer.call;
    });
  }
}

/**
 * Faces per guided gradient pass in explain(). The WASM backend's gradient of a whole crowd in one
 * tf.grad call (24 faces of 224 px MobileNetV2) outgrows its heap: 'RuntimeError: divide by zero' or
 * 'Aborted()' inside tfjs-backend-wasm, after which the module is dead (the page's worker hung).
 * Batches of 8 stay well below the sizes seen to fail and cost no extra time per face.
 */
export const GUIDED_BATCH_FACES = 8;

// mirrors facepack/guided.py:DISPLAY_QUANTILE (the 99th percentile as a fraction)
export const DISPLAY_QUANTILE = 0.99;

/** Index of the quantile in n ascending-sorted values: floor(q * (n - 1)) (mirrors guided.py:percentile_index). */
export function percentileIndex(n, quantile = DISPLAY_QUANTILE) {
  return Math.floor(quantile * (n - 1));
}

/**
 * Scale each [N, H, W] map (values >= 0) so its DISPLAY_QUANTILE quantile is 1, clip to 0..1
 * (mirrors guided.py:normalise_percentile): the scale is the sorted value at percentileIndex(H * W),
 * the map's max where that is 0, and 1 for an all-zero map (which stays zero).
 */
function normalisePercentile(maps) {
  return tf.tidy(() => {
    const [n, h, w] = maps.shape;
    const flat = tf.reshape(maps, [n, h * w]);
    // the value at ascending index i is the (h*w - i)-th largest: the last of the top k = h*w - i
    const k = h * w - percentileIndex(h * w);
    const top = tf.topk(flat, k, true).values;
    const atRank = tf.reshape(tf.slice(top, [0, k - 1], [n, 1]), [n, 1, 1]);
    const peak = tf.max(maps, [1, 2], true);
    let scale = tf.where(tf.greater(atRank, 0), atRank, peak);
    scale = tf.where(tf.greater(scale, 0), scale, tf.onesLike(scale));
    return tf.clipByValue(tf.div(maps, scale), 0, 1);
  });
}

/**
 * Step 2: the guided gradient d(sum_i p_i * i)/dcrops, [N, S, S, 3]. Caller disposes.
 * @param {{features: object, head: object}} models loaded beauty_features and beauty_head
 * @param {tf.Tensor4D} crops [N, S, S, 3] raw RGB
 * @param {number} bins spec.beauty.bins
 */
export function guidedGradients(models, crops, bins) {
  checkGuided(models.features);
  return tf.tidy(() => {
    const values = tf.range(0, bins, 1, 'float32');
    // Each face's score depends on its own crop only, so the gradient of the sum is per face.
    const totalScore = (x) => tf.sum(tf.mul(runModel(models.head, runModel(models.features, x)[0])[0], values));
    return withUnfusedLayers(models.features.model, () => withGuidedRelu(() => tf.grad(totalScore)(crops)));
  });
}

/**
 * Steps 1-4 (mirrors facepack/guided.py:guided_maps). Caller disposes the three tensors.
 * @param {{features: object, head: object}} models loaded beauty_features and beauty_head
 * @param {tf.Tensor4D} crops [N, S, S, 3] raw RGB 0..255
 * @param {number} bins spec.beauty.bins
 * @returns {{guided: tf.Tensor3D, guidedGradcam: tf.Tensor3D, gradcam: tf.Tensor3D}} [N, S, S] each, 0..1;
 *   guided and guidedGradcam are display maps (99th percentile = 1, clipped: ~1 % of pixels are 1),
 *   gradcam is Grad-CAM's own (max 1 per face)
 * @throws {Error} err.code 'guided-unavailable' for a backbone with non-ReLU activations
 */
export function guidedMaps(models, crops, bins) {
  const [n, size] = crops.shape;
  checkGuided(models.features);
  if (n === 0) return tf.tidy(() => ({ guided: tf.zeros([0, size, size]), guidedGradcam: tf.zeros([0, size, size]), gradcam: tf.zeros([0, size, size]) }));
  const grads = guidedGradients(models, crops, bins);
  return tf.tidy(() => {
    const fmap = runModel(models.features, crops)[0];
    const gradcam = upsampleGrid(gradcamGrid(models.head, fmap, bins), size);
    const saliency = tf.sum(tf.abs(grads), -1);
    grads.dispose();
    return { guided: normalisePercentile(saliency), guidedGradcam: normalisePercentile(tf.mul(saliency, gradcam)), gradcam };
  });
}

/**
 * Guided maps for the faces analyze() found (the page's and predict.py's entry; mirrors
 * facepack/guided.py:GuidedExplainer), with its own copy of the beauty models, or with the
 * analyzer's (`opts.models`: analyzer.modelSets.beauty, fused in place by pipeline.js): their
 * fused calls are taken off for each explain() and put back (withOriginalLayers), so no second
 * copy is loaded; the analyzer keeps owning them (dispose() leaves them).
 *
 *   const explainer = await createGuidedExplainer('/models', { manifest: analyzer.manifest });
 *   const shared = await createGuidedExplainer('/models', { manifest: analyzer.manifest, models: analyzer.modelSets.beauty });
 *   const maps = await explainer.explain(imageElement, faces); // per face {square, crop_size, guided, guidedGradcam}
 *   explainer.dispose();
 *
 * Each map is {width, height, data: Float32Array} over the face's beauty crop (as gradcam.js:heatmapToCrop),
 * 0..1 (99th percentile = 1, clipped); draw it over `square` ({x, y, side}, photo pixels) like the Grad-CAM heatmap.
 * @param {string} modelUrl bundle root (folder path in Node, URL in a browser)
 * @param {{manifest?: object, models?: {features: object, head: object}}} [opts] the bundle's manifest
 *   if already loaded; loaded beauty models to use instead of loading a copy (not disposed here)
 * @throws {Error} err.code 'guided-unavailable' (with the reason) for a non-ReLU beauty backbone
 *   or a graph-model bundle; the models it loaded are released before it throws
 */
export async function createGuidedExplainer(modelUrl, opts = {}) {
  await ensureBackend();
  const manifest = opts.manifest ?? await loadManifest(modelUrl);
  const spec = manifest.spec;
  const shared = Boolean(opts.models);
  const models = shared ? { features: opts.models.features, head: opts.models.head } : {
    features: await loadModel(modelUrl, manifestEntry(manifest, 'beauty_features')),
    head: await loadModel(modelUrl, manifestEntry(manifest, 'beauty_head')),
  };
  // Shared models run their original (unfused) layers while guided maps are computed.
  const original = (fn) => (shared && models.features.format === 'layers-model' && models.head.format === 'layers-model'
    ? withOriginalLayers(models.features.model, () => withOriginalLayers(models.head.model, fn)) : fn());
  const dispose = () => { if (!shared) { models.features.model.dispose(); models.head.model.dispose(); } };
  try {
    original(() => checkGuided(models.features));
  } catch (err) {
    dispose();
    throw err;
  }
  const size = models.features.entry.input_size;
  const rule = cropRules(spec).beauty;

  /**
   * @param {*} input the photo analyze() saw (see input.js:toRgbTensor)
   * @param {object[]} faces analyze() faces (each with `box`, photo pixels)
   * @returns {Promise<object[]>} per face {square: {x, y, side}, crop_size, guided, guidedGradcam}
   */
  async function explain(input, faces) {
    if (!faces.length) return [];
    const image = await toRgbTensor(input, spec);
    let crops = null;
    let maps = null;
    try {
      const squares = faces.map((f) => faceSquare(f.box, rule));
      const area = size * size;
      const part = (values, i) => ({ width: size, height: size, data: values.slice(i * area, (i + 1) * area) });
      const out = [];
      // Each face's maps depend on its own crop only (per-face normalisation), so batches give the
      // same maps as one call; GUIDED_BATCH_FACES bounds the gradient's memory (see there).
      for (let start = 0; start < squares.length; start += GUIDED_BATCH_FACES) {
        const batch = squares.slice(start, start + GUIDED_BATCH_FACES);
        crops = await cropSquares(image, batch, size, spec);
        maps = original(() => guidedMaps(models, crops, spec.beauty.bins));
        const [guided, guidedGradcam] = await Promise.all([maps.guided.data(), maps.guidedGradcam.data()]);
        tf.dispose([crops, ...Object.values(maps)]);
        crops = null;
        maps = null;
        batch.forEach(([x, y, side], i) => out.push({
          square: { x, y, side }, crop_size: size, guided: part(guided, i), guidedGradcam: part(guidedGradcam, i),
        }));
      }
      return out;
    } finally {
      tf.dispose([image, crops, ...(maps ? Object.values(maps) : [])].filter(Boolean));
    }
  }

  return { explain, dispose, manifest };
}
