// Module script of the WebGL page of tests/test_js_layers.py: window.runLayers(job) loads each
// model (layers or graph model.json URL) through the library's io.js, which registers
// static/facepack/layers/, runs it on job.backend and returns the outputs; then sets window.layersReady.
// job: {backend, models: [{name, url, inputs: [{data: number[], shape}]} | {name, op: 'erfc', inputs}]}
import * as tf from '@tensorflow/tfjs';

import { useBackend } from '/facepack/backend.js';
import { loadArtifacts } from '/facepack/io.js';
import { erfc } from '/facepack/layers/index.js';

const OPS = { erfc };

async function loadAny(url) {
  const artifacts = await loadArtifacts(url);
  const handler = tf.io.fromMemory(artifacts);
  return artifacts.format === 'graph-model' ? tf.loadGraphModel(handler) : tf.loadLayersModel(handler);
}

window.runLayers = async (job) => {
  const backend = await useBackend(job.backend);
  const results = [];
  for (const spec of job.models) {
    try {
      const model = spec.op ? { predict: (x) => OPS[spec.op](x), dispose() {} } : await loadAny(spec.url);
      const xs = spec.inputs.map((i) => tf.tensor(i.data, i.shape, 'float32'));
      const x = xs.length === 1 ? xs[0] : xs;
      // as the library runs a layers model (io.js runModel: apply)
      const out = model instanceof tf.LayersModel ? model.apply(x, { training: false }) : model.predict(x);
      const outs = Array.isArray(out) ? out : [out];
      const outputs = [];
      for (const t of outs) outputs.push({ shape: t.shape, data: Array.from(await t.data()) });
      tf.dispose([...outs, ...xs]);
      model.dispose();
      results.push({ name: spec.name, outputs });
    } catch (err) {
      results.push({ name: spec.name, error: String(err && err.message ? err.message : err).split('\n')[0] });
    }
  }
  return { backend, results };
};
window.layersReady = true;
