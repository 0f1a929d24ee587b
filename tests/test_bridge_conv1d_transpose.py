"""The bridge's 1-D conv rewrites (DepthwiseConv1D, SeparableConv1D, Conv1DTranspose -> Reshape + the
2-D twin + Reshape, facepack/export/bridge.py:_conv1d_via_2d) followed by Flatten + Dense, on the
LAYERS path, in TF.js (cpu, wasm) against Keras.

F8: the Reshapes used -1 for the length. TF.js' Reshape infers a -1 only when every input dimension,
batch included, is known, so the Flatten after the rewrite saw an unknown length and TF.js refused to
load the model ('The shape of the input to "Flatten" is not fully defined (got ,4)'), with or without a
known batch; only the graph path exported. The Reshapes now carry the static length, computed with Keras
3's formulas (bridge._conv1d_out_length, checked here against Keras' own output shapes).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from export_support import NODE

pytestmark = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]

BACKENDS = ("cpu", "wasm")
REL_TOL = 1e-4  # the exporter's own float32 acceptance (keras_export.REL_TOL)
LENGTH, CHANNELS = 16, 3

# name -> (layer class, args, kwargs); each case is Input((16, 3)) -> layer -> Flatten -> Dense(5)
CASES = {
    "transpose_same_s2": ("Conv1DTranspose", (4, 3), dict(strides=2, padding="same")),
    "transpose_valid_s2": ("Conv1DTranspose", (4, 3), dict(strides=2, padding="valid")),
    "transpose_same_s1": ("Conv1DTranspose", (4, 3), dict(strides=1, padding="same")),
    "transpose_valid_s1": ("Conv1DTranspose", (4, 3), dict(strides=1, padding="valid")),
    # stride > kernel: Keras' 'valid' length is (L - 1) * s + max(k, s), not (L - 1) * s + k
    "transpose_valid_k2_s3": ("Conv1DTranspose", (4, 2), dict(strides=3, padding="valid", activation="relu")),
    "depthwise_same_s2": ("DepthwiseConv1D", (3,), dict(strides=2, padding="same", depth_multiplier=2)),
    "depthwise_valid_s2": ("DepthwiseConv1D", (3,), dict(strides=2, padding="valid")),
    "separable_valid_s2": ("SeparableConv1D", (4, 3), dict(strides=2, padding="valid")),
    "separable_same_d2": ("SeparableConv1D", (4, 3), dict(dilation_rate=2, padding="same")),
}
# The same model with a known batch (Input(batch_size=2)): failed the same way before the fix.
BATCHED = {f"{name}_batch2": name for name in ("transpose_same_s2", "transpose_valid_s2")}


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def _model(case: str, batch_size=None):
    keras = _keras()
    cls, args, kwargs = CASES[case]
    inp = keras.Input((LENGTH, CHANNELS), batch_size=batch_size)
    y = getattr(keras.layers, cls)(*args, name="c", **kwargs)(inp)
    model = keras.Model(inp, keras.layers.Dense(5, name="d")(keras.layers.Flatten(name="f")(y)))
    rng = np.random.default_rng(sum(map(ord, case)))
    for layer in model.layers:  # non-zero biases too (Keras initialises them to 0)
        layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (manifest entry, model.json)}, every case exported on the layers path only, one Node session."""
    _keras()
    from facepack.export import export_model
    from facepack.export.node_check import NodeSession

    root = tmp_path_factory.mktemp("conv1d_via_2d")
    out = {}
    with NodeSession(BACKENDS) as session:
        for case in [*CASES, *BATCHED]:
            model = _model(BATCHED[case], batch_size=2) if case in BATCHED else _model(case)
            try:
                manifest = export_model(model, root / case, name=case, paths=("layers-model",), backends=BACKENDS,
                                        log=None, _node_session=session)
            except ValueError as err:  # ExportError: kept so that each case fails on its own line
                out[case] = str(err)
                continue
            out[case] = (manifest["models"][case], json.loads((root / case / case / "model.json").read_text()))
    return out


@pytest.mark.parametrize("case", [*CASES, *BATCHED])
def test_rewritten_1d_conv_then_flatten_matches_keras_on_the_layers_path(case, exported):
    got = exported[case]
    assert not isinstance(got, str), got
    entry, model_json = got
    assert entry["format"] == "layers-model"
    for backend in BACKENDS:
        assert entry["parity"]["backends"][backend]["rel_diff"] <= REL_TOL, (backend, entry["parity"])
    layers = model_json["modelTopology"]["model_config"]["config"]["layers"]
    targets = [layer["config"]["target_shape"] for layer in layers if layer["class_name"] == "Reshape"]
    assert len(targets) == 2 and all(-1 not in t for t in targets), targets


@pytest.mark.parametrize("case", list(CASES))
def test_output_length_formula_is_keras(case):
    """bridge._conv1d_out_length against the Keras 3 layer's own output shape, lengths 1..17."""
    keras = _keras()
    from facepack.export.bridge import _conv1d_out_length

    cls, args, kwargs = CASES[case]
    layer = getattr(keras.layers, cls)(*args, **kwargs)
    k, stride, dilation, padding = args[-1], kwargs.get("strides", 1), kwargs.get("dilation_rate", 1), kwargs["padding"]
    checked = 0
    for length in range(1, 18):
        if cls != "Conv1DTranspose" and padding == "valid" and length < (k - 1) * dilation + 1:
            continue  # Keras refuses a 'valid' conv wider than its input
        want = layer.compute_output_shape((None, length, CHANNELS))[1]
        assert _conv1d_out_length(cls, length, k, stride, dilation, padding) == want, length
        checked += 1
    assert checked >= 15
    assert _conv1d_out_length(cls, None, k, stride, dilation, padding) is None


def test_unknown_length_still_rewrites_with_minus_one():
    """A variable-length input (Input((None, 3))) keeps -1 in the Reshapes and still matches Keras."""
    keras = _keras()
    import tf_keras

    from facepack.export.bridge import to_tf_keras

    inp = keras.Input((None, CHANNELS))
    y = keras.layers.Conv1DTranspose(4, 3, strides=2, padding="same", name="c")(inp)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling1D()(y))
    model2, _ = to_tf_keras(model, tf_keras)
    assert model2.get_layer("c").get_config()["target_shape"] == (-1, 4)
    x = np.random.default_rng(3).normal(size=(2, 7, CHANNELS)).astype(np.float32)
    np.testing.assert_allclose(model2.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
