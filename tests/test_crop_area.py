"""Area-sampled (antialiased) face crops, spec.CROP_DOWNSCALE == "area": facepack/crop.py:area_crop
and its JS twin static/facepack/ops/area_crop.js (through crop.js:cropSquares)."""

import numpy as np
import pytest

from facepack import crop, spec
from jsharness import run_node

# JS vs Python on the same pixels: the same float64 operations in the same order, one float32
# rounding: equal bit for bit (measured 0.0 on every square below, cpu and wasm).
AREA_CROP_TOL = 0.0
# A square shifted by SHIFT_PX in x and y (the size of a JS vs Python box difference, issue 12):
# a crop pixel moves by (its slope) x SHIFT_PX per axis. Bilinear's slope is the photo's
# pixel-to-pixel difference (up to 255 grey levels per pixel on noise): measured 0.028 grey
# levels here. The area mean's slope is that difference divided by the footprint (STEP pixels):
# at most 2 axes x 255 x SHIFT_PX / STEP = 5.1e-3 grey levels. The same box difference moves the
# models' input STEP times less (10x for a 1920-px face cut to 192 px).
SHIFT_PX = 1e-4
STEP = 10.0  # the square is STEP x the crop
AREA_SHIFT_MAX_GREY = 2 * 255 * SHIFT_PX / STEP
BILINEAR_SHIFT_MIN_GREY = 0.5 * 255 * SHIFT_PX  # guard: the bilinear crop does move ~STEP x more (measured 0.028)

def noise_image(h, w, seed=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_area_crop_is_the_footprint_mean_by_hand():
    # 6 x 6 photo, square (0, 0, 6) -> 2 px: each crop pixel is the mean of a 3 x 3 block
    img = np.arange(36 * 3, dtype=np.float32).reshape(6, 6, 3)
    out = crop.crop_squares(img, [(0.0, 0.0, 6.0)], 2, downscale="area")[0]
    blocks = img.reshape(2, 3, 2, 3, 3).mean(axis=(1, 3))
    np.testing.assert_array_equal(out, blocks.astype(np.float32))
    # square (-1.5, 0, 6) -> 2 px: crop pixel (0, 0) covers x in [-1.5, 1.5], half outside: the
    # pad (0) counts in the mean; column 1 by half its width
    out = crop.crop_squares(img, [(-1.5, 0.0, 6.0)], 2, downscale="area")[0]
    np.testing.assert_allclose(out[0, 0], (img[0:3, 0] + 0.5 * img[0:3, 1]).sum(axis=0) / 9, rtol=1e-6)
    # a fractional footprint: square (0.5, 0, 3) -> 2 px (step 1.5): x over [0.5, 2] of rows 0..1.5
    out = crop.crop_squares(img, [(0.5, 0.0, 3.0)], 2, downscale="area")[0]
    w = np.array([0.5, 1.0])[None, :, None] * np.array([1.0, 0.5])[:, None, None]
    np.testing.assert_allclose(out[0, 0], (img[0:2, 0:2] * w).sum(axis=(0, 1)) / 2.25, rtol=1e-6)


def test_upscaled_squares_stay_bilinear_and_modes_are_checked():
    img = noise_image(50, 60).astype(np.float32)
    squares = [(3.3, 4.4, 20.0), (10.0, 10.0, 32.0)]  # step <= 1 at 32 px
    np.testing.assert_array_equal(crop.crop_squares(img, squares, 32, downscale="area"),
                                  crop.crop_squares(img, squares, 32, downscale="bilinear"))
    assert crop.uses_area((0, 0, 32.001), 32, "area") and not crop.uses_area((0, 0, 32.0), 32, "area")
    with pytest.raises(ValueError, match="'box'"):
        crop.crop_squares(img, squares, 32, downscale="box")


def test_area_crop_moves_step_times_less_than_bilinear_with_the_square():
    img = noise_image(400, 400)
    size = 30
    sq = (37.25, 41.5, STEP * size)
    moved = (sq[0] + SHIFT_PX, sq[1] + SHIFT_PX, sq[2])
    area = crop.crop_squares(img, [sq, moved], size, downscale="area")
    bil = crop.crop_squares(img, [sq, moved], size, downscale="bilinear")
    assert np.abs(area[1] - area[0]).max() <= AREA_SHIFT_MAX_GREY, np.abs(area[1] - area[0]).max()
    assert np.abs(area[1] - area[0]).mean() * STEP / 2 <= np.abs(bil[1] - bil[0]).mean()
    assert np.abs(bil[1] - bil[0]).max() >= BILINEAR_SHIFT_MIN_GREY, np.abs(bil[1] - bil[0]).max()


# Squares of side crop size + these (pixels) straddle the bilinear/area switch (step 1).
STEP_ONE_SIDE_OFFSETS = (1e-9, 0.0, -1e-9)


def test_area_crops_js_equal_python_on_cpu_and_wasm():
    """Downscaled 10x, 1.5x and just over 1x, partly and wholly outside the photo, an upscaled
    square (bilinear) in the same batch, squares of side 48 +- 1e-9 across the border, non-integer pixel values; cpu and wasm (pure JS: the
    backend only holds the photo)."""
    rng = np.random.default_rng(11)
    img = (rng.integers(0, 256, (230, 310, 3)) + rng.random((230, 310, 3)) * 0.5).astype(np.float32)
    squares = [[3.25, 1.5, 240.7], [100.3, 50.7, 72.2], [-40.5, 150.25, 90.0], [290.0, -20.0, 48.0001],
               [-190.0, -180.0, 60.0], [57.123456789, 88.5, 20.0], [0.0, 0.0, 310.0],
               *([-10.5, 200.25, 48.0 + d] for d in STEP_ONE_SIDE_OFFSETS)]
    size = 48
    sp = spec.spec_dict()
    sp["crop"]["downscale"] = "area"
    ref = crop.crop_squares(img, [tuple(s) for s in squares], size, downscale="area")
    out = run_node("area_crop.mjs", {"backends": ["cpu", "wasm"], "squares": squares, "size": size, "spec": sp,
                                     "image": {"data": img.ravel().tolist(), "shape": list(img.shape)}})
    assert [r["backend"] for r in out["results"]] == ["cpu", "wasm"]
    want = ["area" if crop.uses_area(s, size, "area") else "bilinear" for s in squares]
    # the switch at step 1 across the photo's border (where area and bilinear differ): JS takes
    # Python's branch from the same float64 test, side / size > 1 (review #14)
    assert want == ["area"] * 5 + ["bilinear", "area", "area", "bilinear", "bilinear"]
    assert np.abs(ref[7] - ref[8]).max() > 1.0  # so the branch shows in the crop: at the border they differ
    for r in out["results"]:
        assert r["samplers"] == want
        got = np.asarray(r["crops"]["data"], dtype=np.float32).reshape(r["crops"]["shape"])
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= AREA_CROP_TOL, (r["backend"], np.abs(got - ref).max(axis=(1, 2, 3)))


# Photos past 2^24 values (12, 24 and 108 MP; cpu, wasm and webgl): tests/test_crops_past_2_24.py
# checks the area crops there bit for bit (AREA_CROP_TOL) against crop.crop_squares(downscale="area").


# Against OpenCV's INTER_AREA where every footprint is k whole pixels (an independent
# computation): float32 output rounding (half an ulp at 128..255: 7.6e-6) plus cv2's own float64
# rounding (measured up to 4.2e-6 in tests/test_detect.py).
AREA_CV2_TOL = 1.5e-5


@pytest.mark.parametrize("k, n", [(2, 96), (5, 48), (8, 24)])
def test_area_crop_equals_cv2_inter_area_on_aligned_cells(k, n):
    import cv2

    img = noise_image(k * n + 11, k * n + 17, seed=k)
    x0, y0 = 9, 5
    got = crop.crop_squares(img, [(float(x0), float(y0), float(k * n))], n, downscale="area")[0]
    block = img[y0:y0 + k * n, x0:x0 + k * n].astype(np.float64)
    assert np.abs(got - cv2.resize(block, (n, n), interpolation=cv2.INTER_AREA)).max() <= AREA_CV2_TOL


# JS area crop speed: a 2500-px square cut to 192 px (19 M values) against one float64 pass over
# the same values (tests/js/area_crop_speed.mjs, process CPU time, fastest of 5, interleaved so
# load cancels). Measured (this 2-core box, Node): 1.64-1.72x (about 26 ms vs 15.5 ms) since the
# rows under no crop-pixel corner are summed in place, 4 rows a pass, and a corner row in one pass;
# 3.37-3.41x (53 ms) before.
AREA_SPEED_RATIO_MAX = 2.5


def test_area_crop_js_costs_about_one_pass_over_the_square():
    out = run_node("area_crop_speed.mjs", {"side": 2500, "size": 192, "reps": 5})
    assert out["ratio"] <= AREA_SPEED_RATIO_MAX, out
