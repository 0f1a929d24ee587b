"""A fun overlay from the facial keypoints: sunglasses and a hat, placed, scaled and rotated.

Geometry (a pure function; static/facepack/accessories.js computes the same numbers):

- eye centres: the mean of each eye's six points (68-point iBUG: spec.IBUG68_GROUPS "right_eye"
  36-41 and "left_eye" 42-47), or the Kaggle-15 "right_eye_center" / "left_eye_center" points
  (which are those means, spec.py); "right"/"left" are the subject's sides, so for an upright,
  unmirrored face the right eye is on the image's left.
- eye line: from the right eye centre to the left eye centre; angle = atan2(dy, dx) in image
  pixels (y down; radians, positive turns clockwise on screen); eye distance = its length.
- brow: the four brow ends (68: 17, 21, 22, 26, the ends of the "right_brow" and "left_brow"
  groups; Kaggle-15: the four *_eyebrow_*_end points); brow centre = their mean, brow width =
  distance between the outer ends (17 and 26; right/left_eyebrow_outer_end).

Each accessory is drawn in its own art frame (x along the eye line, y down, origin and unit below)
and mapped to the photo by the similarity transform
``x = cx + scale * (u cos a - v sin a),  y = cy + scale * (u sin a + v cos a)``:

- sunglasses: origin at the midpoint of the eye centres, unit = eye distance, so the lens centres
  (art (-0.5, 0) and (0.5, 0)) land exactly on the eye centres;
- hat: origin at the brow centre, unit = brow width, rotated with the eye line.

The art (ART) is SVG path data written for this project (M/L/C/Z, absolute, art units) with CSS
colours; the JavaScript twin holds the same strings (tests/test_accessories.py checks that).
"""

from __future__ import annotations

import math
import re

import numpy as np

from facepack import spec

ACCESSORIES = ("sunglasses", "hat")

# kind -> shapes drawn in order: (SVG path data in art units, CSS rgba fill).
ART = {
    "sunglasses": (
        # frame: top bar, bridge, temple stubs
        ("M -0.97 -0.27 L 0.97 -0.27 L 0.95 -0.17 L -0.95 -0.17 Z "
         "M -0.14 -0.2 C -0.05 -0.26 0.05 -0.26 0.14 -0.2 L 0.14 -0.12 C 0.05 -0.18 -0.05 -0.18 -0.14 -0.12 Z "
         "M 0.93 -0.26 L 1.08 -0.24 L 1.08 -0.18 L 0.93 -0.17 Z "
         "M -0.93 -0.26 L -1.08 -0.24 L -1.08 -0.18 L -0.93 -0.17 Z", "rgba(12,12,14,1)"),
        # lenses
        ("M 0.12 -0.2 C 0.3 -0.25 0.7 -0.25 0.9 -0.2 C 0.93 -0.05 0.88 0.18 0.74 0.25 "
         "C 0.6 0.3 0.3 0.29 0.2 0.22 C 0.11 0.15 0.09 -0.05 0.12 -0.2 Z "
         "M -0.12 -0.2 C -0.3 -0.25 -0.7 -0.25 -0.9 -0.2 C -0.93 -0.05 -0.88 0.18 -0.74 0.25 "
         "C -0.6 0.3 -0.3 0.29 -0.2 0.22 C -0.11 0.15 -0.09 -0.05 -0.12 -0.2 Z", "rgba(27,29,36,0.93)"),
        # glints, upper left of each lens (away from the lens centres)
        ("M 0.26 -0.16 L 0.34 -0.16 L 0.25 0.04 L 0.18 0.04 Z "
         "M -0.74 -0.16 L -0.66 -0.16 L -0.75 0.04 L -0.82 0.04 Z", "rgba(255,255,255,0.35)"),
    ),
    "hat": (
        # brim
        ("M -0.72 -0.36 C -0.72 -0.47 0.72 -0.47 0.72 -0.36 C 0.72 -0.25 -0.72 -0.25 -0.72 -0.36 Z",
         "rgba(30,30,38,1)"),
        # crown
        ("M -0.44 -0.38 L -0.4 -1.24 C -0.2 -1.3 0.2 -1.3 0.4 -1.24 L 0.44 -0.38 "
         "C 0.2 -0.32 -0.2 -0.32 -0.44 -0.38 Z", "rgba(34,34,42,1)"),
        # band
        ("M -0.434 -0.5 L 0.434 -0.5 L 0.43 -0.62 L -0.43 -0.62 Z", "rgba(179,38,46,1)"),
        # top
        ("M -0.4 -1.24 C -0.2 -1.19 0.2 -1.19 0.4 -1.24 C 0.2 -1.3 -0.2 -1.3 -0.4 -1.24 Z", "rgba(62,62,74,1)"),
    ),
}
BEZIER_STEPS = 16  # line segments per cubic curve when flattening for Pillow
SUPERSAMPLE = 4  # Pillow draws each shape's mask at 4x and box-filters it down (anti-aliasing)


def _mean(points: np.ndarray, idx) -> np.ndarray:
    return points[list(idx)].mean(axis=0)


def face_anchors(keypoints) -> dict:
    """Eye centres and brow line of one face's keypoints ((68 | 15, 2) image pixels).

    Returns {"eye_right", "eye_left", "brow_center": (x, y), "brow_width": px} (subject's sides).
    Raises ValueError for another point count.
    """
    p = np.asarray(keypoints, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or str(p.shape[0]) not in spec.KEYPOINTS["formats"]:
        raise ValueError(f"keypoints: expected (68, 2) or (15, 2) image pixels, got shape {p.shape}")
    if p.shape[0] == 68:
        g = spec.IBUG68_GROUPS
        eye_right, eye_left = _mean(p, range(*g["right_eye"])), _mean(p, range(*g["left_eye"]))
        r_outer, r_inner = g["right_brow"][0], g["right_brow"][1] - 1
        l_inner, l_outer = g["left_brow"][0], g["left_brow"][1] - 1
    else:
        n = spec.KAGGLE15_NAMES.index
        eye_right, eye_left = p[n("right_eye_center")], p[n("left_eye_center")]
        r_outer, r_inner = n("right_eyebrow_outer_end"), n("right_eyebrow_inner_end")
        l_inner, l_outer = n("left_eyebrow_inner_end"), n("left_eyebrow_outer_end")
    brow = p[[r_outer, r_inner, l_inner, l_outer]]
    return {"eye_right": tuple(eye_right), "eye_left": tuple(eye_left), "brow_center": tuple(brow.mean(axis=0)),
            "brow_width": float(np.hypot(*(p[l_outer] - p[r_outer])))}


def accessory_transform(keypoints, kind: str) -> dict:
    """Where one accessory goes: {"kind", "center": (x, y) px, "angle": radians, "scale": px per art unit}.

    Raises ValueError naming ``kind`` when it is not one of ACCESSORIES.
    """
    if kind not in ACCESSORIES:
        raise ValueError(f"accessory kind must be one of {list(ACCESSORIES)}, got {kind!r}")
    a = face_anchors(keypoints)
    (rx, ry), (lx, ly) = a["eye_right"], a["eye_left"]
    angle = math.atan2(ly - ry, lx - rx)
    if kind == "sunglasses":
        center, scale = ((rx + lx) / 2.0, (ry + ly) / 2.0), math.hypot(lx - rx, ly - ry)
    else:
        center, scale = a["brow_center"], a["brow_width"]
    return {"kind": kind, "center": (float(center[0]), float(center[1])), "angle": float(angle), "scale": float(scale)}


def to_image(transform: dict, points) -> np.ndarray:
    """Art-frame points (K, 2) -> image pixels (K, 2) by ``transform``."""
    uv = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    c, s, k = math.cos(transform["angle"]), math.sin(transform["angle"]), transform["scale"]
    cx, cy = transform["center"]
    return np.stack([cx + k * (uv[:, 0] * c - uv[:, 1] * s), cy + k * (uv[:, 0] * s + uv[:, 1] * c)], axis=1)


_TOKEN = re.compile(r"[MLCZ]|-?(?:\d+\.?\d*|\.\d+)")


def path_polygons(d: str, steps: int = BEZIER_STEPS) -> list:
    """SVG path data (absolute M, L, C, Z) -> closed polygons [(K, 2) arrays], curves flattened."""
    tokens = _TOKEN.findall(d)
    polys, current, cmd, i = [], [], None, 0
    while i < len(tokens):
        if tokens[i] in "MLCZ":
            cmd, i = tokens[i], i + 1
            if cmd == "Z":
                if current:
                    polys.append(np.asarray(current))
                current = []
                continue
        if cmd == "M":
            if current:
                polys.append(np.asarray(current))
            current, i = [(float(tokens[i]), float(tokens[i + 1]))], i + 2
            cmd = "L"
        elif cmd == "L":
            current.append((float(tokens[i]), float(tokens[i + 1])))
            i += 2
        elif cmd == "C":
            p0 = np.asarray(current[-1])
            p1, p2, p3 = (np.asarray((float(tokens[i + j]), float(tokens[i + j + 1]))) for j in (0, 2, 4))
            for t in np.linspace(0, 1, steps + 1)[1:]:
                current.append(tuple((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3))
            i += 6
        else:
            raise ValueError(f"path data: unsupported token {tokens[i]!r} (M, L, C, Z, absolute)")
    if current:
        polys.append(np.asarray(current))
    return polys


def parse_rgba(css: str) -> tuple:
    """'rgba(r,g,b,a)' -> (r, g, b) 0..255 floats and alpha 0..1."""
    m = re.fullmatch(r"rgba\((\d+),(\d+),(\d+),([\d.]+)\)", css.replace(" ", ""))
    if not m:
        raise ValueError(f"colour: expected 'rgba(r,g,b,a)', got {css!r}")
    return tuple(float(v) for v in m.groups()[:3]), float(m.group(4))


def _fill(out: np.ndarray, polygons: list, rgb: tuple, alpha: float) -> None:
    """Composite ``rgb`` at ``alpha`` over ``out`` (H, W, 3 float) inside the polygons (pixels)."""
    from PIL import Image, ImageDraw

    h, w = out.shape[:2]
    pts = np.concatenate(polygons)
    x0, y0 = max(int(np.floor(pts[:, 0].min())), 0), max(int(np.floor(pts[:, 1].min())), 0)
    x1, y1 = min(int(np.ceil(pts[:, 0].max())), w), min(int(np.ceil(pts[:, 1].max())), h)
    if x0 >= x1 or y0 >= y1:
        return
    ss = SUPERSAMPLE
    mask = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    draw = ImageDraw.Draw(mask)
    for poly in polygons:  # pixel edges at integers, as on a canvas: shift by half a subpixel
        draw.polygon([((x - x0) * ss - 0.5, (y - y0) * ss - 0.5) for x, y in poly], fill=255)
    cover = np.asarray(mask.reduce(ss), np.float32)[..., None] / 255.0 * alpha
    region = out[y0:y1, x0:x1]
    region[:] = region * (1.0 - cover) + np.asarray(rgb, np.float32) * cover


def draw_accessories(image, faces: list, kinds) -> "Image.Image":
    """The photo with the accessories drawn on every face: a new RGB PIL image.

    image: PIL image or (H, W, 3) uint8 array. faces: pipeline faces (each with "keypoints",
    68 or 15 [x, y] image pixels). kinds: names from ACCESSORIES, drawn in the order given.
    Raises ValueError naming a bad kind, or a face index without keypoints.
    """
    from PIL import Image

    kinds = list(kinds)
    for kind in kinds:
        if kind not in ACCESSORIES:
            raise ValueError(f"accessory kind must be one of {list(ACCESSORIES)}, got {kind!r}")
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image: expected an RGB image, got an array of shape {rgb.shape}")
    out = rgb.astype(np.float32)
    for i, face in enumerate(faces):
        if face.get("keypoints") is None or len(face["keypoints"]) == 0:
            raise ValueError(f"draw_accessories: face {i} has no 'keypoints' (run the keypoint model)")
        for kind in kinds:
            t = accessory_transform(face["keypoints"], kind)
            for d, colour in ART[kind]:
                fill_rgb, alpha = parse_rgba(colour)
                _fill(out, [to_image(t, poly) for poly in path_polygons(d)], fill_rgb, alpha)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
