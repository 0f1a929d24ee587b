"""The page's models table cells (static/models-panel.js) in Node, on manifest entries shaped as
facepack/export writes them: the parity cell shows the number the export's check compared with its
tolerance (parity.criterion), the precision cell says how many kernels a uint8 rule kept float16, the
metrics cell survives a CV without its spread and follows the manifest's keypoints.mirror_average."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jsharness import node_ready

ROOT = Path(__file__).resolve().parent.parent
ok, why = node_ready()
pytestmark = pytest.mark.skipif(not ok, reason=why)

ENTRIES = {
    "beauty_uint8": {"precision": "uint8",
                     "quantization": {"rule": "equalise+gptq+float16", "float16": ["a/kernel", "b/kernel"],
                                      "on_grid": ["c/kernel", "d/kernel", "e/kernel"]},
                     "parity": {"max_abs_diff": 0.301, "rel_rms": 0.044, "tolerance": 1.0, "criterion": "rel_rms",
                                "against": "Keras 3 model"}},
    "mtcnn": {"precision": "float32",
              "parity": {"max_abs_diff": 2e-7, "rel_rms": 1e-7, "tolerance": 1e-3, "criterion": "max_abs_diff",
                         "against": "mtcnn package"}},
    "failing": {"precision": "float16", "parity": {"max_abs_diff": 0.5, "rel_rms": 0.3, "tolerance": 0.25,
                                                   "criterion": "rel_rms"}},
    "unchecked": {"precision": "float32"},
}


@pytest.fixture(scope="module")
def cells():
    script = ("import { describeParity, describePrecision } from './static/models-panel.js';"
              "const entries = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(Object.fromEntries(Object.entries(entries).map("
              "([n, e]) => [n, [describePrecision(e), describeParity(e.parity)]]))));")
    out = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(ENTRIES)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_parity_cell_shows_the_criterion_the_check_used(cells):
    assert cells["beauty_uint8"][1] == "✓ rel rms 4.4e-2 (tol 1; max |Δ| 3.0e-1) vs Keras 3 model"
    assert cells["mtcnn"][1] == "✓ max |Δ| 2.0e-7 (tol 0.001) vs mtcnn package"
    assert cells["failing"][1].startswith("✗ rel rms 3.0e-1 (tol 0.25;")  # 0.3 > 0.25
    assert cells["unchecked"][1] == "not checked"


def test_precision_cell_counts_the_kernels_kept_float16(cells):
    assert cells["beauty_uint8"][0] == "uint8, 2 of 5 kernels float16"
    assert cells["mtcnn"][0] == "float32"


KEYPOINTS_RUN = {"metrics": {"nme_mean": 0.0523, "command": "train.py ..."}, "metrics_mirror": {"nme_mean": 0.0498}}
BEAUTY_METRICS = {"pc": 0.91, "mae": 0.21}
# describeRunMetrics cases: [model name, run, manifest spec]
RUN_CASES = {
    "cv_full": ["beauty", {"cv": {"pc_mean": 0.9012, "pc_std": 0.0123, "folds": 5}, "metrics": BEAUTY_METRICS}, {}],
    "cv_no_std": ["beauty", {"cv": {"pc_mean": 0.9012, "folds": 5}, "metrics": BEAUTY_METRICS}, {}],
    "cv_null_std_no_folds": ["beauty", {"cv": {"pc_mean": 0.9012, "pc_std": None}, "metrics": BEAUTY_METRICS}, {}],
    "mirror_true": ["keypoints", KEYPOINTS_RUN, {"keypoints": {"mirror_average": True}}],
    "mirror_false": ["keypoints", KEYPOINTS_RUN, {"keypoints": {"mirror_average": False}}],
    "mirror_absent": ["keypoints", KEYPOINTS_RUN, {"keypoints": {}}],
    "no_keypoints_spec": ["keypoints", KEYPOINTS_RUN, {}],
}


@pytest.fixture(scope="module")
def run_cells():
    """describeRunMetrics on each case in one Node call; a case that throws gives 'THROWS: message'."""
    script = ("import { describeRunMetrics } from './static/models-panel.js';"
              "const cases = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(Object.fromEntries(Object.entries(cases).map(([k, [name, run, spec]]) => {"
              "  try { return [k, describeRunMetrics(name, run, { spec, models: {} })]; }"
              "  catch (err) { return [k, `THROWS: ${err.message}`]; } }))));")
    out = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(RUN_CASES)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_metrics_cell_with_a_cv_lacking_its_spread(run_cells):
    """A run.cv with pc_mean but no pc_std (null or absent) or no folds: the CV headline without
    them (it threw "Cannot read properties of undefined (reading 'toFixed')", and the whole models
    panel did not render)."""
    assert run_cells["cv_full"] == "CV pc 0.9012 ± 0.0123 (5 folds); this run: pc 0.91, mae 0.21"
    assert run_cells["cv_no_std"] == "CV pc 0.9012 (5 folds); this run: pc 0.91, mae 0.21"
    assert run_cells["cv_null_std_no_folds"] == "CV pc 0.9012; this run: pc 0.91, mae 0.21"


def test_keypoints_cell_follows_the_manifests_mirror_average(run_cells):
    """The page mirror-averages only when spec.keypoints.mirror_average is true (options.js resolves
    mirrorKeypoints so); false or absent: it says it does not and quotes no mirror-averaged NME."""
    assert run_cells["mirror_true"] == ("nme_mean 0.0523 (model alone; the page mirror-averages:"
                                        " nme_mean 0.0498 mirror-averaged)")
    for case in ("mirror_false", "mirror_absent", "no_keypoints_spec"):
        assert run_cells[case] == "nme_mean 0.0523 (model alone; the page does not mirror-average)", case
