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

Downscaling (``spec.CROP_DOWNSCALE``): with "area", a crop whose step ``side / S`` exceeds one
photo pixel is area-sampled instead (area_crop: each crop pixel is the exact mean of the photo
over its footprint, the [x0 + i step, x0 + (i + 1) step] cell of the square, i.e. antialiased);
crops at step <= 1 (upscaling) stay crop_and_resize's bilinear samples, bit for bit. Why: a
bilinear sample of a face 5-20x larger than the crop reads 4 of the 25-400 photo pixels under
each crop pixel, so a 1e-4 px shift of the square (JS vs Python boxes) moves crop pixels by up to
a full pixel-to-pixel step of the photo's noise and the beauty score by ~0.1 points (issue 12);
the area mean moves by (shift / step) of an edge's contrast, continuously.
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


def crop_squares(rgb: np.ndarray, squares, out_size: int, downscale: str | None = None) -> np.ndarray:
    """Photo (H, W, 3) and squares -> (N, S, S, 3) float32 crops (raw 0..255, not rounded).

    ``downscale``: "area" or "bilinear" (None: spec.CROP_DOWNSCALE), how squares larger than
    ``out_size`` photo pixels are sampled (module docstring); ValueError on another value.
    """
    squares = list(squares)
    mode = check_downscale(downscale)
    if not squares:
        return np.zeros((0, out_size, out_size, 3), dtype=np.float32)
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    area = [k for k, sq in enumerate(squares) if uses_area(sq, out_size, mode)]
    if not area:
        return _bilinear_crops(rgb, squares, out_size)
    out = np.empty((len(squares), out_size, out_size, 3), dtype=np.float32)
    area_set = set(area)
    rest = [k for k in range(len(squares)) if k not in area_set]
    if rest:
        out[rest] = _bilinear_crops(rgb, [squares[k] for k in rest], out_size)
    for k in area:
        out[k] = area_crop(lambda x0, y0, x1, y1: rgb[y0:y1, x0:x1], squares[k], out_size, h, w)
    return out


def check_downscale(downscale: str | None) -> str:
    """None -> spec.CROP_DOWNSCALE; "area" / "bilinear" as given; anything else ValueError."""
    mode = spec.CROP_DOWNSCALE if downscale is None else downscale
    if mode not in CROP_DOWNSCALE_MODES:
        raise ValueError(f"crop downscale must be one of {list(CROP_DOWNSCALE_MODES)}, got {mode!r}")
    return mode


def uses_area(square, out_size: int, mode: str) -> bool:
    """Whether ``square`` is area-sampled: mode "area" and a step side / out_size over 1 pixel."""
    return mode == "area" and square[2] / out_size > 1.0


CROP_DOWNSCALE_MODES = ("area", "bilinear")
# Photo rows cumulated per block by area_crop (bounds its float64 temporaries to this many rows).
AREA_BLOCK_ROWS = 256


def area_axis(start: float, side: float, size: int, length: int):
    """Footprints of ``size`` crop pixels along one axis of ``length`` photo pixels for the
    square's [start, start + side]: crop pixel o has centre c = start + (o + 0.5) step, step =
    side / size, and footprint [c - f / 2, c + f / 2], f = max(step, 1), clamped to [0, length].
    Returns ((low cell, low frac), (high cell, high frac)), each (size,) int64 / float64 with
    cell = min(floor(t), length - 1) and frac = t - cell, and f. Float64, the same operations in
    the same order as static/facepack/crop.js:areaAxis."""
    step = side / size
    foot = max(step, 1.0)
    centre = start + (np.arange(size, dtype=np.float64) + 0.5) * step
    return footprint_corners(centre, foot, length), foot


def footprint_corners(centre: np.ndarray, foot: float, length: int):
    """Each sample's footprint [centre - foot / 2, centre + foot / 2] clamped into [0, length], as
    [(low cell, low frac), (high cell, high frac)] with cell = min(floor(t), length - 1) (int64)
    and frac = t - cell (float64). Shared by area_axis (face crops) and
    facepack/detect/mtcnn_detector.py:_area_axis (R/O-Net patches), which differ only in their
    sample centres; mirrors static/facepack/ops/footprint.js:footprintCorners."""
    corners = []
    for t in (centre - 0.5 * foot, centre + 0.5 * foot):
        t = np.minimum(np.maximum(t, 0.0), float(length))
        cell = np.minimum(np.floor(t), length - 1).astype(np.int64)
        corners.append((cell, t - cell))
    return corners


def area_crop(read, square, out_size: int, height: int, width: int) -> np.ndarray:
    """Area-sampled (box-filtered) crop of one square: (S, S, 3) float32.

    The photo is a continuous image (pixel (y, x) fills [x, x + 1) x [y, y + 1);
    spec.CROP_PAD_VALUE outside it); crop pixel (i, j) is its exact mean over the rectangle of
    the two axes' footprints (area_axis). ``read(x0, y0, x1, y1)`` returns the photo's pixels
    [y0:y1, x0:x1] (an array slice, or BigPhoto.region): only the rows and columns under the
    square are read, AREA_BLOCK_ROWS rows at a time, so memory is bounded by the square's width
    times the crop (not the photo, nor the square) and index arithmetic by the square.

    Arithmetic (float64, rounded once to float32; static/facepack/crop.js:areaCrop runs the same
    operations in the same order, so the two agree bit for bit on the same pixels):
      1. rows: S[r] = sum of (pixels - pad) over region rows < r, cumulated row by row; per crop
         row, the column integrals at its corners I(t) = S[j] + b (S[j + 1] - S[j]) and
         V = I(high) - I(low) (W_region, C);
      2. columns: T[i] = V[0] + ... + V[i - 1] in order; per crop pixel
         J(t) = T[i] + a (T[i + 1] - T[i]); out = pad + (J(high) - J(low)) / (f_x f_y).
    On integer pixels step 1 is exact (integer sums under 2^53); the rest rounds at ~1e-12 of
    the sums, far under a float32 ulp of the output.
    """
    x0, y0, side = (float(v) for v in square)
    pad = float(spec.CROP_PAD_VALUE)
    (yl, yh), fy = area_axis(y0, side, out_size, height)
    (xl, xh), fx = area_axis(x0, side, out_size, width)
    r0, r1 = int(yl[0][0]), int(yh[0][-1]) + 1  # rows under the footprints: [r0, r1)
    c0, c1 = int(xl[0][0]), int(xh[0][-1]) + 1
    cells = [yl[0] - r0, yh[0] - r0]
    want = np.unique(np.concatenate([cells[0], cells[0] + 1, cells[1], cells[1] + 1]))
    rows = carry = None
    for start in range(0, r1 - r0, AREA_BLOCK_ROWS):  # read and sum by blocks of rows: bounded memory
        stop = min(r1 - r0, start + AREA_BLOCK_ROWS)
        region = read(c0, r0 + start, c1, r0 + stop)
        if region.shape[:2] != (stop - start, c1 - c0):
            raise ValueError(f"area crop: read returned shape {region.shape}, expected rows {stop - start}, "
                             f"columns {c1 - c0}")
        if rows is None:
            rows = np.empty((len(want),) + region.shape[1:], dtype=np.float64)  # S at the wanted rows
            carry = np.zeros(region.shape[1:], dtype=np.float64)
        # pixels - pad (with pad 0 the pixels themselves: x - 0.0 is x), cumulated row after row:
        # sums[i] = S[start + i] (np.add per row: numpy's cumsum's additions in its order, faster
        # than cumsum along axis 0 of a 3-D block)
        block = np.asarray(region) if pad == 0.0 else np.asarray(region, dtype=np.float64) - pad
        sums = np.empty((len(block) + 1,) + block.shape[1:], dtype=np.float64)
        sums[0] = carry
        for i in range(len(block)):
            np.add(sums[i], block[i], out=sums[i + 1])
        sel = (want >= start) & (want <= start + len(block))
        rows[sel] = sums[want[sel] - start]
        carry = sums[-1]

    def lerp(lo, hi, frac):  # lo + frac (hi - lo), computed in place in a new array (same bits)
        out = np.subtract(hi, lo)
        out *= frac
        out += lo
        return out

    def at_rows(cell, frac):  # I(t) per crop row: (S, W_region, C)
        return lerp(rows[np.searchsorted(want, cell)], rows[np.searchsorted(want, cell + 1)], frac[:, None, None])

    v = at_rows(cells[1], yh[1]) - at_rows(cells[0], yl[1])
    t = np.zeros((out_size, c1 - c0 + 1, v.shape[2]), dtype=np.float64)
    t[:, 1:] = np.cumsum(v, axis=1)

    def at_cols(cell, frac):  # J(t) per crop pixel: (S, S, C)
        return lerp(np.take(t, cell, axis=1), np.take(t, cell + 1, axis=1), frac[None, :, None])

    total = at_cols(xh[0] - c0, xh[1]) - at_cols(xl[0] - c0, xl[1])
    return (pad + total / (fx * fy)).astype(np.float32)


def _bilinear_crops(rgb: np.ndarray, squares, out_size: int) -> np.ndarray:
    """crop_and_resize (bilinear, spec.CROP_PAD_VALUE outside) of the full photo: (N, S, S, 3)."""
    import tensorflow as tf

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
