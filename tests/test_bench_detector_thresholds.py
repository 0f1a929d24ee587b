"""bench/bench_detector_thresholds.py: its helpers (no dataset read, no detector run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench_detector_thresholds as bench  # noqa: E402

GENERATED = [k for k in bench.NOISE_KINDS if k != "scrambled_faces"]  # that one reads SCUT photos


def test_help_and_flags():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_detector_thresholds.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--all" in out.stdout and "recall" in out.stdout
    assert (bench.parse_args([]).faces, bench.parse_args([]).face_free) == (800, 156)
    assert (bench.parse_args(["--quick"]).faces, bench.parse_args(["--quick"]).face_free) == (150, 60)
    with pytest.raises(SystemExit):
        bench.parse_args(["--faces", "0"])


@pytest.mark.parametrize("kind", GENERATED)
def test_face_free_images_are_seeded_uint8(kind):
    a = bench.face_free_image(kind, 3, (48, 64))
    b = bench.face_free_image(kind, 3, (48, 64))
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, bench.face_free_image(kind, 4, (48, 64)))  # another index, another image


def test_evaluate_counts_recall_and_false_faces_with_the_pipeline_filter():
    def face(x, score, side):
        return {"box": {"x": x, "y": 10.0, "width": side, "height": side}, "score": score}

    truth = [[0.0, 0.0], [100.0, 100.0]]  # a face is found when a kept box centre lies inside
    face_runs = [{"dataset": "scut", "truth": truth, "faces": [face(20.0, 0.95, 50.0)]},
                 {"dataset": "scut", "truth": truth, "faces": [face(20.0, 0.85, 50.0)]},
                 {"dataset": "youtube", "truth": truth, "faces": [face(40.0, 0.99, 15.0), face(500.0, 0.99, 60.0)]}]
    free_runs = [{"kind": "uniform", "faces": [face(0.0, 0.91, 30.0)]},
                 {"kind": "stripes", "faces": [face(0.0, 0.85, 30.0), face(0.0, 0.95, 10.0)]}]
    r = bench.evaluate(face_runs, free_runs, 0.9, 20.0)
    assert (r["scut_faces"], r["scut_found"], r["youtube_faces"], r["youtube_found"]) == (2, 1, 1, 0)
    assert r["false_total"] == 1 and r["false_by_kind"]["uniform"] == 1 and r["false_by_kind"]["stripes"] == 0
    r = bench.evaluate(face_runs, free_runs, 0.0, 0.0)
    assert (r["scut_found"], r["youtube_found"], r["false_total"]) == (2, 1, 3)
