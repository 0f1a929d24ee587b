"""Beauty targets over the 101 score bins (pure numpy: usable without TensorFlow)."""

from __future__ import annotations

import numpy as np

from facepack import spec

BINS = spec.BEAUTY["bins"]


def gaussian_label(score_1to5: float, sigma_bins: float) -> np.ndarray:
    """(101,) float32 Gaussian over the bins centred on score * label_scale, summing to 1.

    Its peak is the bin of facepack.spec.score_to_label (the nearest integer to the centre).
    """
    label = spec.score_to_label(score_1to5)  # validates 1..5
    if not sigma_bins > 0:
        raise ValueError(f"--label-sigma must be > 0 for Gaussian labels, got {sigma_bins!r}")
    centre = float(score_1to5) * spec.BEAUTY["label_scale"]
    bins = np.arange(BINS, dtype=np.float64)
    p = np.exp(-0.5 * ((bins - centre) / sigma_bins) ** 2)
    if p.sum() == 0 or np.argmax(p) != label:  # tiny sigma or a tie at x.5: fall back to the label
        p = np.zeros(BINS)
        p[label] = 1.0
    return (p / p.sum()).astype(np.float32)


def beauty_labels(scores, label_sigma: float = 0.0) -> np.ndarray:
    """(N,) scores on 1..5 -> (N, 101) float32 targets: one-hot, or Gaussian when sigma > 0."""
    scores = [float(s) for s in scores]
    if label_sigma and label_sigma > 0:
        return np.stack([gaussian_label(s, label_sigma) for s in scores]) if scores else np.zeros((0, BINS), np.float32)
    out = np.zeros((len(scores), BINS), dtype=np.float32)
    for i, s in enumerate(scores):
        out[i, spec.score_to_label(s)] = 1.0
    return out
