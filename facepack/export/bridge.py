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
* ``Normalization``, per-channel ``Rescaling`` (EfficientNet) and ``LayerScale`` (ConvNeXt) -> a fixed 1x1
  DepthwiseConv2D (rank 4) or diagonal Dense (rank 2) whose scale and bias are measured by
  probing the Keras 3 layer at 0 and 1 (so any affine per-channel layer is reproduced).
* ``GlobalAveragePooling2D(keepdims=True)`` (TF.js ignores keepDims) -> GAP + Reshape((1, 1, C)).
* ``Flatten`` of a rank-2 input (``GlobalAveragePooling2D() -> Flatten() -> Dense``: the identity in
  Keras 3, refused by TF.js' Flatten, "expected min_ndim=3") -> ``Reshape((units,))`` under the same
  name (rank 1: ``Reshape((1,))``); a Flatten of rank >= 3 stays a Flatten.
* ``Conv1D(padding="causal")`` (TF.js has no causal padding) -> ZeroPadding1D((dilation * (k - 1), 0))
  + the same Conv1D with ``padding="valid"``.
* ``SeparableConv2D`` (TF.js rejects the ``kernel_*`` fields tf_keras writes into its config) ->
  DepthwiseConv2D (no bias) + a 1x1 Conv2D carrying the bias and activation.
* ``DepthwiseConv1D``, ``SeparableConv1D``, ``Conv1DTranspose`` (not in TF.js) -> Reshape to
  (T, 1, C) + the 2D layer with a (k, 1) kernel + Reshape back (channels_last only, and not strides > 1
  with dilation_rate > 1: those are refused naming the layer and its values, and export as graph models).
* A model used as a layer (``base = MobileNetV2(...); y = base(x)``) -> a nested tf_keras model,
  rebuilt recursively.
* Layers that are the identity at inference (``Identity``, ``SpatialDropout2D/3D``, the random
  augmentation layers) are removed; op nodes that only compute a ``mask=`` argument (Keras 3
  records Masking's not_equal/any) are skipped, tf_keras recomputes the mask.

Config translation: Keras 3 keys that tf_keras spells differently are renamed (``_RENAMED_KEYS``,
e.g. LeakyReLU ``negative_slope`` -> ``alpha``); wrappers (Bidirectional, TimeDistributed) have
their inner layer configs translated the same way; a Keras 3 option that tf_keras cannot express
and that changes inference (``_INERT`` lists the values that do not) raises BridgeError naming the
layer and the key rather than being dropped. Keyword arguments of a call (``use_causal_mask``,
``key=``, masks) are passed on; MultiHeadAttention is built by calling it (tf_keras' from_config
cannot read a Keras 3 config).

Layers that tf_keras has but TF.js 4.22 lacks or gets wrong (GroupNormalization,
UnitNormalization, Attention, MultiHeadAttention, GRU(reset_after=True), zero_output_for_mask,
Keras-exact Resizing / bilinear UpSampling2D / CenterCrop, ReLU(negative_slope, threshold),
ELU(alpha), Softmax(axis), dilated DepthwiseConv2D, Conv3DTranspose on WASM, 1D/3D padding,
cropping and upsampling) are written as they are; the library registers TF.js implementations
of them (static/facepack/layers/index.js). Options those implementations lack are refused here
(``_JS_LIMITS``) so that the exporter falls back to a graph model with a reason.
``IntegerLookup`` is written with its whole vocabulary (``get_vocabulary()``, also an adapted one)
in its config for the library's TF.js IntegerLookup (lookup.js; oov_method="farmhash" and its salt
are added to the config, tf_keras' layer has neither); its options that layer lacks (tf_idf,
sparse, ...) are refused naming the option. ``Hashing`` on int ids
is written as tf_keras' Hashing for the library's TF.js Hashing (hashing.js: FarmHash Fingerprint64, or
SipHash-2-4 with a salt, of each id's decimal string); string/float inputs and sparse outputs are
refused naming the reason. String preprocessing layers (``_REFUSED``) are refused outright.

The final layer of each replacement keeps the original name, so the layer names the rest of
the code relies on (``features``, ``pool``, ``scores``) survive.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np

from facepack.export.manifest import INT32_MAX, INT32_MIN

# Keys a tf_keras base Layer accepts besides its class's own __init__ parameters.
_BASE_LAYER_KEYS = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
                    "batch_input_shape", "batch_size", "weights", "activity_regularizer", "autocast"}
# Keras 3 config keys that carry no inference semantics (initializers etc. are dropped too).
_DROP_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
# Keras 3 keys that only matter for training, or only together with another key handled below.
_HARMLESS = {"renorm_momentum", "renorm_clipping", "synchronized", "seed", "dropout", "recurrent_dropout",
             "fill_mode", "fill_value"}
# Keys a tf_keras class takes through **kwargs (so not in its signature), per class.
_KWARGS_KEYS = {cls: {"zero_output_for_mask"} for cls in ("LSTM", "GRU", "SimpleRNN")}
# Keras 3 keys tf_keras lacks, with the value(s) under which dropping them changes nothing.
_INERT = {"renorm": (False,), "rms_scaling": (False,), "quantization_config": (None,), "use_gate": (False,),
          "sliding_window": (None,), "pad_to_aspect_ratio": (False,), "antialias": (False,),
          "data_format": ("channels_last",), "unroll": (False,), "flash_attention": (None, False),
          "zero_output_for_mask": (False,)}
# Keras 3 key -> tf_keras key, per layer class.
_RENAMED_KEYS = {"LeakyReLU": {"negative_slope": "alpha"}}
# Keras 3 wrappers whose config holds whole layer configs under these keys.
_WRAPPED_KEYS = {"Bidirectional": ("layer", "backward_layer"), "TimeDistributed": ("layer",)}
_ACTIVATION_RENAMES = {"silu": "swish"}
_HARD_ACTIVATIONS = {"hard_sigmoid", "hard_silu", "hard_swish"}
_PER_CHANNEL_AFFINE = {"Normalization", "LayerScale"}  # LayerScale: keras.applications.convnext


# Graph-model ops TF.js 4.22 lacks or gets wrong that the library registers (mirrors REGISTERED_OPS of
# static/facepack/layers/ops.js; tests/test_js_layers.py checks the two agree): a SavedModel whose
# only unsupported ops are these can be converted with the converter's skip_op_check=True.
JS_REGISTERED_OPS = ("Erfc", "Cumsum", "Cumprod", "Bitcast", "BitwiseAnd")


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


def _check_dropped(class_name: str, config: dict, dropped: list[str]) -> None:
    """Raise BridgeError for a dropped Keras 3 key whose value changes inference."""
    for key in dropped:
        if key.endswith(_DROP_SUFFIXES) or key in _HARMLESS:
            continue
        value = config[key]
        inert = _INERT.get(key, (None, False))
        if value not in inert:
            raise BridgeError(f"layer {config.get('name')!r} ({class_name}): Keras 3 option {key}={value!r} has no "
                              f"tf_keras/TF.js equivalent; use {key}={inert[0]!r} or export as a graph model")


def _check_mirror(config: dict, backward) -> None:
    """A Bidirectional's backward layer must be its forward layer run backwards (all TF.js can build)."""
    if backward is None:
        return
    forward = config["layer"]
    ignore = {"name", "go_backwards"}
    same = (backward["class_name"] == forward["class_name"]
            and {k: v for k, v in backward["config"].items() if k not in ignore}
            == {k: v for k, v in forward["config"].items() if k not in ignore}
            and backward["config"].get("go_backwards") != forward["config"].get("go_backwards"))
    if not same:
        raise BridgeError(f"layer {config.get('name')!r} (Bidirectional): a backward_layer that differs from the "
                          f"forward layer has no TF.js equivalent")


def sanitize_config(tf_keras, class_name: str, config: dict, strict: bool = True) -> tuple[dict, list[str]]:
    """Keras 3 layer config -> kwargs the tf_keras class accepts; returns (config, dropped keys).

    Renames the keys tf_keras spells differently, translates wrapped layer configs recursively
    (to {"class_name", "config"} dicts tf_keras deserialises) and, when ``strict``, raises
    BridgeError for a dropped key that changes inference (see _check_dropped).
    """
    cls = getattr(tf_keras.layers, class_name, None)
    if cls is None:
        raise BridgeError(f"layer class {class_name!r} (layer {config.get('name')!r}) does not exist in tf_keras")
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "args"}
    allowed = params | _BASE_LAYER_KEYS | _KWARGS_KEYS.get(class_name, set())
    renames = _RENAMED_KEYS.get(class_name, {})
    out, dropped = {}, []
    for key, value in config.items():
        key_out = renames.get(key, key)
        if key.endswith(_DROP_SUFFIXES) or key_out not in allowed:
            dropped.append(key)
            continue
        if key == "dtype":
            value = _dtype_name(value)
        if key in ("activation", "recurrent_activation"):
            value = _activation_name(value)
            value = _ACTIVATION_RENAMES.get(value, value)
            if key == "recurrent_activation" and value in _HARD_ACTIVATIONS:
                raise BridgeError(f"layer {config.get('name')!r} ({class_name}): recurrent_activation {value!r} is "
                                  f"relu6(x + 3) / 6 in Keras 3 but 0.2 x + 0.5 in tf_keras/TF.js; use 'sigmoid'")
            if isinstance(value, str) and value not in _HARD_ACTIVATIONS:
                try:
                    tf_keras.activations.get(value)
                except (ValueError, TypeError):
                    raise BridgeError(f"layer {config.get('name')!r} ({class_name}): activation {value!r} has no "
                                      f"tf_keras/TF.js equivalent") from None
        if class_name == "Bidirectional" and key == "backward_layer":
            _check_mirror(config, value)  # TF.js builds the backward layer from the forward one
            continue
        if key in _WRAPPED_KEYS.get(class_name, ()) and isinstance(value, dict):
            inner_cls = value["class_name"]
            if _needs_rewrite(inner_cls, value["config"]) or _activation_name(value["config"].get("activation")) in _HARD_ACTIVATIONS:
                raise BridgeError(f"layer {config.get('name')!r} ({class_name}): wrapped {inner_cls} "
                                  f"{value['config'].get('name')!r} needs a rewrite the bridge does not do inside a wrapper")
            inner, _ = sanitize_config(tf_keras, inner_cls, value["config"], strict)
            value = {"class_name": inner_cls, "config": inner}
        out[key_out] = value
    if strict:
        _check_dropped(class_name, config, dropped)
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


def _needs_rewrite(class_name: str, config: dict) -> bool:
    """True for the layers to_tf_keras replaces (they cannot be rebuilt from their config alone)."""
    return ((class_name == "Conv1D" and config.get("padding") == "causal") or class_name in _REBUILT
            or class_name in _PER_CHANNEL_AFFINE or _is_per_channel_rescaling(class_name, config)
            or (class_name == "GlobalAveragePooling2D" and bool(config.get("keepdims"))))


def _refs(value):
    """Names of the layers whose tensors a (nested) Keras 3 call argument refers to."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [value["config"]["keras_history"][0]]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _refs(v)]
    return []


def _mask_only_layers(config: dict) -> set:
    """Op nodes that only compute a ``mask=`` argument (Keras 3 records Masking's not_equal/any);
    tf_keras recomputes those masks itself, so they are skipped and the argument dropped."""
    uses: dict = {}
    for entry in config["layers"]:
        for node in entry.get("inbound_nodes", []):
            for name in _refs(node.get("args")):
                uses.setdefault(name, []).append(("arg", entry["name"]))
            for key, value in (node.get("kwargs") or {}).items():
                for name in _refs(value):
                    uses.setdefault(name, []).append(("mask" if key == "mask" else "arg", entry["name"]))
    outputs = {p[0] for p in _as_list(config["output_layers"])}
    mask_only: set = set()
    for entry in reversed(config["layers"]):
        name = entry["name"]
        if entry["class_name"] == "InputLayer" or name in outputs or name not in uses:
            continue
        if all(kind == "mask" or user in mask_only for kind, user in uses[name]):
            mask_only.add(name)
    return mask_only


def _distinct_inputs(tf_keras, args: list, lname: str) -> list:
    """``args`` with every repeat of a tensor passed through a linear Activation of its own.

    TF.js 4.22 counts a tensor's consumers per layer but releases it per input slot
    (tfjs-layers executor.ts), so ``Multiply()([x, x])`` would dispose ``x`` while another layer
    still needs it ("Tensor is disposed"). Attention/MultiHeadAttention are exempt: the library's
    Functional (static/facepack/layers/functional.js) dedupes their inputs itself.
    """
    seen: set = set()
    count = [0]

    def fix(a):
        if isinstance(a, (list, tuple)):
            return [fix(v) for v in a]
        if hasattr(a, "shape") and hasattr(a, "dtype"):
            if id(a) in seen:
                count[0] += 1
                return tf_keras.layers.Activation("linear", name=f"{lname}__repeat{count[0]}")(a)
            seen.add(id(a))
        return a

    return [fix(a) for a in args]


def _check_no_masks(cls: str, args: list, lname: str, what: str) -> None:
    """Keras 3 ops (``x + y``) drop Keras masks and Keras 3 merge layers OR them and zero masked
    values, where tf_keras/TF.js layers AND them and keep the values; TF.js also keeps handing a
    mask to later layers once one was computed. Masked inputs there are refused (graph model)."""
    flat = [t for a in args for t in (a if isinstance(a, (list, tuple)) else [a])]
    if any(getattr(t, "_keras_mask", None) is not None for t in flat):
        raise BridgeError(f"layer {lname!r} ({cls}): {what} on inputs carrying a Keras mask (Embedding(mask_zero=True), "
                          f"Masking) is not reproduced by TF.js layers; export as a graph model")


def _call_kwargs(node: dict, tensors: dict, lname: str, skipped: set = frozenset()) -> dict:
    """The keyword arguments of a Keras 3 call, tensors resolved; ``training`` is dropped (inference),
    and so is an argument computed only by ``skipped`` nodes."""
    kwargs = {k: _resolve(v, tensors) for k, v in (node.get("kwargs") or {}).items()
              if k != "training" and not (_refs(v) and set(_refs(v)) <= skipped)}
    if kwargs.get("return_attention_scores"):
        raise BridgeError(f"layer {lname!r}: return_attention_scores=True is not supported; export the attention output only")
    kwargs.pop("return_attention_scores", None)
    return {k: v for k, v in kwargs.items() if v is not None}


def _causal_conv1d(tf_keras, x, cfg: dict, lname: str):
    """Conv1D(padding="causal") -> ZeroPadding1D((dilation * (k - 1), 0)) + Conv1D(padding="valid")."""
    kernel = cfg["kernel_size"][0] if isinstance(cfg["kernel_size"], (list, tuple)) else cfg["kernel_size"]
    dilation = cfg["dilation_rate"][0] if isinstance(cfg["dilation_rate"], (list, tuple)) else cfg["dilation_rate"]
    x = tf_keras.layers.ZeroPadding1D((int(dilation) * (int(kernel) - 1), 0), name=f"{lname}__causal_pad")(x)
    clean, _ = sanitize_config(tf_keras, "Conv1D", {**cfg, "padding": "valid"})
    layer = tf_keras.layers.Conv1D.from_config(clean)
    return layer, layer(x)


def _separable_conv2d(tf_keras, x, cfg: dict, lname: str, layer3):
    """SeparableConv2D -> DepthwiseConv2D (no bias) + 1x1 Conv2D (bias, activation); weights set here."""
    L = tf_keras.layers
    clean, _ = sanitize_config(tf_keras, "SeparableConv2D", cfg)
    depthwise = L.DepthwiseConv2D(clean["kernel_size"], strides=clean["strides"], padding=clean["padding"],
                                  depth_multiplier=clean["depth_multiplier"], dilation_rate=clean["dilation_rate"],
                                  data_format=clean.get("data_format"), use_bias=False, name=f"{lname}__depthwise")
    pointwise = L.Conv2D(clean["filters"], 1, use_bias=clean["use_bias"], activation=clean.get("activation"),
                         data_format=clean.get("data_format"), name=lname)
    y = pointwise(depthwise(x))
    weights = layer3.get_weights()
    depthwise.set_weights(weights[:1])
    pointwise.set_weights(weights[1:])
    return y


def _flatten_is_reshape(x) -> bool:
    """A Flatten whose input has rank <= 2 (batch included): Keras 3 passes a rank-2 input through
    (data_format changes nothing there) and makes a rank-1 one (batch, 1); TF.js' Flatten refuses
    both at load ("expected min_ndim=3")."""
    return hasattr(x, "shape") and len(x.shape) <= 2


def _flatten(tf_keras, x, cfg: dict, lname: str, node_index: int):
    """Flatten of a rank <= 2 input -> Reshape to (units,) under the SAME name: a real layer, so a
    lookup of the layer by name (model.get_layer("flatten").output, a Grad-CAM target) and a model
    output named after it keep working, and TF.js computes what Keras does (the identity; (batch,)
    -> (batch, 1)). The static length is written when known (TF.js' Reshape then reports it to the
    next layer). A Flatten called more than once (shared) gets a layer per later call, named
    ``<name>__<call>``, whenever its calls need different layers (Reshape vs Flatten)."""
    name = lname if node_index == 0 else f"{lname}__{node_index}"
    if not _flatten_is_reshape(x):  # a later call on rank >= 3 of a Flatten whose first call was a Reshape
        clean, _ = sanitize_config(tf_keras, "Flatten", {**cfg, "name": name})
        return tf_keras.layers.Flatten.from_config(clean)(x)
    units = 1 if len(x.shape) == 1 else x.shape[-1]
    return tf_keras.layers.Reshape((-1 if units is None else int(units),), name=name)(x)


def _check_attention_masks(cls: str, args: list, kwargs: dict, lname: str) -> None:
    """TF.js hands a layer only its FIRST input's Keras mask at predict time, so masked inputs
    to Attention / MultiHeadAttention are exported only for self-attention (one tensor)."""
    flat = [t for a in args for t in (a if isinstance(a, (list, tuple)) else [a])]
    flat += [v for k, v in kwargs.items() if k in ("value", "key")]
    if any(getattr(t, "_keras_mask", None) is not None for t in flat) and any(t is not flat[0] for t in flat):
        raise BridgeError(f"layer {lname!r} ({cls}): Keras masks on inputs that are not one and the same tensor "
                          f"reach TF.js layers only in part; pass attention_mask= explicitly or export a graph model")


def _multi_head_attention(tf_keras, args: list, kwargs: dict, cfg: dict, lname: str):
    """tf_keras MultiHeadAttention built by calling it (its from_config wants query_shape & co.)."""
    clean, _ = sanitize_config(tf_keras, "MultiHeadAttention", cfg)
    for key in ("query_shape", "key_shape", "value_shape"):
        clean.pop(key, None)
    layer = tf_keras.layers.MultiHeadAttention(**clean)
    query, value = (args + [kwargs.pop("value", None)])[:2] if len(args) < 2 else args[:2]
    if len(args) > 2:
        kwargs["key"] = args[2]
    _check_attention_masks("MultiHeadAttention", [query, value], kwargs, lname)
    return layer, layer(query, value, **kwargs)


def _one(value) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


# The end of a refusal that the exporter's graph path handles (export_model tries it after the layers path).
_GRAPH_NEXT = "the exporter tries the graph path (model.export) next"


def _conv1d_out_length(cls: str, length, k: int, stride: int, dilation: int, padding: str):
    """The output length of the 1-D layer on ``length`` steps (None: unknown), as Keras 3 computes it.

    Conv1DTranspose: keras/src/backend/common/backend_utils.py:_get_output_shape_given_tf_padding
    (output_padding None): 'valid' -> (L - 1) * stride + max(k_eff, stride), i.e. (L - 1) * stride + k
    when k >= stride; 'same' -> L * stride; k_eff = (k - 1) * dilation + 1 (dilation is 1 here).
    DepthwiseConv1D / SeparableConv1D: keras/src/ops/operation_utils.py:compute_conv_output_shape:
    'valid' -> floor((L - k_eff) / stride) + 1; 'same' -> floor((L - 1) / stride) + 1.
    tf_keras' Conv2DTranspose (conv_utils.deconv_output_length) and TF.js' agree with both."""
    if length is None:
        return None
    k_eff = (k - 1) * dilation + 1
    if cls == "Conv1DTranspose":
        return (length - 1) * stride + max(k_eff, stride) if padding == "valid" else length * stride
    return (length - k_eff) // stride + 1 if padding == "valid" else (length - 1) // stride + 1


def _conv1d_via_2d(tf_keras, x, cls: str, cfg: dict, lname: str, layer3):
    """DepthwiseConv1D / SeparableConv1D / Conv1DTranspose (TF.js has none of them) -> the 2D layer
    on a (T, 1, C) view: Reshape + the 2D twin with a (k, 1) kernel + Reshape back; weights set here."""
    L = tf_keras.layers
    clean, _ = sanitize_config(tf_keras, cls, cfg)
    data_format = cfg.get("data_format") or "channels_last"
    if data_format != "channels_last":
        raise BridgeError(f"layer {lname!r} ({cls}): data_format={data_format!r} is not supported by its TF.js "
                          f"rewrite (a 2-D conv on a (T, 1, C) view); use data_format='channels_last', or a "
                          f"Permute((2, 1)) before and after the layer (same weights); {_GRAPH_NEXT}")
    k, stride, dilation = _one(clean["kernel_size"]), _one(clean["strides"]), _one(clean.get("dilation_rate", 1))
    if stride > 1 and dilation > 1 and cls != "Conv1DTranspose":
        # Keras 3 computes it; tf_keras' DepthwiseConv2D refuses the pair (with the rewrite's 2-D values)
        raise BridgeError(f"layer {lname!r} ({cls}): strides={stride} with dilation_rate={dilation} is not supported "
                          f"by its TF.js rewrite (tf_keras/TF.js convolutions take strides > 1 or dilation_rate > 1, "
                          f"not both); {_GRAPH_NEXT}")
    padding = clean["padding"]
    if padding == "causal":
        x = L.ZeroPadding1D((dilation * (k - 1), 0), name=f"{lname}__causal_pad")(x)
        padding = "valid"
    # (stride, stride), not (stride, 1): the view's width is 1 and the kernel's too, so a stride along
    # it leaves the width at 1 ("same" or "valid"); TF's CPU DepthwiseConv2dNative refuses unequal
    # strides when TensorFlow runs without oneDNN (CPUs without AVX-512), and the export's checks
    # run this model in TensorFlow.
    common = dict(strides=(stride, stride), padding=padding, dilation_rate=(dilation, 1))
    act = clean.get("activation") or "linear"
    weights = layer3.get_weights()
    # The Reshapes carry the static length when it is known: TF.js' Reshape infers a -1 only when every
    # input dimension, batch included, is known (tfjs-layers dist/layers/core.js Reshape.computeOutputShape),
    # so with -1 a following Flatten/Dense saw an unknown length ("The shape of the input to "Flatten" is
    # not fully defined") although tf_keras knew it; the model failed to load in TF.js (F8).
    length = None if x.shape[1] is None else int(x.shape[1])
    out_length = _conv1d_out_length(cls, length, k, stride, dilation, padding)
    y = L.Reshape((-1 if length is None else length, 1, int(x.shape[-1])), name=f"{lname}__as_2d")(x)
    if cls == "DepthwiseConv1D":
        conv = L.DepthwiseConv2D((k, 1), depth_multiplier=clean["depth_multiplier"], use_bias=clean["use_bias"],
                                 activation=act, name=f"{lname}__2d", **common)
        y = conv(y)
        conv.set_weights([weights[0][:, None]] + weights[1:])
    elif cls == "SeparableConv1D":
        depthwise = L.DepthwiseConv2D((k, 1), depth_multiplier=clean["depth_multiplier"], use_bias=False,
                                      name=f"{lname}__depthwise", **common)
        pointwise = L.Conv2D(clean["filters"], 1, use_bias=clean["use_bias"], activation=act, name=f"{lname}__2d")
        y = pointwise(depthwise(y))
        depthwise.set_weights([weights[0][:, None]])
        pointwise.set_weights([weights[1][:, None]] + weights[2:])
    else:  # Conv1DTranspose
        if clean.get("output_padding") is not None:
            raise BridgeError(f"layer {lname!r} (Conv1DTranspose): output_padding has no TF.js equivalent")
        if dilation != 1:
            raise BridgeError(f"layer {lname!r} (Conv1DTranspose): dilation_rate {dilation} has no TF.js equivalent")
        conv = L.Conv2DTranspose(clean["filters"], (k, 1), strides=(stride, 1), padding=padding,
                                 use_bias=clean["use_bias"], activation=act, name=f"{lname}__2d")
        y = conv(y)
        conv.set_weights([weights[0][:, None]] + weights[1:])
    if y.shape[1] != out_length:  # tf_keras' static shape of the 2-D twin against Keras 3's formula
        raise BridgeError(f"layer {lname!r} ({cls}): its 2-D rewrite gives length {y.shape[1]} on {length} steps, "
                          f"Keras {out_length}; {_GRAPH_NEXT}")
    return L.Reshape((-1 if out_length is None else out_length, int(y.shape[-1])), name=lname)(y)


# Keras 3 layer options the library's TF.js layers (static/facepack/layers/) do not implement:
# class -> (config key, allowed values). Refused here so the exporter falls back with a reason.
_JS_LIMITS = {
    "GroupNormalization": [("axis", (-1,))],
    "Resizing": [("interpolation", ("bilinear", "nearest")), ("data_format", ("channels_last", None))],
    "UpSampling2D": [("interpolation", ("bilinear", "nearest")), ("data_format", ("channels_last", None))],
    "CenterCrop": [("data_format", ("channels_last", None))],
    "MultiHeadAttention": [("attention_axes", (None, (1,), [1], (-2,), [-2]))],
    "Conv3D": [("groups", (1, None))],
    "Conv3DTranspose": [("dilation_rate", (1, (1, 1, 1), [1, 1, 1])), ("output_padding", (None,)),
                        ("data_format", ("channels_last", None))],
}


def _einsum_supported(equation: str) -> bool:
    """mirrors static/facepack/layers/einsum_dense.js:parseEquation (one matMul, no "...")."""
    import re

    m = re.fullmatch(r"([a-z]+),([a-z]+)->([a-z]+)", equation.replace(" ", ""))
    if not m:
        return False
    inp, ker, out = m.groups()
    contracted = {c for c in inp if c in ker and c not in out}
    free = {c for c in inp if c in out and c not in ker} | {c for c in ker if c in out and c not in inp}
    return set(inp + ker) <= contracted | free and len(free) == len(out)


def _check_js_limits(cls: str, cfg: dict, lname: str) -> None:
    if cls == "EinsumDense" and not _einsum_supported(str(cfg.get("equation"))):
        raise BridgeError(f"layer {lname!r} (EinsumDense): equation {cfg.get('equation')!r} is not implemented by the "
                          f"TF.js layer (letters only, each a free input, free kernel or contracted axis)")
    for key, allowed in _JS_LIMITS.get(cls, ()):
        if cfg.get(key) not in allowed:
            raise BridgeError(f"layer {lname!r} ({cls}): {key}={cfg.get(key)!r} is not implemented by the TF.js "
                              f"layer (supported: {[a for a in allowed if a is not None]})")


_MERGE_CLASSES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
# A model used as a layer (transfer learning: base = MobileNetV2(...); y = base(x)) is rebuilt as
# a nested tf_keras model, recursively.
_NESTED_MODELS = {"Functional", "Sequential", "Model"}
_REBUILT = {"Functional", "Sequential", "Model", "SeparableConv2D", "MultiHeadAttention", "DepthwiseConv1D", "SeparableConv1D", "Conv1DTranspose"}
_CONV1D_VIA_2D = {"DepthwiseConv1D", "SeparableConv1D", "Conv1DTranspose"}
# Identity at inference (TF.js lacks these classes): the output is the input. The random image
# augmentations were each checked to return their input with training=False (Keras 3.x).
_INFERENCE_IDENTITY = {"Identity", "SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization",
                       "AugMix", "CutMix", "MixUp", "RandAugment", "RandomBrightness", "RandomColorDegeneration",
                       "RandomColorJitter", "RandomContrast", "RandomElasticTransform", "RandomErasing",
                       "RandomFlip", "RandomGaussianBlur", "RandomGrayscale", "RandomHue", "RandomInvert",
                       "RandomPerspective", "RandomPosterization", "RandomRotation", "RandomSaturation",
                       "RandomSharpness", "RandomShear", "RandomTranslation", "RandomZoom", "Solarization"}
# Layers the bridge refuses, with the reason (they work on strings or hashed ids TF.js layers lack).
# IntegerLookup and Hashing are not among them: _integer_lookup / _hashing write them for
# static/facepack/layers/lookup.js / hashing.js.
_REFUSED = {name: "string/vocabulary preprocessing has no TF.js layer; apply it before the model"
            for name in ("StringLookup", "TextVectorization", "HashedCrossing")}
# IntegerLookup output modes static/facepack/layers/lookup.js implements
_LOOKUP_MODES = ("int", "one_hot", "multi_hot", "count")


def _integer_lookup(tf_keras, x, cfg: dict, lname: str, layer3):
    """IntegerLookup -> tf_keras' IntegerLookup with the Keras 3 layer's whole vocabulary in its config
    (get_vocabulary(): Keras 3's get_config() has no adapted vocabulary, only vocabulary_size);
    TF.js runs it as static/facepack/layers/lookup.js. Options that layer lacks are refused here,
    each with its reason, so that the exporter moves on to the graph path."""
    def refuse(why: str):
        raise BridgeError(f"layer {lname!r} (IntegerLookup): {why}; {_GRAPH_NEXT}")

    mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(cfg.get("output_mode"), cfg.get("output_mode") or "int")
    if mode == "tf_idf":
        refuse("output_mode='tf_idf' is not implemented by the TF.js layer (use 'count' and a Dense on the "
               "counts with the idf folded into its kernel; not keras.ops)")
    if mode not in _LOOKUP_MODES:
        refuse(f"output_mode={mode!r} is not implemented by the TF.js layer (supported: {list(_LOOKUP_MODES)})")
    if cfg.get("sparse"):
        refuse("sparse=True outputs have no TF.js equivalent (TF.js has no sparse tensors)")
    num_oov = int(cfg.get("num_oov_indices", 1))
    method = cfg.get("oov_method") or "floormod"
    if num_oov > 1 and method not in ("floormod", "farmhash"):
        refuse(f"oov_method={method!r} is not implemented by the TF.js layer (floormod, farmhash are)")
    # farmhash: lookup.js hashes the OOV ids' decimal strings as Keras does (hashing.js's hashBin:
    # FarmHash Fingerprint64, or SipHash-2-4 keyed by the salt); only used with num_oov_indices > 1
    hashed = num_oov > 1 and method == "farmhash"
    salt = cfg.get("salt") if hashed else None
    if salt is not None:
        salt = _salt_words(salt, refuse)
    tokens = [int(t) for t in layer3.get_vocabulary(include_special_tokens=False)]
    if not tokens:
        refuse("it has no vocabulary (adapt it or pass vocabulary=) before the export")
    outside = [t for t in tokens if not INT32_MIN <= t <= INT32_MAX]
    if outside:
        refuse(f"vocabulary entries {outside[:3]} do not fit TF.js' int32 ids")
    specials = [cfg.get("mask_token"), cfg.get("oov_token")]
    if cfg.get("invert") and any(t is not None and not INT32_MIN <= int(t) <= INT32_MAX for t in specials):
        refuse("its mask_token/oov_token do not fit TF.js' int32 ids")
    if mode in ("multi_hot", "count") and len(x.shape) != 2:
        refuse(f"output_mode={mode!r} on inputs of rank {len(x.shape)} (batch included) is not implemented by the "
               f"TF.js layer (inputs of shape (batch, n) are)")
    vocabulary = layer3.get_vocabulary()
    if any(v is None for v in vocabulary):  # oov_token=None: the entries alone (the specials are implied)
        vocabulary = tokens
    layer = tf_keras.layers.IntegerLookup(
        max_tokens=cfg.get("max_tokens"), num_oov_indices=num_oov, mask_token=cfg.get("mask_token"),
        oov_token=cfg.get("oov_token", -1), vocabulary=[int(v) for v in vocabulary], invert=bool(cfg.get("invert")),
        output_mode=mode, pad_to_max_tokens=bool(cfg.get("pad_to_max_tokens")), name=lname)
    if hashed:  # tf_keras' IntegerLookup has neither key (it floormods int ids): written for lookup.js
        tf_keras_config = layer.get_config
        layer.get_config = lambda: {**tf_keras_config(), "oov_method": "farmhash", "salt": salt}
    return layer, layer(x)


def _salt_words(salt, refuse) -> list[int]:
    """Keras' salt (one integer or a pair) as the pair the TF.js layers key SipHash-2-4 with;
    ``refuse(reason)`` (raises) for anything else or a word of magnitude 2^53 or more (model.json
    is read by JavaScript, whose numbers are exact integers only below 2^53)."""
    words = list(salt) if isinstance(salt, (list, tuple)) else [salt, salt]
    if len(words) != 2 or any(isinstance(w, bool) or not isinstance(w, int) or abs(w) >= 2**53 for w in words):
        refuse(f"salt={salt!r}: the TF.js layer takes one or two integers of magnitude below 2^53 (model.json "
               f"is read by JavaScript, whose numbers are exact integers only below 2^53)")
    return [int(w) for w in words]


def _hashing(tf_keras, x, cfg: dict, lname: str):
    """Hashing of int ids -> tf_keras' Hashing with the same config; TF.js runs it as
    static/facepack/layers/hashing.js (bit-exact: FarmHash Fingerprint64, or SipHash-2-4 keyed by the
    salt, of each id's decimal string, mod the bins). Options that layer lacks are refused here, each
    with its reason (the graph path cannot take them either: TF.js has no AsString op)."""
    def refuse(why: str):
        raise BridgeError(f"layer {lname!r} (Hashing): {why}; {_GRAPH_NEXT}")

    dtype = getattr(x.dtype, "name", str(x.dtype))
    if dtype not in ("int32", "int64"):
        refuse(f"inputs of dtype {dtype} are not implemented by the TF.js layer, which hashes int ids (string "
               f"inputs: TF.js layers models take no strings; floats: give the model an int input, Keras casts "
               f"floats to int64 before hashing anyway)")
    mode = {"binary": "multi_hot"}.get(cfg.get("output_mode"), cfg.get("output_mode") or "int")
    if mode not in _LOOKUP_MODES:
        refuse(f"output_mode={mode!r} is not implemented by the TF.js layer (supported: {list(_LOOKUP_MODES)})")
    if cfg.get("sparse"):
        refuse("sparse=True outputs have no TF.js equivalent (TF.js has no sparse tensors)")
    num_bins = int(cfg["num_bins"])
    if num_bins > INT32_MAX:
        refuse(f"num_bins={num_bins} does not fit the TF.js layer's int32 bins")
    mask = cfg.get("mask_value")
    if mask is not None and (isinstance(mask, bool) or not isinstance(mask, int) or not INT32_MIN <= mask <= INT32_MAX):
        refuse(f"mask_value={mask!r} is not an int32 id (the TF.js layer hashes int ids)")
    salt = cfg.get("salt")
    if salt is not None:
        salt = _salt_words(salt, refuse)
    if mode in ("multi_hot", "count") and len(x.shape) != 2:
        refuse(f"output_mode={mode!r} on inputs of rank {len(x.shape)} (batch included) is not implemented by the "
               f"TF.js layer (inputs of shape (batch, n) are)")
    if mode == "one_hot" and len(x.shape) >= 3 and tuple(x.shape[-2:]) == (1, 1):
        refuse("output_mode='one_hot' on inputs ending in (1, 1) (Keras squeezes both axes) is not implemented by "
               "the TF.js layer")
    layer = tf_keras.layers.Hashing(num_bins=num_bins, mask_value=mask, salt=salt, output_mode=mode, name=lname)
    return layer, layer(x)


class _UncompiledSaveWarning(logging.Filter):
    """Drops tf_keras' "Compiled the loaded model, but the compiled metrics have yet to be built"
    warning. tf_keras' legacy save (tensorflowjs' save_keras_model writes an HDF5 file) calls
    saving_utils.try_build_compiled_arguments, which logs it for every model that was never
    compiled (``model.compiled_loss`` is None): always the case for a bridged model, so the
    warning is false here and was printed once per model and precision."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Compiled the loaded model, but the compiled metrics" not in record.getMessage()


def _quiet_uncompiled_save_warning() -> None:
    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _UncompiledSaveWarning) for f in tf_logger.filters):
        tf_logger.addFilter(_UncompiledSaveWarning())


def to_tf_keras(model3, tf_keras, name: str | None = None):
    """Rebuild ``model3`` (Keras 3) in ``tf_keras`` with the same weights.

    Returns (tf_keras model, notes) where notes lists the replacements and dropped config keys.
    The model is not compiled (saving it does not print tf_keras' false "compiled metrics"
    warning: _UncompiledSaveWarning). Raises BridgeError naming the layer it cannot rebuild.
    """
    _quiet_uncompiled_save_warning()
    config = _functional_config(model3)
    tensors: dict = {}
    created: dict = {}  # name -> tf_keras layer to receive the source weights by name
    fixed: set = set()  # names of layers whose weights were set by a replacement
    notes: list[str] = []
    L = tf_keras.layers
    skipped = _mask_only_layers(config)
    for entry in config["layers"]:
        cls, cfg, lname = entry["class_name"], dict(entry["config"]), entry["name"]
        if cls in _REFUSED:
            raise BridgeError(f"layer {lname!r} ({cls}): {_REFUSED[cls]}")
        _check_js_limits(cls, cfg, lname)
        if lname in skipped:
            notes.append(f"{lname}: op {cls} computes a mask only; tf_keras recomputes it")
            continue
        if str(entry.get("module", "")).startswith("keras.src.ops") and getattr(L, cls, None) is None \
                and cls not in _SCALAR_OPS:  # x / 3.0: Rescaling below
            raise BridgeError(f"Keras op {cls} (node {lname!r}, from {entry['module']}) has no tf_keras layer; "
                              f"a graph model carries Keras ops")
        if cls == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            tensors[(lname, 0, 0)] = tf_keras.Input(shape=tuple(shape[1:]), name=lname, dtype=_dtype_name(cfg.get("dtype")))
            continue
        for node_index, node in enumerate(entry["inbound_nodes"]):
            args = _resolve(node["args"], tensors)
            kwargs = _call_kwargs(node, tensors, lname, skipped)
            x = args[0] if len(args) == 1 else args
            if cls in _INFERENCE_IDENTITY:
                y = x
                notes.append(f"{lname}: {cls} is the identity at inference -> removed")
            elif cls == "Flatten" and (_flatten_is_reshape(x) or (node_index > 0 and lname not in created)):
                y = _flatten(tf_keras, x, cfg, lname, node_index)
                if _flatten_is_reshape(x):
                    notes.append(f"{lname}: Flatten of a rank-{len(x.shape)} input -> Reshape({tuple(y.shape[1:])}) "
                                 f"(TF.js' Flatten wants rank >= 3)")
            elif node_index > 0:
                layer = created.get(lname)
                if layer is None:
                    raise BridgeError(f"layer {lname!r}: shared replaced layers are not supported")
                y = layer(*args, **kwargs)
            elif _is_scalar_op(cls, args):
                _check_no_masks(cls, list(args), lname, "a Keras 3 op")
                y = _scalar_op(tf_keras, cls, args, lname)
                notes.append(f"{lname}: op {cls} with a constant -> Rescaling")
            elif _is_binary_tensor_op(cls, args):
                _check_no_masks(cls, list(args), lname, "a Keras 3 op")
                y = getattr(L, _MERGE_LAYERS[cls])(name=lname)(_distinct_inputs(tf_keras, args, lname))
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
            elif cls in _NESTED_MODELS:
                inner, inner_notes = to_tf_keras(model3.get_layer(lname), tf_keras, name=lname)
                created[lname] = inner
                fixed.add(lname)
                y = inner(*args, **kwargs)
                notes.extend(f"{lname}/{n}" for n in inner_notes)
            elif cls == "SeparableConv2D":
                y = _separable_conv2d(tf_keras, x, cfg, lname, model3.get_layer(lname))
                fixed.add(lname)
                notes.append(f"{lname}: SeparableConv2D -> DepthwiseConv2D + 1x1 Conv2D")
            elif cls in _CONV1D_VIA_2D:
                y = _conv1d_via_2d(tf_keras, x, cls, cfg, lname, model3.get_layer(lname))
                fixed.add(lname)
                notes.append(f"{lname}: {cls} -> Reshape + 2D twin with a (k, 1) kernel + Reshape")
            elif cls == "MultiHeadAttention":
                created[lname], y = _multi_head_attention(tf_keras, list(args), kwargs, cfg, lname)
            elif cls == "IntegerLookup":
                created[lname], y = _integer_lookup(tf_keras, x, cfg, lname, model3.get_layer(lname))
                notes.append(f"{lname}: IntegerLookup -> its vocabulary written into the config "
                             f"(static/facepack/layers/lookup.js)")
            elif cls == "Hashing":
                created[lname], y = _hashing(tf_keras, x, cfg, lname)
                notes.append(f"{lname}: Hashing of int ids (static/facepack/layers/hashing.js)")
            else:
                act = _activation_name(cfg.get("activation"))
                hard = act in _HARD_ACTIVATIONS and cls != "Activation"
                if hard:
                    cfg["activation"] = "linear"
                if cls == "Conv1D" and cfg.get("padding") == "causal":
                    if hard:
                        cfg["name"] = f"{lname}__linear"
                    layer, y = _causal_conv1d(tf_keras, x, cfg, lname)
                    notes.append(f"{lname}: Conv1D(padding='causal') -> ZeroPadding1D + Conv1D(padding='valid')")
                else:
                    clean, _ = sanitize_config(tf_keras, cls, cfg)
                    if hard:
                        clean["name"] = f"{lname}__linear"
                    try:
                        layer = getattr(L, cls).from_config(clean)
                    except (TypeError, ValueError, KeyError) as err:
                        raise BridgeError(f"layer {lname!r} ({cls}): tf_keras cannot rebuild it from its config "
                                          f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
                    if cls == "Attention":
                        _check_attention_masks(cls, list(args), kwargs, lname)
                    else:
                        if cls in _MERGE_CLASSES:
                            _check_no_masks(cls, list(args), lname, "a merge layer")
                        args = _distinct_inputs(tf_keras, list(args), lname)
                    try:
                        y = layer(*args, **kwargs)
                    except TypeError as err:
                        raise BridgeError(f"layer {lname!r} ({cls}): tf_keras rejects the call arguments "
                                          f"{sorted(kwargs)} ({str(err).splitlines()[0][:200]})") from None
                created[lname] = layer
                if hard:
                    y = _hard_activation(tf_keras, y, act, lname)
                    notes.append(f"{lname}: activation {act} split off")
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
