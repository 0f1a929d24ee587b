"""The 3-channel fast paths of the CPU crops equal their general loops bit for bit.

ops/bounded_crop.js:cropAndResizePixels (face crops: crop_and_resize's float32 kernel) and
ops/area_patches.js:AreaPatcher.patches (R/O-Net area patches, float64) have a loop for RGB that
reorders work only (reused x-blended rows, unrolled channels); each RGB result must equal the
general loop run on each channel alone, so the Python parity the general loop has (tests/
test_bounded_crop.py, tests/test_parity_crowd.py) holds for the fast path too.
"""
from jsharness import run_node

CASES = 300  # random photos, each with 1-5 boxes inside, straddling and outside it
DIFFERING_VALUES = 0  # float32 values whose bits differ


def test_rgb_paths_equal_the_per_channel_loops():
    out = run_node("three_channel_paths.mjs", {"seed": 20261201, "cases": CASES}, timeout=120)
    for name in ["crop", "patches"]:
        assert out[name]["cases"] == CASES, name
        assert out[name]["values"] > 100_000, name
        assert out[name]["differing"] == DIFFERING_VALUES, name
