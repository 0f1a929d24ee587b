"""tf.data input pipelines for the beauty and keypoint trainers, and a throughput probe.

Images are decoded by content with facepack.data.images.load_rgb (inside tf.numpy_function, in
parallel), so training sees exactly the pixels every other part of the project sees. Decoded
images are cached in memory as uint8; augmentation runs after the cache, every epoch afresh.

Randomness is stateless and a pure function of (seed, epoch): training datasets span the epochs
``first_epoch .. first_epoch + epochs - 1``; epoch e's order is a shuffle seeded from (seed, e)
and element i's augmentation draws from stateless_fold_in((seed, e), i). Every epoch differs, and
a run resumed at epoch e (facepack/training.py) sees exactly the batches an uninterrupted run saw.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from facepack import spec
from facepack.data.images import ImageDecodeError, load_rgb

AUTOTUNE = tf.data.AUTOTUNE
BINS = spec.BEAUTY["bins"]

# Augmentation ranges (units in the names). Beauty: SCUT images are face-centred crops already.
# The jittered box stays inside the (already face-centred) image: zoom in by up to 10 % and
# shift by at most what that frees, so no padding appears (a black border is no SCUT look).
BEAUTY_ZOOM_JITTER = 0.10  # crop side = S x (1 - 0..10 %)
BRIGHTNESS_DELTA = 8.0  # +- on 0..255
CONTRAST_RANGE = (0.9, 1.1)
# Keypoints (applied to the square before cropping, the numbers).
KEYPOINT_SCALE_JITTER = 0.10
KEYPOINT_SHIFT_JITTER = 0.05
# Region kept around the base square when caching (half side, in units of the square side):
# holds the largest jittered square (0.5 * 1.1 + 0.05 = 0.6) plus bilinear neighbours.
PRECROP_HALF = 0.62


# --- Labels (pure numpy, shared with the TensorFlow-free packed path) ----------------------------
from facepack.data.labels import beauty_labels, gaussian_label  # noqa: E402,F401  (re-exported)


# --- Shared pieces ------------------------------------------------------------------------------
def _decode(path) -> np.ndarray:
    """numpy_function body: path bytes -> (H, W, 3) uint8 (load_rgb, decode by content)."""
    name = path.decode() if isinstance(path, bytes) else str(path)
    try:
        return load_rgb(name)
    except ImageDecodeError as exc:  # surfaces in TF's error message with the file named
        raise ValueError(f"facepack.data.tfdata: {exc}") from None


def _epochs(cached: tf.data.Dataset, n: int, seed: int, first_epoch: int, epochs: int | None,
            batch_size: int, augment) -> tf.data.Dataset:
    """Batches of epochs first_epoch, first_epoch + 1, ... (``epochs`` of them; None: endless).

    Epoch e is ``cached`` shuffled with a seed drawn from the stateless key (seed, e), each element
    passed to ``augment(element, seed_pair)`` with seed_pair = stateless_fold_in(key, position), then
    batched (the last batch of an epoch may be short; batches never straddle epochs). A pure
    function of (seed, e): the data order a resumed run sees does not depend on what ran before.
    The memory cache of ``cached`` is shared by all epochs (decoded once).
    """
    if first_epoch < 0 or (epochs is not None and epochs < 1):
        raise ValueError(f"epochs {first_epoch}+{epochs}: first_epoch must be >= 0 and epochs >= 1")
    seed_t = tf.constant(int(seed), tf.int64)

    def one_epoch(epoch):
        key = tf.stack([seed_t, epoch])
        order_seed = tf.random.stateless_uniform([], key, minval=0, maxval=tf.int64.max, dtype=tf.int64)
        # tf.data pairs an op seed with the graph's global seed, and with a global seed of 0 its
        # check `seeds == (0, 0)` would evaluate this tensor as a bool; without the global seed the
        # order depends on (seed, epoch) alone, whatever tf.random.set_seed a process called.
        graph = tf.compat.v1.get_default_graph()
        global_seed, graph.seed = graph.seed, None
        try:
            ordered = cached.shuffle(n, seed=order_seed, reshuffle_each_iteration=False).enumerate()
        finally:
            graph.seed = global_seed
        return ordered.map(lambda i, element: augment(element, tf.random.experimental.stateless_fold_in(key, i)),
                           num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size)

    if epochs is None:
        numbers = tf.data.Dataset.counter(int(first_epoch), dtype=tf.int64)
    else:
        numbers = tf.data.Dataset.range(int(first_epoch), int(first_epoch) + int(epochs), dtype=tf.int64)
    return numbers.flat_map(one_epoch).prefetch(AUTOTUNE)


def _photometric(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Small brightness/contrast jitter on 0..255 float images (clipped to 0..255)."""
    s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    delta = tf.random.stateless_uniform([], s1, -BRIGHTNESS_DELTA, BRIGHTNESS_DELTA)
    factor = tf.random.stateless_uniform([], s2, *CONTRAST_RANGE)
    mean = tf.reduce_mean(image)
    return tf.clip_by_value((image - mean) * factor + mean + delta, 0.0, 255.0)


def _tf_crop_box(x0, y0, side, out_size: int, h, w):
    """Graph twin of facepack.spec.crop_box_to_tf (same arithmetic, float32 tensors)."""
    step = side / out_size
    hy = tf.maximum(tf.cast(h, tf.float32) - 1.0, 1.0)
    hx = tf.maximum(tf.cast(w, tf.float32) - 1.0, 1.0)
    return tf.stack([(y0 + 0.5 * step - 0.5) / hy, (x0 + 0.5 * step - 0.5) / hx,
                     (y0 + (out_size - 0.5) * step - 0.5) / hy, (x0 + (out_size - 0.5) * step - 0.5) / hx])


def _crop(image_u8: tf.Tensor, x0, y0, side, out_size: int, downscale: str | None = None) -> tf.Tensor:
    """Square (continuous pixels) of an (H, W, 3) uint8 image -> (S, S, 3) float32, padded outside.

    Mirrors facepack/crop.py:crop_squares (the page's, predict.py's and FacePipeline's crop), with
    the same numbers for the same square: ``downscale`` "area" or "bilinear" (None:
    spec.CROP_DOWNSCALE, read when the graph is traced). With "area", a square larger than the crop
    (crop.uses_area: side / S > 1, float64) is crop.area_crop's box-filtered mean, run through
    tf.numpy_function on the uint8 image (float64, the same code, so bit for bit); otherwise
    crop_and_resize by spec.crop_box_to_tf (bilinear, spec.CROP_PAD_VALUE outside).
    """
    from facepack import crop as crop_lib

    mode = crop_lib.check_downscale(downscale)

    def bilinear():
        shape = tf.shape(image_u8)
        box = _tf_crop_box(x0, y0, side, out_size, shape[0], shape[1])
        out = tf.image.crop_and_resize(tf.cast(image_u8, tf.float32)[None], box[None], [0], [out_size, out_size],
                                       method=spec.CROP_METHOD, extrapolation_value=spec.CROP_PAD_VALUE)
        return out[0]

    if mode == "bilinear":
        return bilinear()

    def area_body(img, a, b, s):  # numpy_function body: crop.area_crop on the decoded pixels
        square = (float(a), float(b), float(s))
        return crop_lib.area_crop(lambda c0, r0, c1, r1: img[r0:r1, c0:c1], square, out_size,
                                  img.shape[0], img.shape[1])

    square = [tf.convert_to_tensor(v) for v in (x0, y0, side)]  # python floats -> float32, as numpy_function

    def area():
        out = tf.numpy_function(area_body, [image_u8, *square], tf.float32, stateful=False)
        out.set_shape([out_size, out_size, 3])
        return out

    # crop.uses_area's test (float64 side / S > 1) on the same float: float64 of the tensor's value
    step = tf.cast(square[2], tf.float64) / float(out_size)
    return tf.cond(step > 1.0, area, bilinear)


def _cache(ds: tf.data.Dataset, cache) -> tf.data.Dataset:
    """cache: True -> in memory, a str/path -> tf.data's file cache with that prefix, False -> none."""
    if cache is True:
        return ds.cache()
    if cache:
        return ds.cache(str(cache))
    return ds


def _finish(ds: tf.data.Dataset, batch_size: int, training: bool) -> tf.data.Dataset:
    return ds.batch(batch_size, drop_remainder=False).prefetch(AUTOTUNE)


# --- Beauty -------------------------------------------------------------------------------------
def beauty_dataset(samples, input_size: int, batch_size: int, training: bool, seed: int = 0,
                   label_sigma: float = 0.0, cache: bool = True, photometric: bool = True,
                   squares=None, first_epoch: int = 0, epochs: int | None = 1) -> tf.data.Dataset:
    """BeautySample list -> batches of (images (B,S,S,3) float32 0..255, labels (B,101) float32).

    The whole image is resized to SxS (bilinear, half-pixel centres, no antialias) and cached as
    uint8; with ``squares`` ((N, 3) x0, y0, side in image pixels, e.g. the detector crops of
    facepack.data.facecrops.face_squares) each square is cropped instead, exactly as the page
    crops a face (_crop: facepack/crop.py's numbers, area-sampled when the square is larger than
    the crop under spec.CROP_DOWNSCALE "area", else crop_and_resize by spec.crop_box_to_tf,
    padded with spec.CROP_PAD_VALUE).
    Training adds a random horizontal flip, a small zoom/shift (crop_and_resize of a
    jittered box inside the image) and small brightness/contrast jitter, and shuffles every epoch:
    the dataset holds ``epochs`` epochs (None: endless) from ``first_epoch``, each a pure function
    of (seed, epoch) (see _epochs; train with steps_per_epoch = ceil(N / batch_size)).
    cache: True (memory), False, or a file name prefix for tf.data's on-disk cache.
    """
    if not samples:
        raise ValueError("beauty_dataset: no samples (the split is empty)")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size!r}")
    size = int(input_size)
    paths = [str(s.path) for s in samples]
    labels = beauty_labels([s.score for s in samples], label_sigma)
    if squares is not None:
        squares = np.asarray(squares, dtype=np.float32)
        if squares.shape != (len(samples), 3):
            raise ValueError(f"squares must have shape ({len(samples)}, 3), got {squares.shape}")

    def load(path, label, square=None):
        img = tf.numpy_function(_decode, [path], tf.uint8, stateful=False)
        img.set_shape([None, None, 3])
        if square is None:
            img = tf.image.resize(img, [size, size], method="bilinear", antialias=False)
        else:  # the detector crop (mirrors facepack/pipeline.py:crop)
            img = _crop(img, square[0], square[1], square[2], size)
        return tf.cast(tf.round(tf.clip_by_value(img, 0.0, 255.0)), tf.uint8), label

    if squares is None:
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    else:
        ds = tf.data.Dataset.from_tensor_slices((paths, labels, squares))
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = _cache(ds, cache)
    if not training:
        return _finish(ds.map(lambda img, lab: (tf.cast(img, tf.float32), lab)), batch_size, training)

    def augment(element, seed_pair):
        img, label = element
        seeds = tf.random.experimental.stateless_split(tf.cast(seed_pair, tf.int64), 4)
        jitter = tf.random.stateless_uniform([3], seeds[0], 0.0, 1.0)
        side = size * (1.0 - BEAUTY_ZOOM_JITTER * jitter[0])
        x0, y0 = (size - side) * jitter[1], (size - side) * jitter[2]
        out = _crop(img, x0, y0, side, size)
        flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
        out = tf.cond(flip, lambda: tf.reverse(out, axis=[1]), lambda: out)
        if photometric:
            out = _photometric(out, seeds[2])
        out.set_shape([size, size, 3])
        return out, label

    return _epochs(ds, len(samples), seed, first_epoch, epochs, batch_size, augment)


# --- Keypoints ----------------------------------------------------------------------------------
def crop_square_for_points(points, margin: float | None = None) -> tuple[float, float, float]:
    """(P, 2) points (NaN where missing) -> the square (x0, y0, side) by the spec's crop rule.

    Box = bounding box of the present points; square via facepack.spec.square_box with the
    keypoint margin. Raises ValueError when no point is present.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    present = ~np.isnan(pts).any(axis=1)
    if not present.any():
        raise ValueError("crop_square_for_points: no keypoint present (all NaN)")
    margin = spec.KEYPOINTS["crop_margin"] if margin is None else float(margin)
    lo, hi = pts[present].min(axis=0), pts[present].max(axis=0)
    return spec.square_box(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]), margin)


def _box_of(points: np.ndarray) -> tuple[float, float, float]:
    """(P, 2) points without NaN -> (centre x, centre y, max(w, h)) of their bounding box."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, max(hi[0] - lo[0], hi[1] - lo[1])


def dataset_squares(data, margin: float | None = None) -> np.ndarray:
    """(N, 3) base squares with the same framing for complete and incomplete rows.

    Complete rows: crop_square_for_points (the spec rule). Rows with missing points (most of
    Kaggle's, which keep only eye centres, nose tip and lower lip) would get a much tighter crop
    from the box of their present points, so their full-set box is estimated instead from the
    points present in every row (the anchors): centre offset and size relative to the anchors'
    box are the medians over the complete rows. Targets stay NaN; only the framing is estimated.
    Falls back to the spec rule where no anchors or no complete rows exist.
    """
    margin = spec.KEYPOINTS["crop_margin"] if margin is None else float(margin)
    pts = np.asarray(data.points, dtype=np.float64)
    present = ~np.isnan(pts).any(axis=2)  # (N, P)
    out = np.array([crop_square_for_points(p, margin) for p in pts], dtype=np.float64)
    complete = present.all(axis=1)
    anchors = present.all(axis=0)
    if complete.all() or not complete.any() or anchors.sum() < 2:
        return out
    rel = []
    for p in pts[complete]:
        ax, ay, aside = _box_of(p[anchors])
        fx, fy, fside = _box_of(p)
        if aside > 0:
            rel.append(((fx - ax) / aside, (fy - ay) / aside, fside / aside))
    if not rel:
        return out
    dx, dy, scale = np.median(np.asarray(rel), axis=0)
    for i in np.flatnonzero(~complete):
        ax, ay, aside = _box_of(pts[i][anchors])
        side = scale * aside
        out[i] = spec.square_box(ax + dx * aside - side / 2, ay + dy * aside - side / 2, side, side, margin)
    return out


def image_squares(data) -> np.ndarray:
    """(N, 3) squares (x0, y0, side) covering each whole image, centred: an alternative base crop.

    For data whose images are already face crops framed by a detector (Kaggle's 96x96 faces),
    where the bounding box of the *present* points would frame rows with 4 points differently
    from rows with 15. Sizes of image files are read from their headers only.
    """
    out = np.zeros((len(data.images), 3), dtype=np.float64)
    for i, src in enumerate(data.images):
        if isinstance(src, np.ndarray):
            h, w = src.shape[:2]
        else:
            from PIL import Image
            with Image.open(src) as img:
                w, h = img.size
                if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # load_rgb transposes these
                    w, h = h, w
        side = float(max(w, h))
        out[i] = ((w - side) / 2, (h - side) / 2, side)
    return out


def precrop(image: np.ndarray, points: np.ndarray, margin: float | None = None, square=None):
    """Integer sub-image around the face (no resampling) so the cache holds less than whole photos.

    Returns (sub_image uint8, points relative to it, (x0, y0, side) relative to it). Cropping
    from the sub-image gives the same samples as from the whole image: the kept region holds
    every jittered square plus its bilinear neighbours, and it is clipped to the image (never
    padded), so samples outside it are outside the image too.
    """
    x0, y0, side = crop_square_for_points(points, margin) if square is None else (float(v) for v in square)
    h, w = image.shape[:2]
    cx, cy, r = x0 + side / 2, y0 + side / 2, PRECROP_HALF * side
    left = int(np.clip(np.floor(cx - r) - 1, 0, w - 1))
    top = int(np.clip(np.floor(cy - r) - 1, 0, h - 1))
    right = int(np.clip(np.ceil(cx + r) + 2, left + 1, w))
    bottom = int(np.clip(np.ceil(cy + r) + 2, top + 1, h))
    sub = np.ascontiguousarray(image[top:bottom, left:right])
    pts = (np.asarray(points, dtype=np.float32) - np.array([left, top], dtype=np.float32)).astype(np.float32)
    return sub, pts, np.array([x0 - left, y0 - top, side], dtype=np.float32)


def keypoint_dataset(data, indices, input_size: int, batch_size: int, training: bool, seed: int = 0,
                     margin: float | None = None, jitter: bool = True, cache: bool = True,
                     mirror: bool = True, photometric: bool = True, squares=None, first_epoch: int = 0,
                     epochs: int | None = 1) -> tf.data.Dataset:
    """KeypointData rows ``indices`` -> batches of (crops (B,S,S,3) float32 0..255, targets (B, 2P)).

    Targets are crop-relative units u = (x - x0) / side, v = (y - y0) / side, interleaved
    (u0, v0, u1, v1, ...); NaN stays NaN (masked out of the loss). A point at the centre of output
    pixel i has u = (i + 0.5) / S (facepack.spec.crop_box_to_tf's half-pixel convention).
    Training adds square jitter (scale +-10 %, shift +-5 % of the side), mirroring (crop flipped,
    u -> 1 - u, indices permuted by facepack.spec.MIRROR_PERMUTATION) and photometric jitter.
    squares: optional (len(data.images), 3) base squares (x0, y0, side) replacing the spec rule
    (``dataset_squares(data)`` for data with missing points, or ``image_squares(data)``);
    evaluate with the same squares.
    Training: ``epochs`` epochs (None: endless) from ``first_epoch``, each a pure function of
    (seed, epoch) as in beauty_dataset.
    cache: True (memory), False, or a file name prefix for tf.data's on-disk cache.
    """
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("keypoint_dataset: no rows selected")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size!r}")
    size = int(input_size)
    num_points = int(data.points.shape[1])
    perm = tf.constant(spec.MIRROR_PERMUTATION[data.format], dtype=tf.int32)
    points_all = np.asarray(data.points, dtype=np.float32)
    squares_all = None if squares is None else np.asarray(squares, dtype=np.float64)
    if squares_all is not None and squares_all.shape != (len(points_all), 3):
        raise ValueError(f"squares must have shape ({len(points_all)}, 3), got {squares_all.shape}")

    def body(i):
        """numpy_function body: row index -> (sub-image, points, square) relative to the sub-image."""
        i = int(i)
        src = data.images[i]
        label = str(src) if not isinstance(src, np.ndarray) else f"{data.root} row {i}"
        try:
            image = load_rgb(src, name=label)
            return precrop(image, points_all[i], margin, None if squares_all is None else squares_all[i])
        except (ImageDecodeError, ValueError) as exc:  # surfaces in TF's error with the file named
            raise ValueError(f"facepack.data.tfdata: {label}: {exc}") from None

    def load(i):
        img, pts, box = tf.numpy_function(body, [i], [tf.uint8, tf.float32, tf.float32], stateful=False)
        img.set_shape([None, None, 3])
        pts.set_shape([num_points, 2])
        box.set_shape([3])
        return img, pts, box

    def crop(img, pts, box, seed_pair=None):
        x0, y0, side = box[0], box[1], box[2]
        flip = tf.constant(False)
        if seed_pair is not None:
            seeds = tf.random.experimental.stateless_split(tf.cast(seed_pair, tf.int64), 3)
            if jitter:
                j = tf.random.stateless_uniform([3], seeds[0], -1.0, 1.0)
                cx = x0 + side / 2 + KEYPOINT_SHIFT_JITTER * side * j[1]
                cy = y0 + side / 2 + KEYPOINT_SHIFT_JITTER * side * j[2]
                side = side * (1.0 + KEYPOINT_SCALE_JITTER * j[0])
                x0, y0 = cx - side / 2, cy - side / 2
            if mirror:
                flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
        out = _crop(img, x0, y0, side, size)
        uv = (pts - tf.stack([x0, y0])) / side
        if seed_pair is not None:
            out = tf.cond(flip, lambda: tf.reverse(out, axis=[1]), lambda: out)
            uv = tf.cond(flip, lambda: tf.gather(tf.stack([1.0 - uv[:, 0], uv[:, 1]], axis=1), perm), lambda: uv)
            if photometric:
                out = _photometric(out, seeds[2])
        out.set_shape([size, size, 3])
        return out, tf.reshape(uv, [2 * num_points])

    ds = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = _cache(ds, cache)
    if not training:
        return _finish(ds.map(lambda a, b, c: crop(a, b, c), num_parallel_calls=AUTOTUNE), batch_size, training)
    return _epochs(ds, len(indices), seed, first_epoch, epochs, batch_size, lambda e, s: crop(*e, seed_pair=s))


# --- Throughput ---------------------------------------------------------------------------------
def measure_images_per_second(dataset: tf.data.Dataset, batches: int = 20, warmup: int = 1) -> float:
    """Images per second the pipeline delivers over ``batches`` batches (after ``warmup`` ones).

    Iterates the dataset alone (no model), so it is the input pipeline's ceiling. Stops early
    if the dataset ends; returns 0.0 if it yields nothing after the warm-up.
    """
    it = iter(dataset)
    for _ in range(warmup):
        try:
            next(it)
        except StopIteration:
            return 0.0
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            element = next(it)
        except StopIteration:
            break
        first = element[0] if isinstance(element, (tuple, list)) else element
        count += int(first.shape[0])
    elapsed = time.perf_counter() - start
    return count / elapsed if elapsed > 0 and count else 0.0
