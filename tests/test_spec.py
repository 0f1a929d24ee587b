"""The one spec: values, pure functions, and the manifest copy."""

import json

import numpy as np
import pytest

from facepack import spec


def test_spec_dict_is_json_and_complete():
    d = json.loads(json.dumps(spec.spec_dict()))
    assert d["beauty"]["bins"] == 101
    assert d["mtcnn"]["scale_factor"] == spec.MTCNN["scale_factor"]
    assert d["keypoints"]["input_size_px"] == spec.KEYPOINTS["input_size_px"]
    assert len(d["mirror_permutation"]["68"]) == 68
    assert d["landmarks5"] == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]


@pytest.mark.parametrize("fmt", ["68", "15"])
def test_mirror_permutation_is_an_involution(fmt):
    perm = np.array(spec.MIRROR_PERMUTATION[fmt])
    assert sorted(perm) == list(range(len(perm)))
    assert (perm[perm] == np.arange(len(perm))).all()


def test_mirror_permutation_68_known_pairs():
    perm = spec.MIRROR_PERMUTATION["68"]
    assert perm[36] == 45 and perm[0] == 16 and perm[48] == 54 and perm[31] == 35
    for fixed in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert perm[fixed] == fixed


def test_mirror_permutation_15_swaps_names():
    perm = spec.MIRROR_PERMUTATION["15"]
    names = spec.KAGGLE15_NAMES
    assert names[perm[names.index("left_eye_outer_corner")]] == "right_eye_outer_corner"
    assert perm[names.index("nose_tip")] == names.index("nose_tip")


def test_square_box_centres_and_grows():
    x0, y0, side = spec.square_box(10, 20, 40, 60, margin=0.25)
    assert side == pytest.approx(90.0)  # max(40, 60) * 1.5
    assert (x0 + side / 2, y0 + side / 2) == pytest.approx((30.0, 50.0))


def test_crop_box_to_tf_samples_half_pixel_centres():
    # A square exactly covering a 100x100 image at output 100 must sample pixel centres 0..99,
    # i.e. the normalised box [0, 0, 1, 1].
    assert spec.crop_box_to_tf(0, 0, 100, 100, 100, 100) == pytest.approx((0, 0, 1, 1))
    # Output 50 over the same square: samples at 0.5, 2.5, ..., 98.5 (pixel units).
    y1, x1, y2, x2 = spec.crop_box_to_tf(0, 0, 100, 50, 100, 100)
    assert y1 * 99 == pytest.approx(0.5) and y2 * 99 == pytest.approx(98.5)


def test_crop_box_matches_tf_resize():
    tf = pytest.importorskip("tensorflow")
    img = np.random.default_rng(0).uniform(0, 255, (1, 40, 40, 3)).astype("float32")
    box = spec.crop_box_to_tf(0, 0, 40, 20, 40, 40)
    crop = tf.image.crop_and_resize(img, [box], [0], (20, 20)).numpy()
    ref = tf.image.resize(img, (20, 20), method="bilinear", antialias=False).numpy()  # half-pixel centres
    assert np.abs(crop - ref).max() < 1e-3


def test_crop_to_image_inverts_the_crop():
    x0, y0, side = 10.0, 20.0, 64.0
    assert spec.crop_to_image(0.5, 0.25, x0, y0, side) == pytest.approx((42.0, 36.0))


def test_score_to_label():
    assert spec.score_to_label(1.0) == 20 and spec.score_to_label(5.0) == 100
    assert spec.score_to_label(3.516667) == 70
    for bad in (0.99, 5.01, float("nan")):
        with pytest.raises(ValueError, match="1..5"):
            spec.score_to_label(bad)


def test_detect_scale():
    assert spec.detect_scale(1000, 800) == 1.0
    assert spec.detect_scale(2560, 1000) == pytest.approx(spec.DETECT_MAX_SIDE_PX / 2560)
