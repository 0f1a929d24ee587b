"""facepack/runs.py choose_run: keypoint NMEs are compared only on the shipped model's validation
protocol (run.json dataset.val_split / args.val_split; none recorded: the old frame split)."""

import json
import zipfile

import pytest

import facepack.runs as runs

DATASET = "YouTube Faces keypoints (68 points)"
SHIPPED_NME = 0.0475  # person split, as models/shipped/keypoints/run.json
FRAME_NME = 0.0391  # lower, but on held-out frames of trained-on people: not comparable


def write_run(folder, nme: float, val_split: str | None, where: str = "dataset", name: str = DATASET):
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "model.keras", "w") as archive:  # an archive's directory, as model_files checks
        archive.writestr("config.json", "{}")  # it; choose_run never loads the model
        archive.writestr("model.weights.h5", b"")
    dataset = {"name": name, "synthetic": False}
    args = {}
    if val_split is not None:
        (dataset if where == "dataset" else args)["val_split"] = val_split
    info = {"model": "keypoints", "synthetic": False, "dataset": dataset, "args": args, "metrics": {"nme_mean": nme}}
    (folder / "run.json").write_text(json.dumps(info))
    return folder


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    write_run(root / "keypoints", SHIPPED_NME, "person")
    monkeypatch.setattr(runs, "SHIPPED_ROOT", root)
    return root / "keypoints"


def test_a_better_frame_split_run_does_not_replace_the_person_split_shipped_model(shipped, tmp_path):
    frame = write_run(tmp_path / "runs" / "keypoints" / "20261201-000000", FRAME_NME, "frame")
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == shipped
    assert choice.skipped == [(frame, choice.skipped[0][1])]
    why = choice.skipped[0][1]
    assert "frame split (held-out frames" in why and "person split (held-out people" in why
    assert "not comparable" in choice.message()


def test_a_run_without_val_split_counts_as_the_old_frame_split(shipped, tmp_path):
    old = write_run(tmp_path / "runs" / "keypoints" / "20261101-000000", FRAME_NME, None)
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == shipped and choice.skipped[0][0] == old
    assert "validated on a frame split" in choice.skipped[0][1]


def test_a_better_person_split_run_is_chosen_and_a_worse_one_is_not(shipped, tmp_path):
    base = tmp_path / "runs" / "keypoints"
    worse = write_run(base / "20261201-000002", SHIPPED_NME + 0.01, "person", where="args")
    better = write_run(base / "20261201-000001", SHIPPED_NME - 0.002, "person", where="args")
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == better
    assert choice.skipped[0][0] == worse and "worse than the shipped model's" in choice.skipped[0][1]


def test_another_dataset_is_not_compared(shipped, tmp_path):
    other = write_run(tmp_path / "runs" / "keypoints" / "20261201-000000", SHIPPED_NME - 0.01, "person",
                      name="Kaggle facial keypoints (15 points)")
    choice = runs.choose_run("keypoints", tmp_path / "runs")
    assert choice.path == shipped and choice.skipped[0][0] == other
    assert "Kaggle" in choice.skipped[0][1]


def test_the_shipped_run_json_records_a_person_split():
    info = runs.read_run_info(runs.PROJECT_ROOT / "models" / "shipped" / "keypoints")
    assert runs.validation_protocol("keypoints", info) == ("person", DATASET)
