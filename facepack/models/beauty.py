"""The beauty-score model: backbone -> global average pooling -> Dense(101) softmax.

The input is raw RGB 0..255 (normalisation is the first layer). The output is a distribution
over integer scores 0..100; the predicted score is its expectation (``expected_score``).
For Grad-CAM the model splits at the backbone's last feature map (``FEATURES_LAYER``) into a
feature extractor and a head (``split_for_gradcam``), which is also how it is exported.
"""

from __future__ import annotations

import numpy as np

from facepack import spec
from facepack.models.common import input_norm

# backbone name -> (keras.applications constructor, normalisation mode, extra kwargs)
BACKBONES = {
    "resnet50": ("ResNet50", "caffe", {}),
    "mobilenet_v2": ("MobileNetV2", "tf", {}),
    "mobilenet_v3_small": ("MobileNetV3Small", "tf", {"include_preprocessing": False, "minimalistic": False}),
    "efficientnet_b0": ("EfficientNetB0", "identity", {}),
}
assert sorted(BACKBONES) == sorted(spec.BEAUTY["backbones"])

FEATURES_LAYER = "features"  # identity-named output of the backbone: the Grad-CAM target map
POOL_LAYER = "pool"
SCORES_LAYER = "scores"
BINS = spec.BEAUTY["bins"]


def build_beauty_model(keras, backbone: str = "resnet50", input_size: int = spec.BEAUTY["input_size_px"],
                       weights: str | None = None, dropout: float = 0.0, alpha: float = 1.0):
    """Build the beauty model with ``keras`` (Keras 3 or tf_keras).

    weights: None (random), "imagenet", or a path to a backbone weights file (as accepted by
    keras.applications). alpha: width multiplier of the MobileNet backbones (1.0 = standard;
    smaller is faster and lighter). Raises ValueError naming the argument on a bad value.
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
    ctor = getattr(keras.applications, ctor_name)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = input_norm(keras, inputs, norm)
    base = ctor(include_top=False, weights=weights, input_tensor=x,
                input_shape=(input_size, input_size, 3), **extra)
    feats = keras.layers.Activation("linear", name=FEATURES_LAYER)(base.output)
    y = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(feats)
    if dropout > 0:
        y = keras.layers.Dropout(dropout, name="head_dropout")(y)
    outputs = keras.layers.Dense(BINS, activation="softmax", name=SCORES_LAYER)(y)
    model = keras.Model(inputs, outputs, name=f"beauty_{backbone}")
    return model


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
    head_model = keras.Model(fmap, y, name=model.name + "_head")
    return features_model, head_model
