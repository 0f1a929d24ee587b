"""static/facepack/attributes.js against Python: the same faces of one photo through the beauty
crop rule and an exported attributes model (facepack/export/attributes.py) give the same
probabilities and on/off decisions on TF.js cpu and wasm; no tensor leaks; the manifest carries
the names and thresholds the JS reads (it repeats none)."""

import json

import numpy as np
import pytest

from jsharness import node_ready, run_node, write_raw

pytest.importorskip("keras")
READY, WHY = node_ready()
pytestmark = pytest.mark.skipif(not READY, reason=WHY)

PROB_TOL = 1e-4  # |JS - Python| per attribute probability (0..1), float32 rounding only
BACKENDS = ("cpu", "wasm")
INPUT_PX = 48  # the model's square input, pixels
N_ATTRIBUTES = 40
BOXES = [{"x": 30.0, "y": 20.0, "width": 60.0, "height": 70.0},  # inside the photo
         {"x": 100.0, "y": 60.0, "width": 50.0, "height": 50.0}]  # its square reaches past the border (padded)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small_cnn attributes model with random weights and spread-out outputs, exported with
    random thresholds; a 160 x 120 photo of noise and gradients."""
    import keras

    from facepack.data.celeba import ATTRIBUTES
    from facepack.export.attributes import export_attributes
    from facepack.models.attributes import build_attributes_model

    keras.utils.set_random_seed(3)
    model = build_attributes_model(keras, N_ATTRIBUTES, "small_cnn", INPUT_PX)
    dense = model.get_layer("attributes")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 8.0, np.random.default_rng(0).normal(0, 1.5, bias.shape).astype(np.float32)])
    rng = np.random.default_rng(1)
    thresholds = np.round(rng.uniform(0.2, 0.8, N_ATTRIBUTES), 4)
    root = tmp_path_factory.mktemp("attr")
    manifest = export_attributes(model, root / "bundle", ATTRIBUTES, thresholds, synthetic=True,
                                 license="test weights (random)", backbone="small_cnn", backends=BACKENDS, log=None)
    yy, xx = np.mgrid[0:120, 0:160]
    photo = np.stack([xx * 1.5, yy * 2.0, 128 + 60 * np.sin(xx / 7.0)], -1) + rng.normal(0, 25, (120, 160, 3))
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    return {"model": model, "bundle": root / "bundle", "manifest": manifest, "photo": photo,
            "raw": write_raw(photo, root / "photo.rgb"), "thresholds": thresholds}


@pytest.fixture(scope="module")
def python_faces(exported):
    from facepack import pipeline
    from facepack.models.attributes import attribute_results

    faces = [{"box": b} for b in BOXES]
    crops, _ = pipeline.crop(exported["photo"], faces, "beauty", INPUT_PX)
    entry = exported["manifest"]["models"]["attributes"]
    probs = np.asarray(exported["model"](crops), dtype=np.float64)
    return attribute_results(probs, entry["attributes"]["names"], entry["attributes"]["thresholds"])


@pytest.fixture(scope="module")
def js(exported):
    return run_node("attributes.mjs", {"bundle": str(exported["bundle"]), "photo": exported["raw"],
                                       "boxes": BOXES, "backends": list(BACKENDS)})


def test_manifest_holds_names_thresholds_and_the_face_spec(exported):
    from facepack import spec
    from facepack.data.celeba import ATTRIBUTES
    from facepack.export.manifest import read_manifest, validate

    manifest = read_manifest(exported["bundle"])
    validate(manifest)
    entry = manifest["models"]["attributes"]
    assert entry["role"] == "attributes" and entry["input_size"] == INPUT_PX and entry["backbone"] == "small_cnn"
    assert entry["attributes"]["names"] == list(ATTRIBUTES)
    assert entry["attributes"]["thresholds"] == exported["thresholds"].tolist()
    assert entry["attributes"]["crop_rule"] == "beauty" and entry["run"]["synthetic"] is True
    assert manifest["synthetic"] is True
    assert manifest["spec"]["beauty"]["crop_margin"] == spec.BEAUTY["crop_margin"]  # what crop.js reads
    assert set(entry["parity"]["backends"]) == set(BACKENDS)


def test_js_equals_python(js, python_faces, exported):
    threshold = dict(zip(python_faces[0], exported["thresholds"]))
    assert set(js["backends"]) == set(BACKENDS)
    spread = [f[n]["probability"] for f in python_faces for n in f]
    assert max(spread) - min(spread) > 0.5  # outputs far from constant: the comparison means something
    for backend, got in js["backends"].items():
        assert len(got["faces"]) == len(python_faces)
        worst = 0.0
        for py, jsf in zip(python_faces, got["faces"]):
            assert list(jsf) == list(py)  # names, in the manifest's order
            for name, want in py.items():
                diff = abs(jsf[name]["probability"] - want["probability"])
                worst = max(worst, diff)
                if abs(want["probability"] - threshold[name]) > PROB_TOL:  # equal decisions unless within the tolerance
                    assert jsf[name]["on"] == want["on"], (backend, name)
        assert worst <= PROB_TOL, (backend, worst)
        print(f"{backend}: max |JS - Python| probability {worst:.2e}")


def test_no_leak_and_errors_name_the_field(js):
    for backend, got in js["backends"].items():
        assert got["leaked"] == 0, backend
    assert '"attributes": {names, thresholds}' in js["errors"]["noAttributes"]
    assert "expected 1 x 40 probabilities" in js["errors"]["wrongCount"]


def test_js_repeats_no_constant():
    from jsharness import LIBRARY_DIR, numeric_literals

    literals = numeric_literals((LIBRARY_DIR / "attributes.js").read_text())
    assert {text for _, text in literals} == {"0"}, literals  # loop starts and empty checks only
