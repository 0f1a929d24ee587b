"""The one spec: every constant that both Python and JavaScript use.

This module is the single source of truth (DESIGN.md, contract 1). The exporter writes
``spec_dict()`` into each bundle's ``manifest.json``; the JavaScript reads it from there and
never repeats a constant. ``tests/test_spec.py`` asserts the two agree.

Units are in the names or the comments: ``*_PX`` are pixels of the image being processed,
margins are fractions of the square side, scores are on 0..100 unless ``_1TO5``.
"""

from __future__ import annotations

import math

SPEC_VERSION = 1

# --- Images -------------------------------------------------------------------------------
COLOR_ORDER = "RGB"  # every model takes raw RGB 0..255, float32, NHWC
# Photos larger than this (longest side, pixels) are downscaled for detection by an exact
# integer-free rule: scale = DETECT_MAX_SIDE_PX / max(h, w), bilinear, half-pixel centres.
# The detection image has detect_size(h, w) pixels; results are mapped back to original pixels
# by dividing x by (new_w / w) and y by (new_h / h) (facepack/detect/mtcnn_detector.py).
DETECT_MAX_SIDE_PX = 1280
DETECT_RESIZE_METHOD = "bilinear"
RESIZE_HALF_PIXEL_CENTERS = True

# Transparent pixels (spec.premultiply_alpha): images with an alpha channel are composited onto
# black before anything else, colour c -> round(c * alpha / 255) (8-bit values), in Python
# (facepack/data/images.py) and in JavaScript for every input kind (static/facepack/input.js).
# Why this rule and not "drop alpha, keep the stored colour": a browser canvas stores colour
# premultiplied by alpha, so the page, ImageData, canvases and (on cpu/wasm) tf.browser.fromPixels
# lose the colour under alpha 0 and round it under partial alpha; measured in Chromium on 4096
# random RGBA pixels, getImageData returns colour 255 off under alpha 0, but round(c' * alpha /
# 255) of what it returns equals round(c * alpha / 255) of the file's colour for every pixel,
# and WebGL (which keeps the colour) gives the same after the rule. So this rule is the one
# every decode path can reproduce exactly.
ALPHA_RULE = "premultiply"
# 16-bit samples (PNG bit depth 16: grey, grey + alpha, RGB, RGBA; 16-bit arrays): each sample v
# (0..65535) becomes its high byte, v >> 8 (floor(v / 256)), before ALPHA_RULE (which then sees
# 8-bit colour and alpha). Why not round(v / 257): Chromium (150; createImageBitmap with the
# page's options, <img>, canvas getImageData, WebGL texImage2D) keeps the high byte on every path
# and cannot be told otherwise, and so does PIL for 16-bit RGB, RGBA and grey + alpha PNGs. Measured
# on 64 x 32 random 16-bit PNGs of each colour type (every high byte with low bytes 7F, 80, FF):
# Chromium == v >> 8 for every value, colour under alpha 0 included (WebGL); pngjs's default
# (round(v * 255 / 65535)) differed in 1335-1441 of 6144 values (23 %; up to 2 levels after
# the alpha rule), as did load_rgb's old rounding of 16-bit grey (PIL "I;16"). facepack/data/
# images.py (I;16 and uint16 arrays), npm/decode.js (pngjs skipRescale, then >> 8) follow it;
# tests/test_alpha_decode.py checks Python, npm's readImageFile and Chromium on the same files.
# A grey / RGB PNG's tRNS colour key is compared with the samples at the file's bit depth (all 16
# bits; libpng in Chromium and pngjs do so), before this rule: images.py:_apply_colour_key.
SIXTEEN_BIT_RULE = "high_byte"
# PNG integrity (facepack/data/png_check.py): a PNG with a chunk that fails its CRC, or that ends
# inside a chunk, is refused on both sides with the same words (Python's PIL and Chromium each
# refuse only some such files, and not the same ones).
PNG_CHECKSUMS = "refuse"

# --- MTCNN (the `mtcnn` 1.0.0 package's defaults, written out) -----------------------------
MTCNN = {
    # Where the pyramid starts: the smallest face searched for, in pixels of the DETECTION image
    # (the photo after detect_size; facepack/detect/mtcnn_detector.py and static/facepack/options.js
    # take this number, per call too). 30, not the package's 20 (MTCNN_PRESETS["packageCompatible"]):
    # the pyramid's largest level, where P-Net costs most, goes; an analysis 0.6-0.8x the CPU time
    # (issue 14, bench/README.md) and nothing measured is lost: 100.00 % of 1000 SCUT + 1000
    # YouTube-Faces faces (20 px: 99.95 %), 99.80 % with FACE_FILTER (20 px: 99.75 %; bench/
    # bench_detector_thresholds.py --faces 1000 --face-free 60 --min-face-size 30), all 120 faces of
    # three 1280 x 720 collages of 20-46 px boxes (40 px: 111), the seated man of tests/fixtures/
    # einstein.jpg (a 57-px box) at confidence 0.931 (20 px: 0.953; 24 px: 0.820, 40 px: 0.818 miss
    # it). MTCNN_PRESETS["fast"] starts at 40.
    "min_face_size_px": 30,
    "min_size_px": 12,  # P-Net's receptive field
    "scale_factor": 0.709,
    "threshold_pnet": 0.6,
    "threshold_rnet": 0.7,
    "threshold_onet": 0.8,
    "nms_pnet1": 0.5,  # per scale, "union"
    "nms_pnet2": 0.7,  # across scales, "union"
    "nms_rnet": 0.7,  # "union"
    "nms_onet": 0.7,  # "min"
    "pyramid_resize": "area",  # TF.js has none: implemented exactly as two matrix products
    "rnet_input_px": 24,
    "onet_input_px": 48,
    "normalize": {"offset": 127.5, "scale": 1 / 128.0},  # (x - 127.5) / 128, inside the nets
    # R/O-Net patches outside the photo: the package crops the NORMALISED photo with
    # crop_and_resize (extrapolation 0), i.e. this value in raw pixels (facepack/export/mtcnn_nets.py).
    "patch_pad_value": 127.5,
    # How R-Net and O-Net cut their 24/48-px patches from the detection image: "area" (box filter
    # over the package's sample grid, antialiased, as the original MTCNN did; facepack/detect/
    # mtcnn_detector.py:area_patches, static/facepack/ops/area_patches.js) or "bilinear" (the
    # package's crop_and_resize, no antialiasing: on a large noisy box it amplifies a 1e-7 px box
    # difference ~10x per stage, issue 12). MTCNN_PRESETS["packageCompatible"] keeps "bilinear".
    # Measured, "bilinear" -> "area": JS vs Python box difference on the 31 worst photos of
    # bench/bench_parity.py's 500-photo sweep 9.3e-5 -> 1.1e-5 of the face (photos missing a fixed
    # target 9 -> 2); recall on 1000 SCUT + 1000 YouTube-Faces faces 99.95 % -> 99.95 % (with
    # FACE_FILTER 99.75 % -> 99.75 %); false faces on 390 face-free images 3 -> 4 (filter: 2 -> 3,
    # all on scrambled face tiles) (bench/bench_detector_thresholds.py --faces 1000 --face-free 390).
    # The default since the face crops are antialiased too (CROP_DOWNSCALE, issue 12): together
    # they remove the box-to-score amplification both ends of the pipeline had.
    "patch_resize": "area",
}
# Named overlays of MTCNN (same keys; Python resolve_options(preset=...) / detect_faces(preset=...),
# JS analyze option detectorPreset), the same numbers on both sides, so parity holds for each:
# - "packageCompatible": the `mtcnn` package's own defaults (today also MTCNN's), for comparisons
#   with the package itself;
# - "fast": the pyramid from 40 px, which leaves out its largest levels, where P-Net costs most:
#   detection 0.4-0.6x the time (issue 14, bench/README.md). Measured (bench/bench_detector_
#   thresholds.py --faces 1000 --face-free 60 --min-face-size 40): the detector alone finds 100 %
#   of 1000 SCUT + 1000 YouTube-Faces faces (20 px: 99.95 %), 99.60 % with FACE_FILTER's
#   min_confidence 0.9 (20 px: 99.75 %), 0 false faces on 60 face-free images. It misses faces
#   near or under 40 detection pixels: the seated man of tests/fixtures/einstein.jpg (a 40-px box)
#   drops from confidence 0.953 to 0.818, under the face filter (why it is not the default: every
#   fixture expectation built on that face would change).
#   (These numbers were measured with "bilinear" patches.)
MTCNN_PRESETS = {"packageCompatible": {"min_face_size_px": 20, "patch_resize": "bilinear"},
                 "fast": {"min_face_size_px": 40}}
LANDMARKS5 = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]

# --- Face filter (after detection, before max_faces; facepack/pipeline.py:filter_faces) ---------
# A detected face is kept when score >= min_confidence and max(box width, height) >=
# min_box_size_px (pixels of the input photo). Per-call settings: Python analyze(min_confidence=,
# min_box_size=), predict.py --min-confidence/--min-box-size, JS analyze options minConfidence /
# minBoxSize, the page's two fields; these are their defaults. Unlike MTCNN["min_face_size_px"]
# (where the detector's pyramid starts, detection-image pixels) the filter never changes what
# the detector computes, only which of its faces are returned.
# Measured (bench/bench_detector_thresholds.py; its table is in bench/README.md): on 1000 SCUT +
# 1000 YouTube-Faces faces the detector alone finds 99.95 %; min_confidence 0.9 keeps 99.75 %
# (0.92: 99.50 %, 0.95: 98.25 %: recall must stay >= 99.5 %) and drops 1 of the 3 false faces it
# makes on 390 generated face-free images (and a 0.873 hand tattoo, issue 12). The datasets'
# smallest found faces are ~35 px, so they do not bound the size: 20 px keeps every box the
# detector returns (from MTCNN["min_face_size_px"] = 30 it still finds ~20-px boxes), so the small
# faces of group photos stay.
FACE_FILTER = {
    "min_confidence": 0.9,
    "min_box_size_px": 20,
}

# --- Pixel coordinates (one convention for every point and box) ----------------------------
# Continuous image coordinates: the image spans [0, W] x [0, H]; pixel (column i, row j), 0-based,
# covers [i, i + 1) x [j, j + 1) and its centre is (i + 0.5, j + 0.5). Every point and box facepack
# computes, stores or returns uses it: the crop rule (crop_box_to_tf samples crop pixel i at its
# centre), the keypoint model's targets and outputs (crop units u = (x - x0) / side), predict.py's
# CSV/JSON, the JS results (static/facepack/keypoints.js via crop.js) and the page's overlay.
# Annotation files use other conventions; ANNOTATION_FORMATS says which one each format uses, and
# facepack/data/annotations.py converts on reading (continuous = stored + offset) and writing
# (stored = continuous - offset), in every loader (facepack/data/keypoints.py).
PIXEL_CONVENTION = {"origin": "top-left corner of the top-left pixel", "pixel_centre": 0.5}
ANNOTATION_FORMATS = {
    # iBUG / 300-W / menpo .pts: 1-based pixel indices (a point on the centre of 0-based pixel i is
    # stored as i + 1; menpo subtracts 1 on import), so continuous = stored - 1 + 0.5.
    "pts": {"offset": -0.5, "stores": "1-based pixel indices"},
    # dlib imglab XML: <part x y> are 0-based pixel indices (dlib puts pixel centres at integers);
    # <box left top width height> spans pixels left .. left + width - 1, i.e. [left, left + width).
    "dlib_xml": {"offset": 0.5, "stores": "0-based pixel indices (points); pixel edges (boxes)"},
    # The YouTube-Faces 68-point CSV (training_frames_keypoints.csv): integers, convention not
    # documented; read as stored (offset 0). Measured (issue 19; person split, 35 epochs, seed 0):
    # the same training with the 0-based-index reading (+0.5) scores held-out NME 0.0669 against its
    # own labels vs 0.0612 as stored, and its points move (+0.23, +0.64) px. Mirroring gives a check
    # in x: a model trained with mirroring cannot learn a constant x offset of the labels, so its x
    # residual (prediction - label) shows it: -0.33 px (shipped model, person split) .. -0.92 px
    # (35-epoch run), where 0-based indices would give +0.5. So the labels are not 0-based indices.
    "youtube_faces_csv": {"offset": 0.0, "stores": "continuous coordinates (measured; undocumented)"},
    # Kaggle facial-keypoints training.csv (15 points on 96 x 96 images): sub-pixel floats, convention
    # not documented (and no Kaggle data here to measure it); read as stored (offset 0), so that the
    # submissions facepack/kaggle.py writes (predicted points as they are) use the same numbers.
    "kaggle15": {"offset": 0.0, "stores": "undocumented; read as stored"},
}

# --- Crop rule (shared by training and inference) -----------------------------------------
# A face box (x, y, w, h) becomes a square of side max(w, h) * (1 + 2 * margin), centred on
# the box centre. Outside the image the crop is padded with CROP_PAD_VALUE. It is sampled with
# tf.image.crop_and_resize / tf.image.cropAndResize (bilinear) so that output pixel i samples
# the square at x0 + (i + 0.5) * side / size - 0.5 (half-pixel centres), see crop_box_to_tf.
CROP_PAD_VALUE = 0.0
CROP_METHOD = "bilinear"
# How squares larger than the crop (step side / size > 1 photo pixel) are sampled:
# "area" (exact box-filter mean over each crop pixel's footprint, antialiased; facepack/crop.py:
# area_crop, static/facepack/ops/area_crop.js) or "bilinear" (crop_and_resize's 4 taps at the
# pixel centre, aliased when downscaling). Upscaled squares are bilinear either way.
# Why "area": a bilinear crop's slope in the square's position is the photo's pixel-to-pixel
# difference; the area mean's is that over the footprint, `step` times smaller (tests/
# test_crop_area.py), so a JS vs Python box difference of 1e-5 px no longer becomes a beauty or
# keypoint difference on large faces (issue 12). The shipped models on their own held-out data
# (bench/bench_crop_models.py, runs training/evaluate.py; bilinear -> area):
#   beauty, SCUT-FBP5500 fold 1 (660 faces, ~280-px squares at 192 px: step ~1.5):
#     PC 0.8773 -> 0.8778, MAE 0.2500 -> 0.2521, RMSE 0.3388 -> 0.3384 (PC's standard error ~0.009);
#   keypoints, YouTube-Faces held-out frames (346; mostly upscaled at 96 px, so mostly unchanged):
#     NME from the ground-truth crop 0.04596 -> 0.04597 (median equal), end to end (MTCNN with
#     "area" patches too) 0.04995 -> 0.04982, failures 2.6 % -> 2.6 %.
CROP_DOWNSCALE = "area"

# --- Beauty model -------------------------------------------------------------------------
BEAUTY = {
    "input_size_px": 224,
    "bins": 101,  # softmax over integer scores 0..100
    "score_min": 0,
    "score_max": 100,
    "label_scale": 20,  # label bin = round(score_1to5 * 20); score_1to5 = score / 20
    # SCUT-FBP5500 framing. Measured: mtcnn 1.0.0 (defaults) on 100 random training images
    # (350x350, seed 0) finds one face in each; frame side / max(box w, h) has median 1.410
    # (p10 1.190, p90 1.606), i.e. margin (1.410 - 1) / 2 = 0.205. (The box centre sits a median
    # 0.033 side below the frame centre; the square stays centred on the box.)
    "crop_margin": 0.205,
    "backbones": ["resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                  "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],  # lite: models/importers.py
}

# --- Keypoint model -----------------------------------------------------------------------
KEYPOINTS = {
    "input_size_px": 96,
    "crop_margin": 0.15,
    # Output: N (x, y) pairs in crop-relative units, 0..1 across the square crop.
    "formats": {
        "68": {
            "count": 68,
            "left_eye_outer": 36,
            "right_eye_outer": 45,
            # MTCNN box -> box of these points (measured: see the note above detect_size below)
            "detector_to_points_box": {"scale": 0.828, "dx": 0.018, "dy": 0.143},
        },
        "15": {
            "count": 15,
            # Kaggle facial-keypoints order (left/right as in the dataset: the subject's side)
            "left_eye_outer": 3,  # left_eye_outer_corner
            "right_eye_outer": 5,  # right_eye_outer_corner
            "detector_to_points_box": {"scale": 0.626, "dx": 0.024, "dy": 0.059},
        },
    },
    "failure_nme": 0.10,
    # Test-time mirror averaging, the default of the pipeline's mirror_keypoints (JS mirrorKeypoints):
    # the model also runs on the horizontally mirrored crop (one batch of 2 per face), whose points
    # are un-mirrored (u -> 1 - u, indices by MIRROR_PERMUTATION) and averaged with the direct ones.
    # On by default: the shipped Lite0 model's NME 0.0475 -> 0.0454 on held-out people, Einstein
    # 0.0816 -> 0.0784 (bench/bench_keypoints_mirror.py, area crops); the keypoint stage 3.0-3.4 -> 7.1-7.5 ms
    # per face in Chromium WASM on a loaded box (bench/bench_keypoints_speed.py --mirror), limit 10 ms.
    "mirror_average": True,
}

# 68-point iBUG/300-W groups and names.
IBUG68_GROUPS = {
    "jaw": (0, 17),
    "right_brow": (17, 22),
    "left_brow": (22, 27),
    "nose": (27, 36),
    "right_eye": (36, 42),
    "left_eye": (42, 48),
    "mouth": (48, 68),
}


def _ibug68_mirror() -> list[int]:
    """Index permutation for a horizontal flip of the 68-point iBUG layout."""
    perm = list(range(68))
    pairs = []
    pairs += [(i, 16 - i) for i in range(8)]  # jaw 0..16, 8 is the chin
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils; 27..30 the bridge stays
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


KAGGLE15_NAMES = [
    "left_eye_center", "right_eye_center",
    "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner",
    "left_eyebrow_inner_end", "left_eyebrow_outer_end",
    "right_eyebrow_inner_end", "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner", "mouth_right_corner",
    "mouth_center_top_lip", "mouth_center_bottom_lip",
]


def _kaggle15_mirror() -> list[int]:
    perm = []
    for name in KAGGLE15_NAMES:
        if "left" in name:
            other = name.replace("left", "right")
        elif "right" in name:
            other = name.replace("right", "left")
        else:
            other = name
        perm.append(KAGGLE15_NAMES.index(other))
    return perm


MIRROR_PERMUTATION = {"68": _ibug68_mirror(), "15": _kaggle15_mirror()}

# --- Grad-CAM -----------------------------------------------------------------------------
GRADCAM = {
    "target": "expected_score",  # d(sum_i p_i * i) / d(last conv feature map)
    "upsample": "bilinear",  # feature-map grid -> crop pixels, half-pixel centres
    "normalize": "max",  # divide by the per-face maximum (all-zero map stays zero)
}


# --- Pure functions that both sides implement --------------------------------------------
def square_box(x: float, y: float, w: float, h: float, margin: float) -> tuple[float, float, float]:
    """Face box -> square (x0, y0, side) in image pixels, by the crop rule above."""
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return cx - side / 2.0, cy - side / 2.0, side


def crop_box_to_tf(x0: float, y0: float, side: float, out_size: int,
                   image_h: int, image_w: int) -> tuple[float, float, float, float]:
    """Square (pixels) -> normalised [y1, x1, y2, x2] for tf.image.crop_and_resize.

    crop_and_resize samples y = y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (S - 1); we want the
    half-pixel-centre sample y0 + (i + 0.5) * side / S - 0.5, hence the endpoints below.
    """
    step = side / out_size
    first_y = y0 + 0.5 * step - 0.5
    last_y = y0 + (out_size - 0.5) * step - 0.5
    first_x = x0 + 0.5 * step - 0.5
    last_x = x0 + (out_size - 0.5) * step - 0.5
    hy = max(image_h - 1, 1)
    hx = max(image_w - 1, 1)
    return first_y / hy, first_x / hx, last_y / hy, last_x / hx


def premultiply_alpha(rgba):
    """(H, W, 4) uint8 -> (H, W, 3) uint8 composited onto black (ALPHA_RULE):
    round(c * a / 255) == (2 * c * a + 255) // 510 (no ties: 2 * c * a is even, 255 odd)."""
    import numpy as np

    arr = np.asarray(rgba, dtype=np.int32)
    return ((2 * arr[..., :3] * arr[..., 3:4] + 255) // 510).astype(np.uint8)


def crop_to_image(u: float, v: float, x0: float, y0: float, side: float) -> tuple[float, float]:
    """Crop-relative (0..1) point -> image pixels (continuous coordinates, pixel edges at ints)."""
    return x0 + u * side, y0 + v * side


# Detector box -> box of the ground-truth points, per keypoint format
# (KEYPOINTS["formats"][fmt]["detector_to_points_box"]), applied to MTCNN boxes before the
# keypoint crop (the keypoint trainer crops from the points' box). The mapped box is the square
# of side scale * max(w, h) centred at (cx + dx * max(w, h), cy + dy * max(w, h)), see
# facepack/crop.py:detector_to_points_box. Measured: mtcnn 1.0.0 on 200 random training faces of
# the YouTube Faces keypoint data (seed 0; 199 detected), medians (p10..p90):
#   "68": max(points w, h) / max(box w, h) 0.828 (0.767..0.913), dx 0.018 (-0.017..0.057),
#         dy 0.143 (0.105..0.175): the points' box is smaller and lower (no forehead);
#   "15": the Kaggle-15 points derived from the same 68 (eye centres = eye means, corners 36/39/
#         42/45, brow ends 17/21/22/26, nose tip 30, mouth corners 48/54, lips 51/57): scale 0.626
#         (0.569..0.701), dx 0.024 (-0.054..0.110), dy 0.059 (0.022..0.089) (no jaw).


def detect_size(h: int, w: int) -> tuple[int, int]:
    """(new_h, new_w) of the detection image: each side times detect_scale, rounded half up."""
    s = detect_scale(h, w)
    if s == 1.0:
        return h, w
    return max(1, math.floor(h * s + 0.5)), max(1, math.floor(w * s + 0.5))


def detect_scale(h: int, w: int) -> float:
    """Factor applied to the photo before detection (1.0 unless it is very large)."""
    longest = max(h, w)
    return 1.0 if longest <= DETECT_MAX_SIDE_PX else DETECT_MAX_SIDE_PX / longest


def score_to_label(score_1to5: float) -> int:
    """SCUT-FBP5500 mean rating (1..5) -> class bin on 0..100."""
    if not (1.0 <= score_1to5 <= 5.0) or math.isnan(score_1to5):
        raise ValueError(f"score must be on 1..5, got {score_1to5!r}")
    return int(round(score_1to5 * BEAUTY["label_scale"]))


def spec_dict() -> dict:
    """Everything above as JSON-ready data, written into every manifest."""
    return {
        "spec_version": SPEC_VERSION,
        "color_order": COLOR_ORDER,
        "detect_max_side_px": DETECT_MAX_SIDE_PX,
        "detect_resize_method": DETECT_RESIZE_METHOD,
        "resize_half_pixel_centers": RESIZE_HALF_PIXEL_CENTERS,
        "mtcnn": dict(MTCNN),
        "mtcnn_presets": {k: dict(v) for k, v in MTCNN_PRESETS.items()},
        "landmarks5": list(LANDMARKS5),
        "face_filter": dict(FACE_FILTER),
        "alpha_rule": ALPHA_RULE,
        "sixteen_bit_rule": SIXTEEN_BIT_RULE,
        "png_checksums": PNG_CHECKSUMS,
        "crop": {"pad_value": CROP_PAD_VALUE, "method": CROP_METHOD, "downscale": CROP_DOWNSCALE},
        "beauty": {k: v for k, v in BEAUTY.items()},
        "keypoints": KEYPOINTS,
        "mirror_permutation": MIRROR_PERMUTATION,
        "ibug68_groups": {k: list(v) for k, v in IBUG68_GROUPS.items()},
        "kaggle15_names": list(KAGGLE15_NAMES),
        "gradcam": dict(GRADCAM),
    }
