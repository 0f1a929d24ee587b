"""The facial keypoint model: a square face crop -> N (x, y) points in crop units (0..1).

``kpnet`` is a small depthwise-separable CNN meant for the browser (under 1 MB in float32);
``mobilenet_v2`` (alpha 0.35) is offered for users with more data. Missing keypoints (NaN in
the targets, as in Kaggle's 15-point data) are masked out of the loss, never filled in.
"""

from __future__ import annotations

from facepack import spec
from facepack.models.common import input_norm

BACKBONES = ("kpnet", "mobilenet_v2")
POINTS_LAYER = "points"


def _sep_block(keras, x, filters: int, stride: int, name: str):
    L = keras.layers
    x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = L.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = L.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = L.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = L.BatchNormalization(name=f"{name}_pw_bn")(x)
    return L.ReLU(6.0, name=f"{name}_pw_relu")(x)


def build_keypoint_model(keras, num_points: int = 68, backbone: str = "kpnet",
                         input_size: int = spec.KEYPOINTS["input_size_px"], width: int = 24,
                         weights: str | None = None):
    """Build the keypoint model with ``keras`` (Keras 3 or tf_keras); output (N, 2 * points)."""
    if backbone not in BACKBONES:
        raise ValueError(f"--backbone must be one of {list(BACKBONES)}, got {backbone!r}")
    if num_points not in (15, 68):
        raise ValueError(f"--format must give 15 or 68 points, got {num_points!r}")
    if not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"--input-size must be an integer >= 32, got {input_size!r}")
    L = keras.layers
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = input_norm(keras, inputs, "tf")
    if backbone == "kpnet":
        x = L.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = L.BatchNormalization(name="stem_bn")(x)
        x = L.ReLU(6.0, name="stem_relu")(x)
        plan = [(2 * width, 1), (2 * width, 2), (4 * width, 1), (4 * width, 2), (8 * width, 1),
                (8 * width, 2), (8 * width, 1), (8 * width, 2)]
        for i, (filters, stride) in enumerate(plan):
            x = _sep_block(keras, x, filters, stride, f"block{i + 1}")
    else:
        base = keras.applications.MobileNetV2(include_top=False, weights=weights, alpha=0.35,
                                              input_tensor=x, input_shape=(input_size, input_size, 3))
        x = base.output
    # Keep the spatial layout (where a point is matters): squeeze channels, then flatten.
    x = L.Conv2D(48, 1, use_bias=False, name="head_squeeze")(x)
    x = L.BatchNormalization(name="head_bn")(x)
    x = L.ReLU(6.0, name="head_relu")(x)
    x = L.Flatten(name="head_flatten")(x)
    outputs = L.Dense(2 * num_points, name=POINTS_LAYER)(x)
    return keras.Model(inputs, outputs, name=f"keypoints{num_points}_{backbone}")


def masked_keypoint_loss(keras):
    """Smooth-L1 over the coordinates present (targets that are NaN are masked out)."""
    ops = keras.ops

    def loss(y_true, y_pred):
        present = ops.logical_not(ops.isnan(y_true))
        target = ops.where(present, y_true, ops.zeros_like(y_true))
        diff = ops.where(present, ops.abs(y_pred - target), ops.zeros_like(y_pred))
        beta = 0.01  # crop units: 1 px of a 100 px crop
        elem = ops.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
        count = ops.maximum(ops.sum(ops.cast(present, "float32"), axis=-1), 1.0)
        return ops.sum(elem, axis=-1) / count

    loss.__name__ = "masked_smooth_l1"
    return loss


# --- EfficientNet-Lite0 keypoint model (issue 19: ImageNet features for people never trained on) ----
LITE_BACKBONE = "lite0"
LITE_WEIGHTS = "efficientnet-lite0"  # facepack.models.importers weight set (Apache-2.0, ImageNet-1k)
LITE_VARIANT = "efficientnet_lite0"  # the importers' architecture (stem and blocks: importers.lite_stem, lite_block_layers)


def keypoint_head(keras, y, num_points: int, head_filters: int):
    """1x1 squeeze (keeps where a point is), flatten, Dense(2 * points) named POINTS_LAYER."""
    L = keras.layers
    y = L.Conv2D(head_filters, 1, use_bias=False, name="head_squeeze")(y)
    y = L.BatchNormalization(name="head_bn")(y)
    y = L.ReLU(6.0, name="head_relu")(y)
    y = L.Flatten(name="head_flatten")(y)
    return L.Dense(2 * num_points, name=POINTS_LAYER)(y)


def build_lite_keypoint_model(keras, num_points: int = 68, input_size: int = spec.KEYPOINTS["input_size_px"],
                              last_block: int = 8, head_filters: int = 32, start_block: int | None = None):
    """Lite0 stem + blocks 0..last_block-1 + keypoint_head: raw RGB (N, S, S, 3) -> (N, 2 * points).

    start_block: build only the top (an input of block ``start_block``'s input shape, blocks
    start_block..last_block-1, head), the part trained on cached frozen features; its layers
    carry the full model's names (facepack.models.common.copy_weights_by_name).
    """
    from facepack.models.importers import LITE_NORMALIZATION, lite_block_layers, lite_blocks, lite_stem

    if num_points not in (15, 68):
        raise ValueError(f"--format must give 15 or 68 points, got {num_points!r}")
    if start_block is None:
        inputs = keras.Input((input_size, input_size, 3), name="image")
        y = lite_stem(keras, input_norm(keras, inputs, LITE_NORMALIZATION))
        y = lite_block_layers(keras, y, LITE_VARIANT, 0, last_block)
        name = f"keypoints{num_points}_{LITE_BACKBONE}"
    else:
        blocks = lite_blocks(LITE_VARIANT)
        side = input_size // 2
        for b in blocks[:start_block]:
            side = -(-side // b["stride"])
        inputs = keras.Input((side, side, blocks[start_block]["in"]), name="features")
        y = lite_block_layers(keras, inputs, LITE_VARIANT, start_block, last_block)
        name = f"keypoints{num_points}_{LITE_BACKBONE}_top{start_block}"
    return keras.Model(inputs, keypoint_head(keras, y, num_points, head_filters), name=name)


def load_lite_weights(model, log=print) -> int:
    """Set the ImageNet Lite0 weights on every layer of ``model`` that has them (by name); the
    head stays as built. Returns the number of layers set."""
    from facepack.models.importers import load_weight_set

    weights = load_weight_set(LITE_WEIGHTS, log=log)
    count = 0
    for layer in model.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
            count += 1
    return count
