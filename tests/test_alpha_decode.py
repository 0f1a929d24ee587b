"""Transparent and damaged PNGs decode to the same pixels (or the same refusal) in Python and the browser.

Rules (facepack/spec.py): ALPHA_RULE "premultiply" - RGBA is composited onto black, colour
c -> round(c * alpha / 255) - and PNG_CHECKSUMS "refuse" - a PNG with a chunk failing its CRC,
or ending inside a chunk, is refused with the same words (facepack/data/png_check.py,
static/facepack/png.js). Checked here:

- Python: the rule's integer formula, every PIL mode with alpha, the PNG check per chunk;
- Node: png.js gives Python's words on the same bytes;
- Chromium: the library's Blob input, the page's photo path (createImageBitmap -> the ImageBitmap
  to the library), its camera-frame path (bitmap -> 2D canvas -> getImageData -> {data, width,
  height} to the library), an <img> and a canvas all give Python's load_rgb pixels exactly,
  on the cpu, wasm and (SwiftShader) webgl backends; damaged PNGs are refused with Python's words.
- 16-bit PNGs (grey, grey + alpha, RGB, RGBA with zero and partial alpha): spec.SIXTEEN_BIT_RULE
  "high_byte", each sample v -> v >> 8, then the alpha rule, in Python, npm's readImageFile
  (npm/decode.js, pngjs) and Chromium; the samples' low bytes straddle 0x80, where the high
  byte and round(v / 257) differ;
- colour keys (tRNS in 1/2/4/8/16-bit grey and 8/16-bit RGB PNGs, one EXIF-rotated): pixels
  equal to the key at the file's bit depth are transparent, then black, everywhere (PIL alone
  ignored them; Chromium and pngjs apply them);
- npm's readImageFile (npm/decode.js with lib/png.js, laid out as in the package) gives Python's
  pixels for the transparent and 16-bit PNGs and refuses the damaged ones with Python's words.
(tests/test_page.py drives the real page with the same files.)
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facepack import spec
from facepack.data.images import ImageDecodeError, load_rgb
from facepack.data.png_check import png_problem
from jsharness import (NODE_MODULES, ROOT, WEBGL_ARGS, chromium_page, chromium_ready, node_ready, page_html,
                       playwright_session, run_node, static_server, wait_for_global)

FULLY_TRANSPARENT = 0
RNG = np.random.default_rng(12)


# --- Test images (made here) -------------------------------------------------------------------
def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def chunks(data: bytes) -> list[tuple[str, int, int]]:
    """[(type, offset, length)] of a PNG's chunks."""
    out, pos = [], 8
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        out.append((data[pos + 4:pos + 8].decode("ascii"), pos, n))
        pos += 12 + n
    return out


def with_bad_crc(data: bytes, kind: str) -> bytes:
    """``data`` with the CRC of its first ``kind`` chunk flipped (the chunk's bytes intact)."""
    _, pos, n = next(c for c in chunks(data) if c[0] == kind)
    out = bytearray(data)
    out[pos + 8 + n] ^= 0x5A
    return bytes(out)


def transparent_pngs(astronaut: np.ndarray) -> dict:
    """{name: PNG bytes}: the astronaut fully transparent (its colours kept under alpha 0), partly
    transparent (opaque centre fading out, random colour noise under the fully transparent
    corners, random alpha in a band), grey + alpha (LA) and a palette PNG with a transparent index."""
    h, w = astronaut.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    fade = np.clip(1.6 - np.hypot(yy - h / 2, xx - w / 2) / (0.35 * w), 0, 1)
    alpha = (fade * 255).astype(np.uint8)
    alpha[40:80] = RNG.integers(0, 256, (40, w), dtype=np.uint8)
    colours = astronaut.copy()
    hidden = alpha == FULLY_TRANSPARENT
    colours[hidden] = RNG.integers(0, 256, (int(hidden.sum()), 3), dtype=np.uint8)
    full = np.dstack([astronaut, np.zeros((h, w), np.uint8)])
    grey = np.dstack([np.asarray(Image.fromarray(astronaut).convert("L")), alpha])
    palette = Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return {"fully_transparent": png_bytes(Image.fromarray(full, "RGBA")),
            "partly_transparent": png_bytes(Image.fromarray(np.dstack([colours, alpha]), "RGBA")),
            "grey_alpha": png_bytes(Image.fromarray(grey, "LA")),
            "palette_transparent": png_bytes(palette, transparency=0)}


# 16-bit PNGs: colour type -> channels (grey, RGB, grey + alpha, RGBA)
COLOUR_TYPES_16 = {"grey16": (0, 1), "rgb16": (2, 3), "grey_alpha16": (4, 2), "rgba16": (6, 4)}
HIGH_BYTE_SHIFT = 8  # spec.SIXTEEN_BIT_RULE "high_byte": v -> v >> 8


def png_raw(samples: np.ndarray, colour_type: int, depth: int = 16, key: tuple | None = None, exif: bytes = b"") -> bytes:
    """(H, W, C) samples -> a PNG of that bit depth (filter 0; 1/2/4-bit packed), with a tRNS colour
    key and an eXIf chunk when given (PIL writes no 16-bit colour PNGs, nor 1/2/4-bit grey)."""
    h, w = samples.shape[:2]
    if depth == 16:
        rows = [samples[y].astype(">u2").tobytes() for y in range(h)]
    elif depth == 8:
        rows = [samples[y].astype(np.uint8).tobytes() for y in range(h)]
    else:
        per = 8 // depth
        v = np.pad(samples.reshape(h, w).astype(np.uint8), ((0, 0), (0, (-w) % per))).reshape(h, -1, per)
        packed = sum((v[..., i] << (8 - depth * (i + 1))).astype(np.uint8) for i in range(per))
        rows = [packed[y].astype(np.uint8).tobytes() for y in range(h)]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))
            + (chunk(b"eXIf", exif) if exif else b"")
            + (chunk(b"tRNS", struct.pack(f">{len(key)}H", *key)) if key is not None else b"")
            + chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows))) + chunk(b"IEND", b""))


def png16(samples: np.ndarray, colour_type: int) -> bytes:
    return png_raw(samples, colour_type, 16)


def samples16(channels: int, rng: np.random.Generator, h: int = 32, w: int = 64) -> np.ndarray:
    """Random 16-bit samples; the first 768 of each image are every high byte with low bytes 7F,
    80 and FF (where v >> 8 and round(v / 257) part); alpha rows 0-3 zero, 4-7 under 256 (high
    byte 0), 8-11 opaque, the rest random."""
    v = rng.integers(0, 65536, (h, w, channels), dtype=np.int64)
    flat = v.reshape(-1)
    hi = np.arange(256) << HIGH_BYTE_SHIFT
    flat[:768] = np.concatenate([hi + 0x7F, hi + 0x80, hi + 0xFF])
    if channels in (2, 4):
        a = v[..., -1]
        a[:4] = 0
        a[4:8] = rng.integers(0, 256, (4, w))
        a[8:12] = 65535
    return v.astype(np.uint16)


def eight_bit(samples: np.ndarray, to8) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of 16-bit samples under a 16 -> 8 bit rule, then spec.ALPHA_RULE."""
    v = to8(samples)
    if v.shape[2] in (1, 2):  # grey (+ alpha) -> RGB (+ alpha)
        v = np.concatenate([np.repeat(v[..., :1], 3, axis=2), v[..., 1:]], axis=2)
    return spec.premultiply_alpha(v) if v.shape[2] == 4 else v


def high_byte(samples):
    return (samples >> HIGH_BYTE_SHIFT).astype(np.uint8)


def rounded(samples):  # pngjs's own rescale, floor(v * 255 / 65535 + 0.5): the rule not chosen
    return np.floor(samples.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)


SAMPLES16 = {name: samples16(channels, np.random.default_rng(16 + ct)) for name, (ct, channels) in COLOUR_TYPES_16.items()}


# Colour-key transparency (tRNS in a grey or RGB PNG): name -> (colour type, depth, samples, key).
# A pixel is transparent when its samples equal the key at the file's bit depth (libpng, pngjs).
def keyed_cases() -> dict:
    rng = np.random.default_rng(3)
    out = {}
    for depth in (1, 2, 4, 8, 16):
        top = 2 ** depth - 1
        grey = rng.integers(0, 4, (16, 32, 1)) * top // 3  # four levels, one of them the key
        out[f"grey{depth}_key"] = (0, depth, grey, (top // 3,))
    rgb = rng.integers(0, 3, (16, 32, 3)) * 85
    out["rgb8_key"] = (2, 8, rgb, (85, 170, 0))
    rgb16 = rgb * 257
    rgb16[1::2] += 1  # odd rows: the key's high bytes, other low bytes: opaque
    out["rgb16_key"] = (2, 16, rgb16, (85 * 257, 170 * 257, 0))
    return out


KEYED = keyed_cases()
EXIF_ROTATE_90_CW = 6  # EXIF orientation: turn 90 degrees clockwise to display


def keyed_pixels(colour_type, depth, samples, key) -> np.ndarray:
    """What the rule gives: 8-bit samples (scaled by 255 / (2^d - 1), 16-bit by the high byte), black where the key is."""
    v = high_byte(samples) if depth == 16 else (samples * (255 // (2 ** depth - 1))).astype(np.uint8)
    v = np.repeat(v, 3, axis=2) if colour_type == 0 else v
    return np.where(np.all(samples == np.asarray(key), axis=2)[..., None], 0, v).astype(np.uint8)


def exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes().removeprefix(b"Exif\x00\x00")  # an eXIf chunk holds the TIFF block alone


@pytest.fixture(scope="module")
def keyed() -> dict:
    out = {name: png_raw(samples, ct, depth, key) for name, (ct, depth, samples, key) in KEYED.items()}
    ct, depth, samples, key = KEYED["rgb16_key"]
    out["rgb16_key_rotated"] = png_raw(samples, ct, depth, key, exif=exif_orientation(EXIF_ROTATE_90_CW))
    return out


@pytest.fixture(scope="module")
def pngs16() -> dict:
    return {name: png16(SAMPLES16[name], COLOUR_TYPES_16[name][0]) for name in COLOUR_TYPES_16}


@pytest.fixture(scope="module")
def astronaut(fixtures_dir) -> np.ndarray:
    return load_rgb(fixtures_dir / "astronaut.png")


@pytest.fixture(scope="module")
def pngs(astronaut) -> dict:
    return transparent_pngs(astronaut[128:384, 128:384])


@pytest.fixture(scope="module")
def damaged(fixtures_dir) -> dict:
    """{name: bytes}: one CRC flipped per chunk kind of a PNG with text and pHYs chunks, and a truncated file."""
    good = png_bytes(Image.open(fixtures_dir / "astronaut.png").convert("RGB").resize((64, 64)),
                     pnginfo=_text_info(), dpi=(72, 72))
    out = {f"bad_crc_{kind}": with_bad_crc(good, kind) for kind in ("IHDR", "tEXt", "pHYs", "IDAT", "IEND")}
    out["truncated"] = good[:len(good) // 2]
    out["good"] = good
    return out


def _text_info():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "facepack test")
    return info


# --- Python --------------------------------------------------------------------------------
def test_premultiply_formula_is_round_half_free():
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.dstack([c, c, c, a]).astype(np.uint8)
    exact = np.round(c * a / 255.0)
    assert not np.any(np.isclose((c * a / 255.0) % 1.0, 0.5)), "a tie would make 'round' ambiguous"
    np.testing.assert_array_equal(spec.premultiply_alpha(rgba)[..., 0], exact)


@pytest.mark.parametrize("name", ["fully_transparent", "partly_transparent", "grey_alpha", "palette_transparent"])
def test_python_composites_alpha_onto_black(pngs, name):
    rgba = np.asarray(Image.open(io.BytesIO(pngs[name])).convert("RGBA"))
    np.testing.assert_array_equal(load_rgb(pngs[name]), spec.premultiply_alpha(rgba))
    if name == "fully_transparent":
        assert load_rgb(pngs[name]).max() == 0


def test_python_refuses_every_damaged_png(damaged):
    assert png_problem(damaged["good"]) is None
    np.testing.assert_array_equal(load_rgb(damaged["good"]).shape, (64, 64, 3))
    for name, data in damaged.items():
        if name == "good":
            continue
        problem = png_problem(data)
        assert problem and problem.startswith("damaged PNG"), name
        if name.startswith("bad_crc_"):
            assert f"its {name[len('bad_crc_'):]} chunk fails its CRC check" in problem
        with pytest.raises(ImageDecodeError, match="damaged PNG"):
            load_rgb(data, name=f"{name}.png")


@pytest.mark.parametrize("name", list(COLOUR_TYPES_16))
def test_python_takes_the_high_byte_of_16_bit_pngs(pngs16, name):
    want = eight_bit(SAMPLES16[name], high_byte)
    # the files tell the rules apart: rounding would give other pixels
    assert np.count_nonzero(want != eight_bit(SAMPLES16[name], rounded)) > 1000
    np.testing.assert_array_equal(load_rgb(pngs16[name]), want)
    if name != "grey_alpha16":  # (in-memory arrays: HxW, HxWx1, x3 or x4)
        np.testing.assert_array_equal(load_rgb(SAMPLES16[name]), want)
    if name == "rgba16":
        assert want[:4].max() == 0 and want[4:8].max() == 0  # alpha 0, and alpha under 256 (high byte 0): black


def test_python_applies_png_colour_keys_at_the_files_bit_depth(keyed):
    for name, data in keyed.items():
        want = keyed_pixels(*KEYED[name.replace("_rotated", "")])
        if name.endswith("_rotated"):
            want = np.rot90(want, k=-1)
        got = load_rgb(data)
        assert (got.max(axis=2) == 0).any() and got.max() > 0, name  # some pixels keyed out, some not
        np.testing.assert_array_equal(got, want, err_msg=name)
    # 16-bit RGB: compared on all 16 bits (PIL alone keeps only the high bytes)
    ct, depth, samples, key = KEYED["rgb16_key"]
    got = load_rgb(keyed["rgb16_key"])
    like_key = np.all(high_byte(samples) == high_byte(np.asarray(key)), axis=2)
    assert like_key[0::2].any() and like_key[1::2].any()
    assert got[0::2][like_key[0::2]].max() == 0  # even rows: the key itself, transparent
    assert (got[1::2][like_key[1::2]] == high_byte(np.asarray(key))).all()  # odd rows: low bytes differ, opaque


def test_the_rules_are_in_the_manifest_spec():
    d = spec.spec_dict()
    assert (d["alpha_rule"], d["png_checksums"], d["sixteen_bit_rule"]) == ("premultiply", "refuse", "high_byte")


# --- Node: png.js words ---------------------------------------------------------------------
@pytest.mark.skipif(not node_ready()[0], reason=node_ready()[1])
def test_png_js_gives_pythons_words(damaged, pngs, tmp_path):
    files = {**damaged, **pngs, "not_png": b"GIF89a" + bytes(30),
             "bad_type": damaged["good"][:12] + b"\x01\x02\x03\x04" + damaged["good"][16:]}
    paths = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = str(tmp_path / name)
    script = tmp_path / "png_check.mjs"
    script.write_text(
        "import { readFileSync } from 'node:fs';\n"
        f"import {{ pngProblem, crc32 }} from '{(spec_root() / 'static/facepack/png.js').as_uri()}';\n"
        "const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));\n"
        "const out = {};\n"
        "for (const [name, path] of Object.entries(job.paths)) out[name] = pngProblem(new Uint8Array(readFileSync(path)));\n"
        "out.crc = crc32(new TextEncoder().encode(job.text));\n"
        "process.stdout.write(JSON.stringify(out));\n")
    out = run_node(script, {"paths": paths, "text": "facepack"})
    assert out.pop("crc") == zlib.crc32(b"facepack")
    for name, data in files.items():
        assert out[name] == png_problem(data), name
    assert out["bad_type"] is not None and out["not_png"] is None


# --- Node: npm's readImageFile (npm/decode.js) --------------------------------------------------
NPM_DECODE = """
import { readFileSync, writeFileSync } from 'node:fs';
import { readImageFile } from './decode.js';
const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const [name, path] of Object.entries(job.paths)) {
  try {
    const im = await readImageFile(path);
    writeFileSync(path + '.rgba', im.data);
    out[name] = { width: im.width, height: im.height };
  } catch (err) { out[name] = { code: err.code, message: err.message }; }
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def npm_runs(pngs, pngs16, keyed, damaged, tmp_path_factory) -> dict:
    """{name: (RGBA (H, W, 4) uint8 | {code, message})} from npm's readImageFile on every test PNG.

    npm/decode.js and static/facepack/png.js laid out as the package has them (decode.js,
    lib/png.js; facepack/export/npm.py), pngjs from the repository's node_modules."""
    ok, why = node_ready()
    if not ok:
        pytest.skip(why)
    if not (NODE_MODULES / "pngjs" / "package.json").is_file():
        pytest.skip(f"{NODE_MODULES / 'pngjs'} is missing (run npm ci)")
    root = tmp_path_factory.mktemp("npm_decode")
    (root / "lib").mkdir()
    (root / "decode.js").write_text((ROOT / "npm" / "decode.js").read_text())
    (root / "lib" / "png.js").write_text((ROOT / "static" / "facepack" / "png.js").read_text())
    (root / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    (root / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    (root / "run.mjs").write_text(NPM_DECODE)
    paths = {}
    for name, data in {**pngs, **pngs16, **keyed, **damaged}.items():
        (root / f"{name}.png").write_bytes(data)
        paths[name] = str(root / f"{name}.png")
    out = run_node(root / "run.mjs", {"paths": paths})
    for name, info in out.items():
        if "width" in info:
            out[name] = np.fromfile(paths[name] + ".rgba", np.uint8).reshape(info["height"], info["width"], 4)
    return out


def test_npm_reads_pythons_pixels(npm_runs, pngs, pngs16, keyed):
    for name, data in {**pngs, **pngs16, **keyed}.items():
        got = npm_runs[name]
        assert isinstance(got, np.ndarray), f"{name}: {got}"
        np.testing.assert_array_equal(spec.premultiply_alpha(got), load_rgb(data), err_msg=name)
    for name in pngs16:  # (and not pngjs's own rounding)
        np.testing.assert_array_equal(spec.premultiply_alpha(npm_runs[name]), eight_bit(SAMPLES16[name], high_byte))


def test_npm_refuses_damaged_pngs_with_pythons_words(npm_runs, damaged):
    np.testing.assert_array_equal(npm_runs["good"][..., :3], load_rgb(damaged["good"]))
    for name, data in damaged.items():
        if name == "good":
            continue
        got = npm_runs[name]
        assert isinstance(got, dict), f"{name} was decoded"
        assert got["code"] == "corrupt-image", (name, got)
        assert got["message"].endswith(f"/{name}.png: not a readable image ({png_problem(data)})"), (name, got)


@pytest.mark.skipif(not node_ready()[0], reason=node_ready()[1])
def test_library_refuses_a_sixteen_bit_rule_it_does_not_implement(tmp_path):
    """input.js: the manifest's sixteen_bit_rule must be "high_byte" (what Chromium does) or absent (older manifests)."""
    script = tmp_path / "rule.mjs"
    script.write_text(
        f"import {{ toRgbTensor }} from '{(ROOT / 'static/facepack/input.js').as_uri()}';\n"
        "const out = {};\n"
        "for (const rule of ['high_byte', null, 'round']) {\n"
        "  const spec = { alpha_rule: 'premultiply', ...(rule ? { sixteen_bit_rule: rule } : {}) };\n"
        "  try { (await toRgbTensor({ data: new Uint8Array(3), width: 1, height: 1 }, spec)).dispose(); out[rule] = 'ok'; }\n"
        "  catch (err) { out[rule] = err.message; }\n"
        "}\n"
        "process.stdout.write(JSON.stringify(out));\n")
    out = run_node(script, {})
    assert out["high_byte"] == "ok" and out["null"] == "ok"
    assert out["round"].startswith('manifest spec.sixteen_bit_rule: only "high_byte" is implemented'), out


def spec_root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


# --- Chromium: every decode path, every backend -------------------------------------------------
DECODE_PAGE = """
import * as tf from '@tensorflow/tfjs';
import { toRgbTensor } from '/facepack/input.js';
import { useBackend } from '/facepack/backend.js';

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
window.decodeAll = async (job) => {
  const backend = await useBackend(job.backend);
  const out = { backend, pixels: {}, refused: {} };
  // Pixels as base64 bytes (after the rule every value is an integer 0..255; a non-integer
  // would show up as a mismatch): long number arrays are slow to bring back through CDP.
  const read = async (input) => {
    const t = await toRgbTensor(input, job.spec);
    try {
      const values = await t.data();
      const bytes = Uint8Array.from(values, (v) => (Number.isInteger(v) && v >= 0 && v <= 255 ? v : 0));
      const exact = values.every((v, i) => v === bytes[i]);
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return exact ? btoa(text) : `not 8-bit values (${values.find((v, i) => v !== bytes[i])})`;
    } finally { t.dispose(); }
  };
  for (const [name, data] of Object.entries(job.pngs)) {
    const blob = new Blob([b64(data)], { type: 'image/png' });
    // The page decodes in static/analysis-worker.js: a photo is createImageBitmap(file, these options)
    // handed to analyze() as the ImageBitmap (decodeFile; the `bitmap` read below); a camera frame is
    // drawn on a 2D OffscreenCanvas and read with getImageData as {data, width, height} (frameRgba;
    // the `page` read below, on a DOM canvas).
    const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', colorSpaceConversion: 'none',
      premultiplyAlpha: 'none' });
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const imageData = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const img = new Image();
    img.src = URL.createObjectURL(blob);
    await img.decode();
    out.pixels[name] = {
      blob: await read(blob), page: await read({ data: imageData.data, width: imageData.width, height: imageData.height }),
      imagedata: await read(imageData), bitmap: await read(bitmap), image: await read(img), canvas: await read(canvas),
    };
    bitmap.close();
  }
  for (const [name, data] of Object.entries(job.damaged)) {
    try { await read(new Blob([b64(data)], { type: 'image/png' })); out.refused[name] = null; } catch (err) { out.refused[name] = err.message; }
  }
  out.tensors = tf.memory().numTensors;
  return out;
};
window.pageReady = true;
"""


@pytest.fixture(scope="module")
def browser_runs(pngs, pngs16, keyed, damaged) -> dict:
    ok, why = chromium_ready()
    if not ok or not node_ready()[0]:
        pytest.skip(why or node_ready()[1])
    enc = lambda d: {k: base64.b64encode(v).decode() for k, v in d.items()}  # noqa: E731
    job = {"spec": spec.spec_dict(), "pngs": enc({**pngs, **pngs16, **keyed}), "damaged": enc({k: v for k, v in damaged.items() if k != "good"})}
    runs = {}
    with static_server(pages={"/decode.html": page_html(DECODE_PAGE)}) as base, playwright_session() as p:
        for backend, webgl in (("wasm", False), ("cpu", False), ("webgl", True)):
            with chromium_page(f"{base}/decode.html", webgl=webgl, playwright=p) as page:
                wait_for_global(page, "pageReady")
                runs[backend] = page.evaluate("(job) => window.decodeAll(job)", {**job, "backend": backend})
                runs[backend]["errors"] = list(page.errors)
    return runs


@pytest.mark.parametrize("backend", ["wasm", "cpu", "webgl"])
def test_browser_decodes_pythons_pixels(browser_runs, pngs, pngs16, keyed, backend):
    run = browser_runs[backend]
    if backend == "webgl" and run["backend"] != "webgl":
        pytest.skip(f"WebGL did not start in this Chromium (got {run['backend']})")
    assert run["backend"] == backend and run["tensors"] == 0
    assert not [e for e in run["errors"] if "404" not in e], run["errors"]  # (a 404: the favicon)
    for name, data in {**pngs, **pngs16, **keyed}.items():
        want = load_rgb(data).astype(np.int32).ravel()
        for path, got in run["pixels"][name].items():
            assert not got.startswith("not"), f"{backend} {name} via {path}: {got}"
            diff = np.abs(np.frombuffer(base64.b64decode(got), np.uint8).astype(np.int32) - want)
            assert diff.max() == 0, f"{backend} {name} via {path}: {int((diff > 0).sum())} values differ, max {diff.max()}"


def test_browser_refuses_damaged_pngs_with_pythons_words(browser_runs, damaged):
    for name, message in browser_runs["wasm"]["refused"].items():
        assert message is not None, f"{name} was decoded"
        assert png_problem(damaged[name]) in message, (name, message)


def test_report(browser_runs, artifacts_dir):
    (artifacts_dir / "alpha_decode.json").write_text(json.dumps(
        {b: {"backend": r["backend"], "refused": r["refused"]} for b, r in browser_runs.items()}, indent=2))
