"""Graph models with several outputs of one dtype and shape, and int inputs beyond int32.

A. The tensorflowjs converter keys a graph model's signature output by the SavedModel's output key
only when no other output has its dtype and shape; [h, cumsum(h)] came out keyed by tensor name
('Identity:0', 'Identity_1:0') and the export refused "its signature outputs ... are not the expected
['output_0', 'output_1']" (advice: "replace the layer named above", though none was named).
tfjs_io.save_graph_model now re-keys them from the SavedModel's signature_def (output key ->
"<call>:<i>" -> the signature function's output i, the tensor the converter named).
C. TF.js has no int64: ids outside int32 in a sample failed as "TF.js computes a different function";
they are refused up front, naming the input and a value; an int64 input records keras_dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

from export_support import NODE, export_cases


def _graph_models():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(5)
    out = {}
    x = keras.Input((4,), name="x")
    h = L.Dense(3)(x)
    out["g_j"] = keras.Model(x, [h, keras.ops.cumsum(h, axis=-1)])
    x = keras.Input((4,), name="x")
    h = L.Dense(3)(x)
    out["g_h"] = keras.Model(x, [h, keras.ops.cast(h > 0, "int32"), keras.ops.cumsum(h, axis=-1)])
    j = keras.Input((4,), dtype="int32", name="ids")
    out["g_f"] = keras.Model(j, [keras.ops.cast(j > 5, "int32"), keras.ops.cumsum(j, axis=-1)])
    return out


def test_signature_outputs_are_rekeyed_from_the_saved_model(tmp_path):
    """The converter's own keys for [h, cumsum(h)] are tensor names; save_graph_model's model.json
    has output_0/output_1, each on the tensor of that Keras output (signature_output_tensors)."""
    import json

    from facepack.export.tfjs_io import rekey_signature_outputs, save_graph_model, signature_output_tensors

    model = _graph_models()["g_j"]
    saved = tmp_path / "sm"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    tensors = signature_output_tensors(saved)
    assert sorted(tensors.values()) == ["output_0", "output_1"] and all(":" in t for t in tensors)
    fake = {"signature": {"outputs": {t: {"name": t} for t in sorted(tensors)}}}
    assert rekey_signature_outputs(fake, tensors) == 2
    assert {k: v["name"] for k, v in fake["signature"]["outputs"].items()} == {v: t for t, v in tensors.items()}
    # keys that are already output keys stay, and nothing is renamed twice
    assert rekey_signature_outputs(fake, tensors) == 0
    folder, notes = save_graph_model(model, tmp_path / "g")
    sig = json.loads((folder / "model.json").read_text())["signature"]["outputs"]
    assert sorted(sig) == ["output_0", "output_1"], sig
    assert any("signature output(s)" in n for n in notes)


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_multi_output_graph_models_export_and_match_on_cpu_and_wasm(tmp_path):
    """g_j, g_h, g_f (the new user's models) export as graph models; parity on cpu and wasm checks
    each output against its own Keras output (a swap of h and cumsum(h) would miss)."""
    cases = export_cases({k: (m, None) for k, m in _graph_models().items()}, tmp_path, ("cpu", "wasm"))
    for case, (entry, _, model) in cases.items():
        assert entry["format"] == "graph-model", (case, entry["export"]["tried"])
        assert set(entry["parity"]["backends"]) == {"cpu", "wasm"}
        assert entry["parity"]["max_abs_diff"] <= entry["parity"]["tolerance"]
        assert [o["signature_key"] for o in entry["outputs"]] == [f"output_{i}" for i in range(len(model.outputs))]


def test_graph_signature_refusal_gets_advice_that_names_no_layer():
    from facepack.export.keras_export import ADVICE_GRAPH_OUTPUTS, ADVICE_LAYER, _advice

    reasons = {"layers-model": "tf_keras bridge: Keras op Cumsum (node 'cumsum', from keras.src.ops.numpy) has no "
                               "tf_keras layer; a graph model carries Keras ops",
               "graph-model": "graph model: its signature outputs ['Identity:0', 'Identity_1:0'] are not the "
                              "expected ['output_0', 'output_1']"}
    advice = _advice(reasons)
    assert ADVICE_GRAPH_OUTPUTS in advice and ADVICE_LAYER not in advice and "named above" not in advice


def _int_model(dtype, hashing=False):
    """ids [N, 3] -> (Hashing(10) ->) Embedding(10, 2) -> Dense(2); a Hashing layer takes any id."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(5)
    ids = keras.Input((3,), dtype=dtype, name="ids")
    x = L.Hashing(num_bins=10)(ids) if hashing else ids
    return keras.Model(ids, L.Dense(2)(L.Flatten()(L.Embedding(10, 2)(x))))


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_ids_outside_int32_in_the_sample_are_refused_naming_input_and_value(tmp_path, dtype):
    """Before: int64 ids beyond int32 reached TF.js wrapped (int32) and the export failed with "TF.js
    computes a different function for a layer of this model; report it" (an int32 input: cast
    silently by the sample reader)."""
    from facepack.export import ExportError, export_model

    sample = {"ids": np.array([[1, 2, 3], [4, 2 ** 40 + 3, 5]], np.int64)}
    with pytest.raises(ExportError) as err:
        export_model(_int_model(dtype, hashing=True), tmp_path / "b", name="big", sample=sample, backends=(), log=None)
    text = str(err.value)
    assert "input 'ids'" in text and str(2 ** 40 + 3) in text and "int32" in text and "\n" not in text
    assert "different function" not in text
    assert not (tmp_path / "b").exists()


def test_int64_input_records_its_keras_dtype(tmp_path):
    from facepack.export import export_model
    from facepack.export import manifest as manifest_mod

    manifest = export_model(_int_model("int64"), tmp_path / "b", name="i64", backends=(), log=None)
    spec = manifest["models"]["i64"]["inputs"][0]
    assert spec["dtype"] == "int32" and spec["keras_dtype"] == "int64"
    manifest_mod.validate(manifest)
    manifest = export_model(_int_model("int32"), tmp_path / "c", name="i32", backends=(), log=None)
    assert "keras_dtype" not in manifest["models"]["i32"]["inputs"][0]
