"""Pieces shared by the model builders.

Builders take the Keras module as their first argument (``keras`` for training, ``tf_keras``
for export, DESIGN.md contract 5) and name every layer they create, so weights can be copied
between the two by layer name.
"""

from __future__ import annotations

import numpy as np

# Per-backbone input normalisation, applied by a fixed 1x1 convolution inside the model so the
# exported graph takes raw RGB 0..255 (contract 2). A 1x1 conv is used rather than Rescaling or
# Normalization layers because it exists with identical semantics in Keras 2, Keras 3 and
# TF.js on every backend. ``matrix[out, in]`` and ``bias[out]``: y_out = sum_in m * x_in + b.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
NORMALIZATION = {
    # keras.applications.resnet50.preprocess_input: RGB -> BGR, minus the ImageNet mean.
    "caffe": (np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float32),
              -np.array(_CAFFE_MEAN_BGR, dtype=np.float32)),
    # mobilenet_v2 / mobilenet_v3 (without built-in preprocessing): x / 127.5 - 1.
    "tf": (np.eye(3, dtype=np.float32) / 127.5, -np.ones(3, dtype=np.float32)),
    # efficientnet (without built-in preprocessing): x unchanged (its own layers rescale).
    "identity": (np.eye(3, dtype=np.float32), np.zeros(3, dtype=np.float32)),
    # EfficientNet-Lite (facepack/models/importers.py): (x - 127) / 128, the official Lite
    # builder's MEAN_RGB / STDDEV_RGB.
    "lite": (np.eye(3, dtype=np.float32) / 128.0, -np.full(3, 127.0 / 128.0, dtype=np.float32)),
    # dlib face-descriptor ResNet (facepack/models/importers.py DLIB_MEAN_RGB, DLIB_SCALE):
    # (x - mean RGB) / 255, face-api's FaceRecognitionNet.forwardInput.
    "dlib": (np.eye(3, dtype=np.float32) / 255.0,
             -np.array((122.782, 117.001, 104.298), dtype=np.float32) / np.float32(255.0)),
    # x / 255.
    "unit": (np.eye(3, dtype=np.float32) / 255.0, np.zeros(3, dtype=np.float32)),
}

INPUT_NORM_LAYER = "input_norm"


def input_norm(keras, x, mode: str):
    """Apply the fixed, non-trainable normalisation ``mode`` (a key of NORMALIZATION)."""
    if mode not in NORMALIZATION:
        raise ValueError(f"normalisation must be one of {sorted(NORMALIZATION)}, got {mode!r}")
    matrix, bias = NORMALIZATION[mode]
    layer = keras.layers.Conv2D(3, 1, use_bias=True, name=INPUT_NORM_LAYER, trainable=False)
    y = layer(x)
    layer.set_weights([matrix.T.reshape(1, 1, 3, 3), bias])
    return y


def copy_weights_by_name(src, dst, skip_missing: bool = False) -> int:
    """Copy weights layer by layer (matched by name) from ``src`` to ``dst``; returns the count.

    skip_missing: layers of ``src`` that ``dst`` lacks are left out (``dst`` is a part of ``src``,
    e.g. the top of a model trained on cached features) instead of an error.
    Raises ValueError naming the first layer that is missing (unless skip_missing) or whose shapes differ.
    """
    copied = 0
    dst_layers = {layer.name: layer for layer in dst.layers}
    for layer in src.layers:
        if skip_missing and layer.name not in dst_layers:
            continue
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name not in dst_layers:
            raise ValueError(f"layer {layer.name!r} of the source model has no twin in the target")
        target = dst_layers[layer.name]
        shapes = [w.shape for w in target.get_weights()]
        if shapes != [w.shape for w in weights]:
            raise ValueError(f"layer {layer.name!r}: weight shapes differ {shapes} vs {[w.shape for w in weights]}")
        target.set_weights(weights)
        copied += 1
    return copied
