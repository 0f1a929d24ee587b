"""Parity on a crowded photo (issue 12, item 2): many small faces at many scales, Node WASM vs Python.

The photo is a seeded collage made here from the fixture faces (tests/fixtures: astronaut,
Einstein, the seated man), pasted as squares of 38-90 px (faces, i.e. detector boxes, of about
25-60 px) at random positions, slightly overlapping, on a textured background, in a canvas of
1500-2000 px a side (so the detection downscale to spec.DETECT_MAX_SIDE_PX runs too). Hundreds of
P-Net candidates with near-equal scores make NMS sensitive to any difference in the pyramid:
before the fix the JS resized raw pixels for the AREA pyramid and normalised after (TF's AREA
weights sum to 1 +- 1e-4, so levels moved by up to 0.01 grey levels) and used
tf.image.resizeBilinear for the downscale (up to 0.027 grey levels off). Measured on
CROWD_SEED before the fix: JS found 21 faces where Python found 20 (with each cause alone, too).

Tolerances (issue 12's targets, tighter than tests/jsharness.py's fixture-photo ones): units in
the names. The pipeline and models are the parity bundle's (jsharness.build_parity_bundle).

End-to-end beauty and keypoint differences are the residual box noise times the model's
sensitivity to a box shift (issue 12, item 3). Given Python's boxes the JS beauty equals
Python's to 1e-4 points; shifting every box by d px moves Python's beauty score by (median over
the faces of a collage, d = 1e-4..1e-2 px) 30-45 points per px for the untrained parity model on
these 25-60 px faces (max 86) and 5-6 points per px for the shipped trained model (max 16). With
box noise <= 6.1e-4 px that is <= 0.05 points for the parity model: measured 0.006-0.047 over
10 collages (0.013 on CROWD_SEED, 0.044 before the fix), so SCORE_TOL_POINTS = 0.02 holds here
but is not a bound for every crowded photo with an untrained model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from jsharness import (build_parity_bundle, compare_faces, node_ready, python_reference, run_node, write_raw)

ok, why = node_ready()
pytestmark = pytest.mark.skipif(not ok, reason=why)

CROWD_SEED = 2
CROWD_FACES = 40  # squares pasted (some are too small or too cut for the detector)
CROWD_SQUARE_PX = (38, 90)  # side of a pasted face square, canvas pixels
CROWD_GAP_PX = -10  # squares may overlap by up to 10 px
CROWD_CANVAS_PX = (1500, 2000)  # each side drawn from this range
# Fixture photo -> squares (x0, y0, side) around its faces, photo pixels.
FACE_SQUARES = {"astronaut.png": [(153, 47, 140)], "einstein.jpg": [(326, 250, 140), (116, 612, 75)]}
MIN_FACES_FOUND = 15  # guard: the collage is crowded for the detector (19-23 found, by the confidence filter)

BOX_IOU_MIN = 0.999  # detector box, Python vs JS
# Box corners, photo pixels: what is left is the P/R/O-Nets' float32 accumulation order (WASM vs TF
# CPU); measured <= 6.1e-4 px over 10 collages after the fix, >= 1.7e-3 px (up to a swapped face) before.
BOX_TOL_PX = 1e-3
DETECT_SCORE_TOL = 1e-3  # detector confidence 0..1
LANDMARK_TOL_PX = 0.1  # the 5 MTCNN landmarks, photo pixels
SCORE_TOL_POINTS = 0.02  # expected beauty score 0..100
KEYPOINT_TOL_PX = 0.1  # 68 keypoints, photo pixels
HEATMAP_MIN_CORR = 0.999  # Grad-CAM grids, Pearson correlation


def textured_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: smooth colour blotches + a sine lattice + pixel noise (seeded)."""
    from PIL import Image

    low = rng.uniform(40, 220, (h // 64 + 2, w // 64 + 2, 3)).astype(np.uint8)
    bg = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC), np.float32)
    bg += rng.normal(0, 18, (h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    bg += 25 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 11.0)[..., None]
    return np.clip(bg, 0, 255).astype(np.uint8)


def crowd_photo(fixtures_dir, seed: int = CROWD_SEED, count: int = CROWD_FACES) -> tuple[np.ndarray, list]:
    """(H, W, 3) uint8 collage of fixture faces and its squares [(x, y, side)], deterministic in seed."""
    from PIL import Image

    from facepack.data.images import load_rgb

    faces = []
    for name, squares in FACE_SQUARES.items():
        rgb = load_rgb(fixtures_dir / name)
        faces += [rgb[y0:y0 + s, x0:x0 + s] for x0, y0, s in squares]
    rng = np.random.default_rng(seed)
    h, w = (int(rng.integers(*CROWD_CANVAS_PX, endpoint=True)) for _ in range(2))
    canvas = textured_background(rng, h, w)
    placed, gap = [], CROWD_GAP_PX
    for _ in range(10_000):
        if len(placed) == count:
            break
        s = int(rng.integers(*CROWD_SQUARE_PX, endpoint=True))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        if any(x < px + ps + gap and px < x + s + gap and y < py + ps + gap and py < y + s + gap
               for px, py, ps in placed):
            continue
        face = faces[int(rng.integers(len(faces)))]
        canvas[y:y + s, x:x + s] = np.asarray(Image.fromarray(face).resize((s, s), Image.LANCZOS))
        placed.append((x, y, s))
    return canvas, placed


@pytest.fixture(scope="session")
def parity_models(tmp_path_factory, fixtures_dir):
    # The same root as tests/test_parity_node.py: built once per session.
    return build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)


@pytest.fixture(scope="module")
def crowd(fixtures_dir):
    return crowd_photo(fixtures_dir)[0]


@pytest.fixture(scope="module")
def results(parity_models, crowd, tmp_path_factory, artifacts_dir):
    py = python_reference(parity_models, {"crowd": crowd}, heatmaps=True)["crowd"]
    raw = write_raw(crowd, tmp_path_factory.mktemp("crowd") / "crowd.rgb", "crowd")
    js = run_node("analyze.mjs", {"bundle": str(parity_models["bundle"]), "backend": "wasm",
                                  "images": [{**raw, "options": {"heatmaps": True}}]}, timeout=600)
    js_faces = js["results"][0]["faces"]
    err = compare_faces(py["faces"], js_faces)
    (artifacts_dir / "parity_crowd.json").write_text(json.dumps({"backend": js["backend"], "errors": err}, indent=2))
    return py["faces"], js_faces, err


def test_collage_is_deterministic(fixtures_dir, crowd):
    again, placed = crowd_photo(fixtures_dir)
    assert np.array_equal(again, crowd) and len(placed) == CROWD_FACES
    assert all(CROWD_CANVAS_PX[0] <= side <= CROWD_CANVAS_PX[1] for side in crowd.shape[:2])


def test_crowd_js_finds_the_same_faces(results):
    py, js, err = results
    assert err["count_py"] >= MIN_FACES_FOUND, f"guard: Python found only {err['count_py']} faces"
    assert err["count_js"] == err["count_py"], f"JS found {err['count_js']} faces, Python {err['count_py']}"


def test_crowd_js_equals_python(results):
    py, js, err = results
    assert err["count_js"] == err["count_py"]
    assert err["box_iou_min"] >= BOX_IOU_MIN, f"box IoU {err['box_iou_min']:.5f}"
    box_px = max(abs(p["box"][k] - j["box"][k]) for p, j in zip(py, js) for k in p["box"])
    assert box_px <= BOX_TOL_PX, f"a box corner off by {box_px:.2e} px"
    assert err["score_abs"] <= DETECT_SCORE_TOL, f"detector confidence off by {err['score_abs']:.2e}"
    assert err["landmark_px"] <= LANDMARK_TOL_PX, f"landmark off by {err['landmark_px']:.3f} px"
    assert err["beauty_points"] <= SCORE_TOL_POINTS, f"beauty off by {err['beauty_points']:.4f} points"
    assert err["keypoint_px"] <= KEYPOINT_TOL_PX, f"keypoint off by {err['keypoint_px']:.3f} px"
    assert err["heatmap_agreement_min"] >= HEATMAP_MIN_CORR, f"Grad-CAM correlation {err['heatmap_agreement_min']:.5f}"
