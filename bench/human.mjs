/**
 * @vladmandic/human (installed in bench/peer/; its npm package ships its models) in Node on the
 * WASM backend (dist/human.node-wasm.js: tfjs-core + tfjs-backend-wasm, no tfjs-node): face
 * detection (BlazeFace) + face mesh, everything else off, caching off (every call runs the models).
 *
 *   node bench/human.mjs JOB.json  ->  one JSON document on stdout
 *
 * JOB: {repeat, photos: [{name, path, width, height}], warmup?} (raw RGB, tests/jsharness.py:write_raw;
 * warmup: untimed passes over every photo before the timed calls, default 0)
 * Output: {versions, load_ms, photos: [{name, ms: [...], cpu_ms: [...], faces: [{box, score}]}]}; ms
 * (wall) and cpu_ms (this process's CPU time) per call,
 * the first included (the caller takes the median of the later ones).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PEER = join(here, 'peer', 'node_modules', '@vladmandic', 'human');
const H = require(join(PEER, 'dist', 'human.node-wasm.js'));
const wasm = require('@tensorflow/tfjs-backend-wasm');

const MAX_FACES = 100; // its default is 1
const CONFIG = {
  backend: 'wasm',
  wasmPath: `${join(here, '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist')}/`,
  modelBasePath: `${pathToFileURL(join(PEER, 'models')).href}/`,
  cacheSensitivity: 0,
  debug: false,
  async: false,
  warmup: 'none',
  filter: { enabled: false },
  face: {
    enabled: true,
    detector: { rotation: false, maxDetected: MAX_FACES, skipFrames: 0, skipTime: 0, return: false },
    mesh: { enabled: true },
    attention: { enabled: false },
    iris: { enabled: false },
    emotion: { enabled: false },
    description: { enabled: false },
    antispoof: { enabled: false },
    liveness: { enabled: false },
  },
  body: { enabled: false },
  hand: { enabled: false },
  object: { enabled: false },
  gesture: { enabled: false },
  segmentation: { enabled: false },
};

// Node's WASM build has no file:// loader (tfjs-node would bring one): read the bundle's files.
function fileLoader(url) {
  const path = fileURLToPath(url);
  return {
    async load() {
      const model = JSON.parse(readFileSync(path, 'utf8'));
      const manifest = model.weightsManifest ?? [];
      const buffers = manifest.flatMap((group) => group.paths.map((p) => readFileSync(join(dirname(path), p))));
      const weightData = Buffer.concat(buffers);
      return {
        modelTopology: model.modelTopology, format: model.format, generatedBy: model.generatedBy,
        convertedBy: model.convertedBy, signature: model.signature, userDefinedMetadata: model.userDefinedMetadata,
        weightSpecs: manifest.flatMap((group) => group.weights),
        weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
      };
    },
  };
}

console.log = (...args) => console.error(...args); // the library logs; stdout carries the JSON only
const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const human = new H.Human(CONFIG);
human.tf.io.registerLoadRouter((url) => (typeof url === 'string' && url.startsWith('file://') ? fileLoader(url) : null));
const t0 = performance.now();
await human.load();
await human.tf.ready();
const loadMs = performance.now() - t0;
const out = { versions: { human: human.version, tfjs: human.tf.version_core, backend: human.tf.getBackend(),
                          threads: wasm.getThreadsCount() }, load_ms: loadMs, photos: [] };
const tensorOf = (item) => human.tf.tensor4d(Float32Array.from(new Uint8Array(readFileSync(item.path))),
  [1, item.height, item.width, 3], 'float32');
for (let w = 0; w < (job.warmup ?? 0); w++) {
  for (const item of job.photos) {
    const t = tensorOf(item);
    await human.detect(t); // eslint-disable-line no-await-in-loop
    t.dispose();
  }
}
for (const item of job.photos) {
  const data = new Uint8Array(readFileSync(item.path));
  const t = human.tf.tensor4d(Float32Array.from(data), [1, item.height, item.width, 3], 'float32');
  const ms = [];
  const cpuMs = []; // this process's CPU ms per call (a loaded machine inflates them less than the wall clock)
  let faces = [];
  for (let i = 0; i < job.repeat; i++) {
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const res = await human.detect(t);
    ms.push(performance.now() - start);
    const cpu = process.cpuUsage(cpu0);
    cpuMs.push((cpu.user + cpu.system) / 1000);
    if (res.error) throw new Error(`human.detect(${item.name}): ${res.error}`);
    faces = res.face.map((f) => ({ box: { x: f.box[0], y: f.box[1], width: f.box[2], height: f.box[3] }, score: f.boxScore ?? f.score }));
  }
  t.dispose();
  out.photos.push({ name: item.name, ms, cpu_ms: cpuMs, faces });
}
process.stdout.write(JSON.stringify(out));
