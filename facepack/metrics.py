"""Metrics shared by the trainers, evaluate.py and the benchmarks (pure numpy).

Beauty on the 1..5 scale (as in the SCUT-FBP5500 paper): Pearson correlation (PC), MAE, RMSE.
Keypoints: NME normalised by the inter-ocular distance (outer eye corners, from spec.KEYPOINTS),
mean and median, failure rate at NME > spec.KEYPOINTS["failure_nme"], mean error in pixels.
Missing points (NaN in the ground truth) are left out of every average.
"""

from __future__ import annotations

import numpy as np

from facepack import spec


def beauty_metrics(pred_1to5, true_1to5) -> dict:
    """{"pc", "mae", "rmse", "n"} for predicted vs true scores on 1..5."""
    p = np.asarray(pred_1to5, dtype=np.float64).ravel()
    t = np.asarray(true_1to5, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"predictions and targets differ in length: {p.size} vs {t.size}")
    if p.size == 0:
        raise ValueError("no samples to score")
    err = p - t
    if p.size < 2 or np.std(p) == 0 or np.std(t) == 0:
        pc = float("nan")
    else:
        pc = float(np.corrcoef(p, t)[0, 1])
    return {"pc": pc, "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "n": int(p.size)}


def interocular(points: np.ndarray, fmt: str) -> np.ndarray:
    """Outer-eye-corner distance per face; points (N, P, 2)."""
    info = spec.KEYPOINTS["formats"][fmt]
    a = points[:, info["left_eye_outer"]]
    b = points[:, info["right_eye_outer"]]
    return np.sqrt(np.sum((a - b) ** 2, axis=-1))


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean error per point (N, P); NaN where the ground truth is missing."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"expected two (N, P, 2) arrays of equal shape, got {pred.shape} and {true.shape}")
    return np.sqrt(np.sum((pred - true) ** 2, axis=-1))


def nme_per_face(pred: np.ndarray, true: np.ndarray, fmt: str) -> np.ndarray:
    """Mean point error over present points divided by the inter-ocular distance, per face.

    NaN for a face whose eye corners are missing (it cannot be normalised).
    """
    err = point_errors(pred, true)
    norm = interocular(np.asarray(true, dtype=np.float64), fmt)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_err = np.nanmean(np.where(np.isnan(err), np.nan, err), axis=1)
        out = mean_err / norm
    out[~np.isfinite(out)] = np.nan
    return out


def keypoint_metrics(pred: np.ndarray, true: np.ndarray, fmt: str) -> dict:
    """{"nme_mean", "nme_median", "failure_rate", "mean_error_px", "n", "n_unnormalised"}."""
    nme = nme_per_face(pred, true, fmt)
    valid = nme[~np.isnan(nme)]
    err = point_errors(pred, true)
    if valid.size == 0:
        raise ValueError("no face has both outer eye corners: NME is undefined")
    return {
        "nme_mean": float(np.mean(valid)),
        "nme_median": float(np.median(valid)),
        "failure_rate": float(np.mean(valid > spec.KEYPOINTS["failure_nme"])),
        "mean_error_px": float(np.nanmean(err)),
        "n": int(valid.size),
        "n_unnormalised": int(nme.size - valid.size),
    }


def cumulative_error_curve(nme: np.ndarray, max_nme: float = 0.2, steps: int = 201):
    """(thresholds, fraction of faces with NME <= threshold) for a CED plot; NaN faces count as failures."""
    nme = np.asarray(nme, dtype=np.float64)
    thresholds = np.linspace(0.0, max_nme, steps)
    filled = np.where(np.isnan(nme), np.inf, nme)
    frac = (filled[None, :] <= thresholds[:, None]).mean(axis=1) if nme.size else np.zeros(steps)
    return thresholds, frac


def mean_shape_baseline(train_points_crop: np.ndarray, test_points_crop: np.ndarray) -> np.ndarray:
    """Predict the mean training shape (crop units) for every test face: the baseline to beat."""
    mean = np.nanmean(np.asarray(train_points_crop, dtype=np.float64), axis=0)
    return np.broadcast_to(mean, np.shape(test_points_crop)).copy()
