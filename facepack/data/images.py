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


def _to_rgb(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
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
            return _to_rgb(img)
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{label}: not a readable image (no image format recognised in its content)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"{label}: not a readable image ({exc.__class__.__name__}: {exc})") from None
