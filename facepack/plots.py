"""Plots people would rather look at than read: training curves, score scatter, keypoint grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facepack import spec  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves(history: dict, path, title: str = "") -> Path:
    """One panel per metric (train and val overlaid); phase boundaries marked if given."""
    keys = [k for k in history if not k.startswith("val_") and k not in ("epoch", "phase", "lr")]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4.2 * max(len(keys), 1), 3.4), squeeze=False)
    epochs = np.arange(1, len(next(iter(history.values()), [])) + 1)
    phases = history.get("phase")
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"val {key}")
        if phases is not None:
            for i in range(1, len(phases)):
                if phases[i] != phases[i - 1]:
                    ax.axvline(epochs[i] - 0.5, color="grey", ls=":", lw=1)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def score_scatter(pred_1to5, true_1to5, path, metrics: dict | None = None, title: str = "") -> Path:
    """Predicted vs true beauty score on 1..5 with the identity line and PC/MAE/RMSE."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.scatter(true_1to5, pred_1to5, s=8, alpha=0.5)
    ax.plot([1, 5], [1, 5], color="black", lw=1, ls="--")
    ax.set_xlim(1, 5)
    ax.set_ylim(1, 5)
    ax.set_xlabel("true score (1..5)")
    ax.set_ylabel("predicted score (1..5)")
    if metrics:
        ax.text(1.1, 4.85, f"PC {metrics['pc']:.3f}\nMAE {metrics['mae']:.3f}\nRMSE {metrics['rmse']:.3f}"
                f"\nn {metrics['n']}", va="top", fontsize=9, family="monospace")
    ax.set_title(title or "beauty: predicted vs true")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def error_histogram(errors, path, xlabel: str, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    errors = np.asarray(errors, dtype=np.float64)
    ax.hist(errors[np.isfinite(errors)], bins=40, color="#4a7bd0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("faces")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def ced_curve(curves: dict, path, title: str = "cumulative error distribution") -> Path:
    """curves: {label: (thresholds, fractions)}; failure threshold marked."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for label, (x, y) in curves.items():
        ax.plot(x, y, label=label)
    ax.axvline(spec.KEYPOINTS["failure_nme"], color="grey", ls=":", lw=1)
    ax.set_xlabel("NME (inter-ocular)")
    ax.set_ylabel("fraction of faces")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def keypoint_grid(images, pred, true, path, cols: int = 6, title: str = "") -> Path:
    """Crops (uint8 or 0..255 float, N x S x S x 3) with predicted (red) over true (green) points.

    pred/true: (N, P, 2) in crop pixels.
    """
    n = len(images)
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        ax.imshow(np.clip(np.asarray(images[i]), 0, 255).astype(np.uint8))
        ax.scatter(true[i, :, 0], true[i, :, 1], s=4, c="lime", label="true")
        ax.scatter(pred[i, :, 0], pred[i, :, 1], s=4, c="red", label="predicted")
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
