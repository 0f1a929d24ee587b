"""Large photos with bounded memory: the reference pipeline's numbers without a full-size array.

A 12000 x 9000 photo through ``facepack.pipeline.decode`` costs a PIL buffer (4 bytes/pixel), a
uint8 copy (3 bytes/pixel) and a float32 copy for the detector's resize (12 bytes/pixel): 2 GB,
5 GB with the drawing. Yet the pipeline reads few of those pixels: the detection image is a
bilinear resize WITHOUT antialiasing (spec.DETECT_RESIZE_METHOD), so each of its pixels reads 2
rows x 2 columns of the photo, and every face crop reads 2 taps per output pixel on each axis
(tf.image.crop_and_resize). ``RegionPhoto`` gathers exactly those taps and blends them with the
TF CPU kernels' float32 formulas, so its detection image and crops equal
``mtcnn_detector.resize_for_detection`` and ``crop.crop_squares`` of the full array bit for bit
(tests/test_bigphoto.py; the JS twin of the crop taps: static/facepack/ops/bounded_crop.js).
EXIF orientation is applied to coordinates, never by copying the photo.

Where the pixels come from: for a baseline RGB or grey JPEG read from its file, only windows are
decoded (tf.io.decode_and_crop_jpeg: libjpeg-turbo decodes just the window's iMCU rows and
columns; with WINDOW_MARGIN_PX around it the pixels equal Pillow's full decode) - bands of the
detection rows, then one window per face - so no full-size buffer exists (12000 x 9000: 1.17 GB
peak for the whole predict.py process, 0.7 GB of it TensorFlow). Other JPEGs (CMYK, progressive,
decoded at a fraction) are decoded whole by Pillow for each read and freed after it (4 bytes/pixel
while a read lasts).

``open_photo`` decides (sizes in pixels = width x height):

    <= REGION_MIN_PIXELS (16 MP)         (H, W, 3) uint8 array, as facepack.pipeline.decode
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
from PIL import Image

from facepack import spec
from facepack.data.images import ImageDecodeError, load_rgb

MAX_PIXELS = 120_000_000  # default decode cap (pixels): a 108 MP phone photo decodes at full resolution
REGION_MIN_PIXELS = 16_000_000  # photos above this (pixels) are read by region, below as one array
REGION_FORMATS = ("JPEG", "MPO")  # formats decoded region-wise (and downscaled by draft over the cap)
REGION_MODES = ("L", "RGB", "CMYK")  # JPEG modes whose RGB conversion is per pixel
WINDOW_MODES = ("L", "RGB")  # JPEG modes whose face regions are decoded alone (CMYK: whole photo)
WINDOW_MARGIN_PX = 32  # decoded around each face window: 2 iMCUs of 4:2:0 (the upsampler's context)
AREA_BAND_BYTES = 64 * 2**20  # uint8 photo bytes read at once by an area crop (RegionPhoto._band_reader)
_BAND_ROWS = 256  # Pillow buffer rows converted at a time when gathering (12000 px wide: 9 MB)
_DETECT_BAND_ROWS = 96  # detection-image rows per window decode (12000 x 9000: ~900 photo rows, 32 MB)

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
        img.close()
        return RegionPhoto(None, orientation, factor, label, original_size=(w, h), path=path)


class RegionPhoto:
    """A decoded photo read by region; duck-types the (H, W, 3) array for the pipeline stages.

    shape: (H, W, 3) of the upright photo as decoded (the pipeline's results are in these pixels);
    factor: 1, or 2, 4, 8 when decoded at 1/factor by Image.draft (``scale_result`` maps results
    to the original photo's pixels, ``original_hw``).

    image: a loaded PIL image, kept while the object lives; or None with ``path``: the file is
    decoded for each read (detection image, one crop_squares call, preview) and the buffer freed
    after it, so the photo's 4 bytes/pixel are not held while the detector and the models run
    (a 108 MP JPEG decodes in about 0.5 s).
    """

    def __init__(self, image: Image.Image | None, orientation: int = 1, factor: int = 1, name: str = "photo",
                 original_size: tuple[int, int] | None = None, path=None):
        if image is None and path is None:
            raise ValueError("RegionPhoto needs a loaded image or a path")
        self._image = image
        self._path = None if path is None else Path(path)
        self._depth = 0
        self._data = None  # the file's bytes, for window decoding
        self._window_decoding = False  # set below for full-resolution RGB / grey JPEGs read from a path
        self._transpose, self._flip_rows, self._flip_cols = _ORIENTATIONS.get(int(orientation), _ORIENTATIONS[1])
        self.factor = int(factor)
        self.name = name
        if image is None:
            header = self._decode(load=False)  # the decoded size, without decoding
            ws, hs = header.size
            self._window_decoding = (self.factor == 1 and header.mode in WINDOW_MODES
                                     and not header.info.get("progressive"))
            header.close()
        else:
            ws, hs = image.size
        self.height, self.width = (ws, hs) if self._transpose else (hs, ws)
        self.shape = (self.height, self.width, 3)
        ow, oh = original_size if original_size is not None else (ws * self.factor, hs * self.factor)
        self.original_hw = (ow, oh) if self._transpose else (oh, ow)  # upright, stored file's size

    def _decode(self, extra: int = 1, load: bool = True) -> Image.Image:
        """The file decoded at 1/(factor * extra) (extra: 1, 2, 4, 8 for a smaller drawing copy);
        load=False: opened with that scale set, not decoded (its size is the decoded size)."""
        with _pixel_limit(MAX_PIXELS):
            try:
                img = Image.open(self._path)
                w, h = img.size
                k = self.factor * extra
                if k > 1:
                    img.draft(img.mode, (w // k, h // k))
                if load:
                    img.load()
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageDecodeError(f"{self.name}: not a readable image ({exc.__class__.__name__}: {exc})") from None
        return img

    @contextlib.contextmanager
    def _loaded(self):
        """The PIL image for the duration of one read (decoded now and freed after, in path mode)."""
        if self._image is None:
            self._image = self._decode()
        self._depth += 1
        try:
            yield self._image
        finally:
            self._depth -= 1
            if self._depth == 0 and self._path is not None:
                self._image.close()
                self._image = None

    def close(self) -> None:
        self._data = None
        if self._image is not None:
            self._image.close()
            self._image = None

    # --- reading ---------------------------------------------------------------------------
    def gather(self, rows, cols) -> np.ndarray:
        """photo[rows][:, cols] of the upright, decoded photo as uint8 (len(rows), len(cols), 3)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        tr = self.height - 1 - rows if self._flip_rows else rows
        tc = self.width - 1 - cols if self._flip_cols else cols
        srows, scols = (tc, tr) if self._transpose else (tr, tc)
        if self._image is None and self._window_decoding:
            block = self._window_gather(srows, scols)
        else:
            with self._loaded():
                block = self._stored_gather(srows, scols)
        return block.transpose(1, 0, 2) if self._transpose else block

    def _window_gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """_stored_gather by decoding only the window around rows x cols (tf.io.decode_and_crop_jpeg).

        libjpeg-turbo decodes just the window's iMCU rows/columns; with WINDOW_MARGIN_PX around it
        (the chroma upsampler's edge context) its pixels equal Pillow's full decode bit for bit
        (same library, accurate integer DCT, fancy upsampling; tests/test_bigphoto.py).
        """
        if len(rows) == 0 or len(cols) == 0:
            return np.empty((len(rows), len(cols), 3), dtype=np.uint8)
        hs, ws = (self.width, self.height) if self._transpose else (self.height, self.width)
        if self._data is None:
            self._data = self._path.read_bytes()
            # The last pixel: libjpeg entropy-decodes the whole scan to reach it (little memory), so a
            # truncated or corrupt file fails here as Pillow's full decode would.
            if self._decode_window(hs - 1, ws - 1, hs, ws) is None:
                return self._gather_fallback(rows, cols)
        y0, y1 = max(0, int(rows.min()) - WINDOW_MARGIN_PX), min(hs, int(rows.max()) + 1 + WINDOW_MARGIN_PX)
        x0, x1 = max(0, int(cols.min()) - WINDOW_MARGIN_PX), min(ws, int(cols.max()) + 1 + WINDOW_MARGIN_PX)
        window = self._decode_window(y0, x0, y1, x1)
        if window is None:
            return self._gather_fallback(rows, cols)
        return window[rows - y0][:, cols - x0]

    def _decode_window(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray | None:
        """Stored pixels [y0:y1, x0:x1] by tf.io.decode_and_crop_jpeg, or None when libjpeg refuses."""
        import tensorflow as tf

        try:
            return tf.io.decode_and_crop_jpeg(self._data, [y0, x0, y1 - y0, x1 - x0], channels=3,
                                              dct_method="INTEGER_ACCURATE").numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            return None

    def _gather_fallback(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Window decoding refused the file: Pillow decodes it whole (its error names the file), and
        does so for every later read of this photo."""
        self._window_decoding = False
        with self._loaded():
            return self._stored_gather(rows, cols)

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

    def _band_reader(self):
        """read(x0, y0, x1, y1) for crop.area_crop: self.region in bands of AREA_BAND_BYTES of
        uint8 (at least the rows asked for), each band read once and served to the
        crop.AREA_BLOCK_ROWS-row blocks under it. area_crop asks for its blocks top to bottom with
        the same columns, so a square of up to AREA_BAND_BYTES (a 4600-px square) is one window
        decode, not one per block (review #27: ~40 partial decodes for a face filling a 108 MP
        photo), and memory stays bounded by AREA_BAND_BYTES plus area_crop's own blocks."""
        band = {"x": None, "y0": 0, "y1": 0, "pixels": None}

        def read(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
            if band["x"] != (x0, x1) or not band["y0"] <= y0 <= y1 <= band["y1"]:
                band["pixels"] = None  # the previous band is freed before the next one is read
                rows = max(y1 - y0, AREA_BAND_BYTES // (3 * max(1, x1 - x0)))
                stop = min(self.height, y0 + rows)
                band.update(x=(x0, x1), y0=y0, y1=max(stop, y1), pixels=self.region(x0, y0, x1, max(stop, y1)))
            return band["pixels"][y0 - band["y0"]:y1 - band["y0"]]

        return read

    def preview(self, max_side: int) -> tuple[np.ndarray, float]:
        """(upright uint8 copy whose longer side is at most ``max_side``, its width / decoded width).

        For drawing: in path mode decoded at a further 1/2, 1/4 or 1/8 by Image.draft (small
        buffer), then Image.reduce (box filter) by the integer factor still needed.
        """
        extra = 1
        if self._image is None:
            while extra < 8 and max(self.height, self.width) / extra > max_side:
                extra *= 2
            img = self._decode(extra)
        else:
            img = self._image
        k = max(1, math.ceil(max(img.size) / max_side))
        small = img.reduce(k) if k > 1 else img.copy()
        if img is not self._image:
            img.close()
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
        return arr, arr.shape[1] / self.width

    # --- the pipeline's two full-photo reads ------------------------------------------------
    def detection_image(self) -> tuple[np.ndarray, tuple[float, float]]:
        """= mtcnn_detector.resize_for_detection(decoded photo): (float32 image, (sy, sx)), bit for bit."""
        h, w = self.height, self.width
        new_h, new_w = spec.detect_size(h, w)
        if (new_h, new_w) == (h, w):
            return self.region(0, 0, w, h).astype(np.float32), (1.0, 1.0)
        ylo, yhi, yl = _resize_taps(h, new_h)
        xlo, xhi, xl = _resize_taps(w, new_w)
        cols = np.concatenate([xlo, xhi])
        image = np.empty((new_h, new_w, 3), dtype=np.float32)
        band = _DETECT_BAND_ROWS if self._window_decoding else _BAND_ROWS
        with (contextlib.nullcontext() if self._window_decoding else self._loaded()):
            for r0 in range(0, new_h, band):  # output rows by bands: small temporaries
                r1 = min(new_h, r0 + band)
                n = r1 - r0
                g = self.gather(np.concatenate([ylo[r0:r1], yhi[r0:r1]]), cols).astype(np.float32)
                image[r0:r1] = _blend(g[:n, :new_w], g[:n, new_w:], g[n:, :new_w], g[n:, new_w:],
                                      xl[None, :, None], yl[r0:r1, None, None])
        return image, (new_h / h, new_w / w)

    def crop_squares(self, squares, out_size: int, downscale: str | None = None) -> np.ndarray:
        """= crop.crop_squares(decoded photo, squares, out_size, downscale), bit for bit
        (squares: decoded pixels). Area-sampled squares read only their region, in bands of at
        most AREA_BAND_BYTES (_band_reader): one window decode for a square up to that size."""
        from facepack.crop import area_crop, check_downscale, tf_crop_boxes, uses_area

        squares = list(squares)
        mode = check_downscale(downscale)
        crops = np.empty((len(squares), out_size, out_size, 3), dtype=np.float32)
        if not squares:
            return crops
        boxes = tf_crop_boxes(squares, out_size, self.height, self.width)
        n = out_size
        with (contextlib.nullcontext() if self._window_decoding else self._loaded()):
            for k, (y1, x1, y2, x2) in enumerate(boxes):
                if uses_area(squares[k], out_size, mode):
                    crops[k] = area_crop(self._band_reader(), squares[k], out_size, self.height, self.width)
                    continue
                ylo, yhi, yl, yok = _crop_taps(y1, y2, self.height, n)
                xlo, xhi, xl, xok = _crop_taps(x1, x2, self.width, n)
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

