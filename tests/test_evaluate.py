"""training/evaluate.py on small runs and synthetic datasets in the real layouts: fresh output
folders, refused ambiguous data (which CSV, which part), run-relative data paths, SCUT groups."""

import json
import shutil

import numpy as np
import pytest

from conftest import make_untrained_run

GROUP_NAMES = ("AF", "AM", "CF", "CM")  # SCUT-FBP5500 file-name prefixes



@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from PIL import Image

    from facepack.data.synthetic import make_keypoints68_dataset, make_scut_dataset

    root = tmp_path_factory.mktemp("evaldata")
    grouped = root / "grouped"  # reduced layout, 5 images per SCUT group
    (grouped / "Images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for g in GROUP_NAMES:
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(grouped / "Images" / f"{g}{i}.jpg")
            lines.append(f"{g}{i}.jpg {1.5 + 0.6 * i:.2f}")
    (grouped / "train.txt").write_text("\n".join(lines) + "\n")
    return {"beauty": make_scut_dataset(root / "scut", n=40, seed=1),
            "grouped": grouped,
            "keypoints": make_keypoints68_dataset(root / "kp", n=30, seed=1),
            "keypoints_other": make_keypoints68_dataset(root / "kp_other", n=20, seed=2)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"beauty": make_untrained_run("beauty", root / "beauty", input_size=32),
            "keypoints": make_untrained_run("keypoints", root / "keypoints")}


def _run(models, kind, tmp_path, dataset: dict | None = None):
    """A copy of the untrained ``kind`` run whose run.json records ``dataset`` as its training data."""
    run = tmp_path / f"run_{kind}"
    shutil.copytree(models[kind], run)
    if dataset is not None:
        info = json.loads((run / "run.json").read_text())
        info["dataset"] = dataset
        (run / "run.json").write_text(json.dumps(info))
    return run


def _trained_on_keypoints(folder) -> dict:
    """The run.json "dataset" train_keypoints writes for ``folder`` (default split)."""
    from facepack.data.keypoints import keypoint_fingerprint, load_keypoints
    from training import train_keypoints

    data = load_keypoints(folder)
    n_val = max(1, round(len(data.images) * train_keypoints.DEFAULTS["val_fraction"]))
    return {"name": data.name, "path": str(folder), "csv": data.csv.name, "fingerprint": keypoint_fingerprint(data),
            "train": len(data.images) - n_val, "validation": n_val}


def test_evaluate_beauty_writes_metrics_and_plots(tmp_path, synthetic, models):
    from training import evaluate

    out = evaluate.main(["--model", str(_run(models, "beauty", tmp_path)), "--data", str(synthetic["beauty"]),
                         "--part", "all", "--out", str(tmp_path / "eval")])
    report = json.loads((out / "metrics.json").read_text())
    assert report["kind"] == "beauty" and report["evaluated_on"]["n"] == 40
    assert report["evaluated_on"]["synthetic"] is True
    assert set(report["metrics"]) >= {"pc", "mae", "rmse", "n", "mean_signed_error"}
    assert (out / "scatter.png").is_file() and (out / "errors.png").is_file()


def test_beauty_metrics_per_scut_group(tmp_path, synthetic, models, capsys):
    from facepack.metrics import beauty_metrics
    from training import evaluate

    out = evaluate.main(["--model", str(_run(models, "beauty", tmp_path)), "--data", str(synthetic["grouped"]),
                         "--part", "all", "--out", str(tmp_path / "eval")])
    m = json.loads((out / "metrics.json").read_text())["metrics"]
    assert sorted(m["groups"]) == list(GROUP_NAMES) and all(m["groups"][g]["n"] == 5 for g in GROUP_NAMES)
    printed = capsys.readouterr().out
    assert all(f"  {g}: PC " in printed for g in GROUP_NAMES)
    # The groups partition the images: their n-weighted signed errors make up the overall one.
    total = sum(m["groups"][g]["mean_signed_error"] * 5 for g in GROUP_NAMES) / 20
    assert total == pytest.approx(m["mean_signed_error"], abs=1e-9)
    assert m["groups"]["AF"]["rmse"] >= m["groups"]["AF"]["mae"] and beauty_metrics([1, 2], [1, 2])["mae"] == 0


def test_default_output_is_a_fresh_folder_never_an_earlier_evaluation(tmp_path, synthetic, models, monkeypatch):
    from facepack import runs
    from training import evaluate

    monkeypatch.setattr(runs, "RUNS_ROOT", tmp_path / "runs")
    run = _run(models, "beauty", tmp_path)
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text('{"shipped": true}')  # like models/shipped/*/eval/
    argv = ["--model", str(run), "--data", str(synthetic["beauty"]), "--part", "all"]
    first, second = evaluate.main(argv), evaluate.main(argv)
    assert first != second and first.parent == second.parent == tmp_path / "runs" / "eval" / "beauty"
    assert (first / "metrics.json").is_file() and (second / "metrics.json").is_file()
    assert (run / "eval" / "metrics.json").read_text() == '{"shipped": true}'
    with pytest.raises(ValueError, match="--out: .* already exists and is not an empty folder"):
        evaluate.main([*argv, "--out", str(run / "eval")])


def test_keypoints_held_out_part_follows_the_run_seed(tmp_path, synthetic, models):
    from training import evaluate, train_keypoints

    run = _run(models, "keypoints", tmp_path, _trained_on_keypoints(synthetic["keypoints"]))
    out = evaluate.main(["--model", str(run), "--data", str(synthetic["keypoints"]), "--out", str(tmp_path / "e")])
    report = json.loads((out / "metrics.json").read_text())
    expected = max(1, round(30 * train_keypoints.DEFAULTS["val_fraction"]))
    assert report["evaluated_on"]["n"] == expected and report["evaluated_on"]["part"] == "held-out by the run's seed"
    g = report["metrics"]["ground_truth_crop"]
    assert g["nme_mean"] > 0 and 0 <= g["failure_rate"] <= 1
    assert (out / "ced.png").is_file()


def test_held_out_part_of_other_data_is_refused_and_all_is_the_default(tmp_path, synthetic, models):
    """The issue's case: --part held-out on a test CSV used 77 of its 770 faces."""
    from training import evaluate

    run = _run(models, "keypoints", tmp_path, _trained_on_keypoints(synthetic["keypoints"]))
    other = str(synthetic["keypoints_other"])
    with pytest.raises(ValueError, match="--part held-out: .* is not the data this run trained on .*--part all"):
        evaluate.main(["--model", str(run), "--data", other, "--part", "held-out", "--out", str(tmp_path / "e1")])
    out = evaluate.main(["--model", str(run), "--data", other, "--out", str(tmp_path / "e2")])
    report = json.loads((out / "metrics.json").read_text())
    assert report["evaluated_on"]["n"] == 20 and report["evaluated_on"]["part"] == "all"


def test_keypoint_folder_with_several_csvs_is_refused(tmp_path, synthetic, models):
    """The issue's case: --data <keypoint dataset folder> silently evaluated the training CSV."""
    from training import evaluate

    folder = tmp_path / "kp"
    shutil.copytree(synthetic["keypoints"], folder)
    csv = next(folder.glob("*.csv"))
    shutil.copy(csv, folder / "test_frames_keypoints.csv")
    run = _run(models, "keypoints", tmp_path)
    with pytest.raises(ValueError, match=r"--data: .* holds 2 keypoint CSVs .*name the one"):
        evaluate.main(["--model", str(run), "--data", str(folder), "--out", str(tmp_path / "e1")])
    out = evaluate.main(["--model", str(run), "--data", str(folder / "test_frames_keypoints.csv"),
                         "--out", str(tmp_path / "e2")])
    assert json.loads((out / "metrics.json").read_text())["evaluated_on"]["n"] == 30


def test_recorded_data_path_resolves_relative_to_the_run(tmp_path, synthetic, models):
    """A run.json written on another machine: its absolute path is not here, the relative one is."""
    import os

    from training import evaluate

    dataset = _trained_on_keypoints(synthetic["keypoints"])
    dataset["path"] = "/elsewhere/machine/datasets/kp"
    run = _run(models, "keypoints", tmp_path, dataset)
    with pytest.raises(ValueError, match="--data: give the dataset to evaluate on"):
        evaluate.main(["--model", str(run), "--out", str(tmp_path / "e0")])
    moved = tmp_path / "moved"
    dataset["path_from_run"] = os.path.relpath(synthetic["keypoints"], moved / "run_keypoints")
    run = _run(models, "keypoints", moved, dataset)
    out = evaluate.main(["--model", str(run), "--out", str(tmp_path / "e1")])
    assert json.loads((out / "metrics.json").read_text())["evaluated_on"]["part"] == "held-out by the run's seed"


def test_recorded_data_found_under_facepack_data_or_the_origin_checkout(tmp_path, synthetic, models, monkeypatch):
    """A clone that is not beside the data (the run records ../<x>/datasets/kp): found by folder name
    under $FACEPACK_DATA, or relative to the checkout it was cloned from; else one line naming
    --data and FACEPACK_DATA."""
    from training import evaluate

    dataset = _trained_on_keypoints(synthetic["keypoints"])
    dataset.update(path="../nowhere-h5/datasets/kp", path_from_project="../nowhere-h5/datasets/kp")
    run = _run(models, "keypoints", tmp_path, dataset)
    monkeypatch.delenv(evaluate.DATA_ENV, raising=False)
    monkeypatch.setattr(evaluate, "origin_checkout", lambda root: None)
    with pytest.raises(ValueError) as excinfo:
        evaluate.main(["--model", str(run), "--out", str(tmp_path / "e0")])
    text = str(excinfo.value)
    assert text.startswith("--data: ") and "FACEPACK_DATA" in text and "'kp'" in text and "\n" not in text
    monkeypatch.setenv(evaluate.DATA_ENV, str(synthetic["keypoints"].parent))
    out = evaluate.main(["--model", str(run), "--out", str(tmp_path / "e1")])
    assert json.loads((out / "metrics.json").read_text())["evaluated_on"]["part"] == "held-out by the run's seed"
    # The checkout this clone came from: ../nowhere-h5/datasets/kp beside it.
    monkeypatch.delenv(evaluate.DATA_ENV)
    origin = tmp_path / "o" / "main"
    origin.mkdir(parents=True)
    shutil.copytree(synthetic["keypoints"], tmp_path / "o" / "nowhere-h5" / "datasets" / "kp")
    info = json.loads((run / "run.json").read_text())
    assert evaluate.recorded_data(run, info) is None
    monkeypatch.setattr(evaluate, "origin_checkout", lambda root: origin)
    assert evaluate.recorded_data(run, info) == (tmp_path / "o" / "nowhere-h5" / "datasets" / "kp").resolve()


@pytest.mark.parametrize("url,found", [("{origin}", True), ("file://{origin}", True), ("{origin}/.git", True),
                                       ("../main", True), ("https://github.com/x/facepack.git", False),
                                       ("git@host:x/facepack", False), ("include", True)])
def test_origin_checkout_reads_the_clone_source(tmp_path, url, found, monkeypatch):
    """Through `git config` (a real repository; "include": the URL set in an included file)."""
    import subprocess

    from training.evaluate import origin_checkout

    origin, clone = tmp_path / "main", tmp_path / "clone"
    origin.mkdir()
    clone.mkdir()
    git = lambda *a: subprocess.run(["git", "-C", str(clone), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    if url == "include":  # a hand-written .git/config reader misses this
        (tmp_path / "extra.cfg").write_text(f'[remote "origin"]\n\turl = {origin}\n')
        git("config", "include.path", str(tmp_path / "extra.cfg"))
    else:
        git("remote", "add", "origin", url.format(origin=origin))
    assert origin_checkout(clone) == (origin if found else None)
    assert origin_checkout(tmp_path / "no-git") is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git: quietly None
    assert origin_checkout(clone) is None
