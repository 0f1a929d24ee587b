"""IntegerLookup exports as a layers model (bridge._integer_lookup writes its vocabulary into the
config; static/facepack/layers/lookup.js runs it in TF.js), matching Keras on cpu and wasm. Before,
the bridge refused every IntegerLookup ("string/vocabulary preprocessing has no TF.js layer") and
the graph path failed on the lookup table model.export() makes an extra signature input
('unknown:0'), whose advice said to rename the model's inputs.

Each model also outputs the lookup's own result (indices, or the multi/one-hot rows), so a wrong
index cannot hide behind an Embedding; each export is checked on the generated probe (vocabulary
hits + out-of-vocabulary ids, keras_export.make_probes) AND on a sample with mask tokens, negative
and large out-of-vocabulary ids (several floormod buckets). One Node process for all exports.

oov_method="farmhash" (num_oov_indices > 1: an id out of vocabulary goes to the bucket
tf.strings.to_hash_bucket_fast, or with a salt to_hash_bucket_strong, of its decimal string gives;
lookup.js uses hashing.js's hashBin): before, the bridge and lookup.js refused it; now exported
(cpu, wasm) and held to Keras on the probe, the sample and 20k random int32 ids (negatives and
INT32_MIN/MAX included), id by id."""

from __future__ import annotations

import numpy as np
import pytest

from export_support import NODE, export_cases

pytestmark = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]

BACKENDS = ("cpu", "wasm")
I32 = np.iinfo(np.int32)
SALT = [133, 137]
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
    """ids -> lookup (multi_hot / count / one_hot of (batch, 1)) -> Dense; outputs [dense, the encoded rows]
    (rank 2 already: no Flatten needed)."""
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
        # oov_method="farmhash": FarmHash Fingerprint64 buckets; SipHash-2-4 with a salt (pair, single)
        "farmhash_oov3": (_embedded(L.IntegerLookup(vocabulary=VOCAB, num_oov_indices=3, oov_method="farmhash",
                                                    name="lookup"), _ids()), FARM_SAMPLE),
        "farmhash_salt_mask": (_embedded(L.IntegerLookup(vocabulary=VOCAB, num_oov_indices=5, oov_method="farmhash",
                                                         salt=SALT, mask_token=0, name="lookup"), _ids()),
                               FARM_SAMPLE),
        "farmhash_count_salt1": (_hot(L.IntegerLookup(vocabulary=VOCAB, output_mode="count", num_oov_indices=4,
                                                      oov_method="farmhash", salt=7, mask_token=0, name="lookup"),
                                      _ids()), FARM_SAMPLE),
    }


# the sample plus the edges of int32 and of the digit counts (FarmHash's short-string branches)
FARM_SAMPLE = np.concatenate([SAMPLE, np.array([[I32.min, I32.max, -1, 1, 9, 10], [-10, 12345678, -12345678, 999999999,
                                                                                  -1000000000, I32.min + 1]],
                                               np.int32)])
FARMHASH = ["farmhash_oov3", "farmhash_salt_mask", "farmhash_count_salt1"]


def _inverted():
    import keras

    ids = _ids()
    return keras.Model(ids, keras.layers.IntegerLookup(vocabulary=VOCAB, invert=True, mask_token=0,
                                                       name="lookup")(ids))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (manifest entry, bundle, model)}, each exported on cpu and wasm in one Node process."""
    return export_cases(_models(), tmp_path_factory.mktemp("lookup"), BACKENDS)


@pytest.mark.parametrize("case", ["oov1", "mask", "oov0", "oov3_mask", "multi_hot_adapted", "count_mask", "one_hot",
                                  "invert", *FARMHASH])
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


def _random_ids(n: int, seed: int) -> np.ndarray:
    """(n // 6, 6) int32: random int32 ids (nearly all out of vocabulary), small ids of both signs,
    every vocabulary entry and the mask token 0."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([rng.integers(I32.min, I32.max, n // 2, endpoint=True, dtype=np.int64),
                          rng.integers(-10000, 10000, n // 2, dtype=np.int64), VOCAB, [0] * 6, FARM_SAMPLE.ravel()])
    return ids[: ids.size // 6 * 6].astype(np.int32).reshape(-1, 6)


@pytest.mark.parametrize("case", ["farmhash_oov3", "farmhash_salt_mask"])
def test_farmhash_oov_indices_of_20k_ids_match_keras_in_tfjs(exported, case, tmp_path):
    """oov_method="farmhash" indices of 20k ids in TF.js (cpu, wasm) equal Keras' own layer id by
    id; they are not the floormod buckets (which lookup.js computed before for any oov_method)."""
    from facepack.export.keras_export import keras_outputs
    from facepack.export.node_check import run_node_backends

    _, bundle, model = exported[case]
    ids = _random_ids(20_000, 11)
    want = keras_outputs(model, [ids])[1].astype(np.int64)
    lookup = model.get_layer("lookup")
    oov_start = 1 if lookup.mask_token is not None else 0
    oov = ~np.isin(ids, VOCAB) & (ids != (lookup.mask_token if lookup.mask_token is not None else ids - 1))
    assert oov.mean() > 0.9 and want[~oov].min() >= 0
    floormod = ids.astype(np.int64) % lookup.num_oov_indices + oov_start
    assert np.mean(want[oov] == floormod[oov]) < 0.5  # the hashed buckets are not floormod's
    assert set(np.unique(want[oov])) == set(range(oov_start, oov_start + lookup.num_oov_indices))
    results = run_node_backends(bundle, BACKENDS, [(case, ids)], tmp_path / "work")
    for backend in BACKENDS:
        (got,) = results[backend]
        assert not isinstance(got, Exception), (case, backend, got)
        got = np.asarray(got[1]).astype(np.int64)
        assert np.array_equal(got, want), (case, backend, int(np.sum(got != want)), ids[got != want][:5].tolist())


def test_farmhash_oov_index_is_the_tensorflow_hash_bucket(exported):
    """Keras' rule spelled out (what TF.js is held to): an id out of vocabulary -> oov_start +
    to_hash_bucket_fast (no salt) / to_hash_bucket_strong (salt) of its decimal string."""
    import tensorflow as tf

    from facepack.export.keras_export import keras_outputs

    strings = tf.strings.as_string(tf.constant(FARM_SAMPLE, tf.int64))
    oov = ~np.isin(FARM_SAMPLE, VOCAB)
    _, _, model = exported["farmhash_oov3"]
    got = keras_outputs(model, [FARM_SAMPLE])[1]
    assert np.array_equal(got[oov], tf.strings.to_hash_bucket_fast(strings, 3).numpy()[oov])
    _, _, model = exported["farmhash_salt_mask"]  # mask 0 -> 0, OOV -> 1 + SipHash bucket of 5
    got = keras_outputs(model, [FARM_SAMPLE])[1]
    want = 1 + tf.strings.to_hash_bucket_strong(strings, 5, key=SALT).numpy()
    assert np.array_equal(got[oov], np.where(FARM_SAMPLE == 0, 0, want)[oov])


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
    (dict(num_oov_indices=2, oov_method="farmhash", salt=[2**53, 1]), "integers of magnitude below 2^53"),
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


def test_farmhash_lookup_without_node_backends_is_refused_with_advice(tmp_path):
    """backends=() checks a layers model by reading it back into tf_keras, whose IntegerLookup has no
    oov_method: the layers path is refused with a reason and the advice to check it in TF.js (before:
    export_model crashed with tf_keras' TypeError)."""
    import keras

    from facepack.export import ExportError, export_model
    from facepack.export.keras_export import ADVICE_BACKENDS

    ids = _ids()
    lookup = keras.layers.IntegerLookup(vocabulary=VOCAB, num_oov_indices=3, oov_method="farmhash", name="lookup")
    with pytest.raises(ExportError) as excinfo:
        export_model(_embedded(lookup, ids), tmp_path / "b", name="m", backends=(), log=None)
    text = str(excinfo.value)
    assert "tensorflowjs cannot read the layers model back into tf_keras" in text, text
    assert "What to do: layers-model: " + ADVICE_BACKENDS.replace("@{backends}", "backends=") in text, text
