"""Generic npm packages of models with int inputs and int/bool outputs (new-user test 2026-12-02):

- an int input read only by IntegerLookup layers: example.mjs feeds that input vocabulary entries
  (TOKEN_ID_VALUES from the layer config in the bundle's model.json), not ids min, min + 1, ... of
  the manifest's token_ids range, which for a vocabulary with gaps and num_oov_indices=0 made the
  example crash ("all inputs should be in vocabulary, found OOV values [11 12 13]"); the README says
  which ids are valid;
- output dtypes: MODEL_SPECS / model-specs.d.cts / the README declared float32 for every output; they
  now follow the bundle (graph models: model.json's signature dtypes; layers models: the dtype
  TF.js gives, int32 for IntegerLookup and Hashing "int", checked in Node in the last test).

Fast: layers path read back by tensorflowjs (no Node), packages not packed, except the last test.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from export_support import NODE

NPM = shutil.which("npm")


def _export(model, folder, name):
    from facepack.export import export_model

    export_model(model, folder, name=name, backends=(), log=None)
    return folder


def _package(bundle, out, name="intpkg"):
    from facepack.export.npm import build_npm_package

    build_npm_package(bundle, out, name=name, version="0.0.1", pack=False, log=None)
    return (out / "example.mjs").read_text(), (out / "README.md").read_text(), (out / "model-specs.d.cts").read_text()


def _gap_model():
    import keras

    ids = keras.Input((4,), dtype="int32", name="ids")
    return keras.Model(ids, keras.layers.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=0, name="lookup")(ids))


@pytest.fixture(scope="module")
def gap_bundle(tmp_path_factory):
    return _export(_gap_model(), tmp_path_factory.mktemp("gap") / "bundle", "il_gap")


def test_lookup_input_draws_vocabulary_entries_and_outputs_int32(gap_bundle, tmp_path):
    example, readme, dts = _package(gap_bundle, tmp_path / "npm")
    assert 'const TOKEN_ID_VALUES = {"ids": [10, 20, 30]};' in example
    assert "values[i % values.length]" in example
    # the range stays for the other int inputs (none here) and as the fallback
    assert "const TOKEN_ID_RANGE = {" in example
    assert ("- input `ids`: shape [N, 4], int32 (token ids: only the 3 vocabulary entries of IntegerLookup "
            "`lookup` (10, 20, 30; model.json holds the vocabulary): num_oov_indices=0, any other id is refused)") in readme
    assert "- output `lookup`: shape [N, 4], int32" in readme
    assert 'readonly "name": "lookup"; readonly "shape": readonly [null, 4]; readonly "dtype": "int32";' in dts
    specs = (tmp_path / "npm" / "model-specs.js").read_text()
    assert json.loads(specs[specs.index("{"):specs.rindex(";")])["il_gap"]["outputs"][0]["dtype"] == "int32"


MIXED_DTYPES = ["float32", "int32", "int32", "float32", "int32"]


@pytest.fixture(scope="module")
def mixed_bundle(tmp_path_factory):
    import keras

    L = keras.layers
    tok = keras.Input((3,), dtype="int32", name="tok")
    uid = keras.Input((2,), dtype="int32", name="uid")
    emb = L.Flatten(name="flat")(L.Embedding(50, 2, name="emb")(tok))  # tok is also read by an Embedding
    count = L.IntegerLookup(vocabulary=[100, 101, 102], output_mode="count", name="count")(tok)
    bins = L.Hashing(num_bins=7, name="bins")(uid)
    hot = L.Hashing(num_bins=5, output_mode="multi_hot", name="hot")(uid)
    flat_bins = L.Reshape((2, 1), name="bins_r")(bins)
    model = keras.Model([tok, uid], [L.Dense(2, name="d")(emb), count, bins, hot, flat_bins])
    return _export(model, tmp_path_factory.mktemp("mixed") / "bundle", "mixed")


def test_layers_output_dtypes_and_shared_inputs(mixed_bundle, tmp_path):
    bundle = mixed_bundle
    example, readme, _ = _package(bundle, tmp_path / "npm")
    from facepack.export.npm import model_specs

    manifest = json.loads((bundle / "manifest.json").read_text())
    dtypes = [o["dtype"] for o in model_specs(manifest, bundle)["mixed"]["outputs"]]
    assert dtypes == MIXED_DTYPES
    # no bundle: the manifest alone, which records outputs[].dtype (keras_export._entry)
    assert [o["dtype"] for o in model_specs(manifest)["mixed"]["outputs"]] == MIXED_DTYPES
    # tok is read by an Embedding too: the range, not the lookup's vocabulary
    assert "const TOKEN_ID_VALUES = {};" in example
    assert "- output `count`: shape [N, 4], int32" in readme
    assert "- output `hot`: shape [N, 5], float32" in readme


def test_graph_output_dtypes_from_the_signature(tmp_path):
    """A graph model's outputs take model.json's signature dtypes (by signature_key, or by the
    tensor name as some converters key them); no export needed for the lookup itself."""
    from facepack.export.npm import output_dtypes

    folder = tmp_path / "bundle" / "g"
    folder.mkdir(parents=True)
    signature = {"outputs": {"output_0": {"name": "Identity:0", "dtype": "DT_FLOAT"},
                             "output_1": {"name": "Identity_1:0", "dtype": "DT_BOOL"},
                             "Identity_2:0": {"name": "Identity_2:0", "dtype": "DT_INT32"}}}
    (folder / "model.json").write_text(json.dumps({"format": "graph-model", "signature": signature}))
    outputs = [{"name": "score", "shape": [None, 3], "signature_key": "output_0"},
               {"name": "greater", "shape": [None, 3], "signature_key": "output_1"},
               {"name": "cast", "shape": [None, 3], "signature_key": "Identity_2:0"},
               {"name": "recorded", "shape": [None], "dtype": "int32"}]
    manifest = {"models": {"g": {"path": "g", "format": "graph-model", "inputs": [], "outputs": outputs}}}
    assert output_dtypes(manifest, "g", tmp_path / "bundle") == ["float32", "bool", "int32", "int32"]
    assert output_dtypes(manifest, "g", None) == ["float32", "float32", "float32", "int32"]


@pytest.mark.skipif(NODE is None or NPM is None, reason="node/npm are not installed")
def test_gap_vocabulary_example_runs_in_node(gap_bundle, mixed_bundle, tmp_path):
    """The packed packages installed into an empty project: example.mjs runs (it exited 1 before) and
    the output tensors TF.js returns have the dtypes MODEL_SPECS says (int32 lookup; the mixed
    model's float32 / int32 outputs)."""
    from facepack.export.npm import build_npm_package

    tarballs = [str(build_npm_package(bundle, tmp_path / "pkg" / name, name=name, version="0.0.1", log=None))
                for bundle, name in ((gap_bundle, "il-gap"), (mixed_bundle, "mixed-pkg"))]
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "t", "private": True, "type": "module"}))
    errors = []
    for mode in ("--offline", "--prefer-offline"):  # as test_npm.install, two tarballs in one call
        proc = subprocess.run([NPM, "install", mode, "--no-audit", "--no-fund", "--ignore-scripts", *tarballs],
                              cwd=project, capture_output=True, text=True, timeout=600)
        if proc.returncode == 0:
            break
        errors.append(proc.stderr[-1500:])
    else:
        raise RuntimeError("npm install failed:\n" + "\n".join(errors))
    shutil.copy(project / "node_modules" / "il-gap" / "example.mjs", project / "example.mjs")
    (project / "dtype.mjs").write_text(
        "import { MODEL_SPECS, loadModel } from 'il-gap';\n"
        "const net = await loadModel('il_gap');\n"
        "const t = net.predict({ ids: { data: [10, 20, 30, 10], shape: [1, 4] } });\n"
        "console.log(JSON.stringify({ dtype: t.dtype, spec: MODEL_SPECS.il_gap.outputs[0].dtype, data: Array.from(t.dataSync()) }));\n")
    proc = subprocess.run([NODE, "example.mjs"], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outputs"][0]["first"] == [0, 1, 2, 0]
    proc = subprocess.run([NODE, "dtype.mjs"], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"dtype": "int32", "spec": "int32", "data": [0, 1, 2, 0]}

    (project / "mixed.mjs").write_text(
        "import { MODEL_SPECS, loadModel } from 'mixed-pkg';\n"
        "const net = await loadModel('mixed');\n"
        "const outs = net.predict({ tok: { data: [1, 2, 3], shape: [1, 3] }, uid: { data: [7, 8], shape: [1, 2] } });\n"
        "console.log(JSON.stringify({ got: outs.map((t) => t.dtype), spec: MODEL_SPECS.mixed.outputs.map((o) => o.dtype) }));\n")
    proc = subprocess.run([NODE, "mixed.mjs"], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"got": MIXED_DTYPES, "spec": MIXED_DTYPES}
    # its example feeds tok ids of the range (an Embedding(50) reads tok too: the lookup's 100..102 would not do)
    shutil.copy(project / "node_modules" / "mixed-pkg" / "example.mjs", project / "example-mixed.mjs")
    proc = subprocess.run([NODE, "example-mixed.mjs"], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
