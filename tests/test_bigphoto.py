"""facepack/bigphoto.py: large photos read by region give the full array's numbers, bit for bit."""

import io

import numpy as np
import pytest
from PIL import Image

from facepack import bigphoto, crop, pipeline, spec
from facepack.data.images import ImageDecodeError, load_rgb
from facepack.detect import mtcnn_detector

# A photo just over spec.DETECT_MAX_SIDE_PX (so detection resizes it) and small enough to be fast.
PHOTO_W, PHOTO_H = 1500, 1100


def _jpeg_bytes(rgb: np.ndarray, orientation: int = 1, quality: int = 90) -> bytes:
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo_rgb(fixtures_dir):
    """A 1500 x 1100 photo with the astronaut (face ~170 x 215 px) on a noisy background (uint8)."""
    rng = np.random.default_rng(0)
    canvas = rng.integers(60, 200, (PHOTO_H, PHOTO_W, 3), dtype=np.uint8)
    face = Image.open(fixtures_dir / "astronaut.png").convert("RGB").resize((1000, 1000))
    canvas[50:1050, 300:1300] = np.asarray(face)
    return canvas


@pytest.fixture(scope="module")
def pipe(untrained_runs):
    return pipeline.FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"])


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory, photo_rgb):
    path = tmp_path_factory.mktemp("big") / "photo.jpg"
    path.write_bytes(_jpeg_bytes(photo_rgb))
    return path


@pytest.fixture()
def region_from_1px(monkeypatch):
    """Every JPEG is read by region (the threshold is lowered for the test)."""
    monkeypatch.setattr(bigphoto, "REGION_MIN_PIXELS", 1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_gather_and_region_follow_exif_orientation(tmp_path, orientation):
    """RegionPhoto.gather equals PIL's exif_transpose of the decoded JPEG, for all 8 orientations."""
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / "o.jpg"
    path.write_bytes(_jpeg_bytes(stored, orientation))
    upright = load_rgb(path)  # the reference: ImageOps.exif_transpose
    img = Image.open(path)
    img.load()
    held = bigphoto.RegionPhoto(img, orientation)  # Pillow's buffer kept
    lazy = bigphoto.RegionPhoto(None, orientation, path=path)  # windows decoded from the file
    assert lazy._window_decoding
    rows, cols = [0, 5, 5, 2, upright.shape[0] - 1], [3, 0, upright.shape[1] - 1, 7]
    for photo in (held, lazy):
        assert photo.shape == upright.shape
        np.testing.assert_array_equal(photo.gather(rows, cols), upright[rows][:, cols])
        np.testing.assert_array_equal(photo.region(4, 2, 30, 19), upright[2:19, 4:30])
    preview, scale = held.preview(max_side=10)
    assert max(preview.shape[:2]) <= 10 and scale == pytest.approx(preview.shape[1] / upright.shape[1])


@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
def test_window_decoding_equals_pillow_full_decode(tmp_path, photo_rgb, subsampling):
    """tf.io.decode_and_crop_jpeg windows (plus margin) equal Pillow's full decode, pixel for pixel."""
    path = tmp_path / "s.jpg"
    Image.fromarray(photo_rgb).save(path, quality=87, subsampling=subsampling)
    full = load_rgb(path)
    photo = bigphoto.RegionPhoto(None, path=path)
    rng = np.random.default_rng(subsampling)
    for _ in range(6):
        y, x = int(rng.integers(0, PHOTO_H - 2)), int(rng.integers(0, PHOTO_W - 2))
        h, w = int(rng.integers(1, min(300, PHOTO_H - y))), int(rng.integers(1, min(300, PHOTO_W - x)))
        np.testing.assert_array_equal(photo.region(x, y, x + w, y + h), full[y:y + h, x:x + w])


def test_detection_image_and_crops_equal_the_full_array_bit_for_bit(big_jpeg, region_from_1px):
    full = load_rgb(big_jpeg)
    photo = bigphoto.open_photo(big_jpeg)
    assert isinstance(photo, bigphoto.RegionPhoto) and photo.shape == full.shape and photo.factor == 1
    assert photo._window_decoding  # faces and detection rows decoded window by window
    image, scale = photo.detection_image()
    ref_image, ref_scale = mtcnn_detector.resize_for_detection(full)
    assert scale == ref_scale and image.dtype == ref_image.dtype
    np.testing.assert_array_equal(image, ref_image)
    # squares inside, across the border (padded) and tiny: crop_and_resize's taps and padding
    squares = [(480.3, 120.7, 760.2), (-90.5, 900.25, 400.0), (1400.0, -20.0, 150.5), (10.0, 10.0, 3.0)]
    for size in (96, 128, 1):
        for downscale in crop.CROP_DOWNSCALE_MODES:  # area crops read only their region
            np.testing.assert_array_equal(photo.crop_squares(squares, size, downscale),
                                          crop.crop_squares(full, squares, size, downscale))
    # pipeline.analyze on the RegionPhoto (detect and crop hooks): tests/test_predict.py
    # test_large_photo_path_gives_the_batch_the_same_results compares whole results


def test_over_the_cap_a_jpeg_is_decoded_at_a_fraction_and_mapped_back(big_jpeg, pipe):
    """Draft decoding at 1/2 (cap below the photo's pixels): the face stays where it is, in photo pixels."""
    photo = bigphoto.open_photo(big_jpeg, max_pixels=PHOTO_W * PHOTO_H // 3)
    assert photo.factor == 2 and photo.shape == (PHOTO_H // 2, PHOTO_W // 2, 3)
    assert photo.original_hw == (PHOTO_H, PHOTO_W)
    ref = pipe.analyze(load_rgb(big_jpeg))
    got = bigphoto.scale_result(pipe.analyze(photo), photo.factor, photo.original_hw)
    assert got["image"] == {"width": PHOTO_W, "height": PHOTO_H} and got["decode_factor"] == 2
    assert len(got["faces"]) == len(ref["faces"]) >= 1
    b, rb = got["faces"][0]["box"], ref["faces"][0]["box"]
    # A half-resolution detection: P-Net's pyramid levels fall on other face scales (1280 vs 750
    # detection px), so MTCNN's box moves by a few % of its size. Measured with the 30-px pyramid
    # start (this photo, pipeline.detect of load_rgb vs of the 1/2 draft + scale_result, per
    # {"patch_resize": ...}, c3d820f): 4.4 % of a 174-px box with
    # bilinear R/O-Net patches, 4.7 % of a 165-px box with area patches (the default since de748a3).
    # A wrong mapping back would be off by ~50 %; 10 % keeps 2x margin over the measured 4.7 %.
    tol = 0.10 * rb["width"]
    assert all(abs(b[k] - rb[k]) < tol for k in ("x", "y", "width", "height")), (b, rb)


def test_over_the_cap_other_formats_are_refused_with_one_line(tmp_path, photo_rgb):
    path = tmp_path / "big.png"
    Image.fromarray(photo_rgb).save(path)
    with pytest.raises(ImageDecodeError, match=r"big\.png: 1500 x 1100 = 1\.6 MP is over the decode cap of 1\.0 MP"):
        bigphoto.open_photo(path, max_pixels=1_000_000)
    assert isinstance(bigphoto.open_photo(path), np.ndarray)  # under the cap: the array, as before


def test_pillow_bomb_limit_is_replaced_by_the_cap(big_jpeg, monkeypatch, recwarn):
    """Pillow's own limit (warning, then error at 2x) does not apply; ours is checked instead."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert bigphoto.open_photo(big_jpeg).shape == (PHOTO_H, PHOTO_W, 3)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored


def test_small_and_unreadable_files_go_through_load_rgb(tmp_path, fixtures_dir):
    assert isinstance(bigphoto.open_photo(fixtures_dir / "einstein.jpg"), np.ndarray)
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageDecodeError, match="x.jpg"):
        bigphoto.open_photo(bad)
    assert spec.DETECT_MAX_SIDE_PX < PHOTO_W  # the tests above exercise the detection resize


@pytest.mark.parametrize("band_bytes, decodes", [(bigphoto.AREA_BAND_BYTES, 1), (300 * 800 * 3, 3)])
def test_an_area_crop_decodes_its_square_once_per_band(big_jpeg, region_from_1px, monkeypatch, band_bytes, decodes):
    """A 760-px square (rows 120..881: 3 of area_crop's 256-row blocks) is one window decode with
    the default band (was one per block, review #27), and with 300-row bands 3 decodes; the crop
    equals the full array's bit for bit either way."""
    monkeypatch.setattr(bigphoto, "AREA_BAND_BYTES", band_bytes)
    full = load_rgb(big_jpeg)
    photo = bigphoto.open_photo(big_jpeg)
    assert photo._window_decoding
    photo.region(0, 0, 1, 1)  # the file read and checked (its one-off last-pixel decode)
    calls = []
    decode = photo._decode_window
    monkeypatch.setattr(photo, "_decode_window", lambda *a: calls.append(a) or decode(*a))
    square = (480.3, 120.7, 760.2)
    got = photo.crop_squares([square], 96, "area")
    assert len(calls) == decodes, calls
    np.testing.assert_array_equal(got, crop.crop_squares(full, [square], 96, "area"))
