"""Exact --resume: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted one.

One subprocess pair on tiny synthetic data (train_beauty, two phases: a frozen-backbone epoch, then
the whole network under a cosine schedule with SGD momentum). Run A trains uninterrupted; run B
is killed right after it commits epoch KILL_AFTER_EPOCH (so inside the next epoch, whose finished
batches are lost) and resumed with --resume. Everything that defines the result must match exactly
(CPU, TF op determinism): the weights, the held-out predictions and metrics, and every loss in
history.csv, whose epochs run 1..N without a gap or a renumbering. A and B run at the same time.
"""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = 5
TINY_BEAUTY = ["--n-synthetic", "48", "--backbone", "mobilenet_v2", "--alpha", "0.35", "--input-size", "32",
               "--batch-size", "8", "--head-epochs", "1", "--epochs", "3", "--lr", "0.05", "--seed", str(SEED)]
EPOCHS = 4  # 1 head + 3 full
KILL_AFTER_EPOCH = 2  # the kill lands inside epoch 3 (phase "full": its optimizer state must come back)
TIMEOUT_S = 600


def _env(tmp: Path) -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1",
                FACEPACK_SYNTHETIC=str(tmp / "synthetic"), FACEPACK_CACHE=str(tmp / "cache"))


def _cmd(*args) -> list:
    return [sys.executable, str(ROOT / "training" / "train_beauty.py"), *args]


def _weights(run: Path) -> dict:
    """{dataset path: array} of every weight in run/model.keras (the h5 inside the zip)."""
    import h5py

    out = {}
    with zipfile.ZipFile(run / "model.keras") as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(uninterrupted run folder, killed-and-resumed run folder, what the kill left behind)."""
    tmp = tmp_path_factory.mktemp("resume")
    env = _env(tmp)
    from facepack.data.synthetic import ensure_synthetic

    ensure_synthetic("beauty", root=env["FACEPACK_SYNTHETIC"], n=48)  # once here: the two runs only read it
    whole = subprocess.Popen(_cmd(*TINY_BEAUTY, "--runs", str(tmp / "a")), cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_cmd(*TINY_BEAUTY, "--runs", str(tmp / "b")), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, killed = time.time() + TIMEOUT_S, None
    while time.time() < deadline and victim.poll() is None:
        marks = list((tmp / "b").glob("beauty/*/resume.json"))
        try:
            point = json.loads(marks[0].read_text()) if marks else {}
        except ValueError:  # replaced in one step, so never half-written; be safe anyway
            point = {}
        if point.get("epoch", 0) >= KILL_AFTER_EPOCH:
            victim.send_signal(signal.SIGKILL)  # as hard as a power cut
            killed = {"run": marks[0].parent, "point": point}
            break
        time.sleep(0.02)
    victim.wait()
    assert killed, f"run B finished or failed before epoch {KILL_AFTER_EPOCH}: {victim.stderr.read()[-3000:]}"
    run_b = killed["run"]
    killed["files"] = sorted(p.name for p in run_b.iterdir())
    killed["history_rows"] = len(_history(run_b))
    resumed = subprocess.run(_cmd("--resume", str(run_b)), cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=TIMEOUT_S)
    out_a, err_a = whole.communicate(timeout=TIMEOUT_S)
    assert whole.returncode == 0, err_a[-3000:]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    killed["resume_stdout"] = resumed.stdout
    run_a = next(p for p in (tmp / "a" / "beauty").iterdir() if (p / "run.json").is_file())
    return run_a, run_b, killed


def test_the_kill_left_an_unfinished_resumable_run(runs):
    _, _, killed = runs
    assert killed["point"]["phase"] == "full" and killed["point"]["epoch"] == KILL_AFTER_EPOCH
    assert "run.json" not in killed["files"] and "model.keras" not in killed["files"]
    assert f"{KILL_AFTER_EPOCH} epoch(s) already done" in killed["resume_stdout"]


def test_resumed_weights_are_bit_identical(runs):
    run_a, run_b, _ = runs
    wa, wb = _weights(run_a), _weights(run_b)
    assert sorted(wa) == sorted(wb) and len(wa) > 10
    differ = [k for k in wa if not np.array_equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} weight arrays differ, e.g. {differ[:3]}"


def test_resumed_metrics_and_predictions_are_identical(runs):
    run_a, run_b, _ = runs
    info_a, info_b = (json.loads((r / "run.json").read_text()) for r in (run_a, run_b))
    assert info_a["metrics"] == info_b["metrics"]
    pa, pb = (np.load(r / "held_out_predictions.npz") for r in (run_a, run_b))
    np.testing.assert_array_equal(pa["pred_1to5"], pb["pred_1to5"])
    assert info_b["epochs_done"] == EPOCHS and not (run_b / "resume.json").exists() and not (run_b / "backup").exists()


def test_resumed_history_is_continuous_and_equal(runs):
    run_a, run_b, _ = runs
    ha, hb = _history(run_a), _history(run_b)
    assert [int(float(r["epoch"])) for r in hb] == list(range(1, EPOCHS + 1))
    assert [r["phase"] for r in hb] == ["head"] + ["full"] * (EPOCHS - 1)
    assert ha == hb  # every loss and metric of every epoch, as text
