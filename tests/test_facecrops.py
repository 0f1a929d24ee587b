"""Beauty training crops (facepack/data/facecrops.py + tfdata.beauty_dataset(squares=)) are the
page's crops: the same MTCNN box, the same square rule, the same pixels; boxes are cached."""

import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from facepack.data import facecrops  # noqa: E402
from facepack.data.scut import BeautySample  # noqa: E402

# The training cache stores uint8 crops (rounding: 0.5) from float32 square coordinates (the page
# uses float64 ones: measured +0.0007 on astronaut.png).
CROP_TOL_LEVELS = 0.51  # grey levels (0..255)
SIZE_PX = 64


@pytest.fixture(scope="module")
def photos(tmp_path_factory, fixtures_dir):
    """astronaut.png (one face) and a flat grey photo (no face), in a fresh cache."""
    from PIL import Image

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("facecrops")
    mp.setenv("FACEPACK_CACHE", str(root / "cache"))
    images = root / "Images"
    images.mkdir()
    shutil.copy(fixtures_dir / "astronaut.png", images / "astronaut.png")
    Image.fromarray(np.full((120, 90, 3), 128, np.uint8)).save(images / "grey.png")
    yield [images / "astronaut.png", images / "grey.png"]
    mp.undo()


@pytest.fixture(scope="module")
def squares(photos):
    return facecrops.face_squares(photos, log=None)


def test_square_is_the_pages_beauty_square(photos, squares):
    from facepack import pipeline
    from facepack.data.images import load_rgb
    from facepack.detect.mtcnn_detector import build_detector

    sq, report = squares
    faces = pipeline.detect(build_detector(), load_rgb(photos[0]))
    assert len(faces) >= 1
    np.testing.assert_allclose(sq[0], pipeline.face_square(faces[0]["box"], "beauty"), rtol=0, atol=1e-9)
    assert report["detected"] == 1 and report["fallback_whole_image"] == ["grey.png"]
    # no face: the centred square over the whole 90x120 image
    np.testing.assert_allclose(sq[1], [-15.0, 0.0, 120.0])


def test_boxes_are_cached_not_detected_again(photos, squares, monkeypatch):
    def boom(*_):
        raise AssertionError("detector ran again despite the cache")

    monkeypatch.setattr(facecrops, "_detect", boom)
    again, _ = facecrops.face_squares(photos, log=None)
    np.testing.assert_array_equal(again, squares[0])


def test_training_crop_equals_the_page_crop(photos, squares):
    from facepack import crop as crop_mod
    from facepack.data.images import load_rgb
    from facepack.data.tfdata import beauty_dataset

    sq = squares[0]
    samples = [BeautySample(p, 3.0) for p in photos]
    (images, _), = list(beauty_dataset(samples, SIZE_PX, 8, training=False, squares=sq))
    for i, p in enumerate(photos):
        page = crop_mod.crop_squares(load_rgb(p), [tuple(sq[i])], SIZE_PX)[0]
        assert np.abs(images.numpy()[i] - page).max() <= CROP_TOL_LEVELS
    with pytest.raises(ValueError, match=r"squares must have shape \(2, 3\)"):
        beauty_dataset(samples, SIZE_PX, 8, training=False, squares=sq[:1])
