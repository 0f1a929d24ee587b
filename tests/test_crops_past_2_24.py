"""Every op that reads a large photo's pixels equals Python past 2^24 values, on cpu, wasm and webgl
(issue 12: "no crop, resize or gather on any backend may index past what float32 addresses
exactly ... tested at 12 MP, 24 MP and 108 MP (12000x9000) on cpu, wasm and webgl").

The matrix: {bilinear crop, area crop, detection downscale} x {12 MP 4032x3024, 24 MP 6000x4000,
108 MP 12000x9000} x {cpu, wasm, webgl}, each compared with Python's reference bit for bit:

- bilinear crop: crop.js:cropSquares with spec.crop.downscale "bilinear" (ops/bounded_crop.js)
  against facepack/crop.py:crop_squares(downscale="bilinear") (tf.image.crop_and_resize of the
  full photo); squares downscaled, upsampled, at step 1 and over the bottom-right corner (padding);
- area crop: cropSquares with "area" (ops/area_crop.js, the default for every face square larger
  than the crop) against crop_squares(downscale="area"); a large face (2568 px at 108 MP, like the
  sweep's #104), squares across the bottom and right edges, the last rows, just over step 1;
- detection downscale: input.js:resizeForDetection (ops/resize_bilinear.js) against
  tf.image.resize of the whole photo to spec.detect_size (facepack/detect/mtcnn_detector.py:
  resize_for_detection's kernel; fed uint8 here, which test_uint8_detection_reference_is_
  resize_for_detection checks is bit-equal and saves 2.6 GB at 108 MP); the whole 1280-px output.

Every crop square starts (its first row) beyond 2^24 values into the flattened photo, in its
bottom-right part, where TF.js WASM's own cropAndResize read wrong pixels; the detection
downscale samples the whole photo.

The photos: a gradient plus seeded noise (tests/js/big_photo.mjs, twin big_photo below), made by
each side from the seed (nothing photo-sized travels between processes), one Node process per
size for cpu and wasm, one Chromium (WebGL, SwiftShader) for the three sizes. What each backend
holds, as the pipeline holds it:

- cpu, wasm (Node): a float32 tensor on the backend, read back once with `await image.data()` (as
  index.js does for tensor inputs); the read-back values are checked against the photo.
- webgl: the page's path where the GPU can hold the photo. The photo is decoded as the page
  decodes a file (ImageData -> input.js:decodeInput -> tf.browser.fromPixels + the alpha rule, on
  the GPU), so it lives in a texture and the ops read it back from the GPU (`await image.data()`,
  checked against the photo: the read-back of textures past 2^24 values and, at 24 MP, past 2^24
  packed texels, is exact). On SwiftShader (CI) that is 12 and 24 MP.
- webgl, 108 MP: SwiftShader cannot hold a 12000x9000 photo. Its MAX_TEXTURE_SIZE is 8192, and
  tf.browser.fromPixels of a 12000x9000 image asks for a 10392x10393 texture ("Requested texture
  size [10392x10393] greater than WebGL maximum on this browser / GPU [8192x8192]", measured). The
  page's decode no longer fails there: input.js (overTextureLimit, TF.js 4.22's texture-shape rule)
  reads a browser-pixels source whose textures would pass the limit on the CPU, as the cpu and
  wasm backends' fromPixels does, and takes the {data, width, height} path (tests/
  test_webgl_big_decode.py: bit for bit the wasm decode under a forced 2048 limit). That path is
  the one tested here at 108 MP (npm, workers, the parity sweep use it too): decodeInput keeps the
  values in JavaScript, the tensor is never uploaded (checked: no texture before or after the
  ops), and the detection downscale and crops read those values on the CPU. It is tested on
  the webgl backend, with the photo's tensor on it. (TF.js's own WebGL cropAndResize cannot run
  at 24 MP here either: it needs an 8485x8486 texture; recorded in the report.)

Measured numbers (timings, TF.js's own cropAndResize on the same bilinear crops for comparison)
go to test-artifacts/crops_past_2_24.json.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from facepack import crop as crop_mod
from facepack import spec
from jsharness import node_ready, run_node

ok, why = node_ready()
pytestmark = pytest.mark.skipif(not ok, reason=why)

# (height, width): a 12 MP phone (4032 x 3024), 24 MP (6000 x 4000), 108 MP (12000 x 9000).
SIZES = {"12mp": (3024, 4032), "24mp": (4000, 6000), "108mp": (9000, 12000)}
BACKENDS = ("cpu", "wasm", "webgl")
OPS = ("bilinear", "area", "detect")
SEED = 20261201
FLOAT32_EXACT_VALUES = 2 ** 24  # flat indices above this are not all exact in float32
CROP_SIZE_PX = spec.BEAUTY["input_size_px"]  # 224: the beauty crop
# Pixel values 0..255. Bilinear: the JS writes out crop_and_resize's float32 arithmetic; area: the
# same float64 operations as Python, one float32 rounding; detection: resize_bilinear_op.cc's
# float32 arithmetic. All three bit for bit (the tolerances of tests/test_bounded_crop.py,
# tests/test_crop_area.py and tests/test_js_ops.py on small photos).
EXACT_TOL = 0.0
LARGE_FACE_PX = 2568.0  # the sweep's #104: a 2568-px face on a 12000 x 9000 photo
FIRST_FAR_ROW_MARGIN_PX = 1500.0  # a square this far above the bottom still starts past 2^24 at 12 MP

# --- the photo (twin of tests/js/big_photo.mjs) --------------------------------------------------
NOISE_PERIOD = 65521
TWIN_SIZE = (97, 301)  # (height, width) of the small photo both sides make to compare them


def big_photo(height: int, width: int, seed: int) -> np.ndarray:
    """(height, width, 3) uint8: floor(128 y / H) + floor(64 x / W) + NOISE[i % NOISE_PERIOD], i the
    flat index; NOISE from a uint32 hash of (k ^ seed) (tests/js/big_photo.mjs: the same integers)."""
    k = np.arange(NOISE_PERIOD, dtype=np.uint32) ^ np.uint32(seed)
    k *= np.uint32(0x9E3779B1)
    k ^= k >> np.uint32(15)
    k *= np.uint32(0x85EBCA6B)
    noise = (k >> np.uint32(26)).astype(np.uint8)
    n = height * width * 3
    out = np.tile(noise, -(-n // NOISE_PERIOD))[:n].reshape(height, width, 3)
    out += ((128 * np.arange(height)) // height).astype(np.uint8)[:, None, None]
    out += ((64 * np.arange(width)) // width).astype(np.uint8)[None, :, None]
    return out


def far_squares(height: int, width: int) -> dict:
    """{"bilinear": squares, "area": squares} ([x0, y0, side], photo pixels) in the photo's
    bottom-right part, each starting beyond 2^24 values into it."""
    h, w = float(height), float(width)
    big = min(LARGE_FACE_PX, h - FIRST_FAR_ROW_MARGIN_PX)
    return {
        "bilinear": [[w - 700 + 0.37, h - 900 + 0.61, 461.09],  # downscaled (step ~2)
                     [w - 200.25, h - 150.5, 400.125],  # over the bottom-right corner: padding
                     [w - 97.7, h - 61.3, 17.9],  # upsampled
                     [w - 1000.3, h - 224.6, 224.0]],  # step 1, the last rows
        "area": [[w - big - 40.5, h - big - 40.25, big],  # a large face
                 [w - 500.0, h - 123.25, 700.0],  # across the bottom and right edges: padding
                 [w - 300.5, h - 260.25, 250.0],  # the last rows and columns
                 [w * 0.5 + 0.125, h - 1000.75, CROP_SIZE_PX + 1e-4]],  # just over step 1
    }


def detection_reference(rgb: np.ndarray) -> np.ndarray:
    """resize_for_detection's tf.image.resize on the uint8 photo (its kernel reads each tap as float:
    the same numbers as the float32 photo, a quarter of the memory)."""
    import tensorflow as tf

    size = spec.detect_size(*rgb.shape[:2])
    return tf.image.resize(rgb[None], size, method="bilinear", antialias=False)[0].numpy()


def first_value(square, width: int) -> int:
    """Flat index (values) of the first photo pixel under a square (its top-left)."""
    x0, y0, _ = square
    return (max(int(y0), 0) * width + max(int(x0), 0)) * 3


@pytest.fixture(scope="module")
def references():
    """{size: {"bilinear", "area", "detect": Python's output, "squares"}}; each photo made once and
    dropped (memory: one photo at a time; the JS sides make their own from the seed)."""
    out = {}
    for name, (h, w) in SIZES.items():
        rgb = big_photo(h, w, SEED)
        squares = far_squares(h, w)
        out[name] = {"squares": squares,
                     "bilinear": crop_mod.crop_squares(rgb, [tuple(s) for s in squares["bilinear"]], CROP_SIZE_PX,
                                                       downscale="bilinear"),
                     "area": crop_mod.crop_squares(rgb, [tuple(s) for s in squares["area"]], CROP_SIZE_PX,
                                                   downscale="area"),
                     "detect": detection_reference(rgb)}
        del rgb
    return out


def job_of(name: str, squares: dict) -> dict:
    h, w = SIZES[name]
    return {"height": h, "width": w, "seed": SEED, "size": CROP_SIZE_PX, "spec": spec.spec_dict(), **squares}


@pytest.fixture(scope="module")
def node_runs(references, tmp_path_factory):
    """{size: {backend: {"bilinear", "area", "detect", "native": arrays, "info": runner's JSON}}}:
    one Node process per size, cpu then wasm."""
    tmp = tmp_path_factory.mktemp("crops_past_2_24")
    out = {}
    for name in SIZES:
        ref = references[name]
        job = {**job_of(name, ref["squares"]), "backends": ["cpu", "wasm"], "native": True, "out": str(tmp / name)}
        info = run_node("big_photo_crops.mjs", job, timeout=600)["results"]
        out[name] = {}
        for backend in ("cpu", "wasm"):
            got = {"info": info[backend]}
            for op, shape in (("bilinear", ref["bilinear"].shape), ("area", ref["area"].shape),
                              ("detect", ref["detect"].shape), ("native", ref["bilinear"].shape)):
                path = tmp / f"{name}.{backend}.{op}.f32"
                got[op] = np.fromfile(path, np.float32).reshape(shape)
                path.unlink()
            out[name][backend] = got
    return out


WEBGL_PAGE = """
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '/facepack/backend.js';
import { cropBoxToTf, cropSampler, cropSquares } from '/facepack/crop.js';
import { decodeInput, resizeForDetection } from '/facepack/input.js';
import { bigPhoto, countMismatches, runOps } from '/testjs/big_photo.mjs';

const lib = { tf, cropSquares, cropSampler, cropBoxToTf, resizeForDetection };
const b64 = (f32) => {
  if (!f32) return null;
  const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
};
const onGpu = (t) => tf.backend().texData.get(t.dataId).texture != null;
window.bigJob = async (job) => {
  const backend = await useBackend('webgl');
  // Free each texture when its tensor is disposed (not pooled for reuse): the next photo size
  // then fits in SwiftShader's memory (with pooling its shader compiles failed at 24 MP after 12 MP).
  tf.env().set('WEBGL_DELETE_TEXTURE_THRESHOLD', 0);
  const gl = document.createElement('canvas').getContext('webgl2');
  const maxTexture = gl.getParameter(gl.MAX_TEXTURE_SIZE);
  const { height: h, width: w } = job;
  let t = performance.now();
  const rgb = bigPhoto(h, w, job.seed);
  const ms = { make: performance.now() - t };
  t = performance.now();
  // The page's decode needs a texture of the photo's size: where the GPU has one, take that path.
  const path = Math.max(h, w) <= maxTexture ? 'gpu' : 'values';
  let image; let pixels; let gpuBefore;
  if (path === 'gpu') { // the page's decode of a file: RGBA pixels -> fromPixels on the GPU
    const rgba = new Uint8ClampedArray(h * w * 4);
    for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
      rgba[i] = rgb[j]; rgba[i + 1] = rgb[j + 1]; rgba[i + 2] = rgb[j + 2]; rgba[i + 3] = 255;
    }
    ({ image } = await decodeInput(new ImageData(rgba, w, h), job.spec));
    gpuBefore = onGpu(image);
    pixels = await image.data(); // index.js: `decoded ?? await image.data()`
  } else { // {data, width, height}: the values stay in JavaScript
    let decoded;
    ({ image, pixels: decoded } = await decodeInput({ data: rgb, width: w, height: h }, job.spec));
    gpuBefore = onGpu(image);
    pixels = decoded ?? await image.data();
  }
  ms.read = performance.now() - t;
  const mismatches = countMismatches(pixels, rgb);
  const out = await runOps(lib, image, pixels, { ...job, native: path === 'gpu' });
  const gpuAfter = onGpu(image);
  image.dispose();
  return { backend, path, maxTexture, gpuBefore, gpuAfter, mismatches, samplers: out.samplers, detectShape: out.detectShape,
           ms: { ...ms, ...out.ms }, bilinear: b64(out.bilinear), area: b64(out.area), detect: b64(out.detect),
           native: b64(out.native), nativeError: out.nativeError ?? null, tensors: tf.memory().numTensors };
};
window.pageReady = true;
"""
@pytest.fixture(scope="module")
def webgl_runs(references):
    """{size: {"bilinear", "area", "detect", "native": arrays or None, "info": the page's other fields}}:
    one headless Chromium (WebGL on SwiftShader) for the three sizes."""
    from jsharness import JS_DIR, chromium_page, chromium_ready, page_html, static_server, wait_for_global

    ready, why_not = chromium_ready()
    if not ready:
        pytest.skip(why_not)
    out = {}
    with static_server({"/testjs/": JS_DIR}, {"/big.html": page_html(WEBGL_PAGE)}) as base:
        with chromium_page(f"{base}/big.html", webgl=True, timeout_ms=600_000) as page:
            wait_for_global(page, "pageReady")
            for name in SIZES:
                ref = references[name]
                got = page.evaluate("(job) => window.bigJob(job)", job_of(name, ref["squares"]))
                if got["backend"] != "webgl":
                    pytest.skip(f"WebGL did not start in this Chromium (got {got['backend']})")
                arrays = {}
                for op, shape in (("bilinear", ref["bilinear"].shape), ("area", ref["area"].shape),
                                  ("detect", ref["detect"].shape), ("native", ref["bilinear"].shape)):
                    text = got.pop(op)
                    arrays[op] = None if text is None else np.frombuffer(base64.b64decode(text), np.float32).reshape(shape)
                out[name] = {**arrays, "info": got}
    return out


def run_of(request, size: str, backend: str) -> dict:
    """One size's outputs on one backend; Chromium starts only for a test that asks for webgl."""
    if backend == "webgl":
        return request.getfixturevalue("webgl_runs")[size]
    return request.getfixturevalue("node_runs")[size][backend]


def test_big_photo_twins_agree_and_squares_start_past_2_24():
    """The Python photo is the JS one (a small size: the formula is per flat index), and every
    crop square of every size begins beyond 2^24 values into its photo."""
    h, w = TWIN_SIZE
    assert h * w * 3 > NOISE_PERIOD  # the noise repeats inside it
    out = run_node("big_photo_crops.mjs", {"height": h, "width": w, "seed": SEED, "backends": ["cpu"],
                                           "bilinear": [[1.0, 1.0, 3.0]], "area": [[0.0, 0.0, 7.0]], "size": 2,
                                           "spec": spec.spec_dict(), "out": "", "dump": True})
    np.testing.assert_array_equal(np.asarray(out["photo"], np.uint8), big_photo(h, w, SEED).ravel())
    for name, (h, w) in SIZES.items():
        for mode, squares in far_squares(h, w).items():
            for sq in squares:
                assert first_value(sq, w) > FLOAT32_EXACT_VALUES, (name, mode, sq)


def test_uint8_detection_reference_is_resize_for_detection():
    """detection_reference (uint8 in) equals facepack's resize_for_detection (float32 in) bit for bit."""
    from facepack.detect.mtcnn_detector import resize_for_detection

    rgb = big_photo(*SIZES["12mp"], SEED)
    want, _ = resize_for_detection(rgb)
    np.testing.assert_array_equal(detection_reference(rgb), want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", OPS)
def test_js_equals_python_past_2_24_values(references, request, op, size, backend):
    ref = references[size]
    got = run_of(request, size, backend)
    info = got["info"]
    assert info["mismatches"] == 0, f"{size} {backend}: {info['mismatches']} photo values read back wrong"
    assert info["tensors"] == 0
    if op == "detect":
        assert info["detectShape"] == list(ref["detect"].shape)
    else:
        assert info["samplers"][OPS.index(op)] == [op] * len(ref["squares"][op]), info["samplers"]
    assert ref[op].std() > 1.0  # noise: a tap read from a wrong index shows
    err = np.abs(got[op] - ref[op]).reshape(len(ref[op]) if op != "detect" else 1, -1).max(axis=1)
    assert err.max() <= EXACT_TOL, f"{op} {size} {backend}: off by {err.tolist()} grey levels"


def test_webgl_holds_the_photo_where_the_page_does(webgl_runs):
    """Photos whose sides fit a texture are decoded onto the GPU (and read back from it); larger
    ones keep their values in JavaScript and are never uploaded. On SwiftShader (8192 px): 12 and
    24 MP on the GPU, 108 MP not."""
    paths = {}
    for name, (h, w) in SIZES.items():
        info = webgl_runs[name]["info"]
        paths[name] = info["path"]
        assert info["path"] == ("gpu" if max(h, w) <= info["maxTexture"] else "values"), (name, info["maxTexture"])
        if info["path"] == "gpu":
            assert info["gpuBefore"], f"{name}: the decoded photo is not in a texture"
        else:
            assert not info["gpuBefore"] and not info["gpuAfter"], f"{name}: the photo was uploaded"
    assert paths["12mp"] == "gpu", "no size went through the GPU: the webgl column would test nothing GPU-held"


def test_crops_past_2_24_report(references, request, artifacts_dir):
    """Record timings and what TF.js's own cropAndResize gives on the same bilinear crops."""
    report = {}
    for name in SIZES:
        report[name] = {}
        for backend in BACKENDS:
            got = run_of(request, name, backend)
            native = got["native"]
            report[name][backend] = {
                "ms": got["info"]["ms"], "photo_held": got["info"].get("path", "tensor"),
                **{f"{op}_max_abs": float(np.abs(got[op] - references[name][op]).max()) for op in OPS},
                "native_bilinear_max_abs": None if native is None else float(np.abs(native - references[name]["bilinear"]).max()),
                "native_error": got["info"].get("nativeError"),
            }
    (artifacts_dir / "crops_past_2_24.json").write_text(json.dumps(report, indent=2))
    assert set(report) == set(SIZES)
