"""Robustness augmentation for the keypoint trainer (training/train_keypoints.py --augment robust).

What the shipped model failed on (issue 19): tilted heads, detector boxes off the points' box,
grey photos, blur, JPEG artefacts, small faces (~20 px between the eyes), occlusions and colour.
Each training sample is drawn from a *context crop* (CONTEXT times the base square, sampled on
the base crop's pixel grid by tf.data's crop rule, so the un-augmented base crop is its exact
centre slice) by one affine warp (rotation, scale, shift, mirror) whose points move with it,
then photometric steps, each with its probability (ROBUST).

Geometry is in continuous pixels (facepack.spec.PIXEL_CONVENTION); cv2 indexes pixel centres at
integers, hence the +-0.5 in ``_warp``. Targets stay in base-crop units (0..1 across the crop).
Every sample is a pure function of (seed, epoch, row): resumed runs see the same data.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facepack import spec

CONTEXT = 2.0  # context side / base square side: a +-30 deg turn of a 1.15x square shifted 8 % stays inside
# Defaults of the trainer's --augment robust (units in the names; *_p are probabilities per sample).
ROBUST = {
    "rotate_deg": 30.0,  # uniform in +-rotate_deg, points rotated with the crop
    "box_scale": 0.15,  # square side x (1 +- box_scale), log-uniform: detector boxes too big or small
    "box_shift": 0.08,  # centre +- box_shift x side in x and y
    "colour_p": 0.8,  # brightness +-32, contrast x0.7..1.3, saturation x0.6..1.4, channel gains x0.85..1.15
    "grey_p": 0.15,  # luma (BT.601) in all three channels
    "occlude_p": 0.2,  # a rectangle of 15..40 % of the side, flat colour or noise
    "low_res_p": 0.25,  # down- then up-sampled so the eye distance is min_eye_px .. its own
    "min_eye_px": 18.0,  # outer-eye-corner distance the low-resolution step goes down to (crop pixels)
    "blur_p": 0.2,  # Gaussian, sigma 0.5..2 crop pixels
    "jpeg_p": 0.25,  # re-encoded at quality 15..90
}


def context_margin(margin: float | None = None, context: float = CONTEXT) -> float:
    """The crop margin whose square is ``context`` times the spec's keypoint square (same centre)."""
    m = spec.KEYPOINTS["crop_margin"] if margin is None else float(margin)
    return (context * (1 + 2 * m) - 1) / 2


def context_crops(data, indices, size: int, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """KeypointData rows -> (N, R, R, 3) uint8 context crops (R = CONTEXT * size) and (N, P, 2)
    float32 targets in base-crop units (the crop ``size`` px the model sees, centred in R)."""
    from facepack.data.tfdata import keypoint_dataset

    ctx = int(round(CONTEXT * size))
    if (ctx - size) % 2:
        raise ValueError(f"--input-size {size}: CONTEXT * size - size must be even, got {ctx - size}")
    ratio = ctx / size
    ds = keypoint_dataset(data, indices, ctx, batch_size, training=False, margin=context_margin(), cache=False)
    images, targets = [], []
    for x, y in ds:
        images.append(np.clip(np.round(np.asarray(x)), 0, 255).astype(np.uint8))
        targets.append(np.asarray(y))
    uv = np.concatenate(targets).reshape(len(indices), -1, 2) * ratio - (ratio - 1) / 2
    return np.concatenate(images), uv.astype(np.float32)


def _warp(ctx_img: np.ndarray, size: int, angle: float, scale: float, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Output crop (size px) -> context pixels: p = c + shift + A (q - size / 2), A = scale * R(angle).

    Returns the warped (size, size, 3) float32 image (0 outside the context, spec.CROP_PAD_VALUE)
    and the 2 x 3 continuous affine (output -> context)."""
    r = ctx_img.shape[0]
    cos, sin = math.cos(angle), math.sin(angle)
    a = scale * np.array([[cos, -sin], [sin, cos]])
    t = np.array([r / 2 + shift[0], r / 2 + shift[1]]) - a @ np.array([size / 2, size / 2])
    # cv2 indices: p_idx = p - 0.5, q = q_idx + 0.5  =>  p_idx = A q_idx + (t + A (0.5, 0.5) - 0.5)
    m = np.concatenate([a, (t + a @ np.array([0.5, 0.5]) - 0.5)[:, None]], axis=1)
    out = cv2.warpAffine(ctx_img, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(spec.CROP_PAD_VALUE,) * 3)
    return out.astype(np.float32), np.concatenate([a, t[:, None]], axis=1)


def _luma(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) BT.601 luma (written out: a BLAS matmul per sample costs more here)."""
    return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]


def augment(ctx_img: np.ndarray, uv: np.ndarray, size: int, perm, rng: np.random.Generator,
            cfg: dict | None = None, eyes: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One training sample: context crop (R, R, 3) uint8 + base-unit targets (P, 2; NaN kept) ->
    (size, size, 3) float32 0..255 and (P, 2) targets in the new crop's units.

    cfg: ROBUST's keys (missing ones from ROBUST); perm: the mirror permutation (None: no mirroring);
    eyes: the outer eye corners' indices (the low-resolution step measures the eye distance).
    """
    c = dict(ROBUST, **(cfg or {}))
    r = ctx_img.shape[0]
    pad = (r - size) / 2
    angle = math.radians(rng.uniform(-c["rotate_deg"], c["rotate_deg"]))
    scale = math.exp(rng.uniform(-math.log1p(c["box_scale"]), math.log1p(c["box_scale"])))
    shift = (rng.uniform(-1, 1) * c["box_shift"] * size, rng.uniform(-1, 1) * c["box_shift"] * size)
    out, aff = _warp(ctx_img, size, angle, scale, shift)
    p = uv.astype(np.float64) * size + pad  # base units -> context pixels
    inv = np.array([[aff[1, 1], -aff[0, 1]], [-aff[1, 0], aff[0, 0]]]) / (aff[0, 0] * aff[1, 1] - aff[0, 1] * aff[1, 0])
    q = (p - aff[:, 2]) @ inv.T  # context -> output crop pixels
    if perm is not None and rng.random() < 0.5:
        out = out[:, ::-1]
        q = np.stack([size - q[:, 0], q[:, 1]], axis=1)[perm]
    if rng.random() < c["colour_p"]:
        grey = _luma(out)
        out = grey[..., None] + (out - grey[..., None]) * rng.uniform(0.6, 1.4)  # saturation
        out *= rng.uniform(0.85, 1.15, 3).astype(np.float32)
        mean = out.mean()
        out = (out - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-32, 32)
    if rng.random() < c["grey_p"]:
        out = np.repeat(_luma(out)[..., None], 3, axis=2)
    if rng.random() < c["occlude_p"]:
        w, h = (int(rng.uniform(0.15, 0.4) * size) for _ in range(2))
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        fill = (rng.uniform(0, 255, (h, w, 3)) if rng.random() < 0.5 else rng.uniform(0, 255, 3))
        out = out.copy()
        out[y0:y0 + h, x0:x0 + w] = fill
    out = np.clip(out, 0, 255)
    if eyes is not None and rng.random() < c["low_res_p"]:
        eye = float(np.linalg.norm(q[eyes[0]] - q[eyes[1]]))
        if np.isfinite(eye) and eye > c["min_eye_px"]:
            small = max(8, int(round(size * rng.uniform(c["min_eye_px"], eye) / eye)))
            out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                             interpolation=cv2.INTER_LINEAR)
    if rng.random() < c["blur_p"]:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.0))
    if rng.random() < c["jpeg_p"]:
        ok, buf = cv2.imencode(".jpg", np.round(out).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 91))])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32)
    return np.ascontiguousarray(out, dtype=np.float32), (q / size).astype(np.float32)


def robust_batches(keras, images: np.ndarray, targets: np.ndarray, size: int, batch_size: int, seed: int,
                   fmt: str, cfg: dict | None = None, first_epoch: int = 0, workers: int = 2):
    """A keras.utils.PyDataset of augmented training batches (x (B, S, S, 3) float32, y (B, 2P)).

    Epoch e's order and samples are pure functions of (seed, e), counted from ``first_epoch``."""
    perm = spec.MIRROR_PERMUTATION[fmt]
    f = spec.KEYPOINTS["formats"][fmt]
    eyes = (f["left_eye_outer"], f["right_eye_outer"])

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False)
            self.epoch = int(first_epoch)
            self.order = np.random.default_rng((seed, self.epoch)).permutation(len(images))

        def __len__(self):
            return int(np.ceil(len(images) / batch_size))

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng((seed, self.epoch)).permutation(len(images))

        def __getitem__(self, b):
            xs, ys = [], []
            for k in self.order[b * batch_size:(b + 1) * batch_size]:
                rng = np.random.default_rng((seed, self.epoch, int(k)))
                x, y = augment(images[k], targets[k], size, perm, rng, cfg, eyes)
                xs.append(x)
                ys.append(y.reshape(-1))
            return np.stack(xs), np.stack(ys)

    return Batches()
