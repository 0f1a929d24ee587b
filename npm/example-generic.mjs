// example.mjs - run: node example.mjs   (Node >= 20.16; WASM backend, the model from this package, no native deps)
import { MODEL_SPECS, loadModel } from '{{NAME}}';

const net = await loadModel('{{MODEL}}');
const input = MODEL_SPECS['{{MODEL}}'].inputs[0]; // {name, shape, dtype}, typed in model-specs.d.cts
const shape = [1, ...input.shape.slice(1).map((d) => d ?? 1)];
const size = shape.reduce((a, b) => a * b, 1);
const data = Float32Array.from({ length: size }, (_, i) => (i * 7) % 256);
const out = net.predict({ data, shape });
const outs = Array.isArray(out) ? out : [out];
console.log(JSON.stringify({ input: input.name, outputs: await Promise.all(outs.map(async (t) => Array.from(await t.data()))) }));
outs.forEach((t) => t.dispose());
net.dispose();
