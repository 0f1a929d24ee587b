// node example.mjs   (Node >= 18: WASM backend, the model from this package, no native deps)
import { loadModel, useBackend } from '{{NAME}}';

await useBackend('wasm');
const net = await loadModel('{{MODEL}}');
const shape = [1, ...net.entry.inputs[0].shape.slice(1)];
const size = shape.reduce((a, b) => a * b, 1);
const data = Float32Array.from({ length: size }, (_, i) => (i * 7) % 256);
const out = net.predict({ data, shape });
const outs = Array.isArray(out) ? out : [out];
console.log(JSON.stringify({ outputs: await Promise.all(outs.map(async (t) => Array.from(await t.data()))) }));
outs.forEach((t) => t.dispose());
net.dispose();
