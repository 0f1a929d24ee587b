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

async function nodeFs() {
  const [fs, url] = await Promise.all([import('node:fs/promises'), import('node:url')]);
  return { fs, toPath: (loc) => (/^file:/i.test(loc) ? url.fileURLToPath(loc) : loc) };
}

/**
 * Bytes of a file or URL.
 * @param {string} location
 * @returns {Promise<ArrayBuffer>}
 */
export async function readBinary(location) {
  if (isFetchable(location)) {
    const response = await fetch(location);
    if (!response.ok) throw new Error(`cannot load ${location}: HTTP ${response.status} ${response.statusText}`);
    return response.arrayBuffer();
  }
  const { fs, toPath } = await nodeFs();
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
 */
export async function loadArtifacts(modelJsonUrl) {
  const modelJson = await readJson(modelJsonUrl);
  const folder = modelJsonUrl.slice(0, modelJsonUrl.lastIndexOf('/') + 1);
  return tf.io.getModelArtifactsForJSON(modelJson, async (weightsManifest) => {
    const specs = tf.io.getWeightSpecs(weightsManifest);
    const paths = weightsManifest.flatMap((group) => group.paths);
    const buffers = await Promise.all(paths.map((p) => readBinary(joinLocation(folder, p))));
    return [specs, tf.io.concatenateArrayBuffers(buffers)];
  });
}

/**
 * Load the model of one manifest entry.
 * @param {string} bundle folder path (Node) or URL of the bundle root
 * @param {{path: string, format?: string}} entry
 * @returns {Promise<{model: tf.LayersModel|tf.GraphModel, format: string, entry: object}>}
 */
export async function loadModel(bundle, entry) {
  const url = modelJsonLocation(bundle, entry);
  const artifacts = await loadArtifacts(url);
  const format = entry.format || artifacts.format;
  const handler = tf.io.fromMemory(artifacts);
  if (format === 'layers-model') return { model: await tf.loadLayersModel(handler), format, entry };
  if (format === 'graph-model') return { model: await tf.loadGraphModel(handler), format, entry };
  throw new Error(`${url}: format must be "layers-model" or "graph-model", got ${JSON.stringify(format)}`);
}

/**
 * Run a loaded model on `inputs`, returning an array of tensors in the model's output order
 * (differentiable: usable inside tf.grad). Caller disposes.
 * @param {{model: object, format: string}} loaded
 * @param {tf.Tensor} inputs
 * @returns {tf.Tensor[]}
 */
export function runModel(loaded, inputs) {
  const out = loaded.format === 'layers-model' ? loaded.model.apply(inputs, { training: false })
    : loaded.model.execute(inputs);
  return Array.isArray(out) ? out : [out];
}
