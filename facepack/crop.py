"""Square face crops by the spec's crop rule, and crop units back to image pixels.

The JavaScript twin (static/facepack/crop.js) computes the same squares with the same pure
functions (spec.square_box, spec.crop_box_to_tf, spec.crop_to_image, read from the manifest's
constants) and samples with static/facepack/ops/bounded_crop.js, which reproduces
``tf.image.crop_and_resize`` used here (the CPU kernel's float32 arithmetic, bit for bit, on any
photo size): bilinear, ``extrapolation_value = spec.CROP_PAD_VALUE`` for samples outside the
photo (so faces touching the border are padded, never shifted).

Conventions: a square is ``(x0, y0, side)`` in continuous image pixels (pixel i spans [i, i+1));
crop pixel i samples the photo at ``x0 + (i + 0.5) * side / S`` (its centre), so crop units
u in 0..1 map to ``x0 + u * side``.
"""

from __future__ import annotations

import numpy as np

from facepack import spec


def face_square(box: dict, margin: float) -> tuple[float, float, float]:
    """Face box {x, y, width, height} -> square (x0, y0, side) with ``margin`` (spec.square_box)."""
    return spec.square_box(box["x"], box["y"], box["width"], box["height"], margin)


def points_box_mapping(keypoint_format: str = "68") -> dict:
    """{scale, dx, dy} for a keypoint format (spec.KEYPOINTS["formats"][fmt]["detector_to_points_box"])."""
    formats = spec.KEYPOINTS["formats"]
    if str(keypoint_format) not in formats:
        raise ValueError(f"keypoint format must be one of {sorted(formats)}, got {keypoint_format!r}")
    return formats[str(keypoint_format)]["detector_to_points_box"]


def detector_to_points_box(box: dict, mapping: dict | None = None) -> dict:
    """MTCNN box -> estimated box of the ground-truth keypoints.

    The result is the square of side ``scale * max(w, h)`` centred at
    ``(cx + dx * max(w, h), cy + dy * max(w, h))``; ``mapping`` is ``points_box_mapping(fmt)``
    (None: the 68-point one).
    """
    m = points_box_mapping("68") if mapping is None else mapping
    side = max(box["width"], box["height"])
    cx = box["x"] + box["width"] / 2.0 + m["dx"] * side
    cy = box["y"] + box["height"] / 2.0 + m["dy"] * side
    new_side = m["scale"] * side
    return {"x": cx - new_side / 2.0, "y": cy - new_side / 2.0, "width": new_side, "height": new_side}


def tf_crop_boxes(squares, out_size: int, image_h: int, image_w: int) -> np.ndarray:
    """Squares -> (N, 4) float32 normalised [y1, x1, y2, x2] for crop_and_resize (spec.crop_box_to_tf)."""
    boxes = [spec.crop_box_to_tf(x0, y0, side, out_size, image_h, image_w) for x0, y0, side in squares]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def crop_squares(rgb: np.ndarray, squares, out_size: int) -> np.ndarray:
    """Photo (H, W, 3) and squares -> (N, S, S, 3) float32 crops (raw 0..255, not rounded)."""
    import tensorflow as tf

    squares = list(squares)
    if not squares:
        return np.zeros((0, out_size, out_size, 3), dtype=np.float32)
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    # uint8 stays uint8 (the kernel reads each tap as float: the same numbers, a quarter of the
    # memory on a 108 MP photo). The JS twin, static/facepack/ops/bounded_crop.js, writes this
    # kernel's float32 arithmetic out, since TF.js's cropAndResize misreads large photos on WASM.
    arr = np.asarray(rgb)
    image = tf.convert_to_tensor((arr if arr.dtype == np.uint8 else arr.astype(np.float32))[None])
    boxes = tf_crop_boxes(squares, out_size, h, w)
    crops = tf.image.crop_and_resize(image, boxes, np.zeros(len(squares), dtype=np.int32),
                                     (out_size, out_size), method=spec.CROP_METHOD,
                                     extrapolation_value=spec.CROP_PAD_VALUE)
    return crops.numpy()


def crop_points_to_image(points_uv: np.ndarray, square: tuple[float, float, float]) -> np.ndarray:
    """(P, 2) points in crop units -> (P, 2) image pixels (spec.crop_to_image, vectorised)."""
    x0, y0, side = square
    uv = np.asarray(points_uv, dtype=np.float64).reshape(-1, 2)
    xs, ys = spec.crop_to_image(uv[:, 0], uv[:, 1], x0, y0, side)  # works elementwise on arrays
    return np.stack([xs, ys], axis=1)
