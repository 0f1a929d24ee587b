"""The JavaScript library's public API (static/facepack/index.js, options.js, generic.js):
settings and their errors, input kinds, model subsets, backend fallback, the generic loader,
and that every number comes from the manifest (no spec constant repeated in the JS).
Node, WASM backend (tests/js/api.mjs runs every check in one process).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from facepack import spec
from jsharness import (ROOT, build_parity_bundle, js_numeric_literals, node_ready, numeric_literals, parity_photos,
                       run_node, write_raw)

ok, why = node_ready()

# Spec entries that are tables of indices/names, not settings: small integers there say nothing.
STRUCTURAL_KEYS = {"mirror_permutation", "ibug68_groups", "kaggle15_names", "formats", "spec_version"}
# Numbers any code may contain (counts, halves, RGB/RGBA channels, box corners).
TRIVIAL_NUMBERS = {0.0, 1.0, 2.0, 3.0, 4.0, 0.5}
CHECKS = [
    "unknown modelConfig key names the key", "bad backend names the value",
    "bad wasmThreads names the option and the value", "wasmThreadCount: auto is TF.js half of the cores, a number is itself",
    "Node WASM runs 1 thread whatever wasmThreads asks, says so once, navigator untouched", "missing modelUrl is an error",
    "models without the detector is an error", "unknown model set names it", "missing bundle names the file",
    "unknown analyze option names the key", "bad maxFaces names the option", "bad heatmaps names the option",
    "misspelt minConfidance names the key", "bad minConfidence names the option", "bad minBoxSize names the option",
    "face filter defaults come from the manifest",
    "a face exactly at both thresholds is kept, just above either is dropped",
    "bad input is described", "wrong data length is described", "result shape", "no heatmap unless asked",
    "RGBA, clamped, int32/float32 tensor and 4-channel tensor inputs give the same faces",
    "maxFaces keeps the most confident", "minFaceSize above the face finds nothing",
    "a large minFaceSize skips pyramid levels too small for P-Net",
    "analyze after dispose is an error", "detector only: no model fields, heatmaps refused",
    "webgl in Node throws (an explicit backend never changes silently)", "every model set leaves no tensors behind (load, analyze, dispose)",
    "generic load(): predict, no leaks, dispose", "generic load() of an unknown name lists the models",
]


def spec_numbers(node=None, key=None) -> set:
    """Every numeric value of spec_dict() outside STRUCTURAL_KEYS."""
    node = spec.spec_dict() if node is None else node
    if key in STRUCTURAL_KEYS:
        return set()
    if isinstance(node, dict):
        return set().union(*[spec_numbers(v, k) for k, v in node.items()])
    if isinstance(node, (list, tuple)):
        return set().union(*[spec_numbers(v, key) for v in node]) if node else set()
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return {float(node)}
    return set()


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, fixtures_dir):
    if not ok:
        pytest.skip(why)
    models = build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)
    tmp = tmp_path_factory.mktemp("api")
    face = np.ascontiguousarray(parity_photos(fixtures_dir, large=False)["astronaut"][0:256, 100:356])
    pair = np.ascontiguousarray(np.concatenate([face, face[:, ::-1]], axis=1))
    job = {"bundle": str(models["bundle"]), "photo": write_raw(face, tmp / "face.rgb"),
           "pair": write_raw(pair, tmp / "pair.rgb")}
    return run_node("api.mjs", job, timeout=600)


@pytest.mark.parametrize("name", CHECKS)
def test_api_check(name, api_run):
    assert name in api_run["checks"], f"api.mjs did not run {name!r}"
    result = api_run["checks"][name]
    assert result["ok"], f"{name}: {result['detail']}"


def test_every_check_is_listed(api_run):
    assert sorted(api_run["checks"]) == sorted(CHECKS)


def test_js_detector_params_are_the_spec(api_run):
    """The JS reads the manifest's spec, which is facepack/spec.py:spec_dict (contract 1)."""
    assert api_run["spec"] == spec.spec_dict()
    p, m = api_run["params"], spec.MTCNN
    assert (p["minFaceSize"], p["minSize"], p["scaleFactor"]) == (m["min_face_size_px"], m["min_size_px"], m["scale_factor"])
    assert (p["thresholdPnet"], p["thresholdRnet"], p["thresholdOnet"]) == (m["threshold_pnet"], m["threshold_rnet"],
                                                                            m["threshold_onet"])
    assert (p["nmsPnet1"], p["nmsPnet2"], p["nmsRnet"], p["nmsOnet"]) == (m["nms_pnet1"], m["nms_pnet2"], m["nms_rnet"],
                                                                          m["nms_onet"])
    assert (p["rnetInput"], p["onetInput"], p["patchPadValue"]) == (m["rnet_input_px"], m["onet_input_px"],
                                                                    m["patch_pad_value"])
    assert p["landmarkNames"] == spec.LANDMARKS5


def test_spec_numbers_are_distinctive():
    """Guard for the scan below: it looks for the values that matter."""
    numbers = spec_numbers()
    for value in (0.709, 127.5, 101, 224, 1280, 20, 12, 48, 24, 96, spec.BEAUTY["crop_margin"]):
        assert float(value) in numbers


def test_literal_scanner_finds_literals_outside_comments_and_strings():
    src = "const a = 0.709; // 224\n/* 101 */ const b = '127.5'; x(1280, 1e-3, .25, 12px)"
    assert numeric_literals(src) == [(1, "0.709"), (2, "1280"), (2, "1e-3"), (2, ".25")]


def test_js_repeats_no_spec_constant():
    """No numeric literal in static/facepack equals a spec value (DESIGN.md contract 1)."""
    numbers = spec_numbers() - TRIVIAL_NUMBERS
    found = js_numeric_literals()
    assert found, "no JS files scanned"
    offenders = [f"{path}:{line}: {text}" for path, lits in found.items() for line, text in lits
                 if float(text) in numbers]
    assert not offenders, "spec constants repeated in the JS (read them from the manifest):\n" + "\n".join(offenders)


def test_library_imports_tfjs_by_bare_specifier_only():
    """The page maps these with its import map; Node resolves them from node_modules."""
    allowed = {"@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm"}
    for path in (ROOT / "static" / "facepack").rglob("*.js"):
        for spec_ in re.findall(r"""^\s*import\b[^'"]*['"]([^'"]+)['"]""", path.read_text(), flags=re.M):
            assert spec_.startswith("./") or spec_.startswith("../") or spec_ in allowed, f"{path.name}: {spec_}"
