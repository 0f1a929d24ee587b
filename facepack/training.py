"""What every training run shares: run folders, run.json, history, callbacks, resume, devices.

The trainers in training/ read like keras-io examples; the plumbing lives here so that both use
the same rules (one run folder layout, one NaN policy, one resume policy).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepack import runs


class TrainingError(RuntimeError):
    """A run that cannot go on (NaN loss, nothing to resume, bad dataset); message says why."""


def versions() -> dict:
    import keras

    out = {"python": platform.python_version(), "keras": keras.__version__,
           "keras_backend": keras.backend.backend(), "numpy": np.__version__}
    try:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    except ImportError:  # JAX-only machines (the GPU box)
        pass
    return out


def new_run_dir(kind: str, root=None, name: str | None = None) -> Path:
    base = Path(root) if root is not None else runs.RUNS_ROOT
    stamp = name or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / kind / stamp
    suffix = 1
    while path.exists():
        path = base / kind / f"{stamp}-{suffix}"
        suffix += 1
    path.mkdir(parents=True)
    return path


def data_paths(dataset: dict, run_dir: Path) -> dict:
    """run.json "dataset" additions that survive moving the project: the dataset folder (and packed
    file) relative to the run folder and to the project root (training/evaluate.py resolves them)."""
    out = {}
    for key in ("path", "packed"):
        if dataset.get(key):
            where = Path(dataset[key]).resolve()
            out[f"{key}_from_run"] = os.path.relpath(where, Path(run_dir).resolve())
            out[f"{key}_from_project"] = os.path.relpath(where, runs.PROJECT_ROOT)
    return out


def write_json(path, data) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def trainer_parser(prog: str, doc: str, defaults: dict, synthetic: dict, data_help: str):
    """An argparse parser with the flags every trainer shares; the trainer adds its own."""
    import argparse

    p = argparse.ArgumentParser(
        prog=prog, description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults for real data: " + ", ".join(f"{k}={v}" for k, v in defaults.items())
        + ".\nWithout --data: " + ", ".join(f"{k}={v}" for k, v in synthetic.items()) + ".")
    p.add_argument("--data", help=data_help + "; a .npz from training/pack_dataset.py; omit for synthetic data")
    p.add_argument("--seed", type=int)
    p.add_argument("--n-synthetic", type=int, help="samples in the synthetic dataset (no --data)")
    p.add_argument("--skip-bad", action="store_true", help="report and skip bad rows/images instead of failing")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder: the same weights and "
                   "metrics as an uninterrupted run (a kill mid-epoch recomputes that epoch)")
    p.add_argument("--distribute", action="store_true", help="data-parallel over all visible accelerators")
    p.add_argument("--runs", default=None, help="runs root (default: runs/)")
    p.add_argument("--max-minutes", type=float, help="stop training (then evaluate and save) before this wall time")
    p.add_argument("--stop-after", type=int, metavar="EPOCHS",
                   help="stop after this many epochs, the learning-rate schedule still planned for --epochs")
    p.add_argument("--max-train", type=int, help="use at most this many training samples (quick trials)")
    return p


def fill_defaults(args, defaults: dict, synthetic: dict) -> dict:
    """Every default filled exactly once: the flag, else the synthetic preset (no --data), else defaults."""
    preset = dict(defaults)
    if not args.data:
        preset.update(synthetic)
    cfg = {k: (getattr(args, k) if getattr(args, k, None) is not None else v) for k, v in preset.items()}
    cfg["n_synthetic"] = args.n_synthetic or preset.get("n_synthetic", synthetic["n_synthetic"])
    for key in ("data", "skip_bad", "distribute", "max_train", "max_minutes", "stop_after"):
        cfg[key] = getattr(args, key)
    for key in ("epochs", "batch_size"):
        if cfg[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {cfg[key]}")
    if not 0.0 < cfg["val_fraction"] < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {cfg['val_fraction']}")
    return cfg


RESUME_FILE = "resume.json"  # the commit point: {"epoch", "phase", "weights"}; present while a run is unfinished
BACKUP_DIR = "backup"  # <phase>-epoch<NNNN>.weights.h5: model + optimizer state (iterations, momenta)


def open_run(kind: str, cfg: dict, runs_root=None, resume=None):
    """(run_dir, epochs already done, History): a fresh run folder, or the one --resume names.

    A fresh run writes config.json and resume.json (epoch 0) at once, so a run killed at any
    point, even before its first epoch ends, can be resumed. History keeps the rows of the epochs
    the last committed checkpoint holds (rows written after it are recomputed).
    """
    if resume:
        run_dir = Path(resume)
        if not (run_dir / RESUME_FILE).is_file():
            raise TrainingError(f"--resume: {run_dir} has no {RESUME_FILE} (finished or never started)")
    else:
        run_dir = new_run_dir(kind, runs_root)
        save_config(run_dir, cfg)
        write_json(run_dir / RESUME_FILE, {"epoch": 0, "phase": None, "weights": None})
    done = resume_point(run_dir)
    history = History.load(run_dir / "history.csv") if done else History(run_dir / "history.csv")
    history.rows = [r for r in history.rows if int(r["epoch"]) <= done]
    return run_dir, done, history


def restore_weights(model, run_dir: Path) -> int:
    """Load the last committed checkpoint's model weights into an uncompiled ``model`` (its
    optimizer state is restored by RunBackup when the checkpoint's phase resumes); -> epochs done."""
    point = read_resume(run_dir)
    if point.get("weights"):
        model.load_weights(Path(run_dir) / point["weights"])
    return int(point["epoch"])


def read_resume(run_dir) -> dict:
    info = Path(run_dir) / RESUME_FILE
    if not info.is_file():
        return {"epoch": 0, "phase": None, "weights": None}
    point = json.loads(info.read_text())
    point.setdefault("weights", None)
    return point


def run_main(argv, parse_args, resolve_config, train):
    """A trainer's main(argv): --resume continues with the interrupted run's own configuration."""
    args = parse_args(argv)
    if args.resume:
        return train(load_config(args.resume), resume=args.resume)
    return train(resolve_config(args), runs_root=args.runs)


def run_summary(history: "History", n_train: int, pipeline_ips: float, train_seconds: float) -> dict:
    """Timing fields of run.json: seconds per epoch (median of the last phase), throughput."""
    rows = history.rows
    last_phase = rows[-1].get("phase") if rows else None
    secs = [r["seconds"] for r in rows if r.get("phase") == last_phase]
    per_epoch = float(np.median(secs)) if secs else None
    return {"seconds_per_epoch": per_epoch, "train_seconds": train_seconds, "epochs_done": len(rows),
            "throughput": {"input_pipeline_images_per_s": pipeline_ips,
                           "training_images_per_s": (n_train / per_epoch) if per_epoch else None}}


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def distribution_scope(enabled: bool):
    """Data-parallel over all visible accelerators (keras.distribution on JAX, MirroredStrategy on TF).

    TensorFlow: all logical GPUs, else all logical CPUs (one unless the process configured more
    with tf.config.set_logical_device_configuration, as tests/test_distribute.py does). The
    global batch (--batch-size) is split across the replicas. Returns a context manager; a
    no-op when disabled.
    """
    import contextlib

    import keras

    if not enabled:
        return contextlib.nullcontext()
    if keras.backend.backend() == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        print(f"--distribute: data-parallel over {len(devices)} device(s): {devices}")
        return contextlib.nullcontext()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        print(f"--distribute: MirroredStrategy over {strategy.num_replicas_in_sync} replica(s): {', '.join(devices)}")
        return strategy.scope()
    raise TrainingError(f"--distribute is not supported on the {keras.backend.backend()} backend")


@dataclass
class History:
    """Per-epoch logs across phases, saved as history.csv after every epoch."""

    path: Path
    rows: list = field(default_factory=list)

    def add(self, epoch: int, phase: str, logs: dict, seconds: float) -> None:
        row = {"epoch": epoch, "phase": phase, "seconds": round(seconds, 3)}
        row.update({k: float(v) for k, v in logs.items()})
        self.rows.append(row)
        keys = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", newline="") as fh:  # replaced in one step: a kill never leaves half a file
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def columns(self) -> dict:
        cols: dict = {}
        for r in self.rows:
            for k, v in r.items():
                cols.setdefault(k, []).append(v)
        return cols

    @classmethod
    def load(cls, path: Path) -> "History":
        hist = cls(Path(path))
        if Path(path).is_file():
            with open(path, newline="") as fh:
                for row in csv.DictReader(fh):
                    hist.rows.append({k: (v if k == "phase" else int(v) if k == "epoch" else float(v))
                                      for k, v in row.items() if v != ""})
        return hist


def _run_backup_class(keras):
    class RunBackup(keras.callbacks.BackupAndRestore):
        """keras.callbacks.BackupAndRestore with an atomic commit and training phases.

        Saves at every epoch end: model + optimizer state (iterations, so the learning-rate
        schedule position, and momenta) to backup/<phase>-epoch<NNNN>.weights.h5 under a temporary
        name, renamed into place, then commits it by replacing resume.json ({"epoch", "phase",
        "weights"}) in one step; older checkpoints are deleted only after that. A kill at any
        instant leaves the previous commit intact (Keras' own writes the weights and then its
        metadata in place, so a kill between them pairs new weights with an old epoch).
        Restores (on_train_begin) only a checkpoint of its own phase: the optimizer of another
        phase has other variables; the model weights were loaded already (restore_weights).
        Checkpoints are taken at epoch ends only: Keras restarts an interrupted epoch from its
        first batch, so a mid-epoch checkpoint would replay batches on already-updated weights;
        a kill mid-epoch recomputes that epoch, exactly, from the previous commit.
        """

        def __init__(self, run_dir: Path, phase: str, state: dict):
            super().__init__(backup_dir=str(Path(run_dir) / BACKUP_DIR), save_freq="epoch", delete_checkpoint=False)
            self.run_dir, self.phase, self.state = Path(run_dir), phase, state

        def _load_model(self):
            point = read_resume(self.run_dir)
            if point.get("phase") != self.phase or not point.get("weights"):
                return
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(self.run_dir / point["weights"])

        def _save_model(self):
            if self.state.get("nan"):
                return  # keep the last good checkpoint
            backup = Path(self.backup_dir)
            backup.mkdir(exist_ok=True)
            name = f"{self.phase}-epoch{self._current_epoch:04d}.weights.h5"
            tmp = backup / f"partial-{os.getpid()}.weights.h5"
            self.model.save_weights(tmp, overwrite=True)
            os.replace(tmp, backup / name)
            write_json(self.run_dir / RESUME_FILE,
                       {"epoch": self._current_epoch, "phase": self.phase, "weights": f"{BACKUP_DIR}/{name}"})
            for old in backup.glob("*.weights.h5"):
                if old.name != name:
                    old.unlink(missing_ok=True)

    return RunBackup


def make_callbacks(keras, run_dir: Path, history: History, phase: str, state: dict):
    """Epoch bookkeeping (NaN stop with a clear message, time limits, history.csv), then the
    checkpoint for --resume (RunBackup, after the history row so a commit never lacks its row)."""

    class RunBookkeeping(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(loss):
                self.model.stop_training = True
                state["nan"] = f"loss became {loss} in phase {phase!r}, batch {batch}"

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._t0
            if state.get("nan"):
                return
            if state.get("stop_after") and epoch + 1 >= state["stop_after"]:
                self.model.stop_training = True  # deterministic twin of --max-minutes
                state["stopped_early"] = f"--stop-after reached after epoch {epoch + 1}"
            if state.get("deadline") and time.time() + seconds > state["deadline"]:
                self.model.stop_training = True  # another epoch would overrun --max-minutes
                state["stopped_early"] = f"--max-minutes reached after epoch {epoch + 1}"
            history.add(epoch + 1, phase, logs or {}, seconds)
            state["epoch"] = epoch + 1

    return [RunBookkeeping(), _run_backup_class(keras)(run_dir, phase, state)]


def check_nan(state: dict) -> None:
    if state.get("nan"):
        raise TrainingError(
            f"training stopped: {state['nan']}. The last good weights are in {BACKUP_DIR}/ (see {RESUME_FILE}); "
            "lower the learning rate (--lr) or check the data for broken labels.")


def resume_point(run_dir: Path) -> int:
    """Epochs already completed (committed) in ``run_dir`` (0 for a fresh run)."""
    return int(read_resume(run_dir)["epoch"])


def save_config(run_dir: Path, cfg: dict) -> None:
    """The resolved configuration, so --resume continues with exactly the same settings."""
    write_json(Path(run_dir) / "config.json", cfg)


def load_config(run_dir) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise TrainingError(f"--resume: {run_dir} is not a run folder (no config.json)")
    return json.loads(path.read_text())


def verbose_level() -> int:
    """Keras progress bar on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def set_bn_momentum(keras, model, momentum: float) -> None:
    """Training-time setting only (inference uses the moving statistics, whatever the momentum)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def save_model(keras, model, path) -> None:
    """Save the architecture and weights only (no optimizer state: half the size, same outputs), as one
    ``.keras`` file: the run layout training writes (facepack/runs.py; ``python -m facepack.runs --shard
    RUN`` rewrites it as < 5 MB files, bit-identical, for a run shipped in git)."""
    bare = model.__class__.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(path)


def finish_run(run_dir: Path, info: dict) -> None:
    """Write run.json last (a run counts as complete only once model.keras and run.json exist)."""
    info = dict(info)
    info["created"] = _dt.datetime.now().isoformat(timespec="seconds")
    write_json(run_dir / "run.json", info)
    (run_dir / RESUME_FILE).unlink(missing_ok=True)
    import shutil

    shutil.rmtree(run_dir / BACKUP_DIR, ignore_errors=True)
