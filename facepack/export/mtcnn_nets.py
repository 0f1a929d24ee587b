"""The `mtcnn` 1.0.0 package's P-Net, R-Net and O-Net, rebuilt as functional tf_keras models.

The package defines its nets as subclassed Keras models (``mtcnn/network/{pnet,rnet,onet}.py``)
and loads their weights from ``mtcnn/assets/weights/*.lz4`` with joblib. The TF.js converter
needs functional tf_keras models, so this module rebuilds the same layer stacks (same names,
same order, same activations) and copies the package's weights layer by layer.

What the package does around the nets (read from ``mtcnn/utils/images.py`` and the stages):

* Images are NOT transposed: they stay (N, H, W, 3), RGB, float 0..255 before normalisation.
  The caffe-style W/H transpose lives inside R-Net and O-Net as a ``Permute((2, 1, 3))`` before
  ``Flatten``; it is kept here as the same layer (TF.js supports Permute).
* ``normalize_images``: (x - 127.5) / 128 is applied ONCE to the whole photo; the P-Net pyramid
  (AREA resize) and the R/O-Net patches (``tf.image.crop_and_resize``, extrapolation value 0)
  are taken from the normalised photo. Bilinear crops are affine-invariant, so applying the
  normalisation as the nets' first layer (``input_norm``, a fixed 1x1 Conv2D as in
  facepack/models/common.py) is equivalent, EXCEPT for crop padding: a patch pixel outside the
  photo is 0 after normalisation, i.e. 127.5 in raw pixels (spec.MTCNN["patch_pad_value"]).
  TF's AREA resize is NOT exactly affine-invariant (its float32 cell weights sum to 1 +- 8e-5),
  so the JS pyramid resizes ``x - offset`` and adds the offset back (static/facepack/ops/area_resize.js).
* The exported nets therefore take raw RGB 0..255 (DESIGN.md contract 2), and
  ``spec.MTCNN["normalize"]`` documents the first layer.

Outputs (in this order, named in the manifest):
  P-Net: bbox_reg (N, h, w, 4), prob (N, h, w, 2) softmax over the last axis ([not face, face]);
  R-Net: bbox_reg (N, 4), prob (N, 2);
  O-Net: bbox_reg (N, 4), landmarks (N, 10) as [x1..x5, y1..y5], prob (N, 2).
"""

from __future__ import annotations

import numpy as np

from facepack import spec

NET_NAMES = ("pnet", "rnet", "onet")
# Input shapes (H, W, C); P-Net is fully convolutional and keeps a variable size.
INPUT_SHAPES = {
    "pnet": (None, None, 3),
    "rnet": (spec.MTCNN["rnet_input_px"], spec.MTCNN["rnet_input_px"], 3),
    "onet": (spec.MTCNN["onet_input_px"], spec.MTCNN["onet_input_px"], 3),
}
OUTPUT_NAMES = {
    "pnet": ["bbox_reg", "prob"],
    "rnet": ["bbox_reg", "prob"],
    "onet": ["bbox_reg", "landmarks", "prob"],
}
INPUT_NORM_LAYER = "input_norm"

# Layer plans, mirroring the package's __init__/call order exactly:
# ("conv", name, filters, kernel, padding, activation) | ("prelu", name, shared_axes)
# | ("pool", name, size, stride, padding) | ("permute", name) | ("flatten", name)
# | ("dense", name, units, activation). Heads are listed separately (they branch).
_TRUNKS = {
    "pnet": [
        ("conv", "conv1", 10, 3, "valid", "linear"), ("prelu", "prelu1", [1, 2]),
        ("pool", "maxpooling1", 2, 2, "same"),
        ("conv", "conv2", 16, 3, "valid", "linear"), ("prelu", "prelu2", [1, 2]),
        ("conv", "conv3", 32, 3, "valid", "linear"), ("prelu", "prelu3", [1, 2]),
    ],
    "rnet": [
        ("conv", "conv1", 28, 3, "valid", "linear"), ("prelu", "prelu1", [1, 2]),
        ("pool", "maxpooling1", 3, 2, "same"),
        ("conv", "conv2", 48, 3, "valid", "linear"), ("prelu", "prelu2", [1, 2]),
        ("pool", "maxpooling2", 3, 2, "valid"),
        ("conv", "conv3", 64, 2, "valid", "linear"), ("prelu", "prelu3", [1, 2]),
        ("permute", "permute"), ("flatten", "flatten3"),
        ("dense", "fc4", 128, "linear"), ("prelu", "prelu4", None),
    ],
    "onet": [
        ("conv", "conv1", 32, 3, "valid", "linear"), ("prelu", "prelu1", [1, 2]),
        ("pool", "maxpooling1", 3, 2, "same"),
        ("conv", "conv2", 64, 3, "valid", "linear"), ("prelu", "prelu2", [1, 2]),
        ("pool", "maxpooling2", 3, 2, "valid"),
        ("conv", "conv3", 64, 3, "valid", "linear"), ("prelu", "prelu3", [1, 2]),
        ("pool", "maxpooling3", 2, 2, "same"),
        ("conv", "conv4", 128, 2, "valid", "linear"), ("prelu", "prelu4", [1, 2]),
        ("permute", "permute"), ("flatten", "flatten4"),
        ("dense", "fc5", 256, "linear"), ("prelu", "prelu5", None),
    ],
}
_HEADS = {
    "pnet": [("conv", "conv4-1", 4, 1, "valid", "linear"), ("conv", "conv4-2", 2, 1, "valid", "softmax")],
    "rnet": [("dense", "fc5-1", 4, "linear"), ("dense", "fc5-2", 2, "softmax")],
    "onet": [("dense", "fc6-1", 4, "linear"), ("dense", "fc6-2", 10, "linear"), ("dense", "fc6-3", 2, "softmax")],
}
WEIGHT_FILES = {"pnet": "pnet.lz4", "rnet": "rnet.lz4", "onet": "onet.lz4"}


def _check_net(net: str) -> None:
    if net not in NET_NAMES:
        raise ValueError(f"MTCNN net must be one of {NET_NAMES}, got {net!r}")


def _layer(keras, step):
    """One plan step -> a Keras layer."""
    L = keras.layers
    kind, name = step[0], step[1]
    if kind == "conv":
        _, _, filters, kernel, padding, activation = step
        return L.Conv2D(filters, kernel, strides=1, padding=padding, activation=activation, name=name)
    if kind == "prelu":
        return L.PReLU(shared_axes=step[2], name=name)
    if kind == "pool":
        _, _, size, stride, padding = step
        return L.MaxPooling2D(pool_size=size, strides=stride, padding=padding, name=name)
    if kind == "permute":
        return L.Permute((2, 1, 3), name=name)
    if kind == "flatten":
        return L.Flatten(name=name)
    if kind == "dense":
        _, _, units, activation = step
        return L.Dense(units, activation=activation, name=name)
    raise ValueError(f"unknown plan step {step!r}")


def normalization_weights() -> tuple[np.ndarray, np.ndarray]:
    """Kernel (1, 1, 3, 3) and bias (3,) of the first layer: y = (x - offset) * scale."""
    norm = spec.MTCNN["normalize"]
    scale, offset = float(norm["scale"]), float(norm["offset"])
    kernel = (np.eye(3, dtype=np.float32) * np.float32(scale)).reshape(1, 1, 3, 3)
    bias = np.full(3, -offset * scale, dtype=np.float32)
    return kernel, bias


def build_mtcnn_net(keras, net: str, normalize: bool = True):
    """Functional ``keras`` (tf_keras or Keras 3) model of the package's ``net``, random weights.

    normalize: prepend the fixed ``input_norm`` layer so the model takes raw RGB 0..255.
    """
    _check_net(net)
    inputs = keras.Input(INPUT_SHAPES[net], name="image")
    x = inputs
    if normalize:
        norm = keras.layers.Conv2D(3, 1, use_bias=True, trainable=False, name=INPUT_NORM_LAYER)
        x = norm(x)
        norm.set_weights(list(normalization_weights()))
    for step in _TRUNKS[net]:
        x = _layer(keras, step)(x)
    outputs = [_layer(keras, step)(x) for step in _HEADS[net]]
    return keras.Model(inputs, outputs, name=f"mtcnn_{net}")


def load_package_net(net: str):
    """The `mtcnn` package's own (subclassed, Keras 3) model with its shipped weights."""
    _check_net(net)
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    model = {"pnet": PNet, "rnet": RNet, "onet": ONet}[net]()
    model.build()
    model.set_weights(load_weights(WEIGHT_FILES[net]))
    return model


def package_layer_weights(net: str) -> dict[str, list[np.ndarray]]:
    """{layer name: weights} of the package's ``net``, as the package loads them."""
    model = load_package_net(net)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}


def build_pretrained_mtcnn_net(keras, net: str, normalize: bool = True):
    """``build_mtcnn_net`` with the package's weights copied in by layer name (shapes checked)."""
    model = build_mtcnn_net(keras, net, normalize=normalize)
    weights = package_layer_weights(net)
    expected = {layer.name for layer in model.layers if layer.get_weights()} - {INPUT_NORM_LAYER}
    if set(weights) != expected:
        raise ValueError(f"MTCNN {net}: package layers {sorted(weights)} differ from the rebuilt {sorted(expected)}")
    for name, values in weights.items():
        layer = model.get_layer(name)
        shapes = [w.shape for w in layer.get_weights()]
        if shapes != [v.shape for v in values]:
            raise ValueError(f"MTCNN {net} layer {name!r}: weight shapes {shapes} vs package {[v.shape for v in values]}")
        layer.set_weights(values)
    return model


def package_forward(net: str, images_raw: np.ndarray, model=None) -> list[np.ndarray]:
    """The package's net on raw RGB 0..255 images, normalised as the package does."""
    from mtcnn.utils.images import normalize_images

    model = model if model is not None else load_package_net(net)
    outs = model(normalize_images(np.asarray(images_raw, dtype=np.float32)))
    return [np.asarray(o) for o in outs]


def probe_inputs(net: str, seed: int = 0, batch: int = 2, size: tuple[int, int] | None = None) -> np.ndarray:
    """Random raw RGB 0..255 images for ``net`` (P-Net: ``size`` (H, W), default 37x29)."""
    _check_net(net)
    rng = np.random.default_rng(seed)
    h, w = size if net == "pnet" else INPUT_SHAPES[net][:2]
    if net == "pnet" and size is None:
        h, w = 37, 29
    return rng.uniform(0, 255, (batch, h, w, 3)).astype(np.float32)
