"""Score every face in a batch of photos with the trained models.

    python predict.py PHOTOS... --out DIR [--beauty RUN] [--keypoints RUN] [--heatmap] [--resume]

PHOTOS are files or folders (searched recursively; every file is tried and decoded by its
content, whatever its extension). DIR receives, as each photo finishes:

    results.csv         one row per face: file, face (1, 2, ... as on the page), box, confidence,
                        beauty 0..100 and 1..5, 5 landmarks and keypoints as JSON strings
    results.jsonl       JSON Lines: a first line with the models and options, then one line per
                        input file: {"file", "annotated", "faces", "timings_ms", "image"} (the
                        facepack/pipeline.py format; faces[0] is face 1) or {"file", "error"}
    annotated/*.jpg     each photo with boxes, landmarks, keypoints and scores (Grad-CAM with
                        --heatmap), at most 4096 px on its longer side
    faces/*.jpg         each face as the beauty model frames it (160 px)

and when the batch is complete:

    results.json        every photo with its faces, per-stage milliseconds, the unreadable files
    contact_sheet.png   all faces in input order (faces are not ranked)

Crash safety: rows are appended and flushed photo by photo; after a kill (even kill -9 or an
out-of-memory kill) every finished photo's rows are in results.csv and results.jsonl, and
`--resume` with the same arguments skips them and finishes the batch (results.csv is rewritten
from results.jsonl, which a partial last line cannot corrupt). Without --resume an --out
folder that already holds results is refused.

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
facepack.plots_predict and facepack.kaggle; this file parses, walks the inputs and writes the outputs.)
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CSV_COLUMNS = ["file", "face", "x", "y", "width", "height", "confidence", "beauty", "beauty_1to5",
               "landmarks5", "keypoints", "annotated"]
JSONL_FORMAT = 1  # "facepack_predict" in the first line of results.jsonl
RESULT_FILES = ("results.csv", "results.jsonl")
OPTION_KEYS = ("heatmap", "max_faces", "min_face_size", "min_confidence", "min_box_size", "max_pixels")


class UsageError(ValueError):
    """A command-line mistake, found before any model loads: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from facepack import bigphoto, spec

    parser = argparse.ArgumentParser(
        prog="predict.py", description=__doc__.split("\n(For developers")[0],
        epilog="Example: python predict.py photos/ --out predictions --heatmap",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", metavar="PHOTOS", help="image files or folders (recursive)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted batch in --out: photos already in results.jsonl are skipped")
    parser.add_argument("--beauty", metavar="RUN", default=None,
                        help="beauty run: a folder, a run name, latest or shipped (default: the newest run under --runs trained on real data and not worse than the shipped model, else the shipped model)")
    parser.add_argument("--keypoints", metavar="RUN", default=None,
                        help="keypoint run: a folder, a run name, latest or shipped (default: the newest run under --runs trained on real data and not worse than the shipped model, else the shipped model)")
    parser.add_argument("--runs", metavar="DIR", default=None,
                        help="where to look for runs (default: runs/)")
    parser.add_argument("--heatmap", action="store_true",
                        help="compute Grad-CAM of the beauty score and overlay it on the annotated photos")
    parser.add_argument("--max-faces", type=int, default=None, metavar="N",
                        help="keep at most N faces per photo, most confident first (default: all)")
    parser.add_argument("--min-face-size", type=float, default=None, metavar="PX",
                        help="smallest face the detector looks for, in pixels of the detection image "
                             f"(photos over {spec.DETECT_MAX_SIDE_PX} px are downscaled first; "
                             f"default: {spec.MTCNN['min_face_size_px']})")
    parser.add_argument("--min-confidence", type=float, default=None, metavar="P",
                        help="drop detected faces whose detector confidence (0..1) is below P "
                             f"(default: {spec.FACE_FILTER['min_confidence']})")
    parser.add_argument("--min-box-size", type=float, default=None, metavar="PX",
                        help="drop detected faces whose box's longer side is under PX photo pixels "
                             f"(default: {spec.FACE_FILTER['min_box_size_px']})")
    parser.add_argument("--max-pixels", type=int, default=bigphoto.MAX_PIXELS, metavar="N",
                        help="decode cap, width x height pixels: larger JPEGs are decoded at 1/2, 1/4 or 1/8, "
                             f"other larger files refused (default: {bigphoto.MAX_PIXELS})")
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
    if (args.kaggle_test is None) != (args.kaggle_lookup is None):
        raise UsageError("--kaggle-test and --kaggle-lookup go together: pass both files of the competition")
    kaggle = args.kaggle_test is not None
    for flag, value in (("--kaggle-test", args.kaggle_test), ("--kaggle-lookup", args.kaggle_lookup)):
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{flag}: no such file: {value}")
    if not args.photos and not kaggle:
        raise UsageError("no PHOTOS given: name image files or folders (or --kaggle-test/--kaggle-lookup)")
    if args.photos and not any(Path(p).exists() for p in args.photos):
        raise UsageError(f"no such file or folder: {', '.join(args.photos[:3])}{' ...' if len(args.photos) > 3 else ''}"
                         f" (PHOTOS are image files or folders of them)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: is a file; name a folder (created if missing)")
    held = [name for name in RESULT_FILES if (out / name).exists()]
    if args.photos and held and not args.resume:
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


def run_options(args) -> dict:
    return {key: getattr(args, key) for key in OPTION_KEYS}


# --- Inputs ---------------------------------------------------------------------------------
def collect_inputs(paths: list[str], exclude: Path | None = None) -> tuple[list[tuple[Path, str]], list[dict]]:
    """Files to try as (path, display name), and errors for paths that do not exist.

    Folders are walked recursively in sorted order (hidden files and ``exclude`` skipped);
    display names are relative to the folder given.
    """
    files, errors = [], []
    exclude = exclude.resolve() if exclude is not None else None
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append((path, str(path)))
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


def annotated_name(display: str, used: set) -> str:
    """A unique, flat file name for a photo's annotated copy."""
    stem = str(Path(display).with_suffix("")).replace(os.sep, "__").replace("/", "__").lstrip(".")
    name, k = f"{stem}.jpg", 2
    while name in used:
        name, k = f"{stem}-{k}.jpg", k + 1
    used.add(name)
    return name


def face_file(annotated: str, number: int) -> str:
    """faces/<annotated stem>_<number>.jpg: face ``number`` (from 1) of a photo."""
    return f"faces/{Path(annotated).stem}_{number}.jpg"


# --- Outputs --------------------------------------------------------------------------------
def csv_rows(display: str, faces: list[dict], annotated: str) -> list[dict]:
    """results.csv rows of one photo; ``face`` counts from 1 (as the annotated photos and the page)."""
    rows = []
    for i, face in enumerate(faces):
        b = face["box"]
        rows.append({"file": display, "face": i + 1, "x": round(b["x"], 3), "y": round(b["y"], 3),
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
            for key in ("models", "options"):
                if old_header.get(key) != header[key]:
                    raise UsageError(f"--resume: {self.jsonl_path} was made with other {key} "
                                     f"({old_header.get(key)} vs now {header[key]}); use the same arguments")
            with open(self.jsonl_path, "r+b") as fh:
                fh.truncate(end)
        else:
            _replace(self.jsonl_path, (json.dumps(header) + "\n").encode())
        write_csv(self.csv_path, [row for rec in self.records if "faces" in rec
                                  for row in csv_rows(rec["file"], rec["faces"], rec["annotated"])])
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")
        self._csv = open(self.csv_path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=CSV_COLUMNS)

    def add(self, record: dict) -> None:
        """Commit one input file's outcome: its CSV rows, then its JSON line (the commit point)."""
        if "faces" in record:
            self._writer.writerows(csv_rows(record["file"], record["faces"], record["annotated"]))
            _sync(self._csv)
        self._jsonl.write(json.dumps(record) + "\n")
        _sync(self._jsonl)
        self.records.append(record)

    def close(self) -> None:
        self._jsonl.close()
        self._csv.close()


def analyse_photo(pipe, path: Path, display: str, args) -> dict:
    """Decode (by region when large), analyse, map to photo pixels: the pipeline result + the photo."""
    from facepack import bigphoto

    t0 = time.perf_counter()
    photo = bigphoto.open_photo(path, name=display, max_pixels=args.max_pixels)
    decode_ms = (time.perf_counter() - t0) * 1000.0
    result = pipe.analyze(photo, heatmaps=args.heatmap, max_faces=args.max_faces,
                          min_face_size=args.min_face_size, min_confidence=args.min_confidence,
                          min_box_size=args.min_box_size)
    result["timings_ms"]["decode"] += decode_ms  # the file was decoded here, not in analyze
    result["timings_ms"]["total"] += decode_ms
    return result, photo


def draw_photo(out: Path, photo, result: dict, annotated: str, heatmap: bool) -> None:
    """annotated/<name> and faces/<name>_<n>.jpg of one analysed photo."""
    from facepack import plots_predict
    from facepack.bigphoto import RegionPhoto

    factor = photo.factor if isinstance(photo, RegionPhoto) else 1
    faces = plots_predict.scale_faces(result["faces"], 1.0 / factor) if factor != 1 else result["faces"]
    small, s = plots_predict.downscaled(photo)
    drawn = plots_predict.scale_faces(faces, s) if s != 1.0 else faces
    plots_predict.annotate(small, drawn, heatmaps=heatmap).save(out / annotated, quality=92)
    for i, face in enumerate(faces):
        plots_predict.face_thumbnail(photo, face).save(out / face_file(annotated, i + 1), quality=92)


def write_summary(out: Path, pipe_runs: dict, options: dict, records: list[dict], missing: list[dict]) -> int:
    """results.json and contact_sheet.png of the whole batch; returns the exit status."""
    from PIL import Image

    from facepack import plots_predict

    photos = [r for r in records if "faces" in r]
    errors = missing + [r for r in records if "error" in r]
    n_faces = sum(len(p["faces"]) for p in photos)
    summary = {"photos": len(photos), "faces": n_faces, "unreadable": len(errors)}
    _replace(out / "results.json", json.dumps({"models": pipe_runs, "options": options, "summary": summary,
                                               "photos": photos, "errors": errors}, indent=1).encode())
    thumbs = []
    for p in photos:
        for i, face in enumerate(p["faces"]):
            with Image.open(out / face_file(p["annotated"], i + 1)) as thumb:
                thumbs.append({"thumb": thumb.convert("RGB"),
                               "label": f"{plots_predict.face_label(i, face)}\n{p['file']}"})
    sheet = plots_predict.contact_sheet(thumbs)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    _replace(out / "contact_sheet.png", buf.getvalue())
    _print_summary(len(photos), n_faces, errors, out)
    return 0 if photos else 1


def run(args) -> int:
    """Analyse every input photo and write the outputs; returns the exit status."""
    from tqdm import tqdm

    from facepack import bigphoto
    from facepack.data.images import ImageDecodeError
    from facepack.pipeline import FacePipeline
    from facepack.runs import resolve_run

    models = {"beauty": str(resolve_run("beauty", args.beauty, root=args.runs)),
              "keypoints": str(resolve_run("keypoints", args.keypoints, root=args.runs))}
    out = make_out(args)
    header = {"facepack_predict": JSONL_FORMAT, "models": models, "options": run_options(args)}
    files, missing = collect_inputs(args.photos, exclude=out)
    if not files:
        print(f"predict.py: no files found in {args.photos}", file=sys.stderr)
        _print_summary(0, 0, missing)
        return 1
    writer = BatchWriter(out, header, resume=args.resume)  # UsageError on a mismatched --resume
    done = collections.Counter(rec["file"] for rec in writer.records)
    used = {Path(rec["annotated"]).name for rec in writer.records if "annotated" in rec}
    todo = []
    for path, display in files:
        if done[display] > 0:
            done[display] -= 1
        else:
            todo.append((path, display))
    pipe = FacePipeline.from_runs(models["beauty"], models["keypoints"], runs_root=args.runs)
    (out / "annotated").mkdir(exist_ok=True)
    (out / "faces").mkdir(exist_ok=True)
    try:
        for path, display in tqdm(todo, total=len(files), initial=len(files) - len(todo), unit="photo",
                                  desc="predict", file=sys.stderr, dynamic_ncols=True):
            try:
                result, photo = analyse_photo(pipe, path, display, args)
            except ImageDecodeError as exc:
                writer.add({"file": display, "error": str(exc)})
                continue
            except Exception as exc:  # one bad photo must not stop a batch; reported below
                writer.add({"file": display, "error": f"{display}: {exc.__class__.__name__}: {exc}"})
                continue
            if isinstance(photo, bigphoto.RegionPhoto) and photo.factor != 1:
                bigphoto.scale_result(result, photo.factor, photo.original_hw)
            name = f"annotated/{annotated_name(display, used)}"
            draw_photo(out, photo, result, name, args.heatmap)
            if isinstance(photo, bigphoto.RegionPhoto):
                photo.close()
            writer.add({"file": display, "annotated": name, **result})
    finally:
        writer.close()
    return write_summary(out, pipe.runs, header["options"], writer.records, missing)


def _print_summary(n_photos: int, n_faces: int, errors: list[dict], out: Path | None = None) -> None:
    where = f" -> {out}" if out is not None else ""
    print(f"processed {n_photos} photo(s), {n_faces} face(s){where}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} file(s) could not be read:", file=sys.stderr)
        for err in errors:
            print(f"  {err['error']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
        status = 0
        if args.kaggle_test is not None:
            from facepack import kaggle

            status = kaggle.main_from_args(args)
        if args.photos:
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
