"""The face filter (spec.FACE_FILTER): minimum detector confidence and minimum face box size.

The same names, defaults and semantics in Python (facepack/pipeline.py:filter_faces,
FacePipeline.analyze(min_confidence=, min_box_size=), predict.py --min-confidence/--min-box-size)
and JavaScript (options.js minConfidence / minBoxSize, filled from the manifest's
spec.face_filter; pipeline.js:filterFaces). Two photos where the detector returns two faces
each - one with a face below the confidence threshold only, one with a face below the size
threshold only - are analysed on both sides with the same settings.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facepack import spec
from facepack.pipeline import FacePipeline, filter_faces
from jsharness import BOX_IOU_MIN, DETECT_SCORE_TOL, build_parity_bundle, compare_faces, node_ready, parity_photos, run_node, write_raw

ok, why = node_ready()

# Settings between the detections of the photos below (measured with the `mtcnn` package):
#   "low_confidence": astronaut_large, faces (0.9989, 304 px) and (0.8645, 101 px)
#   "small_face":     astronaut_large + a 200 px astronaut, faces (0.9996, 303 px) and (0.9991, 41 px)
CUT = {"min_confidence": 0.9, "min_box_size": 60.0}  # drops the 0.8645 face and the 41 px face
KEEP_ALL = {"min_confidence": 0.0, "min_box_size": 0.0}
SMALL_FACE_SIDE_PX = 200  # the pasted astronaut: its face is ~41 px
# The photos' detections above were measured with the `mtcnn` package's settings (20-px pyramid start,
# bilinear R/O-Net patches): both sides pin them (spec.MTCNN_PRESETS["packageCompatible"]).
_PACKAGE = spec.MTCNN_PRESETS["packageCompatible"]
PATCHES = {"python": {"patch_resize": _PACKAGE["patch_resize"], "min_face_size": _PACKAGE["min_face_size_px"]},
           "js": {"detectorPreset": "packageCompatible"}}


def _js_options(settings: dict) -> dict:
    return {"minConfidence": settings["min_confidence"], "minBoxSize": settings["min_box_size"], **PATCHES["js"]}


@pytest.fixture(scope="module")
def photos(fixtures_dir) -> dict:
    base = parity_photos(fixtures_dir, large=True)
    big = base["astronaut_large"]
    small = np.asarray(Image.fromarray(base["astronaut"]).resize((SMALL_FACE_SIDE_PX,) * 2, Image.BILINEAR))
    pair = np.full((big.shape[0], big.shape[1] + SMALL_FACE_SIDE_PX + 20, 3), 128, np.uint8)
    pair[:, :big.shape[1]] = big
    pair[600:600 + SMALL_FACE_SIDE_PX, big.shape[1] + 10:big.shape[1] + 10 + SMALL_FACE_SIDE_PX] = small
    return {"low_confidence": big, "small_face": pair}


@pytest.fixture(scope="module")
def python_runs(photos) -> dict:
    pipe = FacePipeline(detector_options=PATCHES["python"])  # detector only
    return {(name, label): pipe.analyze(rgb, **settings)["faces"] for name, rgb in photos.items()
            for label, settings in (("all", KEEP_ALL), ("cut", CUT), ("default", {}))}


@pytest.fixture(scope="module")
def node_runs(photos, tmp_path_factory, fixtures_dir) -> dict:
    if not ok:
        pytest.skip(why)
    bundle = build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)["bundle"]
    tmp = tmp_path_factory.mktemp("face_filter")
    images = []
    for name, rgb in photos.items():
        raw = write_raw(rgb, tmp / f"{name}.rgb", name)
        for label, options in (("all", _js_options(KEEP_ALL)), ("cut", _js_options(CUT)), ("default", PATCHES["js"])):
            images.append({**raw, "name": f"{name}/{label}", "options": options})
    out = run_node("analyze.mjs", {"bundle": str(bundle), "backend": "wasm", "models": ["detector"], "images": images})
    return {tuple(r["name"].split("/")): r["faces"] for r in out["results"]}


def test_filter_faces_keeps_order_and_uses_both_thresholds():
    faces = [{"score": 0.99, "box": {"width": 30.0, "height": 40.0}},
             {"score": 0.91, "box": {"width": 100.0, "height": 90.0}},
             {"score": 0.995, "box": {"width": 19.0, "height": 15.0}}]
    assert filter_faces(faces, 0.95, 20.0) == [faces[0]]
    assert filter_faces(faces, 0.91, 19.0) == faces  # >=: a face exactly at a threshold is kept
    assert filter_faces(faces, 0.0, 40.0) == faces[:2]  # the box's longer side counts


def test_the_photos_have_one_face_below_each_threshold(python_runs):
    low = python_runs[("low_confidence", "all")]
    small = python_runs[("small_face", "all")]
    assert len(low) == 2 and len(small) == 2
    side = lambda f: max(f["box"]["width"], f["box"]["height"])  # noqa: E731
    assert low[1]["score"] < CUT["min_confidence"] and side(low[1]) >= CUT["min_box_size"]
    assert min(f["score"] for f in small) >= CUT["min_confidence"] and min(map(side, small)) < CUT["min_box_size"]
    assert len(python_runs[("low_confidence", "cut")]) == len(python_runs[("small_face", "cut")]) == 1


@pytest.mark.parametrize("label", ["all", "cut", "default"])
@pytest.mark.parametrize("name", ["low_confidence", "small_face"])
def test_javascript_applies_the_settings_like_python(python_runs, node_runs, name, label):
    py, js = python_runs[(name, label)], node_runs[(name, label)]
    assert len(js) == len(py), f"{name} {label}: JS kept {len(js)} faces, Python {len(py)}"
    err = compare_faces(py, js)
    if py:
        assert err["box_iou_min"] >= BOX_IOU_MIN and err["score_abs"] <= DETECT_SCORE_TOL, err


def test_defaults_are_the_spec_ones(python_runs):
    f = spec.FACE_FILTER
    for name in ("low_confidence", "small_face"):
        expected = filter_faces(python_runs[(name, "all")], f["min_confidence"], f["min_box_size_px"])
        assert python_runs[(name, "default")] == expected
    assert spec.spec_dict()["face_filter"] == {"min_confidence": f["min_confidence"], "min_box_size_px": f["min_box_size_px"]}


@pytest.mark.parametrize("kwargs, word", [({"min_confidence": 1.5}, "min_confidence"),
                                          ({"min_confidence": "0.9"}, "min_confidence"),
                                          ({"min_box_size": -1}, "min_box_size"),
                                          ({"min_box_size": True}, "min_box_size")])
def test_bad_settings_name_the_setting(kwargs, word):
    with pytest.raises(ValueError, match=word):
        FacePipeline().analyze(np.zeros((40, 40, 3), np.uint8), **kwargs)


def test_unknown_setting_is_an_error():
    with pytest.raises(TypeError, match="min_confidance"):
        FacePipeline().analyze(np.zeros((40, 40, 3), np.uint8), min_confidance=0.5)
