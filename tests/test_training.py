"""The trainers end to end: they learn on synthetic data, resume, stop on NaN, explain bad flags.

Training runs in subprocesses (the CLIs as users run them; TF op determinism stays out of the
test process). The synthetic datasets are cached under a temporary FACEPACK_SYNTHETIC root.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_KEYPOINTS = ["--n-synthetic", "80", "--input-size", "32", "--width", "8", "--batch-size", "16"]


def _env(tmp_root: Path, **extra) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1",
               FACEPACK_SYNTHETIC=str(tmp_root / "synthetic"))
    env.update(extra)
    return env


def _train(kind: str, args: list, tmp_root: Path, check: bool = True, **env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "training" / f"train_{kind}.py"), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(tmp_root, **env), capture_output=True, text=True, timeout=1200)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _only_run(runs_root: Path, kind: str) -> Path:
    found = [p for p in (runs_root / kind).iterdir() if (p / "run.json").is_file()]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return tmp_path_factory.mktemp("training")


def test_beauty_smoke_run_learns(synthetic_root):
    """The no-argument run (the main job's fallback) must really learn: held-out PC > 0.8."""
    runs_root = synthetic_root / "beauty_runs"
    _train("beauty", ["--runs", str(runs_root)], synthetic_root)
    run = _only_run(runs_root, "beauty")
    info = json.loads((run / "run.json").read_text())
    assert info["synthetic"] is True and info["dataset"]["synthetic"] is True
    assert info["metrics"]["pc"] > 0.8, info["metrics"]
    for name in ("model.keras", "history.csv", "curves.png", "scatter.png"):
        assert (run / name).is_file()
    assert not (run / "resume.json").exists()
    assert info["throughput"]["input_pipeline_images_per_s"] > 0


def test_keypoint_smoke_run_beats_the_mean_shape(synthetic_root):
    runs_root = synthetic_root / "kp_runs"
    _train("keypoints", ["--runs", str(runs_root)], synthetic_root)
    run = _only_run(runs_root, "keypoints")
    info = json.loads((run / "run.json").read_text())
    m = info["metrics"]
    assert info["synthetic"] is True and info["num_points"] == 68
    assert m["nme_mean"] < 0.6 * m["baseline_mean_shape_nme"], m
    assert (run / "predictions.png").is_file()


def test_same_seed_same_metrics(synthetic_root):
    metrics = []
    for i in range(2):
        runs_root = synthetic_root / f"seed_runs_{i}"
        _train("keypoints", [*TINY_KEYPOINTS, "--epochs", "2", "--seed", "3", "--runs", str(runs_root)], synthetic_root)
        metrics.append(json.loads((_only_run(runs_root, "keypoints") / "run.json").read_text())["metrics"])
    assert metrics[0] == metrics[1]


def test_resume_after_a_kill_loses_at_most_one_epoch(synthetic_root):
    runs_root = synthetic_root / "resume_runs"
    cmd = [sys.executable, str(ROOT / "training" / "train_keypoints.py"), *TINY_KEYPOINTS, "--epochs", "4",
           "--runs", str(runs_root)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(synthetic_root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    run_dir = None
    while time.time() < deadline and proc.poll() is None:
        marks = list(runs_root.glob("keypoints/*/resume.json"))
        if marks and json.loads(marks[0].read_text())["epoch"] >= 1:
            run_dir = marks[0].parent
            proc.send_signal(signal.SIGKILL)  # as hard as a power cut
            break
        time.sleep(0.05)
    proc.wait()
    assert run_dir is not None, "the run finished or failed before it could be interrupted"
    done = json.loads((run_dir / "resume.json").read_text())["epoch"]
    assert not (run_dir / "run.json").exists() and 1 <= done < 4
    out = _train("keypoints", ["--resume", str(run_dir)], synthetic_root)
    assert f"{done} epoch(s) already done" in out.stdout
    info = json.loads((run_dir / "run.json").read_text())
    epochs = [int(float(line.split(",")[0])) for line in (run_dir / "history.csv").read_text().splitlines()[1:]]
    assert epochs == [1, 2, 3, 4] and info["epochs_done"] == 4


def test_nan_loss_stops_with_a_clear_message(synthetic_root):
    out = _train("keypoints", [*TINY_KEYPOINTS, "--epochs", "2", "--lr", "1e30", "--runs",
                               str(synthetic_root / "nan_runs")], synthetic_root, check=False)
    assert out.returncode == 2
    assert "error: training stopped: loss became" in out.stderr and "--lr" in out.stderr
    assert "Traceback" not in out.stderr


def test_packed_dataset_trains_without_tensorflow(synthetic_root, tmp_path):
    """The GPU-box path: pack here, then train with Keras 3 on JAX while `import tensorflow` fails."""
    pytest.importorskip("jax")
    packed = tmp_path / "kp.npz"
    subprocess.run([sys.executable, str(ROOT / "training" / "pack_dataset.py"), "keypoints", "--input-size", "32",
                    "--out", str(packed)], cwd=ROOT, env=_env(synthetic_root), check=True, capture_output=True)
    runner = ("import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", runner, str(ROOT / "training" / "train_keypoints.py"), "--data", str(packed),
           "--input-size", "32", "--width", "8", "--epochs", "1", "--runs", str(tmp_path / "runs")]
    out = subprocess.run(cmd, cwd=ROOT, env=_env(synthetic_root, KERAS_BACKEND="jax"), capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads((_only_run(tmp_path / "runs", "keypoints") / "run.json").read_text())
    assert info["versions"]["keras_backend"] == "jax" and "tensorflow" not in info["versions"]
    assert info["dataset"]["packed"] == str(packed)


# --- Flags and messages (in-process, no training) -------------------------------------------
def _beauty_cfg(argv):
    from training import train_beauty

    return train_beauty.resolve_config(train_beauty.parse_args(argv))


@pytest.mark.parametrize("argv,flag", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--weights", "/no/such/weights.h5"], "--weights"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--label-sigma", "-1"], "--label-sigma"),
])
def test_bad_flags_name_the_flag(argv, flag):
    with pytest.raises(ValueError, match=flag):
        _beauty_cfg(argv)


def test_defaults_are_filled_once_synthetic_preset_vs_real_data():
    from training import train_beauty

    synthetic = _beauty_cfg([])
    assert synthetic["backbone"] == train_beauty.SYNTHETIC["backbone"] and synthetic["weights"] is None
    real = _beauty_cfg(["--data", "somewhere"])
    assert real["backbone"] == "resnet50" and real["weights"] == "imagenet" and real["input_size"] == 224
    assert _beauty_cfg(["--data", "x", "--weights", "none"])["head_epochs"] == 0  # nothing to freeze


def test_imagenet_download_failure_suggests_none(monkeypatch):
    import keras

    from facepack.training import TrainingError
    from training import train_beauty

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setattr("facepack.models.beauty.build_beauty_model", offline)
    with pytest.raises(TrainingError, match="--weights none"):
        train_beauty.build_model(keras, _beauty_cfg(["--data", "x"]))


def test_nan_bookkeeping_unit():
    import keras
    import numpy as np

    from facepack import training

    state = {}
    cb = training.make_callbacks(keras, Path("/nonexistent"), training.History(Path("/nonexistent/h.csv")), "full", state)[0]
    cb.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    cb.on_train_batch_end(3, {"loss": float(np.nan)})
    assert cb.model.stop_training
    with pytest.raises(training.TrainingError, match="batch 3"):
        training.check_nan(state)


def test_distribute_runs_the_same_script_data_parallel(synthetic_root):
    out = _train("keypoints", [*TINY_KEYPOINTS, "--epochs", "1", "--distribute", "--runs",
                               str(synthetic_root / "dist_runs")], synthetic_root)
    assert "--distribute: MirroredStrategy over 1 replica(s)" in out.stdout
    assert (_only_run(synthetic_root / "dist_runs", "keypoints") / "model.keras").is_file()


def test_kaggle15_format_trains_with_missing_points_masked(synthetic_root, tmp_path):
    from facepack.data.synthetic import make_kaggle15_csv

    csv = make_kaggle15_csv(tmp_path / "training.csv", n=60, seed=2)
    _train("keypoints", ["--data", str(csv), "--input-size", "32", "--width", "8", "--batch-size", "16",
                         "--epochs", "1", "--runs", str(tmp_path / "runs")], synthetic_root)
    info = json.loads((_only_run(tmp_path / "runs", "keypoints") / "run.json").read_text())
    assert info["num_points"] == 15 and info["format"] == "15"
    assert np.isfinite(info["metrics"]["nme_mean"])  # NaN targets never reach the loss or the metric
