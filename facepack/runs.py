"""Training runs on disk: ``runs/<model>/<timestamp>/`` with ``model.keras`` and ``run.json``.

``run.json`` keys (written by training/, read by convert/, predict.py and the page):
  model ("beauty" | "keypoints"), backbone, input_size, num_points (keypoints), synthetic (bool),
  dataset {name, layout, path, terms, fingerprint, split}, metrics {...}, args {...},
  versions {...}, created (ISO time), seconds_per_epoch.

Resolution order for "the latest run" of a model: the newest folder under ``runs/<model>/``
that has both files, else the models shipped with the project under ``models/shipped/<model>/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNS_ROOT = Path(os.environ.get("FACEPACK_RUNS", PROJECT_ROOT / "runs"))
SHIPPED_ROOT = PROJECT_ROOT / "models" / "shipped"
MODEL_KINDS = ("beauty", "keypoints")


def _is_run(path: Path) -> bool:
    return (path / "model.keras").is_file() and (path / "run.json").is_file()


def latest_run(kind: str, root: str | os.PathLike | None = None, shipped: bool = True) -> Path | None:
    """Newest complete run of ``kind`` under ``root`` (default runs/), else the shipped one."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    base = Path(root) if root is not None else RUNS_ROOT
    candidates = sorted((p for p in (base / kind).glob("*") if _is_run(p)), key=lambda p: p.name)
    if candidates:
        return candidates[-1]
    if shipped and _is_run(SHIPPED_ROOT / kind):
        return SHIPPED_ROOT / kind
    return None


def resolve_run(kind: str, run: str | os.PathLike | None, root=None, flag: str | None = None) -> Path:
    """A run folder given on the command line (or None for the latest); clear error if absent."""
    flag = flag or f"--{kind}"
    if run is None:
        found = latest_run(kind, root)
        if found is None:
            raise ValueError(f"{flag}: no trained {kind} run found under {Path(root or RUNS_ROOT) / kind}; "
                             f"train one with `python training/train_{kind}.py` or pass {flag} RUN")
        return found
    path = Path(run)
    if path.is_file() and path.name == "model.keras":
        path = path.parent
    if not _is_run(path):
        raise ValueError(f"{flag}: expected a run folder with model.keras and run.json, got {str(run)!r}")
    return path


def read_run_info(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def load_run(run_dir: str | os.PathLike, keras_module=None):
    """(Keras 3 model, run info) of a run folder."""
    if keras_module is None:
        import keras as keras_module
    from facepack.models.keypoints import masked_keypoint_loss

    run_dir = Path(run_dir)
    model = keras_module.models.load_model(
        run_dir / "model.keras", compile=False,
        custom_objects={"masked_smooth_l1": masked_keypoint_loss(keras_module)})
    return model, read_run_info(run_dir)
