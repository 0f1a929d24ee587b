"""predict.py: the batch CLI on a folder of good, corrupt and non-image files."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from facepack.tfquiet import NOISE

ROOT = Path(__file__).resolve().parent.parent


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
    assert rows[0]["face"] == "1"  # numbered from 1, as on the annotated photos and the page
    assert 150 < float(rows[0]["x"]) < 210 and float(rows[0]["confidence"]) > 0.9
    assert 0 <= float(rows[0]["beauty"]) <= 100
    assert float(rows[0]["beauty_1to5"]) == pytest.approx(float(rows[0]["beauty"]) / 20, abs=1e-3)
    assert len(json.loads(rows[0]["keypoints"])) == 68
    assert set(json.loads(rows[0]["landmarks5"])) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}


def test_jsonl_holds_one_line_per_input_file_after_a_header(batch):
    _, out = batch
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert lines[0]["facepack_predict"] == 1 and lines[0]["options"]["heatmap"] == "gradcam"
    assert [r["file"] for r in lines[1:]] == ["album/astronaut.png", "album/corrupt.jpg", "album/notes.txt",
                                              "album/sub/einstein.jpg"]
    assert ["faces" in r for r in lines[1:]] == [True, False, False, True]


def test_json_lists_photos_and_unreadable_files(batch):
    _, out = batch
    data = json.loads((out / "results.json").read_text())
    assert data["summary"] == {"photos": 2, "faces": 2, "unreadable": 2, "videos": 0, "frames": 0, "video_faces": 0}
    assert data["videos"] == []
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
    assert sorted(p.name for p in (out / "faces").iterdir()) == ["album__astronaut_1.jpg", "album__sub__einstein_1.jpg"]


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


@pytest.fixture()
def fake_pipe(monkeypatch, tmp_path):
    """FacePipeline replaced by one that records analyze()'s keyword arguments and finds no face;
    returns (seen kwargs, an 8x8 photo)."""
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
    Image.new("RGB", (8, 8)).save(photo)
    return seen, photo


def test_face_filter_flags_reach_the_pipeline(predict, tmp_path, fake_pipe):
    """--min-confidence / --min-box-size become analyze(min_confidence=, min_box_size=) (spec.FACE_FILTER)."""
    seen, photo = fake_pipe
    assert predict.main([str(photo), "--out", str(tmp_path / "out"), "--min-confidence", "0.5",
                         "--min-box-size", "33"]) == 0
    assert (seen["min_confidence"], seen["min_box_size"]) == (0.5, 33.0)


def _header_options(out: Path) -> dict:
    return json.loads((out / "results.jsonl").read_text().splitlines()[0])["options"]


def test_recorded_options_are_the_values_applied(predict, tmp_path, fake_pipe):
    """results.jsonl's header and results.json record min_face_size (detector, detection-image px),
    min_confidence, min_box_size (filter, photo px) and mirror_keypoints as the pipeline applies them:
    the defaults when not given (they were null, and mirror_keypoints was not recorded), under the
    names the page's JSON "settings" uses (test_page checks its side); analyze() gets the same values."""
    from facepack import spec

    seen, photo = fake_pipe
    defaults = {"min_face_size": spec.MTCNN["min_face_size_px"], "min_confidence": spec.FACE_FILTER["min_confidence"],
                "min_box_size": spec.FACE_FILTER["min_box_size_px"], "mirror_keypoints": spec.KEYPOINTS["mirror_average"]}
    assert isinstance(defaults["mirror_keypoints"], bool)
    assert predict.main([str(photo), "--out", str(tmp_path / "plain")]) == 0
    options = _header_options(tmp_path / "plain")
    assert {k: options[k] for k in defaults} == defaults, options
    assert json.loads((tmp_path / "plain" / "results.json").read_text())["options"] == options
    assert {k: seen[k] for k in defaults} == defaults
    assert options["max_faces"] is None  # no limit: every face
    assert predict.main([str(photo), "--out", str(tmp_path / "set"), "--min-face-size", "48", "--min-confidence",
                         "0.5", "--min-box-size", "33"]) == 0
    options = _header_options(tmp_path / "set")
    assert {k: options[k] for k in defaults} == {**defaults, "min_face_size": 48.0, "min_confidence": 0.5,
                                                 "min_box_size": 33.0}
    assert {k: seen[k] for k in defaults} == {k: options[k] for k in defaults}


def test_resume_accepts_a_header_with_unrecorded_defaults(predict, tmp_path, fake_pipe):
    """A batch begun before the defaults were recorded (null min_* and no mirror_keypoints in its
    header) resumes with the same arguments; a recorded value that differs is still refused by name."""
    _, photo = fake_pipe
    out = tmp_path / "out"
    assert predict.main([str(photo), "--out", str(out)]) == 0
    header = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    old = {**header, "options": {**header["options"], "min_face_size": None, "min_confidence": None,
                                 "min_box_size": None}}
    del old["options"]["mirror_keypoints"]
    predict.check_same_run(out / "results.jsonl", old, header)  # no UsageError
    old["options"]["min_box_size"] = 10.0
    with pytest.raises(predict.UsageError, match=r"min_box_size: 10.0 \(recorded\) vs 20"):
        predict.check_same_run(out / "results.jsonl", old, header)


def test_help_explains(predict, capsys):
    with pytest.raises(SystemExit) as exc:
        predict.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--beauty", "--keypoints", "--heatmap", "results.csv", "contact_sheet.png", "--webcam",
                 "--every", "--max-frames", "--video-out", "--detector", "mp4v"):
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


# --- Streaming, kill -9 and --resume ----------------------------------------------------------
KILL_POLL_S = 0.01  # how often the killed run's results.jsonl is read
KILL_TIMEOUT_S = 240  # start-up (TensorFlow, models) and the first photo, on a busy CI box


def _records(out: Path) -> list[dict]:
    """results.jsonl lines without timings (they differ from run to run)."""
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for rec in lines:
        rec.pop("timings_ms", None)
    return lines


def test_kill_9_mid_batch_keeps_finished_photos_and_resume_equals_an_uninterrupted_run(
        predict, batch, photo_folder, untrained_runs, tmp_path):
    """A real subprocess killed by SIGKILL once its first photo is committed; --resume finishes."""
    out = tmp_path / "killed"
    cmd = [sys.executable, str(ROOT / "predict.py"), str(photo_folder), "--out", str(out), "--heatmap",
           "--beauty", str(untrained_runs["beauty"]), "--keypoints", str(untrained_runs["keypoints"])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + KILL_TIMEOUT_S
    jsonl = out / "results.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and jsonl.read_text().count("\n") >= 2:  # header + the first photo
            break
        time.sleep(KILL_POLL_S)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    err = proc.stderr.read().decode()
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    # The log: TensorFlow's import noise dropped (facepack/tfquiet.py), whole progress lines (facepack/progress.py).
    assert not [line for line in err.splitlines() if NOISE.search(line)], err[-2000:]
    assert re.search(r"^predict: 0/\d+ file \(0 %\) in ", err, re.M) and "\r" not in err, err[-2000:]
    killed = _records(out)
    assert 2 <= len(killed) < 5, "the kill did not land mid-batch"
    assert killed[1]["file"] == "album/astronaut.png" and killed[1]["faces"]
    with open(out / "results.csv", newline="") as fh:
        assert [r["file"] for r in csv.DictReader(fh)][:1] == ["album/astronaut.png"]  # finished photo's row kept
    assert not (out / "results.json").exists()  # written when the batch completes
    rc = predict.main(cmd[2:] + ["--resume"])
    assert rc == 0
    _, ref = batch
    assert _records(out) == _records(ref)
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary == json.loads((ref / "results.json").read_text())["summary"] and summary["photos"] == 2


def test_resume_drops_a_cut_last_line_and_rewrites_the_csv(predict, batch, tmp_path):
    """A kill in the middle of a write leaves a partial line: not a result; the CSV follows the JSONL."""
    _, ref = batch
    out = tmp_path / "cut"
    out.mkdir()
    lines = (ref / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:3]) + lines[3][:25])  # astronaut, corrupt, half of notes
    (out / "results.csv").write_text("file,face\ngarbage,row-of-a-photo-not-committed\n")
    writer = predict.BatchWriter(out, json.loads(lines[0]), resume=True)
    writer.add(json.loads(lines[3]))
    writer.add(json.loads(lines[4]))
    writer.close()
    assert (out / "results.jsonl").read_text() == "".join(lines)
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()


def test_resume_with_other_options_is_refused(predict, batch, photo_folder, untrained_runs, tmp_path, capsys,
                                              no_models):
    _, ref = batch
    out = tmp_path / "other"
    shutil.copytree(ref, out)
    rc = predict.main([str(photo_folder), "--out", str(out), "--resume", "--beauty", str(untrained_runs["beauty"]),
                       "--keypoints", str(untrained_runs["keypoints"])])  # without --heatmap
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and "options" in err[0]


# --- Usage errors: one line, exit 2, before any model loads ------------------------------------
@pytest.fixture()
def no_models(monkeypatch):
    """Loading a model fails the test: usage errors must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("facepack.pipeline.FacePipeline.from_runs", refuse)


@pytest.mark.parametrize("case", ["out_is_a_file", "out_holds_results", "no_photos", "photos_missing", "kaggle_half",
                                  "kaggle_missing", "max_pixels"])
def test_usage_errors_are_one_line_before_models_load(predict, tmp_path, fixtures_dir, no_models, capsys, case):
    photo = str(fixtures_dir / "einstein.jpg")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.jsonl").write_text("{}\n")
    argv, words = {
        "out_is_a_file": ([photo, "--out", str(tmp_path / "file.txt")], "is a file"),
        "out_holds_results": ([photo, "--out", str(tmp_path / "done")], "--resume"),
        "no_photos": (["--out", str(tmp_path / "o")], "no PHOTOS"),
        "photos_missing": ([str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o")], "nope.jpg"),
        "kaggle_half": (["--out", str(tmp_path / "o"), "--kaggle-test", photo], "--kaggle-lookup"),
        "kaggle_missing": (["--out", str(tmp_path / "o"), "--kaggle-test", "nope.csv", "--kaggle-lookup", photo],
                           "nope.csv"),
        "max_pixels": ([photo, "--out", str(tmp_path / "o"), "--max-pixels", "0"], "--max-pixels"),
    }[case]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("predict.py: error: ") and words in err[0], err
    assert not (tmp_path / "o").exists()


def test_contact_sheet_keeps_the_order_given():
    """Faces appear in input order (no ranking): cell k holds entry k."""
    from facepack import plots_predict

    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    entries = [{"thumb": Image.new("RGB", (10, 10), c), "label": f"#{k + 1}", "score": 100 - 40 * k}
               for k, c in enumerate(colours)][::-1]  # lowest score first
    sheet = plots_predict.contact_sheet(entries, columns=3, thumb=20)
    pad, title_h = 8, 34  # plots_predict.contact_sheet's layout
    cells = [sheet.getpixel((pad + k * (20 + pad) + 10, title_h + pad + 10)) for k in range(3)]
    assert cells == colours[::-1]


def test_large_photo_path_gives_the_batch_the_same_results(predict, batch, photo_folder, untrained_runs, tmp_path,
                                                           monkeypatch):
    """With every JPEG read by region (threshold lowered), results.jsonl equals the array path's."""
    from facepack import bigphoto

    monkeypatch.setattr(bigphoto, "REGION_MIN_PIXELS", 1)
    monkeypatch.setattr("facepack.plots_predict.ANNOTATED_MAX_SIDE_PX", 300)  # the drawing copy is reduced too
    out = tmp_path / "region"
    rc = predict.main([str(photo_folder), "--out", str(out), "--heatmap",
                       "--beauty", str(untrained_runs["beauty"]), "--keypoints", str(untrained_runs["keypoints"])])
    assert rc == 0
    _, ref = batch
    assert _records(out) == _records(ref)
    with Image.open(out / "annotated" / "album__sub__einstein.jpg") as img:
        assert max(img.size) <= 300


def test_min_box_size_is_in_photo_pixels_for_a_jpeg_decoded_at_a_fraction(predict, untrained_runs, fixtures_dir,
                                                                           tmp_path):
    """A JPEG over --max-pixels is decoded at 1/k (facepack.bigphoto.open_photo) and its boxes are scaled
    by k afterwards; --min-box-size stays in photo pixels (spec.FACE_FILTER, the help, JS minBoxSize):
    the faces kept are exactly those whose recorded (photo-px) box side is >= the value. Before, the
    filter saw decoded pixels and dropped faces under k times the value (review L7)."""
    import numpy as np

    canvas = np.random.default_rng(3).integers(60, 200, (1200, 1600, 3), dtype=np.uint8)
    canvas[200:1000, 400:1200] = np.asarray(Image.open(fixtures_dir / "astronaut.png").convert("RGB").resize((800, 800)))
    photo = tmp_path / "big.jpg"
    Image.fromarray(canvas).save(photo, quality=90)  # 1.92 MP; cap 0.6 MP: decoded at 1/2

    def faces(name, min_box):
        out = tmp_path / name
        assert predict.main([str(photo), "--out", str(out), "--max-pixels", "600000", "--min-box-size", repr(min_box),
                             "--beauty", str(untrained_runs["beauty"]),
                             "--keypoints", str(untrained_runs["keypoints"])]) == 0
        _, record = _records(out)  # the header, the photo
        assert record["decode_factor"] == 2 and record["image"] == {"width": 1600, "height": 1200}
        assert _header_options(out)["min_box_size"] == min_box  # recorded as given: photo px
        return [max(f["box"]["width"], f["box"]["height"]) for f in record["faces"]]

    every = faces("all", 0.0)
    side = max(every)
    assert side > 100  # the astronaut's face, in photo px (174 measured; ~87 decoded)
    assert faces("at", side) == [s for s in every if s >= side] != []  # before the fix: [] (decoded side/2)
    above = float(np.nextafter(side, np.inf))
    assert faces("above", above) == [s for s in every if s >= above]
