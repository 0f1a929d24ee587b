"""facepack.data.tfdata: label mapping, pipeline shapes/dtypes/ranges, keypoint crop geometry."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facepack import spec
from facepack.data import tfdata
from facepack.data.images import load_rgb
from facepack.data.keypoints import KeypointData, load_keypoints
from facepack.data.scut import BeautySample, load_scut
from facepack.data.synthetic import make_kaggle15_csv, make_keypoints68_dataset, make_scut_dataset



S = 32  # input size used throughout: small keeps the tests fast


@pytest.fixture(scope="module")
def beauty(tmp_path_factory):
    return load_scut(make_scut_dataset(tmp_path_factory.mktemp("b"), n=20, image_size=48))


@pytest.fixture(scope="module")
def kp68(tmp_path_factory):
    return load_keypoints(make_keypoints68_dataset(tmp_path_factory.mktemp("k"), n=10, image_size=64))


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    return load_keypoints(make_kaggle15_csv(tmp_path_factory.mktemp("c") / "training.csv", n=12))


def _first(ds):
    return [t.numpy() for t in next(iter(ds))]


# --- Labels ---------------------------------------------------------------------------------------
def test_score_to_label():
    assert [spec.score_to_label(s) for s in (1.0, 3.516667, 2.0249, 5.0)] == [20, 70, 40, 100]
    for bad in (0.99, 5.01, float("nan")):
        with pytest.raises(ValueError, match="1..5"):
            spec.score_to_label(bad)


def test_one_hot_labels():
    y = tfdata.beauty_labels([1.0, 3.516667, 5.0])
    assert y.shape == (3, 101) and y.dtype == np.float32
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    assert list(y.argmax(axis=1)) == [20, 70, 100] and y.max() == 1.0


@pytest.mark.parametrize("score", [1.0, 2.37, 3.516667, 4.99, 5.0])
@pytest.mark.parametrize("sigma", [0.7, 2.0, 5.0])
def test_gaussian_labels_sum_to_one_and_peak_at_the_label(score, sigma):
    y = tfdata.gaussian_label(score, sigma)
    assert y.shape == (101,) and y.dtype == np.float32
    assert y.sum() == pytest.approx(1.0, abs=1e-6)
    assert y.argmax() == spec.score_to_label(score)
    if 10 * sigma < score * 20 < 100 - 10 * sigma:  # away from the ends: mean and spread as asked
        bins = np.arange(101)
        mean = (y * bins).sum()
        assert mean == pytest.approx(score * 20, abs=1e-3)
        assert np.sqrt((y * (bins - mean) ** 2).sum()) == pytest.approx(sigma, rel=0.05)


def test_gaussian_labels_reject_bad_input():
    with pytest.raises(ValueError, match="--label-sigma"):
        tfdata.gaussian_label(3.0, 0.0)
    with pytest.raises(ValueError, match="1..5"):
        tfdata.beauty_labels([6.0], 2.0)
    assert tfdata.beauty_labels([3.0, 4.0], 2.0).shape == (2, 101)


# --- Beauty pipeline ------------------------------------------------------------------------------
def test_beauty_eval_batches(beauty):
    x, y = _first(tfdata.beauty_dataset(beauty.test, S, 4, training=False))
    assert x.shape == (4, S, S, 3) and x.dtype == np.float32 and y.shape == (4, 101) and y.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0 and x.std() > 10
    assert list(y.argmax(axis=1)) == [spec.score_to_label(s.score) for s in beauty.test[:4]]
    # The whole image, resized bilinearly (half-pixel centres, no antialias), rounded to uint8.
    ref = tf.image.resize(load_rgb(beauty.test[0].path)[None].astype(np.float32), [S, S],
                          method="bilinear", antialias=False)[0].numpy()
    assert np.abs(x[0] - ref).max() <= 0.5 + 1e-3


def test_beauty_training_batches_are_augmented_and_reproducible(beauty):
    ds = tfdata.beauty_dataset(beauty.train, S, 6, training=True, seed=1, label_sigma=2.0, epochs=2)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(batches) == 4  # 12 training rows, batches of 6, two epochs (none straddles them)
    x, y = batches[0]
    assert x.shape == (6, S, S, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(batches[0][0] - batches[2][0]).max() > 1  # new order/augmentation every epoch
    again = _first(tfdata.beauty_dataset(beauty.train, S, 6, training=True, seed=1, label_sigma=2.0))
    np.testing.assert_array_equal(again[0], batches[0][0])  # reproducible from the seed
    # Epoch e is a pure function of (seed, e): starting at epoch 1 gives the second epoch above
    # exactly (what an exact --resume relies on), whatever ran before in this process.
    second = [x.numpy() for x, _ in tfdata.beauty_dataset(beauty.train, S, 6, training=True, seed=1,
                                                           label_sigma=2.0, first_epoch=1)]
    np.testing.assert_array_equal(np.concatenate(second), np.concatenate([b[0] for b in batches[2:]]))


def test_beauty_training_geometry_is_a_small_jitter_or_flip(beauty):
    """Without photometric jitter every augmented image is close to the plain one or its mirror."""
    one = [beauty.train[0]] * 8
    plain = _first(tfdata.beauty_dataset(one, S, 8, training=False))[0][0]
    x, _ = _first(tfdata.beauty_dataset(one, S, 8, training=True, seed=2, photometric=False))
    other = _first(tfdata.beauty_dataset([beauty.train[1]], S, 1, training=False))[0][0]
    flipped = plain[:, ::-1]
    err = [min(np.abs(a - plain).mean(), np.abs(a - flipped).mean()) for a in x]
    assert max(err) < 0.5 * np.abs(other - plain).mean()  # close to plain or its mirror ...
    assert min(err) > 0.1 and np.abs(plain - flipped).mean() > 1  # ... but not identical
    ring = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)  # (8, 4S, 3) border pixels
    assert not (ring.sum(axis=-1) == 0).any()  # the box stays inside the image: no padded pixels


def test_beauty_dataset_rejects_empty_input():
    with pytest.raises(ValueError, match="no samples"):
        tfdata.beauty_dataset([], S, 4, training=False)


def test_unreadable_image_fails_with_the_file_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    ds = tfdata.beauty_dataset([BeautySample(bad, 3.0)], S, 1, training=False)
    with pytest.raises(Exception, match="bad.jpg: not a readable image"):
        _first(ds)


# --- Keypoint crop geometry -----------------------------------------------------------------------
def test_crop_square_for_points_by_hand():
    pts = np.array([[10, 20], [30, 60], [np.nan, np.nan], [20, 30]], dtype=np.float32)
    # box x 10..30 (w 20), y 20..60 (h 40): side 40 * (1 + 2 * 0.15) = 52 around centre (20, 40)
    x0, y0, side = tfdata.crop_square_for_points(pts)
    assert (x0, y0, side) == pytest.approx((-6.0, 14.0, 52.0))
    assert tfdata.crop_square_for_points(pts, margin=0.0) == pytest.approx((0.0, 20.0, 40.0))
    with pytest.raises(ValueError, match="no keypoint present"):
        tfdata.crop_square_for_points(np.full((3, 2), np.nan))


def _dot_data(size=64, block=1):
    """A black image with a white block whose centre is a keypoint; two corner points fix the crop."""
    img = np.zeros((size, size, 3), np.uint8)
    img[30:30 + block, 20:20 + block] = 255
    c = 20 + block / 2, 30 + block / 2  # continuous centre of the block (pixel edges at integers)
    pts = np.array([[10, 10], [42, 42], c], dtype=np.float32)
    # Three points and no mirror table: fine for the eval path, which never mirrors.
    return KeypointData(images=[img], points=pts[None], format="68", synthetic=True, name="dot")


@pytest.mark.parametrize("out_size,block", [(32, 1), (16, 2)])
def test_a_point_maps_to_the_right_crop_pixel(out_size, block):
    """Square x0 = y0 = 10, side 32 (margin 0): pixel i of the crop has its centre at u = (i + 0.5) / S."""
    data = _dot_data(block=block)
    x, t = _first(tfdata.keypoint_dataset(data, [0], out_size, 1, training=False, margin=0.0))
    u, v = t[0, 4], t[0, 5]
    assert (u, v) == pytest.approx(((20 + block / 2 - 10) / 32, (30 + block / 2 - 10) / 32))
    i, j = u * out_size - 0.5, v * out_size - 0.5
    assert (i, j) == pytest.approx((round(i), round(j)))  # lands on a pixel centre
    row, col = np.unravel_index(np.argmax(x[0, :, :, 0]), x.shape[1:3])
    assert (col, row) == (round(i), round(j)) and x[0, row, col, 0] == pytest.approx(255.0)


def test_crop_box_matches_the_spec_formula():
    x0, y0, side, size, h, w = 3.5, -7.0, 41.0, 24, 50, 70
    got = tfdata._tf_crop_box(tf.constant(x0), tf.constant(y0), tf.constant(side), size, h, w).numpy()
    np.testing.assert_allclose(got, spec.crop_box_to_tf(x0, y0, side, size, h, w), rtol=1e-5)


def test_precrop_gives_the_same_pixels_as_the_whole_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 150, 3), dtype=np.uint8)
    for pts in (np.array([[60, 40], [90, 80]], np.float32), np.array([[2, 3], [40, 50]], np.float32),
                np.array([[120, 90], [149, 119]], np.float32)):
        x0, y0, side = tfdata.crop_square_for_points(pts)
        sub, sub_pts, box = tfdata.precrop(img, pts)
        assert sub.size < img.size or pts[0, 0] < 5
        np.testing.assert_allclose(sub_pts - pts, (box[:2] - [x0, y0])[None].repeat(2, 0), atol=1e-4)
        for scale, dx, dy in [(1.1, 0.05, 0.05), (1.1, -0.05, -0.05), (0.9, 0.05, -0.05), (1.0, 0, 0)]:
            s = side * scale
            cx, cy = x0 + side / 2 + dx * side, y0 + side / 2 + dy * side
            full = tfdata._crop(tf.constant(img), cx - s / 2, cy - s / 2, s, 24).numpy()
            ox, oy = box[0] - x0, box[1] - y0
            part = tfdata._crop(tf.constant(sub), cx - s / 2 + ox, cy - s / 2 + oy, s, 24).numpy()
            np.testing.assert_allclose(part, full, atol=0.02)


# --- Keypoint pipeline ----------------------------------------------------------------------------
def test_keypoint_eval_batches(kp68):
    ds = tfdata.keypoint_dataset(kp68, range(10), S, 4, training=False)
    x, t = _first(ds)
    assert x.shape == (4, S, S, 3) and x.dtype == np.float32 and t.shape == (4, 136) and t.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.std() > 10
    # The points' bounding box sits inside the crop with the spec margin on its long side.
    uv = t.reshape(4, 68, 2)
    lo, hi = uv.min(axis=1), uv.max(axis=1)
    m = spec.KEYPOINTS["crop_margin"] / (1 + 2 * spec.KEYPOINTS["crop_margin"])
    assert np.all(lo >= m - 1e-4) and np.all(hi <= 1 - m + 1e-4)
    np.testing.assert_allclose(np.minimum(lo, 1 - hi).min(axis=1), m, atol=1e-4)
    x0, y0, side = tfdata.crop_square_for_points(kp68.points[0])
    np.testing.assert_allclose(uv[0], (kp68.points[0] - [x0, y0]) / side, atol=1e-5)
    assert sum(int(b[0].shape[0]) for b in ds) == 10


def test_keypoint_training_mirror_and_jitter(kp68):
    perm = spec.MIRROR_PERMUTATION["68"]
    plain = _first(tfdata.keypoint_dataset(kp68, [0], S, 1, training=False))
    ds = tfdata.keypoint_dataset(kp68, [0] * 16, S, 16, training=True, seed=0, jitter=False, photometric=False)
    x, t = _first(ds)
    ref_t = plain[1][0].reshape(68, 2)
    mirrored_t = np.stack([1 - ref_t[:, 0], ref_t[:, 1]], axis=1)[perm]
    flips = 0
    for img, tt in zip(x, t.reshape(16, 68, 2)):
        if np.allclose(tt, ref_t, atol=1e-5):
            np.testing.assert_allclose(img, plain[0][0], atol=1e-3)
        else:
            np.testing.assert_allclose(tt, mirrored_t, atol=1e-5)
            np.testing.assert_allclose(img, plain[0][0][:, ::-1], atol=1e-3)
            flips += 1
    assert 0 < flips < 16
    jittered = _first(tfdata.keypoint_dataset(kp68, [0] * 16, S, 16, training=True, mirror=False))[1]
    spread = jittered.reshape(16, 68, 2).std(axis=0).mean()
    assert 0.005 < spread < 0.1
    assert np.nanmin(jittered) > -0.1 and np.nanmax(jittered) < 1.1


def test_kaggle_nan_targets_are_kept(kaggle):
    idx = list(range(len(kaggle.images)))
    _, t = _first(tfdata.keypoint_dataset(kaggle, idx, S, len(idx), training=False))
    np.testing.assert_array_equal(np.isnan(t), np.isnan(kaggle.points.reshape(len(idx), -1)))
    _, t2 = _first(tfdata.keypoint_dataset(kaggle, idx, S, len(idx), training=True))
    assert np.isnan(t2).sum() == np.isnan(t).sum() > 0
    assert t2.shape == (len(idx), 30)


def test_measure_images_per_second(kp68):
    ds = tfdata.keypoint_dataset(kp68, range(10), S, 4, training=False)
    ips = tfdata.measure_images_per_second(ds, batches=5)
    assert ips > 0
    assert tfdata.measure_images_per_second(ds.take(1), batches=5) == 0.0  # only the warm-up batch


def test_image_squares_as_the_base_crop(kaggle, kp68):
    sq = tfdata.image_squares(kaggle)
    np.testing.assert_array_equal(sq, np.tile([0.0, 0.0, 96.0], (len(kaggle.images), 1)))
    idx = list(range(len(kaggle.images)))
    x, t = _first(tfdata.keypoint_dataset(kaggle, idx, 96, len(idx), training=False, squares=sq))
    np.testing.assert_allclose(x[:, :, :, 0], np.stack(kaggle.images)[..., 0], atol=1e-3)  # whole image, 1:1
    np.testing.assert_allclose(t, kaggle.points.reshape(len(idx), -1) / 96, atol=1e-6)
    w, h = Image.open(kp68.images[0]).size
    side = max(w, h)
    assert tuple(tfdata.image_squares(kp68)[0]) == ((w - side) / 2, (h - side) / 2, side)
    with pytest.raises(ValueError, match="squares must have shape"):
        tfdata.keypoint_dataset(kaggle, idx, 96, 4, training=False, squares=sq[:3])


def test_file_cache(tmp_path, kp68):
    ds = tfdata.keypoint_dataset(kp68, range(4), S, 4, training=False, cache=str(tmp_path / "kp"))
    first = _first(ds)
    assert list(tmp_path.glob("kp*"))  # written to disk
    np.testing.assert_array_equal(_first(ds)[0], first[0])


def test_dataset_squares_frame_incomplete_rows_like_complete_ones(tmp_path):
    from facepack.data.synthetic import make_kaggle15_csv

    full = load_keypoints(make_kaggle15_csv(tmp_path / "full.csv", n=40, partial_fraction=0.0))
    full.points = full.points[~np.isnan(full.points).any(axis=(1, 2))]  # only complete rows
    full.images = full.images[: len(full.points)]
    truth = np.array([tfdata.crop_square_for_points(p) for p in full.points])
    partial = KeypointData(images=full.images, points=full.points.copy(), format="15", synthetic=True)
    keep = [spec.KAGGLE15_NAMES.index(n) for n in ("left_eye_center", "right_eye_center", "nose_tip",
                                                     "mouth_center_bottom_lip")]
    drop = np.setdiff1d(np.arange(15), keep)
    partial.points[10:, drop] = np.nan  # rows 10.. keep only Kaggle's four points
    est = tfdata.dataset_squares(partial)
    np.testing.assert_array_equal(est[:10], truth[:10])  # complete rows: the spec rule
    err = np.abs(est[10:] - truth[10:]) / truth[10:, 2:3]
    assert np.median(err) < 0.06 and err.max() < 0.2  # partial rows: about the same square
    naive = np.array([tfdata.crop_square_for_points(p) for p in partial.points[10:]])
    assert (np.abs(naive - truth[10:]) / truth[10:, 2:3]).max() > 0.3  # what the plain rule would do
    np.testing.assert_array_equal(tfdata.dataset_squares(full), truth)  # nothing missing: unchanged


# --- The crop follows spec.CROP_DOWNSCALE, with facepack/crop.py's numbers (review #5) -----------
# (x0, y0, side) float32-exact squares on a 90 x 110 photo cropped to 16 px: steps 3.75, 1.5 (area),
# just over 1 (area), 1 and 0.5 (bilinear), inside and across the border.
CROP_CASES = [(10.25, 7.5, 60.0), (-12.0, 50.0, 60.0), (80.5, -3.25, 24.0), (30.0, 30.0, 16.0 + 2.0 ** -10),
              (30.0, 30.0, 16.0), (5.5, 70.0, 8.0)]


@pytest.mark.parametrize("downscale", ["area", "bilinear"])
def test_crop_equals_the_library_crop(downscale):
    """tfdata._crop (eager and in a tf.data graph) == facepack.crop.crop_squares, bit for bit."""
    from facepack import crop as crop_lib

    img = np.random.default_rng(5).integers(0, 256, (90, 110, 3), dtype=np.uint8)
    want = crop_lib.crop_squares(img, CROP_CASES, 16, downscale=downscale)
    eager = np.stack([tfdata._crop(tf.constant(img), *sq, 16, downscale=downscale).numpy() for sq in CROP_CASES])
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(CROP_CASES, np.float32)).map(
        lambda sq: tfdata._crop(tf.constant(img), sq[0], sq[1], sq[2], 16, downscale=downscale))
    graph = np.stack([x.numpy() for x in ds])
    np.testing.assert_array_equal(eager, want)
    np.testing.assert_array_equal(graph, want)


def test_crop_default_is_the_spec_downscale(monkeypatch):
    """With no ``downscale`` the crop follows spec.CROP_DOWNSCALE (as the page); a bad mode is refused."""
    from facepack import crop as crop_lib

    img = np.random.default_rng(6).integers(0, 256, (90, 110, 3), dtype=np.uint8)
    sq = CROP_CASES[0]
    for mode in ("area", "bilinear"):
        monkeypatch.setattr(spec, "CROP_DOWNSCALE", mode)
        got = tfdata._crop(tf.constant(img), *sq, 16).numpy()
        np.testing.assert_array_equal(got, crop_lib.crop_squares(img, [sq], 16, downscale=mode)[0])
    area = crop_lib.crop_squares(img, [sq], 16, downscale="area")[0]
    bilinear = crop_lib.crop_squares(img, [sq], 16, downscale="bilinear")[0]
    assert np.abs(area - bilinear).max() > 10.0  # the two modes differ (so the test can tell them apart)
    with pytest.raises(ValueError, match="crop downscale"):
        tfdata._crop(tf.constant(img), *sq, 16, downscale="nearest")
