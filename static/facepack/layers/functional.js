/**
 * Call arguments for the custom layers, read from a tf_keras model.json.
 *
 * tf_keras writes a call such as `mha(query, value, key=k, use_causal_mask=True)` as ONE inbound
 * entry whose kwargs hold the other tensors as [layerName, nodeIndex, tensorIndex] references:
 *   [["query_in", 0, 0, {"value": ["value_in", 0, 0], "key": ["key_in", 0, 0], "use_causal_mask": true}]]
 * TF.js 4.22 passes such kwargs through unresolved (and camel-cases the names in them), and
 * model.predict() drops per-call kwargs altogether. So the 'Functional' class is re-registered
 * with a fromConfig that, for the layers named in CALL_ARG_LAYERS only, (1) appends each tensor
 * reference to the node's inputs, in the order it appears, and (2) moves every call argument
 * into the layer's config as `callArgs` ({names, index, useCausalMask: true, sameInputs: false}),
 * where the layer reads it (callInputs; sameInputs: every input is the same tensor). Other layers' nodes are left as TF.js reads them.
 */
import * as tf from '@tensorflow/tfjs';

/** Class names whose inbound kwargs are turned into inputs + config.callArgs, with the names of
 * the call's positional tensor arguments as tf_keras writes them (the rest come as kwargs). */
export const CALL_ARG_LAYERS = new Map([
  ['Attention', ['query', 'value', 'key']],
  ['MultiHeadAttention', ['query']],
]);

// mirrors toCamelCase of tfjs-layers (generic_utils.ts), which convertPythonicToTs applied to the names
function camel(name) {
  return name.length <= 1 || name.indexOf('_') === -1 ? name
    : name.replace(/[_]+(\w|$)/g, (m, p1) => p1.toUpperCase());
}

function isTensorRef(value) {
  return Array.isArray(value) && value.length >= 3 && typeof value[0] === 'string'
    && Number.isInteger(value[1]) && Number.isInteger(value[2]);
}

/**
 * The model config with CALL_ARG_LAYERS' call arguments rewritten (see the module doc); a new
 * object, `config` is not changed. Each distinct tensor becomes ONE input of the node: TF.js
 * counts a tensor's consumers per layer but releases it per input slot, so a tensor fed twice
 * to one layer (self-attention) would be disposed while another layer still needs it.
 * callArgs: {names: ['query', 'value'], index: [0, 0], sameInputs, ...the other call arguments}.
 * @param {object} config a Functional config after convertPythonicToTs ({layers: [...], ...})
 */
export function hoistCallArgs(config) {
  const byCamel = new Map(config.layers.map((l) => [camel(l.name), l.name]));
  const layers = config.layers.map((layer) => {
    const positional = CALL_ARG_LAYERS.get(layer.className);
    if (!positional || !layer.inboundNodes) return layer;
    let callArgs = null;
    const inboundNodes = layer.inboundNodes.map((node) => {
      const kwargs = Object.assign({}, ...node.map((entry) => entry[3] || {}));
      const named = node.map((entry, i) => [positional[i], [entry[0], entry[1], entry[2]]]);
      const args = {};
      for (const [key, value] of Object.entries(kwargs)) {
        if (isTensorRef(value)) named.push([key, [byCamel.get(value[0]) ?? value[0], value[1], value[2]]]);
        else args[key] = value;
      }
      const distinct = [];
      const index = named.map(([, ref]) => {
        const key = ref.join('/');
        let i = distinct.findIndex((d) => d.join('/') === key);
        if (i < 0) i = distinct.push(ref) - 1;
        return i;
      });
      Object.assign(args, { names: named.map(([name]) => name), index, sameInputs: distinct.length === 1 });
      if (callArgs && JSON.stringify(callArgs) !== JSON.stringify(args)) {
        throw new Error(`layer ${layer.name}: shared with different call arguments (${JSON.stringify(callArgs)} vs ${JSON.stringify(args)}); not supported`);
      }
      callArgs = args;
      return distinct.map((ref) => [...ref, {}]);
    });
    return { ...layer, config: { ...layer.config, callArgs }, inboundNodes };
  });
  return { ...config, layers };
}

/**
 * {name: tensor or shape} of a hoisted layer's call: `inputs` is what TF.js passes (one tensor /
 * shape, or a list), `callArgs` what hoistCallArgs stored. Without callArgs (a layer built in
 * JS), the inputs are taken positionally as `names`.
 */
export function callInputs(inputs, callArgs, names) {
  const list = Array.isArray(inputs) && (inputs[0] instanceof tf.Tensor || Array.isArray(inputs[0])) ? inputs : [inputs];
  const out = {};
  if (callArgs && callArgs.names) callArgs.names.forEach((name, j) => { out[name] = list[callArgs.index[j]]; });
  else names.forEach((name, j) => { if (j < list.length) out[name] = list[j]; });
  return out;
}

/**
 * tf_keras' functional model class, read through hoistCallArgs, and run (apply / call on
 * tensors, as io.js runModel does) with Keras' per-tensor masks: TF.js 4.22's executor hands
 * every later layer the last mask it saw (its kwargs object is shared across layers and never
 * cleared), so a mask that Keras drops (after a Reshape, an LSTM returning its last state, a
 * pooling) kept masking the layers after it. Here each layer gets the masks of its own inputs
 * (mirrors keras/src/models/functional.py:_run_through_graph). model.predict() still runs
 * TF.js' own executor.
 */
export class Functional extends tf.LayersModel {
  static className = 'Functional';

  static fromConfig(cls, config, customObjects = {}, fastWeightInit = false) {
    return super.fromConfig(cls, hoistCallArgs(config), customObjects, fastWeightInit);
  }

  call(inputs, kwargs = {}) {
    return tf.tidy(() => {
      const xs = Array.isArray(inputs) ? inputs : [inputs];
      const given = kwargs.mask == null ? [] : [].concat(kwargs.mask);
      const values = new Map(); // symbolic tensor id -> [tensor, mask | null]
      this.inputs.forEach((t, i) => values.set(t.id, [xs[i], given[i] ?? null]));
      const depths = Object.keys(this.nodesByDepth).map(Number).sort((a, b) => b - a);
      for (const depth of depths) {
        for (const node of this.nodesByDepth[depth]) {
          const layer = node.outboundLayer;
          if (layer.getClassName() === 'InputLayer') continue;
          const got = node.inputTensors.map((t) => values.get(t.id));
          if (!got.length || got.some((g) => g == null)) continue;
          const single = got.length === 1;
          const tensors = single ? got[0][0] : got.map((g) => g[0]);
          const masks = single ? got[0][1] : (got.some((g) => g[1] != null) ? got.map((g) => g[1]) : null);
          const callKwargs = { ...(node.callArgs || {}), training: kwargs.training ?? false };
          if (callKwargs.mask == null) callKwargs.mask = masks;
          const out = [].concat(layer.call(tensors, callKwargs));
          const outMask = layer.supportsMasking ? layer.computeMask(tensors, masks) : null;
          const outMasks = Array.isArray(outMask) ? outMask : [outMask];
          node.outputTensors.forEach((t, i) => values.set(t.id, [out[i], outMasks[i] ?? null]));
        }
      }
      const outs = this.outputs.map((t) => {
        if (!values.has(t.id)) throw new Error(`${this.name}: could not compute output ${t.name}`);
        return values.get(t.id)[0];
      });
      return outs.length === 1 ? outs[0] : outs;
    });
  }
}
tf.serialization.registerClass(Functional);
