/**
 * Reading a bundle: manifest.json and the TF.js models it lists, from a URL (browser, or
 * http(s) in Node) or from a folder path / file:// URL in Node (via fs; no tfjs-node needed).
 *
 * A manifest entry is {path, format, ...} with `path` relative to the bundle root, naming a
 * model.json (or the folder holding it) and `format` "layers-model" or "graph-model"
 * (written by facepack/export, mirrored here).
 */
import * as tf from '@tensorflow/tfjs';

import './layers/index.js'; // registers the custom layers/kernels bundles may need (layers/index.js)

export const MANIFEST_FILE = 'manifest.json';
const MODEL_FILE = 'model.json';

/** True when running under Node.js (not a browser, not a worker). */
export function isNode() {
  return typeof process !== 'undefined' && !!(process.versions && process.versions.node)
    && typeof window === 'undefined';
}

/** True when `location` should be fetched over the network (http(s), blob, data URLs; any in a browser). */
export function isFetchable(location) {
  return !isNode() || /^(https?|blob|data):/i.test(String(location));
}

/**
 * `relative` resolved against the folder/URL `base` (a trailing slash is implied on `base`).
 * @param {string|URL} base
 * @param {string} relative
 * @returns {string}
 */
export function joinLocation(base, relative) {
  const root = String(base).endsWith('/') ? String(base) : `${base}/`;
  if (isFetchable(root)) {
    const origin = typeof document !== 'undefined' ? document.baseURI
      : (typeof location !== 'undefined' ? location.href : undefined);
    return new URL(relative, new URL(root, origin)).href;
  }
  if (/^file:/i.test(root)) return new URL(relative, root).href;
  return root + relative;
}

/**
 * Node's fs and url modules, through process.getBuiltinModule (Node >= 20.16): no `node:` import
 * a bundler could see, so this module stays bundler-safe for browsers (issue 20).
 */
function nodeFs() {
  const builtin = typeof process !== 'undefined' && process.getBuiltinModule;
  if (typeof builtin !== 'function') {
    throw new Error(`reading local files needs Node >= 20.16 (process.getBuiltinModule); this is Node ${process.versions.node}`);
  }
  const url = builtin('url');
  return { fs: builtin('fs/promises'), toPath: (loc) => (/^file:/i.test(loc) ? url.fileURLToPath(loc) : loc) };
}

/** What to copy where, for a location a static server answered with its HTML page. */
let missingHint = (location) => `serve the file ${location} (copy the folder that holds it to where that URL points)`;

/**
 * Set the one-line advice readJson/readBinary add when a server answers a model file with HTML
 * (the npm package names its models/ folder and its copy command here).
 * @param {(location: string) => string} hint
 */
export function setMissingFileHint(hint) {
  missingHint = hint;
}

/** True when `bytes` look like an HTML page (what SPA servers and dev servers answer for a missing file). */
export function looksLikeHtml(bytes, contentType = '') {
  if (/text\/html/i.test(contentType)) return true;
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart().toLowerCase();
  return head.startsWith('<!doctype html') || head.startsWith('<html') || head.startsWith('<head') || head.startsWith('<script');
}

/**
 * Bytes of a file or URL. A server that answers with an HTML page (a missing file behind an SPA
 * fallback or a dev server) gets an error that says so and what to copy (setMissingFileHint).
 * @param {string} location
 * @returns {Promise<ArrayBuffer>}
 */
export async function readBinary(location) {
  if (isFetchable(location)) {
    let response;
    try {
      response = await fetch(location);
    } catch (err) { // no answer at all (nothing listening, DNS, CORS): say which URL and why
      const why = err.cause?.code || err.cause?.message || err.message;
      throw new Error(`cannot load ${location}: no answer from the server (${why}); check that it runs and that modelUrl is right`);
    }
    if (!response.ok) throw new Error(`cannot load ${location}: HTTP ${response.status} ${response.statusText}; ${missingHint(location)}`);
    const buffer = await response.arrayBuffer();
    if (looksLikeHtml(new Uint8Array(buffer), response.headers.get('content-type') || '')) {
      throw new Error(`cannot load ${location}: the server answered with an HTML page, not the file; ${missingHint(location)}`);
    }
    return buffer;
  }
  const { fs, toPath } = nodeFs();
  try {
    const buf = await fs.readFile(toPath(location));
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  } catch (err) {
    throw new Error(`cannot load ${location}: ${err.code || err.message}`);
  }
}

/** Parsed JSON of a file or URL; the error names the location. */
export async function readJson(location) {
  const text = new TextDecoder().decode(await readBinary(location));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${location}: not valid JSON (${err.message})`);
  }
}

/**
 * The bundle's manifest.json, with `spec` and `models` checked to be present.
 * @param {string} bundle folder path (Node) or URL of the bundle root
 */
export async function loadManifest(bundle) {
  const location = joinLocation(bundle, MANIFEST_FILE);
  const manifest = await readJson(location);
  for (const key of ['spec', 'models']) {
    if (!manifest || typeof manifest[key] !== 'object' || manifest[key] === null) {
      throw new Error(`${location}: expected an object under "${key}", got ${JSON.stringify(manifest && manifest[key])}`);
    }
  }
  return manifest;
}

/**
 * The manifest entry for model `name`; the error lists the names present.
 * @param {object} manifest
 * @param {string} name
 */
export function manifestEntry(manifest, name) {
  const entry = manifest.models[name];
  if (!entry) {
    throw new Error(`manifest.json has no model "${name}"; models present: ${Object.keys(manifest.models).join(', ') || 'none'}`);
  }
  return entry;
}

/** Location of an entry's model.json. */
export function modelJsonLocation(bundle, entry) {
  if (!entry || typeof entry.path !== 'string') {
    throw new Error(`manifest model entry needs a string "path", got ${JSON.stringify(entry)}`);
  }
  const path = entry.path.endsWith('.json') ? entry.path : `${entry.path.replace(/\/$/, '')}/${MODEL_FILE}`;
  return joinLocation(bundle, path);
}

/**
 * Model artifacts (topology + concatenated weights) of a model.json and its shards.
 * @param {string} modelJsonUrl
 * @param {Array<{path: string, bytes: number}>|null} [files] the manifest entry's files: a shard
 *   of another size is refused by name (a half-copied bundle), before TF.js' nameless shape error
 */
export async function loadArtifacts(modelJsonUrl, files = null) {
  const modelJson = await readJson(modelJsonUrl);
  const folder = modelJsonUrl.slice(0, modelJsonUrl.lastIndexOf('/') + 1);
  return tf.io.getModelArtifactsForJSON(modelJson, async (weightsManifest) => {
    const specs = tf.io.getWeightSpecs(weightsManifest);
    const paths = weightsManifest.flatMap((group) => group.paths);
    const buffers = await Promise.all(paths.map(async (p) => {
      const location = joinLocation(folder, p);
      const buffer = await readBinary(location);
      const expected = (Array.isArray(files) ? files : []).find((f) => f.path === p || f.path?.endsWith(`/${p}`))?.bytes;
      if (Number.isInteger(expected) && buffer.byteLength !== expected) {
        throw new Error(`${location} has ${buffer.byteLength} bytes, manifest.json says ${expected} (cut short or replaced: copy or build the bundle again)`);
      }
      return buffer;
    }));
    return [specs, tf.io.concatenateArrayBuffers(buffers)];
  });
}

/**
 * Load the model of one manifest entry; errors name the model (entry.path) and its model.json.
 * @param {string} bundle folder path (Node) or URL of the bundle root
 * @param {{path: string, format?: string}} entry
 * @returns {Promise<{model: tf.LayersModel|tf.GraphModel, format: string, entry: object}>}
 */
export async function loadModel(bundle, entry) {
  const url = modelJsonLocation(bundle, entry);
  try {
    const artifacts = await loadArtifacts(url, entry.files); // entry.files: the manifest's {path, bytes} of each file
    const format = entry.format || artifacts.format;
    const handler = tf.io.fromMemory(artifacts);
    if (format === 'layers-model') return { model: await tf.loadLayersModel(handler), format, entry };
    if (format === 'graph-model') return { model: await tf.loadGraphModel(handler), format, entry };
    throw new Error(`format must be "layers-model" or "graph-model", got ${JSON.stringify(format)}`);
  } catch (err) { // TF.js' own messages ("the tensor should have 288 values but has 122") name no model
    const named = err.message.includes(url.slice(0, url.lastIndexOf('/') + 1)) ? err.message : `${url}: ${err.message}`;
    const wrapped = new Error(`model "${entry.path}": ${named}`, { cause: err });
    if (err.code) wrapped.code = err.code;
    throw wrapped;
  }
}

/**
 * The inputs of a model as the array its TF.js model takes (layers) or as the map keyed by
 * its signature (graph models with `signature_key`s in the manifest entry, written by
 * facepack/export/keras_export.py). `inputs`: one tensor, an array in the manifest's input
 * order, or an object keyed by the manifest's input names; an unknown or missing name throws.
 * @param {{model: object, format: string, entry: object}} loaded
 * @param {tf.Tensor|tf.Tensor[]|Object<string, tf.Tensor>} inputs
 */
export function modelInputs(loaded, inputs) {
  const specs = (loaded.entry && loaded.entry.inputs) || [];
  let list;
  if (inputs instanceof tf.Tensor) list = [inputs];
  else if (Array.isArray(inputs)) list = inputs;
  else {
    const names = specs.map((s) => s.name);
    const unknown = Object.keys(inputs).filter((k) => !names.includes(k));
    if (unknown.length || names.length === 0) {
      throw new Error(`unknown input name(s) ${JSON.stringify(unknown)}; the model's inputs are ${JSON.stringify(names)}`);
    }
    const missing = names.filter((n) => !(n in inputs));
    if (missing.length) throw new Error(`missing input(s) ${JSON.stringify(missing)}; the model's inputs are ${JSON.stringify(names)}`);
    list = names.map((n) => inputs[n]);
  }
  if (specs.length && list.length !== specs.length) {
    throw new Error(`the model takes ${specs.length} input(s) (${specs.map((s) => s.name).join(', ')}), got ${list.length}`);
  }
  if (loaded.format === 'graph-model') {
    if (!specs.length || !specs.every((s) => s.signature_key)) return list.length === 1 ? list[0] : list;
    return Object.fromEntries(specs.map((s, i) => [s.signature_key, list[i]]));
  }
  const modelNames = loaded.model.inputNames || [];
  if (specs.length > 1 && specs.every((s) => modelNames.includes(s.name))) {
    // the tf_keras twin's input order is its own; the manifest's order is the Keras model's
    const byName = Object.fromEntries(specs.map((s, i) => [s.name, list[i]]));
    list = modelNames.map((n) => byName[n]);
  }
  return list.length === 1 ? list[0] : list;
}

/** Output signature keys of a graph model entry (its manifest order), or undefined. */
function outputKeys(loaded) {
  const specs = (loaded.entry && loaded.entry.outputs) || [];
  return specs.length && specs.every((s) => s.signature_key) ? specs.map((s) => s.signature_key) : undefined;
}

/** True when the manifest says the model needs runModelAsync (a graph model with control flow). */
export function needsAsync(loaded) {
  return !!(loaded.entry && loaded.entry.execution === 'async');
}

/**
 * Run a loaded model on `inputs` (see modelInputs), returning an array of tensors in the
 * manifest's output order (differentiable: usable inside tf.grad). Synchronous: a graph model
 * with control flow (RNN loops, masking) throws; use runModelAsync for those. Caller disposes.
 * @param {{model: object, format: string, entry: object}} loaded
 * @param {tf.Tensor|tf.Tensor[]|Object<string, tf.Tensor>} inputs
 * @returns {tf.Tensor[]}
 */
export function runModel(loaded, inputs) {
  const x = modelInputs(loaded, inputs);
  if (loaded.format === 'layers-model') {
    const out = loaded.model.apply(x, { training: false });
    return Array.isArray(out) ? out : [out];
  }
  if (needsAsync(loaded)) {
    throw new Error(`model "${loaded.entry.path}" has control flow (manifest execution "async"): use predictAsync / runModelAsync`);
  }
  const out = loaded.model.execute(x, outputKeys(loaded));
  return Array.isArray(out) ? out : [out];
}

/**
 * runModel for every model, graph models with control flow included (GraphModel.executeAsync).
 * Not differentiable through executeAsync; intermediate tensors are released. Caller disposes.
 * A model without control flow (layers models; graph models whose manifest says execution
 * "sync") takes the synchronous path, same outputs: executeAsync on such a graph printed TF.js'
 * "This model execution did not contain any nodes with control flow ..." on every call.
 * @returns {Promise<tf.Tensor[]>}
 */
export async function runModelAsync(loaded, inputs) {
  if (loaded.format === 'layers-model') return tf.tidy(() => runModel(loaded, inputs));
  if (loaded.entry && loaded.entry.execution === 'sync') {
    try {
      return tf.tidy(() => runModel(loaded, inputs));
    } catch (err) { // a dynamic op the manifest did not flag: TF.js says "Please use model.executeAsync()"
      if (!/executeAsync/.test(err.message)) throw err;
    }
  }
  const out = await loaded.model.executeAsync(modelInputs(loaded, inputs), outputKeys(loaded));
  return Array.isArray(out) ? out : [out];
}
