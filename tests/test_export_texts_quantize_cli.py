"""``python -m facepack.export.quantize --plan RUN_DIR`` on a RUN_DIR that is missing or no beauty
run: one error line and exit 1, before TensorFlow is imported (before: a 20-line traceback ending
"ValueError: run ...: no model: ..." after ~11 s of importing TensorFlow); RUN_DIR itself missing:
argparse's usage line plus one error line saying what RUN_DIR is, exit 2. Each run is checked with
-X importtime: no tensorflow/keras module was imported."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

PROG = "python -m facepack.export.quantize"
USAGE = f"usage: {PROG} --plan RUN_DIR [--faces N] [--check-faces N] [--out FILE | --force]"
WHAT = "expected a beauty training run folder (runs/beauty/<timestamp>: run.json and its model)"


def _run(*args: str):
    """(rc, stderr lines that are not -X importtime's, imported top-level module names)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "facepack.export.quantize", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    timed = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    modules = {ln.rsplit("|", 1)[-1].strip().split(".")[0] for ln in timed}
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("import time:")]
    assert proc.stdout == ""
    return proc.returncode, lines, modules


def _fake_keras(path):
    """A zip with the members runs.model_files checks for (its directory only, no weights read)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan-runs")
    (root / "empty").mkdir()
    for name, info in {"keypoints": {"model": "keypoints"}, "no_model": {"model": "beauty"},
                       "no_data": {"model": "beauty", "dataset": {"path": str(root / "gone" / "SCUT-FBP5500")}},
                       "with_data": {"model": "beauty", "dataset": {"path": str(root / "SCUT-FBP5500")}}}.items():
        (root / name).mkdir()
        (root / name / "run.json").write_text(json.dumps(info))
    (root / "bad_json").mkdir()
    (root / "bad_json" / "run.json").write_text("{")
    for name in ("no_data", "with_data"):
        _fake_keras(root / name / "model.keras")
    (root / "SCUT-FBP5500").mkdir()
    return root


@pytest.mark.parametrize("args", [(), ("--plan",)])
def test_no_run_dir_is_a_usage_error(args):
    rc, lines, modules = _run(*args)
    assert rc == 2 and lines == [USAGE, f"{PROG}: error: --plan RUN_DIR: {WHAT}"], lines
    assert not modules & {"tensorflow", "keras"}


@pytest.mark.parametrize("case, says", [
    ("missing", f"no such folder; {WHAT}"),
    ("empty", f"not a training run (no run.json); {WHAT}"),
    ("bad_json", "run.json is not valid JSON (Expecting property name"),
    ("keypoints", "a keypoints run; the quantization plan is for beauty runs"),
    ("no_model", "no model: expected model.keras, or model.config.json + model.weights.json + its shards"),
    ("no_data", "the run's dataset (recorded as "),
])
def test_bad_run_is_one_line_before_tensorflow(runs, case, says):
    rc, lines, modules = _run("--plan", str(runs / case))
    assert rc == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"{PROG}: error: --plan {runs / case}: {says}"), lines[0]
    assert not modules & {"tensorflow", "keras", "tf_keras"}, sorted(modules & {"tensorflow", "keras", "tf_keras"})
    if case == "no_data":
        assert re.search(r"set FACEPACK_DATA to the folder that holds 'SCUT-FBP5500'$", lines[0]), lines[0]


def test_a_beauty_run_with_its_model_and_dataset_passes_the_check(runs):
    from facepack.export.quantize import check_plan_run

    assert check_plan_run(runs / "with_data") == runs / "with_data"


def test_an_existing_plan_is_kept_unless_asked(runs, tmp_path):
    """The run's recorded plan (the shipped one: models/shipped/beauty) is not overwritten by a
    re-run (new-user finding): exit 1 naming the file and both ways out, before TensorFlow."""
    plan = runs / "with_data" / "quantization_plan.json"
    plan.write_text("{}")
    try:
        rc, lines, modules = _run("--plan", str(runs / "with_data"))
    finally:
        plan.unlink()
    assert rc == 1 and len(lines) == 1, lines
    assert lines[0] == (f"{PROG}: error: {plan} exists (the plan the exporter uses for this run's uint8 bundle); "
                        "pass --out FILE to write the new plan elsewhere, or --force to replace it"), lines[0]
    assert not modules & {"tensorflow", "keras", "tf_keras"}


@pytest.mark.parametrize("flag, value", [("--faces", "0"), ("--check-faces", "-1"), ("--faces", "many")])
def test_face_counts_below_one_are_usage_errors(runs, flag, value):
    rc, lines, modules = _run("--plan", str(runs / "with_data"), flag, value)
    shown = repr(value) if value == "many" else value  # a word is quoted, a number is not
    assert rc == 2 and lines[-1] == f"{PROG}: error: argument {flag}: expected a whole number of faces >= 1, got {shown}", lines
    assert not modules & {"tensorflow", "keras"}


def test_out_and_force_exclude_each_other(runs):
    rc, lines, _ = _run("--plan", str(runs / "with_data"), "--out", "x.json", "--force")
    assert rc == 2 and "not allowed with argument" in lines[-1], lines
