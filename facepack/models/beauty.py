"""The beauty-score model: backbone -> global average pooling -> Dense(101) softmax.

The input is raw RGB 0..255 (normalisation is the first layer). The output is a distribution
over integer scores 0..100; the predicted score is its expectation (``expected_score``).
For Grad-CAM the model splits at the backbone's last feature map (``FEATURES_LAYER``) into a
feature extractor and a head (``split_for_gradcam``), which is also how it is exported.
"""

from __future__ import annotations

import numpy as np

from facepack import spec
from facepack.models import importers
from facepack.models.common import input_norm

# backbone name -> (constructor, normalisation mode, extra kwargs). A constructor is the name of a
# keras.applications function (weights: "imagenet" download, None, or a local .h5), or a
# function (keras, x, backbone) -> feature tensor from facepack/models/importers.py, whose
# pretrained weights ship in registry packages (weights: a WEIGHT_SETS name, "imagenet" = its set).
BACKBONES = {
    "resnet50": ("ResNet50", "caffe", {}),
    "mobilenet_v2": ("MobileNetV2", "tf", {}),
    "mobilenet_v3_small": ("MobileNetV3Small", "tf", {"include_preprocessing": False, "minimalistic": False}),
    "efficientnet_b0": ("EfficientNetB0", "identity", {}),
    **{name: (importers.build_efficientnet_lite, importers.LITE_NORMALIZATION, {}) for name in importers.LITE_VARIANTS},
}
assert sorted(BACKBONES) == sorted(spec.BEAUTY["backbones"])

FEATURES_LAYER = "features"  # identity-named output of the backbone: the Grad-CAM target map
POOL_LAYER = "pool"
SCORES_LAYER = "scores"
CALIBRATION_LAYER = "calibration"  # optional fixed bin remap after the softmax (add_calibration)
BINS = spec.BEAUTY["bins"]


def build_beauty_model(keras, backbone: str = "resnet50", input_size: int = spec.BEAUTY["input_size_px"],
                       weights: str | None = None, dropout: float = 0.0, alpha: float = 1.0):
    """Build the beauty model with ``keras`` (Keras 3 or tf_keras).

    weights: None (random), "imagenet", or a path to a backbone weights file (as accepted by
    keras.applications); for an imported backbone (efficientnet_lite*) the name of a packaged
    weight set (``pretrained_weight_set``; "imagenet" means that set). alpha: width multiplier of
    the MobileNet backbones (1.0 = standard; smaller is faster and lighter). Raises ValueError
    naming the argument on a bad value, importers.ImporterError when a weight package is missing.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"--backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
    if not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"--input-size must be an integer >= 32, got {input_size!r}")
    ctor_name, norm, extra = BACKBONES[backbone]
    if alpha != 1.0:
        if not backbone.startswith("mobilenet"):
            raise ValueError(f"--alpha applies to the mobilenet backbones only, got {alpha!r} with {backbone!r}")
        extra = dict(extra, alpha=alpha)
    weight_set = pretrained_weight_set(backbone, weights)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = input_norm(keras, inputs, norm)
    if callable(ctor_name):
        base_out = ctor_name(keras, x, backbone, **extra)
    else:
        if weights in importers.WEIGHT_SETS:
            raise ValueError(f"--weights {weights} fits --backbone {importers.WEIGHT_SETS[weights].backbone}, "
                             f"not {backbone!r}")
        ctor = getattr(keras.applications, ctor_name)
        base_out = ctor(include_top=False, weights=weights, input_tensor=x,
                        input_shape=(input_size, input_size, 3), **extra).output
    feats = keras.layers.Activation("linear", name=FEATURES_LAYER)(base_out)
    y = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(feats)
    if dropout > 0:
        y = keras.layers.Dropout(dropout, name="head_dropout")(y)
    outputs = keras.layers.Dense(BINS, activation="softmax", name=SCORES_LAYER)(y)
    model = keras.Model(inputs, outputs, name=f"beauty_{backbone}")
    if weight_set:
        importers.apply_weight_set(model, weight_set)
    return model


def pretrained_weight_set(backbone: str, weights) -> str | None:
    """The packaged weight set (importers.WEIGHT_SETS key) an imported ``backbone`` loads, else None.

    For efficientnet_lite* "imagenet" means its packaged set; None stays random; anything else
    that is not a set fitting this backbone raises ValueError naming --weights.
    """
    if backbone not in BACKBONES or not callable(BACKBONES[backbone][0]) or weights is None:
        return None
    fitting = [name for name, ws in importers.WEIGHT_SETS.items() if ws.backbone == backbone]
    if weights == "imagenet" and fitting:
        return fitting[0]
    if weights in fitting:
        return weights
    raise ValueError(f"--weights for --backbone {backbone} must be one of {fitting + ['imagenet', 'none']}, "
                     f"got {weights!r}")


def backbone_layers(model):
    """Layers strictly between the input normalisation and the head (frozen in phase 1)."""
    names = [layer.name for layer in model.layers]
    start = names.index("input_norm") + 1
    stop = names.index(FEATURES_LAYER)
    return model.layers[start:stop]


def expected_score(probs: np.ndarray) -> np.ndarray:
    """Distribution over bins 0..100 -> expected score on 0..100 (last axis)."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs @ np.arange(probs.shape[-1], dtype=np.float64)


def score_to_1to5(score_0to100):
    return np.asarray(score_0to100, dtype=np.float64) / spec.BEAUTY["label_scale"]


def split_for_gradcam(keras, model):
    """Split a built beauty model into (features_model, head_model) sharing its layers.

    features_model: image -> last feature map (N, h, w, C); head_model: feature map -> scores.
    """
    features = model.get_layer(FEATURES_LAYER).output
    features_model = keras.Model(model.input, features, name=model.name + "_features")
    fmap = keras.Input(tuple(features.shape[1:]), name="feature_map")
    y = model.get_layer(POOL_LAYER)(fmap)
    if "head_dropout" in [layer.name for layer in model.layers]:
        y = model.get_layer("head_dropout")(y)
    y = model.get_layer(SCORES_LAYER)(y)
    if CALIBRATION_LAYER in [layer.name for layer in model.layers]:
        y = model.get_layer(CALIBRATION_LAYER)(y)
    head_model = keras.Model(fmap, y, name=model.name + "_head")
    return features_model, head_model


def calibration_matrix(slope: float, offset: float, bins: int = BINS) -> np.ndarray:
    """(bins, bins) float32 M moving the mass of bin i to the score slope * i + offset (bins).

    Each row sends its mass to the two bins around the target (linear interpolation; targets
    clipped to 0..bins-1), so p @ M is again a distribution and its expected score is exactly
    slope * E[p] + offset wherever no target is clipped. slope 1, offset 0 is the identity.
    Raises ValueError on a slope <= 0 (it would reverse the score order).
    """
    if not slope > 0:
        raise ValueError(f"calibration slope must be > 0, got {slope!r}")
    target = np.clip(slope * np.arange(bins, dtype=np.float64) + offset, 0, bins - 1)
    lo = np.floor(target).astype(int)
    hi = np.minimum(lo + 1, bins - 1)
    frac = target - lo
    m = np.zeros((bins, bins), dtype=np.float64)
    rows = np.arange(bins)
    m[rows, lo] += 1 - frac
    m[rows, hi] += frac
    return m.astype(np.float32)


def add_calibration(keras, model, slope: float, offset: float):
    """``model`` with a fixed linear map of its expected score folded in as the last layer.

    The new output is softmax probs @ calibration_matrix(slope, offset) (layer ``calibration``,
    a bias-free Dense with fixed weights): still 101 probabilities, so the exported head, the
    page and Grad-CAM need no change. slope/offset are on the 0..100 score scale. A model that
    has a calibration layer already gets the composed map. Returns a new model sharing layers.
    """
    names = [layer.name for layer in model.layers]
    probs = model.get_layer(SCORES_LAYER).output
    if CALIBRATION_LAYER in names:
        raise ValueError(f"{model.name}: already has a {CALIBRATION_LAYER!r} layer; calibrate the uncalibrated model")
    layer = keras.layers.Dense(BINS, use_bias=False, trainable=False, name=CALIBRATION_LAYER)
    out = layer(probs)
    layer.set_weights([calibration_matrix(slope, offset)])
    return keras.Model(model.input, out, name=model.name)


def top_part(keras, model, first_block: int):
    """The sub-model of an EfficientNet-Lite beauty model from block ``first_block`` to the output.

    Input: the (N, h, w, C) feature map entering ``block{first_block}`` (what the frozen lower
    part computes); the layers are shared with ``model``, so training the part trains ``model``.
    Raises ValueError naming --freeze-until when the model has no such block.
    """
    names = [layer.name for layer in model.layers]
    first = f"block{first_block}_expand_conv"
    if first not in names:
        first = f"block{first_block}_dw_conv"
    if first not in names or first_block < 1:
        raise ValueError(f"--freeze-until {first_block}: {model.name} has no block {first_block} with an "
                         "input from a previous block (EfficientNet-Lite: 1..last block)")
    return keras.Model(model.get_layer(first).input, model.output, name=model.name + f"_top{first_block}")
