/**
 * Face attributes: face boxes -> beauty-rule square crops -> per-attribute probabilities ->
 * {name: {probability, on}}. Mirrors facepack/models/attributes.py:attribute_results (on:
 * probability >= the attribute's threshold) with the crop of facepack/pipeline.py:crop(rgb, faces,
 * "beauty", size). The attribute names, thresholds and the crop rule's name come from the model's
 * manifest entry ("attributes", written by facepack/export/attributes.py); margins, crop method and
 * pad value from the manifest's spec.
 */
import * as tf from '@tensorflow/tfjs';

import { cropRules, cropSquares, faceSquare } from './crop.js';
import { runModel } from './io.js';

/**
 * The manifest entry's attribute settings, checked.
 * @param {object} entry manifest.json models.attributes
 * @returns {{names: string[], thresholds: number[], cropRule: string, inputSize: number}}
 */
export function attributeSettings(entry) {
  const a = entry && entry.attributes;
  if (!a || !Array.isArray(a.names) || !Array.isArray(a.thresholds) || a.names.length !== a.thresholds.length) {
    throw new Error(`attributes model: the manifest entry needs "attributes": {names, thresholds} of equal length (export it with facepack/export/attributes.py)`);
  }
  return { names: a.names, thresholds: a.thresholds, cropRule: a.crop_rule, inputSize: entry.input_size };
}

/**
 * Probabilities of the crops. Caller disposes.
 * @param {object} model loaded attributes model (io.js:loadModel)
 * @param {tf.Tensor4D} crops [N, S, S, 3] raw RGB
 * @returns {tf.Tensor2D} [N, K]
 */
export function attributesForward(model, crops) {
  return tf.tidy(() => runModel(model, crops)[0]);
}

/**
 * Probabilities -> per face {name: {probability, on}} (mirrors
 * facepack/models/attributes.py:attribute_results).
 * @param {Float32Array} probs [n, K] row-major
 * @param {number} n faces
 * @param {{names: string[], thresholds: number[]}} settings attributeSettings(entry)
 */
export function attributeResults(probs, n, settings) {
  const { names, thresholds } = settings;
  const k = names.length;
  if (probs.length !== n * k) {
    throw new Error(`attributes model: expected ${n} x ${k} probabilities (manifest attributes.names), got ${probs.length} values`);
  }
  const out = [];
  for (let i = 0; i < n; i++) {
    const face = {};
    names.forEach((name, j) => {
      const probability = probs[i * k + j];
      face[name] = { probability, on: probability >= thresholds[j] };
    });
    out.push(face);
  }
  return out;
}

/**
 * Attributes of the faces of one photo.
 * 1. the square of each box by the model's crop rule (crop.js:cropRules / faceSquare)
 * 2. crops at the model's input size (crop.js:cropSquares, as facepack/crop.py:crop_squares)
 * 3. probabilities (attributesForward), 4. named results (attributeResults).
 * @param {object} model loaded attributes model
 * @param {object} entry its manifest entry
 * @param {object} spec manifest.json "spec"
 * @param {tf.Tensor3D} image float32 [H, W, 3] raw RGB
 * @param {{x:number,y:number,width:number,height:number}[]} boxes face boxes, photo pixels
 * @param {ArrayLike<number>} [pixels] `await image.data()` if the caller has it
 * @returns {Promise<Array<Object<string, {probability: number, on: boolean}>>>}
 */
export async function analyzeAttributes(model, entry, spec, image, boxes, pixels = null) {
  const settings = attributeSettings(entry);
  if (boxes.length === 0) return [];
  const rule = cropRules(spec)[settings.cropRule];
  if (!rule) {
    throw new Error(`attributes model: crop_rule must be one of ${Object.keys(cropRules(spec)).join(', ')}, got ${JSON.stringify(settings.cropRule)}`);
  }
  const squares = boxes.map((box) => faceSquare(box, rule));
  const crops = await cropSquares(image, squares, settings.inputSize, spec, pixels);
  const probs = attributesForward(model, crops);
  crops.dispose();
  const values = await probs.data();
  probs.dispose();
  return attributeResults(values, boxes.length, settings);
}
