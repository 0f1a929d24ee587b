"""bench/bench_speed_peers.py (issue 14): the ratio table and the issue's three targets it prints
(facepack <= face-api on every photo with as many faces, the 512x512 portrait <= 60 ms in Chromium,
JS <= the Python pipeline on every photo). Pure Python: no benchmark runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_speed_peers as bench  # noqa: E402


def _res(**cols):
    """{column: {photo: (ms, faces)}} -> the results layout of bench_speed_peers.main."""
    return {c: {"photos": {n: {"ms": ms, "faces": f} for n, (ms, f) in photos.items()}} for c, photos in cols.items()}


def test_like_for_like_ratio_sits_next_to_the_full_one():
    rgbs = {"astronaut": np.zeros((2, 2, 3), np.uint8)}
    results = _res(facepack_node=({"astronaut": (90.0, 1)}), facepack_node_lite=({"astronaut": (45.0, 1)}),
                   face_api=({"astronaut": (60.0, 1)}), python=({"astronaut": (180.0, 1)}))
    headers, rows = bench.table(results, rgbs)
    assert headers[1:4] == ["facepack Node ms (faces)", "facepack Node det + kp ms (faces)", "face-api tiny + 68 ms (faces)"]
    ratio = dict(zip(headers, rows[0]))
    assert ratio["facepack Node / face-api"] == "1.50x"
    assert ratio["facepack Node det + kp / face-api"] == "0.75x"
    assert ratio["facepack Node / Python"] == "0.50x"


def test_targets_name_the_photos_that_miss():
    results = _res(facepack_node={"astronaut": (50.0, 1), "crowd25": (500.0, 25)},
                   facepack_chromium={"astronaut": (61.0, 1), "crowd25": (90.0, 25)},
                   face_api={"astronaut": (70.0, 1), "crowd25": (100.0, 0)},
                   python={"astronaut": (40.0, 1), "crowd25": (900.0, 25)})
    lines = bench.targets(results)
    assert "facepack Node <= face-api on every photo, as many faces: NOT met (crowd25)" in lines
    assert "facepack Chromium <= face-api on every photo, as many faces: met" in lines
    assert "astronaut (512x512) in Chromium WASM <= 60 ms: NOT met (61 ms)" in lines
    assert "facepack Node <= Python pipeline on every photo: NOT met (astronaut)" in lines
    assert "facepack Chromium <= Python pipeline on every photo: NOT met (astronaut)" in lines
    # fewer faces than face-api misses the target even when faster
    fewer = _res(facepack_node={"a": (10.0, 0)}, face_api={"a": (70.0, 1)})
    assert bench.targets(fewer) == ["facepack Node <= face-api on every photo, as many faces: NOT met (a)"]


def test_cpu_table_keeps_the_columns_that_measured_cpu():
    rgbs = {"a": np.zeros((2, 3, 3), np.uint8)}
    results = _res(facepack_node={"a": (300.0, 1)}, facepack_node_lite={"a": (200.0, 1)},
                   facepack_chromium={"a": (250.0, 1)}, face_api={"a": (150.0, 1)})
    for col, cpu in (("facepack_node", 90.0), ("facepack_node_lite", 40.0), ("face_api", 80.0)):
        results[col]["photos"]["a"]["cpu_ms"] = cpu
    headers, rows = bench.cpu_table(results, rgbs)
    assert headers == ["photo", "facepack Node CPU ms", "facepack Node det + kp CPU ms", "face-api tiny + 68 CPU ms",
                       "facepack Node / face-api", "facepack Node det + kp / face-api"]
    assert rows == [["a 3x2", "90", "40", "80", "1.12x", "0.50x"]]
