"""facepack.gradcam: exact values on a hand-checkable model, properties on the untrained beauty run."""

import keras
import numpy as np
import pytest

from facepack import crop, gradcam, spec
from facepack.data.images import load_rgb
from facepack.models.beauty import split_for_gradcam
from facepack.runs import load_run

CAM_TOL = 1e-5
ASTRONAUT_FACE_SQUARE = (150.0, 40.0, 150.0)  # around the face MTCNN finds at (182, 64, 83, 107)


def tiny_beauty_model(head_scale=0.02, seed=0, size=8, channels=4):
    """image -> conv -> "features" -> "pool" (GAP) -> "scores" (Dense 101 softmax), like the real one.

    head_scale keeps the logits within a few units: a saturated softmax would make the float32
    gradient mostly rounding error and the comparison with float64 meaningless.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(channels, 3, padding="same", name="conv")(inputs)
    feats = keras.layers.Activation("linear", name="features")(x)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(feats)
    outputs = keras.layers.Dense(spec.BEAUTY["bins"], activation="softmax", name="scores")(y)
    model = keras.Model(inputs, outputs)
    w, b = model.get_layer("scores").get_weights()
    rng = np.random.default_rng(seed)
    model.get_layer("scores").set_weights([(rng.normal(0, 1, w.shape) * head_scale).astype("float32"), b])
    return model


def numpy_gradcam(model, x):
    """Grad-CAM written out by hand (float64): d(sum_i p_i i)/dA through GAP + Dense + softmax."""
    features_model, _ = split_for_gradcam(keras, model)
    A = np.asarray(features_model([x]), dtype=np.float64)  # (N, h, w, C)
    W, b = (np.asarray(v, np.float64) for v in model.get_layer("scores").get_weights())
    bins = np.arange(W.shape[1], dtype=np.float64)
    z = A.mean(axis=(1, 2)) @ W + b
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    s = p @ bins
    ds_da = (p * (bins - s[:, None])) @ W.T  # (N, C)
    weights = ds_da / (A.shape[1] * A.shape[2])  # dS/dA is spatially constant; its mean is itself
    cam = np.maximum((A * weights[:, None, None, :]).sum(-1), 0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return cam / np.where(peak > 0, peak, 1)


@pytest.fixture(scope="session")
def tiny():
    model = tiny_beauty_model()
    return model, split_for_gradcam(keras, model)


@pytest.fixture(scope="session")
def untrained_beauty(untrained_runs):
    model, _ = load_run(untrained_runs["beauty"])
    return model, split_for_gradcam(keras, model)


@pytest.fixture(scope="session")
def face_crops(fixtures_dir, untrained_beauty):
    size = untrained_beauty[0].input_shape[1]
    rgb = load_rgb(fixtures_dir / "astronaut.png")
    return crop.crop_squares(rgb, [ASTRONAUT_FACE_SQUARE], size)


def test_grid_equals_the_hand_computation(tiny):
    model, (features_model, head_model) = tiny
    x = np.random.default_rng(1).uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    got = gradcam.gradcam_grid(features_model, head_model, x)
    want = numpy_gradcam(model, x)
    assert got.shape == (3, 8, 8)
    assert (want.max(axis=(1, 2)) == 1).all()  # the example is not degenerate
    np.testing.assert_allclose(got, want, atol=CAM_TOL)


def test_a_flat_head_gives_an_all_zero_map_not_nan():
    model = tiny_beauty_model(head_scale=0.0)
    features_model, head_model = split_for_gradcam(keras, model)
    got = gradcam.gradcam_grid(features_model, head_model, np.full((1, 8, 8, 3), 100, np.float32))
    assert np.isfinite(got).all() and (got == 0).all()


def test_properties_on_the_beauty_model(untrained_beauty, face_crops):
    model, (features_model, head_model) = untrained_beauty
    maps = gradcam.gradcam(features_model, head_model, face_crops)
    grid, up = maps["grid"], maps["crop"]
    fh, fw = features_model.output_shape[1:3]
    size = face_crops.shape[1]
    assert grid.shape == (1, fh, fw) and up.shape == (1, size, size)
    assert (grid >= 0).all() and grid.max() == pytest.approx(1.0)
    assert (up >= 0).all() and up.max() <= 1.0 + 1e-6


def test_masking_the_face_changes_the_map(untrained_beauty, face_crops):
    _, (features_model, head_model) = untrained_beauty
    masked = face_crops.copy()
    s = masked.shape[1]
    masked[:, s // 4: 3 * s // 4, s // 4: 3 * s // 4] = 128.0
    a = gradcam.gradcam_grid(features_model, head_model, face_crops)
    b = gradcam.gradcam_grid(features_model, head_model, masked)
    assert np.abs(a - b).max() > 1e-3


def test_upsample_is_bilinear_half_pixel():
    grid = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    # output column j samples grid column (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped)
    np.testing.assert_allclose(gradcam.upsample(grid, 4)[0], [0.0, 0.25, 0.75, 1.0], atol=1e-6)
    assert gradcam.upsample(np.zeros((0, 2, 2)), 4).shape == (0, 4, 4)


def test_place_in_image_covers_the_square_only():
    crop_map = np.ones((8, 8), np.float32)
    placed = gradcam.place_in_image(crop_map, (10.0, 5.0, 20.0), 40, 50)
    assert placed.shape == (40, 50)
    assert placed[5:25, 10:30].min() == 1.0
    assert placed.sum() == 20 * 20
    # partly outside the photo: no error, clipped
    edge = gradcam.place_in_image(crop_map, (-10.0, 30.0, 20.0), 40, 50)
    assert edge.sum() == 10 * 10


def test_place_in_image_follows_the_crop_rule():
    """A crop map that is hot in one crop pixel lights the photo pixels that crop pixel sampled."""
    size = 8
    crop_map = np.zeros((size, size), np.float32)
    crop_map[2, 5] = 1.0
    square = (16.0, 8.0, 16.0)  # 2 photo px per crop px: crop pixel (2, 5) covers rows 12-13, cols 26-27
    placed = gradcam.place_in_image(crop_map, square, 40, 50)
    r, c = np.unravel_index(np.argmax(placed), placed.shape)
    assert r in (12, 13) and c in (26, 27)


def test_heatmap_record_is_json_ready():
    import json

    rec = gradcam.heatmap_record(np.ones((2, 2), np.float32), (1.0, 2.0, 3.0), 64)
    assert json.loads(json.dumps(rec)) == {"grid": [[1.0, 1.0], [1.0, 1.0]], "crop_size": 64,
                                           "square": {"x": 1.0, "y": 2.0, "side": 3.0}}


def test_compiled_equals_eager(untrained_beauty, face_crops):
    _, (features_model, head_model) = untrained_beauty
    compiled = gradcam.compile_relu_cam(features_model, head_model)
    batch = np.concatenate([face_crops, face_crops[:, ::-1]])  # any batch size, one trace
    np.testing.assert_allclose(gradcam.gradcam_grid(features_model, head_model, batch, compiled),
                               gradcam.gradcam_grid(features_model, head_model, batch), atol=1e-5)
