"""predict.py on videos (cv2.VideoCapture), a webcam (faked) and the Haar detector.

The clip is generated here: CLIP_FRAMES frames of CLIP_W x CLIP_H at CLIP_FPS, a face cut from
tests/fixtures/astronaut.png pasted FACE_STEP_PX further right in each frame, and a pure red
square that never moves (the BGR/RGB check), written with cv2.VideoWriter (mp4v).
"""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIP_FRAMES, CLIP_W, CLIP_H, CLIP_FPS = 12, 160, 120, 10.0
FRAME_MS = 1000.0 / CLIP_FPS
FACE_W, FACE_H, FACE_X0, FACE_Y, FACE_STEP_PX = 84, 95, 6, 12, 3  # the pasted face patch, photo pixels
RED = (slice(4, 20), slice(140, 156))  # rows, cols of the red square (RGB 255, 0, 0)
RED_PROBE = (12, 148)  # a pixel in its middle
COLOUR_TOL = 40  # mp4v's lossy coding moves a flat colour by a few levels; a swap moves it by ~255
TIME_TOL_MS = 0.5
BOX_STEP_TOL_PX = 1.5  # mean per-frame motion of the detected box vs FACE_STEP_PX
MIN_IOU_HAAR_MTCNN = 0.5  # the Haar box (mapped by HAAR_TO_MTCNN_BOX) vs MTCNN's on the same frame


def write_clip(path: Path, fixtures_dir: Path) -> Path:
    import cv2
    from PIL import Image

    face = Image.open(fixtures_dir / "astronaut.png").convert("RGB").crop((150, 30, 300, 200))
    face = np.asarray(face.resize((FACE_W, FACE_H), Image.LANCZOS))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (CLIP_W, CLIP_H))
    assert writer.isOpened()
    for i in range(CLIP_FRAMES):
        rgb = np.full((CLIP_H, CLIP_W, 3), 110, np.uint8)
        x = FACE_X0 + FACE_STEP_PX * i
        rgb[FACE_Y:FACE_Y + FACE_H, x:x + FACE_W] = face
        rgb[RED] = (255, 0, 0)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # the writer takes BGR
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory, fixtures_dir):
    d = tmp_path_factory.mktemp("videos") / "videos"
    d.mkdir()
    write_clip(d / "clip.mp4", fixtures_dir)
    shutil.copy(d / "clip.mp4", d / "clip.data")  # no video extension: found by probing
    return d


@pytest.fixture(scope="module")
def spy(untrained_runs):
    """FacePipeline.from_runs cached per arguments (the same runs and detector: one model load)
    and analyze wrapped to record the RGB value of the red square in each frame."""
    from facepack.pipeline import FacePipeline

    seen = {"red": [], "calls": 0}
    pipes = {}
    original_from_runs, original_analyze = FacePipeline.from_runs.__func__, FacePipeline.analyze

    def from_runs(cls, *args, detector="mtcnn", **kwargs):
        key = (repr(args), repr(sorted(kwargs.items())), detector)
        if key not in pipes:
            pipes[key] = original_from_runs(cls, *args, detector=detector, **kwargs)
        return pipes[key]

    def analyze(self, image, **kwargs):
        if isinstance(image, np.ndarray) and image.shape[:2] == (CLIP_H, CLIP_W):
            seen["red"].append(tuple(int(v) for v in image[RED_PROBE]))
            seen["calls"] += 1
        return original_analyze(self, image, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(FacePipeline, "from_runs", classmethod(from_runs))
    mp.setattr(FacePipeline, "analyze", analyze)
    yield seen
    mp.undo()


def models(untrained_runs) -> list[str]:
    return ["--beauty", str(untrained_runs["beauty"]), "--keypoints", str(untrained_runs["keypoints"])]


@pytest.fixture(scope="module")
def every_frame(predict, clip_dir, untrained_runs, spy, tmp_path_factory):
    """clip.mp4, every frame, MTCNN; (exit status, out, red pixels the pipeline saw)."""
    out = tmp_path_factory.mktemp("every_frame")
    start = len(spy["red"])
    rc = predict.main([str(clip_dir / "clip.mp4"), "--out", str(out), *models(untrained_runs)])
    return rc, out, spy["red"][start:]


@pytest.fixture(scope="module")
def every_third_haar(predict, clip_dir, untrained_runs, spy, tmp_path_factory):
    """Both clips (mp4 and the probed .data copy), --every 3, --detector haar."""
    out = tmp_path_factory.mktemp("every_third")
    rc = predict.main([str(clip_dir), "--out", str(out), "--every", "3", "--detector", "haar", *models(untrained_runs)])
    return rc, out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def video_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """(BGR frames, fps) of a video file as OpenCV reads it."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


def annotated_video(out: Path) -> Path:
    """The annotated video of the (last) video in out's results.jsonl."""
    return out / read_jsonl(out / "results.jsonl")[-1]["video"]["annotated"]


def iou(a: dict, b: dict) -> float:
    x0, y0 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x1, y1 = min(a["x"] + a["width"], b["x"] + b["width"]), min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


# --- Every frame, MTCNN -----------------------------------------------------------------------
def test_one_row_per_frame_with_index_and_time(every_frame):
    rc, out, _ = every_frame
    assert rc == 0
    rows = read_csv(out / "results.csv")
    assert [int(r["frame"]) for r in rows] == list(range(CLIP_FRAMES))  # one face in every frame
    assert [float(r["time_ms"]) for r in rows] == pytest.approx([i * FRAME_MS for i in range(CLIP_FRAMES)],
                                                                abs=TIME_TOL_MS)
    assert {r["file"] for r in rows} == {"clip.mp4"}  # an absolute path outside the cwd: its name, as for photos
    assert all(r["face"] == "1" and float(r["confidence"]) > 0.9 for r in rows)
    xs = [float(r["x"]) for r in rows]
    assert (xs[-1] - xs[0]) / (CLIP_FRAMES - 1) == pytest.approx(FACE_STEP_PX, abs=BOX_STEP_TOL_PX)
    assert len(json.loads(rows[0]["keypoints"])) == 68 and 0 <= float(rows[0]["beauty"]) <= 100


def test_jsonl_has_frame_lines_then_the_video_line(every_frame):
    _, out, _ = every_frame
    lines = read_jsonl(out / "results.jsonl")
    assert lines[0]["options"]["every"] == 1 and lines[0]["options"]["detector"] == "mtcnn"
    frames, closing = lines[1:-1], lines[-1]
    assert [f["frame"] for f in frames] == list(range(CLIP_FRAMES))
    name = closing["video"]["annotated"]  # the photos' rule: an absolute path outside the cwd -> its name
    assert name == "annotated/clip.mp4"
    assert all(f["annotated"] == name and len(f["faces"]) == 1 for f in frames)
    v = closing["video"]
    assert (v["frames"], v["faces"], v["fps"], v["every"], v["analysed"]) == (CLIP_FRAMES, CLIP_FRAMES, CLIP_FPS, 1,
                                                                             CLIP_FRAMES)
    assert (v["width"], v["height"]) == (CLIP_W, CLIP_H)
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary == {"photos": 0, "faces": 0, "unreadable": 0, "videos": 1, "frames": CLIP_FRAMES,
                       "video_faces": CLIP_FRAMES}


def test_frames_reach_the_pipeline_as_rgb(every_frame):
    """cv2 reads BGR; the pipeline must see the red square red (converted exactly once)."""
    _, _, red = every_frame
    assert len(red) == CLIP_FRAMES
    for r, g, b in red:
        assert r > 255 - COLOUR_TOL and g < COLOUR_TOL and b < COLOUR_TOL, (r, g, b)


def test_annotated_video_has_every_frame_and_keeps_colours(every_frame):
    _, out, _ = every_frame
    frames, fps = video_frames(annotated_video(out))
    assert len(frames) == CLIP_FRAMES and fps == pytest.approx(CLIP_FPS)
    assert frames[0].shape == (CLIP_H, CLIP_W, 3)
    b, g, r = (int(v) for v in frames[0][RED_PROBE])  # OpenCV reads BGR
    assert r > 255 - COLOUR_TOL and g < COLOUR_TOL and b < COLOUR_TOL, (r, g, b)
    from facepack.plots_predict import BOX_COLOR

    rows = read_csv(out / "results.csv")
    x, y = round(float(rows[0]["x"])), round(float(rows[0]["y"]) + float(rows[0]["height"]) / 2)
    drawn = frames[0][y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)[:, ::-1]  # the box's left edge, as RGB
    assert np.abs(drawn.astype(int) - BOX_COLOR).sum(axis=1).min() < 3 * COLOUR_TOL


# --- --every 3, Haar, a probed file -------------------------------------------------------------
def test_every_third_frame_with_haar(every_third_haar, every_frame):
    rc, out = every_third_haar
    assert rc == 0
    rows = read_csv(out / "results.csv")
    by_file = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    assert sorted(by_file) == ["videos/clip.data", "videos/clip.mp4"]  # .data: not an image, probed as video
    expected = list(range(0, CLIP_FRAMES, 3))
    for file_rows in by_file.values():
        assert [int(r["frame"]) for r in file_rows] == expected  # 4 rows: frames 0, 3, 6, 9
        assert [float(r["time_ms"]) for r in file_rows] == pytest.approx([i * FRAME_MS for i in expected],
                                                                         abs=TIME_TOL_MS)
        assert all(float(r["confidence"]) == 1.0 and r["landmarks5"] == "{}" for r in file_rows)
        assert len(json.loads(file_rows[0]["keypoints"])) == 68 and file_rows[0]["beauty"] != ""
    mtcnn = {int(r["frame"]): r for r in read_csv(every_frame[1] / "results.csv")}
    for r in by_file["videos/clip.mp4"]:
        box = {k: float(r[k]) for k in ("x", "y", "width", "height")}
        ref = {k: float(mtcnn[int(r["frame"])][k]) for k in ("x", "y", "width", "height")}
        assert iou(box, ref) > MIN_IOU_HAAR_MTCNN, (box, ref)
    names = sorted(p.name for p in (out / "annotated").iterdir())
    assert names == ["videos__clip-2.mp4", "videos__clip.mp4"]
    for name in names:
        frames, fps = video_frames(out / "annotated" / name)
        assert len(frames) == len(expected) and fps == pytest.approx(CLIP_FPS / 3, rel=1e-3)
    assert json.loads((out / "results.json").read_text())["summary"]["frames"] == 2 * len(expected)


def test_haar_finds_the_fixture_face():
    from PIL import Image

    from facepack.detect.haar import HaarDetector

    rgb = np.asarray(Image.open(ROOT / "tests" / "fixtures" / "astronaut.png").convert("RGB"))
    faces = HaarDetector().detect(rgb)
    assert len(faces) == 1 and faces[0]["score"] == 1.0 and faces[0]["landmarks5"] == {}
    raw = faces[0]["raw_box"]  # the astronaut's face: MTCNN's box is x 182, y 64, 83 x 107
    assert 160 < raw["x"] + raw["width"] / 2 < 290 and 60 < raw["y"] + raw["height"] / 2 < 170


# --- Webcam (cv2.VideoCapture(int) faked by the clip), --video-out, --max-frames -------------------
def test_webcam_frames_with_max_frames_and_video_out(predict, clip_dir, untrained_runs, spy, tmp_path, monkeypatch):
    import cv2

    real = cv2.VideoCapture
    opened = []

    def capture(source, *args):
        if isinstance(source, int):
            opened.append(source)
            return real(str(clip_dir / "clip.mp4"), cv2.CAP_FFMPEG)
        return real(source, *args)

    monkeypatch.setattr(cv2, "VideoCapture", capture)
    out, movie = tmp_path / "out", tmp_path / "cam.mp4"
    rc = predict.main(["--webcam", "2", "--max-frames", "5", "--video-out", str(movie), "--out", str(out),
                       "--detector", "haar", *models(untrained_runs)])
    assert rc == 0 and opened == [2], (rc, opened, (out / "results.jsonl").read_text()[-600:])
    rows = read_csv(out / "results.csv")
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3, 4] and {r["file"] for r in rows} == {"webcam:2"}
    times = [float(r["time_ms"]) for r in rows]
    assert times[0] == 0.0 and times == sorted(times)  # wall clock since the first frame
    frames, _ = video_frames(movie)
    assert len(frames) == 5
    assert read_jsonl(out / "results.jsonl")[-1]["video"]["annotated"] == str(movie)


# --- --resume of a video cut short ------------------------------------------------------------
def test_resume_redraws_done_frames_and_analyses_the_rest(predict, every_frame, clip_dir, untrained_runs, spy,
                                                          tmp_path):
    _, ref, _ = every_frame
    out = tmp_path / "cut"
    out.mkdir()
    lines = (ref / "results.jsonl").read_text().splitlines(keepends=True)
    done = 5
    (out / "results.jsonl").write_text("".join(lines[:1 + done]))  # header + frames 0..4; no closing line
    calls = spy["calls"]
    rc = predict.main([str(clip_dir / "clip.mp4"), "--out", str(out), "--resume", *models(untrained_runs)])
    assert rc == 0
    assert spy["calls"] - calls == CLIP_FRAMES - done  # frames 0..4 drawn from results.jsonl, not analysed

    def strip(recs):
        for rec in recs:
            rec.pop("timings_ms", None)
            for key in ("seconds", "analysed"):
                rec.get("video", {}).pop(key, None)
        return recs

    assert strip(read_jsonl(out / "results.jsonl")) == strip(read_jsonl(ref / "results.jsonl"))
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()
    assert len(video_frames(annotated_video(out))[0]) == CLIP_FRAMES
    # once its closing line is there, the video is skipped
    calls = spy["calls"]
    assert predict.main([str(clip_dir / "clip.mp4"), "--out", str(out), "--resume", *models(untrained_runs)]) == 0
    assert spy["calls"] == calls


# --- Usage errors (before any model loads) ---------------------------------------------------------
@pytest.mark.parametrize("case", ["every", "max_frames", "webcam_index", "webcam_resume", "video_out_ext",
                                  "video_out_many", "detector"])
def test_video_usage_errors_are_one_line(predict, clip_dir, tmp_path, monkeypatch, capsys, case):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("facepack.pipeline.FacePipeline.from_runs", refuse)
    clip, o = str(clip_dir / "clip.mp4"), str(tmp_path / "o")
    argv, words = {
        "every": ([clip, "--out", o, "--every", "0"], "--every"),
        "max_frames": ([clip, "--out", o, "--max-frames", "0"], "--max-frames"),
        "webcam_index": (["--webcam", "-1", "--out", o], "--webcam"),
        "webcam_resume": (["--webcam", "0", "--out", o, "--resume"], "--resume"),
        "video_out_ext": ([clip, "--out", o, "--video-out", str(tmp_path / "v.avi")], ".mp4"),
        "video_out_many": ([clip, clip, "--out", o, "--video-out", str(tmp_path / "v.mp4")], "ONE video"),
        "detector": ([clip, "--out", o, "--detector", "yolo"], "--detector"),
    }[case]
    if case == "detector":
        with pytest.raises(SystemExit) as exc:  # argparse choices: exit 2, usage + one error line
            predict.main(argv)
        assert exc.value.code == 2 and words in capsys.readouterr().err
        return
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("predict.py: error: ") and words in err[0], err
    assert not (tmp_path / "o").exists()


# --- --heatmap guided and --overlay (facepack/guided.py, facepack/accessories.py) -----------------
DARK_MAX = 80  # a lens pixel (rgba(27,29,36,0.93) over the photo), JPEG-coded
DARK_SHARE_MIN = 0.8  # of the 5 x 5 pixels around each lens centre


def test_guided_heatmap_and_sunglasses_on_a_photo(predict, untrained_runs, spy, fixtures_dir, tmp_path):
    from PIL import Image

    from facepack import accessories

    out = tmp_path / "out"
    rc = predict.main([str(fixtures_dir / "astronaut.png"), "--out", str(out), "--heatmap", "guided",
                       "--overlay", "sunglasses", *models(untrained_runs)])
    assert rc == 0
    record = read_jsonl(out / "results.jsonl")[1]
    face = record["faces"][0]
    assert face["guided"] == {"file": f"heatmaps/{Path(record['annotated']).stem}_1.png"} and "grid" in face["heatmap"]
    assert record["timings_ms"]["guided"] > 0
    with Image.open(out / face["guided"]["file"]) as png:
        size = face["heatmap"]["crop_size"]
        values = np.asarray(png)
    assert values.shape == (size, size) and values.dtype == np.uint8
    # Normalised to a maximum of 1 (255) per face, unless Grad-CAM itself is all zero (guided Grad-CAM
    # = guided backprop x Grad-CAM): the untrained test model's Grad-CAM (a ReLU of a weighted map) is
    # all zero on this face in some sessions.
    cam_max = float(np.max(face["heatmap"]["grid"]))
    assert (values.max() == 255 and (values == 0).mean() < 0.99) if cam_max > 0 else values.max() == 0, cam_max
    annotated = np.asarray(Image.open(out / record["annotated"]).convert("RGB")).astype(int)
    # The lens centres (art units +-0.5, 0) that lie in the photo (the untrained keypoint model's eyes
    # are not where the astronaut's are, but the lenses must be where its keypoints put them).
    t = accessories.accessory_transform(face["keypoints"], "sunglasses")
    h, w = annotated.shape[:2]
    centres = [(int(round(x)), int(round(y))) for x, y in accessories.to_image(t, [[-0.5, 0.0], [0.5, 0.0]])]
    inside = [(x, y) for x, y in centres if 2 <= x < w - 2 and 2 <= y < h - 2]
    assert inside, centres
    for x, y in inside:
        patch = annotated[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
        assert (patch.max(axis=1) < DARK_MAX).mean() >= DARK_SHARE_MIN, ((x, y), patch.tolist())


def test_overlay_and_guided_on_video_frames(predict, every_frame, clip_dir, untrained_runs, spy, tmp_path):
    out = tmp_path / "out"
    rc = predict.main([str(clip_dir / "clip.mp4"), "--out", str(out), "--max-frames", "2", "--heatmap", "guided",
                       "--overlay", "hat", "--overlay", "sunglasses", *models(untrained_runs)])
    assert rc == 0
    lines = read_jsonl(out / "results.jsonl")
    assert lines[0]["options"]["overlay"] == ["hat", "sunglasses"] and lines[0]["options"]["heatmap"] == "guided"
    assert [rec["frame"] for rec in lines[1:-1]] == [0, 1]
    assert all(rec["timings_ms"]["guided"] > 0 for rec in lines[1:-1])
    frames, _ = video_frames(annotated_video(out))
    assert len(frames) == 2
    plain, _ = video_frames(annotated_video(every_frame[1]))  # the same frame without them
    assert np.abs(frames[0].astype(int) - plain[0].astype(int)).max() > 100  # hat, glasses, heatmap drawn


def test_heatmap_without_a_kind_still_takes_the_next_path(predict):
    assert predict.heatmap_argv(["--heatmap", "photos/", "--out", "o"]) == ["--heatmap=gradcam", "photos/", "--out", "o"]
    assert predict.heatmap_argv(["x", "--heatmap"]) == ["x", "--heatmap=gradcam"]
    assert predict.heatmap_argv(["--heatmap", "guided", "x"]) == ["--heatmap", "guided", "x"]
    from facepack import accessories

    assert predict.ACCESSORIES == accessories.ACCESSORIES


def test_guided_on_a_non_relu_backbone_is_one_line_before_results(predict, untrained_runs, fixtures_dir, tmp_path,
                                                                   capsys):
    from conftest import make_untrained_run

    beauty = make_untrained_run("beauty", tmp_path / "b" / "20000101-000000", backbone="mobilenet_v3_small")
    out = tmp_path / "out"
    rc = predict.main([str(fixtures_dir / "astronaut.png"), "--out", str(out), "--heatmap", "guided",
                       "--beauty", str(beauty), "--keypoints", str(untrained_runs["keypoints"])])
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("predict.py")]
    assert len(err) == 1 and "ReLU backbones only" in err[0] and "hard_silu" in err[0], err
    assert not (out / "results.jsonl").exists()


def test_detector_names_and_haar_settings_are_checked():
    from facepack.detect.haar import HaarDetector
    from facepack.pipeline import FacePipeline

    with pytest.raises(ValueError, match="'mtcnn' or 'haar'"):
        FacePipeline(detector="yolo")
    with pytest.raises(ValueError, match="unknown \\['min_size'\\]"):
        HaarDetector(settings={"min_size": 3})


def test_a_webcam_that_does_not_open_is_refused_before_the_models_load(predict, untrained_runs, tmp_path, capfd,
                                                                        monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the models were loaded before the camera was tried")

    monkeypatch.setattr("facepack.pipeline.FacePipeline.from_runs", refuse)
    rc = predict.main(["--webcam", "99", "--out", str(tmp_path / "out"), *models(untrained_runs)])
    assert rc == 2
    err = capfd.readouterr().err.strip().splitlines()  # OpenCV's own log (fd 2) is silenced; our line names the camera
    assert len(err) == 1 and err[0].startswith("predict.py: error: --webcam webcam 99: cannot open"), err
    assert not (tmp_path / "out").exists()


def test_read_frames_converts_once_and_times_frames_without_timestamps():
    """A capture whose stream has no timestamps (POS_MSEC 0): time = index * 1000 / fps."""
    import cv2

    from facepack import video

    class Capture:  # BGR frames whose blue channel holds the frame index
        def __init__(self):
            self.i = 0

        def grab(self):
            self.i += 1
            return self.i <= 7

        def read(self):
            self.i += 1
            frame = np.zeros((2, 2, 3), np.uint8)
            frame[..., 0] = self.i - 1
            return self.i <= 7, frame

        def get(self, prop):
            return {cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)

    got = [(i, t, int(rgb[0, 0, 2])) for i, t, rgb in video.read_frames(Capture(), every=2)]
    assert got == [(0, 0.0, 0), (2, 80.0, 2), (4, 160.0, 4), (6, 240.0, 6)]  # blue of BGR is RGB's last channel
    assert [i for i, _, _ in video.read_frames(Capture(), every=3, max_frames=2)] == [0, 3]


# --- Video faces on the contact sheet, labels, messages, names ----------------------------------
SHEET_BG = 250  # plots_predict.contact_sheet's background level
THUMB_TOP_LEFT = (8, 42)  # (x, y) of the first thumbnail: pad, title_h + pad
THUMB_MIN_STD = 10.0  # a face crop's pixel spread; the empty background's is 0


def test_video_faces_are_cropped_once_and_shown_on_the_contact_sheet(every_frame, every_third_haar):
    from PIL import Image

    _, out, _ = every_frame
    closing = read_jsonl(out / "results.jsonl")[-1]["video"]
    # the face moves FACE_STEP_PX per frame: one face, first seen in frame 0
    assert [(f["file"], f["frame"], f["face"]) for f in closing["face_files"]] == [("faces/clip_f0_1.jpg", 0, 1)]
    assert sorted(p.name for p in (out / "faces").iterdir()) == ["clip_f0_1.jpg"]
    with Image.open(out / "faces" / "clip_f0_1.jpg") as crop:
        assert crop.size == (160, 160)
    with Image.open(out / "contact_sheet.png") as img:
        sheet = np.asarray(img.convert("L")).astype(float)
    x, y = THUMB_TOP_LEFT
    assert sheet[y:y + 160, x:x + 160].std() > THUMB_MIN_STD  # a face, not "no faces found"
    names = sorted(p.name for p in (every_third_haar[1] / "faces").iterdir())
    assert names == ["videos__clip-2_f0_1.jpg", "videos__clip_f0_1.jpg"]


def test_new_faces_are_those_that_overlap_no_previous_box(predict):
    def face(x):
        return {"box": {"x": x, "y": 0.0, "width": 10.0, "height": 10.0}}

    assert predict.new_faces([face(0), face(50)], []) == [0, 1]
    assert predict.new_faces([face(1), face(50)], [face(0)]) == [1]  # IoU 9/11 with the old box: the same face
    assert predict.new_faces([face(1)], [face(0), face(100)]) == []


def test_labels_separate_the_number_from_the_score_as_the_page_does():
    from facepack.plots_predict import LABEL_SEP, face_label

    face = {"score": 0.99, "beauty": {"score": 71.0, "score_1to5": 3.55}}
    assert face_label(0, face) == "1 \u00b7 71.0 (3.55)" and face_label(1, {"score": 0.5}) == "2 \u00b7 p=0.50"
    js = (ROOT / "static" / "overlay.js").read_text()
    assert f"${{index + 1}}{LABEL_SEP}${{face.beauty.score.toFixed(1)}}" in js


def test_unreadable_and_empty_videos_are_one_line_without_ffmpeg_noise(tmp_path):
    """A fresh process (FFmpeg reads its log level once): a text file named .mp4, an .mp4 of 0 frames."""
    import os
    import subprocess
    import sys

    import cv2

    (tmp_path / "text.mp4").write_text("not a video\n")
    writer = cv2.VideoWriter(str(tmp_path / "empty.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (32, 32))
    writer.release()
    code = ("import sys\nfrom facepack import video\nfor p in sys.argv[1:]:\n    try:\n"
            "        video.open_capture(p)\n    except video.VideoError as e:\n        print(e, file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "text.mp4"), str(tmp_path / "empty.mp4")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 2, err  # no "moov atom not found" line from FFmpeg
    assert err[0] == f"{tmp_path / 'text.mp4'}: cannot open (not a video OpenCV's FFmpeg can read)"
    assert err[1].startswith(f"{tmp_path / 'empty.mp4'}: no frames"), err


def test_resume_with_another_every_names_only_that_option(predict, every_frame, clip_dir, tmp_path, capsys,
                                                          monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before --resume was checked")

    monkeypatch.setattr("facepack.pipeline.FacePipeline.from_runs", refuse)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text((every_frame[1] / "results.jsonl").read_text().splitlines(keepends=True)[0])
    header = read_jsonl(out / "results.jsonl")[0]
    rc = predict.main([str(clip_dir / "clip.mp4"), "--out", str(out), "--resume", "--every", "2",
                       "--beauty", header["models"]["beauty"], "--keypoints", header["models"]["keypoints"]])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(every: 1 (recorded) vs 2 (now))" in err[0] and "heatmap" not in err[0], err


def test_files_given_by_absolute_path_are_named_like_relative_ones(predict, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert predict.file_display(tmp_path / "a" / "clip.mp4") == str(Path("a") / "clip.mp4")
    assert predict.file_display(Path("b/x.jpg")) == str(Path("b/x.jpg"))
    assert predict.file_display(tmp_path.parent / "y.jpg") == "y.jpg"
