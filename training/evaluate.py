"""Evaluate a trained run on a dataset: the numbers users choose a model by.

Beauty:    Pearson correlation (PC), MAE and RMSE on the 1..5 scale.
Keypoints: NME (inter-ocular, outer eye corners) mean and median, failure rate at NME > 0.10 and
           mean error in pixels, (a) with the crop from the ground-truth landmarks and, with
           --end-to-end, (b) from the MTCNN detector as the page does it (a face the detector
           misses counts as a failure with NME = inf).

Which images: with the release layout, the protocol's test part (--split); with a reduced layout
or a keypoint dataset, the part the run held out (re-derived from the run's own seed and
fraction), or everything with --part all (e.g. an official test split the run never saw).

Usage:
    python training/evaluate.py --model runs/beauty/20261122-164316 --data ~/SCUT-FBP5500_v2 --split 60-40
    python training/evaluate.py --model models/shipped/keypoints --data ../shared/datasets/youtube-faces-keypoints-train --end-to-end

Writes <out>/metrics.json and plots (scatter + error histogram, or CED curves + histogram).
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

from facepack import spec  # noqa: E402

PARTS = ("held-out", "all")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", required=True, help="run folder (model.keras + run.json)")
    p.add_argument("--data", help="dataset (default: the one the run was trained on)")
    p.add_argument("--split", help="beauty, release layout: 60-40 or cv1..cv5 (default: the run's)")
    p.add_argument("--part", choices=PARTS, default="held-out", help="which images (default: held-out)")
    p.add_argument("--end-to-end", action="store_true", help="keypoints: also crop from the MTCNN detector")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="output folder (default: <run>/eval/)")
    p.add_argument("--skip-bad", action="store_true")
    return p.parse_args(argv)


def _trainer_cfg(trainer, info: dict, data: str | None, split: str | None, skip_bad: bool) -> dict:
    """The run's own configuration (trainer defaults under it), pointed at the data to evaluate."""
    cfg = dict(trainer.DEFAULTS)
    cfg.update(info.get("args", {}))
    source = data or cfg.get("data")
    if not source or str(source).endswith(".npz"):
        source = data or info.get("dataset", {}).get("path")
    if not source or not Path(source).exists():
        raise ValueError(f"--data: give the dataset to evaluate on (the run's own, {source!r}, is not here)")
    cfg.update({"data": source, "skip_bad": skip_bad, "max_train": None})
    if split:
        cfg["split"] = split
    cfg.setdefault("split", "60-40")
    cfg.setdefault("labels", None)
    return cfg


def evaluate_beauty(model, info: dict, args) -> tuple[dict, dict]:
    from facepack.data.tfdata import beauty_dataset
    from facepack.metrics import beauty_metrics
    from facepack.models.beauty import expected_score, score_to_1to5
    from training import train_beauty

    cfg = _trainer_cfg(train_beauty, info, args.data, args.split, args.skip_bad)
    train, val, data, held_out = train_beauty.load_data(cfg)
    samples = val if args.part == "held-out" else train + val
    size = info["input_size"]
    t0 = time.perf_counter()
    probs = model.predict(beauty_dataset(samples, size, args.batch_size, training=False, cache=False), verbose=0)
    seconds = time.perf_counter() - t0
    pred = score_to_1to5(expected_score(probs))
    true = np.array([s.score for s in samples])
    metrics = beauty_metrics(pred, true)
    metrics["ms_per_image"] = 1000 * seconds / len(samples)
    where = {"dataset": data.name, "path": str(data.root), "layout": data.layout, "split": data.split,
             "part": held_out if args.part == "held-out" else "all labelled images", "n": len(samples),
             "synthetic": data.synthetic}
    return metrics, {"pred": pred, "true": true, "where": where}


def _end_to_end(model, data, indices, info, fmt) -> np.ndarray:
    """NME per face with the crop from the detector (the page's path); inf where it misses."""
    from tqdm import tqdm

    from facepack import pipeline
    from facepack.data.images import load_rgb
    from facepack.detect.mtcnn_detector import build_detector
    from facepack.metrics import nme_per_face

    detector = build_detector()
    size = info["input_size"]
    out = []
    for i in tqdm(indices, desc="end to end (MTCNN + keypoints)", unit="face"):
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


def evaluate_keypoints(model, info: dict, args) -> tuple[dict, dict]:
    from facepack.data.tfdata import keypoint_dataset
    from facepack.metrics import keypoint_metrics, nme_per_face
    from training import train_keypoints

    cfg = _trainer_cfg(train_keypoints, info, args.data, None, args.skip_bad)
    data, train_idx, val_idx = train_keypoints.load_data(cfg)
    indices = val_idx if args.part == "held-out" else np.arange(len(data.images))
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
    where = {"dataset": data.name, "path": str(data.root), "format": data.format,
             "part": "held-out by the run's seed" if args.part == "held-out" else "all", "n": int(len(indices)),
             "synthetic": data.synthetic}
    extra["where"] = where
    return metrics, extra


def main(argv=None) -> Path:
    from facepack import plots
    from facepack.metrics import cumulative_error_curve
    from facepack.runs import load_run, resolve_run

    args = parse_args(argv)
    run_dir = resolve_run("beauty", args.model, flag="--model")
    model, info = load_run(run_dir)
    out = Path(args.out) if args.out else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    if info["model"] == "beauty":
        metrics, extra = evaluate_beauty(model, info, args)
        plots.score_scatter(extra["pred"], extra["true"], out / "scatter.png", metrics,
                            title=f"{info['backbone']}@{info['input_size']} on {extra['where']['dataset']}")
        plots.error_histogram(extra["pred"] - extra["true"], out / "errors.png", "predicted - true (1..5)",
                              title="beauty error distribution")
        line = f"PC {metrics['pc']:.4f}  MAE {metrics['mae']:.4f}  RMSE {metrics['rmse']:.4f}  (n={metrics['n']})"
    else:
        metrics, extra = evaluate_keypoints(model, info, args)
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
    report = {"model": str(run_dir), "kind": info["model"], "backbone": info.get("backbone"),
              "input_size": info.get("input_size"), "evaluated_on": extra["where"], "metrics": metrics}
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    print(line)
    print(f"wrote {out}/metrics.json and plots")
    return out


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
