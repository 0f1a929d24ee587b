"""facepack.data.annotations: each annotation format <-> continuous pixels (spec.PIXEL_CONVENTION).

Each format gets a small generated file: a point on the centre of 0-based pixel (i, j) must read as
(i + 0.5, j + 0.5) whatever the format stores, and write -> read must give the same points back.
"""

import csv

import numpy as np
import pytest

from facepack import spec
from facepack.data import annotations as A
from facepack.data.keypoints import load_kaggle15, load_keypoints68

# Pixel (column 10, row 20), 0-based; its centre in facepack's continuous coordinates:
PIXEL = (10, 20)
CENTRE = (10.5, 20.5)
ROUND_TRIP_PX = 1e-6  # write -> read (files keep 6 decimals or repr floats)


def _points(n, seed=0):
    return np.random.default_rng(seed).uniform(5, 90, (n, 2))


def test_every_format_states_its_offset_and_the_convention_is_half_pixel_centres():
    assert spec.PIXEL_CONVENTION["pixel_centre"] == 0.5
    assert {f: A.offset(f) for f in A.FORMATS} == {"pts": -0.5, "dlib_xml": 0.5, "youtube_faces_csv": 0.0,
                                                   "kaggle15": 0.0}
    with pytest.raises(ValueError, match="annotation format must be one of"):
        A.offset("csv")


def test_pts_is_one_based(tmp_path):
    path = tmp_path / "face.pts"
    # iBUG's 1-based file: the centre of 0-based pixel (10, 20) is stored as (11, 21).
    path.write_text("version: 1\nn_points:  2\n{\n11 21\n1.000000 1.000000\n}\n")
    np.testing.assert_allclose(A.read_pts(path), [CENTRE, (0.5, 0.5)])
    pts = _points(68)
    np.testing.assert_allclose(A.read_pts(A.write_pts(tmp_path / "rt.pts", pts)), pts, atol=ROUND_TRIP_PX)
    text = (tmp_path / "rt.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"
    assert float(text[3].split()[0]) == pytest.approx(pts[0, 0] + 0.5, abs=1e-6)


def test_pts_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.pts"
    bad.write_text("version: 1\nn_points: 2\n{\n1 2\nx 3\n}\n")
    with pytest.raises(A.AnnotationError, match=r"bad.pts:5: expected 'x y'"):
        A.read_pts(bad)
    bad.write_text("version: 1\nn_points: 3\n{\n1 2\n}\n")
    with pytest.raises(A.AnnotationError, match="n_points says 3 but the file holds 1"):
        A.read_pts(bad)


def test_einstein_fixture_reads_as_68_points_inside_the_photo():
    from pathlib import Path

    pts = A.read_pts(Path(__file__).parent / "fixtures" / "einstein.pts")
    assert pts.shape == (68, 2)
    # the stored first point is (357.417253, 308.455774); continuous = stored - 0.5
    np.testing.assert_allclose(pts[0], (356.917253, 307.955774), atol=1e-9)


def test_dlib_xml_points_are_pixel_indices_boxes_are_edges(tmp_path):
    path = tmp_path / "faces.xml"
    path.write_text("<?xml version='1.0' encoding='ISO-8859-1'?>\n<dataset><images>"
                    "<image file='a.jpg'><box top='5' left='7' width='30' height='40'>"
                    "<part name='00' x='10' y='20'/><part name='02' x='0' y='0'/></box></image>"
                    "</images></dataset>\n")
    (item,) = A.read_dlib_xml(path)
    assert item["file"] == "a.jpg" and item["box"] == {"x": 7.0, "y": 5.0, "width": 30.0, "height": 40.0}
    np.testing.assert_allclose(item["points"][[0, 2]], [CENTRE, (0.5, 0.5)])
    assert np.isnan(item["points"][1]).all()
    # round trip: dlib stores integer pixel indices, so pixel centres survive exactly
    centres = np.floor(_points(68, 1)) + 0.5
    centres[3] = np.nan
    items = [{"file": "b.png", "box": {"x": 1, "y": 2, "width": 50, "height": 60}, "points": centres}]
    (back,) = A.read_dlib_xml(A.write_dlib_xml(tmp_path / "rt.xml", items))
    np.testing.assert_array_equal(back["points"], centres)
    assert back["box"] == {"x": 1.0, "y": 2.0, "width": 50.0, "height": 60.0} and back["file"] == "b.png"


def test_youtube_faces_csv_is_read_as_stored_and_the_loader_agrees(tmp_path):
    from PIL import Image

    (tmp_path / "training").mkdir()
    pts = _points(68 * 2, 2).reshape(2, 68, 2)
    pts[0, 0] = PIXEL
    names = ["Some_Person_01.jpg", "Other_Person_12.jpg"]
    for name in names:
        Image.new("RGB", (100, 100), (90, 90, 90)).save(tmp_path / "training" / name, "JPEG")
    path = A.write_youtube_faces_csv(tmp_path / "training_frames_keypoints.csv", names, pts)
    read_names, back = A.read_youtube_faces_csv(path)
    assert read_names == names
    np.testing.assert_allclose(back, pts, atol=ROUND_TRIP_PX)
    np.testing.assert_allclose(back[0, 0], PIXEL)  # offset 0: stored = continuous (see spec)
    loaded = load_keypoints68(path)
    np.testing.assert_allclose(loaded.points, pts, atol=1e-4)  # float32


def test_kaggle15_round_trip_through_the_loader(tmp_path):
    rng = np.random.default_rng(3)
    pts = rng.uniform(10, 85, (3, 15, 2))
    pts[0, 0] = PIXEL
    pts[1, 4:] = np.nan
    images = rng.integers(0, 256, (3, 96, 96), dtype=np.uint8)
    path = A.write_kaggle15_csv(tmp_path / "training.csv", pts, images)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][:2] == [repr(float(PIXEL[0])), repr(float(PIXEL[1]))]  # offset 0: stored as given
    assert rows[2][8:10] == ["", ""]  # missing points are empty cells
    d = load_kaggle15(path)
    np.testing.assert_allclose(d.points, pts, atol=1e-4)
    np.testing.assert_array_equal(d.images[2][..., 0], images[2])
