"""The page's models table cells (static/models-panel.js) in Node, on manifest entries shaped as
facepack/export writes them: the parity cell shows the number the export's check compared with its
tolerance (parity.criterion), the precision cell says how many kernels a uint8 rule kept float16."""

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
