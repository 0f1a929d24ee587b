"""Keras 3 layers that need the bridge's rewrites or a custom TF.js layer, against Keras.

Each case is a one- or two-layer Keras 3 model with non-trivial weights; it goes through the
exporter's layers path (facepack/export/bridge.py:to_tf_keras -> tensorflowjs) and runs in TF.js
with the library's registered layers (static/facepack/layers/), all models in one Node process
per backend (tests/js/layers_parity.mjs), and once batched in Chromium on WebGL.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from jsharness import node_ready, run_node

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


def _gelu_dense(keras):
    return _seq(keras, (6,), keras.layers.Dense(5, activation="gelu"), keras.layers.Activation("gelu"))


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
    "elu_softmax_axis": lambda k: _seq(k, (4, 5), k.layers.ELU(alpha=0.5), k.layers.Softmax(axis=1)),
    "gelu_exact": _gelu_dense,
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


def probe_inputs(model, seed: int = SEED) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [rng.normal(0.0, 1.0, (BATCH,) + tuple(t.shape[1:])).astype(np.float32) for t in model.inputs]


def export_case(keras, tf_keras, name: str, folder: Path):
    """Build, randomise and export one case; returns (inputs, Keras outputs) or raises."""
    from facepack.export.bridge import to_tf_keras
    from facepack.export.tfjs_io import predict_list, save_layers_model

    model3 = CASES[name](keras)
    randomize_weights(model3)
    xs = probe_inputs(model3)
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
        models.append({"name": name, "dir": str(folder), "inputs": inputs})
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
