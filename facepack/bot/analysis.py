"""One photo in, one reply out: the bot's synchronous work, run on a worker thread.

``analyze_photo(pipe, data, heatmap, limits)`` decodes the bytes, runs the reference pipeline
(facepack/pipeline.py ``FacePipeline.analyze``), draws the result with predict.py's drawing
(facepack/plots_predict.py ``annotate``) on a copy scaled to at most ``limits.reply_max_side_px``,
and returns a ``Reply``: the annotated JPEG (or None) and the caption text. Nothing is written to
disk; the photo lives in this call's memory only.

Every outcome is a ``Reply`` with a ``kind``: "faces", "no_face", "unreadable", "too_large".
A bug (any other exception) propagates to the caller, which answers with a generic apology.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from facepack.bot import texts


@dataclass(frozen=True)
class Limits:
    """Per-photo limits (load-time settings of the bot).

    max_faces: faces scored per photo, most confident first (default 10); with more, the
        reply says how many were left out.
    max_pixels: largest photo accepted, width x height (default 40 megapixels; Telegram's
        20 MB download limit allows larger PNGs, which would cost seconds and ~1 GB each).
    reply_max_side_px: longest side of the annotated reply image (default 1600 px; larger photos
        are reduced by an integer factor to at most this; Telegram accepts photos up to 10,000 px
        in width + height, but shows them at ~1280).
    jpeg_quality: of the reply image (default 90).
    """

    max_faces: int = 10
    max_pixels: int = 40_000_000
    reply_max_side_px: int = 1600
    jpeg_quality: int = 90

    def __post_init__(self):
        for name in ("max_faces", "max_pixels", "reply_max_side_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"bot limit {name} must be an integer >= 1, got {value!r}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"bot limit jpeg_quality must be from 1 to 95, got {self.jpeg_quality!r}")


@dataclass
class Reply:
    """What the bot sends back for one photo.

    kind: "faces" | "no_face" | "unreadable" | "too_large".
    text: the caption (with a photo) or the message (without one); plain text.
    photo: annotated JPEG bytes, or None when there is nothing to draw.
    faces: the pipeline's faces that were scored (photo pixels; facepack/pipeline.py contract).
    more_faces: True when the photo had more than ``Limits.max_faces`` faces.
    timings_ms: {"decode", "analyze", "draw", "total"} in milliseconds.
    """

    kind: str
    text: str
    photo: bytes | None = None
    faces: list = field(default_factory=list)
    more_faces: bool = False
    timings_ms: dict = field(default_factory=dict)


def photo_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header without decoding the pixels; None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:  # not an image at all: load_rgb gives the precise reason later
        return None


def analyze_photo(pipe, data: bytes, heatmap: bool, limits: Limits = Limits()) -> Reply:
    """Photo bytes -> Reply (see the module docstring). ``pipe``: a loaded FacePipeline."""
    from facepack.data.images import ImageDecodeError
    from facepack.pipeline import decode

    t0 = time.perf_counter()
    size = photo_size(data)
    if size is not None and size[0] * size[1] > limits.max_pixels:
        return Reply("too_large", texts.too_many_pixels(size, limits.max_pixels))
    try:
        rgb = decode(data, name="this file")
    except ImageDecodeError as exc:
        return Reply("unreadable", texts.unreadable(str(exc)))
    t1 = time.perf_counter()
    # One face beyond the limit tells whether the photo had more (the extra one is dropped).
    result = pipe.analyze(rgb, heatmaps=bool(heatmap), max_faces=limits.max_faces + 1)
    faces = result["faces"]
    more = len(faces) > limits.max_faces
    faces = faces[:limits.max_faces]
    t2 = time.perf_counter()
    if not faces:
        return Reply("no_face", texts.no_face(rgb.shape[1], rgb.shape[0]),
                     timings_ms=_ms(t0=t0, t1=t1, t2=t2, t3=t2))
    photo = encode_jpeg(annotate_scaled(rgb, faces, heatmap, limits.reply_max_side_px), limits.jpeg_quality)
    t3 = time.perf_counter()
    return Reply("faces", texts.caption(faces, heatmap, more, limits.max_faces), photo=photo, faces=faces,
                 more_faces=more, timings_ms=_ms(t0=t0, t1=t1, t2=t2, t3=t3))


def _ms(t0, t1, t2, t3) -> dict:
    return {"decode": (t1 - t0) * 1e3, "analyze": (t2 - t1) * 1e3, "draw": (t3 - t2) * 1e3,
            "total": (t3 - t0) * 1e3}


# --- Drawing (predict.py's, facepack/plots_predict.py) ---------------------------------------------
def annotate_scaled(rgb: np.ndarray, faces: list[dict], heatmap: bool, max_side: int) -> Image.Image:
    """plots_predict.annotate on a copy whose longer side is at most ``max_side`` pixels
    (plots_predict.downscaled: an integer box-filter reduction; faces scaled to match)."""
    from facepack import plots_predict

    small, s = plots_predict.downscaled(rgb, max_side)
    if s != 1.0:
        faces = plots_predict.scale_faces(faces, s)
    return plots_predict.annotate(small, faces, heatmaps=bool(heatmap))


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """JPEG bytes without chroma subsampling (4:4:4 keeps the thin coloured lines their colour)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()
