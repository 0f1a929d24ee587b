"""Phone-size photos through the whole JS pipeline: the library equals Python on any photo size.

TF.js's own cropAndResize reads wrong pixels on WASM once a crop lies beyond ~2^24 values into
the flattened photo (12 MP and up, face in the lower part); static/facepack/ops/bounded_crop.js
(bilinear) and ops/area_crop.js (area) replace it everywhere the library crops. The ops
themselves (bilinear crop, area crop, detection downscale) are checked against Python bit for bit
at 12, 24 and 108 MP on cpu, wasm and webgl in tests/test_crops_past_2_24.py. Here, with a
fixture face pasted into the far lower right of large canvases (a gradient, made cheaply):

- the pipeline at 12 and 24 MP: Node WASM analyze() equals facepack/pipeline.py within the
  parity tolerances of tests/jsharness.py, and the JS crop + model stages on Python's own
  detections match on the cpu backend within the stage tolerances.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facepack.data.images import load_rgb
from jsharness import (assert_parity, assert_stage_parity, build_parity_bundle, compare_faces, detections_only,
                       node_ready, python_reference, run_node, write_raw)

ok, why = node_ready()
pytestmark = pytest.mark.skipif(not ok, reason=why)

# (height, width) of the canvases: a 12 MP phone (4032 x 3024), 24 MP (6000 x 4000).
SIZES = {"12mp": (3024, 4032), "24mp": (4000, 6000)}
PIPELINE_SIZES = tuple(SIZES)  # the whole pipeline; 108 MP is checked at the ops (tests/test_crops_past_2_24.py)
FLOAT32_EXACT_VALUES = 2 ** 24  # flat indices above this are not exact in float32
FACE_SCALE = 2  # the 512 px astronaut fixture pasted at 1024 px: its face (~214 px) stays
#                 detectable after the 1280 px detection downscale of a 24 MP photo (~46 px)
MARGIN_PX = 40  # the pasted face's distance from the bottom-right corner


def phone_canvas(height: int, width: int, face: np.ndarray) -> np.ndarray:
    """(height, width, 3) uint8: a smooth diagonal gradient with ``face`` pasted MARGIN_PX from
    the bottom-right corner (memory: the canvas itself plus one row and one column of ramps)."""
    canvas = np.empty((height, width, 3), np.uint8)
    ys = (np.arange(height, dtype=np.float32) * (160.0 / height))[:, None]
    xs = (np.arange(width, dtype=np.float32) * (80.0 / width))[None, :]
    for c, (gy, gx, base) in enumerate(((1.0, 0.5, 40.0), (0.6, 1.0, 30.0), (0.3, 0.2, 60.0))):
        canvas[:, :, c] = (base + gy * ys + gx * xs).astype(np.uint8)
    fh, fw = face.shape[:2]
    canvas[height - MARGIN_PX - fh:height - MARGIN_PX, width - MARGIN_PX - fw:width - MARGIN_PX] = face
    return canvas


@pytest.fixture(scope="module")
def face(fixtures_dir):
    astronaut = load_rgb(fixtures_dir / "astronaut.png")
    return np.asarray(Image.fromarray(astronaut).resize((512 * FACE_SCALE,) * 2, Image.BILINEAR))


# --- The whole pipeline at 12 and 24 MP ---------------------------------------------------------
@pytest.fixture(scope="module")
def parity_models(tmp_path_factory, fixtures_dir):
    return build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)


@pytest.fixture(scope="module")
def phone_photos(face):
    return {name: phone_canvas(*SIZES[name], face) for name in PIPELINE_SIZES}


@pytest.fixture(scope="module")
def phone_runs(parity_models, phone_photos, tmp_path_factory):
    """Python reference, Node WASM analyze(), and Node cpu stages on Python's detections."""
    tmp = tmp_path_factory.mktemp("phone_photos")
    py = python_reference(parity_models, phone_photos, heatmaps=True)
    raws = {name: write_raw(rgb, tmp / f"{name}.rgb", name) for name, rgb in phone_photos.items()}
    bundle = str(parity_models["bundle"])
    wasm = run_node("analyze.mjs", {"bundle": bundle, "backend": "wasm",
                                    "images": [{**raw, "options": {"heatmaps": True}} for raw in raws.values()]},
                    timeout=600)
    cpu = run_node("describe.mjs", {"bundle": bundle, "backend": "cpu",
                                    "images": [{**raws[n], "faces": detections_only(r["faces"])} for n, r in py.items()]},
                   timeout=600)
    return {"py": py, "wasm": {r["name"]: r for r in wasm["results"]}, "wasm_backend": wasm["backend"],
            "cpu": {r["name"]: r["faces"] for r in cpu["results"]}, "cpu_backend": cpu["backend"],
            "cpu_tensors": cpu["tensors"]}


@pytest.mark.parametrize("size", PIPELINE_SIZES)
def test_phone_photo_pipeline_parity_wasm(phone_runs, size, artifacts_dir):
    py_faces = phone_runs["py"][size]["faces"]
    js_faces = phone_runs["wasm"][size]["faces"]
    assert phone_runs["wasm_backend"] == "wasm"
    assert py_faces, f"{size}: the pasted face was not found"
    h, w = SIZES[size]
    far = [f for f in py_faces if (int(f["box"]["y"]) * w + int(f["box"]["x"])) * 3 > FLOAT32_EXACT_VALUES]
    assert far, f"{size}: no face lies beyond 2^24 values into the photo"
    err = compare_faces(py_faces, js_faces)
    path = artifacts_dir / "bounded_crop_pipeline.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    report[f"{size}_wasm"] = err
    path.write_text(json.dumps(report, indent=2))
    assert_parity(size, err, py_faces, js_faces)


@pytest.mark.parametrize("size", PIPELINE_SIZES)
def test_phone_photo_stages_cpu(phone_runs, size):
    assert phone_runs["cpu_backend"] == "cpu" and phone_runs["cpu_tensors"] == 0
    assert_stage_parity(size, phone_runs["py"][size]["faces"], phone_runs["cpu"][size])
