"""Decode images by content into RGB uint8 arrays (EXIF orientation applied).

Every loader, the Python pipeline and the tests go through ``load_rgb``: grayscale, RGBA,
palette, 16-bit and CMYK images all become ``(H, W, 3) uint8`` RGB (16-bit samples by
spec.SIXTEEN_BIT_RULE, then alpha by spec.ALPHA_RULE: the pixels Chromium and npm/decode.js give).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facepack import spec
from facepack.data.png_check import png_problem

ImageInput = Union[str, os.PathLike, bytes, bytearray, np.ndarray, Image.Image]


class ImageDecodeError(ValueError):
    """A file or buffer that is not a decodable image; the message names the source."""


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BIT_DEPTH_AT = 24  # IHDR (the first chunk): bit depth, then colour type
PNG_GREY, PNG_RGB = 0, 2  # the colour types whose transparency is a tRNS colour key
OPAQUE, TRANSPARENT = 255, 0


def png_colour_key(data: bytes) -> tuple[int, int, tuple[int, ...]] | None:
    """(bit depth, colour type, key samples) of a grey or RGB PNG with a tRNS chunk, else None."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < PNG_BIT_DEPTH_AT + 2:
        return None
    depth, colour = data[PNG_BIT_DEPTH_AT], data[PNG_BIT_DEPTH_AT + 1]
    if colour not in (PNG_GREY, PNG_RGB):
        return None
    count = 1 if colour == PNG_GREY else 3
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"tRNS" and length >= 2 * count:
            body = data[pos + 8:pos + 8 + 2 * count]
            return depth, colour, tuple(int.from_bytes(body[i:i + 2], "big") for i in range(0, 2 * count, 2))
        if kind in (b"IDAT", b"IEND"):  # tRNS comes before the image data
            return None
        pos += 12 + length
    return None


def _apply_colour_key(img: Image.Image, data: bytes | None) -> Image.Image:
    """A grey / RGB PNG's tRNS colour key as alpha (spec.ALPHA_RULE then makes those pixels black):
    a pixel is transparent when its samples equal the key AT THE FILE'S BIT DEPTH, as libpng
    (Chromium) and pngjs (npm/decode.js) compare them. PIL alone ignores the key here, and
    compares 1/2/4-bit keys with scaled values and 16-bit RGB keys with the high bytes. Returns
    an RGBA image in the file's orientation (its info, EXIF included, kept) or ``img`` unchanged."""
    key = png_colour_key(data) if data else None
    if key is None:
        return img
    depth, colour, samples = key
    if colour == PNG_GREY:
        if depth == 16:
            raw = np.asarray(img, dtype=np.int64)  # PIL "I;16" keeps every bit
            grey, matches = sixteen_to_eight(np.clip(raw, 0, 65535)), raw == samples[0]
        else:
            grey = np.asarray(img.convert("L"))  # 1/2/4-bit samples scaled by 255 / (2 ** depth - 1)
            matches = grey.astype(np.int64) == samples[0] * (255 // (2 ** depth - 1))
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        rgb = np.asarray(img.convert("RGB"))  # 16-bit: PIL keeps the high bytes (spec.SIXTEEN_BIT_RULE)
        found = rgb
        if depth == 16:  # the 16-bit samples PIL does not keep; OpenCV's libpng, orientation not applied
            import cv2

            found = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if found is None or found.dtype != np.uint16 or found.shape[:2] != rgb.shape[:2]:
                raise ValueError("16-bit RGB PNG with a colour key: OpenCV could not read its samples")
            found = found[:, :, 2::-1]  # BGR(A) -> RGB
        matches = np.all(found.astype(np.int64) == np.asarray(samples), axis=2)
    alpha = np.where(matches, TRANSPARENT, OPAQUE).astype(np.uint8)
    out = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    out.info = {k: v for k, v in img.info.items() if k != "transparency"}
    return out


def _to_rgb(img: Image.Image, data: bytes | None = None) -> np.ndarray:
    """``data``: the file's bytes, when at hand (a PNG's colour key is read from them)."""
    img = ImageOps.exif_transpose(_apply_colour_key(img, data))
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        # 16-bit modes span 0..65535 whatever the content (a dark 16-bit image stays dark) and
        # become 8-bit by spec.SIXTEEN_BIT_RULE (the high byte, as Chromium and PIL's own 16-bit
        # RGB/RGBA/LA decoding); the 32-bit "I" mode has no fixed range: 0..255 content is taken
        # as 8-bit, else as 16-bit.
        if img.mode.startswith("I;16") or arr.max() > 255:
            arr = sixteen_to_eight(np.clip(arr, 0, 65535))
        return np.repeat(np.clip(arr, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.clip(np.round(np.asarray(img)), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    # 16-bit RGB, RGBA and grey + alpha PNGs: PIL opens them as "RGB" / "RGBA" keeping the high
    # byte of each sample, which is spec.SIXTEEN_BIT_RULE (tests/test_alpha_decode.py).
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return spec.premultiply_alpha(np.asarray(img.convert("RGBA")))  # spec.ALPHA_RULE: onto black
    elif img.mode != "RGB":
        img = img.convert("RGB")  # L, P, CMYK (PIL inverts Adobe CMYK correctly), YCbCr, 1
    return np.asarray(img, dtype=np.uint8).copy()


def sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) -> uint8 by spec.SIXTEEN_BIT_RULE "high_byte": v >> 8."""
    if spec.SIXTEEN_BIT_RULE != "high_byte":
        raise ValueError(f"spec.SIXTEEN_BIT_RULE: only 'high_byte' is implemented, got {spec.SIXTEEN_BIT_RULE!r}")
    return (np.asarray(values).astype(np.uint32) >> 8).astype(np.uint8)


def array_to_rgb(arr: np.ndarray, name: str = "array") -> np.ndarray:
    """Normalise an in-memory array (HxW, HxWx1, HxWx3, HxWx4; uint8, uint16 or float 0..255).

    uint16 values span 0..65535 and become 8-bit by spec.SIXTEEN_BIT_RULE (the high byte), as a
    16-bit PNG of the same samples decodes."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageDecodeError(f"{name}: expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {a.shape}")
    if a.dtype == np.uint16:
        a = sixteen_to_eight(a)
    a = np.clip(np.round(a.astype(np.float64)), 0, 255).astype(np.uint8) if a.dtype != np.uint8 else a
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = spec.premultiply_alpha(a)  # spec.ALPHA_RULE
    return np.ascontiguousarray(a)


def load_rgb(source: ImageInput, name: str | None = None) -> np.ndarray:
    """Path, bytes, PIL image or array -> (H, W, 3) uint8 RGB, decoded by content.

    Raises ImageDecodeError naming the file (or ``name``) when it is missing or not an image.
    """
    if isinstance(source, np.ndarray):
        return array_to_rgb(source, name or "array")
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    if isinstance(source, (bytes, bytearray)):
        label = name or f"<{len(source)} bytes>"
        data = bytes(source)
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise ImageDecodeError(f"{label}: no such image file")
        data = path.read_bytes()
    problem = png_problem(data)  # spec.PNG_CHECKSUMS: refused here and on the page alike
    if problem:
        raise ImageDecodeError(f"{label}: not a readable image ({problem})")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return _to_rgb(img, data)
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{label}: not a readable image (no image format recognised in its content)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"{label}: not a readable image ({exc.__class__.__name__}: {exc})") from None
