"""Grad-CAM of the expected beauty score (spec.GRADCAM), kept simple so TF.js can equal it.

For beauty crops X (N, S, S, 3) and the model split by
``facepack.models.beauty.split_for_gradcam`` into ``features`` (X -> A, (N, h, w, C)) and
``head`` (A -> p, (N, 101)):

1. A = features(X)
2. s = sum_i p_i * i with p = head(A)              (expected score on 0..100, per face)
3. G = ds/dA                                       (tf.GradientTape; JS: tf.grad over the head)
4. w_k = mean over (h, w) of G[..., k]             (per face, per channel)
5. cam = ReLU(sum_k w_k * A[..., k])               (N, h, w)
6. cam = cam / max(cam) per face, where max > 0 (an all-zero map stays zero)
7. crop map = bilinear resize of cam to (S, S), half-pixel centres, no antialias
   (tf.image.resize; JS: tf.image.resizeBilinear(x, [S, S], false, true)).

Normalisation (6) is on the feature grid, before upsampling, so the crop map's maximum is at
most 1 (reached only where a sample falls on a maximal grid cell's centre or plateau).
The JavaScript twin is static/facepack/gradcam.js (mirrors ``gradcam_grid``/``upsample``).
"""

from __future__ import annotations

import numpy as np

from facepack import spec


def relu_cam(features_model, head_model, crops):
    """Steps 1-5 in TF ops (traceable): crops (N, S, S, 3) float32 -> ReLU map (N, h, w), not normalised."""
    import tensorflow as tf

    # split_for_gradcam may build the features model on a one-element input list.
    inputs = [crops] if isinstance(features_model.input, list) else crops
    fmap = tf.convert_to_tensor(features_model(inputs, training=False))
    bins = tf.range(spec.BEAUTY["bins"], dtype=fmap.dtype)
    with tf.GradientTape() as tape:
        tape.watch(fmap)
        probs = head_model(fmap, training=False)
        score = tf.reduce_sum(probs * bins, axis=-1)  # each face's score depends on its own map only
    grads = tape.gradient(score, fmap)
    weights = tf.reduce_mean(grads, axis=(1, 2))  # (N, C)
    return tf.nn.relu(tf.reduce_sum(fmap * weights[:, None, None, :], axis=-1))


def compile_relu_cam(features_model, head_model):
    """``relu_cam`` as one tf.function for any batch size (same numbers, far less Python overhead)."""
    import tensorflow as tf

    shape = [None, *features_model.input_shape[1:]]
    return tf.function(lambda crops: relu_cam(features_model, head_model, crops),
                       input_signature=[tf.TensorSpec(shape, tf.float32)])


def normalise(cam: np.ndarray) -> np.ndarray:
    """Step 6: divide each map by its maximum where that is > 0 (an all-zero map stays zero)."""
    cam = np.asarray(cam, dtype=np.float32)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return (cam / np.where(peak > 0, peak, 1.0)).astype(np.float32)


def gradcam_grid(features_model, head_model, crops: np.ndarray, compiled=None) -> np.ndarray:
    """Steps 1-6: crops (N, S, S, 3) -> normalised Grad-CAM maps (N, h, w) float32.

    compiled: the result of ``compile_relu_cam`` for these models (optional, faster).
    """
    crops = np.asarray(crops, dtype=np.float32)
    if crops.shape[0] == 0:
        shape = features_model.output_shape[1:3]
        return np.zeros((0, *shape), dtype=np.float32)
    cam = compiled(crops) if compiled is not None else relu_cam(features_model, head_model, crops)
    return normalise(np.asarray(cam))


def upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Step 7: (N, h, w) or (h, w) maps -> (N, size, size) or (size, size), bilinear, half-pixel."""
    import tensorflow as tf

    grid = np.asarray(grid, dtype=np.float32)
    single = grid.ndim == 2
    batch = grid[None] if single else grid
    if batch.shape[0] == 0:
        return np.zeros((0, size, size), dtype=np.float32)
    up = tf.image.resize(batch[..., None], (size, size), method="bilinear", antialias=False)[..., 0].numpy()
    return up[0] if single else up


def gradcam(features_model, head_model, crops: np.ndarray, compiled=None) -> dict:
    """Both maps for a batch of beauty crops: {"grid": (N, h, w), "crop": (N, S, S)}."""
    grid = gradcam_grid(features_model, head_model, crops, compiled)
    return {"grid": grid, "crop": upsample(grid, int(np.asarray(crops).shape[1]))}


def place_in_image(crop_map: np.ndarray, square: tuple[float, float, float],
                   image_h: int, image_w: int) -> np.ndarray:
    """A crop-size map (S, S) placed over its square in the photo: (H, W) float32, 0 outside.

    Image pixel centre (px + 0.5) falls at crop coordinate ((px + 0.5 - x0) / side) * S - 0.5,
    sampled bilinearly with edge clamping (the inverse of the crop rule); for drawing only.
    """
    crop_map = np.asarray(crop_map, dtype=np.float32)
    size = crop_map.shape[0]
    x0, y0, side = square
    out = np.zeros((image_h, image_w), dtype=np.float32)
    c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x0 + side)), image_w)
    r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y0 + side)), image_h)
    if c0 >= c1 or r0 >= r1:
        return out
    u = (np.arange(c0, c1) + 0.5 - x0) / side
    v = (np.arange(r0, r1) + 0.5 - y0) / side
    cu = np.clip(u * size - 0.5, 0, size - 1)
    cv = np.clip(v * size - 0.5, 0, size - 1)
    iu, iv = np.minimum(cu.astype(int), size - 2), np.minimum(cv.astype(int), size - 2)
    fu, fv = (cu - iu)[None, :], (cv - iv)[:, None]
    m = crop_map
    top = m[iv][:, iu] * (1 - fu) + m[iv][:, iu + 1] * fu
    bottom = m[iv + 1][:, iu] * (1 - fu) + m[iv + 1][:, iu + 1] * fu
    region = top * (1 - fv) + bottom * fv
    inside = ((u >= 0) & (u < 1))[None, :] & ((v >= 0) & (v < 1))[:, None]
    out[r0:r1, c0:c1] = np.where(inside, region, 0.0)
    return out


def heatmap_record(grid: np.ndarray, square: tuple[float, float, float], crop_size: int) -> dict:
    """JSON form of one face's map: the normalised grid plus where its crop lies in the photo."""
    x0, y0, side = square
    return {"grid": np.asarray(grid, dtype=np.float64).tolist(), "crop_size": int(crop_size),
            "square": {"x": float(x0), "y": float(y0), "side": float(side)}}
