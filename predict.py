"""Score every face in a batch of photos with the trained models.

    python predict.py PHOTOS... --out DIR [--beauty RUN] [--keypoints RUN] [--heatmap]

PHOTOS are files or folders (searched recursively; every file is tried and decoded by its
content, whatever its extension). DIR receives:

    results.csv         one row per face: file, face, box, confidence, beauty 0..100 and 1..5,
                        5 landmarks and keypoints as JSON strings
    results.json        every photo with its faces (facepack/pipeline.py format), per-stage
                        milliseconds, and the files that could not be read
    annotated/*.jpg     each photo with boxes, landmarks, keypoints and scores (Grad-CAM with --heatmap)
    contact_sheet.png   all faces, highest beauty score first

Models: the latest runs under runs/ (or the shipped ones) unless --beauty/--keypoints name a run
folder. Exit status: 0 when at least one photo was processed, 1 when none could be, 2 on a usage
or model error; unreadable files are listed at the end and in results.json.

(For developers: the work is done by facepack.pipeline.FacePipeline and facepack.plots_predict;
this file only parses, walks the inputs and writes the outputs.)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CSV_COLUMNS = ["file", "face", "x", "y", "width", "height", "confidence", "beauty", "beauty_1to5",
               "landmarks5", "keypoints", "annotated"]


def build_parser() -> argparse.ArgumentParser:
    from facepack import spec

    parser = argparse.ArgumentParser(
        prog="predict.py", description=__doc__.split("\n(For developers")[0],
        epilog="Example: python predict.py photos/ --out predictions --heatmap",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", metavar="PHOTOS", help="image files or folders (recursive)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--beauty", metavar="RUN", default=None,
                        help="beauty run folder (default: latest under --runs, else the shipped model)")
    parser.add_argument("--keypoints", metavar="RUN", default=None,
                        help="keypoint run folder (default: latest under --runs, else the shipped model)")
    parser.add_argument("--runs", metavar="DIR", default=None, help="where to look for the latest runs (default: runs/)")
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
    return parser


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


# --- Outputs --------------------------------------------------------------------------------
def csv_rows(display: str, faces: list[dict], annotated: str) -> list[dict]:
    rows = []
    for i, face in enumerate(faces):
        b = face["box"]
        rows.append({"file": display, "face": i, "x": round(b["x"], 3), "y": round(b["y"], 3),
                     "width": round(b["width"], 3), "height": round(b["height"], 3),
                     "confidence": round(face["score"], 6),
                     "beauty": round(face["beauty"]["score"], 4) if "beauty" in face else "",
                     "beauty_1to5": round(face["beauty"]["score_1to5"], 4) if "beauty" in face else "",
                     "landmarks5": json.dumps({k: [round(v, 3) for v in p] for k, p in face["landmarks5"].items()}),
                     "keypoints": json.dumps([[round(x, 3), round(y, 3)] for x, y in face.get("keypoints", [])]),
                     "annotated": annotated})
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def run(args) -> int:
    """Analyse every input photo and write the outputs; returns the exit status."""
    from tqdm import tqdm

    from facepack import plots_predict
    from facepack.data.images import ImageDecodeError
    from facepack.pipeline import FacePipeline, decode

    out = Path(args.out)
    files, errors = collect_inputs(args.photos, exclude=out)
    if not files:
        print(f"predict.py: no files found in {args.photos}", file=sys.stderr)
        _print_summary(0, 0, errors)
        return 1
    try:
        pipe = FacePipeline.from_runs(args.beauty, args.keypoints, runs_root=args.runs)
    except ValueError as exc:
        print(f"predict.py: error: {exc}", file=sys.stderr)
        return 2
    (out / "annotated").mkdir(parents=True, exist_ok=True)
    photos, rows, thumbs, used = [], [], [], set()
    for path, display in tqdm(files, unit="photo", desc="predict", file=sys.stderr):
        try:
            t0 = time.perf_counter()
            rgb = decode(path, name=display)
            decode_ms = (time.perf_counter() - t0) * 1000.0
            result = pipe.analyze(rgb, heatmaps=args.heatmap, max_faces=args.max_faces,
                                  min_face_size=args.min_face_size, min_confidence=args.min_confidence,
                                  min_box_size=args.min_box_size)
            result["timings_ms"]["decode"] += decode_ms  # the file was decoded here, not in analyze
            result["timings_ms"]["total"] += decode_ms
        except ImageDecodeError as exc:
            errors.append({"file": display, "error": str(exc)})
            continue
        except Exception as exc:  # one bad photo must not stop a batch; reported below
            errors.append({"file": display, "error": f"{display}: {exc.__class__.__name__}: {exc}"})
            continue
        name = annotated_name(display, used)
        plots_predict.annotate(rgb, result["faces"], heatmaps=args.heatmap).save(out / "annotated" / name, quality=92)
        photos.append({"file": display, "annotated": f"annotated/{name}", **result})
        rows += csv_rows(display, result["faces"], f"annotated/{name}")
        for i, face in enumerate(result["faces"]):
            score = face.get("beauty", {}).get("score")
            thumbs.append({"thumb": plots_predict.face_thumbnail(rgb, face), "score": score,
                           "label": f"{plots_predict.face_label(i, face)}\n{display}"})
    write_csv(out / "results.csv", rows)
    summary = {"photos": len(photos), "faces": len(rows), "unreadable": len(errors)}
    (out / "results.json").write_text(json.dumps(
        {"models": pipe.runs, "options": {"heatmap": args.heatmap, "max_faces": args.max_faces,
                                          "min_face_size": args.min_face_size,
                                          "min_confidence": args.min_confidence, "min_box_size": args.min_box_size},
         "summary": summary, "photos": photos, "errors": errors}, indent=1))
    plots_predict.contact_sheet(thumbs).save(out / "contact_sheet.png")
    _print_summary(len(photos), len(rows), errors, out)
    return 0 if photos else 1


def _print_summary(n_photos: int, n_faces: int, errors: list[dict], out: Path | None = None) -> None:
    where = f" -> {out}" if out is not None else ""
    print(f"processed {n_photos} photo(s), {n_faces} face(s){where}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} file(s) could not be read:", file=sys.stderr)
        for err in errors:
            print(f"  {err['error']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_faces is not None and args.max_faces < 1:
        print(f"predict.py: error: --max-faces must be >= 1, got {args.max_faces}", file=sys.stderr)
        return 2
    if args.min_face_size is not None and not args.min_face_size > 0:
        print(f"predict.py: error: --min-face-size must be > 0 pixels, got {args.min_face_size}", file=sys.stderr)
        return 2
    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        print(f"predict.py: error: --min-confidence must be from 0 to 1, got {args.min_confidence}", file=sys.stderr)
        return 2
    if args.min_box_size is not None and not 0.0 <= args.min_box_size < float("inf"):
        print(f"predict.py: error: --min-box-size must be >= 0 pixels, got {args.min_box_size}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
