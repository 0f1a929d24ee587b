/**
 * Node runner for tests/test_js_fuse.py: static/facepack/ops/fuse_layers.js on small layers models
 * built here (conv / depthwise, with and without bias, ReLU6 / ReLU / none after the batch norm, a
 * conv whose output feeds two layers, which must stay unfused), against the same model unfused.
 *
 *   node tests/js/fuse.mjs JOB.json  ->  {fused, maxAbs, maxRef, gradMaxAbs, gradMaxRef, added,
 *                                       releasedPlain, releasedFused, copiesPlain, copiesFused, backend}
 *
 * Values on JOB.backend, the input gradient on the cpu backend (WASM has no conv filter gradient).
 *
 * JOB: {backend?: 'wasm', seed?: number}
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { ReLU } from '../../static/facepack/layers/activations.js';
import { fuseLayersModel } from '../../static/facepack/ops/fuse_layers.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
await useBackend(job.backend ?? 'wasm');
const seed = job.seed ?? 14;

/** The test model: 5 chains that fold, 1 that must not (its conv's output feeds two layers). */
function build() {
  const input = tf.input({ shape: [11, 13, 4] });
  const bn = () => tf.layers.batchNormalization({ epsilon: 1e-3 });
  let x = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false }).apply(input);
  x = new ReLU({ maxValue: 6 }).apply(bn().apply(x)); // chain 1: conv, no bias, ReLU6 (facepack's ReLU)
  x = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', useBias: true }).apply(x);
  x = bn().apply(x); // chain 2: depthwise x2 with bias, nothing after
  x = tf.layers.conv2d({ filters: 5, kernelSize: 1, useBias: true }).apply(x);
  x = tf.layers.reLU().apply(bn().apply(x)); // chain 3: TF.js' own ReLU, no max
  x = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'valid', useBias: false }).apply(x);
  x = tf.layers.reLU({ maxValue: 6 }).apply(bn().apply(x)); // chain 4: depthwise, TF.js' ReLU6
  x = tf.layers.conv2d({ filters: 5, kernelSize: 1, useBias: true }).apply(x);
  const shared = bn().apply(x); // chain 5: the batch norm's output feeds two layers (the ReLU not fused)
  x = tf.layers.add().apply([shared, tf.layers.reLU().apply(shared)]);
  const y = tf.layers.conv2d({ filters: 5, kernelSize: 1, useBias: false }).apply(x);
  const out = tf.layers.add().apply([bn().apply(y), y]); // the conv's output feeds two layers: not fused
  return tf.model({ inputs: input, outputs: out });
}

function randomize(model) {
  let k = 0;
  const weights = model.getWeights().map((w) => {
    k += 1;
    const name = model.weights[k - 1].originalName ?? model.weights[k - 1].name;
    if (/moving_variance/.test(name)) return tf.randomUniform(w.shape, 0.2, 3, 'float32', seed + k);
    if (/gamma/.test(name)) return tf.randomUniform(w.shape, 0.3, 2.5, 'float32', seed + k);
    return tf.randomNormal(w.shape, 0, 1, 'float32', seed + k);
  });
  return weights;
}

const plain = build();
const fused = build();
const weights = randomize(plain);
plain.setWeights(weights);
fused.setWeights(weights);
tf.dispose(weights);
const n0 = tf.memory().numTensors;
const count = fuseLayersModel(fused);
const added = tf.memory().numTensors - n0; // the folded kernels and biases
const x = tf.randomUniform([3, 11, 13, 4], -4, 4, 'float32', seed);
const [ya, yb] = [plain.apply(x), fused.apply(x)];
const maxAbs = tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0];
const maxRef = tf.max(tf.abs(ya)).dataSync()[0];
// Copies made by a forward pass (Identity kernels: tfjs-layers clones a layer's output when it is
// the layer's own input, a full copy of the activation on WASM); the folded layers must add none.
const copies = async (m) => (await tf.profile(() => m.predict(x))).kernels.filter((k) => k.name === 'Identity').length;
const [copiesPlain, copiesFused] = [await copies(plain), await copies(fused)];
// The WASM backend has no Conv2DBackpropFilter: the gradient is checked on the cpu backend.
const backend = tf.getBackend();
await tf.setBackend('cpu');
const grad = (m) => tf.grad((v) => tf.sum(tf.square(m.apply(v))))(x);
const [ga, gb] = [grad(plain), grad(fused)];
const gradMaxAbs = tf.max(tf.abs(tf.sub(ga, gb))).dataSync()[0];
const gradMaxRef = tf.max(tf.abs(ga)).dataSync()[0];
tf.dispose([x, ya, yb, ga, gb]);
let n1 = tf.memory().numTensors;
plain.dispose();
const releasedPlain = n1 - tf.memory().numTensors;
n1 = tf.memory().numTensors;
fused.dispose();
const releasedFused = n1 - tf.memory().numTensors;
process.stdout.write(JSON.stringify({ fused: count, maxAbs, maxRef, gradMaxAbs, gradMaxRef, added, releasedPlain, releasedFused, copiesPlain, copiesFused, backend }));
