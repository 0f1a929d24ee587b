/**
 * Choosing the TF.js backend: 'webgl' | 'wasm' | 'cpu', or 'auto'.
 *
 * - A backend asked for by name starts or the call throws (err.code 'backend-unavailable',
 *   with the reason, e.g. the server answered the .wasm URL with HTML); it never changes silently.
 * - 'auto' picks by speed: in Node WASM, then CPU when WASM cannot start; in a browser WASM when
 *   WebGL is missing or software-rendered (SwiftShader, llvmpipe: its shader compiles take 15-20 s
 *   to a first result, WASM well under 1 s), else the faster of WebGL and WASM on a measured
 *   convolution probe; CPU when nothing else starts. selectBackend says which and why.
 * - The WASM backend's file location (setWasmPaths) is set before anything here can start that
 *   backend (nothing calls tf.findBackend/tf.ready first: both would start it with the default
 *   location). Default location: the folder of '@tensorflow/tfjs-backend-wasm' as this runtime
 *   resolves it (Node: node_modules/@tensorflow/tfjs-backend-wasm/dist/; a page with an import
 *   map: the mapped folder). Bundled apps pass wasmPaths (README "Browser and bundlers").
 * - A WASM start that failed (a .wasm URL answering 404, a wrong wasmPaths, a file that is not
 *   WebAssembly) can be retried without a reload: TF.js 4.22 refuses every setWasmPaths call after
 *   such a failure ('The WASM backend was already initialized'), so the location is handed to it
 *   once as a file map this module keeps and updates in place (configureWasm), and the Workers a
 *   failed start of the threaded build leaves behind are ended (withFailedWorkersEnded).
 * - WASM threads (wasmThreads): TF.js sizes its XNNPACK pool at navigator.hardwareConcurrency / 2
 *   (tfjs-backend-wasm src/cc/backend.cc `num_cores`, read once when the module starts; its
 *   setThreadsCount(n) is capped by it), so a 2-core machine gets 1 thread. 'auto' keeps that
 *   count; a number n gets n threads by showing TF.js's module, while it starts, a
 *   hardwareConcurrency of 2n (restored right after). Why 'auto' does not lift the 2-core case to
 *   2 threads: on this 2-core box 2 threads made a warm analyze 1.4x faster when the machine was
 *   quiet and 2.3-4x slower while another process kept both cores busy (the pool's threads wait
 *   for each other at every op; README, "The npm package"). Threads need the threaded build: a cross-origin
 *   isolated page (COOP/COEP); Node and other pages run 1 thread whatever is asked.
 * No `node:` imports: this module is bundled for browsers (issue 20).
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

import { isNode, looksLikeHtml } from './io.js';
import { MAX_WASM_THREADS, checkWasmThreads } from './options.js';

export const BACKENDS = ['webgl', 'wasm', 'cpu'];
export const AUTO = 'auto';
/** WebGL renderers that run on the CPU (shader compiles dominate): 'auto' prefers WASM over them. */
export const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render driver|mesa offscreen/i;
/** The probe 'auto' times on WebGL and WASM in a browser with hardware WebGL: one 3x3 convolution. */
const PROBE = { image: [1, 64, 64, 16], filter: [3, 3, 16, 32], runs: 3 };
/**
 * The WASM backend's package, resolved at run time (defaultWasmPaths). Named by a constant, not a
 * literal, so bundlers leave the import.meta.resolve call alone (webpack 5 otherwise emits the
 * package's Node build as a stray 436 KiB asset).
 */
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
export { MAX_WASM_THREADS };

function checkName(requested) {
  if (requested !== AUTO && !BACKENDS.includes(requested)) {
    throw new Error(`backend must be one of ${[...BACKENDS, AUTO].join(', ')}, got ${JSON.stringify(requested)}`);
  }
}

/**
 * WASM threads a start with `requested` gets (see the module comment): 'auto' -> TF.js's own
 * max(1, floor(cores / 2)), a number -> that number; at most MAX_WASM_THREADS.
 * @param {'auto'|number} requested
 * @param {number|undefined} cores navigator.hardwareConcurrency (undefined: 1)
 * @returns {number}
 * @throws {Error} requested is neither 'auto' nor an integer from 1 to MAX_WASM_THREADS
 */
export function wasmThreadCount(requested, cores) {
  checkWasmThreads(requested, 'wasmThreads');
  if (requested !== AUTO) return requested;
  const n = Number.isInteger(cores) && cores >= 1 ? cores : 1;
  return Math.min(MAX_WASM_THREADS, Math.max(1, Math.floor(n / 2)));
}

/**
 * Run `start` (which starts the WASM backend) with TF.js's module seeing a hardwareConcurrency of
 * 2 x threads, so that its pool has `threads` threads; navigator is as it was afterwards.
 * Browser only (Node's WASM backend has no threads).
 */
async function withWasmThreads(threads, start) {
  const nav = globalThis.navigator;
  if (isNode() || !nav) return start();
  const own = Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency');
  let overridden = false;
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
    overridden = true;
  } catch (err) {
    // A navigator that cannot take the property: TF.js's own count.
  }
  if (overridden) setThreadsCount(threads);
  try {
    return await start();
  } finally {
    if (overridden) {
      delete nav.hardwareConcurrency;
      if (own) Object.defineProperty(nav, 'hardwareConcurrency', own);
    }
  }
}

// The threaded build's pthread pool (tf-backend-wasm.fesm.js, PThread.initMainThread:
// `var pthreadPoolSize=8; while (pthreadPoolSize--) PThread.allocateUnusedWorker()`).
const TFJS_WASM_POOL_SIZE = 8;

/**
 * Run `start` (which starts the WASM backend) and, when it fails (resolves false or throws), end
 * the Workers it created. Why: TF.js's threaded build (cross-origin isolated pages) creates its
 * pool of 8 pthread Workers (blob: URLs) before it fetches the .wasm, and a failed start hands them
 * to nothing: each failed start left 8 idle Workers behind (10 failed starts in headless Chromium:
 * 80 Workers, +39.5 MB), which a retry (configureWasm) would otherwise pile up. Only blob: Workers
 * created while the start runs, up to the pool's 8, are watched (selectBackend runs one start at a
 * time; the global Worker is replaced only until the pool exists).
 * Browser only (Node's WASM backend has no threads).
 */
async function withFailedWorkersEnded(start) {
  const Original = globalThis.Worker;
  if (isNode() || typeof Original !== 'function') return start();
  const created = [];
  class Watched extends Original {
    constructor(url, ...rest) {
      super(url, ...rest);
      if (String(url).startsWith('blob:')) created.push(this);
      // The pool is made in one synchronous loop when the module starts, before the .wasm fetch:
      // the global goes back as soon as it is complete, so an app's own Worker made while the
      // .wasm downloads is never watched.
      if (created.length >= TFJS_WASM_POOL_SIZE && globalThis.Worker === Watched) globalThis.Worker = Original;
    }
  }
  let replaced = false;
  try {
    globalThis.Worker = Watched;
    replaced = globalThis.Worker === Watched;
  } catch (err) {
    // A global that cannot take it: nothing watched.
  }
  let ok = false;
  try {
    ok = await start();
    return ok;
  } finally {
    if (replaced && globalThis.Worker === Watched) globalThis.Worker = Original;
    if (!ok) for (const worker of created) worker.terminate();
  }
}

const threadWarnings = new Set();

/** Say once per reason when a numeric wasmThreads did not become the pool's size (console.warn). */
function warnThreads(requested, alreadyStarted) {
  const got = wasmThreadsInUse();
  const cores = globalThis.navigator?.hardwareConcurrency;
  if (got === requested && Number.isInteger(cores) && got > cores && !threadWarnings.has('cores')) {
    threadWarnings.add('cores');
    console.warn(`facepack: wasmThreads ${got} is more than this machine's ${cores} logical cores: `
      + 'the threads wait for each other at every op, so expect it to be slower, not faster');
  }
  if (got === null || got === requested) return;
  const why = isNode() ? "Node's WASM backend has no threads"
    : !globalThis.crossOriginIsolated ? 'this page is not cross-origin isolated (COOP/COEP headers), so TF.js loads its single-threaded build'
      : alreadyStarted ? `the WASM backend had already started with ${got} (the count is fixed when it starts)`
        : `the pool has ${got}`;
  if (threadWarnings.has(why) || typeof console === 'undefined') return;
  threadWarnings.add(why);
  console.warn(`facepack: wasmThreads ${requested} not applied: ${why}`);
}

/** Threads of the running WASM backend's pool (1 without the threaded build), or null when WASM is not in use. */
export function wasmThreadsInUse() {
  if (tf.getBackend() !== 'wasm') return null;
  try {
    return getThreadsCount();
  } catch (err) {
    return null;
  }
}

/**
 * The WebGL renderer string of this browser (UNMASKED_RENDERER_WEBGL where exposed), or null
 * when there is no WebGL (Node, a worker without OffscreenCanvas, a GPU-less browser).
 * @returns {string|null}
 */
export function webglRenderer() {
  if (isNode()) return null;
  try {
    const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(1, 1)
      : (typeof document !== 'undefined' ? document.createElement('canvas') : null);
    const gl = canvas && (canvas.getContext('webgl2') || canvas.getContext('webgl'));
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    const lose = gl.getExtension('WEBGL_lose_context');
    if (lose) lose.loseContext();
    return renderer;
  } catch (err) {
    return null;
  }
}

/**
 * Backends 'auto' tries, in order, before any measurement, and why.
 * @param {{node: boolean, renderer: string|null}} env
 * @returns {{order: string[], measure: boolean, reason: string}} measure: time WebGL against WASM
 */
export function autoPlan({ node, renderer }) {
  if (node) return { order: ['wasm', 'cpu'], measure: false, reason: 'Node: WASM (no WebGL in Node)' };
  if (renderer === null) return { order: ['wasm', 'cpu'], measure: false, reason: 'no WebGL in this browser' };
  if (SOFTWARE_RENDERER.test(renderer)) {
    return { order: ['wasm', 'cpu'], measure: false, reason: `WebGL is software-rendered here (${renderer}), slower than WASM` };
  }
  return { order: ['webgl', 'wasm', 'cpu'], measure: true, reason: `hardware WebGL (${renderer})` };
}

/**
 * Backends to try, in order, for a requested name: exactly that one, or autoPlan's order.
 * @param {string} requested one of BACKENDS or 'auto'
 * @param {boolean} node running under Node
 * @param {string|null} [renderer] webglRenderer()
 * @returns {string[]}
 */
export function backendOrder(requested, node, renderer = null) {
  checkName(requested);
  return requested === AUTO ? autoPlan({ node, renderer }).order : [requested];
}

/** Folder (with trailing slash) holding the WASM backend's .wasm files, or null if unknown. */
export async function defaultWasmPaths() {
  try {
    // Synchronous in browsers and Node >= 20.6; awaited for runtimes where it is still async.
    // A bundle without an import map cannot resolve it (then null: pass wasmPaths).
    const resolved = await import.meta.resolve(WASM_PACKAGE);
    if (typeof resolved !== 'string') return null;
    const folder = new URL('.', resolved).href;
    if (isNode() && folder.startsWith('file:')) {
      return `${process.getBuiltinModule('url').fileURLToPath(folder)}`.replace(/\/?$/, '/');
    }
    return folder;
  } catch (err) {
    return null;
  }
}

/** True once the WASM backend has started (or is starting): its file location is then fixed. */
function wasmStarted() {
  return Object.prototype.hasOwnProperty.call(tf.engine().registry, 'wasm');
}

/**
 * The {file name: URL} map this module handed to TF.js's setWasmPaths, or null before it has.
 * Why one map, updated in place, rather than a setWasmPaths call per start (tfjs-backend-wasm
 * 4.22, src/backend_wasm.ts): a start that aborts (the .wasm answers 404 or is not WebAssembly:
 * Emscripten's abort() calls factoryConfig.onAbort) sets the module-level `initAborted = true`,
 * which only a later successful start clears, and setWasmPaths / setWasmPath throw 'The WASM
 * backend was already initialized' while it is set. The registered backend itself can start again
 * (the engine keeps its factory and drops the failed instance), and each start reads the location
 * anew (getPathToWasmBinary reads `wasmFileMap[file]`, the very object given to setWasmPaths). A
 * start that fails without an abort (a network error: the fetch rejects) leaves initAborted alone.
 */
let wasmFileMap = null;

/**
 * wasmPaths as a full {file name: URL} map: a prefix gives prefix + file name (what TF.js does
 * with a prefix), a map must name all three files (TF.js's own check, made here before TF.js
 * keeps the object).
 */
function wasmFileEntries(paths) {
  if (typeof paths === 'string') return Object.fromEntries(WASM_FILES.map((f) => [f, paths + f]));
  const missing = WASM_FILES.filter((f) => paths[f] == null);
  if (missing.length) {
    throw new Error(`wasmPaths: a map must give a URL for each of ${WASM_FILES.join(', ')}; `
      + `missing ${missing.join(', ')} (or pass the folder that holds them as a string)`);
  }
  return Object.fromEntries(WASM_FILES.map((f) => [f, paths[f]]));
}

/**
 * Set the WASM file location, before the WASM backend starts. Returns the location used
 * (prefix or map) or null (the backend's own default). Nothing here starts the backend.
 * Can be called again after a failed start (see wasmFileMap): the next start uses the new location.
 * @param {string|object|null} wasmPaths prefix folder/URL, or {fileName: url} map, or null for the default
 */
export async function configureWasm(wasmPaths) {
  if (wasmStarted()) return wasmPaths;
  const paths = wasmPaths ?? await defaultWasmPaths();
  if (!paths) {
    // TF.js's own default (next to its script): forget a location given to an earlier start.
    if (wasmFileMap) for (const f of Object.keys(wasmFileMap)) delete wasmFileMap[f];
    return paths;
  }
  const entries = wasmFileEntries(paths);
  if (wasmFileMap) {
    Object.assign(wasmFileMap, entries); // TF.js holds this object: its next start reads these
    try {
      setWasmPaths(wasmFileMap); // again, in case the app gave TF.js another location since
    } catch (err) {
      // After a failed start: TF.js refuses the call but still holds wasmFileMap.
    }
    return paths;
  }
  try {
    setWasmPaths(entries);
  } catch (err) {
    // A WASM start that this module gave no location failed before (the app's own
    // tf.setBackend('wasm')): TF.js takes no location until a start succeeds.
    throw new Error(`wasmPaths: ${err.message} (a WASM start that facepack gave no location failed earlier `
      + 'in this page or process, and TF.js 4.22 takes no new location after that: reload the page (restart the '
      + "process), or leave starting the WASM backend to facepack; backend 'auto' falls back to CPU meanwhile)");
  }
  wasmFileMap = entries;
  return paths;
}

/** Why the WASM backend did not start: what its .wasm URL answers (browser), in one line. */
async function diagnoseWasm(paths) {
  if (isNode()) return `its .wasm files were not found or did not load from ${JSON.stringify(paths)}`;
  const urls = paths && typeof paths === 'object' ? Object.values(paths)
    : WASM_FILES.map((f) => new URL(f, new URL(paths || './', globalThis.location?.href)).href);
  for (const url of urls) {
    try {
      const response = await fetch(url);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const wasm = bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
      if (!response.ok || !wasm) {
        const what = looksLikeHtml(bytes, response.headers.get('content-type') || '') ? 'an HTML page'
          : `HTTP ${response.status} ${response.headers.get('content-type') || ''}`.trim();
        return `the server answered ${url} with ${what}, not WebAssembly: copy the .wasm files of `
          + `node_modules/@tensorflow/tfjs-backend-wasm/dist/ to one served folder and pass its URL as wasmPaths`;
      }
    } catch (err) {
      return `cannot fetch ${url} (${err.message}); pass wasmPaths: the URL of a folder serving the .wasm files`;
    }
  }
  return `it failed to initialise with the .wasm files at ${JSON.stringify(paths)} (see the console)`;
}

/** Start one backend; returns null or the one-line reason it failed. */
async function tryStart(name, wasmPaths, wasmThreads = AUTO) {
  let paths = null;
  try {
    let start = async () => {
      // (Not WEBGL_USE_SHAPES_UNIFORMS: it cuts WebGL shader compiles ~3x here but breaks the beauty
      // and keypoint models' outputs in TF.js 4.22 - tests/test_parity_browser.py catches it.)
      if (!(await tf.setBackend(name))) return false;
      await tf.ready();
      return true;
    };
    let started = false;
    if (name === 'wasm') {
      paths = await configureWasm(wasmPaths);
      started = wasmStarted();
      if (!started && wasmThreads !== AUTO) {
        const plain = start;
        start = () => withWasmThreads(wasmThreadCount(wasmThreads), plain);
      }
      if (!started) {
        const unwatched = start;
        start = () => withFailedWorkersEnded(unwatched);
      }
    }
    if (await start()) {
      if (name === 'wasm' && wasmThreads !== AUTO) warnThreads(wasmThreads, started);
      return null;
    }
  } catch (err) {
    return err.message;
  }
  if (name === 'wasm') return diagnoseWasm(paths);
  if (name === 'webgl') return 'WebGL is not available here';
  return 'failed to initialise';
}

/** Median milliseconds of PROBE on the current backend (after one untimed run: compiles, uploads). */
async function probeMs() {
  const x = tf.randomNormal(PROBE.image);
  const w = tf.randomNormal(PROBE.filter);
  const once = async () => {
    const y = tf.relu(tf.conv2d(x, w, 1, 'same'));
    await y.data();
    y.dispose();
  };
  try {
    await once();
    const times = [];
    for (let i = 0; i < PROBE.runs; i++) {
      const t = performance.now();
      await once(); // eslint-disable-line no-await-in-loop
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  } finally {
    x.dispose();
    w.dispose();
  }
}

let selecting = Promise.resolve(); // selectBackend calls run one after another (see selectBackend)

/**
 * Switch TF.js to a backend and say why it is the one (see the module comment).
 * @param {string} requested 'webgl' | 'wasm' | 'cpu' | 'auto'
 * @param {{wasmPaths?: string|object|null, wasmThreads?: 'auto'|number}} [opts] wasmThreads: see
 *   wasmThreadCount; applies when this call starts the WASM backend (a started one keeps its pool)
 * @returns {Promise<{backend: string, requested: string, reason: string, failures: string[]}>}
 * @throws {Error} code 'backend-unavailable': the requested backend (or, for 'auto', every one) did not start;
 *   a wasmThreads that is neither 'auto' nor an integer from 1 to MAX_WASM_THREADS
 */
export async function selectBackend(requested, opts = {}) {
  // One at a time: TF.js cannot start a backend twice at once (two analyzers created together both
  // failed on WASM), and withWasmThreads' navigator override must not overlap another's.
  const turn = selecting.then(() => selectBackendNow(requested, opts));
  selecting = turn.catch(() => {});
  return turn;
}

async function selectBackendNow(requested, { wasmPaths = null, wasmThreads = AUTO } = {}) {
  checkName(requested);
  checkWasmThreads(wasmThreads, 'wasmThreads'); // refuse a bad value before anything starts
  if (requested !== AUTO) {
    const failure = await tryStart(requested, wasmPaths, wasmThreads);
    if (failure) {
      const err = new Error(`backend "${requested}" could not start: ${failure} (backend: 'auto' picks one that works)`);
      err.code = 'backend-unavailable';
      throw err;
    }
    return { backend: tf.getBackend(), requested, reason: 'asked for by name', failures: [] };
  }
  const plan = autoPlan({ node: isNode(), renderer: webglRenderer() });
  const failures = [];
  const started = [];
  for (const name of plan.order) {
    const failure = await tryStart(name, wasmPaths, wasmThreads); // eslint-disable-line no-await-in-loop
    if (failure) {
      failures.push(`${name}: ${failure}`);
      continue;
    }
    if (!plan.measure || name === 'cpu') {
      started.push({ name, ms: null });
      break;
    }
    started.push({ name, ms: await probeMs() }); // eslint-disable-line no-await-in-loop
    if (started.length === 2) break; // webgl and wasm both measured
  }
  if (!started.length) {
    const err = new Error(`no TF.js backend could start (${failures.join('; ')})`);
    err.code = 'backend-unavailable';
    throw err;
  }
  const best = started.reduce((a, b) => (a.ms !== null && b.ms !== null && b.ms < a.ms ? b : a));
  if (tf.getBackend() !== best.name) await tf.setBackend(best.name);
  const measured = started.filter((s) => s.ms !== null).map((s) => `${s.name} ${s.ms.toFixed(1)} ms`).join(', ');
  const reason = [plan.reason, measured && `conv probe: ${measured}`, ...failures.map((f) => `skipped ${f}`)]
    .filter(Boolean).join('; ');
  if (failures.length && typeof console !== 'undefined') console.warn(`facepack backend 'auto' -> ${best.name}: ${reason}`);
  return { backend: tf.getBackend(), requested, reason, failures };
}

/**
 * Switch TF.js to the requested backend (see selectBackend); resolves to the name in use.
 * @param {string} requested
 * @param {{wasmPaths?: string|object|null}} [opts]
 * @returns {Promise<string>}
 */
export async function useBackend(requested, opts = {}) {
  return (await selectBackend(requested, opts)).backend;
}

/**
 * The backend in use, or selectBackend('auto') when none has started yet (loading a model
 * before choosing one would otherwise start TF.js's default without the WASM file location).
 * @param {{wasmPaths?: string|object|null}} [opts]
 * @returns {Promise<string>}
 */
export async function ensureBackend(opts = {}) {
  const engine = tf.engine();
  if (engine.backendName && Object.prototype.hasOwnProperty.call(engine.registry, engine.backendName)) return engine.backendName;
  return useBackend(AUTO, opts);
}
