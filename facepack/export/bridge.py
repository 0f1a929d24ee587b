"""Keras 3 -> tf_keras bridge: rebuild a Keras 3 functional model in tf_keras, TF.js-ready.

The TF.js converter reads Keras 2 (tf_keras) models only (DESIGN.md contract 5). Rather than
re-running a builder (which only works for our own architectures, and whose tf_keras twin
names some layers differently, e.g. MobileNetV3's "Conv/BatchNorm" vs Keras 3's "conv_bn"),
``to_tf_keras`` walks the Keras 3 model's functional config and recreates every layer in
tf_keras under the SAME name, then copies the weights by name. That works for any Keras 3
functional (or Sequential) model, including a user's own (`convert/to_tfjs.py --model`).

Layers that TF.js 4.22 cannot load, or loads with a different meaning, are replaced by layers
it supports that compute the same function (checked numerically by the exporter's parity step):

* ``Activation("hard_sigmoid")`` (Keras 3: relu6(x + 3) / 6; TF.js' hardSigmoid is the Keras 2
  0.2 x + 0.5) -> Rescaling(offset 3) -> ReLU(max 6) -> Rescaling(1/6);
  ``hard_silu``/``hard_swish`` -> Multiply([x, hard_sigmoid(x)]); ``silu`` -> ``swish``.
  A conv/dense layer with such an activation becomes the layer (linear) + the chain above.
* ``Normalization`` and per-channel ``Rescaling`` (EfficientNet) -> a fixed 1x1
  DepthwiseConv2D (rank 4) or diagonal Dense (rank 2) whose scale and bias are measured by
  probing the Keras 3 layer at 0 and 1 (so any affine per-channel layer is reproduced).
* ``GlobalAveragePooling2D(keepdims=True)`` (TF.js ignores keepDims) -> GAP + Reshape((1, 1, C)).

The final layer of each replacement keeps the original name, so the layer names the rest of
the code relies on (``features``, ``pool``, ``scores``) survive.
"""

from __future__ import annotations

import inspect

import numpy as np

# Keys a tf_keras base Layer accepts besides its class's own __init__ parameters.
_BASE_LAYER_KEYS = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
                    "batch_input_shape", "batch_size", "weights", "activity_regularizer", "autocast"}
# Keras 3 config keys that carry no inference semantics (initializers etc. are dropped too).
_DROP_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
# Keras 3 keys that only matter for training (renorm is off unless "renorm" is kept).
_HARMLESS = {"renorm_momentum", "renorm_clipping", "synchronized"}
_ACTIVATION_RENAMES = {"silu": "swish"}
_HARD_ACTIVATIONS = {"hard_sigmoid", "hard_silu", "hard_swish"}
_PER_CHANNEL_AFFINE = {"Normalization"}


class BridgeError(ValueError):
    """A Keras 3 model that the bridge cannot rebuild in tf_keras (names the layer)."""


def _dtype_name(dtype) -> str:
    if isinstance(dtype, dict):
        return dtype.get("config", {}).get("name", "float32")
    return dtype or "float32"


def _activation_name(act):
    if isinstance(act, dict):  # a serialised function
        act = act.get("config", act.get("class_name"))
    return act


def sanitize_config(tf_keras, class_name: str, config: dict) -> tuple[dict, list[str]]:
    """Keras 3 layer config -> kwargs the tf_keras class accepts; returns (config, dropped keys)."""
    cls = getattr(tf_keras.layers, class_name, None)
    if cls is None:
        raise BridgeError(f"layer class {class_name!r} (layer {config.get('name')!r}) does not exist in tf_keras")
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "args"}
    allowed = params | _BASE_LAYER_KEYS
    out, dropped = {}, []
    for key, value in config.items():
        if key.endswith(_DROP_SUFFIXES) or key not in allowed:
            dropped.append(key)
            continue
        if key == "dtype":
            value = _dtype_name(value)
        if key == "activation":
            value = _activation_name(value)
            value = _ACTIVATION_RENAMES.get(value, value)
        out[key] = value
    return out, dropped


# --- replacements ------------------------------------------------------------------------

def _hard_sigmoid(tf_keras, x, name: str):
    L = tf_keras.layers
    y = L.Rescaling(1.0, offset=3.0, name=f"{name}__plus3")(x)
    y = L.ReLU(max_value=6.0, name=f"{name}__relu6")(y)
    return L.Rescaling(1.0 / 6.0, offset=0.0, name=name)(y)


def _hard_activation(tf_keras, x, act: str, name: str):
    if act == "hard_sigmoid":
        return _hard_sigmoid(tf_keras, x, name)
    gate = _hard_sigmoid(tf_keras, x, f"{name}__hsig")
    return tf_keras.layers.Multiply(name=name)([x, gate])


def _probe_affine(layer3, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(scale, bias) per last-axis channel of an elementwise affine Keras 3 layer."""
    channels = shape[-1]
    rank = len(shape)
    ones = np.ones((1,) * (rank - 1) + (channels,), np.float32)
    f0 = np.asarray(layer3(0.0 * ones)).reshape(channels).astype(np.float64)
    f1 = np.asarray(layer3(ones)).reshape(channels).astype(np.float64)
    f2 = np.asarray(layer3(2.0 * ones)).reshape(channels).astype(np.float64)
    scale = f1 - f0
    if not np.allclose(f2 - f0, 2 * scale, rtol=1e-4, atol=1e-5):
        raise BridgeError(f"layer {layer3.name!r}: expected an elementwise affine map, probing says otherwise")
    return scale.astype(np.float32), f0.astype(np.float32)


def _affine_layer(tf_keras, x, scale, bias, name: str):
    """A fixed per-channel y = x * scale + bias that TF.js supports on every backend."""
    rank = len(x.shape)
    L = tf_keras.layers
    if rank == 4:
        layer = L.DepthwiseConv2D(1, use_bias=True, trainable=False, name=name)
        y = layer(x)
        layer.set_weights([scale.reshape(1, 1, -1, 1), bias])
    elif rank == 2:
        layer = L.Dense(len(scale), use_bias=True, trainable=False, name=name)
        y = layer(x)
        layer.set_weights([np.diag(scale).astype(np.float32), bias])
    else:
        raise BridgeError(f"layer {name!r}: per-channel affine replacement needs rank 2 or 4 input, got {x.shape}")
    return y


# Keras 3 records `x + 3.0`, `x * (1 / 6)` in a functional graph as ops with a constant operand.
_SCALAR_OPS = {"Add": (1.0, 1.0), "Multiply": None, "Subtract": (1.0, -1.0), "Divide": None, "TrueDivide": None}
_MERGE_LAYERS = {"Add": "Add", "Multiply": "Multiply", "Subtract": "Subtract"}


def _scalar_op(tf_keras, cls: str, args: list, name: str):
    """An op node of a tensor and a number -> Rescaling(scale, offset), same name."""
    tensor_first = not isinstance(args[0], (int, float))
    x, c = (args[0], float(args[1])) if tensor_first else (args[1], float(args[0]))
    if cls == "Add":
        scale, offset = 1.0, c
    elif cls == "Multiply":
        scale, offset = c, 0.0
    elif cls == "Subtract":
        scale, offset = (1.0, -c) if tensor_first else (-1.0, c)
    elif tensor_first:  # Divide / TrueDivide by a constant
        scale, offset = 1.0 / c, 0.0
    else:
        raise BridgeError(f"layer {name!r}: dividing a constant by a tensor is not supported")
    return tf_keras.layers.Rescaling(scale, offset=offset, name=name)(x)


def _is_scalar_op(cls: str, args) -> bool:
    return (cls in _SCALAR_OPS and isinstance(args, list) and len(args) == 2
            and sum(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args) == 1)


def _is_binary_tensor_op(cls: str, args) -> bool:
    return (cls in _MERGE_LAYERS and isinstance(args, list) and len(args) == 2
            and not any(isinstance(a, (list, int, float)) for a in args))


def _is_per_channel_rescaling(class_name, config) -> bool:
    if class_name != "Rescaling":
        return False
    return isinstance(config.get("scale"), (list, tuple)) or isinstance(config.get("offset"), (list, tuple))


# --- the walk ----------------------------------------------------------------------------

def _functional_config(model3) -> dict:
    config = model3.get_config()
    if "layers" not in config:
        raise BridgeError(f"model {model3.name!r}: expected a functional or Sequential Keras model")
    if type(model3).__name__ == "Sequential":
        layers, prev = [], None
        for i, layer in enumerate(config["layers"]):
            entry = dict(layer)
            entry["name"] = layer["config"]["name"]
            if layer["class_name"] == "InputLayer":
                entry["inbound_nodes"] = []
            else:
                if prev is None:
                    shape = model3.inputs[0].shape
                    layers.append({"class_name": "InputLayer", "name": "input",
                                   "config": {"batch_shape": list(shape), "name": "input", "dtype": "float32"},
                                   "inbound_nodes": []})
                    prev = "input"
                entry["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__",
                                                     "config": {"keras_history": [prev, 0, 0]}}], "kwargs": {}}]
            layers.append(entry)
            prev = entry["name"]
        config = {"layers": layers, "input_layers": [[layers[0]["name"], 0, 0]], "output_layers": [[prev, 0, 0]]}
    return config


def _resolve(arg, tensors):
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        name, node, index = arg["config"]["keras_history"]
        return tensors[(name, node, index)]
    if isinstance(arg, (list, tuple)):
        return [_resolve(a, tensors) for a in arg]
    return arg


def _as_list(pairs):
    if pairs and not isinstance(pairs[0], (list, tuple)):
        pairs = [pairs]
    return pairs


def to_tf_keras(model3, tf_keras, name: str | None = None):
    """Rebuild ``model3`` (Keras 3) in ``tf_keras`` with the same weights.

    Returns (tf_keras model, notes) where notes lists the replacements and dropped config keys.
    Raises BridgeError naming the layer it cannot rebuild.
    """
    config = _functional_config(model3)
    tensors: dict = {}
    created: dict = {}  # name -> tf_keras layer to receive the source weights by name
    fixed: set = set()  # names of layers whose weights were set by a replacement
    notes: list[str] = []
    L = tf_keras.layers
    for entry in config["layers"]:
        cls, cfg, lname = entry["class_name"], dict(entry["config"]), entry["name"]
        if cls == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            tensors[(lname, 0, 0)] = tf_keras.Input(shape=tuple(shape[1:]), name=lname, dtype=_dtype_name(cfg.get("dtype")))
            continue
        for node_index, node in enumerate(entry["inbound_nodes"]):
            args = _resolve(node["args"], tensors)
            x = args[0] if len(args) == 1 else args
            if node_index > 0:
                layer = created.get(lname)
                if layer is None:
                    raise BridgeError(f"layer {lname!r}: shared replaced layers are not supported")
                y = layer(x)
            elif _is_scalar_op(cls, args):
                y = _scalar_op(tf_keras, cls, args, lname)
                notes.append(f"{lname}: op {cls} with a constant -> Rescaling")
            elif _is_binary_tensor_op(cls, args):
                y = getattr(L, _MERGE_LAYERS[cls])(name=lname)(args)
            elif cls in _PER_CHANNEL_AFFINE or _is_per_channel_rescaling(cls, cfg):
                scale, bias = _probe_affine(model3.get_layer(lname), tuple(x.shape))
                y = _affine_layer(tf_keras, x, scale, bias, lname)
                fixed.add(lname)
                notes.append(f"{lname}: {cls} -> fixed per-channel affine layer")
            elif cls == "Activation" and _activation_name(cfg.get("activation")) in _HARD_ACTIVATIONS:
                y = _hard_activation(tf_keras, x, _activation_name(cfg["activation"]), lname)
                notes.append(f"{lname}: Activation({cfg['activation']}) -> Rescaling/ReLU6 chain")
            elif cls == "GlobalAveragePooling2D" and cfg.get("keepdims"):
                pooled = L.GlobalAveragePooling2D(name=f"{lname}__gap")(x)
                y = L.Reshape((1, 1, int(x.shape[-1])), name=lname)(pooled)
                notes.append(f"{lname}: GlobalAveragePooling2D(keepdims) -> GAP + Reshape")
            else:
                act = _activation_name(cfg.get("activation"))
                hard = act in _HARD_ACTIVATIONS and cls != "Activation"
                if hard:
                    cfg["activation"] = "linear"
                clean, dropped = sanitize_config(tf_keras, cls, cfg)
                if hard:
                    clean["name"] = f"{lname}__linear"
                layer = getattr(L, cls).from_config(clean)
                created[lname] = layer
                y = layer(x)
                if hard:
                    y = _hard_activation(tf_keras, y, act, lname)
                    notes.append(f"{lname}: activation {act} split off")
                meaningful = [k for k in dropped if not k.endswith(_DROP_SUFFIXES) and k not in _HARMLESS
                              and cfg.get(k) not in (None, False, 0, [], {})]
                if meaningful:
                    notes.append(f"{lname}: dropped Keras 3 config keys {meaningful}")
            outs = y if isinstance(y, (list, tuple)) else [y]
            for i, t in enumerate(outs):
                tensors[(lname, node_index, i)] = t
    inputs = [tensors[tuple(p)] for p in _as_list(config["input_layers"])]
    outputs = [tensors[tuple(p)] for p in _as_list(config["output_layers"])]
    model2 = tf_keras.Model(inputs if len(inputs) > 1 else inputs[0],
                            outputs if len(outputs) > 1 else outputs[0], name=name or model3.name)
    copied = copy_weights(model3, model2, created, fixed)
    notes.append(f"copied weights of {copied} layers by name")
    return model2, notes


def copy_weights(model3, model2, created: dict, fixed: set) -> int:
    """Copy every weighted Keras 3 layer into its same-named tf_keras twin (shapes checked)."""
    copied = 0
    for layer in model3.layers:
        weights = layer.get_weights()
        if not weights or layer.name in fixed:
            continue
        target = created.get(layer.name)
        if target is None:
            raise BridgeError(f"layer {layer.name!r} of the Keras 3 model has no twin in the tf_keras model")
        shapes = [w.shape for w in target.get_weights()]
        if shapes != [w.shape for w in weights]:
            raise BridgeError(f"layer {layer.name!r}: tf_keras weight shapes {shapes} vs Keras 3 {[w.shape for w in weights]}")
        target.set_weights(weights)
        copied += 1
    return copied
