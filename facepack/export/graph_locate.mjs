// Find the graph-model node where TF.js goes wrong, for a one-line export error that names the op
// and the Keras layer instead of a downstream symptom (a MatMul that fails on the shape a broken
// op produced). Driven by facepack/export/keras_export.py:locate_graph_failure after a graph model
// failed or returned the wrong shapes on one backend.
//
//   node facepack/export/graph_locate.mjs BUNDLE NAME BACKEND JOB.json [BUDGET_MS]
//   (JOB.json: node_check.mjs' format, one request; BUDGET_MS: stop running nodes after this many
//   milliseconds, keras_export.py:GRAPH_LOCATE_BUDGET_S less Node's start-up; default no limit)
//
// Runs the model through the repo's JS library (static/facepack/generic.js: the ops it registers
// apply) once per node, asking TF.js for that node's output alone, and marks a node bad when TF.js
// throws there or returns a shape that is not a list of non-negative integers. Prints ONE JSON line:
// {"node", "op", "error"} for the bad node none of whose inputs is bad (the root cause), or
// {"node": null, "checked": n} when every node ran with a valid shape (or the graph has more than
// MAX_NODES nodes: "skipped"; or BUDGET_MS passed before a bad node was found: "stopped"). When the
// budget stops the runs after a bad node was found, the root among the nodes run is reported.
import { readFile } from 'node:fs/promises';

import * as tf from '@tensorflow/tfjs';

import { useBackend } from '../../static/facepack/backend.js';
import { load } from '../../static/facepack/generic.js';

import { readInput } from './job_inputs.mjs';

const MAX_NODES = 300; // each node is a separate run: O(nodes^2) work, bounded (a larger graph is not traced)
const SKIP_OPS = new Set(['Const', 'Placeholder', 'NoOp']);

async function readTensor(spec) {
  const { data, shape, dtype } = await readInput(spec);
  return tf.tensor(data, shape, dtype);
}

function validShape(shape) {
  return Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0);
}

async function main() {
  const [bundle, name, backend, jobFile, budgetMs] = process.argv.slice(2);
  const started = Date.now();
  const budget = budgetMs ? Number(budgetMs) : Infinity;
  await useBackend(backend);
  const job = JSON.parse(await readFile(jobFile, 'utf8'));
  const req = job.requests[0];
  const net = await load(bundle, name);
  const graph = net.model;
  const nodes = ((graph.artifacts && graph.artifacts.modelTopology && graph.artifacts.modelTopology.node) || [])
    .filter((n) => !SKIP_OPS.has(n.op));
  if (nodes.length > MAX_NODES) {
    console.log(JSON.stringify({ node: null, skipped: `${nodes.length} nodes > ${MAX_NODES}` }));
    return;
  }
  const tensors = await Promise.all(req.inputs.map(readTensor));
  const byName = req.inputs.length > 0 && req.inputs.every((s) => s.key);
  const x = byName ? Object.fromEntries(req.inputs.map((s, k) => [s.key, tensors[k]]))
    : (tensors.length === 1 ? tensors[0] : tensors);
  const bad = new Map();
  let checked = 0;
  for (const node of nodes) {
    if (Date.now() - started > budget) break;
    checked += 1;
    try {
      const out = await graph.executeAsync(x, [node.name]);
      const outs = Array.isArray(out) ? out : [out];
      const broken = outs.find((t) => !validShape(t.shape));
      if (broken) bad.set(node.name, { op: node.op, error: `output shape [${broken.shape.join(', ')}]` });
      tf.dispose(outs);
    } catch (err) {
      bad.set(node.name, { op: node.op, error: String((err && err.message) || err).split('\n')[0] });
    }
  }
  tf.dispose(tensors);
  const inputsOf = (node) => (node.input || []).map((s) => s.replace(/^\^/, '').split(':')[0]);
  const root = nodes.find((n) => bad.has(n.name) && !inputsOf(n).some((i) => bad.has(i)));
  const stopped = checked < nodes.length ? { stopped: `budget ${budget} ms: ${checked} of ${nodes.length} nodes run` } : {};
  console.log(JSON.stringify(root ? { node: root.name, ...bad.get(root.name), ...stopped }
    : { node: null, checked, ...stopped }));
}

main().catch((err) => {
  console.error(String((err && err.stack) || err));
  process.exit(1);
});
