"""The attributes plot: precision, recall and F1 per attribute on the held-out part, with the
baselines' macro F1 marked (facepack/plots.py style: Agg backend, one figure per file)."""

from __future__ import annotations

import numpy as np

from facepack.plots import _save, plt


def attribute_bars(metrics: dict, path, baselines: dict | None = None, title: str = ""):
    """metrics: facepack.models.attributes.attribute_metrics(...); one row of bars per attribute
    (precision, recall, F1), sorted by F1; the model's macro F1 and the baselines' as vertical lines."""
    per = metrics["per_attribute"]
    names = sorted(per, key=lambda n: per[n]["f1"])
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(names) + 1.6))
    for k, (key, colour) in enumerate((("precision", "#9ab8e8"), ("recall", "#f0b27a"), ("f1", "#2e6bd1"))):
        ax.barh(y + (k - 1) * 0.27, [per[n][key] for n in names], height=0.27, color=colour, label=key)
    ax.axvline(metrics["macro_f1"], color="black", lw=1, label=f"macro F1 {metrics['macro_f1']:.3f}")
    for (label, m), style in zip((baselines or {}).items(), (":", "--", "-.")):
        ax.axvline(m["macro_f1"], color="grey", ls=style, lw=1, label=f"{label} macro F1 {m['macro_f1']:.3f}")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("precision, recall, F1 on the held-out (test) part")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or f"attributes: mean accuracy {metrics['mean_accuracy']:.3f}, n {metrics['n']}")
    return _save(fig, path)
