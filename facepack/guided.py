"""Guided backpropagation and guided Grad-CAM of the expected beauty score.

For beauty crops X (N, S, S, 3) and the model split by
``facepack.models.beauty.split_for_gradcam`` into ``features`` and ``head``:

1. s = sum_i p_i * i, p = head(features(X))          (expected score on 0..100, per face)
2. G = ds/dX through a copy of ``features`` whose every ReLU / ReLU6 passes back only positive
   gradients at positive (and, for ReLU6, unclipped) inputs: dx = dy * [0 < x < max] * [dy > 0]
   (guided backpropagation, Springenberg et al. 2015, "Striving for simplicity"). The forward
   pass is unchanged, so s is the model's score.
3. saliency = sum over RGB of |G| (N, S, S); guided = normalise_percentile(saliency)
4. guided_gradcam = normalise_percentile(saliency * gradcam crop map) (facepack/gradcam.py,
   steps 1-7, ordinary gradients; Selvaraju et al. 2017, "Grad-CAM", section 3.1). The Grad-CAM
   map is >= 0, so this is the channel-summed |G * cam| of the paper's product, rescaled.

Display normalisation (steps 3-4): each face's map is divided by its 99th (DISPLAY_QUANTILE)
percentile and clipped to 0..1 (``normalise_percentile``), not by its max. Input-gradient
magnitudes are heavy-tailed: divided by the max, one pixel set the scale and the rest of the
map was near black (untrained 64 px test model, astronaut face: 99th percentile 0.38 of the
max, median 0.045, 3.0 % of pixels above 0.25; now median 0.12, 22 % above 0.25). The
percentile is the sorted value at index floor(p / 100 * (n - 1)), no interpolation, exactly as static/facepack/guided.js computes it, so the two stay equal.

Defined for backbones whose only non-linearities are ReLU / ReLU6 (mobilenet_v2, resnet50,
efficientnet_lite*). Others (swish, hard-swish, sigmoid gates: efficientnet_b0,
mobilenet_v3_small) raise ``GuidedUnavailable`` naming the layer.
Maps are placed into the photo with ``facepack.gradcam.place_in_image`` (any (S, S) map);
``GuidedExplainer`` does crop + maps for a pipeline's faces (predict.py).
The JavaScript twin is static/facepack/guided.js (mirrors ``guided_maps``).
"""

from __future__ import annotations

import functools

import numpy as np

from facepack import spec

# Activations that are linear or ReLU-type, as Keras names them (layer.activation.__name__).
LINEAR_ACTIVATIONS = ("linear",)
RELU_ACTIVATIONS = ("relu", "relu6")
# Layer classes that are activations of their own (anything here but ReLU is not guided-capable).
ACTIVATION_LAYERS = ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU")


class GuidedUnavailable(ValueError):
    """Guided backpropagation is not defined for this model (the message names the layer and why)."""


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def relu_max_value(layer):
    """(is_relu, max_value) for a Keras layer: a guided-capable ReLU gives (True, None or float).

    Raises GuidedUnavailable for a non-linearity that is not a plain ReLU / ReLU6; (False, None)
    for layers without one.
    """
    cls = type(layer).__name__
    unavailable = ("guided backpropagation is defined for ReLU backbones only: layer {!r} uses {}; "
                   "use a mobilenet_v2, resnet50 or efficientnet_lite* beauty model, or plain Grad-CAM")
    if cls == "ReLU":
        slope = float(getattr(layer, "negative_slope", 0.0) or 0.0)
        threshold = float(getattr(layer, "threshold", 0.0) or 0.0)
        if slope != 0.0 or threshold != 0.0:
            raise GuidedUnavailable(unavailable.format(layer.name, f"ReLU(negative_slope={slope}, threshold={threshold})"))
        max_value = getattr(layer, "max_value", None)
        return True, (None if max_value is None else float(max_value))
    if cls in ACTIVATION_LAYERS:
        raise GuidedUnavailable(unavailable.format(layer.name, cls))
    if cls == "Activation":
        name = _activation_name(layer.activation)
        if name in RELU_ACTIVATIONS:
            return True, (6.0 if name == "relu6" else None)
        if name in LINEAR_ACTIVATIONS:
            return False, None
        raise GuidedUnavailable(unavailable.format(layer.name, f"activation {name!r}"))
    fused = getattr(layer, "activation", None)
    if fused is not None and _activation_name(fused) not in LINEAR_ACTIVATIONS:
        raise GuidedUnavailable(unavailable.format(layer.name, f"a fused activation {_activation_name(fused)!r}"))
    return False, None


def check_guided(features_model) -> None:
    """Raise GuidedUnavailable (naming the first offending layer) unless guided backprop is defined."""
    for layer in features_model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model
            check_guided(layer)
        else:
            relu_max_value(layer)


@functools.lru_cache(maxsize=1)
def _guided_relu_class():
    import keras
    import tensorflow as tf

    class GuidedReLU(keras.layers.Layer):
        """ReLU / ReLU6 forward; backward dy * [0 < x < max_value] * [dy > 0] (guided backprop)."""

        def __init__(self, max_value=None, **kwargs):
            super().__init__(**kwargs)
            self.max_value = max_value

        def call(self, x):
            top = self.max_value

            @tf.custom_gradient
            def guided(v):
                y = tf.nn.relu(v) if top is None else tf.minimum(tf.nn.relu(v), tf.cast(top, v.dtype))

                def grad(dy):
                    passes = v > 0
                    if top is not None:
                        passes = tf.logical_and(passes, v < top)
                    return tf.where(tf.logical_and(passes, dy > 0), dy, tf.zeros_like(dy))

                return y, grad

            return guided(x)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "max_value": self.max_value}

    return GuidedReLU


def guided_features_model(features_model):
    """A copy of ``features_model`` sharing its weights, with every ReLU / ReLU6 guided (step 2).

    Raises GuidedUnavailable when a layer has another non-linearity (``check_guided``).
    """
    import keras

    check_guided(features_model)
    guided_relu = _guided_relu_class()

    def clone(layer):
        is_relu, top = relu_max_value(layer)
        return guided_relu(max_value=top, name=layer.name + "_guided") if is_relu else layer

    return keras.models.clone_model(features_model, clone_function=clone, recursive=True)


def guided_gradients(guided_features, head_model, crops):
    """Step 2: crops (N, S, S, 3) float32 -> dScore/dcrops (N, S, S, 3) float32 (guided)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(crops, dtype=np.float32))
    inputs = (lambda t: [t]) if isinstance(guided_features.input, list) else (lambda t: t)
    bins = tf.range(spec.BEAUTY["bins"], dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        probs = head_model(guided_features(inputs(x), training=False), training=False)
        score = tf.reduce_sum(probs * bins)  # each face's score depends on its own crop only
    return tape.gradient(score, x).numpy()


DISPLAY_QUANTILE = 0.99  # maps are scaled so this quantile of a face's pixels is 1 (then clipped)


def percentile_index(n: int, quantile: float = DISPLAY_QUANTILE) -> int:
    """Index into n ascending-sorted values of the quantile: floor(quantile * (n - 1)) (no
    interpolation; guided.js:percentileIndex is the same float64 product, so the same index)."""
    return int(np.floor(quantile * (n - 1)))


def normalise_percentile(maps: np.ndarray, quantile: float = DISPLAY_QUANTILE) -> np.ndarray:
    """Scale each (N, H, W) map (values >= 0) so its ``percentile``-th value is 1, clip to 0..1.

    The scale is the sorted value at ``percentile_index(H * W)``; where that is 0 (a map that is
    zero on more than 1 - p of its pixels) the map's max is used instead, and an all-zero map stays
    zero. Returns float32 (N, H, W) in 0..1; about 1 % of a map's pixels are 1 at p = 99.
    """
    maps = np.asarray(maps, dtype=np.float32)
    n = maps.shape[0]
    flat = maps.reshape(n, -1)
    if flat.shape[1] == 0:
        return maps
    scale = np.sort(flat, axis=1)[:, percentile_index(flat.shape[1], quantile)]
    scale = np.where(scale > 0, scale, flat.max(axis=1))
    scale = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    return np.clip(maps / scale[:, None, None], 0.0, 1.0).astype(np.float32)


def guided_maps(features_model, head_model, crops, guided_features=None, gradcam_crop=None) -> dict:
    """Guided backprop and guided Grad-CAM of a batch of beauty crops (steps 1-4).

    crops: (N, S, S, 3) float32 raw RGB 0..255 (the beauty model's input).
    guided_features: ``guided_features_model(features_model)`` (optional; build it once and reuse).
    gradcam_crop: (N, S, S) Grad-CAM crop maps if already computed (gradcam.gradcam(...)["crop"]).
    Returns {"guided": (N, S, S), "guided_gradcam": (N, S, S), "gradcam": (N, S, S)} float32,
    each 0..1. "guided" and "guided_gradcam" are display maps: divided by their per-face 99th
    percentile and clipped (``normalise_percentile``; ~1 % of pixels are 1), so the heavy-tailed
    gradient shows beyond its few largest pixels; "gradcam" is Grad-CAM's own (max 1 per face).
    All zero where the gradient is zero everywhere.
    Raises GuidedUnavailable for a backbone with non-ReLU activations.
    """
    from facepack import gradcam

    crops = np.asarray(crops, dtype=np.float32)
    n, size = crops.shape[0], crops.shape[1]
    if guided_features is None:
        guided_features = guided_features_model(features_model)
    if n == 0:
        empty = np.zeros((0, size, size), np.float32)
        return {"guided": empty, "guided_gradcam": empty, "gradcam": empty}
    if gradcam_crop is None:
        gradcam_crop = gradcam.gradcam(features_model, head_model, crops)["crop"]
    saliency = np.abs(guided_gradients(guided_features, head_model, crops)).sum(axis=-1)
    cam = np.asarray(gradcam_crop, np.float32)
    return {"guided": normalise_percentile(saliency), "guided_gradcam": normalise_percentile(saliency * cam),
            "gradcam": np.asarray(gradcam_crop, np.float32)}


class GuidedExplainer:
    """Guided maps for the faces a ``facepack.pipeline.FacePipeline`` found (predict.py's entry).

    Built once per pipeline (clones the beauty backbone with guided ReLUs); raises
    GuidedUnavailable for a non-ReLU backbone and ValueError when the pipeline has no beauty model.
    """

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.features, self.head = pipeline.gradcam_models()
        self.guided_features = guided_features_model(self.features)

    def explain(self, rgb, faces: list) -> list:
        """rgb: the decoded photo (H, W, 3) uint8; faces: dicts with "box" (photo pixels).

        Returns per face {"square": (x0, y0, side) photo pixels, "guided": (S, S), "guided_gradcam":
        (S, S)} float32 0..1 over the beauty crop (display maps: 99th percentile = 1, clipped; see
        ``guided_maps``); ``facepack.gradcam.place_in_image(m, square, H, W)``
        puts a map into the photo.
        """
        from facepack import pipeline as pipeline_mod

        if not faces:
            return []
        crops, squares = pipeline_mod.crop(rgb, faces, "beauty", self.pipeline.beauty_size)
        maps = guided_maps(self.features, self.head, crops, self.guided_features)
        return [{"square": tuple(float(v) for v in sq), "guided": g, "guided_gradcam": gg}
                for sq, g, gg in zip(squares, maps["guided"], maps["guided_gradcam"])]


OVERLAY_ALPHA = 0.85  # blend weight of a map value of 1 (a value of 0 leaves the photo as is)
OVERLAY_COLORMAP = "inferno"  # fine-grained maps read better on a dark-to-bright map than on "jet"


def guided_overlay(rgb, explained: list, key: str = "guided_gradcam") -> np.ndarray:
    """The photo (H, W, 3) uint8 with every face's ``key`` map ("guided" | "guided_gradcam", from
    ``GuidedExplainer.explain``) placed over its square (gradcam.place_in_image) and blended in
    with OVERLAY_COLORMAP, weight OVERLAY_ALPHA * value. Returns a new uint8 array."""
    from matplotlib import colormaps

    from facepack import gradcam

    if key not in ("guided", "guided_gradcam"):
        raise ValueError(f"guided_overlay key must be 'guided' or 'guided_gradcam', got {key!r}")
    out = np.array(rgb, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    heat = np.zeros((h, w), np.float32)
    for face in explained:
        heat = np.maximum(heat, gradcam.place_in_image(face[key], face["square"], h, w))
    rows, cols = np.flatnonzero(heat.any(axis=1)), np.flatnonzero(heat.any(axis=0))
    if len(rows) == 0:
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    part = heat[r0:r1, c0:c1]
    colours = colormaps[OVERLAY_COLORMAP](part, bytes=True)[..., :3].astype(np.float32)
    alpha = (np.float32(OVERLAY_ALPHA) * part)[..., None]
    out[r0:r1, c0:c1] = np.clip(out[r0:r1, c0:c1] * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8)
    return out
