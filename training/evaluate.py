"""Evaluate a trained run on a dataset: the numbers users choose a model by.

Beauty:    Pearson correlation (PC), MAE, RMSE and mean signed error on the 1..5 scale.
Keypoints: NME (inter-ocular, outer eye corners) mean and median, failure rate at NME > 0.10 and
           mean error in pixels, (a) with the crop from the ground-truth landmarks and, with
           --end-to-end, (b) from the MTCNN detector as the page does it (a face the detector
           misses counts as a failure with NME = inf).

Which data: --data, else the run's own dataset, found from run.json by its path relative to the
run folder, then relative to the project, then the path recorded at training time, then by its
folder name under $FACEPACK_DATA (a folder of datasets, e.g. ../shared/datasets), then relative to
the checkout this clone was made from (`git clone /work/main elsewhere`: its remote "origin" is a
local folder). Not found: a one-line error naming --data and FACEPACK_DATA. A
keypoint folder holding several CSVs (training and test) is refused: name the CSV.
Which images (--part): the run's held-out part (re-derived from its seed and fraction; with the
release layout, the protocol's test part of --split) when the data is the run's own, else every
labelled image ("all"). --part held-out on data the run did not train on is refused (its
held-out part is defined only there).
Beauty metrics are also reported per SCUT-FBP5500 group (file-name prefixes AF/AM/CF/CM) where
the file names carry them.

Usage:
    python training/evaluate.py --model runs/beauty/20261122-164316 --data ~/SCUT-FBP5500_v2 --split 60-40
    python training/evaluate.py --cv-summary runs/beauty_cv/20261130-225054   # mean +- std of finished folds
    python training/evaluate.py --model models/shipped/keypoints \
        --data ../shared/datasets/youtube-faces-keypoints-train/training_frames_keypoints.csv --end-to-end

Writes a fresh folder (default runs/eval/<kind>/<timestamp>/; --out must be new or empty):
metrics.json and plots (scatter + error histogram, or CED curves + histogram).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from facepack import spec, tfquiet  # noqa: E402

tfquiet.install()  # TensorFlow's cuDNN/cuBLAS "factory" lines at import are dropped (facepack/tfquiet.py)

PARTS = ("held-out", "all")
DATA_ENV = "FACEPACK_DATA"  # a folder holding datasets by folder name (the one run.json records)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", help="run folder: run.json and its model files (model.keras, or model.config.json + "
                   "model.weights.json + model_NNNNN.weights.h5 shards: facepack/runs.py), e.g. models/shipped/keypoints")
    p.add_argument("--cv-summary", metavar="CV_DIR",
                   help="beauty: summarise the finished folds of a cross-validation folder (runs/beauty_cv/<stamp>/ "
                   "of training/train_beauty_cached.py --cv-all: fold*/run.json or probe.json) into its cv.json and "
                   "cv.md, mean +- std per metric and group; no model is run")
    p.add_argument("--data", help="dataset (default: the one the run was trained on)")
    p.add_argument("--split", help="beauty, release layout: 60-40 or cv1..cv5 (default: the run's)")
    p.add_argument("--part", choices=PARTS, help="which images (default: held-out on the run's own data, "
                   "all on other data)")
    p.add_argument("--end-to-end", action="store_true", help="keypoints: also crop from the MTCNN detector")
    p.add_argument("--val-split", choices=["frame", "person"], help="keypoints: which held-out part (default: the "
                   "run's own; runs from before person splits held out random frames)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="output folder, new or empty (default: a fresh runs/eval/<kind>/<timestamp>/)")
    p.add_argument("--skip-bad", action="store_true")
    return p.parse_args(argv)


GIT_TIMEOUT_S = 10.0  # seconds for `git config` (a local file read; more means something is wrong)


def origin_checkout(project_root: Path) -> Path | None:
    """The local folder ``project_root`` was cloned from (its git remote "origin", as
    ``git config --get remote.origin.url`` gives it with includes, is a path or a file:// URL of an
    existing folder), else None: also when ``project_root`` has no .git (folder or file) or git is
    missing, fails or takes over GIT_TIMEOUT_S."""
    import subprocess

    root = Path(project_root)
    if not (root / ".git").exists():  # else git would answer for an enclosing repository
        return None
    try:
        url = subprocess.run(["git", "-C", str(root), "config", "--get", "remote.origin.url"], capture_output=True,
                             text=True, timeout=GIT_TIMEOUT_S, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    url = url[len("file://"):] if url.startswith("file://") else url
    if not url or "://" in url or ":" in url.split("/")[0]:  # https://..., git@host:...: not a folder here
        return None
    folder = (root / url).resolve() if not Path(url).is_absolute() else Path(url)
    folder = folder.parent if folder.name == ".git" else folder
    return folder if folder.is_dir() and folder.resolve() != root.resolve() else None


def data_candidates(run_dir: Path, info: dict) -> list[Path]:
    """Where the run's own dataset may be, in order (see the module docstring: "Which data")."""
    from facepack.runs import PROJECT_ROOT

    ds = info.get("dataset", {})
    args_data = info.get("args", {}).get("data")
    if args_data and str(args_data).endswith(".npz"):
        args_data = None  # a packed file: its source dataset is what run.json records
    candidates = []
    if ds.get("path_from_run"):
        candidates.append(Path(run_dir) / ds["path_from_run"])
    if ds.get("path_from_project"):
        candidates.append(PROJECT_ROOT / ds["path_from_project"])
    if ds.get("path"):
        candidates.append(Path(ds["path"]))
    if args_data:
        candidates.append(Path(args_data))
    recorded = ds.get("path_from_project") or ds.get("path") or args_data
    if recorded and os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]).expanduser() / Path(recorded).name)
    origin = origin_checkout(PROJECT_ROOT)
    if origin is not None:
        for rel in (ds.get("path_from_project"), ds.get("path"), args_data):
            if rel and not Path(rel).is_absolute():
                candidates.append(origin / rel)
    return list(dict.fromkeys(candidates))


def recorded_data(run_dir: Path, info: dict) -> Path | None:
    """The run's own dataset on this machine: the first of data_candidates that exists; None if
    none does. A run trained on a packed file records its source dataset, which is what is used."""
    for path in data_candidates(run_dir, info):
        if path.exists():
            return path.resolve()
    return None


def _data_source(run_dir: Path, info: dict, data: str | None) -> tuple[Path, bool]:
    """(dataset to evaluate on, whether it was given with --data)."""
    if data:
        if not Path(data).exists():
            raise ValueError(f"--data: {data} does not exist")
        return Path(data), True
    found = recorded_data(run_dir, info)
    if found is None:
        ds = info.get("dataset", {})
        recorded = ds.get("path_from_project") or ds.get("path")
        name = Path(recorded).name if recorded else "its folder"
        raise ValueError(f"--data: give the dataset to evaluate on (the run's own, recorded as {recorded!r}, is not on "
                         f"this machine: looked in {len(data_candidates(run_dir, info))} places); or set {DATA_ENV} "
                         f"to the folder that holds {name!r}")
    return found, False


def _same_place(root: Path, run_dir: Path, info: dict) -> bool:
    """Whether ``root`` is the dataset folder run.json records (for runs without a fingerprint)."""
    recorded = recorded_data(run_dir, info)
    if recorded is None:
        return False
    recorded = recorded if recorded.is_dir() else recorded.parent
    return Path(root).resolve() == recorded.resolve()


def _trainer_cfg(trainer, info: dict, source: Path, split: str | None, skip_bad: bool) -> dict:
    """The run's own configuration (trainer defaults under it), pointed at the data to evaluate."""
    cfg = dict(trainer.DEFAULTS)
    cfg.update(info.get("args", {}))
    cfg.update({"data": str(source), "skip_bad": skip_bad, "max_train": None})
    if split:
        cfg["split"] = split
    cfg.setdefault("split", "60-40")
    cfg.setdefault("labels", None)
    return cfg


def _choose_part(part: str | None, own: bool, what: str, run_data: str) -> str:
    """--part, defaulted and checked: held-out exists only on the data the run trained on."""
    if part is None:
        return "held-out" if own else "all"
    if part == "held-out" and not own:
        raise ValueError(f"--part held-out: {what} is not the data this run trained on ({run_data}), so it has no "
                         "held-out part; pass --part all to evaluate on all of it")
    return part


def evaluate_beauty(model, info: dict, args, run_dir: Path) -> tuple[dict, dict]:
    from facepack.data.scut import dataset_fingerprint
    from facepack.data.tfdata import beauty_dataset
    from facepack.models.beauty import expected_score, score_to_1to5
    from training import train_beauty

    source, given = _data_source(run_dir, info, args.data)
    cfg = _trainer_cfg(train_beauty, info, source, args.split, args.skip_bad)
    train, val, data, held_out = train_beauty.load_data(cfg)
    if data.test:  # release layout: the protocol's own test part, whatever the run trained on
        part = args.part or "held-out"
    else:
        recorded = info.get("dataset", {}).get("fingerprint")
        own = (dataset_fingerprint(list(train) + list(val)) == recorded if recorded
               else _same_place(data.root, run_dir, info))
        part = _choose_part(args.part, own, f"{data.root} ({data.split})",
                            info.get("dataset", {}).get("path", "?"))
    samples = val if part == "held-out" else train + val
    size = info["input_size"]
    # the run's own framing: face crops (--crop face, the page's crop), else the whole image (runs
    # from before --crop record no crop: they trained on whole images)
    face = info.get("args", {}).get("crop") == "face"
    squares, _, crops = train_beauty.crop_squares(cfg, samples, []) if face else (None, None, None)
    t0 = time.perf_counter()
    probs = model.predict(beauty_dataset(samples, size, args.batch_size, training=False, cache=False,
                                         squares=squares), verbose=0)
    seconds = time.perf_counter() - t0
    pred = score_to_1to5(expected_score(probs))
    true = np.array([s.score for s in samples])
    metrics = train_beauty.held_out_metrics(pred, true, [Path(s.path).name for s in samples])
    metrics["ms_per_image"] = 1000 * seconds / len(samples)
    where = {"dataset": data.name, "path": str(data.root), "layout": data.layout, "split": data.split,
             "part": held_out if part == "held-out" else "all labelled images", "n": len(samples),
             "synthetic": data.synthetic, "skipped": data.skipped,
             "crop": crops or {"rule": "whole image resized"}}
    return metrics, {"pred": pred, "true": true, "where": where}


def _end_to_end(model, data, indices, info, fmt) -> np.ndarray:
    """NME per face with the crop from the detector (the page's path); inf where it misses."""
    from facepack import pipeline
    from facepack.data.images import load_rgb
    from facepack.detect.mtcnn_detector import build_detector
    from facepack.metrics import nme_per_face
    from facepack.progress import progress

    detector = build_detector()
    size = info["input_size"]
    out = []
    for i in progress(indices, desc="end to end (MTCNN + keypoints)", unit="face"):
        src = data.images[i]
        rgb = load_rgb(src)
        faces = pipeline.detect(detector, rgb)
        truth = data.points[i]
        if not faces:
            out.append(np.inf)
            continue
        # The detection whose box centre is nearest the ground-truth centre is "this face".
        centre = np.nanmean(truth, axis=0)
        face = min(faces, key=lambda f: np.hypot(f["box"]["x"] + f["box"]["width"] / 2 - centre[0],
                                                 f["box"]["y"] + f["box"]["height"] / 2 - centre[1]))
        crops, squares = pipeline.crop(rgb, [face], "keypoints", size, keypoint_format=fmt)
        pts = np.asarray(pipeline.keypoints(model, crops, squares)[0], dtype=np.float64)
        out.append(float(nme_per_face(pts[None], truth[None].astype(np.float64), fmt)[0]))
    return np.array(out)


def _keypoint_csv(source: Path, given: bool, info: dict) -> Path:
    """The CSV to read: a folder given with --data must hold exactly one; the run's own folder
    means the CSV it trained on (run.json "csv", else the trainer's choice)."""
    from facepack.data.keypoints import find_csvs

    if not source.is_dir():
        return source
    csvs = find_csvs(source)
    if given and len(csvs) > 1:
        raise ValueError(f"--data: {source} holds {len(csvs)} keypoint CSVs ({', '.join(p.name for p in csvs)}); "
                         f"name the one to evaluate on, e.g. --data {source / csvs[-1].name}")
    recorded = info.get("dataset", {}).get("csv")
    if not given and recorded and (source / recorded).is_file():
        return source / recorded
    return source  # one CSV, or the run's own folder read as the trainer read it


def evaluate_keypoints(model, info: dict, args, run_dir: Path) -> tuple[dict, dict]:
    from facepack.data.keypoints import keypoint_fingerprint
    from facepack.data.tfdata import keypoint_dataset
    from facepack.metrics import keypoint_metrics, nme_per_face
    from training import train_keypoints

    source, given = _data_source(run_dir, info, args.data)
    cfg = _trainer_cfg(train_keypoints, info, _keypoint_csv(source, given, info), None, args.skip_bad)
    cfg["val_split"] = args.val_split or info.get("args", {}).get("val_split") or "frame"  # train_keypoints.load_data
    data, train_idx, val_idx = train_keypoints.load_data(cfg)
    recorded = info.get("dataset", {})
    if recorded.get("fingerprint"):
        own = keypoint_fingerprint(data) == recorded["fingerprint"]
    else:  # older runs (no fingerprint): the run's own folder, and its row count
        own = (len(data.images) == recorded.get("train", -1) + recorded.get("validation", -1)
               and _same_place(data.root, run_dir, info))
    part = _choose_part(args.part, own, str(data.csv or data.root), recorded.get("path", "?"))
    indices = val_idx if part == "held-out" else np.arange(len(data.images))
    size = info["input_size"]
    t0 = time.perf_counter()
    units = model.predict(keypoint_dataset(data, indices, size, args.batch_size, training=False, cache=False),
                          verbose=0).reshape(len(indices), -1, 2).astype(np.float64)
    seconds = time.perf_counter() - t0
    true_units, squares = train_keypoints.crop_targets(data, indices)
    to_px = lambda u: squares[:, None, :2] + u * squares[:, None, 2:3]  # noqa: E731
    pred_px, true_px = to_px(units), to_px(true_units)
    metrics = {"ground_truth_crop": keypoint_metrics(pred_px, true_px, data.format)}
    metrics["ground_truth_crop"]["ms_per_face"] = 1000 * seconds / len(indices)
    extra = {"nme": nme_per_face(pred_px, true_px, data.format)}
    if args.end_to_end:
        e2e = _end_to_end(model, data, indices, info, data.format)
        found = np.isfinite(e2e)
        metrics["end_to_end"] = {
            "nme_mean_found": float(np.nanmean(e2e[found])) if found.any() else None,
            "nme_median_all": float(np.median(e2e)),
            "failure_rate": float(np.mean(~(e2e <= spec.KEYPOINTS["failure_nme"]))),
            "detector_missed": int((~found).sum()), "n": int(len(e2e))}
        extra["nme_e2e"] = e2e
    where = {"dataset": data.name, "path": str(data.root), "csv": str(data.csv) if data.csv else None,
             "format": data.format, "part": "held-out by the run's seed" if part == "held-out" else "all",
             "val_split": cfg["val_split"] if part == "held-out" else None,
             "n": int(len(indices)), "synthetic": data.synthetic, "skipped": data.skipped}
    extra["where"] = where
    return metrics, extra


def check_out(out: str | None) -> None:
    """--out must be a new or empty folder (checked before any work)."""
    path = Path(out) if out is not None else None
    if path is not None and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"--out: {path} already exists and is not an empty folder; name a new folder "
                         "(evaluate.py never overwrites an earlier evaluation)")


def fresh_out(out: str | None, kind: str) -> Path:
    """The output folder: --out (new or empty), else a new runs/eval/<kind>/<timestamp>/, so an
    existing evaluation (e.g. the tracked models/shipped/*/eval/) is never overwritten."""
    from facepack import runs
    from facepack.training import new_run_dir

    check_out(out)
    if out is None:
        return new_run_dir(kind, root=Path(runs.RUNS_ROOT) / "eval")
    Path(out).mkdir(parents=True, exist_ok=True)
    return Path(out)


def cv_summary(folder: Path) -> Path:
    """cv.json + cv.md of the finished folds in ``folder`` (train_beauty_cached.py --cv-all layout)."""
    from training import train_beauty_cached

    infos = {}
    for fold in sorted(Path(folder).glob("fold*")):
        for name in ("run.json", "probe.json"):
            if (fold / name).is_file() and fold.name[4:].isdigit():
                infos[int(fold.name[4:])] = json.loads((fold / name).read_text())
                break
    if not infos:
        raise ValueError(f"--cv-summary: {folder} has no finished fold (fold*/run.json or fold*/probe.json)")
    first = infos[min(infos)]
    cfg = dict(first.get("args", {}), probe="probe" in first)
    summary = train_beauty_cached.cv_summary(infos, cfg)
    summary["runs"] = {k: str(Path(folder) / f"fold{k}") for k in infos}
    from facepack.training import write_json

    write_json(Path(folder) / "cv.json", summary)
    title = f"Beauty CV, {len(infos)} of {train_beauty_cached.CV_FOLDS} folds finished: {Path(folder).name}"
    (Path(folder) / "cv.md").write_text(train_beauty_cached.cv_markdown(summary, title))
    print((Path(folder) / "cv.md").read_text())
    print(f"wrote {folder}/cv.json and cv.md")
    return Path(folder)


def main(argv=None) -> Path:
    from facepack import plots
    from facepack.metrics import cumulative_error_curve
    from facepack.runs import load_run, resolve_run

    args = parse_args(argv)
    if args.cv_summary:
        return cv_summary(Path(args.cv_summary))
    if not args.model:
        raise ValueError("--model RUN is required (or --cv-summary CV_DIR)")
    run_dir = resolve_run("beauty", args.model, flag="--model")
    model, info = load_run(run_dir)
    check_out(args.out)
    if info["model"] == "beauty":
        metrics, extra = evaluate_beauty(model, info, args, run_dir)
        out = fresh_out(args.out, "beauty")
        plots.score_scatter(extra["pred"], extra["true"], out / "scatter.png", metrics,
                            title=f"{info['backbone']}@{info['input_size']} on {extra['where']['dataset']}")
        plots.error_histogram(extra["pred"] - extra["true"], out / "errors.png", "predicted - true (1..5)",
                              title="beauty error distribution")
        line = (f"PC {metrics['pc']:.4f}  MAE {metrics['mae']:.4f}  RMSE {metrics['rmse']:.4f}  "
                f"mean signed error {metrics['mean_signed_error']:+.4f}  (1..5, n={metrics['n']})")
        for g, m in metrics.get("groups", {}).items():
            line += (f"\n  {g}: PC {m['pc']:.4f}  MAE {m['mae']:.4f}  RMSE {m['rmse']:.4f}  "
                     f"mean signed error {m['mean_signed_error']:+.4f}  (n={m['n']})")
    else:
        metrics, extra = evaluate_keypoints(model, info, args, run_dir)
        out = fresh_out(args.out, "keypoints")
        curves = {"crop from ground truth": cumulative_error_curve(extra["nme"])}
        if "nme_e2e" in extra:
            curves["end to end (MTCNN)"] = cumulative_error_curve(extra["nme_e2e"])
        plots.ced_curve(curves, out / "ced.png")
        plots.error_histogram(extra["nme"], out / "errors.png", "NME (inter-ocular)", title="keypoint NME per face")
        g = metrics["ground_truth_crop"]
        line = (f"NME mean {g['nme_mean']:.4f} median {g['nme_median']:.4f} failure {g['failure_rate']:.3f} "
                f"mean error {g['mean_error_px']:.2f} px (n={g['n']})")
        if "end_to_end" in metrics:
            e = metrics["end_to_end"]
            line += (f"; end to end: median NME {e['nme_median_all']:.4f}, failure {e['failure_rate']:.3f}, "
                     f"detector missed {e['detector_missed']}/{e['n']}")
        line += ("\nmirror averaging: off (the model alone; predict.py, the page, the bot and Kaggle average each crop "
                 "with its mirror by default, spec.KEYPOINTS mirror_average: bench/bench_keypoints_mirror.py)")
    report = {"model": str(run_dir), "kind": info["model"], "backbone": info.get("backbone"),
              "input_size": info.get("input_size"), "evaluated_on": extra["where"], "metrics": metrics}
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    for row in extra["where"]["skipped"]:
        print(f"skipped: {row['file']}:{row['line']}: {row['reason']}")
    print(f"evaluated on {extra['where']['dataset']} ({extra['where']['part']}, n={extra['where']['n']})")
    print(line)
    print(f"wrote {out}/metrics.json and plots")
    return out


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
