"""IntegerLookup exports as a layers model (bridge._integer_lookup writes its vocabulary into the
config; static/facepack/layers/lookup.js runs it in TF.js), matching Keras on cpu and wasm. Before,
the bridge refused every IntegerLookup ("string/vocabulary preprocessing has no TF.js layer") and
the graph path failed on the lookup table model.export() makes an extra signature input
('unknown:0'), whose advice said to rename the model's inputs.

Each model also outputs the lookup's own result (indices, or the multi/one-hot rows), so a wrong
index cannot hide behind an Embedding; each export is checked on the generated probe (vocabulary
hits + out-of-vocabulary ids, keras_export.make_probes) AND on a sample with mask tokens, negative
and large out-of-vocabulary ids (several floormod buckets). One Node process for all exports."""

from __future__ import annotations

import numpy as np
import pytest

from export_support import NODE

pytestmark = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]

BACKENDS = ("cpu", "wasm")
VOCAB = [100, 250, 7, 3000, 42, 8]  # unsorted on purpose: an entry's index is its position
# vocabulary hits, the mask token 0, negative / large / in-between out-of-vocabulary ids
SAMPLE = np.array([[100, 250, 7, 3000, 42, 8], [0, 0, -5, -7, 99999, 43], [8, 101, 0, -1, 2, 3001],
                   [-13, 41, 6, 1000000, 250, 0]], np.int32)


def _ids(n=6, name="ids"):
    import keras

    return keras.layers.Input((n,), dtype="int32", name=name)


def _embedded(lookup, ids, units=3):
    """ids -> lookup -> Embedding -> mean pooling -> Dense; outputs [dense, lookup indices]."""
    import keras

    L = keras.layers
    idx = lookup(ids)
    x = L.GlobalAveragePooling1D(name="gap")(L.Embedding(lookup.vocabulary_size(), 4, name="emb")(idx))
    return keras.Model(ids, [L.Dense(units, name="d")(x), idx])


def _hot(lookup, ids):
    """ids -> lookup (multi_hot / count / one_hot of (batch, 1)) -> Dense; outputs [dense, the encoded rows].
    (No Flatten: TF.js' Flatten refuses rank-2 inputs, "expected min_ndim=3", which Keras passes through.)"""
    import keras

    y = lookup(ids)
    return keras.Model(ids, [keras.layers.Dense(3, name="d")(y), y])


def _models():
    """{case: (model, sample or None)}."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(5)
    adapted = L.IntegerLookup(output_mode="multi_hot", name="lookup")  # vocabulary only via adapt()
    adapted.adapt(np.array([5, 5, 5, 9, 9, 2, 11, 11, 11, 11]))
    in_vocab = np.array([[100, 250, 7, 3000, 42, 8], [8, 8, 7, 100, 42, 250]], np.int32)
    return {
        "oov1": (_embedded(L.IntegerLookup(vocabulary=VOCAB, name="lookup"), _ids()), SAMPLE),
        "mask": (_embedded(L.IntegerLookup(vocabulary=VOCAB, mask_token=0, name="lookup"), _ids()), SAMPLE),
        "oov0": (_embedded(L.IntegerLookup(vocabulary=VOCAB, num_oov_indices=0, name="lookup"), _ids()), in_vocab),
        "oov3_mask": (_embedded(L.IntegerLookup(vocabulary=VOCAB, num_oov_indices=3, mask_token=0, name="lookup"),
                                _ids()), SAMPLE),
        "multi_hot_adapted": (_hot(adapted, _ids()), np.array([[5, 9, 9, 0, 2, 11], [-3, 7, 11, 11, 11, 4]], np.int32)),
        "count_mask": (_hot(L.IntegerLookup(vocabulary=VOCAB, output_mode="count", mask_token=0, num_oov_indices=2,
                                            name="lookup"), _ids()), SAMPLE),
        "one_hot": (_hot(L.IntegerLookup(vocabulary=VOCAB, output_mode="one_hot", name="lookup"), _ids(1)),
                    SAMPLE[:, :1].copy()),
        "invert": (_inverted(), np.array([[0, 1, 2, 3, 8, 9], [-1, 4, 5, 7, 100, 6]], np.int32)),
    }


def _inverted():
    import keras

    ids = _ids()
    return keras.Model(ids, keras.layers.IntegerLookup(vocabulary=VOCAB, invert=True, mask_token=0,
                                                       name="lookup")(ids))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (manifest entry, bundle, model)}, each exported on cpu and wasm in one Node process."""
    from facepack.export import export_model
    from facepack.export.node_check import NodeSession

    tmp = tmp_path_factory.mktemp("lookup")
    out = {}
    with NodeSession(BACKENDS) as session:
        for case, (model, sample) in _models().items():
            manifest = export_model(model, tmp / case, name=case, sample=sample, backends=BACKENDS, log=None,
                                    _node_session=session)
            out[case] = (manifest["models"][case], tmp / case, model)
    return out


@pytest.mark.parametrize("case", ["oov1", "mask", "oov0", "oov3_mask", "multi_hot_adapted", "count_mask", "one_hot",
                                  "invert"])
def test_integer_lookup_is_a_layers_model_matching_keras(exported, case):
    entry, _, model = exported[case]
    assert entry["format"] == "layers-model", entry["export"]["tried"]
    assert [p["kind"] for p in entry["export"]["probes"]] == ["generated", "sample"]
    for backend in BACKENDS:
        measured = entry["parity"]["backends"][backend]
        # the lookup's own output is integers: exact; the Dense after it: float rounding
        assert measured["max_abs_diff"] <= 1e-5, (case, backend, measured)
    # the probe hit the vocabulary and, where ids out of it are valid, missed it too
    probe = entry["parity"]["probe"]
    if case not in ("oov0", "invert"):
        assert "in the vocabulary" in probe and " 0 out of it" not in probe, probe


def test_lookup_outputs_reach_the_output_unchanged(exported):
    """The sample's lookup indices as Keras computes them (floormod buckets of negative ids
    included), i.e. what TF.js was held to above, spelled out for two cases."""
    from facepack.export.keras_export import keras_outputs

    _, _, model = exported["oov3_mask"]
    idx = keras_outputs(model, [SAMPLE])[1]
    # mask 0 -> 0, OOV id -> 1 + id mod 3 (floor), entry i -> 4 + i
    assert idx[1].tolist() == [0, 0, 1 + (-5 % 3), 1 + (-7 % 3), 1 + (99999 % 3), 1 + (43 % 3)]
    assert idx[0].tolist() == [4, 5, 6, 7, 8, 9]
    _, _, model = exported["invert"]
    assert keras_outputs(model, [np.array([[0, 1, 2, 3, 7, 8]], np.int32)])[0].tolist() == [[0, -1, 100, 250, 8, -1]]


def test_out_of_vocabulary_id_with_no_oov_index_fails_in_tfjs_as_in_keras(exported, tmp_path):
    from facepack.export.node_check import NodeRunError, run_node_backends

    _, bundle, _ = exported["oov0"]
    bad = np.array([[100, 250, 7, 3000, 42, 9]], np.int32)
    results = run_node_backends(bundle, BACKENDS, [("oov0", bad)], tmp_path / "work")
    for backend in BACKENDS:
        (got,) = results[backend]
        assert isinstance(got, NodeRunError), (backend, got)
        assert "num_oov_indices=0" in str(got) and "found OOV values [9]" in str(got), str(got)


@pytest.mark.parametrize("kwargs, says", [
    (dict(output_mode="tf_idf", idf_weights=[1.0] * 6), "output_mode='tf_idf' is not implemented by the TF.js layer"),
    (dict(num_oov_indices=2, oov_method="farmhash"), "oov_method='farmhash'"),
    (dict(output_mode="multi_hot", sparse=True), "sparse=True outputs have no TF.js equivalent"),
])
def test_unsupported_lookup_options_are_refused_by_name(kwargs, says):
    import keras
    import tf_keras

    from facepack.export.bridge import BridgeError, to_tf_keras

    ids = _ids()
    model = keras.Model(ids, keras.layers.IntegerLookup(vocabulary=VOCAB, name="lookup", **kwargs)(ids))
    with pytest.raises(BridgeError) as excinfo:
        to_tf_keras(model, tf_keras)
    text = str(excinfo.value)
    assert text.startswith("layer 'lookup' (IntegerLookup): ") and says in text and "\n" not in text, text


def test_string_lookup_is_still_refused():
    import keras
    import tf_keras

    from facepack.export.bridge import BridgeError, to_tf_keras

    words = keras.layers.Input((3,), dtype="string", name="words")
    model = keras.Model(words, keras.layers.StringLookup(vocabulary=["a", "b"], name="sl")(words))
    with pytest.raises(BridgeError, match=r"layer 'sl' \(StringLookup\): string/vocabulary preprocessing"):
        to_tf_keras(model, tf_keras)


def test_captured_lookup_table_advice_does_not_say_rename(tmp_path):
    """An IntegerLookup the layers path refuses (tf_idf) and whose graph model has the table as an
    extra signature input ('unknown:0'): the advice names the lookup table, not input names
    (before: "rename the model's inputs ...")."""
    import keras

    from facepack.export import ExportError, export_model
    from facepack.export.keras_export import ADVICE_LOOKUP_TABLE

    ids = _ids()
    lookup = keras.layers.IntegerLookup(vocabulary=VOCAB, output_mode="tf_idf", idf_weights=[0.5] * len(VOCAB),
                                        name="lookup")
    model = keras.Model(ids, keras.layers.Dense(2, name="d")(lookup(ids)))
    with pytest.raises(ExportError) as excinfo:
        export_model(model, tmp_path / "b", name="m", backends=(), log=None)
    text = str(excinfo.value)
    assert "\n" not in text and "output_mode='tf_idf'" in text and "['unknown:0'] name no Keras input" in text, text
    advice = text.split(". What to do: ", 1)[1]
    assert ADVICE_LOOKUP_TABLE in advice and "rename" not in advice.replace("renaming the inputs does not help", "")
