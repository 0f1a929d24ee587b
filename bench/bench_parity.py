"""Parity sweep: the JS library against the Python reference on N generated photos.

    python bench/bench_parity.py                 # 60 photos, Node WASM (about 10 minutes on 2 busy cores)
    python bench/bench_parity.py --n 500         # the issue-12 sweep (hours on 2 cores)
    python bench/bench_parity.py --quick         # 12 photos up to 12 MP, Node WASM
    python bench/bench_parity.py --js node-wasm,chromium-wasm,chromium-webgl --n 40
    python bench/bench_parity.py --indices 104,438     # only these photos (e.g. the ones that missed)
    python bench/bench_parity.py --js-decodes png      # JS decodes the PNG photos itself
    python bench/bench_parity.py --faces fixtures --max-mp 1 --n 6   # no datasets (what the tests run)

Photos (deterministic in --seed and the photo's index): face images from ../shared/datasets
(SCUT-FBP5500 350x350 portraits, YouTube-Faces tight crops; FACEPACK_DATASETS points elsewhere)
and the fixture faces (tests/fixtures; --faces fixtures: those alone), pasted as squares at random positions and sizes (some
overlapping) into canvases from 320x240 to 12000x9000 (most 0.3-4 MP, a few 12-108 MP; --max-mp
caps them), groups of 1-40 faces, on a textured or photo background; then greyscale (12 %),
partial alpha (10 %, PNG), a stored EXIF orientation 2-8 (15 %), JPEG quality 30-95 (70 %) or PNG.
Python decodes the file (facepack.pipeline.decode: EXIF applied, alpha rule), and by default both
sides analyse those same pixels (JS gets raw RGB), so the sweep measures the pipelines, not the
decoders: the EXIF, alpha and grey variants then change the content only. With --js-decodes png the
JS side decodes each PNG file itself (Node: the npm package's readImageFile, npm/decode.js, then
analyze() applies the alpha rule; Chromium: the page's Blob path), so alpha, grey and EXIF-in-PNG
(eXIf) go through its decoder too; Node records also count the uint8 values where npm's pixels
differ from Python's (npm_decode_differing, 0 expected: PNG decoding is exact). JPEGs stay
Python-decoded unless --js-decodes all: JPEG decoders are allowed to differ (IDCT and chroma
upsampling are implementation-defined; the browsers' differ from PIL's by a level or so,
tests/test_parity_browser.py DECODE_MEAN_TOL), which would blur the pipelines' parity numbers.
npm's JPEG decoder (libjpeg-turbo as WASM) gives PIL's pixels exactly (tests/test_npm.py).
tests/test_parity_sweep.py runs this code (run_chunk) on a few fixture-only photos of at most 1 MP.

Reference: facepack/pipeline.py:FacePipeline (Keras models, the `mtcnn` package). JS: the same
models as a TF.js bundle (default: the shipped models, float32, bench/results/bundle-none/ built
with convert/to_tfjs.py; --quantize float16 for the page's bundle), Grad-CAM on, default options.
Per quantity the table gives the worst difference over the photos, the photo that gave it and
how many photos meet issue 12's target; photos whose detection input exceeds 2^24 values
(cropping/resizing indices past float32's exact range) get their own rows. JSON with every
photo's numbers: bench/results/parity.json; the worst photos are kept in bench/results/parity_photos/.
The JSON records the bundle's build key (machine.bundle: common.bundle_record) and whether the bundle
was rebuilt while the sweep ran; --merge refuses parts whose keys differ (--allow-mixed-bundles
merges them anyway) and warns about parts written before the key was recorded.

A photo that misses a target downstream of the detector box (beauty, keypoints, Grad-CAM) is
measured again with the box taken out: Python's crops and models run on JS's boxes
(describe_on_boxes) and are compared with JS ("same box" rows). The column "within, or same box"
counts photos within target end to end, or whose boxes (and 5 landmarks) differ by at most
BOX_CASCADE_REL_TOL of the face and that are within target on the same box: the difference is
then the detector cascade's float32 floor times the models' sensitivity to a box shift.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from facepack import spec  # noqa: E402  (after common: the repository root on sys.path)

DATASETS = Path(os.environ.get("FACEPACK_DATASETS", common.ROOT.parent / "shared" / "datasets"))
FIXTURE_FACE_SQUARES = {"astronaut.png": [(153, 47, 140)], "einstein.jpg": [(326, 250, 140), (116, 612, 75)]}
JS_TARGETS = ("node-wasm", "chromium-wasm", "chromium-webgl")
FACE_CHOICES = ("all", "fixtures")  # --faces: face_sources
# --js-decodes: which generated files the JS side decodes itself (js_decoded_formats). "png": PNG
# decoding is exact (PIL, pngjs and Chromium must give the same pixels), so any difference is a
# decoder bug; JPEG decoders may differ by design (IDCT and chroma upsampling are implementation-
# defined: the browsers' vs PIL, tests/test_parity_browser.py DECODE_MEAN_TOL), so by default JPEGs
# travel as Python's decoded RGB. "all": JPEGs too (npm's decoder is libjpeg-turbo as WASM and gave
# PIL's pixels exactly on the sweep's JPEGs, tests/test_npm.py and test_parity_sweep; a page's may not).
JS_DECODE_CHOICES = ("none", "png", "all")
# Photos per Chromium launch (ChromiumRunner). WebGL on SwiftShader compiles ~270-480 programs per
# new photo size and TF.js keeps them all: one page failed to compile a program at its 45th photo
# (2026-12-01 sweep, #44 after #0-#43; #44 alone in a fresh page is fine), so WebGL relaunches sooner.
WASM_PHOTOS_PER_LAUNCH, WEBGL_PHOTOS_PER_LAUNCH = 60, 20
BIG_VALUES = 2 ** 24  # H * W * 3 beyond this: TF.js kernels that index in float32 may misread

# Canvas long side (px): tiers and their weights (a phone photo is 4032 px, 108 MP is 12000 x 9000).
SIZE_TIERS = [((320, 800), 0.25), ((800, 1280), 0.22), ((1280, 2000), 0.25), ((2000, 4032), 0.18),
              ((4032, 6000), 0.06), ((6000, 12000), 0.04)]
ASPECTS = [(4, 3), (3, 4), (16, 9), (9, 16), (1, 1), (3, 2)]
MAX_FACES = 40
P_GREY, P_ALPHA, P_EXIF, P_JPEG = 0.12, 0.10, 0.15, 0.70
JPEG_QUALITY = (30, 95)
MIN_FACE_DET_PX = 30  # pasted square side in detection-image pixels (smaller ones are rarely found)

# Detector box corners and 5 landmarks, |JS - Python| / the face's longer box side: the float32
# floor of the MTCNN cascade, by spec.MTCNN["patch_resize"] (tests/test_parity_crowd.py:
# CASCADE_REL_TOL, the same numbers). P-Net differs from TF by ~2e-7 of a face (conv summation
# order, XNNPACK vs oneDNN). "bilinear" (the package's patches): R-Net and O-Net re-cut their
# patches from the previous stage's box without antialiasing, so on large, noisy boxes each stage
# multiplies a box Δ by up to ~10 (measured on sweep photo #438: P-Net 2e-7, R-Net 7.4e-6, O-Net
# 6.3e-5 of the 666-px detection box; each stage given the SAME input boxes: <= 3e-6); worst
# 1.2e-4 (boxes), 2.1e-4 (landmarks) on blurred-face photos, 9.3e-5 on the 500-photo sweep (#104).
# "area" (area-sampled patches): no amplification; worst 1.1e-5 on the sweep's 31
# worst photos (#104: 2e-7), 6.3e-8 on the test's blurred face.
BOX_CASCADE_REL_TOLS = {"bilinear": 5e-4, "area": 5e-5}
BOX_CASCADE_REL_TOL = BOX_CASCADE_REL_TOLS[spec.MTCNN["patch_resize"]]

# Issue 12's targets (JS vs Python, same pixels), units in the names.
TARGETS = {  # key: (label, comparison, target)
    "count": ("faces found equal (unmatched faces)", "==", 0),
    "box_iou_min": ("box IoU (min)", ">=", 0.999),
    "box_px": ("box corner |Δ| px", "<=", None),
    "score_abs": ("detector confidence |Δ|", "<=", 1e-3),
    "landmark_px": ("5 landmarks |Δ| px", "<=", 0.1),
    "beauty_points": ("beauty |Δ| points (0..100)", "<=", 0.02),
    "keypoint_px": ("68 keypoints |Δ| px", "<=", 0.1),
    "heatmap_agreement_min": ("Grad-CAM correlation (min)", ">=", 0.999),
    "box_rel": ("box corner |Δ| / face side", "<=", BOX_CASCADE_REL_TOL),
    "landmark_rel": ("5 landmarks |Δ| / face side", "<=", BOX_CASCADE_REL_TOL),
    # Photos that miss a target downstream of the box: Python's crops and models re-run on JS's
    # boxes, against JS (same box on both sides). See BOX_CASCADE_REL_TOL for why the boxes differ.
    "same_box_beauty_points": ("same box: beauty |Δ| points", "<=", 0.02),
    "same_box_keypoint_px": ("same box: 68 keypoints |Δ| px", "<=", 0.1),
    "same_box_heatmap_agreement_min": ("same box: Grad-CAM correlation", ">=", 0.999),
}
# Quantities computed from the crops (downstream of the detector's box): a miss in one of them is
# re-measured with Python on JS's boxes (describe_on_boxes).
DOWNSTREAM = ("beauty_points", "keypoint_px", "heatmap_agreement_min")


# --- Photos ---------------------------------------------------------------------------------
def face_sources(datasets: Path = DATASETS, faces: str = "all",
                 fixtures: Path = common.FIXTURES) -> list[tuple[str, Path, tuple | None]]:
    """[(kind, path, square or None)]: dataset face images (whole image) and fixture face squares.

    ``faces``: "all" (the datasets found under ``datasets`` and the fixtures) or "fixtures" (only
    FIXTURE_FACE_SQUARES of ``fixtures``; ``datasets`` is not read: what the tests run)."""
    if faces not in FACE_CHOICES:
        raise ValueError(f"faces: expected one of {list(FACE_CHOICES)}, got {faces!r}")
    sources = []
    for kind, folder, pattern in (("scut", datasets / "scut-fbp5500-train" / "Images", "*.jpg"),
                                  ("ytf", datasets / "youtube-faces-keypoints-train" / "training", "*.jpg")):
        if faces == "all" and folder.is_dir():
            sources += [(kind, p, None) for p in sorted(folder.glob(pattern))]
    for name, squares in FIXTURE_FACE_SQUARES.items():
        sources += [("fixture", Path(fixtures) / name, sq) for sq in squares]
    return sources


def _load_face(source, side: int):
    from PIL import Image

    kind, path, square = source
    with Image.open(path) as img:
        img = img.convert("RGB")
        if square is not None:
            x0, y0, s = square
            img = img.crop((x0, y0, x0 + s, y0 + s))
        elif img.width != img.height:  # tight crops: pad to a square with their own edge colour
            s = max(img.size)
            canvas = Image.new("RGB", (s, s), img.getpixel((0, 0)))
            canvas.paste(img, ((s - img.width) // 2, (s - img.height) // 2))
            img = canvas
        return img.resize((side, side), Image.LANCZOS)


def _background(rng, h: int, w: int, sources):
    """uint8 (h, w, 3): colour blotches + a tiled noise texture, or a blurred face image."""
    import numpy as np
    from PIL import Image, ImageFilter

    if rng.random() < 0.3:
        img = _load_face(sources[int(rng.integers(len(sources)))], 64).filter(ImageFilter.GaussianBlur(2))
        base = img.resize((w, h), Image.BICUBIC)
    else:
        low = rng.integers(30, 226, (max(2, h // 96 + 2), max(2, w // 96 + 2), 3)).astype(np.uint8)
        base = Image.fromarray(low).resize((w, h), Image.BICUBIC)
    out = np.asarray(base, dtype=np.int16)
    tile = rng.integers(-20, 21, (128, 128, 3)).astype(np.int16)
    for y in range(0, h, 128):
        out[y:y + 128] += np.tile(tile, (1, w // 128 + 1, 1))[: min(128, h - y), :w]
    return np.clip(out, 0, 255).astype(np.uint8)


EXIF_STORE = {  # orientation -> PIL transpose that stores an upright image so the tag shows it upright
    2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_90",
    7: "TRANSVERSE", 8: "ROTATE_270"}


def make_photo(index: int, seed: int, sources, max_mp: float) -> tuple[bytes, dict]:
    """(encoded file bytes, description) of photo ``index``; deterministic in (seed, index)."""
    import numpy as np
    from PIL import Image

    from facepack import spec

    rng = np.random.default_rng([seed, index])
    tiers, weights = zip(*SIZE_TIERS)
    while True:
        lo, hi = tiers[int(rng.choice(len(tiers), p=np.asarray(weights) / sum(weights)))]
        long_side = int(rng.integers(lo, hi + 1))
        a, b = ASPECTS[int(rng.integers(len(ASPECTS)))]
        w, h = (long_side, long_side * b // a) if a >= b else (long_side * a // b, long_side)
        w, h = max(w, 240), max(h, 240)
        if w * h <= max_mp * 1e6:
            break
    if rng.random() < 0.05:
        w, h = (12000, 9000) if max_mp >= 108 else (w, h)
    canvas = _background(rng, h, w, sources)
    det_scale = spec.detect_scale(h, w)
    min_side = int(math.ceil(MIN_FACE_DET_PX / det_scale))
    n = int(min(MAX_FACES, max(1, round(math.exp(rng.uniform(0, math.log(MAX_FACES)))))))
    max_side = max(min_side, int(min(h, w) * (0.9 if n == 1 else 0.6 / math.sqrt(n))))
    placed, used = [], []
    for _ in range(400 * n):
        if len(placed) == n:
            break
        s = int(math.exp(rng.uniform(math.log(min_side), math.log(max_side + 1))))
        if s >= min(h, w):
            continue
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        gap = -s // 6
        if any(x < px + ps + gap and px < x + s + gap and y < py + ps + gap and py < y + s + gap for px, py, ps in placed):
            continue
        src = sources[int(rng.integers(len(sources)))]
        canvas[y:y + s, x:x + s] = np.asarray(_load_face(src, s))
        placed.append((x, y, s))
        used.append(src[0])
    desc = {"index": index, "width": w, "height": h, "faces_pasted": len(placed),
            "face_px": [min(p[2] for p in placed), max(p[2] for p in placed)] if placed else None,
            "sources": sorted(set(used))}
    img = Image.fromarray(canvas)
    big = w * h > 24e6
    if rng.random() < P_GREY:
        img = img.convert("L")
        desc["grey"] = True
    fmt = "JPEG" if (big or rng.random() < P_JPEG) else "PNG"
    if fmt == "PNG" and rng.random() < P_ALPHA / (1 - P_JPEG):
        alpha = np.full((h, w), 255, np.uint8)
        x0, x1 = sorted(rng.integers(0, w, 2))
        alpha[:, x0:x1] = rng.integers(0, 256)  # a band of constant partial (or zero) alpha
        img = img.convert("RGBA" if img.mode == "RGB" else "LA")
        img.putalpha(Image.fromarray(alpha))
        desc["alpha_band"] = [int(x0), int(x1)]
    exif = Image.Exif()
    if rng.random() < P_EXIF:
        orientation = int(rng.integers(2, 9))
        img = img.transpose(getattr(Image.Transpose, EXIF_STORE[orientation]))
        exif[0x0112] = orientation
        desc["exif_orientation"] = orientation
    buf = io.BytesIO()
    if fmt == "JPEG":
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        img.save(buf, format="JPEG", quality=quality, exif=exif.tobytes())
        desc["jpeg_quality"] = quality
    else:
        img.save(buf, format="PNG", exif=exif.tobytes())
        desc["png"] = True
    return buf.getvalue(), desc


def describe(desc: dict) -> str:
    """One short line naming a photo: index, size, faces and transforms."""
    parts = [f"#{desc['index']} {desc['width']}x{desc['height']}", f"{desc['faces_pasted']} faces"]
    if desc.get("face_px"):
        parts.append(f"{desc['face_px'][0]}-{desc['face_px'][1]} px")
    for key, label in (("grey", "grey"), ("alpha_band", "alpha"), ("exif_orientation", "exif")):
        if key in desc:
            parts.append(label if desc[key] is True else f"{label} {desc[key]}")
    parts.append(f"jpeg q{desc['jpeg_quality']}" if "jpeg_quality" in desc else "png")
    return ", ".join(parts)


# --- Running both sides -----------------------------------------------------------------------
def match_faces(py_faces: list, js_faces: list) -> tuple[list, list, int]:
    """Pairs by box IoU (greedy, best first; IoU > 0.5), in Python's order: (py, js, order swaps).

    Both sides list faces by detector confidence; two faces whose confidences agree to the last
    digits may come out in either order, which is not a parity error (counted as a swap)."""
    from jsharness import box_iou

    pairs = sorted(((box_iou(p["box"], j["box"]), i, k) for i, p in enumerate(py_faces) for k, j in enumerate(js_faces)),
                   reverse=True)
    used_py, used_js, match = set(), set(), {}
    for iou, i, k in pairs:
        if iou > 0.5 and i not in used_py and k not in used_js:
            used_py.add(i)
            used_js.add(k)
            match[i] = k
    order = sorted(match)
    swaps = sum(1 for a, b in zip(order, order[1:]) if match[a] > match[b])
    return [py_faces[i] for i in order], [js_faces[match[i]] for i in order], swaps


def photo_errors(py_faces: list, js_faces: list) -> dict:
    """compare_faces on faces matched by box (match_faces), the count difference, the largest
    box-corner difference (px) and the order swaps."""
    from jsharness import compare_faces

    py_m, js_m, swaps = match_faces(py_faces, js_faces)
    err = compare_faces(py_m, js_m)
    err["count_py"], err["count_js"], err["order_swaps"] = len(py_faces), len(js_faces), swaps
    err["count"] = max(len(py_faces), len(js_faces)) - len(py_m)
    py_faces, js_faces = py_m, js_m
    err["box_px"] = max((abs(p["box"][k] - j["box"][k]) for p, j in zip(py_faces, js_faces) for k in p["box"]),
                        default=None)
    sides = [max(p["box"]["width"], p["box"]["height"]) for p in py_faces]
    err["miss_sides_px"] = [round(side, 1) for side, p, j in zip(sides, py_faces, js_faces)
                            if downstream_misses(compare_faces([p], [j]))]  # box side of each face that misses
    err["landmark_rel"] = max((max(abs(a - b) for k in p["landmarks5"] for a, b in zip(p["landmarks5"][k], j["landmarks5"][k]))
                               / max(p["box"]["width"], p["box"]["height"]) for p, j in zip(py_faces, js_faces)), default=None)
    err["box_rel"] = max((max(abs(p["box"][k] - j["box"][k]) for k in p["box"]) / max(p["box"]["width"], p["box"]["height"])
                          for p, j in zip(py_faces, js_faces)), default=None)
    return err


def downstream_misses(err: dict) -> list[str]:
    """Keys of DOWNSTREAM whose value misses its TARGETS goal."""
    out = []
    for key in DOWNSTREAM:
        _, op, goal = TARGETS[key]
        value = err.get(key)
        if value is not None and (value < goal if op == ">=" else value > goal):
            out.append(key)
    return out


def describe_on_boxes(pipe, rgb, faces: list) -> list:
    """Python's crop, keypoint, beauty and Grad-CAM stages (FacePipeline.describe) on given faces'
    boxes: the reference's answer for JS's boxes."""
    from jsharness import detections_only

    return pipe.describe(rgb, detections_only(faces), heatmaps=True)


def same_box_errors(pipe, rgb, py_faces: list, js_faces: list) -> dict:
    """JS vs Python on JS's boxes (describe_on_boxes), faces matched as in photo_errors."""
    from jsharness import compare_faces

    _, js_m = match_faces(py_faces, js_faces)[:2]
    err = compare_faces(describe_on_boxes(pipe, rgb, js_m), js_m)
    return {f"same_box_{k}": err[k] for k in DOWNSTREAM}


NPM_DECODE_SCRIPT = """
import { readFileSync, writeFileSync } from 'node:fs';
import { readImageFile } from './decode.js';
const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const [name, [path, rgba]] of Object.entries(job.files)) {
  const im = await readImageFile(path);
  writeFileSync(rgba, im.data);
  out[name] = { width: im.width, height: im.height, channels: im.data.length / (im.width * im.height) };
}
process.stdout.write(JSON.stringify(out));
"""


def npm_decoder(root: Path) -> Path:
    """``root``/npm_decode: the npm package's decoder laid out as the package has it (npm/decode.js,
    lib/png.js = static/facepack/png.js: facepack/export/npm.py), the repository's node_modules
    (pngjs, @jsquash/jpeg) and a runner script; made once per ``root``."""
    out = Path(root) / "npm_decode"
    if (out / "run.mjs").is_file():
        return out
    (out / "lib").mkdir(parents=True, exist_ok=True)
    shutil.copy(common.ROOT / "npm" / "decode.js", out / "decode.js")
    shutil.copy(common.ROOT / "static" / "facepack" / "png.js", out / "lib" / "png.js")
    if not (out / "node_modules").exists():
        (out / "node_modules").symlink_to(common.ROOT / "node_modules", target_is_directory=True)
    (out / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    (out / "run.mjs").write_text(NPM_DECODE_SCRIPT)
    return out


def npm_decode(files: dict, decoder: Path) -> dict:
    """{name: raw image entry (jsharness.write_raw's keys; RGBA, alpha not yet applied)} of image
    files {name: path} decoded by the npm package's readImageFile (npm/decode.js: pngjs, EXIF
    orientation applied), in one Node process; each file's pixels go to <path>.rgba."""
    from jsharness import run_node

    job = {name: [str(path), f"{path}.rgba"] for name, path in files.items()}
    out = run_node(Path(decoder) / "run.mjs", {"files": job}, timeout=3600)
    return {name: {"name": name, "path": job[name][1], **out[name]} for name in files}


def run_node_chunk(bundle: Path, images: list[dict], decoder: Path | None = None) -> dict:
    """{name: faces} from one Node process (tests/js/analyze.mjs, WASM). Images with a "file"
    (--js-decodes) are first decoded by the npm package's readImageFile (npm_decode, in
    ``decoder``) and analysed as its RGBA output: what analyzer.analyzeFile(path) does."""
    from jsharness import run_node

    files = {i["name"]: i["file"] for i in images if "file" in i}
    if files and decoder is None:
        raise ValueError("run_node_chunk: images with a file to decode need the npm decoder (npm_decoder)")
    decoded = npm_decode(files, decoder) if files else {}
    job = [{**decoded[i["name"]], "options": i["options"]} if i["name"] in decoded else i for i in images]
    out = run_node("analyze.mjs", {"bundle": str(bundle), "backend": "wasm", "images": job}, timeout=3600)
    return {r["name"]: r["faces"] for r in out["results"]}


class ChromiumRunner:
    """One headless Chromium page (bench/parity_page.js) holding ONE analyzer for many chunks of a
    sweep: models are loaded and (on WebGL) shaders compiled per shape once per browser, not once
    per chunk. The analyzer is the library's createFaceAnalyzer with the backend flag ('wasm' or
    'webgl') and analyze() is called as tests/js/page.js calls it, so what is measured is unchanged.
    The browser is relaunched after ``photos_per_launch`` photos (bounds the memory of the WebGL
    program cache) and after a failed chunk. ``playwright``: a running jsharness.playwright_session()
    (one per process, shared by the runners of several targets). Use as a context manager;
    run(images) -> {name: faces}; after it, ``timings`` maps each photo to analyze()'s own timings (ms).
    """

    def __init__(self, playwright, bundle: Path, data_dir: Path, webgl: bool, photos_per_launch: int):
        self.playwright, self.bundle, self.data_dir, self.webgl = playwright, bundle, data_dir, webgl
        self.photos_per_launch = photos_per_launch
        self.stack, self.page, self.photos_done, self.launches, self.load_ms = None, None, 0, 0, []
        self.timings = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.stack is not None:
            self.stack.close()
        self.stack, self.page = None, None

    def _open(self) -> None:
        import contextlib

        from jsharness import JS_DIR, chromium_page, page_html, static_server, wait_for_global

        self.close()
        self.stack = contextlib.ExitStack()
        pages = {"/index.html": page_html((Path(__file__).resolve().parent / "parity_page.js").read_text())}
        url = self.stack.enter_context(static_server({"/data/": self.data_dir, "/models/": self.bundle,
                                                      "/tests/js/": JS_DIR}, pages))  # photo_loop.js
        self.page = self.stack.enter_context(chromium_page(url + "/index.html", webgl=self.webgl,
                                                           timeout_ms=3_600_000, playwright=self.playwright))
        wait_for_global(self.page, "pageReady")
        opened = self.page.evaluate("([b, k]) => window.openAnalyzer(b, k)",
                                    ["/models", "webgl" if self.webgl else "wasm"])
        self.launches += 1
        self.load_ms.append(opened["load_ms"])
        self.photos_done = 0

    def run(self, images: list[dict]) -> dict:
        """{name: faces} of ``images`` ([{name, path, width, height, options}], raw RGB files in data_dir;
        or [{name, file, options}]: an image file in data_dir that the page decodes, as a Blob)."""
        if self.page is None or self.photos_done >= self.photos_per_launch:
            self._open()
        job = [{"name": i["name"], "url": f"/data/{Path(i['file']).name}", "blob": True, "options": i["options"]}
               if "file" in i else
               {"name": i["name"], "url": f"/data/{Path(i['path']).name}", "width": i["width"],
                "height": i["height"], "options": i["options"]} for i in images]
        try:
            out = self.page.evaluate("(images) => window.analyzeImages(images)", job)
        except Exception:
            self.close()  # the next chunk gets a fresh browser
            raise
        self.photos_done += len(images)
        self.timings = {r["name"]: r["timings"] for r in out}
        return {r["name"]: r["faces"] for r in out}


def js_decoded_formats(js_decodes: str) -> set:
    """File formats ("png", "jpg") whose bytes the JS side decodes itself for --js-decodes."""
    if js_decodes not in JS_DECODE_CHOICES:
        raise ValueError(f"--js-decodes: expected one of {list(JS_DECODE_CHOICES)}, got {js_decodes!r}")
    return {"none": set(), "png": {"png"}, "all": {"png", "jpg"}}[js_decodes]


def run_chunk(indices: list[int], seed: int, sources, max_mp: float, pipe, bundle: Path, targets: list[str],
              runners: dict, work: Path, keep: Path | None = None, js_decodes: str = "none") -> list[dict]:
    """The sweep's records of photos ``indices``: each photo made (make_photo), written to ``work``,
    decoded and analysed by Python (``pipe``: a FacePipeline), then the chunk analysed by every JS
    target (node-wasm: run_node_chunk on ``bundle``; Chromium: ``runners[target]``), faces matched
    and compared (photo_errors), misses downstream of the box re-measured on JS's boxes
    (same_box_errors). JS gets Python's decoded RGB, except the formats of ``js_decodes``
    (js_decoded_formats): their file, decoded by npm's readImageFile (Node) or the page (Chromium);
    such records have "js_decoded": true and, for node-wasm, "npm_decode_differing" (uint8 values
    of npm's pixels, alpha rule applied, that differ from Python's). Photos that miss a target are
    copied to ``keep`` (None: not kept). A crashed JS call is printed; its photos lack that target."""
    from facepack import spec as spec_mod
    from facepack.pipeline import decode
    from jsharness import write_raw

    import numpy as np

    decoded_formats = js_decoded_formats(js_decodes)
    chunk, images, files = [], [], {}
    for i in indices:
        data, desc = make_photo(i, seed, sources, max_mp)
        name = f"p{i:05d}"
        fmt = "jpg" if "jpeg_quality" in desc else "png"
        files[name] = work / f"{name}.{fmt}"
        files[name].write_bytes(data)
        rgb = decode(data, name)
        t = time.perf_counter()
        py = pipe.analyze(rgb, heatmaps=True)
        py_ms = (time.perf_counter() - t) * 1000
        rec = {"name": name, "desc": desc, "big": rgb.shape[0] * rgb.shape[1] * 3 > BIG_VALUES, "py_faces": py["faces"],
               "py_ms": py_ms, "decoded": list(rgb.shape[:2]), "errors": {}}
        if fmt in decoded_formats:  # the JS side decodes the file itself
            images.append({"name": name, "file": str(files[name]), "options": {"heatmaps": True}})
            rec["js_decoded"] = True
        else:
            images.append({**write_raw(rgb, work / f"{name}.rgb", name), "options": {"heatmaps": True}})
        chunk.append(rec)
        del rgb
    decoder = npm_decoder(work) if decoded_formats and "node-wasm" in targets else None
    js_faces_by_target = {}
    for target in targets:
        t = time.perf_counter()
        try:
            if target == "node-wasm":
                js = run_node_chunk(bundle, images, decoder)
            else:
                js = runners[target].run(images)
        except Exception as exc:  # a crashed chunk is reported, the sweep goes on
            print(f"  {target}: chunk from photo {chunk[0]['name']} failed: {str(exc)[-400:]}", flush=True)
            js = {}
        js_faces_by_target[target] = js
        ms = (time.perf_counter() - t) * 1000 / max(1, len(images))
        for rec in chunk:
            if rec["name"] in js:
                rec["errors"][target] = photo_errors(rec["py_faces"], js[rec["name"]])
                rec.setdefault("js_ms_per_photo", {})[target] = ms
                if target in runners:  # analyze()'s own ms (the chunk's ms include the browser's launch)
                    rec.setdefault("js_analyze_ms", {})[target] = runners[target].timings[rec["name"]]["total"]
    records = []
    for rec in chunk:
        src = files[rec["name"]]
        rgba = Path(f"{src}.rgba")
        if rec.get("js_decoded") and rgba.is_file():  # npm's pixels (node-wasm) against Python's
            h, w = rec["decoded"]
            npm = np.fromfile(rgba, np.uint8)
            ours = decode(src.read_bytes(), rec["name"])
            rec["npm_decode_differing"] = (int(np.count_nonzero(spec_mod.premultiply_alpha(npm.reshape(h, w, 4)) != ours))
                                           if npm.size == h * w * 4 else -1)  # -1: another size
            rgba.unlink()
        for target, err in rec["errors"].items():
            if downstream_misses(err):  # the same quantities on the same (JS's) boxes
                err.update(same_box_errors(pipe, decode(src.read_bytes(), rec["name"]), rec["py_faces"],
                                           js_faces_by_target[target][rec["name"]]))
            bad = (err["count"] or (err["box_iou_min"] is not None and err["box_iou_min"] < 0.999)
                   or downstream_misses(err))
            if bad and keep is not None:  # keep the photos that miss a target, to look at
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, keep / src.name)
        rec["py_faces"] = len(rec.pop("py_faces"))
        records.append(rec)
    return records


def source_commit() -> dict:
    """{"commit": HEAD of this checkout, "modified": its uncommitted paths that the sweep runs (the
    library, the reference, the bench)}; the commit is None outside a git checkout."""
    import subprocess

    def git(*cmd):
        proc = subprocess.run(["git", "-C", str(common.ROOT), *cmd], capture_output=True, text=True)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else None  # (porcelain lines start with a space)

    paths = ["static/facepack", "facepack", "models/shipped", "bench/bench_parity.py", "bench/parity_page.js",
             "tests/js/photo_loop.js"]
    status = git("status", "--porcelain", "--", *paths)
    return {"commit": (git("rev-parse", "HEAD") or "").strip() or None, "modified": [ln[3:] for ln in (status or "").splitlines()]}


def explained(err: dict, key: str) -> bool:
    """Whether a miss in DOWNSTREAM ``key`` is the box alone: the boxes differ by at most
    BOX_CASCADE_REL_TOL of the face and, on the same (JS's) box, Python gives JS's value within target."""
    _, op, goal = TARGETS[f"same_box_{key}"]
    value = err.get(f"same_box_{key}")
    return (value is not None and err.get("box_rel") is not None and err["box_rel"] <= BOX_CASCADE_REL_TOL
            and (value >= goal if op == ">=" else value <= goal))


def within_cascade_floor(rel) -> bool:
    """Whether a relative error (|Δ| / face side; None: not measured) is within BOX_CASCADE_REL_TOL
    (an exact 0.0 is within: review #8)."""
    return rel is not None and rel <= BOX_CASCADE_REL_TOL


def summarize(records: list[dict], target: str) -> dict:
    """Worst value per quantity (and its photo) and how many photos meet the target, per size group."""
    groups = {"all": [r for r in records if target in r["errors"]],
              "> 2^24 values": [r for r in records if target in r["errors"] and r["big"]]}
    out = {}
    for group, recs in groups.items():
        rows = {}
        for key, (label, op, goal) in TARGETS.items():
            vals = [(r["errors"][target][key], r) for r in recs if r["errors"][target].get(key) is not None]
            if not vals:
                rows[key] = {"label": label, "op": op, "worst": None, "photo": None, "within": 0, "n": 0, "target": goal}
                continue
            worst_val, worst_rec = (min if op == ">=" else max)(vals, key=lambda t: t[0])
            ok = (lambda v: v >= goal) if op == ">=" else (lambda v: v <= goal) if goal is not None else None
            within = sum(1 for v, _ in vals if ok(v)) if ok else None
            rows[key] = {"label": label, "op": op, "target": goal, "worst": worst_val, "photo": worst_rec["desc"],
                         "photo_line": describe(worst_rec["desc"]), "within": within, "n": len(vals)}
            if key in DOWNSTREAM:  # within end to end, or on the same box with the boxes within the cascade floor
                rows[key]["within_or_same_box"] = sum(1 for v, r in vals if ok(v) or explained(r["errors"][target], key))
            if key == "landmark_px":  # O-Net's landmarks move with its box: within, or within the cascade floor
                rows[key]["within_or_same_box"] = sum(1 for v, r in vals if ok(v) or within_cascade_floor(
                    r["errors"][target].get("landmark_rel")))
        out[group] = {"photos": len(recs), "rows": rows}
    return out


def table(summary: dict, target: str) -> str:
    rows = []
    for group, block in summary.items():
        if not block["photos"]:
            continue
        for key, row in block["rows"].items():
            goal = "-" if row["target"] is None else f"{row['op']} {row['target']:g}"
            worst = row["worst"]
            cell = (None if worst is None else f"{worst:.0f}" if key == "count"
                    else f"{worst:.6f}" if row["op"] == ">=" else f"{worst:.3g}")
            within = "-" if row.get("within") is None else f"{row['within']}/{row['n']}"
            same = f"{row['within_or_same_box']}/{row['n']}" if "within_or_same_box" in row else "-"
            rows.append([f"{group} ({block['photos']})", row["label"], goal, cell, within, same,
                         row.get("photo_line") or "-"])
    headers = ["photos", "quantity", "target", f"worst ({target})", "within target", "within, or same box",
               "photo of the worst"]
    return common.format_table(headers, rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--n", type=int, default=60, help="number of photos (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="photo seed (default 0)")
    parser.add_argument("--start", type=int, default=0, help="index of the first photo (default 0)")
    parser.add_argument("--indices", default=None,
                        help="comma-separated photo indices instead of --start/--n (e.g. the photos that missed)")
    parser.add_argument("--quick", action="store_true", help="12 photos of at most 12 MP")
    parser.add_argument("--max-mp", type=float, default=108.0, help="largest canvas, megapixels (default 108)")
    parser.add_argument("--js", default="node-wasm", help=f"comma-separated, of {','.join(JS_TARGETS)} (default node-wasm)")
    parser.add_argument("--quantize", default="none", help="bundle precision: none (float32), float16, uint8")
    parser.add_argument("--faces", default="all", choices=FACE_CHOICES,
                        help="face images pasted into the photos: all (the datasets under FACEPACK_DATASETS "
                             "and the fixtures; default) or fixtures (tests/fixtures only; the datasets are "
                             "not read; the photos differ from --faces all's)")
    parser.add_argument("--js-decodes", default="none", choices=JS_DECODE_CHOICES,
                        help="none (default): JS gets Python's decoded RGB for every photo; png: JS decodes "
                             "the PNG files itself (Node: the npm package's readImageFile; Chromium: the page, "
                             "from a Blob), so alpha, grey and EXIF-in-PNG run through its decoder; JPEGs "
                             "stay Python-decoded (JPEG decoders may differ by design); all: JPEGs too (npm's "
                             "decoder gives PIL's pixels; a page's may not, and its difference then counts)")
    parser.add_argument("--chunk", type=int, default=20,
                        help="photos per JS call (default 20): Python analyses a chunk, then JS; results are "
                             "written after each chunk")
    parser.add_argument("--browser-photos", type=int, default=None,
                        help="Chromium: photos per browser launch (default: WASM 60, WebGL "
                             f"{WEBGL_PHOTOS_PER_LAUNCH}): one page and one analyzer serve the chunks until then "
                             "(models loaded, WebGL shaders compiled once per launch)")
    parser.add_argument("--out", default="parity", help="name of the JSON under bench/results/ (default parity)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop after the chunk that ends past this many minutes (the table covers the photos done)")
    parser.add_argument("--merge", default=None,
                        help="comma-separated result JSONs (names under bench/results/, e.g. two --start ranges "
                             "of one sweep): print their joint table, write it to --out; runs nothing. Refused "
                             "when the parts ran bundles with different build keys (see --allow-mixed-bundles); "
                             "parts written before the key was recorded are merged with a warning")
    parser.add_argument("--allow-mixed-bundles", action="store_true",
                        help="with --merge: merge parts whose bundles' build keys differ (or changed during a "
                             "part) anyway; the merged JSON lists every part's key")
    args = parser.parse_args(argv)
    if args.merge:
        return merge_results(args)
    targets = [t.strip() for t in args.js.split(",") if t.strip()]
    bad = [t for t in targets if t not in JS_TARGETS]
    if bad:
        raise ValueError(f"--js: expected names from {list(JS_TARGETS)}, got {bad}")
    if args.n < 1:
        raise ValueError(f"--n: expected at least 1 photo, got {args.n}")
    if args.chunk < 1 or (args.browser_photos is not None and args.browser_photos < 1):
        raise ValueError(f"--chunk and --browser-photos: expected at least 1, got {args.chunk} and {args.browser_photos}")
    n, max_mp = (12, min(args.max_mp, 12.2)) if args.quick else (args.n, args.max_mp)
    try:
        chosen = None if args.indices is None else [int(i) for i in args.indices.split(",") if i.strip()]
    except ValueError:
        raise ValueError(f"--indices: expected comma-separated integers, got {args.indices!r}") from None
    if chosen is not None:
        if not chosen or min(chosen) < 0:
            raise ValueError(f"--indices: expected photo indices >= 0, got {args.indices!r}")
        n = len(chosen)

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    info = {**common.machine_info(chromium=any(t.startswith("chromium") for t in targets)), **source_commit()}
    print(common.machine_line(info), flush=True)
    bundle = common.ensure_bundle(args.quantize)
    from facepack import spec as spec_mod

    if json.loads((bundle / "manifest.json").read_text())["spec"] != json.loads(json.dumps(spec_mod.spec_dict())):
        print(f"{bundle}: its manifest's spec differs from facepack/spec.py: rebuilding it", flush=True)
        shutil.rmtree(bundle)
        bundle = common.ensure_bundle(args.quantize)
    info["bundle"] = common.bundle_record(bundle)  # its build key: --merge refuses chunks of other bundles
    sources = face_sources(faces=args.faces)
    kinds = sorted({s[0] for s in sources})
    print(f"{n} photos (seed {args.seed}), faces from {kinds} ({len(sources)} images), JS: {targets}, "
          f"bundle {common.PRECISIONS[args.quantize]}"
          + ("" if args.js_decodes == "none" else f", JS decodes the {args.js_decodes} files"), flush=True)

    from facepack.pipeline import FacePipeline
    from jsharness import playwright_session

    pipe = FacePipeline.from_runs(common.SHIPPED["beauty"], common.SHIPPED["keypoints"])
    work = Path(tempfile.mkdtemp(prefix="bench_parity_"))
    keep = common.RESULTS_DIR / "parity_photos"
    records = []
    t0 = time.perf_counter()
    stack, runners = contextlib.ExitStack(), {}
    try:
        if any(t.startswith("chromium") for t in targets):
            playwright = stack.enter_context(playwright_session())
            runners = {t: stack.enter_context(ChromiumRunner(
                playwright, bundle, work, t == "chromium-webgl", args.browser_photos or (
                    WEBGL_PHOTOS_PER_LAUNCH if t == "chromium-webgl" else WASM_PHOTOS_PER_LAUNCH)))
                       for t in targets if t.startswith("chromium")}
        indices = chosen if chosen is not None else list(range(args.start, args.start + n))
        for c0 in range(0, len(indices), args.chunk):
            records += run_chunk(indices[c0:c0 + args.chunk], args.seed, sources, max_mp, pipe, bundle, targets,
                                 runners, work, keep=keep, js_decodes=args.js_decodes)
            for f in work.iterdir():
                if f.is_file():  # (not the npm decoder's folder)
                    f.unlink()
            print(f"  {len(records)}/{n} photos, {time.perf_counter() - t0:.0f} s", flush=True)
            write_results(args, info, targets, records, n, max_mp, t0)  # after every chunk: a stopped run keeps its photos
            if args.minutes is not None and time.perf_counter() - t0 > args.minutes * 60:
                print(f"  stopped after {args.minutes:g} minutes (--minutes)", flush=True)
                break
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    info["browser_launches"] = {t: r.launches for t, r in runners.items()}
    info["analyzer_load_ms"] = {t: r.load_ms for t, r in runners.items()}

    path, summaries = write_results(args, info, targets, records, n, max_mp, t0)
    for target in targets:
        print(f"\n{target}: JS vs Python over {len(records)} photos, worst per quantity (issue 12 targets)")
        print(table(summaries[target], target))
    print(f"\nJSON: {path}")
    return 0


def _bundle_of(data: dict) -> dict | None:
    """The bundle record of one result JSON (machine.bundle: common.bundle_record, plus
    "changed_during_run"), None for JSONs written before it was recorded."""
    return (data.get("machine") or {}).get("bundle")


def check_bundles(parts: list[dict]) -> tuple[str, list[str]]:
    """(verdict, messages) over the --merge parts' "bundle" records: "same" (one build key, none
    changed during its run), "unknown" (the keyed parts agree but some part recorded no key: it
    may have run another bundle), or "mixed" (keys differ, or a part's bundle was rebuilt while it
    ran)."""
    keys = {p["bundle"]["build_key"] for p in parts if p.get("bundle") and p["bundle"].get("build_key")}
    unkeyed = [p["file"] for p in parts if not (p.get("bundle") or {}).get("build_key")]
    changed = [p["file"] for p in parts if (p.get("bundle") or {}).get("changed_during_run")]
    messages = []
    if len(keys) > 1:
        messages.append("the parts ran bundles with different build keys: " + "; ".join(
            f"{p['file']}: {(p.get('bundle') or {}).get('build_key') or 'none recorded'}" for p in parts))
    if changed:
        messages.append(f"the bundle was rebuilt while these parts ran (their photos mix two bundles): {changed}")
    if unkeyed:
        messages.append(f"no bundle build key recorded in {unkeyed} (written before bench_parity recorded it): "
                        "cannot check that they ran the same bundle as the others")
    verdict = "mixed" if len(keys) > 1 or changed else ("unknown" if unkeyed else "same")
    return verdict, messages


def merge_results(args) -> int:
    """--merge: the records of several result JSONs (a photo in two keeps its last), one table per target.

    The parts' bundle build keys are compared (check_bundles): different keys, or a bundle rebuilt
    during a part, refuse the merge (exit 2) unless --allow-mixed-bundles; parts without a key (older
    JSONs) are merged with a printed warning. A merged JSON can be merged again (its parts are kept)."""
    by_name, parts = {}, []
    for name in (n.strip() for n in args.merge.split(",") if n.strip()):
        path = Path(name) if Path(name).is_file() else common.RESULTS_DIR / f"{Path(name).stem}.json"
        data = json.loads(path.read_text())
        if "merged" in data and "args" not in data:  # an earlier --merge: keep its parts as they were
            parts.extend(data["merged"])
        else:
            parts.append({"file": str(path), "args": data["args"], "photos_done": data["photos_done"],
                          "commit": data.get("machine", {}).get("commit"),
                          "modified": data.get("machine", {}).get("modified"), "bundle": _bundle_of(data)})
        by_name.update({r["name"]: r for r in data["records"]})
    verdict, messages = check_bundles(parts)
    for message in messages:
        print(f"{'error' if verdict == 'mixed' and not args.allow_mixed_bundles else 'warning'}: --merge: {message}",
              file=sys.stderr, flush=True)
    if verdict == "mixed" and not args.allow_mixed_bundles:
        print("--merge: nothing written (pass --allow-mixed-bundles to merge them anyway)", file=sys.stderr)
        return 2
    records = [by_name[k] for k in sorted(by_name)]
    targets = sorted({t for r in records for t in r["errors"]})
    summaries = {t: summarize(records, t) for t in targets}
    path = common.write_json(args.out, {"merged": parts, "bundle_check": verdict, "photos_done": len(records),
                                        "summary": summaries, "targets": {k: v[1:] for k, v in TARGETS.items()},
                                        "records": records})
    for target in targets:
        done = sum(1 for r in records if target in r["errors"])
        print(f"\n{target}: JS vs Python over {done} photos, worst per quantity (issue 12 targets)")
        print(table(summaries[target], target))
    print(f"\nbundles: {verdict} ({len(parts)} parts)")
    print(f"JSON: {path}")
    return 0


def write_results(args, info, targets, records, n, max_mp, t0):
    """bench/results/<--out>.json with the summaries and every photo's numbers; (path, summaries).

    Also checks that the bundle still has the build key recorded at the start (info["bundle"]):
    another bench's export may have rebuilt it under this run (Node and each Chromium launch load
    the models again); then info["bundle"]["changed_during_run"] names the photo count and the new
    key, a warning is printed once, and --merge refuses this JSON."""
    rec = info.get("bundle")
    if rec is not None and rec.get("dir") and not rec.get("changed_during_run"):
        now = common.bundle_key(common.ROOT / rec["dir"])
        if now != rec.get("build_key"):
            rec["changed_during_run"] = {"after_photos": len(records), "build_key": now}
            print(f"  WARNING: {rec['dir']} was rebuilt during this run (build key {str(rec.get('build_key'))[:12]} -> "
                  f"{str(now)[:12]}, noticed after {len(records)} photos): the results mix two bundles", flush=True)
    summaries = {t: summarize(records, t) for t in targets}
    path = common.write_json(args.out, {"machine": info, "args": vars(args), "photos_planned": n,
                                        "photos_done": len(records), "max_mp": max_mp,
                                        "targets": {k: v[1:] for k, v in TARGETS.items()},
                                        "seconds": time.perf_counter() - t0, "summary": summaries,
                                        "records": records})
    return path, summaries


if __name__ == "__main__":
    sys.exit(main())
