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
 * into the layer's config as `callArgs` ({tensorNames: ['value', 'key'], useCausalMask: true,
 * sameInputs: false}), where the layer reads it (sameInputs: every input is the same tensor). Other layers' nodes are left as TF.js reads them.
 */
import * as tf from '@tensorflow/tfjs';

/** Class names whose inbound kwargs are turned into inputs + config.callArgs. */
export const CALL_ARG_LAYERS = new Set(['Attention', 'MultiHeadAttention']);

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
 * object, `config` is not changed.
 * @param {object} config a Functional config after convertPythonicToTs ({layers: [...], ...})
 */
export function hoistCallArgs(config) {
  const byCamel = new Map(config.layers.map((l) => [camel(l.name), l.name]));
  const layers = config.layers.map((layer) => {
    if (!CALL_ARG_LAYERS.has(layer.className) || !layer.inboundNodes) return layer;
    let callArgs = null;
    const inboundNodes = layer.inboundNodes.map((node) => {
      const kwargs = Object.assign({}, ...node.map((entry) => entry[3] || {}));
      const tensorNames = [];
      const extra = [];
      const args = {};
      for (const [key, value] of Object.entries(kwargs)) {
        if (isTensorRef(value)) {
          const name = byCamel.get(value[0]) ?? value[0];
          tensorNames.push(key);
          extra.push([name, value[1], value[2], {}]);
        } else {
          args[key] = value;
        }
      }
      args.tensorNames = tensorNames;
      const refs = [...node, ...extra].map((entry) => `${entry[0]}/${entry[1]}/${entry[2]}`);
      args.sameInputs = refs.every((r) => r === refs[0]);
      if (callArgs && JSON.stringify(callArgs) !== JSON.stringify(args)) {
        throw new Error(`layer ${layer.name}: shared with different call arguments (${JSON.stringify(callArgs)} vs ${JSON.stringify(args)}); not supported`);
      }
      callArgs = args;
      return [...node.map((entry) => [entry[0], entry[1], entry[2], {}]), ...extra];
    });
    return { ...layer, config: { ...layer.config, callArgs }, inboundNodes };
  });
  return { ...config, layers };
}

/** tf_keras' functional model class, read through hoistCallArgs. */
export class Functional extends tf.LayersModel {
  static className = 'Functional';

  static fromConfig(cls, config, customObjects = {}, fastWeightInit = false) {
    return super.fromConfig(cls, hoistCallArgs(config), customObjects, fastWeightInit);
  }
}
tf.serialization.registerClass(Functional);
