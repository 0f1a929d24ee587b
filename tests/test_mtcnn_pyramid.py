"""The P-Net pyramid's AREA resize (static/facepack/ops/area_resize.js:AreaResizer, issue 14): the
small levels of a planned pyramid come from ONE sweep down the photo; each level must equal the
package's level (tf.image.resize AREA of the normalised photo, mtcnn/utils/images.py:scale_images)
and be the same bits however the levels are asked for (planned, alone, in reverse, twice).
tests/test_js_ops.py checks single resizes against tf.image.resize; this checks the multi-level
bookkeeping of the sweep on a whole pyramid. Node (tests/js/pyramid.mjs)."""

from __future__ import annotations

import numpy as np
import pytest
from mtcnn.utils import images as pkg_images

from facepack import spec
from jsharness import node_ready, run_node

# Normalised units (-1..1): float32 rounding of the level (tests/test_js_ops.py:PYRAMID_LEVEL_TOL).
PYRAMID_LEVEL_TOL = 2.5e-7
PHOTO_HW = (230, 397)  # pyramid from 20 px: 10 levels, 8 of them by the sweep
MIN_SWEPT_LEVELS = 6


@pytest.fixture(scope="module")
def pyramid():
    ok, why = node_ready()
    if not ok:
        pytest.fail(f"Node is needed for the JS pyramid test: {why}")
    m = spec.MTCNN
    h, w = PHOTO_HW
    img = np.random.default_rng(14).integers(0, 256, (h, w, 3)).astype(np.float32)
    scales = pkg_images.build_scale_pyramid(w, h, spec.MTCNN_PRESETS["packageCompatible"]["min_face_size_px"],
                                            m["scale_factor"], m["min_size_px"])
    refs = [pkg_images.scale_images(pkg_images.normalize_images(img[None]), s)[0].numpy() for s in scales]
    job = {"image": {"data": img.ravel().tolist(), "shape": [h, w, 3]},
           "shapes": [list(r.shape[:2]) for r in refs], "offset": m["normalize"]["offset"]}
    return run_node("pyramid.mjs", job, timeout=120), refs


def test_every_level_equals_the_package_level(pyramid):
    out, refs = pyramid
    m = spec.MTCNN
    assert sum(level["byPrefix"] for level in out["levels"]) >= MIN_SWEPT_LEVELS
    for level, ref in zip(out["levels"], refs, strict=True):
        got = (np.asarray(level["data"], np.float32).reshape(ref.shape) - m["normalize"]["offset"]) * m["normalize"]["scale"]
        assert np.abs(got - ref).max() <= PYRAMID_LEVEL_TOL, level["shape"]


def test_levels_are_the_same_bits_however_asked_for(pyramid):
    out, _ = pyramid
    assert (out["unplannedDiffer"], out["reverseDiffer"], out["againDiffer"]) == (0, 0, 0)



# Whole pyramids (the spec's scale factor and P-Net size, from the package-compatible 20 px) of
# generated photos: 13x40, 230x397, 517x389; 1 and 3 channels; uint8 and non-integer float32;
# offsets 0 and the spec's 127.5. Measured: 24 pyramids, 136 levels (104 by the sweep), 3.35 M
# values, 0 differing.
REF_SIZES = [[13, 40], [230, 397], [517, 389]]
REF_MIN_LEVELS, REF_MIN_SWEPT = 130, 100
P_NET_MIN_LEVEL = 11  # the smallest level side the shipped P-Net accepts (mtcnn.js:pnetAccepts)


def test_sweep_equals_the_previous_table_version():
    """The one-sweep pyramid (ops/area_resize.js since 0466c5e..) adds the same float64 terms in the
    same order as the previous [h + 1, w * c] prefix table (tests/js/ref/area_resize_0466c5e.js,
    kept verbatim): every level the same bits."""
    m = spec.MTCNN
    out = run_node("area_resize_ref.mjs", {
        "sizes": REF_SIZES, "channels": [1, 3], "offsets": [0, m["normalize"]["offset"]], "dtypes": ["float32", "uint8"],
        "minFaceSize": spec.MTCNN_PRESETS["packageCompatible"]["min_face_size_px"], "scaleFactor": m["scale_factor"],
        "minSize": m["min_size_px"], "minLevel": P_NET_MIN_LEVEL}, timeout=120)
    assert out["pyramids"] == len(REF_SIZES) * 8
    assert out["levels"] >= REF_MIN_LEVELS and out["swept"] >= REF_MIN_SWEPT, out
    assert out["differing"] == 0, out
