"""facepack.crop: squares, crop_and_resize sampling (half-pixel centres, padding), mapping back."""

import numpy as np
import pytest

from facepack import crop, spec

SAMPLE_TOL = 1e-3  # float32 crop_and_resize on values up to ~100


def coordinate_image(h, w):
    """Pixel (r, c) holds (c + 1, r + 1, 7): linear, so bilinear samples are exact, and 0 = padding."""
    r, c = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([c + 1, r + 1, np.full_like(r, 7)], axis=-1)


def test_face_square_by_hand():
    box = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0}
    # side = 40 * (1 + 2 * 0.25) = 60 around the centre (25, 40)
    assert crop.face_square(box, 0.25) == pytest.approx((-5.0, 10.0, 60.0))
    assert crop.face_square(box, 0.0) == pytest.approx((5.0, 20.0, 40.0))


def test_detector_to_points_box_by_hand():
    box = {"x": 100.0, "y": 50.0, "width": 80.0, "height": 100.0}  # centre (140, 100), side 100
    mapped = crop.detector_to_points_box(box, {"scale": 0.8, "dx": 0.05, "dy": 0.1})
    # side 80 centred at (145, 110)
    assert mapped == pytest.approx({"x": 105.0, "y": 70.0, "width": 80.0, "height": 80.0})
    identity = crop.detector_to_points_box(box, {"scale": 1.0, "dx": 0.0, "dy": 0.0})
    assert crop.face_square(identity, 0.1) == pytest.approx(crop.face_square(box, 0.1))
    for fmt in ("68", "15"):
        m = spec.KEYPOINTS["formats"][fmt]["detector_to_points_box"]
        mapped = crop.detector_to_points_box(box, crop.points_box_mapping(fmt))
        assert mapped["width"] == pytest.approx(100 * m["scale"])
        assert mapped["y"] + mapped["height"] / 2 == pytest.approx(100 + 100 * m["dy"])
    assert crop.detector_to_points_box(box) == crop.detector_to_points_box(box, crop.points_box_mapping("68"))
    with pytest.raises(ValueError, match="'5'"):
        crop.points_box_mapping("5")


def test_tf_crop_boxes_by_hand():
    # square (10, 20, side 8) -> 4 px: steps of 2; first sample 10 + 1 - 0.5 = 10.5, last 16.5
    boxes = crop.tf_crop_boxes([(10.0, 20.0, 8.0)], 4, image_h=51, image_w=101)
    np.testing.assert_allclose(boxes, [[20.5 / 50, 10.5 / 100, 26.5 / 50, 16.5 / 100]], rtol=1e-6)


def test_crop_samples_pixel_centres():
    img = coordinate_image(60, 80)
    x0, y0, side, size = 12.25, 7.5, 30.0, 10
    out = crop.crop_squares(img, [(x0, y0, side)], size)
    assert out.shape == (1, size, size, 3) and out.dtype == np.float32
    i = np.arange(size)
    xs = x0 + (i + 0.5) * side / size - 0.5  # sample position in pixel-index coordinates
    ys = y0 + (i + 0.5) * side / size - 0.5
    np.testing.assert_allclose(out[0, 0, :, 0], xs + 1, atol=SAMPLE_TOL)
    np.testing.assert_allclose(out[0, :, 0, 1], ys + 1, atol=SAMPLE_TOL)


def test_crop_touching_the_border_is_padded_not_shifted():
    h, w = 40, 50
    img = coordinate_image(h, w)
    x0, y0, side, size = -10.0, 25.0, 20.0, 20  # left part and bottom part outside the photo
    out = crop.crop_squares(img, [(x0, y0, side)], size)[0]
    xs = x0 + np.arange(size) + 0.5 - 0.5  # step 1
    ys = y0 + np.arange(size) + 0.5 - 0.5
    inside = ((ys >= 0) & (ys <= h - 1))[:, None] & ((xs >= 0) & (xs <= w - 1))[None, :]
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(out[~inside], spec.CROP_PAD_VALUE)
    expected_x = np.broadcast_to(xs[None, :] + 1, inside.shape)
    np.testing.assert_allclose(out[..., 0][inside], expected_x[inside], atol=SAMPLE_TOL)
    # the photo content stays where it is: crop column 10 is photo column 0
    assert out[0, 10, 0] == pytest.approx(1.0)


def test_crop_pixel_centre_maps_to_the_right_image_point():
    """A lone bright pixel lands on the crop pixel whose centre (i + 0.5) / S maps back onto it."""
    img = np.zeros((50, 50, 3), np.float32)
    r, c = 21, 33
    img[r, c] = 255
    square, size = (c - 5.0, r - 3.0, 16.0), 16  # 1 crop px = 1 photo px
    out = crop.crop_squares(img, [square], size)[0, ..., 0]
    i, j = np.unravel_index(np.argmax(out), out.shape)
    assert out[i, j] == pytest.approx(255)
    x, y = spec.crop_to_image((j + 0.5) / size, (i + 0.5) / size, *square)
    assert (x, y) == pytest.approx((c + 0.5, r + 0.5))  # the centre of pixel (r, c)
    np.testing.assert_allclose(crop.crop_points_to_image([[(j + 0.5) / size, (i + 0.5) / size]], square),
                               [[c + 0.5, r + 0.5]])


def test_crop_points_to_image_by_hand():
    pts = crop.crop_points_to_image(np.array([[0.0, 0.0], [1.0, 1.0], [0.25, 0.5]]), (10.0, 20.0, 40.0))
    np.testing.assert_allclose(pts, [[10, 20], [50, 60], [20, 40]])


def test_no_squares_gives_an_empty_batch():
    out = crop.crop_squares(np.zeros((10, 10, 3), np.uint8), [], 24)
    assert out.shape == (0, 24, 24, 3)
