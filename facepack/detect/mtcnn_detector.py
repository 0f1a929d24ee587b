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
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from facepack import spec

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
    return {key: values[spec_key] for key, spec_key in OPTION_KEYS.items()}


def resolve_options(options: dict | None = None, preset: str | None = None) -> dict:
    """Fill defaults once (spec.MTCNN, then the preset, then ``options``); unknown keys, unknown
    presets or non-numbers raise ValueError naming the key."""
    resolved = default_options(preset)
    for key, value in (options or {}).items():
        if key not in resolved:
            raise ValueError(f"detector option {key!r} is unknown; expected one of {sorted(resolved)}")
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


def run_detector(detector, image: np.ndarray, options: dict) -> np.ndarray:
    """The package's own output for one float32 image: (N, 16) float64 rows, [] -> (0, 16).

    Row: [image_id, x, y, w, h, confidence, 5 landmark x, 5 landmark y] (package order).
    """
    with _PACKAGE_LOCK, stable_score_order(), pnet_sized_levels():
        rows = detector.detect_faces(np.asarray(image, dtype=np.float32), box_format="xywh",
                                     output_type="numpy", **POSTPROCESS, **options)
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
