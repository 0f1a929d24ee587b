"""facepack/runs.py: the two run model layouts (model.keras | model.config.json + model.weights.json +
shards), the one loader (load_run), the file list the bundle key hashes (model_files,
export/bundle.py:_run_digest), the --shard conversion, and train_keypoints_lite.py runs as candidates."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import facepack.runs as runs

# a model whose float32 weights (2.2 KB) split into several shards at this size (MiB)
TINY_SHARD_MB = 1 / 1024  # 1 KiB of weights per shard: 3 shards
DATASET = "YouTube Faces keypoints (68 points)"
SHIPPED_NME = 0.0475  # person split, as models/shipped/keypoints/run.json


def _tiny_model(keras):
    """A functional model with conv, batch-norm statistics and dense weights (seeded, non-trivial BN)."""
    keras.utils.set_random_seed(3)
    x = inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(32, name="points")(x)
    model = keras.Model(inp, out)
    bn = model.get_layer("bn")
    bn.set_weights([w + np.linspace(0.1, 0.9, w.size, dtype=np.float32).reshape(w.shape) for w in bn.get_weights()])
    return model


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """(run folder with model.keras + run.json, probe inputs, the model's outputs on them)."""
    import keras

    from facepack.models.keypoints import masked_keypoint_loss

    run = tmp_path_factory.mktemp("layout") / "keypoints" / "20300101-000000"
    run.mkdir(parents=True)
    model = _tiny_model(keras)
    model.compile(optimizer="adam", loss=masked_keypoint_loss(keras))  # compile_config names the custom loss
    model.save(run / runs.KERAS_FILE)
    (run / "run.json").write_text(json.dumps({"model": "keypoints", "synthetic": True, "metrics": {}}))
    x = np.random.default_rng(0).uniform(0, 255, (4, 12, 12, 3)).astype(np.float32)
    return run, x, np.asarray(model(x, training=False))


@pytest.fixture(scope="module")
def sharded_run(keras_run, tmp_path_factory):
    """keras_run's folder copied and converted with shard_run (tiny shards: several files)."""
    import shutil

    run = tmp_path_factory.mktemp("sharded") / "keypoints" / "20300102-000000"
    shutil.copytree(keras_run[0], run)
    lines = []
    files = runs.shard_run(run, TINY_SHARD_MB, log=lines.append)
    assert "weights bit-identical" in lines[0]
    return run, files


def test_sharded_run_loads_bit_identical_to_its_model_keras(keras_run, sharded_run):
    run, x, expected = keras_run
    sharded, files = sharded_run
    assert not (sharded / runs.KERAS_FILE).exists()
    names = [f.name for f in files]
    assert names[:2] == [runs.CONFIG_FILE, runs.WEIGHTS_INDEX]
    assert names[2:] == [f"model_{i:05d}.weights.h5" for i in range(len(names) - 2)] and len(names) - 2 >= 3
    assert files == runs.model_files(sharded) and runs.model_files(run) == [run / runs.KERAS_FILE]
    a, _ = runs.load_run(run)
    b, info = runs.load_run(sharded)
    assert info["model"] == "keypoints"
    assert [w.path for w in a.weights] == [w.path for w in b.weights]
    for wa, wb in zip(a.weights, b.weights):
        assert np.asarray(wa).tobytes() == np.asarray(wb).tobytes(), wa.path
    assert np.asarray(b(x, training=False)).tobytes() == expected.tobytes()  # max |d| == 0
    # the architecture file is the archive's config.json, byte for byte
    assert (sharded / runs.CONFIG_FILE).read_bytes() == runs._keras_config_json(run / runs.KERAS_FILE)
    # converting again leaves it as it is
    assert runs.shard_run(sharded, TINY_SHARD_MB, log=None) == files


def test_half_present_layouts_are_refused_in_one_line_naming_the_file(sharded_run, tmp_path):
    import shutil

    def variant(name, drop=(), add=()):
        folder = tmp_path / name
        shutil.copytree(sharded_run[0], folder)
        for f in drop:
            (folder / f).unlink()
        for f in add:
            (folder / f).write_bytes(b"x")
        return folder

    cases = {
        variant("no-shard", drop=["model_00001.weights.h5"]):
            r"model\.weights\.json names model_00001\.weights\.h5, which is missing \(1 of \d+ shards missing\)$",
        variant("no-index", drop=[runs.WEIGHTS_INDEX]): r"model\.config\.json without model\.weights\.json",
        variant("no-config", drop=[runs.CONFIG_FILE]): r"model\.weights\.json without model\.config\.json",
        variant("both", add=[runs.KERAS_FILE]): r"has both model\.keras and model\.config\.json .*--shard",
        variant("none", drop=[runs.CONFIG_FILE, runs.WEIGHTS_INDEX]): r"no model: expected model\.keras",
    }
    for folder, pattern in cases.items():
        with pytest.raises(ValueError, match=pattern) as err:
            runs.model_files(folder)
        assert "\n" not in str(err.value) and str(folder) in str(err.value)
        assert not runs.is_run(folder)
    (tmp_path / "bad-index").mkdir()
    (tmp_path / "bad-index" / runs.CONFIG_FILE).write_text("{}")
    (tmp_path / "bad-index" / runs.WEIGHTS_INDEX).write_text("[]")
    with pytest.raises(ValueError, match="is not a Keras sharded-weights index"):
        runs.model_files(tmp_path / "bad-index")
    # the loader and an explicit choice say the same; the automatic choice passes such a run over, named
    broken = next(f for f in cases if f.name == "no-index")
    with pytest.raises(ValueError, match="without model.weights.json"):
        runs.load_run(broken)
    with pytest.raises(ValueError, match=r"^--keypoints: run .*no-index: model\.config\.json without"):
        runs.resolve_run("keypoints", broken)


def test_explicit_choice_accepts_any_model_file_and_the_choice_skips_broken_runs(sharded_run, tmp_path, monkeypatch):
    sharded, files = sharded_run
    for f in files:  # config, index and every shard stand for their folder
        assert runs.resolve_run("keypoints", f) == sharded
    monkeypatch.setattr(runs, "SHIPPED_ROOT", tmp_path / "shipped")
    _lite_run(tmp_path / "shipped" / "keypoints", {"nme_mean": SHIPPED_NME}, "person")
    broken = _lite_run(tmp_path / "runs" / "keypoints" / "20300105-000000", {"nme_mean": 0.01}, "person")
    (broken / runs.KERAS_FILE).unlink()
    (broken / runs.WEIGHTS_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": {"/vars": "model_00000.weights.h5"}}))
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == tmp_path / "shipped" / "keypoints"
    assert choice.skipped == [(broken, "model.weights.json without model.config.json: the sharded layout needs "
                                       "model.config.json, model.weights.json and the shards it names")]


def test_bundle_key_hashes_the_model_files_and_keeps_model_keras_keys(keras_run, sharded_run):
    from facepack.export import bundle
    from facepack.export.tfjs_io import sha256

    run, sharded = keras_run[0], sharded_run[0]
    old = bundle._run_digest(run)
    assert set(old) == {"path", "model.keras", "run.json"}  # the digest earlier versions wrote: same key
    assert old["model.keras"] == sha256(run / runs.KERAS_FILE)
    new = bundle._run_digest(sharded)
    assert set(new) == {"path", "run.json"} | {f.name for f in sharded_run[1]}
    assert new[runs.WEIGHTS_INDEX] == sha256(sharded / runs.WEIGHTS_INDEX)
    key = bundle.build_key({"keypoints": sharded}, "none", False)["sets"]["keypoints"]
    shard = sharded / "model_00001.weights.h5"
    saved = shard.read_bytes()
    try:
        shard.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
        assert bundle.build_key({"keypoints": sharded}, "none", False)["sets"]["keypoints"] != key
    finally:
        shard.write_bytes(saved)


def test_shard_cli(keras_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "cli"
    shutil.copytree(keras_run[0], run)
    assert runs.main(["--shard", str(run), "--shard-mb", str(TINY_SHARD_MB)]) == 0
    assert "weights bit-identical, written as model.config.json" in capsys.readouterr().out
    assert runs.model_files(run)[0].name == runs.CONFIG_FILE
    assert runs.main(["--shard", str(tmp_path / "missing"), "--quiet"]) == 1
    for argv in ([], ["keypoints", "--shard", str(run)]):
        with pytest.raises(SystemExit) as stop:
            runs.main(argv)
        assert stop.value.code == 2


def _archive_stub(path):
    """A zip with a .keras archive's two members (model_files checks the directory; never loaded)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")


def test_cut_short_or_empty_files_are_refused_by_name_and_passed_over(keras_run, sharded_run, tmp_path, monkeypatch):
    """A half-copied run (newuser #1, #11): a truncated or empty shard, a truncated model.keras or model.config.json.
    model_files, resolve_run and load_run raise one line naming the run and the file; choose_run passes it over."""
    size = (sharded_run[0] / "model_00001.weights.h5").stat().st_size
    keras_size = (keras_run[0] / runs.KERAS_FILE).stat().st_size

    def copy(name, source, file, keep_bytes):
        folder = tmp_path / "runs" / "keypoints" / name
        shutil.copytree(source, folder)
        with open(folder / file, "r+b") as f:
            f.truncate(keep_bytes)
        return folder

    cases = {  # folder -> the line's tail after "run <folder>: "
        copy("20300110-000000", sharded_run[0], "model_00001.weights.h5", size // 2):
            rf"model_00001\.weights\.h5 is not a whole HDF5 shard \(truncated file: eof = {size // 2}, .*stored_eof = "
            rf"{size}; {size // 2:,} B\): cut short or empty\? copy the run again$",
        copy("20300111-000000", sharded_run[0], "model_00002.weights.h5", 0):
            r"model_00002\.weights\.h5 is not a whole HDF5 shard \(file signature not found; 0 B\): cut short",
        copy("20300112-000000", keras_run[0], runs.KERAS_FILE, keras_size - 100):
            rf"model\.keras is not a whole Keras archive \(File is not a zip file; {keras_size - 100:,} B\): cut short",
        copy("20300113-000000", sharded_run[0], runs.CONFIG_FILE, 100):
            r"model\.config\.json is not valid JSON \(.*\(char \d+\); 100 B\): cut short or empty\? copy the run again$",
    }
    for folder, tail in cases.items():
        for call in (runs.model_files, runs.load_run):
            with pytest.raises(ValueError, match=rf"^run {folder}: {tail}") as err:
                call(folder)
            assert "\n" not in str(err.value)
        with pytest.raises(ValueError, match=rf"^--keypoints: run {folder}: {tail}"):
            runs.resolve_run("keypoints", folder)
        assert not runs.is_run(folder)
    # a shard holding other groups than the index puts there (a shard copied from another run)
    swapped = tmp_path / "runs" / "keypoints" / "20300114-000000"
    shutil.copytree(sharded_run[0], swapped)
    shutil.copy(swapped / "model_00001.weights.h5", swapped / "model_00000.weights.h5")
    with pytest.raises(ValueError, match=r"model_00000\.weights\.h5 lacks /layers/conv2d/vars, which model\.weights\.json "
                                         r"puts there \(2 of 2 groups missing\): another run's shard\? copy the run again$"):
        runs.model_files(swapped)
    # the automatic choice: every broken run is named with its file, the shipped model is kept
    monkeypatch.setattr(runs, "SHIPPED_ROOT", tmp_path / "shipped")
    _lite_run(tmp_path / "shipped" / "keypoints", {"nme_mean": SHIPPED_NME}, "person")
    for folder in [*cases, swapped]:
        (folder / "run.json").write_text(json.dumps({"model": "keypoints", "synthetic": False, "metrics": {
            "nme_mean": 0.01}, "dataset": {"name": DATASET, "synthetic": False, "val_split": "person"}}))
    (tmp_path / "runs" / "keypoints" / ".20300115-000000.partial").mkdir()  # hidden (rsync): not a candidate
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == tmp_path / "shipped" / "keypoints"
    assert [p for p, _ in choice.skipped] == [swapped, *reversed(cases)]
    for (folder, why), tail in zip(choice.skipped[1:], reversed(cases.values())):
        assert re_match(tail, why), (folder, why)
    # what Keras itself cannot read (a whole zip whose config is not a model) is one line from load_run too
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "run.json").write_text("{}")
    with zipfile.ZipFile(odd / runs.KERAS_FILE, "w") as archive:
        archive.writestr("config.json", "[]")
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ValueError, match=rf"^run {odd}: Keras could not load model\.keras \(\w+: [^\n]*: cut short"):
        runs.load_run(odd)


def re_match(pattern, text):
    import re

    return re.match(pattern, text) is not None


def test_shard_removes_what_a_killed_shard_left(keras_run, tmp_path):
    """A killed --shard leaves .shard-tmp-<pid>/ (newuser #15): the next shard_run deletes it when that pid is
    gone, refuses while it lives; no reader looks into it."""
    run = tmp_path / "killed"
    shutil.copytree(keras_run[0], run)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = run / f"{runs.SHARD_TMP_PREFIX}{int(dead.stdout)}"  # a pid that has exited
    shutil.copytree(keras_run[0], stale)  # partial files, as a kill leaves them
    assert runs.model_files(run) == [run / runs.KERAS_FILE]
    live = run / f"{runs.SHARD_TMP_PREFIX}{os.getppid()}"
    live.mkdir()
    with pytest.raises(ValueError, match=rf"process {os.getppid()} is converting it \({live.name}\)"):
        runs.shard_run(run, TINY_SHARD_MB, log=None)
    assert stale.is_dir() is False and (run / runs.KERAS_FILE).is_file()  # stale ones go first; the run is unchanged
    live.rmdir()
    stale.mkdir()
    lines = []
    runs.shard_run(run, TINY_SHARD_MB, log=lines.append)
    assert lines[0].endswith(f"removed {stale.name}, left by an interrupted --shard")
    assert "weights bit-identical" in lines[1]
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    stale.mkdir()  # also when the run is already sharded
    runs.shard_run(run, TINY_SHARD_MB, log=None)
    assert not stale.exists()


# --- train_keypoints_lite.py runs (runs/keypoints_lite/<stamp>/, metrics per split) ------------------------
def _lite_run(folder, metrics, val_split, name=DATASET):
    """A run folder as choose_run reads it (run.json; a model.keras that is never loaded)."""
    folder.mkdir(parents=True)
    _archive_stub(folder / runs.KERAS_FILE)
    info = {"model": "keypoints", "synthetic": False, "metrics": metrics,
            "dataset": {"name": name, "synthetic": False, "val_split": val_split}, "args": {"val_split": val_split}}
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def _split_metrics(person: float, frame: float) -> dict:
    """train_keypoints_lite.py's run.json metrics: one entry per split, plus the Einstein photo."""
    return {"person_split": {"nme_mean": person, "n": 348}, "frame_split": {"nme_mean": frame, "n": 346},
            "einstein": {"nme_mean": 0.08, "n": 1}}


def test_keypoints_lite_runs_are_candidates_on_their_own_split(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "SHIPPED_ROOT", tmp_path / "shipped")
    shipped = _lite_run(tmp_path / "shipped" / "keypoints", {"nme_mean": SHIPPED_NME}, "person")
    lite = tmp_path / "runs" / "keypoints_lite"
    # a person-split lite run is compared on metrics.person_split (its held-out people)
    worse = _lite_run(lite / "20300101-000000", _split_metrics(SHIPPED_NME + 0.002, 0.030), "person")
    assert runs.run_metric("keypoints", runs.read_run_info(worse)) == SHIPPED_NME + 0.002
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == shipped
    assert choice.skipped == [(worse, f"NME {SHIPPED_NME + 0.002:.3f} is worse than the shipped model's {SHIPPED_NME:.3f}")]
    # numbers that agree to 3 decimals are shown with as many more as tell them apart
    close = {"metrics": {"person_split": {"nme_mean": 0.04754}}, "dataset": {"val_split": "person"}}
    assert runs._why_not("keypoints", close, SHIPPED_NME, ("person", None)) == \
        "NME 0.04754 is worse than the shipped model's 0.04750"
    # a frame-split lite run: its person_split entry (people it trained on) is not used; passed over as before
    frame = _lite_run(lite / "20300102-000000", _split_metrics(0.030, 0.031), "frame")
    assert runs.run_metric("keypoints", runs.read_run_info(frame)) == 0.031
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == shipped and choice.skipped[0][0] == frame
    assert "validated on a frame split (held-out frames" in choice.skipped[0][1]
    # a better person-split lite run is used; hand-named copies sort by their stamp, beside runs/keypoints/
    better = _lite_run(lite / "candidate-20300103-000000", _split_metrics(SHIPPED_NME - 0.004, 0.036), "person")
    older = _lite_run(tmp_path / "runs" / "keypoints" / "20300102-120000", {"nme_mean": SHIPPED_NME - 0.01}, "person")
    assert runs.run_candidates("keypoints", tmp_path / "runs") == [better, older, frame, worse]
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == better and choice.skipped == []
    assert f"NME {SHIPPED_NME - 0.004:.3f} vs the shipped model's {SHIPPED_NME:.3f}" in choice.reason
    # explicit names resolve in runs/keypoints_lite/ too
    assert runs.resolve_run("keypoints", "20300101-000000", root=tmp_path / "runs") == worse
