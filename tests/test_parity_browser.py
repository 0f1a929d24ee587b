"""Parity in headless Chromium: the JavaScript pipeline (WASM; WebGL via SwiftShader where it
starts) equals the Python reference on the same pixels, served by a tiny cross-origin-isolated
test server (tests/jsharness.py:static_server) with the page import map (IMPORT_MAP).

Raw RGB photos are fetched as {data, width, height}; the EXIF-rotated JPEG goes in as a Blob, so
the browser's decoder and createImageBitmap(..., {imageOrientation: "from-image"}) run. The
Python side analyses the pixels the page decoded (what "same pixels" means for a Blob), and a
separate check compares those pixels with PIL's decode + exif_transpose (facepack load_rgb).
Largest errors and JS timings go to test-artifacts/parity_browser_<backend>.json.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facepack.data.images import load_rgb
from jsharness import (BOX_IOU_MIN, DETECT_SCORE_TOL, JS_DIR, LANDMARK_TOL_PX, assert_parity, build_parity_bundle,
                       chromium_page, chromium_ready, compare_faces, exif_rotated_bytes, node_ready, page_html,
                       parity_photos, playwright_session, python_reference, static_server, wait_for_global, write_raw)

ok_node, why_node = node_ready()
ok_chromium, why_chromium = chromium_ready()
pytestmark = [pytest.mark.skipif(not ok_node, reason=why_node), pytest.mark.skipif(not ok_chromium, reason=why_chromium)]

RAW_PHOTOS = ("astronaut", "einstein", "gradient")
EXIF_NAME = "astronaut_exif_jpeg"
DECODE_MEAN_TOL = 2.0  # mean |browser - PIL| of the decoded EXIF JPEG, 0..255 levels (decoders may differ)
WEBGL_PHOTOS = ("astronaut_face",)  # SwiftShader compiles shaders per pyramid size: keep it small
FACE_CROP = (slice(0, 256), slice(100, 356))  # astronaut's face within 256 x 256 pixels


@pytest.fixture(scope="session")
def parity_models(tmp_path_factory, fixtures_dir):
    return build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)


@pytest.fixture(scope="module")
def served(parity_models, fixtures_dir, tmp_path_factory):
    """(base URL, photos {name: rgb}, job images) with the test server running for the module."""
    data = tmp_path_factory.mktemp("browser_data")
    photos = {k: v for k, v in parity_photos(fixtures_dir, large=False).items() if k in RAW_PHOTOS}
    photos["astronaut_face"] = np.ascontiguousarray(photos["astronaut"][FACE_CROP])
    images = []  # the WASM job takes all but the WebGL-only photo
    for name, rgb in photos.items():
        raw = write_raw(rgb, data / f"{name}.rgb", name)
        images.append({"name": name, "url": f"/data/{name}.rgb", "width": raw["width"], "height": raw["height"],
                       "options": {"heatmaps": True}})
    upright = photos["astronaut"][:, 40:440]
    (data / f"{EXIF_NAME}.jpg").write_bytes(exif_rotated_bytes(upright, "JPEG"))
    Image.fromarray(photos["astronaut_face"]).save(data / "astronaut_face.png")
    images.append({"name": EXIF_NAME, "url": f"/data/{EXIF_NAME}.jpg", "blob": True, "options": {"heatmaps": True}})
    pages = {"/index.html": page_html((JS_DIR / "page.js").read_text())}
    with static_server({"/data/": data, "/models/": parity_models["bundle"], "/tests/js/": JS_DIR}, pages) as url:
        yield url, photos, images, data


def _run_page(url, job, webgl=False, page=None, playwright=None):
    """Run ``job`` in ``page`` (or a fresh Chromium page); with a Blob image, also decode it."""
    if page is None:
        with chromium_page(url + "/index.html", webgl=webgl, playwright=playwright) as fresh:
            return _run_page(url, job, webgl, fresh)
    wait_for_global(page, "pageReady")
    out = page.evaluate("(job) => window.runJob(job)", job)
    decoded = None
    if any(i.get("blob") for i in job["images"]):
        decoded = page.evaluate("([u, b]) => window.decodeBlob(u, b)", [f"/data/{EXIF_NAME}.jpg", job["bundle"]])
    out["errors"] = list(page.errors)
    out["decoded"] = decoded
    return out


@pytest.fixture(scope="module")
def playwright():
    with playwright_session() as p:
        yield p


@pytest.fixture(scope="module")
def wasm_page(served, playwright):
    """One Chromium page for the WASM tests of this module."""
    with chromium_page(served[0] + "/index.html", playwright=playwright) as page:
        yield page


@pytest.fixture(scope="module")
def wasm_run(served, wasm_page):
    url, _, images, _ = served
    images = [i for i in images if i["name"] not in WEBGL_PHOTOS]
    return _run_page(url, {"bundle": "/models", "backend": "wasm", "images": images}, page=wasm_page)


@pytest.fixture(scope="module")
def exif_pixels(wasm_run):
    d = wasm_run["decoded"]
    return np.asarray(d["data"], dtype=np.float64).reshape(d["shape"]).round().astype(np.uint8)


@pytest.fixture(scope="module")
def python_results(parity_models, served, exif_pixels):
    _, photos, _, _ = served
    return python_reference(parity_models, {**photos, EXIF_NAME: exif_pixels}, heatmaps=True)


def _report(run, python_results, artifacts_dir, backend):
    js = {r["name"]: r for r in run["results"]}
    report = {name: {"errors": compare_faces(python_results[name]["faces"], r["faces"]), "js_timings_ms": r["timings"]}
              for name, r in js.items()}
    (artifacts_dir / f"parity_browser_{backend}.json").write_text(json.dumps({"backend": run["backend"], **report}, indent=2))
    return report


def test_page_is_cross_origin_isolated_and_on_wasm(wasm_run):
    assert wasm_run["backend"] == "wasm"
    assert wasm_run["isolated"] is True


def test_wasm_threads_give_the_same_results(served, wasm_run, playwright):
    """modelConfig.wasmThreads: 2 in an isolated page gets a 2-thread pool (TF.js alone gives
    hardwareConcurrency / 2, i.e. 1 on a 2-core machine), leaves navigator.hardwareConcurrency as
    it was, and changes no output value: faces, keypoints, scores and heatmaps equal the 1-thread
    run's exactly (XNNPACK splits the work, not the sums)."""
    url, _, images, _ = served
    names = ("astronaut", "gradient")
    job = {"bundle": "/models", "backend": "wasm", "wasmThreads": 2, "images": [i for i in images if i["name"] in names]}
    with chromium_page(url + "/index.html", playwright=playwright) as page:
        run = _run_page(url, job, page=page)
        # a second analyzer of the page asking for another count keeps the running pool and says so
        again = _run_page(url, {**job, "wasmThreads": 1, "images": []}, page=page)
    assert run["wasmThreads"] == 2 and wasm_run["wasmThreads"] == max(1, wasm_run["cores"]["before"] // 2)
    assert run["warnings"] == [] and wasm_run["warnings"] == []
    assert again["wasmThreads"] == 2 and len(again["warnings"]) == 1, again["warnings"]
    assert "wasmThreads 1 not applied: the WASM backend had already started with 2" in again["warnings"][0]
    assert run["cores"]["after"] == run["cores"]["before"] and not run["cores"]["own"], run["cores"]
    one = {r["name"]: r["faces"] for r in wasm_run["results"]}
    for r in run["results"]:
        assert r["faces"] == one[r["name"]], f"{r['name']}: 2 threads differ from 1"
    assert sum(len(r["faces"]) for r in run["results"]) >= 1


def test_two_analyzers_created_at_once_both_start(served, playwright):
    """createFaceAnalyzer twice without awaiting the first (new-user finding): both used to fail or
    leave navigator.hardwareConcurrency faked; selectBackend now runs one call at a time."""
    url = served[0]
    with chromium_page(url + "/index.html", playwright=playwright) as page:
        wait_for_global(page, "pageReady")
        out = page.evaluate("([b, t]) => window.twoAtOnce(b, t)", ["/models", [2, 1]])
    assert out["analyzers"] == [{"threads": 2}, {"threads": 2}], out
    assert out["cores"]["after"] == out["cores"]["before"] and not out["cores"]["own"], out["cores"]


def test_no_tensors_leak_in_the_page(wasm_run):
    assert wasm_run["tensors"]["after"] == wasm_run["tensors"]["before"]


def test_blob_input_applies_exif_orientation(exif_pixels, served):
    """The page decodes the rotated JPEG upright, like facepack load_rgb (PIL + exif_transpose)."""
    _, _, _, data = served
    pil = load_rgb(data / f"{EXIF_NAME}.jpg")
    assert exif_pixels.shape == pil.shape  # (512, 400, 3): would be (400, 512, 3) without the tag applied
    assert np.abs(exif_pixels.astype(float) - pil).mean() <= DECODE_MEAN_TOL


@pytest.mark.parametrize("name", [*RAW_PHOTOS, EXIF_NAME])
def test_browser_wasm_equals_python(name, wasm_run, python_results, artifacts_dir):
    report = _report(wasm_run, python_results, artifacts_dir, "wasm")
    js = {r["name"]: r for r in wasm_run["results"]}[name]
    py = python_results[name]
    assert js["image"] == py["image"]
    assert_parity(name, report[name]["errors"], py["faces"], js["faces"])


def test_every_browser_input_kind_gives_the_same_faces(wasm_page, python_results):
    """Blob, HTMLImageElement, ImageBitmap, canvas, ImageData and {data, width, height} (RGBA) of one
    PNG: the same pixels, so the same detections (and the Python reference's)."""
    out = wasm_page.evaluate("([b, u]) => window.inputKinds(b, u)", ["/models", "/data/astronaut_face.png"])
    assert out["leaked"] == 0
    reference = [{k: f[k] for k in ("box", "score", "landmarks5")} for f in python_results["astronaut_face"]["faces"]]
    assert len(reference) == 1
    for kind, faces in out["faces"].items():
        assert faces == out["faces"]["raw_rgba"], f"{kind} differs from the raw RGBA pixels"
    err = compare_faces(reference, out["faces"]["image"])
    assert err["count_js"] == 1 and err["box_iou_min"] >= BOX_IOU_MIN and err["landmark_px"] <= LANDMARK_TOL_PX, err
    assert err["score_abs"] <= DETECT_SCORE_TOL, err


def test_browser_webgl_equals_python(served, python_results, artifacts_dir, playwright):
    """WebGL2 on SwiftShader (slow, CPU); skipped where Chromium cannot start WebGL."""
    url, _, images, _ = served
    job = {"bundle": "/models", "backend": "webgl", "images": [i for i in images if i["name"] in WEBGL_PHOTOS]}
    run = _run_page(url, job, webgl=True, playwright=playwright)
    if run["backend"] != "webgl":
        pytest.skip(f"WebGL did not start in this Chromium (fell back to {run['backend']})")
    report = _report(run, python_results, artifacts_dir, "webgl")
    for r in run["results"]:
        assert_parity(r["name"], report[r["name"]]["errors"], python_results[r["name"]]["faces"], r["faces"])
