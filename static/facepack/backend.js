/**
 * Choosing the TF.js backend: 'webgl' | 'wasm' | 'cpu', or 'auto' (the first of those that
 * initialises here: webgl, wasm, cpu in a browser; wasm, cpu in Node).
 *
 * The WASM backend needs to know where its .wasm files are (setWasmPaths, before it starts).
 * Default: the folder of the '@tensorflow/tfjs-backend-wasm' module as this runtime resolves
 * it - node_modules/@tensorflow/tfjs-backend-wasm/dist/ in Node, and in a browser the folder
 * the import map points the specifier to (so vendor the .wasm files next to the fesm bundle,
 * or pass wasmPaths).
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

import { isNode } from './io.js';

export const BACKENDS = ['webgl', 'wasm', 'cpu'];
export const AUTO = 'auto';

/**
 * Backends to try, in order, for a requested name.
 * @param {string} requested one of BACKENDS or 'auto'
 * @param {boolean} node running under Node
 * @returns {string[]}
 */
export function backendOrder(requested, node) {
  if (requested === AUTO) return node ? ['wasm', 'cpu'] : ['webgl', 'wasm', 'cpu'];
  if (!BACKENDS.includes(requested)) {
    throw new Error(`backend must be one of ${[...BACKENDS, AUTO].join(', ')}, got ${JSON.stringify(requested)}`);
  }
  return node ? [requested, ...['wasm', 'cpu'].filter((b) => b !== requested)]
    : [requested, ...BACKENDS.filter((b) => b !== requested)];
}

/** Folder (with trailing slash) holding the WASM backend's .wasm files, or null if unknown. */
export async function defaultWasmPaths() {
  let resolved = null;
  try {
    // Synchronous in browsers and Node >= 20.6; awaited for runtimes where it is still async.
    resolved = await import.meta.resolve('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    return null;
  }
  if (typeof resolved !== 'string') return null;
  const folder = new URL('.', resolved).href;
  if (isNode() && folder.startsWith('file:')) {
    const url = await import('node:url');
    return `${url.fileURLToPath(folder)}`.replace(/\/?$/, '/');
  }
  return folder;
}

/**
 * Set the WASM file location unless the WASM backend has already started (then it is too late
 * and the location it started with stays).
 * @param {string|object|null} wasmPaths prefix folder/URL, or {fileName: url} map, or null for the default
 */
export async function configureWasm(wasmPaths) {
  if (tf.findBackend('wasm')) return;
  const paths = wasmPaths ?? await defaultWasmPaths();
  if (paths) setWasmPaths(paths);
}

/**
 * Switch TF.js to the requested backend, falling back in backendOrder; returns the name in use.
 * @param {string} requested
 * @param {{wasmPaths?: string|object|null}} [opts]
 * @returns {Promise<string>}
 */
export async function useBackend(requested, { wasmPaths = null } = {}) {
  const order = backendOrder(requested, isNode());
  const failures = [];
  for (const name of order) {
    if (name === 'wasm') await configureWasm(wasmPaths);
    // (Not WEBGL_USE_SHAPES_UNIFORMS: it cuts WebGL shader compiles ~3x here but breaks the beauty
    // and keypoint models' outputs in TF.js 4.22 - tests/test_parity_browser.py catches it.)
    let ok = false;
    try {
      ok = await tf.setBackend(name);
    } catch (err) {
      failures.push(`${name}: ${err.message}`);
      continue;
    }
    if (ok) {
      await tf.ready();
      return tf.getBackend();
    }
    failures.push(`${name}: failed to initialise`);
  }
  throw new Error(`no TF.js backend could start for ${JSON.stringify(requested)} (${failures.join('; ')})`);
}
