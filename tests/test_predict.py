"""predict.py: the batch CLI on a folder of good, corrupt and non-image files."""

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def load_predict():
    spec = importlib.util.spec_from_file_location("predict_cli", ROOT / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def predict():
    return load_predict()


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory, fixtures_dir):
    d = tmp_path_factory.mktemp("photos") / "album"
    (d / "sub").mkdir(parents=True)
    shutil.copy(fixtures_dir / "astronaut.png", d / "astronaut.png")
    shutil.copy(fixtures_dir / "einstein.jpg", d / "sub" / "einstein.jpg")
    (d / "corrupt.jpg").write_bytes((fixtures_dir / "einstein.jpg").read_bytes()[:3000])  # truncated
    (d / "notes.txt").write_text("not a photo\n")
    (d / ".hidden.png").write_bytes(b"skipped: hidden")
    return d


@pytest.fixture(scope="session")
def batch(predict, photo_folder, untrained_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("predictions")
    rc = predict.main([str(photo_folder), "--out", str(out), "--heatmap",
                       "--beauty", str(untrained_runs["beauty"]), "--keypoints", str(untrained_runs["keypoints"])])
    return rc, out


def test_exit_status_zero_when_something_was_processed(batch):
    assert batch[0] == 0


def test_csv_has_one_row_per_face(batch):
    _, out = batch
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == ["album/astronaut.png", "album/sub/einstein.jpg"]
    assert rows[0]["face"] == "0"
    assert 150 < float(rows[0]["x"]) < 210 and float(rows[0]["confidence"]) > 0.9
    assert 0 <= float(rows[0]["beauty"]) <= 100
    assert float(rows[0]["beauty_1to5"]) == pytest.approx(float(rows[0]["beauty"]) / 20, abs=1e-3)
    assert len(json.loads(rows[0]["keypoints"])) == 68
    assert set(json.loads(rows[0]["landmarks5"])) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}


def test_json_lists_photos_and_unreadable_files(batch):
    _, out = batch
    data = json.loads((out / "results.json").read_text())
    assert data["summary"] == {"photos": 2, "faces": 2, "unreadable": 2}
    assert sorted(e["file"] for e in data["errors"]) == ["album/corrupt.jpg", "album/notes.txt"]
    assert all(e["file"] in e["error"] for e in data["errors"])
    face = data["photos"][0]["faces"][0]
    assert "heatmap" in face and len(face["beauty"]["distribution"]) == 101
    assert set(data["photos"][0]["timings_ms"]) >= {"decode", "detect", "beauty", "total"}
    assert data["photos"][0]["timings_ms"]["decode"] > 0


def test_annotated_copies_and_contact_sheet_are_written(batch):
    _, out = batch
    annotated = sorted(p.name for p in (out / "annotated").iterdir())
    assert annotated == ["album__astronaut.jpg", "album__sub__einstein.jpg"]
    with Image.open(out / "annotated" / "album__sub__einstein.jpg") as img:
        assert img.size == (817, 1024) and img.mode == "RGB"
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size[0] > 160 and sheet.size[1] > 160


def test_exit_status_one_when_nothing_could_be_read(predict, tmp_path, untrained_runs, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"\xff\xd8 broken")
    rc = predict.main([str(tmp_path / "in"), str(tmp_path / "missing"), "--out", str(tmp_path / "out"),
                       "--beauty", str(untrained_runs["beauty"]), "--keypoints", str(untrained_runs["keypoints"])])
    assert rc == 1
    err = capsys.readouterr().err
    assert "processed 0 photo(s)" in err and "a.jpg" in err and "missing" in err


def test_exit_status_two_without_trained_runs(predict, tmp_path, fixtures_dir, monkeypatch, capsys):
    import facepack.runs

    monkeypatch.setattr(facepack.runs, "SHIPPED_ROOT", tmp_path / "shipped")
    rc = predict.main([str(fixtures_dir / "astronaut.png"), "--out", str(tmp_path / "out"),
                       "--runs", str(tmp_path / "runs")])
    assert rc == 2
    assert "python training/train_beauty.py" in capsys.readouterr().err


def test_bad_numbers_are_usage_errors(predict, tmp_path, capsys):
    assert predict.main(["x.jpg", "--out", str(tmp_path), "--max-faces", "0"]) == 2
    assert "--max-faces" in capsys.readouterr().err
    assert predict.main(["x.jpg", "--out", str(tmp_path), "--min-confidence", "1.5"]) == 2
    assert "--min-confidence" in capsys.readouterr().err
    assert predict.main(["x.jpg", "--out", str(tmp_path), "--min-box-size", "-1"]) == 2
    assert "--min-box-size" in capsys.readouterr().err


def test_face_filter_flags_reach_the_pipeline(predict, tmp_path, monkeypatch):
    """--min-confidence / --min-box-size become analyze(min_confidence=, min_box_size=) (spec.FACE_FILTER)."""
    seen = {}

    class Pipe:
        runs = {}

        @classmethod
        def from_runs(cls, *args, **kwargs):
            return cls()

        def analyze(self, rgb, **kwargs):
            seen.update(kwargs)
            return {"faces": [], "timings_ms": {"decode": 0.0, "total": 0.0}, "image": {"width": 1, "height": 1}}

    monkeypatch.setattr("facepack.pipeline.FacePipeline", Pipe)  # predict.run imports it when it runs
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(photo)
    assert predict.main([str(photo), "--out", str(tmp_path / "out"), "--min-confidence", "0.5",
                         "--min-box-size", "33"]) == 0
    assert (seen["min_confidence"], seen["min_box_size"]) == (0.5, 33.0)


def test_help_explains(predict, capsys):
    with pytest.raises(SystemExit) as exc:
        predict.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--beauty", "--keypoints", "--heatmap", "results.csv", "contact_sheet.png"):
        assert flag in text


def test_collect_inputs_skips_hidden_files_and_the_output_folder(predict, photo_folder, tmp_path):
    files, errors = predict.collect_inputs([str(photo_folder), str(tmp_path / "nope")],
                                           exclude=photo_folder / "sub")
    names = [name for _, name in files]
    assert names == ["album/astronaut.png", "album/corrupt.jpg", "album/notes.txt"]
    assert len(errors) == 1 and "nope" in errors[0]["error"]


def test_annotated_names_are_unique(predict):
    used = set()
    assert predict.annotated_name("a/x.png", used) == "a__x.jpg"
    assert predict.annotated_name("a/x.jpg", used) == "a__x-2.jpg"
