"""Large photos with bounded memory: the reference pipeline's numbers without a full-size array.

A 12000 x 9000 photo through ``facepack.pipeline.decode`` costs a PIL buffer (4 bytes/pixel), a
uint8 copy (3 bytes/pixel) and a float32 copy for the detector's resize (12 bytes/pixel): 2 GB,
5 GB with the drawing. Yet the pipeline reads few of those pixels: the detection image is a
bilinear resize WITHOUT antialiasing (spec.DETECT_RESIZE_METHOD), so each of its pixels reads 2
rows x 2 columns of the photo, and every face crop reads 2 taps per output pixel on each axis
(tf.image.crop_and_resize). ``RegionPhoto`` keeps the decoded PIL image (4 bytes/pixel, no copy,
EXIF orientation applied to coordinates, not to the buffer) and gathers exactly those taps,
blending them with the TF CPU kernels' float32 formulas, so its detection image and crops equal
``mtcnn_detector.resize_for_detection`` and ``crop.crop_squares`` of the full array bit for bit
(tests/test_bigphoto.py; the JS twin of the crop taps: static/facepack/ops/bounded_crop.js).

``open_photo`` decides (sizes in pixels = width x height):

    <= REGION_MIN_PIXELS (24 MP)         (H, W, 3) uint8 array, as facepack.pipeline.decode
    JPEG, <= max_pixels                  RegionPhoto at full resolution (exact results)
    JPEG, >  max_pixels                  RegionPhoto decoded at 1/2, 1/4 or 1/8 by libjpeg's DCT
                                         scaling (PIL Image.draft), the largest that fits under
                                         max_pixels; results are mapped back to the photo's
                                         pixels by ``scale_result`` and are approximate
    other formats, <= max_pixels         array (full decode; PNG and others cannot be decoded
                                         by region)
    other formats, >  max_pixels         ImageDecodeError naming the file, its size and the cap

``MAX_PIXELS`` (120 MP) is the default cap: Pillow's own decompression-bomb limit (89 MP warns,
179 MP fails) is replaced by this check, made before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from facepack import spec
from facepack.data.images import ImageDecodeError, load_rgb

MAX_PIXELS = 120_000_000  # default decode cap (pixels): a 108 MP phone photo decodes at full resolution
REGION_MIN_PIXELS = 24_000_000  # photos above this (pixels) are read by region, below as one array
REGION_FORMATS = ("JPEG", "MPO")  # formats decoded region-wise (and downscaled by draft over the cap)
REGION_MODES = ("L", "RGB", "CMYK")  # JPEG modes whose RGB conversion is per pixel
_BAND_ROWS = 256  # rows converted at a time when gathering (a 12000-px-wide band: 9 MB)

# EXIF orientation -> (transpose, flip rows, flip columns) taking the stored image to the upright
# one: upright = flips(transpose(stored)); the same transforms as PIL.ImageOps.exif_transpose.
_ORIENTATIONS = {1: (False, False, False), 2: (False, False, True), 3: (False, True, True),
                 4: (False, True, False), 5: (True, False, False), 6: (True, False, True),
                 7: (True, True, True), 8: (True, True, False)}


@contextlib.contextmanager
def _pixel_limit(max_pixels: int):
    """Pillow's decompression-bomb check replaced by ours (made before decoding) for a while."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _megapixels(n: float) -> str:
    return f"{n / 1e6:.1f} MP"


def open_photo(path, name: str | None = None, max_pixels: int = MAX_PIXELS):
    """Photo file -> (H, W, 3) uint8 array or RegionPhoto (see the module docstring).

    max_pixels: decode cap in pixels (width x height of the stored image). Raises
    ImageDecodeError naming the file when it cannot be read or is over the cap and not a JPEG.
    """
    path = Path(path)
    label = name or str(path)
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be an integer >= 1, got {max_pixels!r}")
    with _pixel_limit(max_pixels):
        try:
            img = Image.open(path)
        except Exception:  # not an image, or unreadable: load_rgb gives the one-line reason
            return load_rgb(path, name=label)
        w, h = img.size
        region = img.format in REGION_FORMATS and img.mode in REGION_MODES
        if w * h <= (REGION_MIN_PIXELS if region else max_pixels) and w * h <= max_pixels:
            img.close()
            return load_rgb(path, name=label)
        if not region:
            img.close()
            raise ImageDecodeError(
                f"{label}: {w} x {h} = {_megapixels(w * h)} is over the decode cap of {_megapixels(max_pixels)} "
                f"(--max-pixels); only JPEGs are downscaled while decoding: shrink it first or raise the cap")
        factor = 1
        while w * h > max_pixels * factor * factor and factor <= 8:
            factor *= 2
        if factor > 8:
            img.close()
            raise ImageDecodeError(
                f"{label}: {w} x {h} = {_megapixels(w * h)} is over the decode cap of {_megapixels(max_pixels)} "
                f"(--max-pixels) even at 1/8 scale: raise the cap")
        orientation = img.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation, as ImageOps.exif_transpose
        if factor > 1:
            img.draft(img.mode, (w // factor, h // factor))  # libjpeg DCT scaling: 1/factor while decoding
        try:
            img.load()  # closes the file (opened by name)
        except (OSError, SyntaxError, ValueError) as exc:
            img.close()
            raise ImageDecodeError(f"{label}: not a readable image ({exc.__class__.__name__}: {exc})") from None
        return RegionPhoto(img, orientation, factor, label, original_size=(w, h))


class RegionPhoto:
    """A decoded photo read by region; duck-types the (H, W, 3) array for the pipeline stages.

    shape: (H, W, 3) of the upright photo as decoded (the pipeline's results are in these pixels);
    factor: 1, or 2, 4, 8 when decoded at 1/factor by Image.draft (``scale_result`` maps results
    to the original photo's pixels, ``original_hw``); the pixels stay in the PIL image (stored
    orientation, own mode).
    """

    def __init__(self, image: Image.Image, orientation: int = 1, factor: int = 1, name: str = "photo",
                 original_size: tuple[int, int] | None = None):
        self._image = image
        self._transpose, self._flip_rows, self._flip_cols = _ORIENTATIONS.get(int(orientation), _ORIENTATIONS[1])
        ws, hs = image.size
        self.height, self.width = (ws, hs) if self._transpose else (hs, ws)
        self.shape = (self.height, self.width, 3)
        self.factor = int(factor)
        self.name = name
        ow, oh = original_size if original_size is not None else (ws * self.factor, hs * self.factor)
        self.original_hw = (ow, oh) if self._transpose else (oh, ow)  # upright, stored file's size

    def close(self) -> None:
        self._image.close()

    # --- reading ---------------------------------------------------------------------------
    def gather(self, rows, cols) -> np.ndarray:
        """photo[rows][:, cols] of the upright, decoded photo as uint8 (len(rows), len(cols), 3)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        tr = self.height - 1 - rows if self._flip_rows else rows
        tc = self.width - 1 - cols if self._flip_cols else cols
        if self._transpose:
            return self._stored_gather(tc, tr).transpose(1, 0, 2)
        return self._stored_gather(tr, tc)

    def _stored_gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if len(rows) == 0 or len(cols) == 0:
            return np.empty((len(rows), len(cols), 3), dtype=np.uint8)
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        wanted, inverse = np.unique(rows, return_inverse=True)
        unique = np.empty((len(wanted), len(cols), 3), dtype=np.uint8)
        # runs of needed rows close together, at most _BAND_ROWS long: one PIL crop each
        k = 0
        for run in np.split(wanted, np.flatnonzero(np.diff(wanted) > 8) + 1):
            for start in range(0, len(run), _BAND_ROWS):
                part = run[start:start + _BAND_ROWS]
                band = self._image.crop((c0, int(part[0]), c1, int(part[-1]) + 1))
                if band.mode != "RGB":
                    band = band.convert("RGB")  # L, CMYK: per pixel, as facepack/data/images.py:_to_rgb
                unique[k:k + len(part)] = np.asarray(band)[part - part[0]][:, cols - c0]
                k += len(part)
        return unique[inverse.reshape(-1)]

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The upright decoded photo's pixels [y0:y1, x0:x1] as uint8 (clipped to the photo)."""
        x0, x1 = max(0, x0), min(self.width, x1)
        y0, y1 = max(0, y0), min(self.height, y1)
        return self.gather(np.arange(y0, y1), np.arange(x0, x1))

    def preview(self, max_side: int) -> tuple[np.ndarray, float]:
        """(upright uint8 copy whose longer side is at most ``max_side``, its size / decoded size)."""
        k = max(1, math.ceil(max(self.height, self.width) / max_side))
        small = self._image.reduce(k) if k > 1 else self._image.copy()
        if small.mode != "RGB":
            small = small.convert("RGB")
        arr = np.asarray(small)
        if self._transpose:
            arr = arr.transpose(1, 0, 2)
        if self._flip_rows:
            arr = arr[::-1]
        if self._flip_cols:
            arr = arr[:, ::-1]
        arr = np.ascontiguousarray(arr)
        return arr, 1.0 / k

    # --- the pipeline's two full-photo reads ------------------------------------------------
    def detection_image(self) -> tuple[np.ndarray, tuple[float, float]]:
        """= mtcnn_detector.resize_for_detection(decoded photo): (float32 image, (sy, sx)), bit for bit."""
        h, w = self.height, self.width
        new_h, new_w = spec.detect_size(h, w)
        if (new_h, new_w) == (h, w):
            return self.region(0, 0, w, h).astype(np.float32), (1.0, 1.0)
        ylo, yhi, yl = _resize_taps(h, new_h)
        xlo, xhi, xl = _resize_taps(w, new_w)
        g = self.gather(np.concatenate([ylo, yhi]), np.concatenate([xlo, xhi])).astype(np.float32)
        image = _blend(g[:new_h, :new_w], g[:new_h, new_w:], g[new_h:, :new_w], g[new_h:, new_w:],
                       xl[None, :, None], yl[:, None, None])
        return image, (new_h / h, new_w / w)

    def crop_squares(self, squares, out_size: int) -> np.ndarray:
        """= crop.crop_squares(decoded photo, squares, out_size), bit for bit (squares: decoded pixels)."""
        from facepack.crop import tf_crop_boxes

        squares = list(squares)
        crops = np.empty((len(squares), out_size, out_size, 3), dtype=np.float32)
        boxes = tf_crop_boxes(squares, out_size, self.height, self.width)
        for k, (y1, x1, y2, x2) in enumerate(boxes):
            ylo, yhi, yl, yok = _crop_taps(y1, y2, self.height, out_size)
            xlo, xhi, xl, xok = _crop_taps(x1, x2, self.width, out_size)
            n = out_size
            g = self.gather(np.concatenate([ylo, yhi]), np.concatenate([xlo, xhi])).astype(np.float32)
            crop = _blend(g[:n, :n], g[:n, n:], g[n:, :n], g[n:, n:], xl[None, :, None], yl[:, None, None])
            crop[~(yok[:, None] & xok[None, :])] = np.float32(spec.CROP_PAD_VALUE)
            crops[k] = crop
        return crops


def _blend(tl, tr, bl, br, x_lerp, y_lerp) -> np.ndarray:
    """The TF CPU kernels' bilinear formula in float32 (each step rounded, no fused multiply-add)."""
    top = tl + (tr - tl) * x_lerp
    bottom = bl + (br - bl) * x_lerp
    return top + (bottom - top) * y_lerp


def _resize_taps(in_size: int, out_size: int):
    """Taps of one axis of resize_bilinear_op.cc (half-pixel centres, float32): lower, upper, lerp."""
    scale = np.float32(in_size) / np.float32(out_size)
    v = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    f = np.floor(v)
    lo = np.maximum(f.astype(np.int64), 0)
    hi = np.minimum(np.ceil(v).astype(np.int64), in_size - 1)
    return lo, hi, (v - f).astype(np.float32)


def _crop_taps(a1: float, a2: float, size: int, n: int):
    """Taps of one axis of crop_and_resize_op.cc (float32): lower, upper, lerp, inside-the-photo.

    mirrors static/facepack/ops/bounded_crop.js:cropAxisTaps (outside samples get lo = hi = 0).
    """
    b1, b2 = np.float32(a1), np.float32(a2)
    last = np.float32(size - 1)
    if n > 1:
        scale = np.float32(np.float32(b2 - b1) * last) / np.float32(n - 1)
        v = np.float32(b1 * last) + np.arange(n, dtype=np.float32) * np.float32(scale)
    else:
        v = np.array([0.5 * float(np.float32(b1 + b2)) * (size - 1)], dtype=np.float32)
    ok = (v >= 0) & (v <= last)
    lo = np.where(ok, np.floor(v), 0).astype(np.int64)
    hi = np.where(ok, np.ceil(v), 0).astype(np.int64)
    lerp = np.where(ok, v - np.floor(v), 0).astype(np.float32)
    return lo, hi, lerp, ok


def scale_result(result: dict, k: float, original_hw: tuple[int, int]) -> dict:
    """A pipeline result measured on a photo decoded at 1/k, in the original photo's pixels (in place).

    Boxes, landmarks, keypoints and heatmap squares are multiplied by ``k`` (continuous pixel
    coordinates: decoded pixel i covers original [k i, k (i + 1))); ``image`` becomes
    ``original_hw`` and ``decode_factor`` records k.
    """
    result["image"] = {"width": int(original_hw[1]), "height": int(original_hw[0])}
    result["decode_factor"] = k
    for face in result["faces"]:
        face["box"] = {key: v * k for key, v in face["box"].items()}
        face["landmarks5"] = {name: [x * k, y * k] for name, (x, y) in face["landmarks5"].items()}
        if "keypoints" in face:
            face["keypoints"] = [[x * k, y * k] for x, y in face["keypoints"]]
        if "heatmap" in face:
            face["heatmap"]["square"] = {key: v * k for key, v in face["heatmap"]["square"].items()}
    return result


def exif_upright(img: Image.Image) -> Image.Image:
    """PIL's own EXIF transpose (the reference the orientation table above is tested against)."""
    return ImageOps.exif_transpose(img)
