"""The trainers end to end: they learn on synthetic data, resume, stop on NaN, explain bad flags.

Training runs in subprocesses (the CLIs as users run them; TF op determinism stays out of the
test process). The synthetic datasets are cached under a temporary FACEPACK_SYNTHETIC root.
"""

import csv
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
SMOKE_TIMEOUT_S = 1200  # seconds for both no-argument smoke runs together (each takes a few minutes on 2 cores)
TINY_KEYPOINTS = ["--n-synthetic", "80", "--input-size", "32", "--width", "8", "--batch-size", "16"]


def _env(tmp_root: Path, **extra) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1",
               FACEPACK_SYNTHETIC=str(tmp_root / "synthetic"), FACEPACK_CACHE=str(tmp_root / "cache"))
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


@pytest.fixture(scope="module")
def smoke_runs(synthetic_root):
    """{"beauty": run, "keypoints": run}: both no-argument runs at once (two processes: on two cores
    their single-threaded parts, tracing and tf.data, overlap), each in its own runs folder.
    The keypoint run needs its 25 epochs: measured 2026-12-01, 12 epochs ended at NME 0.102 against
    the mean shape's 0.140 (ratio 0.73, the test asks < 0.6); 25 epochs: 0.0509 (0.36)."""
    jobs = {"beauty": ["--runs", str(synthetic_root / "beauty_runs")],
            "keypoints": ["--runs", str(synthetic_root / "kp_runs")]}
    logs = {kind: synthetic_root / f"smoke_{kind}.stderr" for kind in jobs}  # files: a full pipe would block
    procs, codes = {}, {}
    deadline = time.monotonic() + SMOKE_TIMEOUT_S  # one budget for both (they run at the same time)
    try:
        for kind, args in jobs.items():
            with open(logs[kind], "w") as err:
                procs[kind] = subprocess.Popen([sys.executable, str(ROOT / "training" / f"train_{kind}.py"), *args],
                                               cwd=ROOT, env=_env(synthetic_root), stdout=subprocess.DEVNULL,
                                               stderr=err)
        for kind, proc in procs.items():
            try:
                codes[kind] = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[kind] = f"timed out after {SMOKE_TIMEOUT_S} s"
    finally:  # a failed start, a timeout or Ctrl-C must not leave a training run busy on a CI core
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    failed = {kind: code for kind, code in codes.items() if code != 0}
    assert not failed, "\n".join(f"train_{kind}.py: {code if isinstance(code, str) else f'exit {code}'}: "
                                  f"{logs[kind].read_text()[-3000:]}"
                                  for kind, code in failed.items())
    return {"beauty": _only_run(synthetic_root / "beauty_runs", "beauty"),
            "keypoints": _only_run(synthetic_root / "kp_runs", "keypoints")}


def test_beauty_smoke_run_learns(smoke_runs):
    """The no-argument run (the main job's fallback) must really learn: held-out PC > 0.8."""
    run = smoke_runs["beauty"]
    info = json.loads((run / "run.json").read_text())
    assert info["synthetic"] is True and info["dataset"]["synthetic"] is True
    assert info["metrics"]["pc"] > 0.8, info["metrics"]
    for name in ("model.keras", "history.csv", "curves.png", "scatter.png"):
        assert (run / name).is_file()
    assert not (run / "resume.json").exists()
    assert info["throughput"]["input_pipeline_images_per_s"] > 0


def test_keypoint_smoke_run_beats_the_mean_shape(smoke_runs):
    """The no-argument run (synthetic preset) learns: held-out NME under 0.6 x the mean shape's."""
    run = smoke_runs["keypoints"]
    info = json.loads((run / "run.json").read_text())
    m = info["metrics"]
    assert info["synthetic"] is True and info["num_points"] == 68
    assert m["nme_mean"] < 0.6 * m["baseline_mean_shape_nme"], m
    assert (run / "predictions.png").is_file()


@pytest.fixture(scope="module")
def damaged_keypoints(synthetic_root):
    """80 synthetic faces plus two bad rows: a JPEG whose header is intact but whose data is cut
    (PIL's header check passes it), and a row naming a file outside the image folder."""
    from facepack.data.synthetic import make_keypoints68_dataset
    from test_data_scut import _truncated_jpeg

    root = make_keypoints68_dataset(synthetic_root / "damaged_kp", n=80, seed=4, image_size=64)
    csv_path = root / "training_frames_keypoints.csv"
    good = csv_path.read_text().splitlines()[1]
    _truncated_jpeg(root / "training" / "cut.jpg")
    with open(csv_path, "a") as fh:
        fh.write("cut.jpg," + good.split(",", 1)[1] + "\n")  # CSV line 82
        fh.write("../training_frames_keypoints.csv," + good.split(",", 1)[1] + "\n")  # line 83
    return root


# Two logical devices made from TensorFlow's CPU (set in the subprocess before TensorFlow starts).
TWO_DEVICES = ("import sys, runpy, tensorflow as tf; "
               "cpu = tf.config.list_physical_devices('CPU')[0]; "
               "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
               "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
# --distribute over two devices vs one: the same global-batch gradients, but BatchNormalization
# normalises each replica's half batch with its own statistics, so the runs drift apart slightly.
# Measured 2026-11-30 (this module's runs, 3 epochs): held-out NME 0.727756 on one device vs
# 0.745445 on two, 2.4 % apart (an earlier 2-epoch configuration: 0.25 %). Allowed relative
# difference of the held-out NME (about twice the measured one):
DISTRIBUTE_NME_REL_TOL = 0.05


@pytest.fixture(scope="module")
def keypoint_runs(synthetic_root, damaged_keypoints):
    """Three runs of the same tiny configuration at once, on the damaged data with --skip-bad:
    "whole" (uninterrupted), "two" (--distribute over two logical CPU devices) and "resumed"
    (SIGKILLed after its first epoch, then --resume)."""
    args = ["--data", str(damaged_keypoints), "--skip-bad", "--input-size", "32", "--width", "8",
            "--batch-size", "16", "--lr", "5e-3", "--epochs", "3", "--seed", "3"]
    script = str(ROOT / "training" / "train_keypoints.py")
    env = _env(synthetic_root)
    whole = subprocess.Popen([sys.executable, script, *args, "--runs", str(synthetic_root / "kp_whole")],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    two = subprocess.Popen([sys.executable, "-c", TWO_DEVICES, script, *args, "--distribute", "--runs",
                            str(synthetic_root / "kp_two")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    runs_root = synthetic_root / "resume_runs"
    proc = subprocess.Popen([sys.executable, script, *args, "--runs", str(runs_root)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    run_dir = None
    while time.time() < deadline and proc.poll() is None:
        marks = list(runs_root.glob("keypoints/*/resume.json"))
        if marks and json.loads(marks[0].read_text())["epoch"] >= 1:
            run_dir = marks[0].parent
            proc.send_signal(signal.SIGKILL)  # as hard as a power cut
            break
        time.sleep(0.02)
    proc.wait()
    assert run_dir is not None, "the run finished or failed before it could be interrupted"
    done = json.loads((run_dir / "resume.json").read_text())["epoch"]
    assert not (run_dir / "run.json").exists() and 1 <= done < 3
    out = _train("keypoints", ["--resume", str(run_dir)], synthetic_root)
    assert f"{done} epoch(s) already done" in out.stdout
    assert whole.wait(timeout=600) == 0, whole.stderr.read()[-3000:]
    two_out, two_err = two.communicate(timeout=600)
    assert two.returncode == 0, two_err[-3000:]
    assert "--distribute: MirroredStrategy over 2 replica(s)" in two_out, two_out[-2000:]
    return {"whole": _only_run(synthetic_root / "kp_whole", "keypoints"), "resumed": run_dir,
            "two": _only_run(synthetic_root / "kp_two", "keypoints")}


def _info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_keypoints_killed_and_resumed_equals_uninterrupted(keypoint_runs):
    """Same seed: a run killed (SIGKILL) after its first epoch and resumed ends with the metrics
    and history of an uninterrupted run, exactly (train_beauty's twin, with two phases and
    weight-level checks, is tests/test_resume.py)."""
    resumed, whole = keypoint_runs["resumed"], keypoint_runs["whole"]
    info, ref = _info(resumed), _info(whole)
    assert info["metrics"] == ref["metrics"] and info["epochs_done"] == 3

    def history(run):  # every column but the wall time, as written
        with open(run / "history.csv", newline="") as fh:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]

    assert history(resumed) == history(whole)
    assert [row["epoch"] for row in history(resumed)] == ["1", "2", "3"]


def test_bad_images_are_skipped_before_training_and_listed(keypoint_runs, damaged_keypoints):
    """The truncated JPEG used to pass the label check and crash epoch 1 even with --skip-bad."""
    info = _info(keypoint_runs["whole"])
    csv_file = str(damaged_keypoints / "training_frames_keypoints.csv")
    assert [(r["file"], r["line"]) for r in info["skipped"]] == [(csv_file, 82), (csv_file, 83)]
    assert "image file is truncated" in info["skipped"][0]["reason"]
    assert "outside the image folder" in info["skipped"][1]["reason"]
    assert info["dataset"]["validation"] + info["dataset"]["train"] == 80


def test_distribute_over_two_devices_matches_one(keypoint_runs):
    one, two = _info(keypoint_runs["whole"])["metrics"], _info(keypoint_runs["two"])["metrics"]
    print(f"held-out NME: one device {one['nme_mean']:.6f}, two devices {two['nme_mean']:.6f}")
    assert one["n"] == two["n"] and one != two  # really a different computation ...
    assert abs(two["nme_mean"] - one["nme_mean"]) <= DISTRIBUTE_NME_REL_TOL * one["nme_mean"], (one, two)


def test_nan_loss_stops_with_a_clear_message(synthetic_root):
    out = _train("keypoints", [*TINY_KEYPOINTS, "--epochs", "2", "--lr", "1e30", "--runs",
                               str(synthetic_root / "nan_runs")], synthetic_root, check=False)
    assert out.returncode == 2
    assert "error: training stopped: loss became" in out.stderr and "--lr" in out.stderr
    assert "Traceback" not in out.stderr


def test_packed_dataset_trains_without_tensorflow(synthetic_root, tmp_path):
    """The GPU-box path: pack here, then train with Keras 3 on JAX while `import tensorflow` fails.
    80 small synthetic faces (the preset's 800 took ~40 s of crops and JAX steps on a loaded box)."""
    import jax  # noqa: F401  (pinned in requirements.lock: a missing JAX fails here, never skips)
    from facepack.data.synthetic import make_keypoints68_dataset

    data = make_keypoints68_dataset(tmp_path / "kp80", n=80, seed=5, image_size=64)
    packed = tmp_path / "kp.npz"
    subprocess.run([sys.executable, str(ROOT / "training" / "pack_dataset.py"), "keypoints", "--data", str(data),
                    "--input-size", "32", "--out", str(packed)], cwd=ROOT, env=_env(synthetic_root), check=True,
                   capture_output=True)
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


def test_kaggle15_format_trains_with_missing_points_masked(synthetic_root, tmp_path):
    from facepack.data.synthetic import make_kaggle15_csv

    csv = make_kaggle15_csv(tmp_path / "training.csv", n=60, seed=2)
    _train("keypoints", ["--data", str(csv), "--input-size", "32", "--width", "8", "--batch-size", "16",
                         "--epochs", "1", "--runs", str(tmp_path / "runs")], synthetic_root)
    info = json.loads((_only_run(tmp_path / "runs", "keypoints") / "run.json").read_text())
    assert info["num_points"] == 15 and info["format"] == "15"
    assert np.isfinite(info["metrics"]["nme_mean"])  # NaN targets never reach the loss or the metric
