"""Drawings for predict.py: an annotated copy of a photo and a contact sheet of faces.

Pure functions from arrays and result dicts (facepack/pipeline.py) to PIL images; nothing here
reads or writes files. Colours: box green, 5 MTCNN landmarks one colour each, keypoints cyan,
Grad-CAM as a "jet" overlay whose opacity follows the map. Faces are numbered from 1 ("1 · 63.2")
in the pipeline's order, as on the page; the contact sheet keeps the input order (it ranks no one).
"""

from __future__ import annotations

import copy

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facepack import gradcam as gradcam_mod
from facepack import spec
from facepack.crop import crop_squares, face_square

BOX_COLOR = (40, 220, 60)
KEYPOINT_COLOR = (0, 230, 255)
LANDMARK_COLORS = dict(zip(spec.LANDMARKS5, [(255, 60, 60), (255, 160, 0), (255, 255, 0),
                                             (200, 80, 255), (255, 80, 200)]))
HEATMAP_ALPHA = 0.55  # overlay opacity where the map is 1
THUMB_PX = 160
ANNOTATED_MAX_SIDE_PX = 4096  # annotated copies of larger photos are downscaled to this longer side


def _font(size: int):
    return ImageFont.load_default(size=max(8, int(size)))


def heatmap_overlay(rgb: np.ndarray, faces: list[dict]) -> np.ndarray:
    """Photo with every face's Grad-CAM blended in ("jet"), (H, W, 3) uint8.

    Only the rows and columns the maps cover are coloured (uint8 colour table, float32 blend),
    so a large photo costs a few bytes per pixel, not the colour map's float64 RGBA.
    """
    from matplotlib import colormaps

    h, w = rgb.shape[:2]
    cam = np.zeros((h, w), dtype=np.float32)
    for face in faces:
        record = face.get("heatmap")
        if record is None:
            continue
        crop_map = gradcam_mod.upsample(np.asarray(record["grid"], dtype=np.float32), record["crop_size"])
        sq = record["square"]
        cam = np.maximum(cam, gradcam_mod.place_in_image(crop_map, (sq["x"], sq["y"], sq["side"]), h, w))
    out = np.array(rgb, dtype=np.uint8, copy=True)
    rows, cols = np.flatnonzero(cam.any(axis=1)), np.flatnonzero(cam.any(axis=0))
    if len(rows) == 0:
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    part = cam[r0:r1, c0:c1]
    colours = colormaps["jet"](part, bytes=True)[..., :3].astype(np.float32)
    alpha = (np.float32(HEATMAP_ALPHA) * part)[..., None]
    out[r0:r1, c0:c1] = np.clip(out[r0:r1, c0:c1] * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8)
    return out


def scale_faces(faces: list[dict], s: float) -> list[dict]:
    """Copies of pipeline faces with every photo-pixel quantity multiplied by ``s``
    (box, landmarks5, keypoints, the heatmap's square; the heatmap grid is in crop units)."""
    out = []
    for face in faces:
        f = copy.deepcopy(face)
        f["box"] = {k: v * s for k, v in face["box"].items()}
        f["landmarks5"] = {k: [x * s, y * s] for k, (x, y) in face["landmarks5"].items()}
        if "keypoints" in face:
            f["keypoints"] = [[x * s, y * s] for x, y in face["keypoints"]]
        if "heatmap" in face:
            f["heatmap"]["square"] = {k: v * s for k, v in face["heatmap"]["square"].items()}
        out.append(f)
    return out


def downscaled(photo, max_side: int | None = None) -> tuple[np.ndarray, float]:
    """(uint8 copy of ``photo`` whose longer side is at most ``max_side`` (None: ANNOTATED_MAX_SIDE_PX),
    its size / photo size).

    photo: (H, W, 3) uint8 array or facepack.bigphoto.RegionPhoto (reduced while reading:
    Image.reduce by an integer factor, a box filter). Arrays already small enough are returned as is.
    """
    max_side = ANNOTATED_MAX_SIDE_PX if max_side is None else int(max_side)
    if hasattr(photo, "preview"):
        return photo.preview(max_side)
    h, w = photo.shape[:2]
    k = int(np.ceil(max(h, w) / max_side))
    if k <= 1:
        return photo, 1.0
    return np.asarray(Image.fromarray(photo).reduce(k)), 1.0 / k


LABEL_SEP = " \u00b7 "  # "1 · 63.2": the face number, then its score (mirrors static/overlay.js:labelText)


def face_label(index: int, face: dict) -> str:
    """"1 · 63.2 (3.16)" (face number from 1, beauty 0..100 and 1..5) or "1 · p=0.99" without a
    beauty score; the number and score are apart as on the page (static/overlay.js:labelText)."""
    if "beauty" in face:
        return f"{index + 1}{LABEL_SEP}{face['beauty']['score']:.1f} ({face['beauty']['score_1to5']:.2f})"
    return f"{index + 1}{LABEL_SEP}p={face['score']:.2f}"


def annotate(rgb: np.ndarray, faces: list[dict], heatmaps: bool = False) -> Image.Image:
    """Annotated copy: boxes, 5 landmarks, keypoints, score labels (and Grad-CAM if asked)."""
    base = heatmap_overlay(rgb, faces) if heatmaps else np.asarray(rgb, dtype=np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    line = max(2, round(min(h, w) / 300))
    font = _font(max(12, min(h, w) / 40))
    for i, face in enumerate(faces):
        b = face["box"]
        size = max(b["width"], b["height"])
        r = max(1.5, size / 60)
        draw.rectangle([b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]], outline=BOX_COLOR, width=line)
        for x, y in face.get("keypoints", []):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=KEYPOINT_COLOR)
        for name, (x, y) in face["landmarks5"].items():
            draw.ellipse([x - 1.6 * r, y - 1.6 * r, x + 1.6 * r, y + 1.6 * r], outline=LANDMARK_COLORS[name],
                         width=max(1, line // 2))
        label = face_label(i, face)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tx, ty = b["x"], b["y"] - (bottom - top) - 2 * line
        if ty < 0:
            ty = b["y"] + b["height"] + line
        draw.rectangle([tx, ty, tx + right + 2 * line, ty + bottom + line], fill=(0, 0, 0))
        draw.text((tx + line, ty), label, fill=BOX_COLOR, font=font)
    return img


def face_thumbnail(rgb, face: dict, size: int = THUMB_PX) -> Image.Image:
    """The face as the beauty model frames it (spec crop rule), size x size RGB.

    rgb: (H, W, 3) array or facepack.bigphoto.RegionPhoto (face in its pixels)."""
    square = face_square(face["box"], spec.BEAUTY["crop_margin"])
    crop = rgb.crop_squares([square], size)[0] if hasattr(rgb, "crop_squares") else crop_squares(rgb, [square], size)[0]
    return Image.fromarray(np.clip(np.round(crop), 0, 255).astype(np.uint8))


def contact_sheet(entries: list[dict], columns: int | None = None, thumb: int = THUMB_PX) -> Image.Image:
    """Grid of faces in the order given (predict.py: input order, faces 1, 2... of each photo, then each video face where it first appears).

    entries: [{"thumb": PIL image, "label": str (two lines at most)}]. No sorting by score: the
    page and this project do not rank people.
    """
    ordered = list(entries)
    n = max(len(ordered), 1)
    columns = columns or min(n, max(1, int(np.ceil(np.sqrt(n * 1.5)))))
    rows = int(np.ceil(n / columns))
    font = _font(13)
    title_font = _font(18)
    pad, text_h, title_h = 8, 36, 34
    cell_w, cell_h = thumb + pad, thumb + text_h + pad
    sheet = Image.new("RGB", (pad + columns * cell_w, title_h + pad + rows * cell_h), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    title = f"{len(ordered)} face(s), in input order" if ordered else "no faces found"
    draw.text((pad, 8), title, fill=(0, 0, 0), font=title_font)
    for k, entry in enumerate(ordered):
        r, c = divmod(k, columns)
        x, y = pad + c * cell_w, title_h + pad + r * cell_h
        sheet.paste(entry["thumb"].resize((thumb, thumb)), (x, y))
        for j, text in enumerate(str(entry["label"]).split("\n")[:2]):
            draw.text((x, y + thumb + 2 + 16 * j), _fit(draw, text, font, thumb), fill=(0, 0, 0), font=font)
    return sheet


def _fit(draw, text: str, font, width: int) -> str:
    """Shorten ``text`` from the left with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength("…" + text, font=font) > width:
        text = text[1:]
    return "…" + text
