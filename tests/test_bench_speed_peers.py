"""Fast checks of bench/bench_speed_peers.py and bench/photos.py (issue 14): flags, the table's ratios, photos.

No benchmark runs here: no Node, no browser, no bench/peer, no datasets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_speed_peers as bench  # noqa: E402
import photos  # noqa: E402


def test_help_and_flags():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_speed_peers.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "bench/results/" in proc.stdout and bench.INSTALL in proc.stdout
    quick = bench.parse_args(["--quick"])
    assert (quick.repeat, quick.passes) == (3, 1)
    assert (bench.parse_args([]).repeat, bench.parse_args([]).passes) == (5, 3)
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeat", "1"])


def test_combine_takes_the_median_over_passes():
    passes = [{"env": {}, "photos": {"a": {"ms": ms, "faces": 1}}} for ms in (30.0, 10.0, 20.0)]
    out = bench.combine(passes)
    assert out["photos"]["a"]["ms"] == 20.0 and out["photos"]["a"]["ms_passes"] == [30.0, 10.0, 20.0]
    assert bench.combine(passes, fastest=True)["photos"]["a"]["ms"] == 10.0
    assert bench.parse_args(["--fastest"]).fastest and not bench.parse_args([]).fastest


def test_table_ratios_are_ours_over_theirs():
    rgbs = {"p": np.zeros((3, 4, 3), np.uint8)}
    results = {"facepack_node": {"photos": {"p": {"ms": 50.0, "faces": 2}}},
               "face_api": {"photos": {"p": {"ms": 100.0, "faces": 1}}},
               "human": {"photos": {"p": {"ms": 25.0, "faces": 2}}}}
    headers, rows = bench.table(results, rgbs)
    assert rows == [["p 4x3", "50 (2)", "100 (1)", "25 (2)", "0.50x", "2.00x"]]
    assert headers[0] == "photo" and len(headers) == len(rows[0])


def test_composed_photos_are_deterministic():
    a, b = photos.crowd(), photos.crowd()
    assert a.shape == (*photos.CROWD_SIZE, 3) and np.array_equal(a, b)
    assert photos.still().shape == (*photos.STILL_SIZE, 3)
    assert not np.array_equal(photos.crowd(seed=photos.SEED + 1), a)
