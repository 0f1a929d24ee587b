"""Model builders: normalisation inside the graph, the Keras 3 -> tf_keras bridge, the Grad-CAM split."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

from facepack.models import beauty, keypoints  # noqa: E402
from facepack.models.common import NORMALIZATION, copy_weights_by_name  # noqa: E402

RNG = np.random.default_rng(0)


def _image_batch(size, n=2):
    return RNG.uniform(0, 255, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("mode,preprocess", [
    ("caffe", lambda x: keras.applications.resnet50.preprocess_input(x.copy())),
    ("tf", lambda x: keras.applications.mobilenet_v2.preprocess_input(x.copy())),
    ("lite", lambda x: (x - 127.0) / 128.0),  # EfficientNet-Lite (official builder's MEAN_RGB / STDDEV_RGB)
])
def test_input_norm_equals_keras_preprocess_input(mode, preprocess):
    from facepack.models.common import input_norm

    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, input_norm(keras, inp, mode))
    x = _image_batch(8)
    assert np.abs(model.predict(x, verbose=0) - preprocess(x)).max() < 1e-4
    assert mode in NORMALIZATION


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "resnet50"])
def test_bridge_keras3_to_tf_keras_is_exact(backbone):
    m3 = beauty.build_beauty_model(keras, backbone, 64)
    m2 = beauty.build_beauty_model(tf_keras, backbone, 64)
    assert copy_weights_by_name(m3, m2) > 50
    x = _image_batch(64)
    assert np.abs(m3.predict(x, verbose=0) - m2.predict(x, verbose=0)).max() < 1e-5


def test_beauty_output_is_a_distribution_over_101_bins():
    m = beauty.build_beauty_model(keras, "mobilenet_v2", 64)
    p = m.predict(_image_batch(64, 3), verbose=0)
    assert p.shape == (3, 101)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert beauty.backbone_layers(m)[0].name != "input_norm"


def test_split_for_gradcam_recomposes_the_model():
    m = beauty.build_beauty_model(keras, "mobilenet_v2", 64)
    feats, head = beauty.split_for_gradcam(keras, m)
    x = _image_batch(64)
    fmap = feats.predict(x, verbose=0)
    assert fmap.shape == (2, 2, 2, 1280)
    assert np.abs(head.predict(fmap, verbose=0) - m.predict(x, verbose=0)).max() < 1e-6


def test_expected_score():
    p = np.zeros((2, 101))
    p[0, 70] = 1.0
    p[1, [40, 60]] = 0.5
    assert beauty.expected_score(p).tolist() == [70.0, 50.0]
    assert beauty.score_to_1to5(70.0) == pytest.approx(3.5)


def test_bad_builder_arguments_name_the_flag():
    with pytest.raises(ValueError, match="--backbone"):
        beauty.build_beauty_model(keras, "vgg16")
    with pytest.raises(ValueError, match="--input-size"):
        beauty.build_beauty_model(keras, "resnet50", 16)
    with pytest.raises(ValueError, match="--format"):
        keypoints.build_keypoint_model(keras, 5)


def test_keypoint_model_shape_size_and_bridge():
    m3 = keypoints.build_keypoint_model(keras, 68)
    assert m3.output.shape[-1] == 136
    assert m3.count_params() * 4 < 1_000_000  # float32 bundle under 1 MB (issue target)
    m2 = keypoints.build_keypoint_model(tf_keras, 68)
    copy_weights_by_name(m3, m2)
    x = _image_batch(96)
    assert np.abs(m3.predict(x, verbose=0) - m2.predict(x, verbose=0)).max() < 1e-5


def test_masked_loss_ignores_missing_points():
    loss = keypoints.masked_keypoint_loss(keras)
    y_true = np.array([[0.5, np.nan, 0.2, 0.3]], dtype="float32")
    y_pred = np.array([[0.6, 123.0, 0.2, 0.3]], dtype="float32")
    # present diffs: 0.1 (>= beta 0.01 -> 0.1 - 0.005), 0, 0 -> sum 0.095 over 3 present
    value = float(keras.ops.convert_to_numpy(loss(y_true, y_pred))[0])
    assert value == pytest.approx(0.095 / 3, rel=1e-5)
    assert np.isfinite(value)
