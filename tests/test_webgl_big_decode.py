"""Browser pixels too large for the GPU's textures decode on WebGL, bit for bit as on wasm.

tf.browser.fromPixels on WebGL uploads the photo to textures; one whose texture shape passes
WEBGL_MAX_TEXTURE_SIZE was refused ("Requested texture size [2449x2450] greater than WebGL maximum
on this browser / GPU [2048x2048]" for 3000x2000 under a 2048 limit; 12000x9000 under SwiftShader's
8192; 6000x4000 under a phone's 4096). input.js now reads such a source on the CPU the way the cpu
and wasm backends' fromPixels does (tfjs-core ops/browser.js: ImageData's data, a canvas's own 2D
context, or drawImage on a 2D canvas + getImageData) and takes the {data, width, height} path.

Here, in Chromium (SwiftShader WebGL), with tf.env().set('WEBGL_MAX_TEXTURE_SIZE', 2048) (the flag
gpgpu_util.validateTextureSize and webgl_util.getTextureShapeFromLogicalShape read; checked: TF.js's
own fromPixels of the photo throws under it), a 3000x2000 JPEG (textured, noisy content) and a
3000x2000 PNG with partial alpha (a fade, a random-alpha band, fully transparent corners over
colour) are decoded as a Blob, an ImageBitmap (the page's createImageBitmap options), an <img> and
ImageData, and compared with the wasm backend's decode of the same input: SHA-256 of the float32
values, bit for bit; the PNG also with Python's load_rgb. A 640x480 crop still takes the GPU path
(pixels null) under the same limit; a 2100x600 crop (one side over the limit, its area within it:
TF.js would squarify the upload texture, which the source does not fit) takes the CPU read. No tensor is left behind. The rule (input.js:overTextureLimit)
at real limits: 12 MP (4032x3024) stays on the GPU at 4096, 24 MP (6000x4000) leaves it at 4096 and
stays at 8192 (SwiftShader; tests/test_crops_past_2_24.py's GPU column), 108 MP leaves it at 8192.
"""

from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import pytest
from PIL import Image

from facepack import spec
from facepack.data.images import load_rgb
from jsharness import (chromium_page, chromium_ready, node_ready, page_html, playwright_session, static_server,
                       textured_background, wait_for_global)

LIMIT = 2048
H, W = 2000, 3000  # unpacked upload texture [2000, 3000] -> squarish 2450 x 2450 > 2048

PAGE = """
import * as tf from '@tensorflow/tfjs';
import { decodeInput, overTextureLimit } from '/facepack/input.js';
import { useBackend } from '/facepack/backend.js';

const sha = async (values) => {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
};
window.run = async (job) => {
  const backend = await useBackend(job.backend);
  const rule = {};
  if (backend === 'webgl') { // the rule at real GPUs' limits: which photos leave the GPU path
    const real = tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE');
    for (const limit of [4096, 8192, 16384]) {
      tf.env().set('WEBGL_MAX_TEXTURE_SIZE', limit);
      for (const [w, h] of [[4032, 3024], [6000, 4000], [12000, 9000], [3000, 2000]]) rule[`${limit} ${w}x${h}`] = overTextureLimit(w, h);
    }
    tf.env().set('WEBGL_MAX_TEXTURE_SIZE', real);
  }
  if (job.limit) tf.env().set('WEBGL_MAX_TEXTURE_SIZE', job.limit);
  const out = { backend, limit: backend === 'webgl' ? tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE') : null, rule, photos: {} };
  const read = async (input) => {
    const t0 = performance.now();
    let image;
    try {
      const d = await decodeInput(input, job.spec);
      image = d.image;
      const values = d.pixels ?? await image.data();
      const back = d.pixels ? await image.data() : values; // the tensor holds the same values
      const same = back === values || (back.length === values.length && back.every((v, i) => Object.is(v, values[i])));
      return { sha: await sha(values), same, cpu: d.pixels !== null,
        shape: image.shape, ms: performance.now() - t0 };
    } catch (err) {
      return { error: String(err && err.message || err) };
    } finally { if (image) image.dispose(); }
  };
  for (const [name, url] of Object.entries(job.photos)) {
    const blob = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none',
      colorSpaceConversion: 'none' });
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width; canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const imageData = ctx.getImageData(0, 0, canvas.width, canvas.height);
    canvas.width = 0; canvas.height = 0;
    const img = new Image();
    img.src = URL.createObjectURL(blob);
    await img.decode();
    const small = await createImageBitmap(bitmap, 0, 0, 640, 480, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    // one side over the limit, area within it: TF.js squarifies the upload texture (1123 x 1123)
    // and the source does not fit it; CPU read too
    const wide = await createImageBitmap(bitmap, 0, 0, 2100, 600, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    const r = { blob: await read(blob), bitmap: await read(bitmap), image: await read(img), imagedata: await read(imageData),
      small: await read(small), wide: await read(wide) };
    wide.close();
    if (backend === 'webgl') { // TF.js's own fromPixels under the limit: what the page did before
      try { tf.tidy(() => tf.browser.fromPixels(bitmap, 4)); r.tfjs = null; } catch (err) { r.tfjs = String(err.message); }
    }
    small.close(); bitmap.close(); URL.revokeObjectURL(img.src);
    out.photos[name] = r;
  }
  out.tensors = tf.memory().numTensors;
  return out;
};
window.pageReady = true;
"""


def photos() -> dict:
    rng = np.random.default_rng(2048)
    rgb = textured_background(rng, H, W)
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, "JPEG", quality=90)
    yy, xx = np.mgrid[0:H, 0:W]
    alpha = np.clip(1.5 - np.hypot(yy - H / 2, xx - W / 2) / (0.4 * W), 0, 1) * 255
    band = (yy > H * 0.45) & (yy < H * 0.55)
    alpha[band] = rng.integers(0, 256, int(band.sum()))
    alpha[:200, :200] = 0
    alpha[-200:, -200:] = 0
    png = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha.astype(np.uint8)]), "RGBA").save(png, "PNG", compress_level=1)
    return {"photo.jpg": jpeg.getvalue(), "alpha.png": png.getvalue()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    ok, why = chromium_ready()
    if not ok or not node_ready()[0]:
        pytest.skip(why or node_ready()[1])
    folder = tmp_path_factory.mktemp("bigdecode")
    files = photos()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = {"files": files}
    with static_server(routes={"/photos/": folder}, pages={"/p.html": page_html(PAGE)}) as base, \
            playwright_session() as p:
        for backend, webgl, limit in (("wasm", False, None), ("webgl", True, LIMIT)):
            t0 = time.monotonic()
            with chromium_page(f"{base}/p.html", webgl=webgl, playwright=p) as page:
                wait_for_global(page, "pageReady")
                job = {"backend": backend, "limit": limit, "spec": spec.spec_dict(),
                       "photos": {n: f"/photos/{n}" for n in files}}
                out[backend] = page.evaluate("(job) => window.run(job)", job)
                out[backend]["errors"] = [e for e in page.errors if "404" not in e]
            out[backend]["seconds"] = round(time.monotonic() - t0, 1)
    return out


def test_webgl_decodes_photos_over_the_texture_limit_as_wasm_does(runs):
    gl, wasm = runs["webgl"], runs["wasm"]
    if gl["backend"] != "webgl":
        pytest.skip(f"WebGL did not start in this Chromium (got {gl['backend']})")
    assert wasm["backend"] == "wasm" and gl["limit"] == LIMIT
    for name in runs["files"]:
        # the limit is the one TF.js checks: its own fromPixels refuses the photo under it
        assert "greater than WebGL maximum" in gl["photos"][name]["tfjs"], gl["photos"][name]["tfjs"]
        for path in ("blob", "bitmap", "image", "imagedata", "small", "wide"):
            got, want = gl["photos"][name][path], wasm["photos"][name][path]
            assert "error" not in got, f"webgl {name} via {path}: {got['error']}"
            assert "error" not in want, f"wasm {name} via {path}: {want['error']}"
            assert got["sha"] == want["sha"], f"{name} via {path}: webgl and wasm decodes differ"
            assert got["same"] and want["same"]
            big = path != "small"
            assert got["shape"] == {"small": [480, 640, 3], "wide": [600, 2100, 3]}.get(path, [H, W, 3])
            assert got["cpu"] is big, f"{name} via {path}: cpu={got['cpu']} (large: CPU read; small: GPU path)"
    for run in (gl, wasm):
        assert run["tensors"] == 0 and not run["errors"], (run["tensors"], run["errors"])


def test_the_rule_at_real_limits(runs):
    if runs["webgl"]["backend"] != "webgl":
        pytest.skip("no WebGL")
    assert runs["webgl"]["rule"] == {
        "4096 4032x3024": False, "4096 6000x4000": True, "4096 12000x9000": True, "4096 3000x2000": False,
        "8192 4032x3024": False, "8192 6000x4000": False, "8192 12000x9000": True, "8192 3000x2000": False,
        "16384 4032x3024": False, "16384 6000x4000": False, "16384 12000x9000": False, "16384 3000x2000": False,
    }


def test_the_alpha_png_equals_pythons_pixels(runs):
    want = hashlib.sha256(load_rgb(runs["files"]["alpha.png"]).astype(np.float32).tobytes()).hexdigest()
    for backend in ("wasm", "webgl"):
        for path in ("blob", "bitmap", "image", "imagedata"):
            assert runs[backend]["photos"]["alpha.png"][path]["sha"] == want, f"{backend} via {path}"


def test_report(runs, artifacts_dir):
    import json

    (artifacts_dir / "webgl_big_decode.json").write_text(json.dumps(
        {b: {k: v for k, v in runs[b].items()} for b in ("wasm", "webgl")}, indent=2))
