"""Crops of phone-size and larger photos: the JS library equals Python on any photo size.

TF.js's own cropAndResize reads wrong pixels on WASM once a crop lies beyond ~2^24 values into
the flattened photo (12 MP and up, face in the lower part); static/facepack/ops/bounded_crop.js
replaces it everywhere the library crops. Checked here, with the face pasted into the far lower
right of large canvases (made cheaply: a fixture face on a gradient):

1. the op: boundedCropAndResize on cpu and wasm equals tf.image.crop_and_resize on the full photo
   (facepack/crop.py:crop_squares with downscale="bilinear", the reference) bit for bit, at 12, 24 and 108 MP;
2. the pipeline at 12 and 24 MP: Node WASM analyze() equals facepack/pipeline.py within the
   parity tolerances of tests/jsharness.py, and the JS crop + model stages on Python's own
   detections match on the cpu backend within the stage tolerances.

The measured numbers (and TF.js's native kernel on the same crops, for comparison) are written
to test-artifacts/bounded_crop.json.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facepack import crop as crop_mod
from facepack.data.images import load_rgb
from jsharness import (assert_parity, assert_stage_parity, build_parity_bundle, compare_faces, detections_only,
                       node_ready, python_reference, run_node, write_raw)

ok, why = node_ready()
pytestmark = pytest.mark.skipif(not ok, reason=why)

# (height, width) of the canvases: a 12 MP phone (4032 x 3024), 24 MP (6000 x 4000), 108 MP.
SIZES = {"12mp": (3024, 4032), "24mp": (4000, 6000), "108mp": (9000, 12000)}
PIPELINE_SIZES = ("12mp", "24mp")  # the whole pipeline; 108 MP is checked at the op (see module doc)
FLOAT32_EXACT_VALUES = 2 ** 24  # flat indices above this are not exact in float32
CROP_SIZE_PX = 224  # the beauty crop of the shipped model
CROP_EXACT_TOL = 0.0  # pixel values 0..255: the JS writes out the TF kernel's float32 arithmetic
FACE_SCALE = 2  # the 512 px astronaut fixture pasted at 1024 px: its face (~214 px) stays
#                 detectable after the 1280 px detection downscale of a 24 MP photo (~46 px)
MARGIN_PX = 40  # the pasted face's distance from the bottom-right corner
DETECT_RESIZE_TOL = 0.0  # 0..255: input.js's downscale writes out tf.image.resize's float32 kernel


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


def crop_squares_of(height: int, width: int) -> list:
    """Squares (x0, y0, side) that end far beyond 2^24 values: around the pasted face, over the
    bottom-right corner (partly outside: padding), a tiny one (upsampled), and one at the top left."""
    face = FACE_SCALE * 512
    fx, fy = width - MARGIN_PX - face, height - MARGIN_PX - face
    return [(fx + 0.3 * face + 0.37, fy + 0.15 * face + 0.61, 0.45 * face + 0.29),
            (width - 200.25, height - 150.5, 400.125),
            (width - 97.7, height - 61.3, 17.9),
            (12.5, 7.25, 301.0)]


@pytest.fixture(scope="module")
def face(fixtures_dir):
    astronaut = load_rgb(fixtures_dir / "astronaut.png")
    return np.asarray(Image.fromarray(astronaut).resize((512 * FACE_SCALE,) * 2, Image.BILINEAR))


@pytest.fixture(scope="module")
def op_results(face, tmp_path_factory):
    """{size: {"py": crops, "cpu"/"wasm": crops, "native_cpu"/"native_wasm": crops, "ms": ...}},
    one canvas at a time (memory stays at one canvas)."""
    tmp = tmp_path_factory.mktemp("bounded_crop")
    out = {}
    for name, (h, w) in SIZES.items():
        canvas = phone_canvas(h, w, face)
        squares = crop_squares_of(h, w)
        # The op under test is the bilinear sampler (boundedCropAndResize): bilinear reference.
        # Area crops (the default when a square shrinks) past 2^24 values: tests/test_crop_area.py.
        py = crop_mod.crop_squares(canvas, squares, CROP_SIZE_PX, downscale="bilinear")
        raw = write_raw(canvas, tmp / f"{name}.rgb", name)
        del canvas
        boxes = crop_mod.tf_crop_boxes(squares, CROP_SIZE_PX, h, w).astype(np.float64).tolist()
        job = {"path": raw["path"], "shape": [h, w, 3], "boxes": boxes, "size": CROP_SIZE_PX, "pad": 0.0,
               "backends": ["cpu", "wasm"], "out": str(tmp / name), "native": True}
        timing = run_node("bounded_crop.mjs", job, timeout=300)["results"]
        (tmp / f"{name}.rgb").unlink()
        entry = {"py": py, "squares": squares, "timing": timing}
        for backend in ("cpu", "wasm"):
            for kind, suffix in ((backend, ""), (f"native_{backend}", ".native")):
                entry[kind] = np.fromfile(tmp / f"{name}.{backend}{suffix}.f32", np.float32).reshape(py.shape)
        out[name] = entry
    return out


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("backend", ["cpu", "wasm"])
def test_bounded_crop_equals_tf_crop_and_resize(op_results, size, backend):
    r = op_results[size]
    h, w = SIZES[size]
    x0, y0, _ = r["squares"][0]
    assert (int(y0) * w + int(x0)) * 3 > FLOAT32_EXACT_VALUES, "the face crop must start beyond 2^24 values"
    err = np.abs(r[backend] - r["py"]).reshape(len(r["squares"]), -1).max(axis=1)
    assert err.max() <= CROP_EXACT_TOL, f"{size} {backend}: crops off by {err.tolist()} grey levels"
    assert r["timing"][backend]["tensors"] == 0


def test_bounded_crop_report(op_results, artifacts_dir):
    """Record what the bounded crop fixes: TF.js's native kernel on the same crops."""
    report = {}
    for size, r in op_results.items():
        report[size] = {backend: {"bounded_max_abs": float(np.abs(r[backend] - r["py"]).max()),
                                  "native_max_abs": float(np.abs(r[f"native_{backend}"] - r["py"]).max()),
                                  "bounded_ms": r["timing"][backend]["ms"],
                                  "native_ms": r["timing"][backend]["native_ms"]}
                        for backend in ("cpu", "wasm")}
    (artifacts_dir / "bounded_crop.json").write_text(json.dumps(report, indent=2))
    assert set(report) == set(SIZES)


# --- WebGL (Chromium, SwiftShader): the 12 MP photo held as a texture ---------------------------
WEBGL_PAGE = """
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '/facepack/backend.js';
import { resizeForDetection } from '/facepack/input.js';
import { boundedCropAndResize } from '/facepack/ops/bounded_crop.js';

const b64 = (f32) => {
  const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
};
window.cropJob = async (job) => {
  const backend = await useBackend('webgl');
  const [h, w, c] = job.shape;
  const raw = new Uint8Array(await (await fetch(job.url)).arrayBuffer());
  const image = tf.tensor3d(Float32Array.from(raw), [h, w, c]);
  // TF.js's own kernel first: it uploads the photo to a texture, so the bounded crop then reads
  // it back from the GPU (as after any GPU op on the photo).
  const native = tf.tidy(() => tf.image.cropAndResize(tf.expandDims(image, 0), tf.tensor2d(job.boxes),
    tf.zeros([job.boxes.length], 'int32'), [job.size, job.size], 'bilinear', 0));
  const nativeB64 = b64(await native.data());
  let t = performance.now();
  const crops = await boundedCropAndResize(image, job.boxes, [job.size, job.size], 0);
  const bounded = b64(await crops.data());
  const ms = performance.now() - t;
  const det = await resizeForDetection(image, job.spec);
  const detected = b64(await det.image.data());
  tf.dispose([image, det.image, crops, native]);
  return { backend, detected, detectedShape: det.image.shape, bounded, native: nativeB64, ms,
           tensors: tf.memory().numTensors };
};
window.pageReady = true;
"""


def test_bounded_crop_on_webgl_12mp(face, tmp_path, artifacts_dir):
    """The same crops as Python with the 12 MP photo in a WebGL texture (headless Chromium, SwiftShader)."""
    from facepack import spec
    from facepack.detect.mtcnn_detector import resize_for_detection
    from jsharness import chromium_page, chromium_ready, page_html, static_server, wait_for_global

    ready, why_not = chromium_ready()
    if not ready:
        pytest.skip(why_not)
    h, w = SIZES["12mp"]
    canvas = phone_canvas(h, w, face)
    squares = crop_squares_of(h, w)
    py = crop_mod.crop_squares(canvas, squares, CROP_SIZE_PX, downscale="bilinear")  # the bilinear op
    py_det, _ = resize_for_detection(canvas)
    canvas.tofile(tmp_path / "12mp.rgb")
    del canvas
    job = {"url": "/data/12mp.rgb", "shape": [h, w, 3], "spec": spec.spec_dict(), "size": CROP_SIZE_PX,
           "boxes": crop_mod.tf_crop_boxes(squares, CROP_SIZE_PX, h, w).astype(np.float64).tolist()}
    with static_server({"/data/": tmp_path}, {"/crop.html": page_html(WEBGL_PAGE)}) as base:
        with chromium_page(f"{base}/crop.html", webgl=True) as page:
            wait_for_global(page, "pageReady")
            out = page.evaluate("(job) => window.cropJob(job)", job)
    if out["backend"] != "webgl":
        pytest.skip(f"WebGL did not start in this Chromium (got {out['backend']})")
    import base64

    def f32(text, shape):
        return np.frombuffer(base64.b64decode(text), np.float32).reshape(shape)

    bounded, native = f32(out["bounded"], py.shape), f32(out["native"], py.shape)
    detected = f32(out["detected"], py_det.shape)
    report = {"bounded_max_abs": float(np.abs(bounded - py).max()), "native_max_abs": float(np.abs(native - py).max()),
              "detection_resize_max_abs": float(np.abs(detected - py_det).max()), "bounded_ms": out["ms"]}
    (artifacts_dir / "bounded_crop_webgl.json").write_text(json.dumps(report, indent=2))
    assert out["tensors"] == 0
    assert report["bounded_max_abs"] <= CROP_EXACT_TOL, report
    assert report["detection_resize_max_abs"] <= DETECT_RESIZE_TOL, report


# --- The whole pipeline at 12 and 24 MP --------------------------------------------------------
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
