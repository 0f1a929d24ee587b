/**
 * Any exported model of a bundle, by its manifest name, with nothing face-specific around it:
 *
 *   const net = await load('./models', 'keypoints');
 *   const out = net.predict(tf.zeros([1, 96, 96, 3]));   // tf.Tensor | tf.Tensor[] (caller disposes)
 *   const outs = await net.predictAsync({ tokens: ids, mask });  // any model, control flow included
 *   net.dispose();
 *
 * Inputs: one input (a tf.Tensor or {data, shape, dtype?}), an array of them in the manifest's
 * input order (`net.inputs`), or an object keyed by input name. `dtype` defaults to the
 * manifest's dtype of that input (else float32). `predict` is synchronous (usable inside
 * tf.grad for layers models); a graph model with control flow (RNN loops, masking; manifest
 * `execution: "async"`) needs `predictAsync`. The backend is whatever TF.js is using (see
 * backend.js: useBackend). Mirrors facepack/export/keras_export.py (what writes such bundles).
 */
import * as tf from '@tensorflow/tfjs';

import { ensureBackend } from './backend.js';
import { loadManifest, loadModel, manifestEntry, needsAsync, runModel, runModelAsync } from './io.js';

function isSpec(value) {
  return value instanceof tf.Tensor || (value !== null && typeof value === 'object' && 'data' in value && 'shape' in value);
}

/** A tensor for one input value (a tensor is used as is; {data, shape, dtype?} is created). */
function toTensor(value, spec) {
  if (value instanceof tf.Tensor) return value;
  if (!isSpec(value)) throw new Error(`an input must be a tf.Tensor or {data, shape, dtype?}, got ${typeof value}`);
  return tf.tensor(value.data, value.shape, value.dtype || (spec && spec.dtype) || 'float32');
}

/** The inputs as tensors, keeping their structure (one, array, or object by name); `made` collects created tensors. */
function toTensors(input, specs, made) {
  const one = (v, spec) => {
    const t = toTensor(v, spec);
    if (t !== v) made.push(t);
    return t;
  };
  if (isSpec(input)) return one(input, specs[0]);
  if (Array.isArray(input)) return input.map((v, i) => one(v, specs[i]));
  if (input !== null && typeof input === 'object') {
    return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, one(v, specs.find((s) => s.name === k))]));
  }
  throw new Error(`predict: expected a tensor, {data, shape}, an array or an object of inputs, got ${input}`);
}

/**
 * @param {string} dirOrUrl bundle root: a folder path (Node) or URL
 * @param {string} name a key of manifest.json "models"
 * @returns {Promise<{name: string, entry: object, manifest: object, model: object, inputs: object[],
 *   async: boolean,
 *   predict: (input: any) => tf.Tensor|tf.Tensor[],
 *   predictAsync: (input: any) => Promise<tf.Tensor|tf.Tensor[]>,
 *   dispose: () => void}>}
 */
export async function load(dirOrUrl, name) {
  // the default backend as loadModel / createFaceAnalyzer start it (a no-op once one is set): in Node
  // nothing else initialises 'wasm', and predict() threw "backend 'wasm' has not yet been initialized"
  await ensureBackend();
  const manifest = await loadManifest(dirOrUrl);
  const entry = manifestEntry(manifest, name);
  const loaded = await loadModel(dirOrUrl, entry);
  const specs = entry.inputs || [];
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error(`model "${name}" was disposed`);
  };
  return {
    name,
    entry,
    manifest,
    model: loaded.model,
    /** [{name, shape, dtype?}] of the model's inputs, in order (from the manifest). */
    inputs: specs,
    /** True when only predictAsync can run the model (control flow). */
    async: needsAsync(loaded),
    /** Outputs for `input`: one tensor, or an array for several outputs (caller disposes). */
    predict(input) {
      alive();
      return tf.tidy(() => {
        const outs = runModel(loaded, toTensors(input, specs, []));
        return outs.length === 1 ? outs[0] : outs;
      });
    },
    /** predict for any model, graph models with control flow included (caller disposes). */
    async predictAsync(input) {
      alive();
      const made = [];
      try {
        const outs = await runModelAsync(loaded, toTensors(input, specs, made));
        return outs.length === 1 ? outs[0] : outs;
      } finally {
        tf.dispose(made);
      }
    },
    dispose() {
      if (!disposed) loaded.model.dispose();
      disposed = true;
    },
  };
}
