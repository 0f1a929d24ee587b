// example.mjs - run: node example.mjs   (Node >= 20.16; WASM backend, the model from this package, no native deps)
// Runs '{{MODEL}}' once on one made-up input per model input (name, shape with batch 1 and dtype from
// MODEL_SPECS) and prints each output's name, shape and first values. Put your own data in `inputs`.
import { MODEL_SPECS, loadModel } from '{{NAME}}';

const SPEC = MODEL_SPECS['{{MODEL}}']; // {inputs: [{name, shape, dtype}], outputs: [...]}, typed in model-specs.d.cts
// int32 inputs (token ids) get ids min, min + 1, ... below max_exclusive: [min, max_exclusive), the
// range the export checked (the manifest's inputs[].token_ids: an Embedding's input_dim, a
// CategoryEncoding's num_tokens, an IntegerLookup's vocabulary, ...). An input missing here gets 0..1.
/** @type {Record<string, [number, number]>} */
const TOKEN_ID_RANGE = {{TOKEN_ID_RANGE}};
// int32 inputs read only by IntegerLookup layers get their vocabulary entries instead (cycled; from
// the layer configs in models/): ids outside the vocabulary are refused where num_oov_indices=0.
/** @type {Record<string, number[]>} */
const TOKEN_ID_VALUES = {{TOKEN_ID_VALUES}};

/**
 * A deterministic input for the k-th input spec.
 * @param {{name: string, shape: readonly (number | null)[], dtype: string}} spec
 * @param {number} k
 * @returns {{data: Int32Array | Uint8Array | Float32Array, shape: number[], dtype: 'float32' | 'int32' | 'bool'}}
 */
function probe({ name, shape, dtype }, k) {
  // batch 1; a free size (null) as the export's probe had it: 32 for an image's height/width, else 8
  const dims = shape.map((d, axis) => (axis === 0 ? 1 : d ?? (shape.length === 4 && axis < 3 ? 32 : 8)));
  const size = dims.reduce((a, b) => a * b, 1);
  let data;
  if (dtype === 'int32' && TOKEN_ID_VALUES[name]?.length) {
    const values = TOKEN_ID_VALUES[name];
    data = Int32Array.from({ length: size }, (_, i) => values[i % values.length]);
  } else if (dtype === 'int32') {
    const [low, high] = TOKEN_ID_RANGE[name] ?? [0, 2];
    data = Int32Array.from({ length: size }, (_, i) => low + (i % (high - low)));
  } else if (dtype === 'bool') {
    data = Uint8Array.from({ length: size }, (_, i) => i % 2);
  } else {
    data = Float32Array.from({ length: size }, (_, i) => (i * 7 + 3 * k) % 256); // input k: a ramp 3k, 3k + 7, ... (mod 256)
  }
  return { data, shape: dims, dtype: dtype === 'int32' || dtype === 'bool' ? dtype : 'float32' };
}

try {
  const net = await loadModel('{{MODEL}}');
  // {[input name]: {data, shape, dtype}}: fed by name (`any`: the names are read from MODEL_SPECS at run time)
  const inputs = /** @type {any} */ (Object.fromEntries(SPEC.inputs.map((s, k) => [s.name, probe(s, k)])));
  // predictAsync runs every model (control flow included: net.async); net.predict(inputs) is the
  // synchronous call for a model whose net.async is false. Same outputs.
  const out = await net.predictAsync(inputs);
  const outs = Array.isArray(out) ? out : [out];
  const outputs = [];
  for (const [i, t] of outs.entries()) {
    outputs.push({ name: SPEC.outputs[i].name, shape: t.shape, first: Array.from(await t.data()).slice(0, 10) });
  }
  console.log(JSON.stringify({ model: '{{MODEL}}', inputs: SPEC.inputs.map((s) => s.name), outputs }));
  outs.forEach((t) => t.dispose());
  net.dispose();
} catch (err) {
  console.error(`example.mjs: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
  process.exit(1);
}
