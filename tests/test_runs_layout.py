"""facepack/runs.py: the two run model layouts (model.keras | model.config.json + model.weights.json +
shards + model.shards.sha256), the one loader (load_run), the file list the bundle key hashes (model_files,
export/bundle.py:_run_digest), the --shard conversion and its exit statuses, and train_keypoints_lite.py runs
as candidates."""

import hashlib
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
    # the shards' sha256s, in sha256sum's format; not a model file (the bundle key hashes the shards themselves)
    digests = (sharded / runs.DIGESTS_FILE).read_text()
    assert digests == "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" for f in files[2:])
    assert runs.DIGESTS_FILE not in names and runs.is_model_file_name(runs.DIGESTS_FILE)
    assert runs.resolve_run("keypoints", sharded / runs.DIGESTS_FILE) == sharded
    # converting again leaves it as it is
    lines = []
    assert runs.shard_run(sharded, TINY_SHARD_MB, log=lines.append) == files
    assert lines == [f"{sharded}: already in the sharded layout ({len(files) - 2} shards, matching "
                     f"model.shards.sha256); left as it is"]


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
    assert runs.DIGESTS_FILE not in new  # derived from the shards, which are in the key
    key = bundle.build_key({"keypoints": sharded}, "none", False)["sets"]["keypoints"]
    shard = sharded / "model_00001.weights.h5"
    saved, digests = shard.read_bytes(), (sharded / runs.DIGESTS_FILE).read_bytes()
    try:
        shard.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
        with pytest.raises(ValueError, match=r"model_00001\.weights\.h5 has changed since --shard wrote it"):
            bundle.build_key({"keypoints": sharded}, "none", False)  # a changed shard is refused, not exported
        (sharded / runs.DIGESTS_FILE).unlink()  # a run sharded before the digests: its key follows the bytes
        assert bundle.build_key({"keypoints": sharded}, "none", False)["sets"]["keypoints"] != key
    finally:
        shard.write_bytes(saved)
        (sharded / runs.DIGESTS_FILE).write_bytes(digests)
    assert bundle.build_key({"keypoints": sharded}, "none", False)["sets"]["keypoints"] == key


def test_shard_cli(keras_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "cli"
    shutil.copytree(keras_run[0], run)
    assert runs.main(["--shard", str(run), "--shard-mb", str(TINY_SHARD_MB)]) == 0
    out = capsys.readouterr().out
    assert "weights bit-identical, written as model.config.json" in out and out.endswith(" + model.shards.sha256\n")
    assert runs.model_files(run)[0].name == runs.CONFIG_FILE
    assert runs.main(["--shard", str(tmp_path / "missing"), "--quiet"]) == 2
    capsys.readouterr()


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    return captured.err


def test_cli_exit_status_is_2_for_usage_errors_and_1_for_failures(sharded_run, tmp_path, capsys, monkeypatch):
    """argparse's convention: 2 when the arguments cannot work (a folder that is no run, a bad value), 1 when
    the named run or the conversion fails; one line on stderr each."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("x")
    usage = {  # argv -> the line's start
        (): "python -m facepack.runs: error: give KIND (beauty or keypoints) or --shard DIR (see --help)",
        ("keypoints", "--shard", str(tmp_path)): "python -m facepack.runs: error: --shard DIR takes no KIND or --run",
        ("--shard", str(tmp_path), "--shard-mb", "x"): "python -m facepack.runs: error: argument --shard-mb: invalid",
        ("nokind",): "python -m facepack.runs: error: argument kind: invalid choice: 'nokind'",
        ("--shard", str(tmp_path / "missing")): f"error: --shard {tmp_path / 'missing'}: no such folder",
        ("--shard", str(tmp_path / "a-file")): f"error: --shard {tmp_path / 'a-file'}: is a file; name its run folder",
        ("--shard", str(tmp_path / "empty")): f"error: --shard {tmp_path / 'empty'}: not a run folder (no model.keras",
        ("--shard", str(sharded_run[0]), "--shard-mb", "0"): "error: --shard-mb must be > 0 (MiB per shard), got 0.0",
        ("keypoints", "--run", str(tmp_path / "empty")): "error: --keypoints: expected a run folder with run.json",
    }
    for argv, start in usage.items():
        try:
            status = runs.main(list(argv))
        except SystemExit as stop:  # argparse's own errors
            status = stop.code
        assert status == 2, argv
        assert _one_error_line(capsys).startswith(start), argv
    # failures: a run whose shard changed, no run to choose
    broken = tmp_path / "runs" / "keypoints" / "20300120-000000"
    shutil.copytree(sharded_run[0], broken)
    _flip_weight_byte(broken)
    for argv in (["--shard", str(broken)], ["keypoints", "--run", str(broken)]):
        assert runs.main(argv) == 1, argv
        assert re_match(rf"error: (--keypoints: )?run {broken}: model_0000\d\.weights\.h5 has changed since --shard",
                        _one_error_line(capsys)), argv
    monkeypatch.setattr(runs, "SHIPPED_ROOT", tmp_path / "shipped")
    assert runs.main(["keypoints", "--runs-root", str(tmp_path / "empty")]) == 1
    assert _one_error_line(capsys).startswith("error: --keypoints: no trained keypoints run found")
    assert runs.main(["keypoints", "--run", "latest", "--runs-root", str(tmp_path / "empty"), "--quiet"]) == 1
    assert capsys.readouterr() == ("", "")
    # the module's own exit status (sys.exit(main())), as scripts/main.sh sees it; no TensorFlow is imported
    for argv, status in (([str(tmp_path / "empty")], 2), ([str(broken), "--quiet"], 1)):
        done = subprocess.run([sys.executable, "-m", "facepack.runs", "--shard", *argv], capture_output=True,
                              text=True, cwd=runs.PROJECT_ROOT, timeout=60)
        assert done.returncode == status, done


def _flip_weight_byte(run, layer="conv2d") -> str:
    """Flip one bit of the first float32 of ``layer``'s kernel inside its shard (the dataset's bytes, found with
    h5py: the file's size and HDF5 structure stay as they were). Returns the shard's name."""
    import h5py

    weight_map = json.loads((run / runs.WEIGHTS_INDEX).read_text())["weight_map"]
    names = weight_map[f"/layers/{layer}/vars"]  # Keras's own layer paths (conv2d, batch_normalization, dense)
    for name in [names] if isinstance(names, str) else names:
        with h5py.File(run / name, "r") as f:
            if f"layers/{layer}/vars/0" in f:
                offset = f[f"layers/{layer}/vars/0"].id.get_offset()  # contiguous, uncompressed (H5IOStore)
                break
    with open(run / name, "r+b") as f:
        f.seek(offset + 2)  # little-endian float32: bit 6 of byte 2 is the mantissa's top bit (x1.5 or x0.75)
        byte = f.read(1)
        f.seek(offset + 2)
        f.write(bytes([byte[0] ^ 0x40]))
    return name


def test_a_shard_changed_inside_is_refused_by_its_digest(keras_run, sharded_run, tmp_path, monkeypatch):
    """A shard whose weight bytes changed (right size, HDF5 structure intact) loaded silently with other weights;
    model.shards.sha256 makes model_files, load_run, resolve_run refuse it in one line naming the run, the shard,
    both digests and the fix, and the automatic choice pass it over. Without the file it loads as before."""
    expected = keras_run[2]
    run = tmp_path / "runs" / "keypoints" / "20300121-000000"
    shutil.copytree(sharded_run[0], run)
    name = _flip_weight_byte(run)
    before = hashlib.sha256((sharded_run[0] / name).read_bytes()).hexdigest()
    after = hashlib.sha256((run / name).read_bytes()).hexdigest()
    assert (run / name).stat().st_size == (sharded_run[0] / name).stat().st_size and before != after
    tail = (rf"{name} has changed since --shard wrote it \(sha256 {after}, model\.shards\.sha256 expects {before}\): "
            rf"restore it \(from git for a shipped model, or copy the run again\), or re-run "
            rf"`python -m facepack\.runs --shard {run}` on the run's model\.keras$")
    for call in (runs.model_files, runs.load_run):
        with pytest.raises(ValueError, match=rf"^run {run}: {tail}") as err:
            call(run)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=rf"^--keypoints: run {run}: {tail}"):
        runs.resolve_run("keypoints", run)
    assert not runs.is_run(run)
    monkeypatch.setattr(runs, "SHIPPED_ROOT", tmp_path / "shipped")
    _lite_run(tmp_path / "shipped" / "keypoints", {"nme_mean": SHIPPED_NME}, "person")
    (run / "run.json").write_text(json.dumps({"model": "keypoints", "synthetic": False, "metrics": {"nme_mean": 0.01},
                                              "dataset": {"name": DATASET, "val_split": "person"}}))
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == tmp_path / "shipped" / "keypoints" and choice.skipped[0][0] == run
    assert re_match(tail, choice.skipped[0][1]), choice.skipped
    # what the digests catch: without them the same shard passes every structural check and loads other weights
    (run / runs.DIGESTS_FILE).unlink()
    model, _ = runs.load_run(run)
    x = keras_run[1]
    assert np.abs(np.asarray(model(x, training=False)) - expected).max() > 1e-3


def test_a_run_without_digests_loads_and_shard_records_them(keras_run, sharded_run, tmp_path):
    """A sharded run written before model.shards.sha256 (older layout) loads without it, silently; --shard on it
    records the shards as they are. A digest file that does not fit the shards is refused by name."""
    run = tmp_path / "older"
    shutil.copytree(sharded_run[0], run)
    digests = (run / runs.DIGESTS_FILE).read_text()
    (run / runs.DIGESTS_FILE).unlink()
    assert runs.model_files(run) == [run / f.name for f in sharded_run[1]]
    model, _ = runs.load_run(run)
    assert np.asarray(model(keras_run[1], training=False)).tobytes() == keras_run[2].tobytes()
    lines = []
    runs.shard_run(run, log=lines.append)
    assert lines == [f"{run}: already in the sharded layout ({len(sharded_run[1]) - 2} shards); recorded their "
                     f"sha256 in model.shards.sha256 (the shards as they are now)"]
    assert (run / runs.DIGESTS_FILE).read_text() == digests
    assert sorted(p.name for p in run.iterdir()) == sorted([f.name for f in sharded_run[1]] + ["run.json",
                                                                                                 runs.DIGESTS_FILE])
    first, second, *rest = digests.splitlines(keepends=True)
    bad = {  # model.shards.sha256's text -> the line's tail after "run <folder>: model.shards.sha256 "
        second + "".join(rest): r"has no digest for model_00000\.weights\.h5: the shards and their digests come "
                                r"from different --shard runs; restore it",
        digests + "0" * 64 + "  model_00009.weights.h5\n": r"lists model_00009\.weights\.h5, which model\.weights"
                                                            r"\.json does not name",
        "not a digest\n" + digests: r"line 1 is not '<sha256>  <shard file>' \('not a digest'\): cut short",
        first.replace("  ", " *").replace("\n", "\r\n") + second + "".join(rest): None,  # binary mark, CRLF: fine
    }
    for text, tail in bad.items():
        (run / runs.DIGESTS_FILE).write_text(text, newline="")
        if tail is None:
            assert runs.model_files(run)
            continue
        with pytest.raises(ValueError, match=rf"^run {run}: model\.shards\.sha256 {tail}"):
            runs.model_files(run)


def test_shipped_models_record_their_shard_digests():
    """models/shipped/*: model.shards.sha256 lists every shard (written by --shard); model_files checks them."""
    for kind in runs.MODEL_KINDS:
        folder = runs.SHIPPED_ROOT / kind
        files = runs.model_files(folder)
        digests = runs.read_digests(folder)
        assert digests is not None, f"{folder} has no {runs.DIGESTS_FILE}: python -m facepack.runs --shard {folder}"
        assert sorted(digests) == [f.name for f in files[2:]]


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
