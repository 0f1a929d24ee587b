"""No tensor leaks in the JavaScript pipeline: tf.memory().numTensors is the same before and
after analyze(), after 100 calls (faces, heatmaps on), after calls that find no face, and back
to zero once the analyzer is disposed (and the area patcher's spare buffer dropped). Node, WASM backend (tests/js/analyze.mjs). The browser
page is checked likewise in tests/test_parity_browser.py; each model set in tests/test_js_api.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from jsharness import build_parity_bundle, node_ready, parity_photos, run_node, write_raw

ok, why = node_ready()
pytestmark = pytest.mark.skipif(not ok, reason=why)

CALLS = 100


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory, fixtures_dir):
    models = build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)
    tmp = tmp_path_factory.mktemp("leaks")
    photos = parity_photos(fixtures_dir, large=False)
    face = np.ascontiguousarray(photos["astronaut"][0:256, 100:356])
    images = [{**write_raw(face, tmp / "face.rgb", "face"), "options": {"heatmaps": True}},
              {**write_raw(photos["gradient"], tmp / "gradient.rgb", "gradient")}]
    return run_node("analyze.mjs", {"bundle": str(models["bundle"]), "backend": "wasm", "repeat": CALLS,
                                    "images": images}, timeout=600)


def test_calls_find_what_they_should(leak_run):
    counts = {r["name"]: len(r["faces"]) for r in leak_run["results"]}
    assert counts == {"face": 1, "gradient": 0}
    assert all(len(r["runs_ms"]) == CALLS for r in leak_run["results"])


def test_no_tensor_leaks_over_100_calls(leak_run):
    t = leak_run["tensors"]
    assert t["before"] > 0  # the models' weights
    assert t["after_first"] == t["before"], t
    assert t["after_all"] == t["before"], t


def test_dispose_frees_every_tensor(leak_run):
    assert leak_run["tensors"]["after_dispose"] == 0


FACE_TABLE_BYTES = 257 * 257 * 3 * 8  # the 256 px face's integral image: (H+1) x (W+1) x RGB float64


def test_dispose_drops_the_spare_integral_image_buffer(leak_run):
    """The area patcher keeps the last released integral-image buffer for the next photo (module
    state, up to ~39 MB); analyzer.dispose() drops it (review #2)."""
    spare = leak_run["spare_bytes"]
    assert spare["before_dispose"] >= FACE_TABLE_BYTES, spare  # kept between calls: the test sees it
    assert spare["after_dispose"] == 0, spare


def test_dispose_during_analyze_finishes_it_then_frees_everything(tmp_path_factory, fixtures_dir):
    """analyzer.dispose() while an analyze() runs (called from inside it, just before O-Net, when
    the photo's integral image is built and its release() still to come): the running call
    finishes with the same faces as before, and once it has settled no tensor and no spare
    integral-image buffer is left (a release after dispose used to refill the ~39 MB module-level
    buffer, and the disposed weights made the call fail mid-way); a later analyze() is refused."""
    models = build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)
    tmp = tmp_path_factory.mktemp("dispose-inflight")
    face = np.ascontiguousarray(parity_photos(fixtures_dir, large=False)["astronaut"][0:256, 100:356])
    out = run_node("dispose_inflight.mjs", {"bundle": str(models["bundle"]), "image": write_raw(face, tmp / "face.rgb")},
                   timeout=300)
    assert out["hooked"], "O-Net never ran: the photo must reach the third stage"
    assert out["spare_bytes"]["before_dispose"] >= FACE_TABLE_BYTES, out["spare_bytes"]  # the case is live
    assert out["outcome"]["resolved"], out["outcome"]
    assert out["outcome"]["faces"] == out["first_faces"]
    assert out["spare_bytes"]["after_settled"] == 0, out["spare_bytes"]
    assert out["tensors_after_settled"] == 0
    assert "disposed" in (out["after_dispose_error"] or ""), out["after_dispose_error"]
