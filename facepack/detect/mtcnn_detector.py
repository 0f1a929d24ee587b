"""Face detection with the ``mtcnn`` package (1.0.0): the reference the JavaScript MTCNN reproduces.

The package's own P/R/O nets and weights run unchanged; this module only

1. fills the detector options from ``spec.MTCNN`` (``resolve_options``),
2. downscales very large photos by ``spec.detect_size`` (``resize_for_detection``),
3. calls ``MTCNN.detect_faces(..., output_type="numpy")`` with the package's default
   post-processing, written out: ``fit_to_image=True`` (box corners clipped to
   ``[0, W - 1] x [0, H - 1]`` of the detection image), ``limit_boundaries_landmarks=False``
   (landmarks not clipped) (``run_detector``),
4. maps rows back to original pixels and names them (``rows_to_faces``).

What the package does that a port must copy (read from mtcnn/utils, mtcnn/stages):

- Its JSON output (``output_type="json"``) rounds the box ``[x1, y1, x2 - x1, y2 - y1]`` and the
  landmarks with ``np.round`` (half to even) to ints. We keep the unrounded float64 values of
  the numpy output (the same numbers before rounding): ``np.round`` of ours equals its JSON.
- Faces come out in the order of the last NMS: confidence descending.
- ``left_eye`` is the eye on the image's left (the subject's right eye), as the package names it.
- A photo with no face gives no rows (the package catches its own "no boxes" error).
- Its pyramid uses ``tf.image.resize(..., AREA)`` on the normalised photo ``(x - 127.5) / 128``.

Coordinates are continuous image coordinates as the package gives them (pixel ``i`` spans
``[i, i + 1)`` by our convention; the package itself does not define it).

One deviation, on purpose (``stable_score_order``): the package orders boxes before each NMS
with ``np.argsort(scores)[::-1]``, whose default kind is not stable, and numpy 2 on x86 runs it
through SIMD sorts picked by the CPU (AVX-512 / AVX2 / plain introsort), so boxes with EQUAL
scores come out in an order that depends on the machine. Trained P/R/O-Nets saturate at
probability 1.0 (float32) for clear faces, so such ties are common, and the tie order decides
which of two overlapping boxes NMS keeps (issue 12: 5 of 40 generated photos ended with boxes
up to 4 px apart between Python and the JS port for this reason alone). While the package runs,
its ``sort_by_scores`` uses a stable argsort: ties keep a defined order (descending: the later
row first), the same on every machine and in static/facepack/ops/nms.js:argsortDescending.
Distinct scores are ordered exactly as before.

A second deviation, only where the package fails (``pnet_sized_levels``): its pyramid has the
same number of levels whatever ``min_face_size`` is (``build_scale_pyramid`` counts them from the
photo's side), so above its default of 20 px the last levels get smaller than P-Net's input
(11 px: conv 3x3, pool 2x2 "same", conv 3x3, conv 3x3) and Keras raises "empty output", which the
package catches as "no faces" for the WHOLE photo. While the package runs, levels under that
size are left out, as static/facepack/mtcnn.js:pnetAccepts does: a level that small cannot hold a
face and the other levels' proposals are kept. With ``min_face_size`` <= 20 (spec.MTCNN's and
the package's default) no level is that small (the last one is >= 12 px): nothing changes there;
spec.MTCNN_PRESETS["fast"] (40 px) needs it.

A third, chosen by ``spec.MTCNN["patch_resize"]`` (``area_patches``; preset "packageCompatible"
keeps the package's "bilinear"): how R-Net and O-Net cut their 24/48-px patches. The package cuts
them with ``tf.image.crop_and_resize`` (bilinear, no antialiasing), so a patch of a box hundreds of
pixels wide reads 1 pixel in every 10-30 and ignores the rest. On a large noisy box a 1e-7 px move
of the box then reads different pixels, and each stage multiplies the box difference by up to ~10
(issue 12: JS vs Python, whose nets agree at float32 ulp level, ended 9.3e-5 of a 7670-px face
apart: beauty 0.66 points, keypoints 74 px). "area" samples the patch as the box filter (area
resampling) of the continuous box: each patch pixel is the mean of the photo over its footprint,
the source pixels under it with fractional edge weights, as cv2.resize INTER_AREA and MATLAB's
imresize antialiasing do when shrinking. The original MTCNN (Zhang et al. 2016, MATLAB
``imresize``) and the ports it was trained for (facenet's detect_face.py, ipazc/mtcnn < 1.0:
``cv2.resize(..., INTER_AREA)``) resized their patches this way. While the package runs with
"area", its stages' ``extract_patches`` is ``area_extract_patches``.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from facepack import spec
from facepack.crop import footprint_corners

# Presets of spec.MTCNN_PRESETS (spec keys), by name; None: spec.MTCNN as it is.
PACKAGE_COMPATIBLE = "packageCompatible"
# Smallest level side P-Net maps to a non-empty output (mtcnn/network/pnet.py: a valid 3x3 conv,
# a 2x2 / 2 "same" max-pool, two valid 3x3 convs: ceil((s - 2) / 2) - 4 >= 1).
PNET_MIN_LEVEL_PX = 11
# Detector option -> spec.MTCNN key; these are the keyword arguments of MTCNN.detect_faces.
OPTION_KEYS = {
    "min_face_size": "min_face_size_px",  # pixels of the detection image (after detect_size)
    "min_size": "min_size_px",
    "scale_factor": "scale_factor",
    "threshold_pnet": "threshold_pnet",
    "threshold_rnet": "threshold_rnet",
    "threshold_onet": "threshold_onet",
    "nms_pnet1": "nms_pnet1",
    "nms_pnet2": "nms_pnet2",
    "nms_rnet": "nms_rnet",
    "nms_onet": "nms_onet",
}
# R/O-Net patch sampling (spec.MTCNN["patch_resize"]; see the module docstring and area_patches).
PATCH_RESIZE_MODES = ("area", "bilinear")
PATCH_RESIZE_KEY = "patch_resize"  # resolved option and spec.MTCNN key; not a detect_faces kwarg
# stable_score_order patches a module attribute of the package: one detect_faces at a time.
_PACKAGE_LOCK = threading.RLock()
# The package's default post-processing, passed explicitly (see the module docstring).
POSTPROCESS = {"fit_to_image": True, "limit_boundaries_landmarks": False}
# Columns of the package's numpy output (box_format="xywh").
_COL_BOX = slice(1, 5)
_COL_SCORE = 5
_COL_LM_X = slice(6, 11)
_COL_LM_Y = slice(11, 16)


def default_options(preset: str | None = None) -> dict:
    """Detector options with every default taken from spec.MTCNN, overlaid by a preset of
    spec.MTCNN_PRESETS (``"packageCompatible"``: the `mtcnn` package's own defaults)."""
    values = dict(spec.MTCNN)
    if preset is not None:
        if preset not in spec.MTCNN_PRESETS:
            raise ValueError(f"detector preset {preset!r} is unknown; expected one of {sorted(spec.MTCNN_PRESETS)}")
        values.update(spec.MTCNN_PRESETS[preset])
    out = {key: values[spec_key] for key, spec_key in OPTION_KEYS.items()}
    out[PATCH_RESIZE_KEY] = values[PATCH_RESIZE_KEY]
    return out


def resolve_options(options: dict | None = None, preset: str | None = None) -> dict:
    """Fill defaults once (spec.MTCNN, then the preset, then ``options``); unknown keys, unknown
    presets or non-numbers raise ValueError naming the key. ``"patch_resize"`` takes one of
    PATCH_RESIZE_MODES (every other option is a positive number)."""
    resolved = default_options(preset)
    for key, value in (options or {}).items():
        if key not in resolved:
            raise ValueError(f"detector option {key!r} is unknown; expected one of {sorted(resolved)}")
        if key == PATCH_RESIZE_KEY:
            if value not in PATCH_RESIZE_MODES:
                raise ValueError(f"detector option {key!r} must be one of {list(PATCH_RESIZE_MODES)}, got {value!r}")
            resolved[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(f"detector option {key!r} must be a finite number, got {value!r}")
        if value <= 0:
            raise ValueError(f"detector option {key!r} must be > 0, got {value!r}")
        resolved[key] = value
    return resolved


def build_detector(device: str = "CPU:0"):
    """A fresh ``mtcnn.MTCNN`` (P/R/O nets with the package's weights, ~0.2 s)."""
    from mtcnn import MTCNN

    return MTCNN(stages="face_and_landmarks_detection", device=device)


def resize_for_detection(rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Photo (H, W, 3) -> (float32 detection image, (sy, sx)) by spec.detect_size.

    Large photos are resized bilinearly with half-pixel centres and no antialiasing
    (``tf.image.resize``; TF.js ``tf.image.resizeBilinear(x, size, false, true)``); the values are
    not rounded. ``sy = new_h / H`` and ``sx = new_w / W`` map results back (divide by them).
    """
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    new_h, new_w = spec.detect_size(h, w)
    image = np.asarray(rgb, dtype=np.float32)
    if (new_h, new_w) == (h, w):
        return image, (1.0, 1.0)
    import tensorflow as tf

    resized = tf.image.resize(image[None], (new_h, new_w), method="bilinear", antialias=False)[0]
    return resized.numpy(), (new_h / h, new_w / w)


def _stable_sort_by_scores(tensor, scores, ascending=True):
    """mtcnn.utils.bboxes.sort_by_scores with a stable argsort (see the module docstring)."""
    order = np.argsort(scores, kind="stable")
    return tensor[order if ascending else order[::-1]]


@contextlib.contextmanager
def stable_score_order():
    """While active, the package's box sorting breaks score ties by row order (stable argsort)."""
    from mtcnn.utils import bboxes

    original = bboxes.sort_by_scores
    bboxes.sort_by_scores = _stable_sort_by_scores
    try:
        yield
    finally:
        bboxes.sort_by_scores = original


def pnet_accepts(h: int, w: int) -> bool:
    """Whether P-Net maps an h x w level to a non-empty output (static/facepack/mtcnn.js:pnetAccepts)."""
    return min(h, w) >= PNET_MIN_LEVEL_PX


def _pnet_sized_pyramid(build):
    """build_scale_pyramid without the levels P-Net cannot run (see the module docstring)."""

    def pyramid(width, height, *args, **kwargs):
        scales = build(width, height, *args, **kwargs)
        # tf.image.resize truncates shape * scale (mtcnn/utils/images.py:scale_images).
        return scales[[pnet_accepts(int(height * s), int(width * s)) for s in scales]]

    return pyramid


@contextlib.contextmanager
def pnet_sized_levels():
    """While active, the package's P-Net stage skips pyramid levels under PNET_MIN_LEVEL_PX."""
    from mtcnn.stages import stage_pnet

    original = stage_pnet.build_scale_pyramid
    stage_pnet.build_scale_pyramid = _pnet_sized_pyramid(original)
    try:
        yield
    finally:
        stage_pnet.build_scale_pyramid = original


def _area_axis(start: float, stop: float, size: int, length: int):
    """Footprint corners of ``size`` output pixels for the box [start, stop] on an axis of
    ``length`` pixels (area_patches): (cell index, fraction) of the low and high corners, each
    (size,), and the footprint (source pixels); the corners: facepack/crop.py:footprint_corners.
    Mirrors static/facepack/ops/area_patches.js:areaAxis."""
    if size < 2:
        raise ValueError(f"area_patches: size must be >= 2 pixels, got {size}")
    first = start * (length - 1) / length  # crop_and_resize's y1 * (H - 1), y1 = start / H
    step = (stop - start) * (length - 1) / length / (size - 1)
    foot = max(step, 1.0)
    centre = first + np.arange(size, dtype=np.float64) * step + 0.5  # pixel centres at i + 0.5
    return footprint_corners(centre, foot, length), foot


def integral_image(pixels: np.ndarray, pad_value: float) -> np.ndarray:
    """(H, W, C) pixels -> (H + 1, W + 1, C) float64 sums of ``pixels - pad_value`` above-left of
    each pixel corner: S[j, i] = sum over y < j, x < i (rows summed first, then along each row,
    in order: static/facepack/ops/area_patches.js:integralImage adds in the same order)."""
    h, w, c = pixels.shape
    out = np.zeros((h + 1, w + 1, c), dtype=np.float64)
    centred = np.asarray(pixels, dtype=np.float64) - float(pad_value)
    out[1:, 1:] = np.cumsum(np.cumsum(centred, axis=0), axis=1)  # add.accumulate: sequential
    return out


def area_patches_from_integral(table: np.ndarray, boxes: np.ndarray, size: int, pad_value: float) -> np.ndarray:
    """area_patches on a precomputed integral_image(pixels, pad_value) (R-Net and O-Net share one)."""
    h, w = table.shape[0] - 1, table.shape[1] - 1
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), size, size, table.shape[2]), dtype=np.float32)
    for n, (x1, y1, x2, y2) in enumerate(boxes):
        (xl, xh), fx = _area_axis(x1, x2, size, w)
        (yl, yh), fy = _area_axis(y1, y2, size, h)

        def at(ys, xs):  # I(t_x, t_y) for every (y corner, x corner): (size, size, C)
            (j, b), (i, a) = ys, xs
            j, b, i, a = j[:, None], b[:, None, None], i[None, :], a[None, :, None]
            r0 = table[j, i] + a * (table[j, i + 1] - table[j, i])
            r1 = table[j + 1, i] + a * (table[j + 1, i + 1] - table[j + 1, i])
            return r0 + b * (r1 - r0)

        total = (at(yh, xh) - at(yh, xl)) - (at(yl, xh) - at(yl, xl))
        out[n] = float(pad_value) + total / (fx * fy)
    return out


def area_patches(pixels: np.ndarray, boxes: np.ndarray, size: int, pad_value: float) -> np.ndarray:
    """Area-sampled (box-filtered) patches: (H, W, C) pixels, (N, 4) boxes [x1, y1, x2, y2] ->
    (N, size, size, C) float32 (spec.MTCNN["patch_resize"] == "area").

    The photo is a continuous image: pixel (y, x) fills [x, x + 1) x [y, y + 1) with its value,
    and ``pad_value`` fills the plane outside it. The samples sit where the package's bilinear
    crop_and_resize puts them (so the patch's geometry, which the nets' box regression relies
    on, is unchanged): along an axis of L pixels a box [z1, z2] gives output pixel o the centre
    c_o = z1 (L - 1) / L + o s + 0.5 with step s = (z2 - z1) (L - 1) / L / (size - 1) (the
    package divides by L, not L - 1, mtcnn/utils/images.py:extract_patches). Each sample is
    widened to the footprint f = max(s, 1) source pixels, [c_o - f/2, c_o + f/2], and the output
    is the exact mean of the image over the rectangle of the two axes' footprints (box filter,
    area resampling): for s >= 1 every source pixel under the output pixel, the edge ones
    weighted by their overlap (what OpenCV's INTER_AREA does on integer-aligned cells and
    MATLAB's imresize antialiasing approximates when shrinking); for s <= 1 the unit window is
    exactly linear interpolation between pixel centres (inside the photo, crop_and_resize's own
    bilinear samples). The output is continuous in the box coordinates everywhere, and its
    slope is the photo's mean over f pixels, not its pixel-to-pixel noise.

    Computed in float64 from the integral image S of ``pixels - pad_value`` (integral_image; the
    integral of the piecewise-constant image is bilinear in each cell, so I(t_x, t_y) is S
    interpolated: r0 = S[j, i] + a (S[j, i+1] - S[j, i]), r1 likewise on row j + 1,
    I = r0 + b (r1 - r0), with corners clamped into [0, W] x [0, H], where the centred image is
    0 outside), out = pad_value + ((I(hx, hy) - I(lx, hy)) - (I(hx, ly) - I(lx, ly))) / (fx fy),
    rounded once to float32. static/facepack/ops/area_patches.js runs the same operations in
    the same order (Float64Array): the two agree bit for bit on the same pixels
    (tests/test_parity_crowd.py). Rounding: |error| <= ~1e-7 grey levels for an image of
    1280 x 1280 (sums up to H W 128), far under a float32 ulp of the pixel values.
    """
    if pixels.ndim != 3:
        raise ValueError(f"area_patches: pixels must be (H, W, C), got shape {pixels.shape}")
    return area_patches_from_integral(integral_image(pixels, pad_value), boxes, int(size), pad_value)


def area_extract_patches(images_normalized, bboxes_batch, expected_size=(24, 24)):
    """mtcnn.utils.images.extract_patches with area_patches: same arguments and output
    ((n, h, w, C) float32 tensor); pad 0, the package's extrapolation value on the normalised photo."""
    import tensorflow as tf

    images = np.asarray(images_normalized)
    rows = np.asarray(bboxes_batch, dtype=np.float64)
    if expected_size[0] != expected_size[1]:
        raise ValueError(f"area_extract_patches: square patches only, got expected_size {expected_size}")
    out = np.zeros((len(rows), expected_size[0], expected_size[1], images.shape[-1]), dtype=np.float32)
    for image_id in np.unique(rows[:, 0]).astype(int):
        sel = rows[:, 0] == image_id
        table = integral_image(images[image_id], 0.0)
        out[sel] = area_patches_from_integral(table, rows[sel, 1:5], expected_size[0], 0.0)
    return tf.constant(out)


@contextlib.contextmanager
def patch_resize_mode(mode: str):
    """While active, R-Net and O-Net cut their patches by ``mode`` (PATCH_RESIZE_MODES; "bilinear":
    the package as it is)."""
    if mode not in PATCH_RESIZE_MODES:
        raise ValueError(f"detector option {PATCH_RESIZE_KEY!r} must be one of {list(PATCH_RESIZE_MODES)}, got {mode!r}")
    if mode == "bilinear":
        yield
        return
    from mtcnn.stages import stage_onet, stage_rnet

    originals = stage_rnet.extract_patches, stage_onet.extract_patches
    stage_rnet.extract_patches = stage_onet.extract_patches = area_extract_patches
    try:
        yield
    finally:
        stage_rnet.extract_patches, stage_onet.extract_patches = originals


def run_detector(detector, image: np.ndarray, options: dict) -> np.ndarray:
    """The package's own output for one float32 image: (N, 16) float64 rows, [] -> (0, 16).

    Row: [image_id, x, y, w, h, confidence, 5 landmark x, 5 landmark y] (package order).
    ``options``: resolve_options' dict (its "patch_resize" picks the patch sampler; missing:
    the package's "bilinear").
    """
    kwargs = {k: v for k, v in options.items() if k != PATCH_RESIZE_KEY}
    mode = options.get(PATCH_RESIZE_KEY, "bilinear")
    with _PACKAGE_LOCK, stable_score_order(), pnet_sized_levels(), patch_resize_mode(mode):
        rows = detector.detect_faces(np.asarray(image, dtype=np.float32), box_format="xywh",
                                     output_type="numpy", **POSTPROCESS, **kwargs)
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return np.zeros((0, 16))
    return rows.reshape(-1, 16)


def rows_to_faces(rows: np.ndarray, scale_yx: tuple[float, float] = (1.0, 1.0)) -> list[dict]:
    """Package rows -> named faces in original pixels (divide x by sx, y by sy)."""
    sy, sx = scale_yx
    faces = []
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
        x, y, w, h = row[_COL_BOX]
        lx, ly = row[_COL_LM_X] / sx, row[_COL_LM_Y] / sy
        faces.append({
            "box": {"x": float(x / sx), "y": float(y / sy), "width": float(w / sx), "height": float(h / sy)},
            "score": float(row[_COL_SCORE]),
            "landmarks5": {name: [float(lx[i]), float(ly[i])] for i, name in enumerate(spec.LANDMARKS5)},
        })
    return faces


def detect_faces(detector, rgb: np.ndarray, options: dict | None = None, preset: str | None = None) -> list[dict]:
    """Photo (H, W, 3) RGB -> faces ``{box, score, landmarks5}`` in its pixels (may be []).

    ``options``: detector options (OPTION_KEYS; ``min_face_size`` in pixels of the detection
    image, i.e. after spec.detect_size); ``preset``: see resolve_options.
    """
    opts = resolve_options(options, preset)
    image, scale_yx = resize_for_detection(rgb)
    return rows_to_faces(run_detector(detector, image, opts), scale_yx)
