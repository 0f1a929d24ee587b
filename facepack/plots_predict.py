"""Drawings for predict.py: an annotated copy of a photo and a contact sheet of faces.

Pure functions from arrays and result dicts (facepack/pipeline.py) to PIL images; nothing here
reads or writes files. Colours: box green, 5 MTCNN landmarks one colour each, keypoints cyan,
Grad-CAM as a "jet" overlay whose opacity follows the map.
"""

from __future__ import annotations

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


def _font(size: int):
    return ImageFont.load_default(size=max(8, int(size)))


def heatmap_overlay(rgb: np.ndarray, faces: list[dict]) -> np.ndarray:
    """Photo with every face's Grad-CAM blended in ("jet"), (H, W, 3) uint8."""
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
    colours = colormaps["jet"](cam)[..., :3] * 255.0
    alpha = (HEATMAP_ALPHA * cam)[..., None]
    return np.clip(rgb * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8)


def face_label(index: int, face: dict) -> str:
    """"#1 63.2 (3.16)" (beauty 0..100 and 1..5) or "#1 p=0.99" without a beauty score."""
    if "beauty" in face:
        return f"#{index + 1} {face['beauty']['score']:.1f} ({face['beauty']['score_1to5']:.2f})"
    return f"#{index + 1} p={face['score']:.2f}"


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


def face_thumbnail(rgb: np.ndarray, face: dict, size: int = THUMB_PX) -> Image.Image:
    """The face as the beauty model frames it (spec crop rule), size x size RGB."""
    square = face_square(face["box"], spec.BEAUTY["crop_margin"])
    crop = crop_squares(rgb, [square], size)[0]
    return Image.fromarray(np.clip(np.round(crop), 0, 255).astype(np.uint8))


def contact_sheet(entries: list[dict], columns: int | None = None, thumb: int = THUMB_PX) -> Image.Image:
    """Grid of faces sorted by beauty score (highest first).

    entries: [{"thumb": PIL image, "score": float (sort key, may be None), "label": str}].
    """
    ordered = sorted(entries, key=lambda e: -np.inf if e.get("score") is None else e["score"], reverse=True)
    n = max(len(ordered), 1)
    columns = columns or min(n, max(1, int(np.ceil(np.sqrt(n * 1.5)))))
    rows = int(np.ceil(n / columns))
    font = _font(13)
    title_font = _font(18)
    pad, text_h, title_h = 8, 36, 34
    cell_w, cell_h = thumb + pad, thumb + text_h + pad
    sheet = Image.new("RGB", (pad + columns * cell_w, title_h + pad + rows * cell_h), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    title = f"{len(ordered)} face(s), sorted by beauty score" if ordered else "no faces found"
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
