"""The token-id range of an int input is recorded in the manifest (``inputs[].token_ids``, written
by export_model from the probe's own range: keras_export.token_id_range) and the generic npm
package's example.mjs / README read it from there (npm.token_id_bounds). Before, npm.py read the
bound back from the parity probe's text with a regex; that stays only for manifests written
before the field. Fast: layers path read back by tensorflowjs (no Node), package not packed."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from export_support import NODE

EMBEDDING = {"min": 0, "max_exclusive": 37, "source": "embedding_input_dim"}
README_LINE = "- input `tokens`: shape [N, 6], int32 (token ids; the export checked ids in [0, {}))"


def _token_model():
    import keras

    keras.utils.set_random_seed(3)
    L = keras.layers
    tokens = L.Input((6,), dtype="int32", name="tokens")
    x = L.GlobalAveragePooling1D(name="gap")(L.Embedding(37, 4, name="emb")(tokens))
    return keras.Model(tokens, L.Dense(2, name="d")(x))


def _package(bundle, out):
    from facepack.export.npm import build_npm_package

    build_npm_package(bundle, out, name="tokpkg", version="0.0.1", pack=False, log=None)
    return (out / "example.mjs").read_text(), (out / "README.md").read_text()


def test_int_input_records_its_token_id_range_and_npm_reads_it(tmp_path):
    from facepack.export import export_model
    from facepack.export import manifest as manifest_mod
    from facepack.export.npm import token_id_bounds

    bundle = tmp_path / "bundle"
    manifest = export_model(_token_model(), bundle, name="tok", backends=(), log=None)
    entry = manifest["models"]["tok"]
    (spec,) = entry["inputs"]
    assert spec == {"name": "tokens", "shape": [None, 6], "dtype": "int32", "token_ids": EMBEDDING}
    assert "tokens [2, 6] int32: token ids in [0, 37) (Embedding input_dim)" in entry["parity"]["probe"]
    manifest_mod.validate(manifest)
    assert token_id_bounds(manifest, "tok") == {"tokens": 37}
    example, readme = _package(bundle, tmp_path / "npm")
    assert 'const TOKEN_ID_RANGE = {"tokens": [0, 37]};' in example
    assert README_LINE.format(37) in readme

    # The field, not the probe text, is what npm reads: a bundle whose probe text says nothing of
    # token ids (and whose recorded range is another) gets the recorded range.
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    data = json.loads((edited / "manifest.json").read_text())
    data["models"]["tok"]["parity"]["probe"] = "2 seeded inputs"
    data["models"]["tok"]["inputs"][0]["token_ids"].update({"min": 5, "max_exclusive": 20})
    manifest_mod.validate(data)
    (edited / "manifest.json").write_text(json.dumps(data))
    example, readme = _package(edited, tmp_path / "npm-edited")
    # the example draws from the recorded [min, max_exclusive) (it used to draw from [0, bound))
    assert 'const TOKEN_ID_RANGE = {"tokens": [5, 20]};' in example
    assert "low + (i % (high - low))" in example
    assert "the export checked ids in [5, 20)" in readme

    # A manifest written before the field: the bound from the probe text, as before.
    old = json.loads((bundle / "manifest.json").read_text())
    del old["models"]["tok"]["inputs"][0]["token_ids"]
    assert token_id_bounds(old, "tok") == {"tokens": 37}
    old["models"]["tok"]["parity"]["probe"] = "2 seeded inputs"
    assert token_id_bounds(old, "tok") == {}


def test_int_input_without_embedding_records_the_default_range():
    """No Embedding reads the input: the probe's default range, marked as such; float inputs get
    no token_ids."""
    import keras

    from facepack.export.keras_export import INT_RANGE_DEFAULT, _entry, input_specs, make_probes

    L = keras.layers
    ids, feats = L.Input((5,), dtype="int32", name="ids"), L.Input((3,), name="feats")
    model = keras.Model([ids, feats], [L.Identity(name="same")(ids), L.Dense(2, name="d")(feats)])
    specs = input_specs(model)
    probe = make_probes(model, specs)
    assert probe.token_ids == {"ids": {"min": 0, "max_exclusive": INT_RANGE_DEFAULT, "source": "default"}}
    assert int(np.max(probe.arrays[0])) < INT_RANGE_DEFAULT
    entry = _entry("m", "layers-model", specs, [[np.zeros((2, 5)), np.zeros((2, 2))]], ["same", "d"], {},
                   "float32", probe.token_ids)
    assert [i.get("token_ids") for i in entry["inputs"]] == [probe.token_ids["ids"], None]


# --- F6: the range comes from every layer that reads token ids, not only Embedding -------------
# Measured before the fix (make_probes, HEAD f66f68d): CategoryEncoding(num_tokens=4) got the
# default [0, 10) - ids 4..9 are invalid, and TF.js layers refused them ("Input values must be
# between 0 < values <= numTokens with numTokens=4"), so the export fell back to the graph model;
# IntegerLookup(vocabulary 100..5000) -> Embedding(7) got the Embedding's [0, 7): every probe id
# out of vocabulary (lookup indices all 0); Hashing(5) -> Embedding(5) got [0, 5) "embedding".


def _ids_model(*readers):
    """One int32 input 'ids' [N, 6] read by each of ``readers`` (a Keras layer, or a function of
    the input tensor), their outputs the model's outputs."""
    import keras

    ids = keras.layers.Input((6,), dtype="int32", name="ids")
    outs = [r(ids) for r in readers]
    return keras.Model(ids, outs if len(outs) > 1 else outs[0])


def _probe(model):
    from facepack.export.keras_export import input_specs, make_probes

    return make_probes(model, input_specs(model))


def test_category_encoding_bounds_the_ids_and_takes_the_smallest_bound():
    import keras

    L = keras.layers
    probe = _probe(_ids_model(L.CategoryEncoding(num_tokens=4, output_mode="count")))
    assert probe.token_ids == {"ids": {"min": 0, "max_exclusive": 4, "source": "category_encoding_num_tokens"}}
    assert int(probe.arrays[0].max()) < 4 and "(CategoryEncoding num_tokens)" in probe.detail[0]
    # an Embedding and a CategoryEncoding read the input: the smaller bound (ids >= 12 are invalid for
    # the CategoryEncoding, before: [0, 37) from the Embedding) ...
    probe = _probe(_ids_model(L.CategoryEncoding(num_tokens=12), L.Embedding(37, 2)))
    assert probe.token_ids["ids"] == {"min": 0, "max_exclusive": 12, "source": "category_encoding_num_tokens"}
    # ... and the other way round, the Embedding's as before
    probe = _probe(_ids_model(L.CategoryEncoding(num_tokens=40), L.Embedding(37, 2)))
    assert probe.token_ids["ids"] == {"min": 0, "max_exclusive": 37, "source": "embedding_input_dim"}


def _lookup_embedding_model(vocabulary, **kwargs):
    import keras

    L = keras.layers
    keras.utils.set_random_seed(3)
    lookup = L.IntegerLookup(vocabulary=vocabulary, name="lookup", **kwargs)
    emb = L.Embedding(lookup.vocabulary_size(), 4, name="emb")
    return _ids_model(lambda t: L.Dense(2, name="d")(L.GlobalAveragePooling1D(name="gap")(emb(lookup(t))))), lookup


def test_integer_lookup_probe_hits_its_vocabulary_and_some_oov():
    """The probe draws the lookup's entries (and >= 1 id out of vocabulary): the Embedding after it
    reads lookup indices, not the input, so its input_dim is not the range."""
    vocabulary = [100, 250, 999, 3000, 5000]
    model, lookup = _lookup_embedding_model(vocabulary)
    probe = _probe(model)
    assert probe.token_ids == {"ids": {"min": 100, "max_exclusive": 5001, "source": "integer_lookup_vocabulary"}}
    from facepack.export.keras_export import LOOKUP_OOV_SHARE

    ids = probe.arrays[0]
    hits = np.isin(ids, vocabulary)
    assert ids.min() >= 100 and ids.max() < 5001
    assert 1 <= (~hits).sum() <= ids.size * LOOKUP_OOV_SHARE * 2 and hits.sum() >= ids.size // 2
    indices = np.asarray(lookup(ids))  # 0: out of vocabulary, 1..5: the entries
    assert (indices == 0).sum() == (~hits).sum() and len(set(indices[indices > 0].tolist())) >= 2
    assert f"{hits.sum()} in the vocabulary, {(~hits).sum()} out of it" in probe.detail[0]

    # no gap between the entries: one id past the last is the out-of-vocabulary one
    model, lookup = _lookup_embedding_model([3, 4, 5, 6])
    probe = _probe(model)
    assert probe.token_ids["ids"] == {"min": 3, "max_exclusive": 8, "source": "integer_lookup_vocabulary"}
    assert 7 in probe.arrays[0] and (np.asarray(lookup(probe.arrays[0])) == 0).sum() == (probe.arrays[0] == 7).sum()
    # num_oov_indices=0: an id out of vocabulary is an error, so the probe has none
    model, lookup = _lookup_embedding_model([3, 4, 9], num_oov_indices=0)
    probe = _probe(model)
    assert probe.token_ids["ids"] == {"min": 3, "max_exclusive": 10, "source": "integer_lookup_vocabulary"}
    assert np.isin(probe.arrays[0], [3, 4, 9]).all()


def test_integer_lookup_negative_entries_are_in_the_range_and_probe():
    """Negative vocabulary entries count (before: dropped, so [7, 42, 1000, 123456, -3] was recorded
    as [7, 123457) "IntegerLookup vocabulary of 4", an all-negative vocabulary fell back to the
    default [0, 10) and its probe never hit the vocabulary; with num_oov_indices=0 Keras itself
    failed on that probe, so the model could not be exported, not even with a valid sample)."""
    import keras

    L = keras.layers
    vocabulary = [7, 42, 1000, 123456, -3]
    probe = _probe(_ids_model(L.IntegerLookup(vocabulary=vocabulary, mask_token=0, num_oov_indices=3)))
    assert probe.token_ids["ids"] == {"min": -3, "max_exclusive": 123457, "source": "integer_lookup_vocabulary"}
    assert "IntegerLookup vocabulary of 5" in probe.detail[0]
    ids = probe.arrays[0]
    assert ids.min() >= -3 and np.isin(ids, vocabulary).sum() >= ids.size // 2 and not np.isin(0, ids)
    # all negative, out-of-vocabulary ids allowed: the probe hits the entries and some ids between them
    lookup = L.IntegerLookup(vocabulary=[-30, -20, -10])
    probe = _probe(_ids_model(lookup))
    assert probe.token_ids["ids"] == {"min": -30, "max_exclusive": -9, "source": "integer_lookup_vocabulary"}
    ids = probe.arrays[0]
    hits = np.isin(ids, [-30, -20, -10])
    assert hits.sum() >= ids.size // 2 and 1 <= (~hits).sum() and ids.min() >= -30 and ids.max() < -9
    assert (np.asarray(lookup(ids)) == 0).sum() == (~hits).sum()
    # num_oov_indices=0: only entries (Keras rejects any other id), and Keras takes the probe
    model = _ids_model(L.IntegerLookup(vocabulary=[-30, -20, -10], num_oov_indices=0))
    probe = _probe(model)
    assert probe.token_ids["ids"]["min"] == -30 and np.isin(probe.arrays[0], [-30, -20, -10]).all()
    from facepack.export.keras_export import keras_outputs

    keras_outputs(model, probe.arrays)


def test_all_negative_lookup_without_oov_exports_with_its_range(tmp_path):
    """The whole export of IntegerLookup([-30, -20, -10], num_oov_indices=0): before, Keras failed on
    the default [0, 10) probe and the export refused even with a valid sample; the manifest (min
    negative) validates."""
    import keras

    from facepack.export import export_model
    from facepack.export import manifest as manifest_mod

    L = keras.layers
    model = _ids_model(lambda t: L.IntegerLookup(vocabulary=[-30, -20, -10], num_oov_indices=0, name="lk")(t))
    sample = {"ids": np.array([[-30, -20, -10, -10, -20, -20], [-10, -30, -30, -20, -10, -30]], np.int32)}
    manifest = export_model(model, tmp_path / "b", name="neg", sample=sample, backends=(), log=None)
    entry = manifest["models"]["neg"]
    assert entry["inputs"][0]["token_ids"] == {"min": -30, "max_exclusive": -9, "source": "integer_lookup_vocabulary"}
    assert [p["kind"] for p in entry["export"]["probes"]] == ["generated", "sample"]
    manifest_mod.validate(manifest)


def test_other_lookups_hashing_and_nesting():
    import keras

    L = keras.layers
    inverted = L.IntegerLookup(vocabulary=[7, 8, 9], invert=True)  # indices 0..3 in
    assert _probe(_ids_model(inverted)).token_ids["ids"] == {
        "min": 0, "max_exclusive": 4, "source": "integer_lookup_vocabulary_size"}
    # Hashing takes any int: a wide range; the Embedding after it reads bins (before: [0, 5) "embedding")
    probe = _probe(_ids_model(lambda t: L.Embedding(5, 2)(L.Hashing(num_bins=5)(t))))
    from facepack.export.keras_export import HASHING_RANGE

    assert probe.token_ids["ids"] == {"min": 0, "max_exclusive": HASHING_RANGE, "source": "hashing"}
    # a lookup whose entries all lie above an Embedding's bound, both reading the input: the Embedding's
    probe = _probe(_ids_model(L.IntegerLookup(vocabulary=[100, 250]), L.Embedding(50, 2)))
    assert probe.token_ids["ids"] == {"min": 0, "max_exclusive": 50, "source": "embedding_input_dim"}
    # inside a nested model: its first reader (before: the nested Embedding's [0, 5))
    nested = keras.Sequential([L.IntegerLookup(vocabulary=[10, 20, 30]), L.Embedding(5, 2)])
    probe = _probe(_ids_model(nested))
    assert probe.token_ids["ids"] == {"min": 10, "max_exclusive": 31, "source": "integer_lookup_vocabulary"}
    assert np.isin(probe.arrays[0], [10, 20, 30]).sum() >= probe.arrays[0].size // 2


def test_embeddings_inside_custom_layers_and_wrappers_still_bound_the_ids():
    """As before the fix: an Embedding inside a custom layer or TimeDistributed reads the ids (the
    smallest input_dim of the layer's Embeddings, here the position table's 6, as before)."""
    import keras

    L = keras.layers

    class TokenAndPosition(L.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.tok, self.pos = L.Embedding(23, 4), L.Embedding(6, 4)

        def call(self, x):
            return self.tok(x) + self.pos(keras.ops.arange(6))

    assert _probe(_ids_model(TokenAndPosition())).token_ids["ids"] == {
        "min": 0, "max_exclusive": 6, "source": "embedding_input_dim"}
    seq = L.Input((3, 6), dtype="int32", name="seq")
    assert _probe(keras.Model(seq, L.TimeDistributed(L.Embedding(19, 2))(seq))).token_ids["seq"] == {
        "min": 0, "max_exclusive": 19, "source": "embedding_input_dim"}


@pytest.mark.node
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_category_encoding_model_exports_as_layers_model_checked_on_its_range(tmp_path):
    """CategoryEncoding(num_tokens=4): before, probe ids 0..9 made TF.js layers throw ("Input values
    must be between 0 < values <= numTokens") and the export fell back to the graph model; now the
    layers model passes the parity check (cpu, wasm) on ids 0..3 and the manifest records them."""
    import keras

    from facepack.export import export_model
    from facepack.export import manifest as manifest_mod
    from facepack.export.npm import token_id_bounds

    L = keras.layers
    keras.utils.set_random_seed(3)
    model = _ids_model(lambda t: L.Dense(2, name="d")(L.CategoryEncoding(num_tokens=4, output_mode="count",
                                                                           name="ce")(t)))
    manifest = export_model(model, tmp_path / "b", name="ce", backends=("cpu", "wasm"), log=None)
    entry = manifest["models"]["ce"]
    assert entry["format"] == "layers-model", entry["export"]["tried"]
    assert entry["inputs"][0]["token_ids"] == {"min": 0, "max_exclusive": 4, "source": "category_encoding_num_tokens"}
    assert set(entry["parity"]["backends"]) == {"cpu", "wasm"}
    manifest_mod.validate(manifest)
    assert token_id_bounds(manifest, "ce") == {"ids": 4}


RANGE_SAYS = "expected -2**31 <= min < max_exclusive <= 2**31"
BAD_RANGES = [({"min": 5, "max_exclusive": 5}, RANGE_SAYS),
              ({"min": 9, "max_exclusive": 3}, RANGE_SAYS),
              ({"min": 0, "max_exclusive": 2 ** 31 + 1}, RANGE_SAYS),  # TF.js computes ids as int32
              ({"min": -2 ** 31 - 1, "max_exclusive": 3}, RANGE_SAYS),
              ({"min": 0, "max_exclusive": 37.0}, "max_exclusive 37.0: expected integers"),
              ({"min": True, "max_exclusive": 37}, "min true: expected integers"),
              ({"min": "0", "max_exclusive": 37}, 'min "0": expected integers')]


@pytest.fixture(scope="module")
def token_manifest(tmp_path_factory):
    """The manifest export_model writes for _token_model (Embedding(37); backends=(): no Node)."""
    from facepack.export import export_model

    return export_model(_token_model(), tmp_path_factory.mktemp("tok") / "b", name="tok", backends=(), log=None)


@pytest.mark.parametrize("bad, says", BAD_RANGES)
def test_unusable_token_id_range_is_refused_naming_the_input(bad, says, token_manifest):
    """manifest.validate and npm.token_id_bounds refuse an empty range or non-integers, naming the
    model and the input (before: validate let min >= max_exclusive through and named non-integers
    by JSON path only; token_id_bounds took any integer max_exclusive)."""
    import copy

    from facepack.export import manifest as manifest_mod
    from facepack.export.npm import token_id_bounds

    manifest = copy.deepcopy(token_manifest)
    manifest_mod.validate(manifest)
    assert token_id_bounds(manifest, "tok") == {"tokens": 37}
    manifest["models"]["tok"]["inputs"][0]["token_ids"].update(bad)
    with pytest.raises(ValueError, match=r"\(model 'tok', input 'tokens'\): .*" + re.escape(says)):
        manifest_mod.validate(manifest)
    with pytest.raises(ValueError, match=r"model 'tok', input 'tokens': inputs\[\]\.token_ids .*" + re.escape(says)):
        token_id_bounds(manifest, "tok")
    errors = manifest_mod.token_ids_errors(manifest)
    assert len(errors) == 1 and errors[0].startswith("$.models.tok.inputs[0].token_ids (model 'tok', input 'tokens'): ")


def test_token_id_range_refuses_an_empty_range_and_readme_names_the_minimum():
    from facepack.export.keras_export import token_id_range
    from facepack.export.npm import generic_inputs_note

    assert token_id_range(37, True) == EMBEDDING and token_id_range(10, False)["source"] == "default"
    for args in ((5, "hashing", 5), (3, "hashing", 4), (5, "no_such_source")):
        with pytest.raises(ValueError):
            token_id_range(*args)
    manifest = {"models": {"m": {"inputs": [{"name": "ids", "shape": [None, 6], "dtype": "int32",
                                             "token_ids": token_id_range(5001, "integer_lookup_vocabulary", 100)}],
                                 "outputs": [{"name": "o", "shape": [None, 2]}]}}}
    assert "- input `ids`: shape [N, 6], int32 (token ids; the export checked ids in [100, 5001))" in \
        generic_inputs_note(manifest)
