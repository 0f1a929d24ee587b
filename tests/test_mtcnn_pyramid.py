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

