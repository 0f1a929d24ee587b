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

Tolerances: issue 12's targets, tests/jsharness.py's constants (units in the names). The pipeline and models are the parity bundle's (jsharness.build_parity_bundle).

End-to-end beauty and keypoint differences are the residual box noise times the model's
sensitivity to a box shift (issue 12, item 3). Given Python's boxes the JS beauty equals
Python's to 1e-4 points; shifting every box by d px moves Python's beauty score by (median over
the faces of a collage, d = 1e-4..1e-2 px) 30-45 points per px for the untrained parity model on
these 25-60 px faces (max 86) and 5-6 points per px for the shipped trained model (max 16). With
box noise <= 6.1e-4 px that is <= 0.05 points for the parity model: measured 0.006-0.047 over
10 collages (0.013 on CROWD_SEED, 0.044 before the fix; 0.0152 on 2026-12-02, TensorFlow without
oneDNN on that CPU), so SCORE_TOL_POINTS = 0.02 holds here but is not a bound for every crowded
photo with an untrained model.

The second photo is one large, blurred, noisy face (the fixture astronaut shrunk to 64 px,
blurred, stretched over a 1200 x 900 canvas, +-20 grey levels of per-pixel noise: what
bench/bench_parity.py's photo backgrounds are, and what 8 of the 9 sweep photos that missed a
target had detected). With the package's bilinear R/O-Net patches (spec.MTCNN["patch_resize"]
"bilinear") each stage re-cut a 24/48-px patch from ~750 px of noise at 1 tap per 15-30 px, so a
1e-7 box difference grew ~10x per stage (box 1.2e-4 of the face; beauty 0.17 points and keypoints
23 px off end to end with the parity models). With area-sampled patches ("area", the default
since issue 12) the box stays at P-Net's float32 floor (measured 6.3e-8 of the face here) and the whole
pipeline meets issue 12's targets on this photo (beauty 0.0016 points, keypoints 0.033 px). The
same-box test: Python's crop and models on JS's box give JS's numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from facepack import spec
from facepack.detect import mtcnn_detector
from jsharness import (BOX_IOU_MIN, DETECT_SCORE_TOL, HEATMAP_MIN_CORR, KEYPOINT_TOL_PX, LANDMARK_TOL_PX,
                       SCORE_TOL_POINTS, build_parity_bundle, compare_faces, detections_only, node_ready, run_node,
                       textured_background, write_raw)

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

# Box corners, photo pixels: what is left is the P/R/O-Nets' float32 accumulation order (WASM vs TF
# CPU); measured <= 6.1e-4 px over 10 collages after the fix, >= 1.7e-3 px (up to a swapped face) before.
BOX_TOL_PX = 1e-3

# Detector box corners and 5 landmarks, |JS - Python| / the face's longer box side (unitless), by
# spec.MTCNN["patch_resize"]. P-Net differs from TF by ~2e-7 of a face (float32 conv summation order).
# "bilinear": R-Net and O-Net re-cut their patches without antialiasing, and on a large noisy box each
# stage multiplies a box difference by up to ~10 (sweep photo #438: 2e-7 -> 7.4e-6 -> 6.3e-5);
# measured on BLUR_SEEDS-like photos up to 1.2e-4 (boxes), 2.1e-4 (landmarks).
# "area": no stage amplifies it: measured 6.3e-8 (box) and 5.7e-7 (landmarks) here; on the 31 worst
# photos (of 500) of bench/bench_parity.py's sweep at most 1.1e-5 (#114: a 37-px face off 4e-4 px, the
# nets' own float32 floor on a small face); the ghost faces of #104 and #438: 2e-7 and 2.9e-6 (bilinear:
# 9.3e-5 and 6.8e-5). 5e-5 leaves 4x to the worst measured.
# bench/bench_parity.py:BOX_CASCADE_REL_TOL holds the same numbers.
CASCADE_REL_TOL = {"bilinear": 5e-4, "area": 5e-5}
BLUR_SEED = 2  # noise seed of the blurred-face photo (the largest box difference of seeds 0-2)
BLUR_CANVAS_PX = (1200, 900)  # width, height
BLUR_FACE_SQUARE = ("astronaut.png", (153, 47, 140))  # fixture, (x0, y0, side)
BLUR_SMALL_PX = 64  # the face is shrunk to this, blurred, then stretched over the canvas
BLUR_RADIUS_PX = 2  # Gaussian blur radius at BLUR_SMALL_PX
BLUR_NOISE = 20  # per-pixel noise, +- grey levels (a 128-px tile, as the bench's backgrounds)
MIN_BLUR_FACE_PX = 600  # guard: the face found is this large (longer box side, pixels)
# Area-sampled R/O-Net patches (spec.MTCNN["patch_resize"] == "area"): JS (ops/area_patches.js) vs
# Python (mtcnn_detector.area_patches), raw pixel values: the same float64 operations in the same
# order, one float32 rounding: equal bit for bit.
AREA_PATCH_TOL = 0.0


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


def blurred_face_photo(fixtures_dir, seed: int = BLUR_SEED) -> np.ndarray:
    """(H, W, 3) uint8: one fixture face shrunk, blurred and stretched over the canvas, plus a
    tiled +-BLUR_NOISE noise (mirrors bench/bench_parity.py:_background's face branch), seeded."""
    from PIL import Image, ImageFilter

    from facepack.data.images import load_rgb

    name, (x0, y0, side) = BLUR_FACE_SQUARE
    face = Image.fromarray(load_rgb(fixtures_dir / name)[y0:y0 + side, x0:x0 + side])
    w, h = BLUR_CANVAS_PX
    small = face.resize((BLUR_SMALL_PX, BLUR_SMALL_PX), Image.LANCZOS).filter(ImageFilter.GaussianBlur(BLUR_RADIUS_PX))
    out = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.int16)
    tile = np.random.default_rng(seed).integers(-BLUR_NOISE, BLUR_NOISE + 1, (128, 128, 3)).astype(np.int16)
    out = out + np.tile(tile, (h // 128 + 1, w // 128 + 1, 1))[:h, :w]
    return np.clip(out, 0, 255).astype(np.uint8)


def describe_on_boxes(pipe, rgb: np.ndarray, faces: list) -> list:
    """Python's crop, keypoint, beauty and Grad-CAM stages (FacePipeline.describe) on given faces'
    boxes: the reference's answer for those boxes (as bench/bench_parity.py:describe_on_boxes)."""
    return pipe.describe(rgb, detections_only(faces), heatmaps=True)


def relative_errors(py_faces: list, js_faces: list) -> tuple[float, float]:
    """(largest box-corner |Δ|, largest landmark |Δ|), each / the face's longer box side."""
    box = lm = 0.0
    for p, j in zip(py_faces, js_faces):
        side = max(p["box"]["width"], p["box"]["height"])
        box = max(box, max(abs(p["box"][k] - j["box"][k]) for k in p["box"]) / side)
        lm = max(lm, float(np.abs(np.subtract(list(p["landmarks5"].values()), list(j["landmarks5"].values()))).max())
                 / side)
    return box, lm


@pytest.fixture(scope="session")
def parity_models(tmp_path_factory, fixtures_dir):
    # The same root as tests/test_parity_node.py: built once per session.
    return build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)


@pytest.fixture(scope="module")
def crowd(fixtures_dir):
    return crowd_photo(fixtures_dir)[0]


@pytest.fixture(scope="module")
def pipe(parity_models):
    from facepack.pipeline import FacePipeline

    return FacePipeline.from_runs(parity_models["beauty_run"], parity_models["keypoints_run"])


@pytest.fixture(scope="module")
def photos(crowd, fixtures_dir):
    return {"crowd": crowd, "blurred": blurred_face_photo(fixtures_dir)}


@pytest.fixture(scope="module")
def both(parity_models, pipe, photos, tmp_path_factory):
    """{name: (Python faces, JS faces)}: both photos in one Node process."""
    tmp = tmp_path_factory.mktemp("crowd")
    py = {name: pipe.analyze(rgb, heatmaps=True)["faces"] for name, rgb in photos.items()}
    images = [{**write_raw(rgb, tmp / f"{name}.rgb", name), "options": {"heatmaps": True}} for name, rgb in photos.items()]
    js = run_node("analyze.mjs", {"bundle": str(parity_models["bundle"]), "backend": "wasm", "images": images},
                  timeout=600)
    assert js["backend"] == "wasm"
    return {r["name"]: (py[r["name"]], r["faces"]) for r in js["results"]}


@pytest.fixture(scope="module")
def results(both, artifacts_dir):
    py_faces, js_faces = both["crowd"]
    err = compare_faces(py_faces, js_faces)
    blurred = {**compare_faces(*both["blurred"]), **dict(zip(("box_rel", "landmark_rel"), relative_errors(*both["blurred"])))}
    (artifacts_dir / "parity_crowd.json").write_text(json.dumps({"backend": "wasm", "errors": err, "blurred": blurred},
                                                                indent=2))
    return py_faces, js_faces, err


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


def test_large_noisy_face_boxes_within_the_cascade_floor(both):
    py, js = both["blurred"]
    assert len(py) == 1 and max(py[0]["box"]["width"], py[0]["box"]["height"]) >= MIN_BLUR_FACE_PX, \
        f"guard: expected one face of >= {MIN_BLUR_FACE_PX} px, Python found {[f['box'] for f in py]}"
    assert len(js) == len(py), f"JS found {len(js)} faces, Python {len(py)}"
    err = compare_faces(py, js)
    assert err["box_iou_min"] >= BOX_IOU_MIN, f"box IoU {err['box_iou_min']:.5f}"
    assert err["score_abs"] <= DETECT_SCORE_TOL, f"detector confidence off by {err['score_abs']:.2e}"
    box_rel, landmark_rel = relative_errors(py, js)
    tol = CASCADE_REL_TOL[spec.MTCNN["patch_resize"]]
    assert box_rel <= tol, f"a box corner off by {box_rel:.2e} of the face"
    assert landmark_rel <= tol, f"a landmark off by {landmark_rel:.2e} of the face"


def test_area_patches_js_equal_python_on_cpu_and_wasm():
    """The area sampler alone, on boxes shrunk 30x (footprint 30 px), enlarged (footprint 1 px:
    linear interpolation), partly and wholly outside the photo, at R-Net's and O-Net's sizes."""
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (300, 410, 3)).astype(np.float32)
    boxes = np.array([[3.25, 1.5, 403.7, 296.1], [100.3, 50.7, 110.2, 61.9], [-40.5, 250.25, 60.0, 350.75],
                      [390.0, -20.0, 450.0, 40.0], [-90.0, -80.0, -10.0, -5.0], [57.123456789, 88.5, 181.0, 212.4]])
    pad = spec.MTCNN["patch_pad_value"]
    for size in (spec.MTCNN["rnet_input_px"], spec.MTCNN["onet_input_px"]):
        ref = mtcnn_detector.area_patches(img, boxes, size, pad)
        out = run_node("area_patches.mjs", {"backends": ["cpu", "wasm"], "boxes": boxes.tolist(), "size": size,
                                            "padValue": pad, "image": {"data": img.ravel().tolist(),
                                                                       "shape": list(img.shape)}})
        assert [r["backend"] for r in out["results"]] == ["cpu", "wasm"]
        for r in out["results"]:
            got = np.asarray(r["patches"]["data"], dtype=np.float32).reshape(r["patches"]["shape"])
            assert got.shape == ref.shape
            assert np.abs(got - ref).max() <= AREA_PATCH_TOL, (r["backend"], size, np.abs(got - ref).max())


def test_large_noisy_face_equals_python_on_the_same_box(both, pipe, photos):
    """Python's crops and models on JS's box give JS's beauty, keypoints and Grad-CAM (issue 12's
    targets): what differs end to end on this photo is the box, not the crop or the models."""
    _, js = both["blurred"]
    err = compare_faces(describe_on_boxes(pipe, photos["blurred"], js), js)
    assert err["beauty_points"] <= SCORE_TOL_POINTS, f"beauty off by {err['beauty_points']:.4f} points"
    assert err["keypoint_px"] <= KEYPOINT_TOL_PX, f"keypoint off by {err['keypoint_px']:.3f} px"
    assert err["heatmap_agreement_min"] >= HEATMAP_MIN_CORR, f"Grad-CAM correlation {err['heatmap_agreement_min']:.5f}"
