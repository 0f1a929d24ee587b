"""The token-id range of an int input is recorded in the manifest (``inputs[].token_ids``, written
by export_model from the probe's own range: keras_export.token_id_range) and the generic npm
package's example.mjs / README read it from there (npm.token_id_bounds). Before, npm.py read the
bound back from the parity probe's text with a regex; that stays only for manifests written
before the field. Fast: layers path read back by tensorflowjs (no Node), package not packed."""

from __future__ import annotations

import json
import shutil

import numpy as np

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
    assert 'const TOKEN_ID_BOUND = {"tokens": 37};' in example
    assert README_LINE.format(37) in readme

    # The field, not the probe text, is what npm reads: a bundle whose probe text says nothing of
    # token ids (and whose recorded range is another) gets the recorded range.
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    data = json.loads((edited / "manifest.json").read_text())
    data["models"]["tok"]["parity"]["probe"] = "2 seeded inputs"
    data["models"]["tok"]["inputs"][0]["token_ids"]["max_exclusive"] = 20
    manifest_mod.validate(data)
    (edited / "manifest.json").write_text(json.dumps(data))
    example, readme = _package(edited, tmp_path / "npm-edited")
    assert 'const TOKEN_ID_BOUND = {"tokens": 20};' in example and README_LINE.format(20) in readme

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
