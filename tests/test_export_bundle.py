"""The bundle builder: manifest + schema + sha256, atomic replacement, --only, quantisation, CLI.

Uses the session's ``tiny_bundle`` (conftest: untrained mobilenet_v2@64 beauty + kpnet
keypoints + MTCNN, float32) and small extra conversions of the keypoint model (fast).
"""

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from facepack import spec
from facepack.export import ParityError, build_bundle
from facepack.export import bundle as bundle_mod
from facepack.export import manifest as manifest_mod

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_MODELS = {"mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "beauty_features", "beauty_head", "keypoints"}
QUANT_SIZE_RATIO = {"float16": (0.45, 0.56), "uint8": (0.22, 0.32)}  # weights bytes vs float32


def snapshot(folder: Path) -> dict:
    """{relative path: bytes} of every file under folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(out: Path) -> list:
    """Temp/backup folders next to ``out`` (the lock file ``.<name>.lock`` stays by design)."""
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock"]


@pytest.fixture(scope="module")
def manifest(tiny_bundle):
    return json.loads((tiny_bundle / "manifest.json").read_text())


def test_bundle_has_every_model_folder(tiny_bundle, manifest):
    assert set(manifest["models"]) == EXPECTED_MODELS
    for name, entry in manifest["models"].items():
        assert entry["path"] == name
        assert (tiny_bundle / name / "model.json").is_file()
        assert json.loads((tiny_bundle / name / "model.json").read_text())["format"] == "layers-model"
        assert entry["format"] == "layers-model"


def test_manifest_matches_schema_and_files(tiny_bundle, manifest):
    manifest_mod.validate(manifest)
    manifest_mod.verify_files(tiny_bundle, manifest)
    listed = {f["path"] for e in manifest["models"].values() for f in e["files"]}
    on_disk = {p for p in snapshot(tiny_bundle) if p != "manifest.json"}
    assert listed == on_disk


def test_manifest_carries_spec_run_and_versions(manifest):
    assert manifest["spec"] == json.loads(json.dumps(spec.spec_dict()))
    assert manifest["synthetic"] is True  # the untrained test runs are marked synthetic
    assert set(manifest["versions"]) >= {"tensorflow", "keras", "tf_keras", "tensorflowjs", "facepack"}
    beauty = manifest["models"]["beauty_features"]
    assert beauty["backbone"] == "mobilenet_v2" and beauty["input_size"] == 64
    assert beauty["run"]["dataset"]["name"] and beauty["run"]["synthetic"] is True
    head = manifest["models"]["beauty_head"]
    assert head["inputs"][0]["shape"] == beauty["outputs"][0]["shape"]
    assert head["outputs"][0]["shape"] == [None, spec.BEAUTY["bins"]]
    assert manifest["models"]["keypoints"]["outputs"][0]["shape"] == [None, 136]
    assert manifest["models"]["mtcnn_pnet"]["inputs"][0]["shape"] == [None, None, None, 3]
    assert [o["name"] for o in manifest["models"]["mtcnn_onet"]["outputs"]] == ["bbox_reg", "landmarks", "prob"]


def test_float32_parity_is_recorded_and_tight(manifest):
    for name, entry in manifest["models"].items():
        p = entry["parity"]
        assert entry["precision"] == "float32"
        assert p["criterion"] == "max_abs_diff" and p["max_abs_diff"] <= p["tolerance"] <= 1e-2, name
        assert p["probe"]
    for name in ("beauty_features", "beauty_head"):
        p = manifest["models"][name]["parity"]
        assert p["score_change_points"] <= p["score_tolerance_points"] == bundle_mod.SCORE_TOL_POINTS["float32"]


def test_schema_rejects_broken_manifests(manifest):
    bad = copy.deepcopy(manifest)
    del bad["models"]["keypoints"]["files"][0]["sha256"]
    bad["models"]["beauty_head"]["format"] = "savedmodel"
    bad["synthetic"] = "no"
    errors = manifest_mod.schema_errors(bad, manifest_mod.load_schema())
    text = "\n".join(errors)
    assert "keypoints.files[0]: missing required key 'sha256'" in text
    assert "beauty_head.format" in text and "$.synthetic" in text
    with pytest.raises(ValueError, match="manifest_schema.json"):
        manifest_mod.validate(bad)


def test_verify_files_detects_a_changed_shard(tiny_bundle, tmp_path):
    copy_dir = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy_dir)
    shard = next((copy_dir / "keypoints").glob("*.bin"))
    data = bytearray(shard.read_bytes())
    data[0] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="keypoints.*differs"):
        manifest_mod.verify_files(copy_dir)


# --- atomicity ------------------------------------------------------------------------------

@pytest.fixture()
def old_bundle(tiny_bundle, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(tiny_bundle, out)
    return out


def test_failure_half_way_leaves_old_bundle_byte_identical(old_bundle, untrained_runs):
    before = snapshot(old_bundle)
    calls = []

    def explode(name):
        calls.append(name)
        raise RuntimeError("simulated crash after writing " + name)

    with pytest.raises(RuntimeError, match="simulated crash"):
        build_bundle(old_bundle, keypoints_run=untrained_runs["keypoints"], models=["keypoints"],
                     log=None, _after_model=explode)
    assert calls == ["keypoints"]  # it really got half-way: a model was written
    assert snapshot(old_bundle) == before
    assert leftovers(old_bundle) == []


def test_parity_failure_is_clear_and_keeps_old_bundle(old_bundle, untrained_runs, monkeypatch):
    before = snapshot(old_bundle)
    monkeypatch.setattr(bundle_mod, "MAX_ABS_REL_TOL", -1.0)
    with pytest.raises(ParityError, match=r"model 'keypoints' \(float32\): max_abs_diff .* exceeds the tolerance"):
        build_bundle(old_bundle, keypoints_run=untrained_runs["keypoints"], models=["keypoints"], log=None)
    assert snapshot(old_bundle) == before
    assert leftovers(old_bundle) == []


def test_interrupt_during_swap_restores_old_bundle(old_bundle, monkeypatch):
    before = snapshot(old_bundle)

    def flaky(src, dst):
        assert ".tmp-" in str(src)
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_mod, "_exchange", flaky)
    with pytest.raises(KeyboardInterrupt):
        with bundle_mod.atomic_replace(old_bundle) as tmp:
            (tmp / "manifest.json").write_text("{}")
    assert snapshot(old_bundle) == before
    assert leftovers(old_bundle) == []


def test_only_keeps_the_other_models(old_bundle, untrained_runs):
    before = snapshot(old_bundle)
    m = build_bundle(old_bundle, keypoints_run=untrained_runs["keypoints"], models=["keypoints"],
                     keep_others=True, log=None)
    assert set(m["models"]) == EXPECTED_MODELS
    after = snapshot(old_bundle)
    for path, data in before.items():
        if path != "manifest.json":  # others carried over; keypoints rebuilt from the same run:
            assert after[path] == data, path  # the conversion is deterministic, byte for byte
    manifest_mod.verify_files(old_bundle)


# --- quantisation ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quantized(tmp_path_factory, untrained_runs):
    out = {}
    for q in ("none", "float16", "uint8"):
        folder = tmp_path_factory.mktemp(f"q_{q}") / "models"
        out[q] = build_bundle(folder, keypoints_run=untrained_runs["keypoints"], models=["keypoints"],
                              quantize=q, log=None)
    return out


def _weight_bytes(entry):
    return sum(f["bytes"] for f in entry["files"] if f["path"].endswith(".bin"))


@pytest.mark.parametrize("q", ["float16", "uint8"])
def test_quantized_sizes_and_bounded_changes(quantized, q):
    full = quantized["none"]["models"]["keypoints"]
    small = quantized[q]["models"]["keypoints"]
    assert small["precision"] == q
    lo, hi = QUANT_SIZE_RATIO[q]
    assert lo <= _weight_bytes(small) / _weight_bytes(full) <= hi
    p = small["parity"]
    assert p["criterion"] == "rel_rms" and 0 < p["rel_rms"] <= p["tolerance"]
    assert p["max_abs_diff"] > full["parity"]["max_abs_diff"]  # quantisation does change outputs


# Quantise only tensors of >= this many values: every beauty_features conv of >= 153,600 (mobilenet_v2@64:
# the largest is 409,600), no beauty_head tensor (its largest, the Dense kernel, has 129,280), so the
# head stays float32 and gets the "quantize changed nothing" note while the features do not.
HEAD_STAYS_FLOAT32_MIN_ELEMENTS = 150_000


def test_quantized_beauty_score_change_is_checked(untrained_runs, tmp_path, monkeypatch):
    from facepack.export import tfjs_io

    monkeypatch.setattr(tfjs_io, "QUANT_MIN_ELEMENTS", HEAD_STAYS_FLOAT32_MIN_ELEMENTS)
    m = build_bundle(tmp_path / "ok", beauty_run=untrained_runs["beauty"], models=["beauty"], quantize="uint8", log=None)
    p = m["models"]["beauty_head"]["parity"]
    assert p["score_change_points"] <= p["score_tolerance_points"] == bundle_mod.SCORE_TOL_POINTS["uint8"]
    # Each entry's notes are its own (the pair's came from one list: the head's note showed in both).
    from facepack.export.tfjs_io import unquantised_note

    assert {name: e["precision"] for name, e in m["models"].items()} == {"beauty_features": "uint8",
                                                                        "beauty_head": "float32"}
    assert unquantised_note("uint8") in m["models"]["beauty_head"]["bridge_notes"]
    assert unquantised_note("uint8") not in m["models"]["beauty_features"]["bridge_notes"]
    monkeypatch.setitem(bundle_mod.SCORE_TOL_POINTS, "uint8", -1.0)
    with pytest.raises(ParityError, match=r"beauty model \(uint8\): the exported expected score differs"):
        build_bundle(tmp_path / "bad", beauty_run=untrained_runs["beauty"], models=["beauty"], quantize="uint8", log=None)
    assert not (tmp_path / "bad").exists()


def test_quantised_tolerances_are_per_backbone():
    """ResNet50 gets its own (looser) quantised tolerances; every other backbone the strict ones."""
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4, 8))
    got = ref + 0.5 * rng.normal(size=ref.shape)  # rel rms ~0.5: above 0.3 (uint8), under ResNet50's 0.8
    assert bundle_mod.parity([ref], [got], "uint8", "m", "resnet50")["tolerance"] == bundle_mod.BACKBONE_TOL[
        "resnet50"]["rel_rms"]["uint8"]
    for backbone in (None, "mobilenet_v2", "kpnet"):
        with pytest.raises(ParityError, match=r"model 'm' \(uint8\): rel_rms 0\.\d+ .* exceeds the tolerance 0\.3"):
            bundle_mod.parity([ref], [got], "uint8", "m", backbone)
    assert bundle_mod.score_tolerance("float16", "efficientnet_lite0") == bundle_mod.SCORE_TOL_POINTS["float16"]
    assert bundle_mod.score_tolerance("float32", "resnet50") == bundle_mod.SCORE_TOL_POINTS["float32"]


def test_mtcnn_stays_float32_when_quantizing(tmp_path):
    m = build_bundle(tmp_path / "models", models=["mtcnn"], quantize="uint8", log=None)
    assert {e["precision"] for e in m["models"].values()} == {"float32"}


def test_bad_quantize_value_names_the_flag(tmp_path):
    with pytest.raises(ValueError, match=r"--quantize must be one of .* got 'int4'"):
        build_bundle(tmp_path / "m", quantize="int4", log=None)


# --- CLI --------------------------------------------------------------------------------------

def _cli():
    sys.path.insert(0, str(ROOT / "convert"))
    try:
        import to_tfjs
    finally:
        sys.path.pop(0)
    return to_tfjs


def test_cli_missing_run_fails_cleanly_and_keeps_bundle(old_bundle, tmp_path, capsys):
    before = snapshot(old_bundle)
    code = _cli().main(["--out", str(old_bundle), "--beauty", str(tmp_path / "nope"), "--only", "beauty"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--beauty: expected a run folder" in err and "left unchanged" in err
    assert snapshot(old_bundle) == before


def test_build_key_changes_only_with_its_inputs(untrained_runs, tmp_path):
    runs = {"mtcnn": None, "beauty": untrained_runs["beauty"], "keypoints": untrained_runs["keypoints"]}
    key = bundle_mod.build_key(runs, "none", False)
    assert bundle_mod.build_key(runs, "none", False) == key  # deterministic
    edited = tmp_path / "keypoints" / "20000101-000000"  # same public path, other run.json
    shutil.copytree(untrained_runs["keypoints"], edited)
    info = json.loads((edited / "run.json").read_text())
    (edited / "run.json").write_text(json.dumps({**info, "metrics": {"nme_mean": 0.1}}))
    other = bundle_mod.build_key({**runs, "keypoints": edited}, "none", False)
    assert [name for name in runs if other["sets"][name] != key["sets"][name]] == ["keypoints"]
    for options in (("float16", False), ("none", True)):  # an option changes every set
        changed = bundle_mod.build_key(runs, *options)["sets"]
        assert all(changed[name] != key["sets"][name] for name in runs), options
    assert set(key["inputs"]["common"]["versions"]) >= {"tensorflow", "tensorflowjs", "facepack", "@tensorflow/tfjs"}


def test_uint8_key_covers_the_calibration_crops(untrained_runs, monkeypatch):
    """review #5: the uint8 rule's calibration crops (quantize.fixture_calibration: fixture photos
    through facepack/crop.py and facepack/data/images.py, outside KEY_SOURCES) are in the beauty
    set's uint8 key: other crops change it and nothing else; other precisions never compute them."""
    from facepack.export import quantize as quantize_mod

    runs = {"mtcnn": None, "beauty": untrained_runs["beauty"], "keypoints": untrained_runs["keypoints"]}
    key = bundle_mod.build_key(runs, "uint8", False)
    size = json.loads((untrained_runs["beauty"] / "run.json").read_text())["input_size"]
    assert key["inputs"]["beauty"]["uint8_calibration"] == bundle_mod._calibration_digest(untrained_runs["beauty"])
    real = quantize_mod.fixture_calibration
    sizes = []

    def shifted(size_px, *args, **kwargs):  # a crop-code change moving every crop by one grey level
        sizes.append(size_px)
        return real(size_px, *args, **kwargs) + 1.0

    monkeypatch.setattr(quantize_mod, "fixture_calibration", shifted)
    other = bundle_mod.build_key(runs, "uint8", False)
    assert sizes == [size]  # the crops at the run's own input size
    assert [name for name in runs if other["sets"][name] != key["sets"][name]] == ["beauty"]
    for q in ("none", "float16"):
        assert "uint8_calibration" not in bundle_mod.build_key(runs, q, False)["inputs"]["beauty"], q
    assert sizes == [size]


def test_unchanged_export_is_skipped_and_a_damaged_set_rebuilt_alone(old_bundle, untrained_runs, capsys,
                                                                    monkeypatch):
    """The same export is skipped (nothing converted, files untouched; also from the CLI); with an
    R-Net shard damaged only the MTCNN set is rebuilt, byte for byte as before. The code digest is pinned (other sessions'
    edits of the tree must not change the key mid-test) and recorded as the bundle's build."""
    monkeypatch.setattr(bundle_mod, "_tree_digest", lambda *args, **kwargs: "0" * 64)
    args = {"beauty_run": untrained_runs["beauty"], "keypoints_run": untrained_runs["keypoints"]}
    recorded = manifest_mod.read_manifest(old_bundle)
    recorded["build"] = bundle_mod.build_key({"mtcnn": None, "beauty": args["beauty_run"],
                                              "keypoints": args["keypoints_run"]}, "none", False)
    del recorded["build"]["version"]
    manifest_mod.write_manifest(old_bundle, recorded)
    before = snapshot(old_bundle)
    said = []
    old = build_bundle(old_bundle, skip_unchanged=True, log=said.append, **args)
    assert snapshot(old_bundle) == before and old == manifest_mod.read_manifest(old_bundle)
    assert any("is up to date" in line for line in said) and not any("converting" in line for line in said)
    assert _cli().main(["--out", str(old_bundle), "--beauty", str(args["beauty_run"]), "--keypoints",
                        str(args["keypoints_run"]), "--no-node-check"]) == 0
    assert "is up to date" in capsys.readouterr().err and snapshot(old_bundle) == before
    shard = next((old_bundle / "mtcnn_rnet").glob("*.bin"))
    shard.write_bytes(b"\0" + shard.read_bytes()[1:])
    said.clear()
    new = build_bundle(old_bundle, skip_unchanged=True, log=said.append, **args)
    assert "reusing beauty, keypoints from" in " ".join(said)
    assert [line for line in said if line.startswith("converting")] == [
        f"converting mtcnn_{net} ..." for net in ("pnet", "rnet", "onet")]
    after = snapshot(old_bundle)
    assert {p for p in after if after[p] != before.get(p)} == {"manifest.json"}  # the damage repaired
    assert new["build"]["sets"] == old["build"]["sets"]  # the same inputs: the same keys
    manifest_mod.verify_files(old_bundle)


def test_cli_help_explains(capsys):
    with pytest.raises(SystemExit):
        _cli().main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--only", "--quantize", "--model", "--npm", "--out", "--beauty", "--keypoints"):
        assert flag in text


def test_cli_user_model(tmp_path):
    """--model/--name: a user's own Keras 3 model (with a Keras-3-only activation) is exported."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 3), name="x")
    y = keras.layers.Conv2D(4, 3, activation="hard_sigmoid", name="c")(inp)
    y = keras.layers.Flatten(name="f")(y)
    y = keras.layers.Dense(5, activation="silu", name="d")(y)
    path = tmp_path / "mine.keras"
    keras.Model(inp, y).save(path)
    out = tmp_path / "bundle"
    code = _cli().main(["--model", str(path), "--name", "mine", "--out", str(out)])
    assert code == 0
    m = json.loads((out / "manifest.json").read_text())
    assert list(m["models"]) == ["mine"]
    assert m["models"]["mine"]["parity"]["max_abs_diff"] <= 1e-5
    assert any("hard_sigmoid" in n for n in m["models"]["mine"]["bridge_notes"])


# --- TF.js check in Node -------------------------------------------------------------------------

@pytest.mark.node
def test_node_check_records_tfjs_parity(untrained_runs, tmp_path):
    from facepack.export.node_check import node_available

    ok, why = node_available()
    if not ok:
        pytest.skip(why)
    m = build_bundle(tmp_path / "m", keypoints_run=untrained_runs["keypoints"], models=["keypoints", "mtcnn"],
                     node_check=True, log=None)
    for name, entry in m["models"].items():
        tfjs = entry["parity"]["tfjs"]
        assert tfjs["backend"] == "wasm" and tfjs["max_abs_diff"] <= entry["parity"]["tolerance"], name
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["models"]["keypoints"]["parity"]["tfjs"]


def test_node_check_failure_keeps_old_bundle(old_bundle, untrained_runs, monkeypatch):
    from facepack.export import node_check

    before = snapshot(old_bundle)
    monkeypatch.setattr(node_check, "node_available", lambda: (True, ""))
    monkeypatch.setattr(node_check, "run_node", lambda bundle, backend, requests, work:
                        [[np.full((x.shape[0], 136), 7.0, np.float32)] for _, x in requests])
    with pytest.raises(ParityError, match="keypoints in TF.js wasm"):
        build_bundle(old_bundle, keypoints_run=untrained_runs["keypoints"], models=["keypoints"],
                     node_check=True, log=None)
    assert snapshot(old_bundle) == before


# --- graph-model fallback ------------------------------------------------------------------------

def _ops_model(path: Path) -> Path:
    """A Keras 3 model using raw ops (no tf_keras twin) and a conv + scalar add (a scalar bias)."""
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3), name="x")
    y = keras.layers.Conv2D(8, 3, name="c")(inp)
    y = keras.ops.sqrt(keras.ops.abs(y) + 3.0)
    y = keras.layers.Conv2D(4, 1, name="c2")(y) + 3.0
    y = keras.layers.ReLU(6.0, name="r")(y)
    y = keras.layers.GlobalAveragePooling2D(name="g")(y)
    y = keras.layers.Dense(3, name="d")(y)
    keras.Model(inp, y).save(path)
    return path


@pytest.mark.node
def test_unbridgeable_model_becomes_a_checked_graph_model(tmp_path):
    from facepack.export.node_check import node_available

    ok, why = node_available()
    if not ok:
        pytest.skip(why)
    out = tmp_path / "b"
    code = _cli().main(["--model", str(_ops_model(tmp_path / "ops.keras")), "--name", "ops", "--out", str(out)])
    assert code == 0
    entry = json.loads((out / "manifest.json").read_text())["models"]["ops"]
    assert entry["format"] == "graph-model"
    assert entry["parity"]["read_back"].startswith("TF.js") and entry["parity"]["tfjs"]["backend"] == "wasm"
    assert entry["parity"]["max_abs_diff"] <= entry["parity"]["tolerance"]
    assert any("widened 1 scalar biases" in n for n in entry["bridge_notes"])


@pytest.mark.node
def test_scalar_bias_widening_is_what_makes_wasm_work(tmp_path, monkeypatch):
    from facepack.export import tfjs_io
    from facepack.export.node_check import node_available

    ok, why = node_available()
    if not ok:
        pytest.skip(why)
    monkeypatch.setattr(tfjs_io, "widen_scalar_biases", lambda model_json, values: [])
    with pytest.raises(RuntimeError, match="rank-1 bias"):
        build_bundle(tmp_path / "b", user_model=_ops_model(tmp_path / "ops.keras"), user_name="ops", log=None)
    assert not (tmp_path / "b").exists()


def test_manifest_shows_no_local_absolute_paths(tiny_bundle):
    """The manifest is served publicly: run folders appear relative, never as /home/... paths."""
    import json

    text = (tiny_bundle / "manifest.json").read_text()
    runs = [m["run"]["path"] for m in json.loads(text)["models"].values() if "run" in m and "path" in m["run"]]
    assert runs and all(not p.startswith("/") for p in runs)
    assert str(tiny_bundle.parent.parent) not in text
