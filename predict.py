"""Score every face in a batch of photos (and videos, webcam frames) with the trained models.

    python predict.py PHOTOS... --out DIR [--beauty RUN] [--keypoints RUN] [--heatmap [guided]]
                      [--overlay sunglasses] [--overlay hat] [--detector haar] [--resume]
    python predict.py VIDEO --out DIR [--every N] [--max-frames N] [--video-out FILE.mp4]
    python predict.py --webcam 0 --out DIR --max-frames 300 [--detector haar]

PHOTOS are files or folders (searched recursively; every file is tried and decoded by its
content, whatever its extension). DIR receives, as each photo finishes:

    results.csv         one row per face: file, face (1, 2, ... as on the page), box, confidence,
                        beauty 0..100 and 1..5, 5 landmarks and keypoints as JSON strings
    results.jsonl       JSON Lines: a first line with the models and options, then one line per
                        input file: {"file", "annotated", "faces", "timings_ms", "image"} (the
                        facepack/pipeline.py format; faces[0] is face 1) or {"file", "error"}
    annotated/*.jpg     each photo with boxes, landmarks, keypoints and scores (Grad-CAM with
                        --heatmap, guided Grad-CAM with --heatmap guided, sunglasses / a hat with
                        --overlay), at most 4096 px on its longer side
    heatmaps/*.png      with --heatmap guided: each face's guided Grad-CAM over its beauty crop
    faces/*.jpg         each face as the beauty model frames it (160 px)

and when the batch is complete:

    results.json        every photo with its faces, per-stage milliseconds, the unreadable files
    contact_sheet.png   all faces in input order (faces are not ranked)

Crash safety: rows are appended and flushed photo by photo; after a kill (even kill -9 or an
out-of-memory kill) every finished photo's rows are in results.csv and results.jsonl, and
`--resume` with the same arguments skips them and finishes the batch (results.csv is rewritten
from results.jsonl, which a partial last line cannot corrupt). Without --resume an --out
folder that already holds results is refused.

Videos (read by OpenCV, cv2.VideoCapture; files ending .mp4 .mov .avi .mkv .webm ... or any
other file that is not an image but opens as a video) and --webcam INDEX: every N-th frame
(--every, from frame 0) is analysed like a photo, at most --max-frames of them per video:

    results.csv         one row per face per frame, with "frame" (0-based index in the video)
                        and "time_ms" (its time from the start; a webcam: since its first frame)
    results.jsonl       one line per analysed frame ({"file", "frame", "time_ms", ...}), then one
                        {"file", "video": {frames, faces, fps, every, annotated, ...}} when the video ends
    annotated/NAME.mp4  the analysed frames with boxes, landmarks, keypoints and scores, at the
                        source's fps / N (so it lasts as long as the source); MPEG-4 Part 2
                        ("mp4v", the encoder in the headless OpenCV wheel); --video-out FILE.mp4
                        puts it elsewhere (one video or webcam only)

    faces/NAME_fF_N.jpg face N of frame F, for each face in the first frame it appears in (a box
                        that overlaps no box of the previous analysed frame), at most
                        VIDEO_SHEET_FACES per video; these are the video's faces on the contact
                        sheet, labelled with frame index and time

results.json lists each video with its frame and face counts. --resume: a video whose closing line is in results.jsonl is skipped;
one cut short (kill) is read again from its start: frames already in results.jsonl are drawn
from their recorded faces (not analysed again) and the annotated video is written anew. A
webcam cannot be resumed; Ctrl-C ends it cleanly (its video closed, the summary written).

Detectors: --detector mtcnn (default) or haar (OpenCV's Haar cascade, haarcascade_frontalface_
default from the opencv package: ~3x faster, slightly fewer faces and some false ones, no
landmarks; its "confidence" is 1.0, see facepack/detect/haar.py and bench/bench_haar.py).

Large photos: JPEGs over 16 MP are read by region: only the detector's rows and each face's
window are decoded, with the same numbers as a full decode (a 108 MP photo: 1.2 GB in all,
TensorFlow included; its decode time is counted in "detect" and "crop"). Photos over
--max-pixels (default 120 MP) are refused, except JPEGs, which are decoded at 1/2, 1/4 or 1/8
(results mapped back to photo pixels, approximate, marked "decode_factor" in results.jsonl).

Kaggle: --kaggle-test test.csv --kaggle-lookup IdLookupTable.csv writes DIR/submission.csv for
the Facial Keypoints Detection competition (15 points on 96 x 96 grey images: RowId,Location,
clipped to 0..96) with a 15-point keypoint run (--keypoints); no photos are needed then.

Models: the newest real-data runs under runs/ not worse than the shipped models (else the shipped
ones), unless --beauty/--keypoints name a run. Exit status: 0 when at least one photo was processed, 1 when none could be, 2 on a usage
or model error (one line, before any model loads); unreadable files are listed at the end and
in results.json.

(For developers: the work is done by facepack.pipeline.FacePipeline, facepack.bigphoto,
facepack.plots_predict, facepack.video, facepack.detect.haar and facepack.kaggle; this file parses, walks the inputs and writes the outputs.)
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own stderr lines (facepack/video.py)

from facepack import tfquiet  # noqa: E402

tfquiet.install()  # TensorFlow's cuDNN/cuBLAS "factory" lines at import are dropped (facepack/tfquiet.py)

CSV_COLUMNS = ["file", "frame", "time_ms", "face", "x", "y", "width", "height", "confidence", "beauty", "beauty_1to5",
               "landmarks5", "keypoints", "annotated"]
JSONL_FORMAT = 1  # "facepack_predict" in the first line of results.jsonl
RESULT_FILES = ("results.csv", "results.jsonl")
HEATMAP_KINDS = ("gradcam", "guided")
ACCESSORIES = ("sunglasses", "hat")  # = facepack.accessories.ACCESSORIES (checked in tests; no TF import for --help)
VIDEO_SHEET_FACES = 24  # face crops (faces/, contact sheet) kept per video: memory and files stay bounded
NEW_FACE_MAX_IOU = 0.3  # a video face whose box overlaps every box of the previous frame less is a new face
# results.jsonl's header / results.json "options": min_face_size (detector pyramid start, detection-image
# px), min_confidence, min_box_size (filter, photo px) and mirror_keypoints as applied (defaults filled
# in); the page's JSON "settings" uses the same names (static/app.js downloadJson). max_faces null: all.
OPTION_KEYS = ("heatmap", "overlay", "max_faces", "min_face_size", "min_confidence", "min_box_size", "mirror_keypoints",
               "max_pixels", "detector", "every", "max_frames")


class UsageError(ValueError):
    """A command-line mistake, found before any model loads: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from facepack import bigphoto, spec

    parser = argparse.ArgumentParser(
        prog="predict.py", description=__doc__.split("\n(For developers")[0],
        epilog="Example: python predict.py photos/ --out predictions --heatmap",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", metavar="PHOTOS", help="image or video files or folders (recursive)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted batch in --out: photos already in results.jsonl are skipped")
    parser.add_argument("--beauty", metavar="RUN", default=None,
                        help="beauty run: a folder, a run name, latest or shipped (default: the newest run under --runs trained on real data and not worse than the shipped model, else the shipped model)")
    parser.add_argument("--keypoints", metavar="RUN", default=None,
                        help="keypoint run: a folder, a run name, latest or shipped (default: the newest run under --runs trained on real data and not worse than the shipped model, else the shipped model)")
    parser.add_argument("--runs", metavar="DIR", default=None,
                        help="where to look for runs (default: runs/)")
    parser.add_argument("--heatmap", nargs="?", const="gradcam", choices=HEATMAP_KINDS, default=None,
                        help="overlay a heatmap of the beauty score on the annotated photos and videos: gradcam "
                             "(the default when the flag has no value: Grad-CAM, results.jsonl holds its grid) or "
                             "guided (guided Grad-CAM, facepack/guided.py: Grad-CAM times guided backpropagation, "
                             "fine-grained; ReLU backbones only; photos also get heatmaps/NAME_N.png, the map "
                             "over the face's beauty crop, 0..255)")
    parser.add_argument("--overlay", action="append", choices=ACCESSORIES, default=None, metavar="KIND",
                        help="draw sunglasses or a hat (repeat the flag for both) on every face of the annotated "
                             "photos and videos, placed from the keypoints (facepack/accessories.py)")
    parser.add_argument("--max-faces", type=int, default=None, metavar="N",
                        help="keep at most N faces per photo, most confident first (default: all)")
    parser.add_argument("--min-face-size", type=float, default=None, metavar="PX",
                        help="smallest face the detector looks for, in pixels of the detection image "
                             f"(photos over {spec.DETECT_MAX_SIDE_PX} px are downscaled to it first; a JPEG over "
                             "--max-pixels is decoded at 1/k and that decode downscaled to the same "
                             f"{spec.DETECT_MAX_SIDE_PX} px, unless it is smaller, possible only with --max-pixels "
                             f"under {4 * spec.DETECT_MAX_SIDE_PX ** 2}; default: {spec.MTCNN['min_face_size_px']})")
    parser.add_argument("--min-confidence", type=float, default=None, metavar="P",
                        help="drop detected faces whose detector confidence (0..1) is below P "
                             f"(default: {spec.FACE_FILTER['min_confidence']})")
    parser.add_argument("--min-box-size", type=float, default=None, metavar="PX",
                        help="drop detected faces whose box's longer side is under PX photo pixels, also for "
                             "JPEGs decoded at 1/k (over --max-pixels) "
                             f"(default: {spec.FACE_FILTER['min_box_size_px']})")
    parser.add_argument("--max-pixels", type=int, default=bigphoto.MAX_PIXELS, metavar="N",
                        help="decode cap, width x height pixels: larger JPEGs are decoded at 1/2, 1/4 or 1/8, "
                             f"other larger files refused (default: {bigphoto.MAX_PIXELS})")
    parser.add_argument("--detector", choices=("mtcnn", "haar"), default="mtcnn",
                        help="face detector: mtcnn (default; 5 landmarks, confidence) or haar (OpenCV's Haar "
                             "cascade from the opencv package: ~3x faster, slightly fewer faces and some false ones (bench/bench_haar.py), "
                             "no landmarks, confidence 1.0)")
    parser.add_argument("--webcam", type=int, default=None, metavar="INDEX",
                        help="analyse frames from webcam INDEX (0: the first camera) until --max-frames or Ctrl-C")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="videos and webcam: analyse frames 0, N, 2N, ... (default 1: every frame)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="videos and webcam: analyse at most N frames of each (default: all)")
    parser.add_argument("--video-out", metavar="FILE.mp4", default=None,
                        help="the annotated video (mp4v) of the one video or webcam given "
                             "(default: DIR/annotated/NAME.mp4)")
    parser.add_argument("--kaggle-test", metavar="CSV", default=None,
                        help="Kaggle Facial Keypoints Detection test.csv (ImageId, Image: 96 x 96 grey pixels); "
                             "with --kaggle-lookup writes DIR/submission.csv (RowId,Location)")
    parser.add_argument("--kaggle-lookup", metavar="CSV", default=None,
                        help="the competition's IdLookupTable.csv (RowId, ImageId, FeatureName, Location)")
    return parser


# --- Arguments (all checked before any model loads) -----------------------------------------
def check_args(args) -> None:
    """Raise UsageError (one line naming the flag) for any argument that cannot work."""
    if args.max_faces is not None and args.max_faces < 1:
        raise UsageError(f"--max-faces must be >= 1, got {args.max_faces}")
    if args.min_face_size is not None and not args.min_face_size > 0:
        raise UsageError(f"--min-face-size must be > 0 pixels, got {args.min_face_size}")
    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError(f"--min-confidence must be from 0 to 1, got {args.min_confidence}")
    if args.min_box_size is not None and not 0.0 <= args.min_box_size < float("inf"):
        raise UsageError(f"--min-box-size must be >= 0 pixels, got {args.min_box_size}")
    if args.max_pixels < 1:
        raise UsageError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    if args.every < 1:
        raise UsageError(f"--every must be >= 1 (analyse every N-th frame), got {args.every}")
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.webcam is not None and args.webcam < 0:
        raise UsageError(f"--webcam must be a camera index >= 0, got {args.webcam}")
    if args.webcam is not None and args.resume:
        raise UsageError("--resume cannot continue a --webcam run (live frames); choose a new --out")
    if args.video_out is not None:
        if Path(args.video_out).suffix.lower() != ".mp4":
            raise UsageError(f"--video-out {args.video_out}: name an .mp4 file (the video is MPEG-4, mp4v)")
        sources = len(args.photos) + (args.webcam is not None)
        if sources != 1 or (args.photos and not Path(args.photos[0]).is_file()):
            raise UsageError("--video-out names the annotated video of ONE video file or --webcam; "
                             "with several inputs leave it out (videos go to DIR/annotated/)")
        if not Path(args.video_out).resolve().parent.is_dir():
            raise UsageError(f"--video-out {args.video_out}: its folder does not exist")
    if (args.kaggle_test is None) != (args.kaggle_lookup is None):
        raise UsageError("--kaggle-test and --kaggle-lookup go together: pass both files of the competition")
    kaggle = args.kaggle_test is not None
    for flag, value in (("--kaggle-test", args.kaggle_test), ("--kaggle-lookup", args.kaggle_lookup)):
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{flag}: no such file: {value}")
    if not args.photos and not kaggle and args.webcam is None:
        raise UsageError("no PHOTOS given: name image or video files or folders (or --webcam, "
                         "or --kaggle-test/--kaggle-lookup)")
    if args.photos and not any(Path(p).exists() for p in args.photos):
        raise UsageError(f"no such file or folder: {', '.join(args.photos[:3])}{' ...' if len(args.photos) > 3 else ''}"
                         f" (PHOTOS are image files or folders of them)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: is a file; name a folder (created if missing)")
    held = [name for name in RESULT_FILES if (out / name).exists()]
    if (args.photos or args.webcam is not None) and held and not args.resume:
        raise UsageError(f"--out {args.out}: already holds the results of a batch ({held[0]}); add --resume to "
                         "continue it, or choose another folder")
    if kaggle and (out / "submission.csv").exists():
        raise UsageError(f"--out {args.out}: already holds submission.csv; choose another folder or remove it")
    parent = next((p for p in [out, *out.resolve().parents] if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK):
        raise UsageError(f"--out {args.out}: cannot write there ({parent} is not writable)")


def make_out(args) -> Path:
    """Create --out (after every check passed); UsageError when the system refuses."""
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot create the folder ({exc.strerror})") from None
    return out


def effective_options(options: dict) -> dict:
    """``options`` with the analysis settings left unset (None; absent in a results.jsonl header written
    before they were recorded so) given the values the pipeline applies (spec.MTCNN, spec.FACE_FILTER,
    spec.KEYPOINTS; facepack/pipeline.py:analyze and facepack/detect/haar.py use the same defaults)."""
    from facepack import spec

    defaults = {"min_face_size": spec.MTCNN["min_face_size_px"], "min_confidence": spec.FACE_FILTER["min_confidence"],
                "min_box_size": spec.FACE_FILTER["min_box_size_px"],
                "mirror_keypoints": bool(spec.KEYPOINTS["mirror_average"])}
    return {**options, **{key: value for key, value in defaults.items() if options.get(key) is None}}


def run_options(args) -> dict:
    """The options recorded in results.jsonl and results.json (OPTION_KEYS), as applied."""
    return effective_options({key: getattr(args, key, None) for key in OPTION_KEYS})


# --- Inputs ---------------------------------------------------------------------------------
def collect_inputs(paths: list[str], exclude: Path | None = None) -> tuple[list[tuple[Path, str]], list[dict]]:
    """Files to try as (path, display name), and errors for paths that do not exist.

    Folders are walked recursively in sorted order (hidden files and ``exclude`` skipped);
    display names are relative to the folder given. A file (photo or video alike) is shown as
    given, except an absolute path: relative to the current folder when inside it, else its name.
    """
    files, errors = [], []
    exclude = exclude.resolve() if exclude is not None else None
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append((path, file_display(path)))
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if not child.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                if exclude is not None and exclude in child.resolve().parents:
                    continue
                files.append((child, str(Path(path.name) / rel)))
        else:
            errors.append({"file": str(path), "error": f"{path}: no such file or folder"})
    return files, errors


def file_display(path: Path) -> str:
    """The name results use for a file given on the command line (see collect_inputs)."""
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name


def annotated_name(display: str, used: set, ext: str = ".jpg") -> str:
    """A unique, flat file name for a photo's annotated copy (a video's: ext ".mp4")."""
    stem = str(Path(display).with_suffix("")).replace(os.sep, "__").replace("/", "__").replace(":", "").lstrip(".")
    name, k = f"{stem}{ext}", 2
    while name in used:
        name, k = f"{stem}-{k}{ext}", k + 1
    used.add(name)
    return name


def guided_file(annotated: str, number: int) -> str:
    """heatmaps/<annotated stem>_<number>.png: face ``number``'s guided Grad-CAM over its beauty crop."""
    return f"heatmaps/{Path(annotated).stem}_{number}.png"


def face_file(annotated: str, number: int, frame: int | None = None) -> str:
    """faces/<annotated stem>_<number>.jpg: face ``number`` (from 1) of a photo
    (of a video frame: faces/<annotated stem>_f<frame>_<number>.jpg)."""
    return f"faces/{Path(annotated).stem}{'' if frame is None else f'_f{frame}'}_{number}.jpg"


def _iou(a: dict, b: dict) -> float:
    x0, y0 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x1, y1 = min(a["x"] + a["width"], b["x"] + b["width"]), min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def new_faces(faces: list[dict], previous: list[dict]) -> list[int]:
    """Indices of ``faces`` whose box overlaps no box of ``previous`` (the last analysed frame)
    by NEW_FACE_MAX_IOU or more: the frames where a face first appears."""
    return [i for i, f in enumerate(faces)
            if all(_iou(f["box"], p["box"]) < NEW_FACE_MAX_IOU for p in previous)]


# --- Outputs --------------------------------------------------------------------------------
def csv_rows(display: str, faces: list[dict], annotated: str, frame: int | None = None,
             time_ms: float | None = None) -> list[dict]:
    """results.csv rows of one photo or video frame; ``face`` counts from 1 (as the annotated photos
    and the page); ``frame`` and ``time_ms`` are empty for photos."""
    rows = []
    for i, face in enumerate(faces):
        b = face["box"]
        rows.append({"file": display, "frame": "" if frame is None else frame,
                     "time_ms": "" if time_ms is None else round(time_ms, 3), "face": i + 1, "x": round(b["x"], 3), "y": round(b["y"], 3),
                     "width": round(b["width"], 3), "height": round(b["height"], 3),
                     "confidence": round(face["score"], 6),
                     "beauty": round(face["beauty"]["score"], 4) if "beauty" in face else "",
                     "beauty_1to5": round(face["beauty"]["score_1to5"], 4) if "beauty" in face else "",
                     "landmarks5": json.dumps({k: [round(v, 3) for v in p] for k, p in face["landmarks5"].items()}),
                     "keypoints": json.dumps([[round(x, 3), round(y, 3)] for x, y in face.get("keypoints", [])]),
                     "annotated": annotated})
    return rows


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (temp file in the same folder, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        _sync(fh)
    os.replace(tmp, path)


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, rows: list[dict]) -> None:
    _replace(Path(path), csv_text(rows).encode())


def read_jsonl(path: Path) -> tuple[dict | None, list[dict], int]:
    """(header, records, bytes of complete lines) of results.jsonl; a partial last line is ignored."""
    if not path.exists():
        return None, [], 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # a line without its newline was cut by a kill: not committed
    lines = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    if not lines or lines[0].get("facepack_predict") != JSONL_FORMAT:
        raise UsageError(f"--resume: {path} is not a predict.py results file (first line: no facepack_predict)")
    return lines[0], lines[1:], end


def record_rows(record: dict) -> list[dict]:
    """results.csv rows of one results.jsonl record (a photo or a video frame) that has faces."""
    return csv_rows(record["file"], record["faces"], record["annotated"], record.get("frame"), record.get("time_ms"))


def check_same_run(jsonl_path: Path, old_header: dict | None, header: dict) -> None:
    """UsageError unless results.jsonl's first line has the same models and options as ``header``."""
    if old_header is None:
        return
    for key in ("models", "options"):
        old, new = old_header.get(key) or {}, header[key]
        if key == "options":  # a batch begun before the defaults were recorded (null, no mirror_keypoints)
            old = effective_options(old)
        if old != new:
            diff = "; ".join(f"{k}: {old.get(k)} (recorded) vs {new.get(k)} (now)"
                             for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
            raise UsageError(f"--resume: {jsonl_path} was made with other {key} ({diff}); use the same arguments")


class BatchWriter:
    """results.csv + results.jsonl, appended and fsynced photo by photo (see the module docstring).

    results.jsonl is the record: a photo is done once its line is complete. On resume the file is
    cut after its last complete line and results.csv is rewritten from it, so the two agree.
    """

    def __init__(self, out: Path, header: dict, resume: bool):
        self.out = Path(out)
        self.jsonl_path, self.csv_path = self.out / "results.jsonl", self.out / "results.csv"
        old_header, self.records, end = read_jsonl(self.jsonl_path) if resume else (None, [], 0)
        if old_header is not None:
            check_same_run(self.jsonl_path, old_header, header)
            with open(self.jsonl_path, "r+b") as fh:
                fh.truncate(end)
        else:
            _replace(self.jsonl_path, (json.dumps(header) + "\n").encode())
        write_csv(self.csv_path, [row for rec in self.records if "faces" in rec for row in record_rows(rec)])
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")
        self._csv = open(self.csv_path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=CSV_COLUMNS)

    def add(self, record: dict) -> None:
        """Commit one input file's outcome: its CSV rows, then its JSON line (the commit point)."""
        if "faces" in record:
            self._writer.writerows(record_rows(record))
            _sync(self._csv)
        self._jsonl.write(json.dumps(record) + "\n")
        _sync(self._jsonl)
        # A video frame is kept in memory as a stub: a long video's faces stay on disk only
        # (results.jsonl is the record; --resume reads them back from there).
        self.records.append({"file": record["file"], "frame": record["frame"]} if "frame" in record else record)

    def close(self) -> None:
        self._jsonl.close()
        self._csv.close()


def analyze_options(args) -> dict:
    """FacePipeline.analyze keyword arguments from the command line (photos and video frames alike): the
    values run_options records."""
    options = run_options(args)
    return {"heatmaps": args.heatmap is not None,
            **{key: options[key] for key in ("max_faces", "min_face_size", "min_confidence", "min_box_size",
                                             "mirror_keypoints")}}


def analyse_photo(pipe, path: Path, display: str, args) -> dict:
    """Decode (by region when large), analyse, map to photo pixels: the pipeline result + the photo."""
    from facepack import bigphoto

    t0 = time.perf_counter()
    photo = bigphoto.open_photo(path, name=display, max_pixels=args.max_pixels)
    decode_ms = (time.perf_counter() - t0) * 1000.0
    options = analyze_options(args)
    factor = photo.factor if isinstance(photo, bigphoto.RegionPhoto) else 1
    if factor != 1:  # analyze measures boxes on the 1/k decode, scale_result multiplies them by k (a power of 2,
        options["min_box_size"] /= factor  # so exact): the filter keeps the same faces as on photo-px boxes
    result = pipe.analyze(photo, **options)
    result["timings_ms"]["decode"] += decode_ms  # the file was decoded here, not in analyze
    result["timings_ms"]["total"] += decode_ms
    return result, photo


class Drawing:
    """The annotated outputs: boxes, points and labels (facepack.plots_predict), the heatmap
    (Grad-CAM or guided Grad-CAM) and the --overlay accessories.

    Guided Grad-CAM (facepack.guided.guided_maps) is computed here, from the photo or frame and
    its faces' beauty crops, with the Grad-CAM the pipeline already computed (face["heatmap"]);
    its (S, S) map replaces the Grad-CAM grid in the drawing only (results.jsonl keeps Grad-CAM's
    grid; photos get the guided map as heatmaps/NAME_N.png). Raises facepack.guided.GuidedUnavailable
    (a ValueError naming the layer) when the beauty backbone is not ReLU-only.
    """

    def __init__(self, pipe, args):
        self.pipe, self.heatmap, self.overlay = pipe, args.heatmap, list(args.overlay or [])
        self.guided_features = None
        if self.heatmap == "guided":
            from facepack import guided

            self.guided_features = guided.guided_features_model(pipe.gradcam_models()[0])

    def guided_maps(self, photo, faces: list[dict]) -> list | None:
        """Guided Grad-CAM (S, S) float32 per face (None without --heatmap guided); faces in photo's pixels."""
        from facepack import gradcam, guided, pipeline

        if self.guided_features is None:
            return None
        faces = [f for f in faces if "heatmap" in f]
        if not faces:
            return []
        crops, _ = pipeline.crop(photo, faces, "beauty", self.pipe.beauty_size)
        cams = gradcam.upsample(np.stack([np.asarray(f["heatmap"]["grid"], np.float32) for f in faces]),
                                crops.shape[1])
        features, head = self.pipe.gradcam_models()
        return list(guided.guided_maps(features, head, crops, self.guided_features, cams)["guided_gradcam"])

    def render(self, rgb: np.ndarray, faces: list[dict], maps: list | None):
        """The annotated PIL image of an RGB photo or frame and its faces (in rgb's pixels)."""
        from facepack import accessories, plots_predict

        if maps is not None:  # guided: its map drawn where Grad-CAM's would be (same square, crop units)
            maps = iter(maps)
            faces = [{**f, "heatmap": {**f["heatmap"], "grid": next(maps), "crop_size": f["heatmap"]["crop_size"]}}
                     if "heatmap" in f else f for f in faces]
        if self.heatmap is not None:  # under the accessories, which are under the boxes, points and labels
            rgb = plots_predict.heatmap_overlay(rgb, faces)
        if self.overlay:
            rgb = np.asarray(accessories.draw_accessories(rgb, [f for f in faces if f.get("keypoints")], self.overlay))
        return plots_predict.annotate(rgb, faces, heatmaps=False)


def draw_photo(out: Path, photo, result: dict, annotated: str, drawing: Drawing, maps: list | None) -> None:
    """annotated/<name>, faces/<name>_<n>.jpg (and heatmaps/<name>_<n>.png with guided maps) of one photo."""
    from PIL import Image

    from facepack import plots_predict
    from facepack.bigphoto import RegionPhoto

    factor = photo.factor if isinstance(photo, RegionPhoto) else 1
    faces = plots_predict.scale_faces(result["faces"], 1.0 / factor) if factor != 1 else result["faces"]
    small, s = plots_predict.downscaled(photo)
    drawn = plots_predict.scale_faces(faces, s) if s != 1.0 else faces
    drawing.render(small, drawn, maps).save(out / annotated, quality=92)
    for i, m in enumerate(maps or []):
        Image.fromarray(np.clip(np.rint(np.asarray(m) * 255.0), 0, 255).astype(np.uint8)).save(
            out / guided_file(annotated, i + 1))
    for i, face in enumerate(faces):
        plots_predict.face_thumbnail(photo, face).save(out / face_file(annotated, i + 1), quality=92)


def write_summary(out: Path, pipe_runs: dict, options: dict, records: list[dict], missing: list[dict]) -> int:
    """results.json and contact_sheet.png of the whole batch; returns the exit status.

    Photos are listed with their faces; videos by their closing records (frame and face counts:
    the per-frame faces are in results.jsonl and results.csv)."""
    from PIL import Image

    from facepack import plots_predict

    photos = [r for r in records if "faces" in r and "frame" not in r]
    videos = [{"file": r["file"], **r["video"]} for r in records if "video" in r]
    errors = missing + [r for r in records if "error" in r]
    n_faces = sum(len(p["faces"]) for p in photos)
    summary = {"photos": len(photos), "faces": n_faces, "unreadable": len(errors), "videos": len(videos),
               "frames": sum(v["frames"] for v in videos), "video_faces": sum(v["faces"] for v in videos)}
    _replace(out / "results.json", json.dumps({"models": pipe_runs, "options": options, "summary": summary,
                                               "photos": photos, "videos": videos, "errors": errors},
                                              indent=1).encode())
    thumbs = []  # input order: each photo's faces, each video's first appearances (frame, seconds)
    for rec in records:
        if "faces" in rec and "frame" not in rec:
            for i, face in enumerate(rec["faces"]):
                with Image.open(out / face_file(rec["annotated"], i + 1)) as thumb:
                    thumbs.append({"thumb": thumb.convert("RGB"),
                                   "label": f"{plots_predict.face_label(i, face)}\n{rec['file']}"})
        for f in rec.get("video", {}).get("face_files", []):
            with Image.open(out / f["file"]) as thumb:
                thumbs.append({"thumb": thumb.convert("RGB"),
                               "label": f"{f['label']}\n{rec['file']} frame {f['frame']} {f['time_ms'] / 1000:.2f} s"})
    sheet = plots_predict.contact_sheet(thumbs)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    _replace(out / "contact_sheet.png", buf.getvalue())
    _print_summary(len(photos), n_faces, errors, out, videos)
    return 0 if photos or summary["frames"] else 1


def timed_guided_maps(drawing: Drawing, photo, result: dict) -> list | None:
    """drawing.guided_maps of an analysed photo or frame; its milliseconds go to timings_ms["guided"]."""
    if drawing.guided_features is None:
        return None
    t0 = time.perf_counter()
    maps = drawing.guided_maps(photo, result["faces"])
    ms = (time.perf_counter() - t0) * 1000.0
    result["timings_ms"]["guided"] = ms
    result["timings_ms"]["total"] += ms
    return maps


def analyse_video(pipe, drawing: Drawing, out: Path, writer: "BatchWriter", source, display: str, args, used: set,
                  prior: dict[int, dict], cap=None) -> None:
    """Analyse a video file (Path) or webcam (int) frame by frame; commit each frame, then the video.

    prior: results.jsonl records of this video's frames from an interrupted run ({frame: record}):
    drawn again from their faces, not analysed. cap: ``source`` already opened (the webcam, opened
    before the models load). Each face's first frame gets a crop in faces/ (new_faces, at most
    VIDEO_SHEET_FACES), listed in the closing line's "face_files" for the contact sheet.
    facepack.video.VideoError when it cannot be opened or has no frames.
    """
    from facepack import plots_predict, video
    from facepack.progress import progress

    webcam = isinstance(source, int)
    cap = video.open_capture(source) if cap is None else cap
    info = video.capture_info(cap, webcam=webcam)
    if args.video_out is not None:
        target, name = Path(args.video_out), args.video_out
    else:
        name = next((rec["annotated"] for rec in prior.values()), None) or \
            f"annotated/{annotated_name(display, used, '.mp4')}"
        target = out / name
    fps_out = info["fps"] / args.every if info["fps"] else video.WEBCAM_FPS
    vout, n_frames, n_faces, analysed, previous, face_files = None, 0, 0, 0, [], []
    bar = progress(total=video.frames_to_analyse(info, args.every, args.max_frames), unit="frame", leave=False,
               desc=Path(display).name[-24:], file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    try:
        for index, time_ms, rgb in video.read_frames(cap, args.every, args.max_frames, webcam=webcam):
            record = prior.get(index)
            if record is None:
                result = pipe.analyze(rgb, **analyze_options(args))
                maps = timed_guided_maps(drawing, rgb, result)
                record = {"file": display, "frame": index, "time_ms": round(time_ms, 3), "annotated": name, **result}
                writer.add(record)
                analysed += 1
            else:  # drawn again from results.jsonl (an interrupted run)
                maps = drawing.guided_maps(rgb, record["faces"])
            if vout is None:
                vout = video.VideoOut(target, fps_out, (rgb.shape[1], rgb.shape[0]))
            vout.write(np.asarray(drawing.render(rgb, record["faces"], maps)))
            for i in new_faces(record["faces"], previous)[:VIDEO_SHEET_FACES - len(face_files)]:
                crop = face_file(name, i + 1, index)
                plots_predict.face_thumbnail(rgb, record["faces"][i]).save(out / crop, quality=92)
                face_files.append({"file": crop, "frame": index, "time_ms": record["time_ms"], "face": i + 1,
                                   "label": plots_predict.face_label(i, record["faces"][i])})
            previous = record["faces"]
            n_frames += 1
            n_faces += len(record["faces"])
            bar.update(1)
    except KeyboardInterrupt:  # Ctrl-C ends a webcam run; in a file it stops the batch (--resume continues it)
        if not webcam:
            raise
        print(f"\n{display}: stopped after {n_frames} frame(s)", file=sys.stderr)
    finally:
        bar.close()
        cap.release()
        if vout is not None:
            vout.close()
    seconds = time.perf_counter() - t0
    if n_frames == 0 and not webcam:
        raise video.VideoError(f"{display}: no frames (the video stream holds no frame OpenCV's FFmpeg can decode)")
    writer.add({"file": display, "video": {
        "frames": n_frames, "faces": n_faces, "fps": info["fps"], "every": args.every,
        "width": info["width"], "height": info["height"], "annotated": name if vout is not None else None,
        "annotated_fps": fps_out, "analysed": analysed, "seconds": round(seconds, 3), "face_files": face_files}})
    print(f"{display}: {n_frames} frame(s), {n_faces} face(s) in {seconds:.1f} s "
          f"({n_frames / seconds if seconds > 0 else 0:.2f} frames/s) -> {target}", file=sys.stderr)


def run(args) -> int:
    """Analyse every input photo and video (and the webcam) and write the outputs; returns the exit status."""
    from facepack import bigphoto, video
    from facepack.data.images import ImageDecodeError
    from facepack.pipeline import FacePipeline
    from facepack.progress import progress
    from facepack.runs import resolve_run

    webcam_cap = None
    if args.webcam is not None:  # a camera that does not open is refused before the models load (~10 s)
        try:
            webcam_cap = video.open_capture(args.webcam)
        except video.VideoError as exc:
            raise UsageError(f"--webcam {exc}") from None
    models = {"beauty": str(resolve_run("beauty", args.beauty, root=args.runs)),
              "keypoints": str(resolve_run("keypoints", args.keypoints, root=args.runs))}
    out = make_out(args)
    header = {"facepack_predict": JSONL_FORMAT, "models": models, "options": run_options(args)}
    files, missing = collect_inputs(args.photos, exclude=out)
    if args.webcam is not None:
        files.append((args.webcam, f"webcam:{args.webcam}"))
    if not files:
        print(f"predict.py: no files found in {args.photos}", file=sys.stderr)
        _print_summary(0, 0, missing)
        return 1
    if args.resume:  # a mismatched --resume is refused before the models load
        check_same_run(out / "results.jsonl", read_jsonl(out / "results.jsonl")[0], header)
    pipe = FacePipeline.from_runs(models["beauty"], models["keypoints"], runs_root=args.runs, detector=args.detector)
    # GuidedUnavailable (a ValueError: one line, exit 2) for a non-ReLU backbone, before results are written
    drawing = Drawing(pipe, args)
    writer = BatchWriter(out, header, resume=args.resume)  # UsageError on a mismatched --resume
    # A photo is done once its line is in results.jsonl; a video once its closing {"video"} line is
    # (its frame lines carry "frame"; those of an unfinished video are reused, not recomputed).
    done = collections.Counter(rec["file"] for rec in writer.records if "frame" not in rec)
    used = {Path(rec["annotated"]).name for rec in writer.records if "annotated" in rec}
    todo = []
    for path, display in files:
        if done[display] > 0:
            done[display] -= 1
        else:
            todo.append((path, display))
    (out / "annotated").mkdir(exist_ok=True)
    (out / "faces").mkdir(exist_ok=True)
    if args.heatmap == "guided":
        (out / "heatmaps").mkdir(exist_ok=True)

    def run_video(source, display):
        prior = {rec["frame"]: rec for rec in writer.records if rec.get("file") == display and "frame" in rec
                 and "faces" in rec}
        try:
            analyse_video(pipe, drawing, out, writer, source, display, args, used, prior,
                          cap=webcam_cap if isinstance(source, int) else None)
        except video.VideoError as exc:
            writer.add({"file": display, "error": str(exc)})
        except Exception as exc:  # one bad video must not stop a batch; reported below
            writer.add({"file": display, "error": f"{display}: {exc.__class__.__name__}: {exc}"})

    try:
        for path, display in progress(todo, total=len(files), initial=len(files) - len(todo), unit="file",
                                  desc="predict", file=sys.stderr, dynamic_ncols=True):
            if isinstance(path, int) or video.is_video_name(path):
                run_video(path, display)
                continue
            try:
                result, photo = analyse_photo(pipe, path, display, args)
            except ImageDecodeError as exc:
                if video.probe(path):  # not an image, but a video (an unknown extension)
                    run_video(path, display)
                else:
                    writer.add({"file": display, "error": str(exc)})
                continue
            except Exception as exc:  # one bad photo must not stop a batch; reported below
                writer.add({"file": display, "error": f"{display}: {exc.__class__.__name__}: {exc}"})
                continue
            maps = timed_guided_maps(drawing, photo, result)  # in the decoded photo's pixels, like analyze
            if isinstance(photo, bigphoto.RegionPhoto) and photo.factor != 1:
                bigphoto.scale_result(result, photo.factor, photo.original_hw)
            name = f"annotated/{annotated_name(display, used)}"
            draw_photo(out, photo, result, name, drawing, maps)
            if maps is not None:
                for i, face in enumerate(f for f in result["faces"] if "heatmap" in f):
                    face["guided"] = {"file": guided_file(name, i + 1)}
            if isinstance(photo, bigphoto.RegionPhoto):
                photo.close()
            writer.add({"file": display, "annotated": name, **result})
    finally:
        writer.close()
    return write_summary(out, pipe.runs, header["options"], writer.records, missing)


def _print_summary(n_photos: int, n_faces: int, errors: list[dict], out: Path | None = None,
                   videos: list[dict] = ()) -> None:
    where = f" -> {out}" if out is not None else ""
    video_part = ""
    if videos:
        video_part = (f", {len(videos)} video(s): {sum(v['frames'] for v in videos)} frame(s), "
                      f"{sum(v['faces'] for v in videos)} face(s)")
    print(f"processed {n_photos} photo(s), {n_faces} face(s){video_part}{where}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} file(s) could not be read:", file=sys.stderr)
        for err in errors:
            print(f"  {err['error']}", file=sys.stderr)


def heatmap_argv(argv: list[str]) -> list[str]:
    """``--heatmap`` without a kind after it -> ``--heatmap=gradcam``, so ``--heatmap photos/`` keeps
    meaning Grad-CAM on photos/ (argparse would read photos/ as the flag's value)."""
    return [f"--heatmap={HEATMAP_KINDS[0]}" if a == "--heatmap" and (i + 1 == len(argv) or argv[i + 1] not in HEATMAP_KINDS)
            else a for i, a in enumerate(argv)]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(heatmap_argv(list(sys.argv[1:] if argv is None else argv)))
    try:
        check_args(args)
        status = 0
        if args.kaggle_test is not None:
            from facepack import kaggle

            status = kaggle.main_from_args(args)
        if args.photos or args.webcam is not None:
            status = max(status, run(args))
        return status
    except UsageError as exc:
        print(f"predict.py: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a run folder that is missing or not a model: one line, like usage errors
        print(f"predict.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
