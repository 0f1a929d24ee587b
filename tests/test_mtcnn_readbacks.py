"""Readbacks of the JS detector (static/facepack/mtcnn.js:runNet, issue 14): each net call reads its
outputs back to JavaScript ONCE (the outputs concatenated on the backend), so detecting faces on
a photo reads back one tensor per P-Net pyramid level plus one for R-Net and one for O-Net (on
WebGL each readback is a GPU sync; before, every output was read alone: 2 per level + 2 + 3).
Node, WASM (tests/js/mtcnn_readbacks.mjs); the parity bundle's MTCNN nets."""

from __future__ import annotations

import numpy as np
import pytest

from facepack import spec
from facepack.detect import mtcnn_detector
from jsharness import build_parity_bundle, node_ready, parity_photos, run_node, write_raw

PHOTO = "astronaut"  # one face: P-Net, R-Net and O-Net all run
NETS_AFTER_PNET = 2  # R-Net and O-Net, one readback each


def pnet_levels(h: int, w: int) -> int:
    """Pyramid levels P-Net runs on for an h x w detection image (the package's pyramid from
    spec.MTCNN, levels under mtcnn_detector.PNET_MIN_LEVEL_PX left out, as mtcnn.js does)."""
    from mtcnn.utils.images import build_scale_pyramid

    m = spec.MTCNN
    scales = build_scale_pyramid(w, h, m["min_face_size_px"], m["scale_factor"], m["min_size_px"])
    return sum(mtcnn_detector.pnet_accepts(int(h * s), int(w * s)) for s in np.asarray(scales))


@pytest.fixture(scope="module")
def counted(tmp_path_factory, fixtures_dir):
    ok, why = node_ready()
    if not ok:
        pytest.fail(f"Node is needed for the JS readback test: {why}")
    # The same root as the parity tests' fixture: the bundle is built once per session.
    models = build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)
    rgb = parity_photos(fixtures_dir, large=False)[PHOTO]
    assert max(rgb.shape[:2]) <= spec.DETECT_MAX_SIDE_PX, "the photo must not be downscaled for detection"
    raw = write_raw(rgb, tmp_path_factory.mktemp("readbacks") / f"{PHOTO}.rgb", PHOTO)
    out = run_node("mtcnn_readbacks.mjs", {"bundle": str(models["bundle"]), "backend": "wasm", "image": raw}, timeout=300)
    return out, pnet_levels(*rgb.shape[:2])


def test_detector_reads_each_net_call_back_once(counted):
    out, levels = counted
    assert out["backend"] == "wasm"
    assert out["boxes"] >= 1, f"no face found on {PHOTO}: R-Net and O-Net did not both run"
    assert levels >= 5, f"pyramid of {levels} levels: too few to tell one readback per level from two"
    assert out["readbacks"] == levels + NETS_AFTER_PNET, (
        f"{out['readbacks']} readbacks for {levels} P-Net levels + R-Net + O-Net (expected {levels + NETS_AFTER_PNET})")
