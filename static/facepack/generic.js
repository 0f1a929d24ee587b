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
 * manifest's dtype of that input (else float32).
 *
 * Integer inputs: TF.js has no int64 and computes every integer tensor as int32 (an int64 Keras
 * input is exported as int32). For an input whose dtype is int32 (or int64, taken as int32),
 * `data` (a plain or nested array of numbers or BigInts, or any typed array, BigInt64Array
 * included) is checked in one pass: a value outside [-2^31, 2^31 - 1] or not an integer throws an
 * Error naming the input, the first bad value and its flat index, instead of being wrapped or
 * truncated silently (2^40 became 0, 1.5 became 1). Float inputs are passed to tf.tensor unchecked.
 * A tf.Tensor you made yourself cannot be checked: it is int32 already, so a wrap happened when
 * you created it (make it from {data, shape} to get the check). `predict` is synchronous (usable inside
 * tf.grad for layers models); a graph model with control flow (RNN loops, masking; manifest
 * `execution: "async"`) needs `predictAsync`. The backend is whatever TF.js is using (see
 * backend.js: useBackend). Mirrors facepack/export/keras_export.py (what writes such bundles).
 */
import * as tf from '@tensorflow/tfjs';

import { ensureBackend } from './backend.js';
import { loadManifest, loadModel, manifestEntry, needsAsync, runModel, runModelAsync } from './io.js';
import { INT32_MAX, INT32_MIN } from './layers/common.js';

function isSpec(value) {
  return value instanceof tf.Tensor || (value !== null && typeof value === 'object' && 'data' in value && 'shape' in value);
}

// typed arrays whose every value is an int32 already (no check needed)
const INT32_SAFE = [Int32Array, Int16Array, Int8Array, Uint16Array, Uint8Array, Uint8ClampedArray];

/**
 * `data` of an integer input as an Int32Array, checked in one pass: throws naming `label`, the first
 * value outside int32 or not an integer, and its flat index (nested arrays: row-major order).
 */
export function int32Data(data, label) {
  if (INT32_SAFE.some((T) => data instanceof T)) return data;
  const nested = Array.isArray(data) && Array.isArray(data[0]);
  const sized = ArrayBuffer.isView(data) || Array.isArray(data);
  // flat data: written straight into the result; nested arrays: collected, then copied once
  const out = sized && !nested ? new Int32Array(data.length) : [];
  let n = 0;
  const bad = (v, why) => {
    throw new Error(`input ${label}: value ${typeof v === 'bigint' ? `${v}n` : String(v)} at index ${n} ${why}; `
      + 'TF.js computes integer inputs as int32 (it has no int64), so it would be wrapped or truncated silently');
  };
  const put = (v) => {
    let x;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) bad(v, 'is not an integer');
      if (v < INT32_MIN || v > INT32_MAX) bad(v, 'is outside int32 [-2147483648, 2147483647]');
      x = v;
    } else if (typeof v === 'bigint') {
      if (v < BigInt(INT32_MIN) || v > BigInt(INT32_MAX)) bad(v, 'is outside int32 [-2147483648, 2147483647]');
      x = Number(v);
    } else if (typeof v === 'boolean') {
      x = v ? 1 : 0;
    } else {
      bad(v, `is not an integer (a ${v === null ? 'null' : typeof v})`);
    }
    out[n] = x;
    n += 1;
  };
  const walk = (a) => {
    if (Array.isArray(a)) for (const v of a) walk(v);
    else put(a);
  };
  if (nested) walk(data);
  else if (sized) for (const v of data) put(v);
  else put(data);  // a scalar
  return out instanceof Int32Array ? out : Int32Array.from(out);
}

/**
 * A tensor for one input value (a tensor is used as is; {data, shape, dtype?} is created, an
 * integer input's data checked by int32Data). `label` names the input in errors.
 */
function toTensor(value, spec, label) {
  if (value instanceof tf.Tensor) return value;
  if (!isSpec(value)) throw new Error(`an input must be a tf.Tensor or {data, shape, dtype?}, got ${typeof value}`);
  const dtype = value.dtype || (spec && spec.dtype) || 'float32';
  if (dtype === 'int32' || dtype === 'int64') return tf.tensor(int32Data(value.data, label), value.shape, 'int32');
  return tf.tensor(value.data, value.shape, dtype);
}

/** The inputs as tensors, keeping their structure (one, array, or object by name); `made` collects created tensors. */
function toTensors(input, specs, made) {
  const one = (v, spec, i) => {
    const t = toTensor(v, spec, spec && spec.name ? `"${spec.name}"` : `#${i}`);
    if (t !== v) made.push(t);
    return t;
  };
  if (isSpec(input)) return one(input, specs[0], 0);
  if (Array.isArray(input)) return input.map((v, i) => one(v, specs[i], i));
  if (input !== null && typeof input === 'object') {
    return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, one(v, specs.find((s) => s.name === k) || { name: k })]));
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
