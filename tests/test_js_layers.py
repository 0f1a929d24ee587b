"""Keras 3 layers that need the bridge's rewrites or a custom TF.js layer, against Keras.

Each case is a one- or two-layer Keras 3 model with non-trivial weights; it goes through the
exporter's layers path (facepack/export/bridge.py:to_tf_keras -> tensorflowjs) and runs in TF.js
with the library's registered layers (static/facepack/layers/), all models in one Node process
per backend (tests/js/layers_parity.mjs), and once batched in Chromium on WebGL.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from jsharness import ROOT, node_ready, run_node

# Largest |TF.js - Keras| / max(1, max |Keras|) allowed (float32 kernels, different op order).
REL_TOL = 1e-4
BATCH = 2
SEED = 7


# --- the cases: name -> builder(keras) returning a model ------------------------------------

def _seq(keras, shape, *layers):
    inp = keras.Input(shape)
    y = inp
    for layer in layers:
        y = layer(y)
    return keras.Model(inp, y)


def _attention(keras, **kwargs):
    q, v = keras.Input((5, 4)), keras.Input((6, 4))
    call = {"use_causal_mask": kwargs.pop("causal", False)}
    if call["use_causal_mask"]:
        v = keras.Input((5, 4))
    return keras.Model([q, v], keras.layers.Attention(name="att", **kwargs)([q, v], **call))


def _mha(keras, cross: bool, causal: bool = False, **kwargs):
    q = keras.Input((5, 6))
    if not cross:
        y = keras.layers.MultiHeadAttention(name="mha", **kwargs)(q, q, use_causal_mask=causal)
        return keras.Model(q, y)
    v, k = keras.Input((7, 4)), keras.Input((7, 3))
    y = keras.layers.MultiHeadAttention(name="mha", **kwargs)(q, v, key=k, use_causal_mask=causal)
    return keras.Model([q, v, k], y)


def _masked(keras, layer):
    """Token ids (0 = padding) -> Embedding(mask_zero=True) -> ``layer(keras, embedded)``: Keras masks."""
    ids = keras.Input((6,), dtype="int32")
    return keras.Model(ids, layer(keras, keras.layers.Embedding(10, 4, mask_zero=True)(ids)))


def _transformer_fn(keras):
    return lambda x: _transformer(keras, x)


def _transformer(keras, x):
    """Self-attention (its input also used by the residual), LayerNorm, GELU MLP, BiGRU, pooling."""
    L = keras.layers
    x = L.LayerNormalization()(x + L.MultiHeadAttention(2, 4)(x, x))
    x = L.LayerNormalization()(x + L.Dense(4)(L.Dense(8, activation="gelu")(x)))
    return L.GlobalAveragePooling1D()(L.Bidirectional(L.GRU(3, return_sequences=True))(x))


def _token_ids(xs):
    """Probe -> int32 ids in 1..9 with trailing padding (sample 0: 2 padded steps, sample 1: 4)."""
    ids = 1 + (np.abs(np.round(xs[0] * 3)).astype(np.int32) % 9)
    ids[0, 4:] = 0
    ids[1, 2:] = 0
    xs[0] = ids


def _integer_lookup(keras):
    """Token ids -> IntegerLookup (3 floormod OOV buckets, mask 0) -> Embedding -> mean pooling."""
    L = keras.layers
    ids = keras.Input((6,), dtype="int32")
    lookup = L.IntegerLookup(vocabulary=LOOKUP_VOCAB, num_oov_indices=3, mask_token=0)
    return keras.Model(ids, L.GlobalAveragePooling1D()(L.Embedding(lookup.vocabulary_size(), 4)(lookup(ids))))


LOOKUP_VOCAB = [100, 250, 7, 3000, 42, 8]


def _lookup_ids(xs):
    """Probe -> int32 ids: vocabulary entries, the mask 0, negative and large out-of-vocabulary ids."""
    ids = np.array(LOOKUP_VOCAB, np.int32)[np.abs(np.round(xs[0] * 3)).astype(np.int32) % len(LOOKUP_VOCAB)]
    ids[0, :3] = [0, -5, 99999]
    ids[1, 3:] = [43, 0, -7]
    xs[0] = ids


def _hashing(keras, **kwargs):
    """Int ids -> Hashing (decimal string -> FarmHash64, or SipHash-2-4 with a salt) -> Embedding -> mean pooling."""
    L = keras.layers
    ids = keras.Input((6,), dtype="int32")
    hashing = L.Hashing(**kwargs)
    return keras.Model(ids, L.GlobalAveragePooling1D()(L.Embedding(hashing.num_bins, 4)(hashing(ids))))


def _hash_ids(xs):
    """Probe -> int32 ids with both signs and 1-8 digits (exact in the float32 files), the mask 0."""
    ids = np.round(xs[0] * 10 ** np.arange(1, 7)).astype(np.int32)
    ids[0, :3] = [0, -1, 16777215]
    ids[1, 3:] = [0, -16777215, 7]
    xs[0] = ids


def _category_encoding(keras):
    """Token ids -> CategoryEncoding count / multi_hot / one_hot (ids >= num_tokens included: Keras
    drops them, TF.js' own layer threw) -> Dense."""
    L = keras.layers
    ids = keras.Input((6,), dtype="int32")
    one = keras.Input((1,), dtype="int32")
    count = L.CategoryEncoding(num_tokens=5, output_mode="count")(ids)
    multi = L.CategoryEncoding(num_tokens=5, output_mode="multi_hot")(ids)
    onehot = L.CategoryEncoding(num_tokens=4, output_mode="one_hot")(one)
    return keras.Model([ids, one], [L.Dense(3)(L.Concatenate()([count, multi, onehot])), count])


def _category_ids(xs):
    """Probe -> int32 ids in 0..7 (5, 6, 7 >= num_tokens 5; 4..7 >= 4 for the one_hot input)."""
    xs[0] = (np.abs(np.round(xs[0] * 3)).astype(np.int32) % 8)
    xs[0][0, :3] = [5, 7, 0]
    xs[1] = (np.abs(np.round(xs[1] * 3)).astype(np.int32) % 8)
    xs[1][0, 0] = 6


def _nested(keras):
    """Transfer-learning shape: a functional base model and a Sequential head used as layers."""
    L = keras.layers
    base_in = keras.Input((8, 8, 3))
    base = keras.Model(base_in, L.GlobalAveragePooling2D()(L.BatchNormalization()(L.Conv2D(4, 3)(base_in))), name="base")
    head = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(2)], name="head")
    inp = keras.Input((8, 8, 3))
    return keras.Model(inp, head(base(inp)))


def _repeated_inputs(keras):
    """One tensor fed twice to a layer AND used elsewhere (TF.js released it too early)."""
    L = keras.layers
    inp = keras.Input((6,))
    x = L.Dense(4)(inp)
    square = L.Multiply()([x, x])
    return keras.Model(inp, L.Subtract()([L.Add()([square, x, x * x]), x]))


def _gelu_dense(keras):
    return _seq(keras, (6,), keras.layers.Dense(5, activation="gelu"), keras.layers.Activation("gelu"))


def _dot(keras):
    a, b = keras.Input((4, 3)), keras.Input((5, 3))
    return keras.Model([a, b], keras.layers.Dot(axes=2, normalize=True)([a, b]))


# name -> builder(keras). The first block are the layers of issue 11 (each needed a bridge rewrite
# or a custom TF.js layer); the second, other Keras layers checked the same way.
CASES = {
    "conv1d_causal": lambda k: _seq(k, (12, 3), k.layers.Conv1D(4, 3, padding="causal", dilation_rate=2)),
    "separable_conv2d": lambda k: _seq(k, (8, 8, 3), k.layers.SeparableConv2D(4, 3, depth_multiplier=2, padding="same")),
    "group_norm": lambda k: _seq(k, (6, 6, 6), k.layers.GroupNormalization(groups=3)),
    "unit_norm": lambda k: _seq(k, (10,), k.layers.UnitNormalization()),
    "attention_dot": lambda k: _attention(k, use_scale=True),
    "attention_concat_causal": lambda k: _attention(k, score_mode="concat", use_scale=True, causal=True),
    "gru_reset_after": lambda k: _seq(k, (7, 3), k.layers.GRU(5, return_sequences=True)),
    "gru_reset_before": lambda k: _seq(k, (7, 3), k.layers.GRU(5, reset_after=False)),
    "bidirectional_gru": lambda k: _seq(k, (7, 3), k.layers.Bidirectional(k.layers.GRU(4))),
    "resizing_bilinear": lambda k: _seq(k, (8, 10, 3), k.layers.Resizing(5, 7)),
    "resizing_nearest_crop": lambda k: _seq(k, (8, 10, 3), k.layers.Resizing(6, 6, interpolation="nearest", crop_to_aspect_ratio=True)),
    "upsampling_bilinear": lambda k: _seq(k, (5, 4, 3), k.layers.UpSampling2D(2, interpolation="bilinear")),
    "bidirectional_lstm": lambda k: _seq(k, (7, 3), k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True))),
    "timedistributed_conv2d": lambda k: _seq(k, (3, 6, 6, 2), k.layers.TimeDistributed(k.layers.Conv2D(4, 3))),
    "mha_self_causal": lambda k: _mha(k, cross=False, causal=True, num_heads=2, key_dim=3),
    "mha_cross": lambda k: _mha(k, cross=True, num_heads=3, key_dim=2, value_dim=4),
    "leaky_relu": lambda k: _seq(k, (6,), k.layers.LeakyReLU(negative_slope=0.2)),
    "relu_slope_threshold": lambda k: _seq(k, (6,), k.layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2)),
    "elu_alpha_softmax_axis": lambda k: _seq(k, (4, 5), k.layers.ELU(alpha=0.5), k.layers.Softmax(axis=1)),
    "softmax_two_axes": lambda k: _seq(k, (4, 5), k.layers.Softmax(axis=(1, 2))),
    "gelu_exact": _gelu_dense,
    # -- other layer kinds
    "masked_attention": lambda k: _masked(k, lambda k, e: k.layers.Attention(use_scale=True)([e, e])),
    "masked_mha_causal": lambda k: _masked(k, lambda k, e: k.layers.MultiHeadAttention(2, 3)(e, e, use_causal_mask=True)),
    "masked_mha_dropout": lambda k: _masked(k, lambda k, e: k.layers.MultiHeadAttention(2, 3, dropout=0.1)(e, e)),
    "masked_bidirectional_lstm": lambda k: _masked(k, lambda k, e: k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True))(e)),
    "masked_bidirectional_gru": lambda k: _masked(k, lambda k, e: k.layers.Bidirectional(k.layers.GRU(3, return_sequences=True))(e)),
    "masked_simple_rnn_backwards": lambda k: _masked(k, lambda k, e: k.layers.SimpleRNN(3, return_sequences=True, go_backwards=True, zero_output_for_mask=True)(e)),
    "nested_models": _nested,
    "mask_consumed_then_rnn": lambda k: _masked(k, lambda k, e: k.layers.LSTM(3)(k.layers.RepeatVector(4)(
        k.layers.Dense(3)(k.layers.LSTM(3)(e))))),
    "mask_dropped_by_reshape": lambda k: _masked(k, lambda k, e: k.layers.GRU(3)(k.layers.Reshape((6, 4))(e))),
    "masked_reshape_pooling": lambda k: _masked(k, lambda k, e: k.layers.Concatenate()([
        k.layers.GlobalAveragePooling1D()(e), k.layers.Flatten()(k.layers.Reshape((12, 2))(e))])),
    "repeated_inputs": _repeated_inputs,
    "merges": lambda k: _seq(k, (4, 3), k.layers.Dense(3), lambda x: k.layers.Maximum()([
        k.layers.Average()([x, k.layers.Minimum()([x, k.layers.Dense(3)(x)])]), k.layers.Multiply()([x, x]) - x])),
    "transformer_block": lambda k: _seq(k, (6, 4), _transformer_fn(k)),
    "masking_lstm": lambda k: _seq(k, (6, 3), k.layers.Masking(0.0), k.layers.LSTM(4)),
    "layer_norm_two_axes": lambda k: _seq(k, (4, 5, 3), k.layers.LayerNormalization(axis=[-2, -1])),
    "depthwise_conv2d_dilated": lambda k: _seq(k, (9, 9, 3), k.layers.DepthwiseConv2D(3, dilation_rate=(2, 3), depth_multiplier=2, padding="same")),
    "depthwise_conv1d": lambda k: _seq(k, (9, 3), k.layers.DepthwiseConv1D(3, strides=2, padding="same", activation="relu")),
    "separable_conv1d_dilated": lambda k: _seq(k, (8, 3), k.layers.SeparableConv1D(4, 3, dilation_rate=2, depth_multiplier=2)),
    "conv1d_transpose": lambda k: _seq(k, (6, 3), k.layers.Conv1DTranspose(4, 3, strides=2, padding="same")),
    "conv2d_transpose": lambda k: _seq(k, (5, 5, 3), k.layers.Conv2DTranspose(4, 3, strides=2, padding="same")),
    "conv3d_transpose_same": lambda k: _seq(k, (3, 3, 2, 2), k.layers.Conv3DTranspose(3, 3, strides=2, padding="same")),
    "conv3d_transpose_valid": lambda k: _seq(k, (2, 3, 3, 2), k.layers.Conv3DTranspose(3, (2, 3, 1), strides=(1, 2, 3))),
    "conv2d_groups": lambda k: _seq(k, (6, 6, 4), k.layers.Conv2D(6, 3, groups=2, strides=2, padding="same", activation="relu")),
    "conv2d_groups_depthwise": lambda k: _seq(k, (6, 6, 3), k.layers.Conv2D(6, 3, groups=3, padding="same")),
    "conv1d_groups": lambda k: _seq(k, (8, 4), k.layers.Conv1D(4, 3, groups=4, dilation_rate=2)),
    "integer_lookup": _integer_lookup,
    "category_encoding": _category_encoding,
    "hashing_mask": lambda k: _hashing(k, num_bins=7, mask_value=0),
    "hashing_salt": lambda k: _hashing(k, num_bins=5, salt=[133, 137]),
    "einsum_dense": lambda k: _seq(k, (5, 4), k.layers.EinsumDense("abc,cd->abd", output_shape=(None, 3), bias_axes="d", activation="tanh")),
    "einsum_dense_heads": lambda k: _seq(k, (5, 4), k.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de"),
                                         k.layers.EinsumDense("abde,dec->abc", output_shape=(None, 4), bias_axes="c")),
    "einsum_dense_transposed": lambda k: _seq(k, (4, 6), k.layers.EinsumDense("abc,bd->adc", output_shape=(3, 6), bias_axes="d")),
    "conv3d": lambda k: _seq(k, (4, 5, 5, 2), k.layers.Conv3D(3, 3, padding="same")),
    "conv_lstm2d": lambda k: _seq(k, (3, 5, 5, 2), k.layers.ConvLSTM2D(3, 3, padding="same")),
    "spatial_dropout2d": lambda k: _seq(k, (5, 5, 3), k.layers.SpatialDropout2D(0.3), k.layers.Conv2D(2, 1)),
    "identity": lambda k: _seq(k, (4,), k.layers.Identity(), k.layers.Dense(2)),
    "cropping1d": lambda k: _seq(k, (8, 3), k.layers.Cropping1D((1, 2))),
    "cropping3d": lambda k: _seq(k, (4, 4, 4, 2), k.layers.Cropping3D(((1, 0), (0, 1), (1, 1)))),
    "zero_padding3d": lambda k: _seq(k, (2, 2, 2, 2), k.layers.ZeroPadding3D(1)),
    "upsampling1d": lambda k: _seq(k, (4, 3), k.layers.UpSampling1D(2)),
    "upsampling3d": lambda k: _seq(k, (2, 2, 2, 2), k.layers.UpSampling3D((2, 1, 3))),
    "global_pooling3d": lambda k: _seq(k, (3, 3, 3, 2), k.layers.GlobalMaxPooling3D(keepdims=True), k.layers.GlobalAveragePooling3D()),
    "center_crop": lambda k: _seq(k, (8, 9, 3), k.layers.CenterCrop(5, 4)),
    "permute_repeat": lambda k: _seq(k, (4, 5), k.layers.Permute((2, 1)), k.layers.Flatten(), k.layers.RepeatVector(2)),
    "dot_normalize": _dot,
    "activations": lambda k: _seq(k, (6,), k.layers.Dense(5, activation="relu6"), k.layers.Dense(5, activation="mish"),
                                  k.layers.Dense(5, activation="leaky_relu"), k.layers.Dense(5, activation="selu"),
                                  k.layers.Dense(5, activation="exponential"), k.layers.Activation("log_softmax")),
}
# Cases whose probe needs more than N(0, 1) noise: name -> fn(list of inputs) in place.
PROBE_EDITS = {
    **{name: _token_ids for name in ("masked_attention", "masked_mha_causal", "masked_mha_dropout", "masked_reshape_pooling",
                                     "mask_consumed_then_rnn", "mask_dropped_by_reshape",
                                     "masked_bidirectional_lstm", "masked_bidirectional_gru",
                                     "masked_simple_rnn_backwards")},
    "masking_lstm": lambda xs: xs[0].__setitem__((0, 4, slice(None)), 0.0) or xs[0].__setitem__((1, 1, slice(None)), 0.0),
    "integer_lookup": _lookup_ids,
    "category_encoding": _category_ids,
    "hashing_mask": _hash_ids,
    "hashing_salt": _hash_ids,
    # exponential of a random dense layer: keep its inputs small so outputs stay O(1)
    "activations": lambda xs: xs[0].__imul__(0.3),
}
# The classes of static/facepack/layers/ (index.js REGISTERED_LAYERS) each case exercises.
CUSTOM_LAYERS = {
    "conv1d_causal": "ZeroPadding1D", "group_norm": "GroupNormalization", "unit_norm": "UnitNormalization",
    "attention_dot": "Attention", "attention_concat_causal": "Attention", "gru_reset_after": "GRU",
    "bidirectional_gru": "GRU", "resizing_bilinear": "Resizing", "resizing_nearest_crop": "Resizing",
    "upsampling_bilinear": "UpSampling2D", "mha_self_causal": "MultiHeadAttention", "mha_cross": "MultiHeadAttention",
    "relu_slope_threshold": "ReLU", "elu_alpha_softmax_axis": ("ELU", "Softmax"), "softmax_two_axes": "Softmax",
    "cropping1d": "Cropping1D", "cropping3d": "Cropping3D", "zero_padding3d": "ZeroPadding3D",
    "upsampling1d": "UpSampling1D", "upsampling3d": "UpSampling3D", "global_pooling3d": ("GlobalMaxPooling3D", "GlobalAveragePooling3D"),
    "center_crop": "CenterCrop", "depthwise_conv2d_dilated": "DepthwiseConv2D",
    "separable_conv1d_dilated": "DepthwiseConv2D", "masked_attention": "Attention",
    "masked_mha_causal": "MultiHeadAttention", "masked_mha_dropout": "MultiHeadAttention",
    "masked_bidirectional_lstm": ("Bidirectional", "LSTM"), "masked_bidirectional_gru": ("Bidirectional", "GRU"),
    "masked_simple_rnn_backwards": "SimpleRNN", "conv3d_transpose_same": "Conv3DTranspose",
    "conv3d_transpose_valid": "Conv3DTranspose", "conv2d_groups": "Conv2D", "conv1d_groups": "Conv1D",
    "conv2d_groups_depthwise": "Conv2D", "einsum_dense": "EinsumDense", "integer_lookup": "IntegerLookup", "category_encoding": "CategoryEncoding", "hashing_mask": "Hashing", "hashing_salt": "Hashing", "einsum_dense_heads": "EinsumDense",
    "einsum_dense_transposed": "EinsumDense", "repeated_inputs": ("Multiply", "Add", "Subtract"),
    "merges": ("Maximum", "Average", "Minimum", "Multiply", "Subtract"),
    "transformer_block": ("MultiHeadAttention", "Add", "Bidirectional", "GRU", "GlobalAveragePooling1D"),
    "masked_reshape_pooling": ("Reshape", "GlobalAveragePooling1D"),
    "mask_consumed_then_rnn": ("Functional", "LSTM"), "mask_dropped_by_reshape": ("Functional", "Reshape", "GRU"),
}


# --- export and run --------------------------------------------------------------------------

def randomize_weights(model, seed: int = SEED) -> None:
    """Replace every weight by seeded noise of unit-ish scale (variances kept positive)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        names = [w.path if hasattr(w, "path") else w.name for w in layer.weights]
        new = []
        for name, w in zip(names, weights):
            noise = rng.normal(0.0, 0.5, w.shape).astype(w.dtype)
            new.append(np.abs(noise) + 0.5 if "variance" in name else noise)
        layer.set_weights(new)


def probe_inputs(model, name: str = "", seed: int = SEED) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    xs = [rng.normal(0.0, 1.0, (BATCH,) + tuple(t.shape[1:])).astype(np.float32) for t in model.inputs]
    if name in PROBE_EDITS:
        PROBE_EDITS[name](xs)
    return xs


def export_case(keras, tf_keras, name: str, folder: Path):
    """Build, randomise and export one case; returns (inputs, Keras outputs) or raises."""
    from facepack.export.bridge import to_tf_keras
    from facepack.export.tfjs_io import predict_list, save_layers_model

    model3 = CASES[name](keras)
    randomize_weights(model3)
    xs = probe_inputs(model3, name)
    expected = predict_list(model3, xs if len(xs) > 1 else xs[0])
    model2, _ = to_tf_keras(model3, tf_keras, name=name)
    save_layers_model(model2, folder)
    return xs, expected


def run_cases(exported: dict, backend: str, work: Path) -> dict:
    """{name: [outputs] | error string} of every exported case on ``backend`` (one Node process)."""
    work.mkdir(parents=True, exist_ok=True)
    models = []
    for name, (folder, xs, _) in exported.items():
        inputs = []
        for j, x in enumerate(xs):
            path = work / f"{name}_in{j}.f32"
            np.ascontiguousarray(x, "<f4").tofile(path)
            inputs.append({"file": str(path), "shape": list(x.shape)})
        models.append({"name": name, "op": name, "inputs": inputs} if folder is None
                      else {"name": name, "dir": str(folder), "inputs": inputs})
    result = run_node("layers_parity.mjs", {"backend": backend, "out": str(work), "models": models}, timeout=600)
    assert result["backend"] == backend
    out = {}
    for r in result["results"]:
        out[r["name"]] = r.get("error") or [np.fromfile(f, "<f4").reshape(s) for f, s in zip(r["files"], r["shapes"])]
    return out


def rel_error(expected: list, got: list) -> float:
    if len(expected) != len(got):
        return float("inf")
    worst = 0.0
    for e, g in zip(expected, got):
        if e.shape != g.shape:
            return float("inf")
        worst = max(worst, float(np.max(np.abs(e - g))) / max(1.0, float(np.max(np.abs(e)))))
    return worst


# --- the tests ---------------------------------------------------------------------------------

pytestmark = pytest.mark.skipif(not node_ready()[0], reason=node_ready()[1])
BACKENDS = ("cpu", "wasm")
# WebGL (SwiftShader in CI) computes exp/tanh/division in its own float32 shader code.
WEBGL_REL_TOL = 1e-4
# erfc (Numerical Recipes erfcc, fractional error < 1.2e-7) evaluated in float32, absolute error.
ERFC_ABS_TOL = 1e-6
# ... and relative where erfc is small (x > 2): float32 rounding of -x^2 (up to 81) in the exponent
# alone moves exp() by up to ~81 * 2^-24 relative; measured 1.1e-5.
ERFC_TAIL_REL_TOL = 3e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (folder, inputs, Keras outputs)} for every case of CASES, exported once."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tf_keras

    root = tmp_path_factory.mktemp("js_layers")
    return {name: (root / name, *export_case(keras, tf_keras, name, root / name)) for name in CASES}


@pytest.fixture(scope="module")
def gelu_graph(tmp_path_factory):
    """Exact GELU as a TF.js GRAPH model: the converter emits Erfc, which only our registerOp supplies."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from facepack.export.tfjs_io import _tensorflowjs, predict_list

    root = tmp_path_factory.mktemp("gelu_graph")
    model = _gelu_dense(keras)
    randomize_weights(model)
    xs = probe_inputs(model)
    model.export(str(root / "saved"), format="tf_saved_model", verbose=False)
    _tensorflowjs().converters.convert_tf_saved_model(str(root / "saved"), str(root / "graph"), skip_op_check=True)
    ops = {n["op"] for n in json.loads((root / "graph" / "model.json").read_text())["modelTopology"]["node"]}
    return root / "graph", xs, predict_list(model, xs[0]), ops


@pytest.fixture(scope="module")
def node_results(exported, gelu_graph, tmp_path_factory):
    """{backend: {case: outputs | error}} - one Node process per backend for all cases."""
    grid = np.linspace(-9.0, 9.0, 721, dtype=np.float32).reshape(1, -1)
    models = {**exported, "gelu_graph": gelu_graph[:3], "erfc": (None, [grid], None)}
    out = {}
    for backend in BACKENDS:
        out[backend] = run_cases(models, backend, tmp_path_factory.mktemp(f"js_layers_{backend}"))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_keras(name, backend, exported, node_results):
    got = node_results[backend][name]
    assert not isinstance(got, str), f"{name} on {backend}: {got}"
    err = rel_error(exported[name][2], got)
    assert err < REL_TOL, f"{name} on {backend}: relative error {err:.2e}"


def test_probes_exercise_the_layers(exported):
    """A probe that gives (near) constant outputs would pass any parity check."""
    for name, (_, _, expected) in exported.items():
        spread = max(float(np.std(e)) for e in expected)
        assert spread > 1e-2, f"{name}: Keras outputs barely vary (std {spread:.1e})"


def test_every_custom_layer_has_a_case():
    index = (ROOT / "static" / "facepack" / "layers" / "index.js").read_text()
    registered = set(re.findall(r"'(\w+)'", index[index.index("REGISTERED_LAYERS"):]))
    covered = {c for v in CUSTOM_LAYERS.values() for c in ((v,) if isinstance(v, str) else v)}
    covered |= {"Functional", "GRUCellResetAfter"}  # used by the Attention/MHA and GRU cases
    assert registered - covered == set(), f"registered layers without a parity case: {registered - covered}"
    assert covered - {"Functional", "GRUCellResetAfter"} <= registered


def test_python_knows_the_registered_graph_ops():
    from facepack.export.bridge import JS_REGISTERED_OPS

    ops_js = (ROOT / "static" / "facepack" / "layers" / "ops.js").read_text()
    listed = re.search(r"REGISTERED_OPS = \[([^\]]*)\]", ops_js).group(1)
    registered = re.findall(r"registerOp\('(\w+)'", ops_js)
    assert sorted(re.findall(r"'(\w+)'", listed)) == sorted(registered) == sorted(JS_REGISTERED_OPS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_erfc_op_in_a_graph_model(backend, gelu_graph, node_results):
    folder, xs, expected, ops = gelu_graph
    assert "Erfc" in ops, f"the converter wrote no Erfc op (ops: {sorted(ops)})"
    got = node_results[backend]["gelu_graph"]
    assert not isinstance(got, str), f"graph model with Erfc on {backend}: {got}"
    assert rel_error(expected, got) < REL_TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_erfc_accuracy(backend, node_results):
    x = np.linspace(-9.0, 9.0, 721)
    want = np.array([math.erfc(v) for v in x])
    got = node_results[backend]["erfc"][0].reshape(-1).astype(np.float64)
    assert np.max(np.abs(got - want)) < ERFC_ABS_TOL
    tail = x > 2  # relative accuracy where erfc is small (the GELU tail)
    assert np.max(np.abs(got[tail] - want[tail]) / want[tail]) < ERFC_TAIL_REL_TOL


def test_custom_layers_on_webgl_in_chromium(exported, gelu_graph):
    """The custom layers (and the Erfc op) in a page on WebGL: one Chromium, one batched job."""
    from jsharness import JS_DIR, chromium_page, chromium_ready, page_html, static_server, wait_for_global

    ready, why = chromium_ready()
    if not ready:
        pytest.skip(why)
    cases = {name: exported[name] for name in CUSTOM_LAYERS}
    root = Path(gelu_graph[0]).parent.parent  # both tmp folders share pytest's base temp
    models, expected = [], {}
    for name, (folder, xs, want) in {**cases, "gelu_graph": gelu_graph[:3]}.items():
        url = "/cases/" + Path(folder).relative_to(root).as_posix() + "/model.json"
        models.append({"name": name, "url": url, "inputs": [{"data": x.ravel().tolist(), "shape": list(x.shape)} for x in xs]})
        expected[name] = want
    grid = np.linspace(-9.0, 9.0, 721, dtype=np.float32)
    models.append({"name": "erfc", "op": "erfc", "inputs": [{"data": grid.tolist(), "shape": [721]}]})
    pages = {"/layers.html": page_html((JS_DIR / "layers_page.js").read_text())}
    with static_server({"/cases/": root}, pages) as url, chromium_page(url + "/layers.html", webgl=True) as page:
        wait_for_global(page, "layersReady")
        run = page.evaluate("(job) => window.runLayers(job)", {"backend": "webgl", "models": models})
    if run["backend"] != "webgl":
        pytest.skip(f"WebGL unavailable in this Chromium (got {run['backend']})")
    failures = []
    for r in run["results"]:
        if "error" in r:
            failures.append(f"{r['name']}: {r['error']}")
            continue
        got = [np.asarray(o["data"], np.float32).reshape(o["shape"]) for o in r["outputs"]]
        if r["name"] == "erfc":
            err = float(np.max(np.abs(got[0] - np.array([math.erfc(v) for v in grid.astype(np.float64)]))))
            if err >= ERFC_ABS_TOL:
                failures.append(f"erfc: abs error {err:.2e}")
            continue
        err = rel_error(expected[r["name"]], got)
        if err >= WEBGL_REL_TOL:
            failures.append(f"{r['name']}: relative error {err:.2e}")
    assert not failures, "; ".join(failures)
