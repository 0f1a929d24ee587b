"""Packed datasets: train anywhere Keras runs, without TensorFlow (e.g. Keras 3 + JAX on a GPU box).

``python training/pack_dataset.py`` reads a dataset with the real loaders and the tf.data crop
rule (facepack.data.tfdata, the exact pixels training would see), and writes one ``.npz``:

- beauty: every image resized to S x S exactly as ``beauty_dataset`` does (its validation path),
  JPEG-encoded (quality in the file), scores on 1..5, and the train/validation assignment;
- keypoints: a *context* crop per face: the spec's square around the points enlarged by
  ``CONTEXT`` (so jittered squares stay inside), sampled on the same pixel grid as the base crop
  so that the base crop is the exact integer slice [pad:pad+S]; targets in base-crop units.

The trainers take such a file as ``--data FILE.npz``; ``PackedBatches`` then augments in numpy
(flip with the spec's point permutation, scale/shift jitter, brightness/contrast) with the same
ranges as tf.data. Validation uses the un-augmented pixels, so metrics match the tf.data path up
to JPEG rounding; the shipped models' final metrics are recomputed with training/evaluate.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from facepack import spec

FORMAT_VERSION = 1
CONTEXT = 1.25  # context side / base square side (holds scale +10 % and shift +5 % jitter)
JPEG_QUALITY = 95
# Augmentation ranges: the same numbers as facepack.data.tfdata (checked in tests).
BEAUTY_SCALE_JITTER = 0.05
BEAUTY_SHIFT_JITTER = 0.04
KEYPOINT_SCALE_JITTER = 0.10
KEYPOINT_SHIFT_JITTER = 0.05
BRIGHTNESS_DELTA = 8.0
CONTRAST_RANGE = (0.9, 1.1)


def _encode(images: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    blobs = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, "JPEG", quality=quality, subsampling=0)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    return (np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)), offsets


def decode_all(blob: np.ndarray, offsets: np.ndarray, workers: int = 8) -> np.ndarray:
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        return np.asarray(Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))

    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(one, range(len(offsets) - 1))))


def _collect(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y in ds:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def pack_beauty(train, val, size: int, out_path, meta: dict, quality: int = JPEG_QUALITY, squares=None) -> Path:
    """BeautySample lists -> .npz (images at size x size as beauty_dataset's validation path).

    squares: optional (len(train) + len(val), 3) crops (x0, y0, side), e.g. the page's detector
    crops (facepack.data.facecrops.face_squares); None packs the whole images.
    """
    from facepack.data.tfdata import beauty_dataset

    samples = list(train) + list(val)
    images, _ = _collect(beauty_dataset(samples, size, 64, training=False, cache=False, squares=squares))
    blob, offsets = _encode(np.clip(np.round(images), 0, 255).astype(np.uint8), quality)
    is_val = np.array([0] * len(train) + [1] * len(val), dtype=np.uint8)
    scores = np.array([s.score for s in samples], dtype=np.float32)
    names = np.array([Path(s.path).name for s in samples])
    meta = dict(meta, kind="beauty", size=size, quality=quality, format_version=FORMAT_VERSION)
    np.savez(out_path, blob=blob, offsets=offsets, scores=scores, is_val=is_val, names=names,
             meta=np.array(json.dumps(meta)))
    return Path(out_path)


def pack_keypoints(data, train_idx, val_idx, size: int, out_path, meta: dict, quality: int = JPEG_QUALITY) -> Path:
    """KeypointData rows -> .npz of context crops (pad = (R - S) / 2 pixels around the base crop)."""
    from facepack.data.tfdata import keypoint_dataset

    pad = int(round(size * (CONTEXT - 1) / 2))
    ctx = size + 2 * pad
    ratio = ctx / size  # context side / base side, exact for this grid
    base_margin = spec.KEYPOINTS["crop_margin"]
    # square_box(.., m) has side max(w, h) * (1 + 2m): choose m' with (1 + 2m') = ratio * (1 + 2m).
    ctx_margin = (ratio * (1 + 2 * base_margin) - 1) / 2
    order = np.concatenate([np.asarray(train_idx), np.asarray(val_idx)]).astype(int)
    ds = keypoint_dataset(data, order, ctx, 64, training=False, margin=ctx_margin, cache=False)
    images, targets = _collect(ds)
    # context units -> base units: u = ratio * u' - pad / size
    targets = targets.reshape(len(order), -1, 2) * ratio - pad / size
    blob, offsets = _encode(np.clip(np.round(images), 0, 255).astype(np.uint8), quality)
    is_val = np.array([0] * len(train_idx) + [1] * len(val_idx), dtype=np.uint8)
    meta = dict(meta, kind="keypoints", size=size, pad=pad, format=data.format, quality=quality,
                format_version=FORMAT_VERSION)
    np.savez(out_path, blob=blob, offsets=offsets, targets=targets.astype(np.float32), is_val=is_val,
             rows=order, meta=np.array(json.dumps(meta)))
    return Path(out_path)


def load_packed(path) -> dict:
    """-> dict(meta, images (N, R, R, 3) uint8, is_val, and scores or targets)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--data: no such packed dataset {str(path)!r}")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["meta"] = json.loads(str(out["meta"]))
    if out["meta"].get("format_version") != FORMAT_VERSION:
        raise ValueError(f"--data: {path} is packed format {out['meta'].get('format_version')}, "
                         f"expected {FORMAT_VERSION}; pack it again with training/pack_dataset.py")
    out["images"] = decode_all(out.pop("blob"), out.pop("offsets"))
    return out


def _photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    delta = rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA)
    factor = rng.uniform(*CONTRAST_RANGE)
    mean = img.mean()
    return np.clip((img - mean) * factor + mean + delta, 0, 255)


def _resample(img: np.ndarray, x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """Bilinear crop of the square (x0, y0, side) in img pixels to size x size (zero outside)."""
    pil = Image.fromarray(img)
    out = pil.transform((size, size), Image.Transform.EXTENT, (x0, y0, x0 + side, y0 + side),
                        resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out, dtype=np.float32)


def augment_beauty(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = img.shape[0]
    j = rng.uniform(-1, 1, 3)
    side = size * (1 + BEAUTY_SCALE_JITTER * j[0])
    cx, cy = size / 2 + BEAUTY_SHIFT_JITTER * size * j[1], size / 2 + BEAUTY_SHIFT_JITTER * size * j[2]
    out = _resample(img, cx - side / 2, cy - side / 2, side, size)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return _photometric(out, rng)


def augment_keypoints(ctx_img: np.ndarray, uv: np.ndarray, size: int, pad: int, perm,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Context crop + base-unit targets (P, 2) -> jittered, maybe mirrored (S, S, 3), (P, 2)."""
    j = rng.uniform(-1, 1, 3)
    side = size * (1 + KEYPOINT_SCALE_JITTER * j[0])
    cx = pad + size / 2 + KEYPOINT_SHIFT_JITTER * size * j[1]
    cy = pad + size / 2 + KEYPOINT_SHIFT_JITTER * size * j[2]
    x0, y0 = cx - side / 2, cy - side / 2
    out = _resample(ctx_img, x0, y0, side, size)
    px = uv * size + pad  # base units -> context pixels
    new = (px - np.array([x0, y0])) / side
    if rng.random() < 0.5:
        out = out[:, ::-1]
        new = np.stack([1.0 - new[:, 0], new[:, 1]], axis=1)[perm]
    return _photometric(out, rng), new


def packed_batches(keras, packed: dict, batch_size: int, training: bool, seed: int = 0, label_sigma: float = 0.0,
                   first_epoch: int = 0):
    """A keras.utils.PyDataset over a packed dataset's train (training=True) or validation part.

    Training order and augmentation are pure functions of (seed, epoch), epochs counted from
    ``first_epoch`` (a resumed run passes the epochs already done, as tfdata's datasets do).
    """
    meta = packed["meta"]
    sel = np.flatnonzero(packed["is_val"] == (0 if training else 1))
    images = packed["images"]
    if meta["kind"] == "beauty":
        from facepack.data.labels import beauty_labels

        targets = beauty_labels(packed["scores"][sel], label_sigma)
    else:
        targets = packed["targets"][sel]
    size, pad = meta["size"], meta.get("pad", 0)
    perm = spec.MIRROR_PERMUTATION.get(meta.get("format", "68"))

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=8, use_multiprocessing=False)
            self.epoch = int(first_epoch)
            self.order = np.arange(len(sel))

        def __len__(self):
            return int(np.ceil(len(sel) / batch_size))

        def on_epoch_end(self):
            self.epoch += 1
            if training:
                self.order = np.random.default_rng((seed, self.epoch)).permutation(len(sel))

        def __getitem__(self, b):
            idx = self.order[b * batch_size:(b + 1) * batch_size]
            xs, ys = [], []
            for k in idx:
                img = images[sel[k]]
                if meta["kind"] == "beauty":
                    rng = np.random.default_rng((seed, self.epoch, int(sel[k])))
                    xs.append(augment_beauty(img, rng) if training else img.astype(np.float32))
                    ys.append(targets[k])
                else:
                    uv = targets[k]
                    if training:
                        rng = np.random.default_rng((seed, self.epoch, int(sel[k])))
                        x, uv = augment_keypoints(img, uv, size, pad, perm, rng)
                    else:
                        x = img[pad:pad + size, pad:pad + size].astype(np.float32)
                    xs.append(x)
                    ys.append(np.asarray(uv, np.float32).reshape(-1))
            return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)

    batches = Batches()
    if training:
        batches.order = np.random.default_rng((seed, batches.epoch)).permutation(len(sel))
    return batches


def is_packed(data) -> bool:
    return bool(data) and str(data).endswith(".npz")


def pipeline_images_per_second(batches, n: int = 10) -> float:
    """Images per second the numpy augmentation delivers (one thread, the PyDataset's unit of work)."""
    import time

    n = min(n, len(batches))
    start, count = time.perf_counter(), 0
    for b in range(n):
        count += len(batches[b][0])
    elapsed = time.perf_counter() - start
    return count / elapsed if elapsed > 0 else 0.0
