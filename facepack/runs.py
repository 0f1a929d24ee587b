"""Training runs on disk: ``runs/<model>/<timestamp>/`` with ``model.keras`` and ``run.json``.

``run.json`` keys (written by training/, read by convert/, predict.py and the page):
  model ("beauty" | "keypoints"), backbone, input_size, num_points (keypoints), synthetic (bool),
  dataset {name, layout, path, terms, fingerprint, split}, metrics {...}, args {...},
  versions {...}, created (ISO time), seconds_per_epoch.

Which model is used when none is named (``choose_run``; convert/to_tfjs.py, scripts/main.sh,
the Python pipeline): the newest run under ``runs/<model>/`` that was trained on real data and
is not worse than the model shipped in ``models/shipped/<model>/`` on the model's own metric
(``SELECTION_METRIC``: beauty PC, higher is better; keypoints NME, lower is better), else the
shipped model. Keypoint NMEs are compared only between runs validated on the same protocol
(``validation_protocol``: the val split, person or frame, on the same dataset); a run validated
otherwise is passed over and the shipped model kept, with the reason.
Runs passed over are named with the reason. Without a shipped model the newest
run is used, whatever it is. A run is named explicitly with ``resolve_run`` (``--beauty RUN``):
a run folder or its model.keras, a folder name under ``runs/<model>/``, ``latest`` (the newest
run, unchecked) or ``shipped``.

    python -m facepack.runs beauty [--run RUN] [--quiet]    # prints the choice; exit 1 if none
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNS_ROOT = Path(os.environ.get("FACEPACK_RUNS", PROJECT_ROOT / "runs"))
SHIPPED_ROOT = PROJECT_ROOT / "models" / "shipped"
MODEL_KINDS = ("beauty", "keypoints")
# model kind -> (run.json metrics key, name shown, True when higher is better)
SELECTION_METRIC = {"beauty": ("pc", "PC", True), "keypoints": ("nme_mean", "NME", False)}
RUN_WORDS = ("latest", "shipped")  # the named choices resolve_run accepts besides paths


@dataclass
class RunChoice:
    """The run folder chosen for a model kind, why, and the newer runs passed over (path, why)."""

    kind: str
    path: Path | None
    reason: str
    skipped: list = field(default_factory=list)

    def message(self) -> str:
        """One line (plus one per run passed over) for the user."""
        if self.path is None:
            return f"{self.kind} model: none ({self.reason})"
        lines = [f"{self.kind} model: {_shown(self.path)} ({self.reason})"]
        lines += [f"  not used: {_shown(p)}: {why}" for p, why in self.skipped]
        if self.skipped:
            lines.append(f"  (pass --{self.kind} RUN to use one of them anyway)")
        return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return os.fspath(path)


def _is_run(path: Path) -> bool:
    return (path / "model.keras").is_file() and (path / "run.json").is_file()


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")


def run_candidates(kind: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Complete runs of ``kind`` under ``root`` (default runs/), newest first (folder names are stamps)."""
    _check_kind(kind)
    base = Path(root) if root is not None else RUNS_ROOT
    return sorted((p for p in (base / kind).glob("*") if _is_run(p)), key=lambda p: p.name, reverse=True)


def is_synthetic(info: dict) -> bool:
    """True when run.json says the run was trained on synthetic data (or is untrained)."""
    dataset = info.get("dataset") or {}
    return bool(info.get("synthetic") or dataset.get("synthetic") or info.get("untrained"))


def run_metric(kind: str, info: dict) -> float | None:
    """The kind's selection metric from run.json (None when absent or not a finite number)."""
    value = (info.get("metrics") or {}).get(SELECTION_METRIC[kind][0])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def validation_protocol(kind: str, info: dict) -> tuple[str, str | None] | None:
    """(val split, dataset name or None) a run's metrics were measured on; None for kinds whose
    runs all share one protocol (beauty).

    Keypoints: run.json's dataset.val_split, else args.val_split (train_keypoints.py records the
    resolved "auto" there), else "frame": runs made before --val-split held out random frames
    (training/train_keypoints.py). "person" holds out whole people; the shipped model's card
    number is on that split, a frame split's faces come from people trained on.
    """
    if kind != "keypoints":
        return None
    dataset = info.get("dataset") or {}
    split = dataset.get("val_split") or (info.get("args") or {}).get("val_split") or "frame"
    return str(split), dataset.get("name")


def _protocol_text(protocol) -> str:
    split, name = protocol
    held = "held-out people" if split == "person" else "held-out frames" if split == "frame" else "its own split"
    return f"a {split} split ({held}" + (f" of {name})" if name else ")")


def _why_not(kind: str, info: dict, shipped_value: float | None, shipped_protocol=None) -> str | None:
    """Why a run must not replace the shipped model silently (None: it may). ``shipped_protocol``:
    validation_protocol of the shipped run.json (None: not checked)."""
    key, name, higher = SELECTION_METRIC[kind]
    if is_synthetic(info):
        return "trained on synthetic data (run.json synthetic: true)"
    protocol = validation_protocol(kind, info)
    if shipped_protocol is not None and protocol is not None:
        same_split = protocol[0] == shipped_protocol[0]
        same_data = None in (protocol[1], shipped_protocol[1]) or protocol[1] == shipped_protocol[1]
        if not (same_split and same_data):
            return (f"validated on {_protocol_text(protocol)}, the shipped model on {_protocol_text(shipped_protocol)}: "
                    f"their {name}s are not comparable, the shipped model is kept")
    value = run_metric(kind, info)
    if value is None:
        return f"run.json has no {key} metric to compare with the shipped model"
    if shipped_value is not None and (value < shipped_value if higher else value > shipped_value):
        return f"{name} {value:.3f} is worse than the shipped model's {shipped_value:.3f}"
    return None


def choose_run(kind: str, root: str | os.PathLike | None = None, shipped: bool = True) -> RunChoice:
    """The run to use for ``kind`` when none is named (rules in the module docstring)."""
    runs = run_candidates(kind, root)
    shipped_dir = SHIPPED_ROOT / kind
    has_shipped = shipped and _is_run(shipped_dir)
    key, name, _ = SELECTION_METRIC[kind]
    if not has_shipped:
        if not runs:
            return RunChoice(kind, None, f"no run under {_shown(Path(root or RUNS_ROOT) / kind)} and no shipped model")
        info = read_run_info(runs[0])
        note = "; trained on synthetic data: its outputs are placeholders" if is_synthetic(info) else ""
        return RunChoice(kind, runs[0], f"newest run, no shipped model to compare with{note}")
    shipped_info = read_run_info(shipped_dir)
    shipped_value = run_metric(kind, shipped_info)
    shipped_protocol = validation_protocol(kind, shipped_info)
    skipped = []
    for run in runs:
        try:
            info = read_run_info(run)
        except ValueError as err:
            skipped.append((run, f"run.json is not valid JSON ({err})"))
            continue
        why = _why_not(kind, info, shipped_value, shipped_protocol)
        if why is None:
            value = run_metric(kind, info)
            return RunChoice(kind, run, f"newest run trained on real data; {name} {value:.3f} vs the shipped "
                                        f"model's {shipped_value:.3f}" if shipped_value is not None else
                             "newest run trained on real data", skipped)
        skipped.append((run, why))
    shown = f"{name} {shipped_value:.3f}" if shipped_value is not None else f"no {key} recorded"
    reason = f"the shipped model, {shown}" + ("; no newer run qualifies" if skipped else "; no runs under runs/")
    return RunChoice(kind, shipped_dir, reason, skipped)


def latest_run(kind: str, root: str | os.PathLike | None = None, shipped: bool = True) -> Path | None:
    """The run used for ``kind`` when none is named (``choose_run(...).path``): the newest real run
    not worse than the shipped model, else the shipped model; None when there is neither."""
    return choose_run(kind, root, shipped).path


def resolve_run(kind: str, run: str | os.PathLike | None, root=None, flag: str | None = None) -> Path:
    """A run named on the command line (or None for ``choose_run``); clear error if absent.

    ``run``: a run folder or its model.keras, a folder name under ``<root>/<kind>/``,
    ``latest`` (the newest run, even a synthetic or worse one) or ``shipped``.
    """
    return describe_run(kind, run, root, flag).path


def describe_run(kind: str, run: str | os.PathLike | None, root=None, flag: str | None = None) -> RunChoice:
    """``resolve_run`` with the reason, as a RunChoice (raises ValueError naming ``flag``)."""
    _check_kind(kind)
    flag = flag or f"--{kind}"
    base = Path(root) if root is not None else RUNS_ROOT
    if run is None:
        found = choose_run(kind, root)
        if found.path is None:
            raise ValueError(f"{flag}: no trained {kind} run found under {base / kind}; "
                             f"train one with `python training/train_{kind}.py` or pass {flag} RUN")
        return found
    text = os.fspath(run)
    if text == "shipped":
        if not _is_run(SHIPPED_ROOT / kind):
            raise ValueError(f"{flag} shipped: no shipped {kind} model in {_shown(SHIPPED_ROOT / kind)}")
        return RunChoice(kind, SHIPPED_ROOT / kind, f"chosen with {flag} shipped")
    if text == "latest":
        runs = run_candidates(kind, root)
        if not runs:
            raise ValueError(f"{flag} latest: no complete {kind} run under {base / kind}")
        return RunChoice(kind, runs[0], f"chosen with {flag} latest (newest run, not compared)")
    path = Path(run)
    if path.is_file() and path.name == "model.keras":
        path = path.parent
    if not _is_run(path) and not path.is_absolute() and len(path.parts) == 1 and _is_run(base / kind / path):
        path = base / kind / path
    if not _is_run(path):
        raise ValueError(f"{flag}: expected a run folder with model.keras and run.json, its model.keras, a run "
                         f"name under {base / kind}, 'latest' or 'shipped'; got {text!r}")
    return RunChoice(kind, path, f"chosen with {flag}")


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


def main(argv=None) -> int:
    """Print which ``kind`` model would be used and why; exit 1 when there is none."""
    p = argparse.ArgumentParser(prog="python -m facepack.runs", description=main.__doc__)
    p.add_argument("kind", choices=MODEL_KINDS)
    p.add_argument("--run", default=None, help="RUN as convert/to_tfjs.py --KIND takes it (default: choose)")
    p.add_argument("--runs-root", type=Path, default=None, help="where the runs are (default runs/)")
    p.add_argument("--quiet", action="store_true", help="print nothing, only the exit status")
    args = p.parse_args(argv)
    try:
        choice = describe_run(args.kind, args.run, args.runs_root)
    except ValueError as err:
        if not args.quiet:
            print(f"error: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(choice.message())
    return 0


if __name__ == "__main__":
    sys.exit(main())
