"""facepack/kaggle.py and predict.py --kaggle-test/--kaggle-lookup on a synthetic file in the competition's layout."""

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facepack import kaggle

ROOT = Path(__file__).resolve().parent.parent
IMAGE_IDS = [2, 7]  # not 1..N: ids are matched, not counted


@pytest.fixture(scope="module")
def competition(tmp_path_factory, fixtures_dir):
    """test.csv (2 grey 96 x 96 images) and IdLookupTable.csv (a subset of features per image, as Kaggle's)."""
    d = tmp_path_factory.mktemp("kaggle")
    face = Image.open(fixtures_dir / "einstein.jpg").convert("L")
    images = [face.crop((100, 150, 700, 750)).resize((96, 96)),
              Image.fromarray(np.full((96, 96), 128, dtype=np.uint8))]  # the last: no face
    with open(d / "test.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ImageId", "Image"])
        for image_id, img in zip(IMAGE_IDS, images):
            w.writerow([image_id, " ".join(str(v) for v in np.asarray(img).reshape(-1))])
    lookup = [(image_id, name) for image_id in IMAGE_IDS for name in kaggle.FEATURES[::image_id]]
    with open(d / "IdLookupTable.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["RowId", "ImageId", "FeatureName", "Location"])
        for row_id, (image_id, name) in enumerate(lookup, start=1):
            w.writerow([row_id, image_id, name, ""])
    return d, lookup


@pytest.fixture(scope="module")
def keypoints15(tmp_path_factory):
    from conftest import make_untrained_run

    return make_untrained_run("keypoints", tmp_path_factory.mktemp("kp15") / "run", num_points=15)


def load_predict():
    spec = importlib.util.spec_from_file_location("predict_cli_kaggle", ROOT / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_submission_has_every_lookup_row_in_order_within_0_to_96(competition, keypoints15, tmp_path):
    d, lookup = competition
    out = tmp_path / "out"
    rc = load_predict().main(["--kaggle-test", str(d / "test.csv"), "--kaggle-lookup", str(d / "IdLookupTable.csv"),
                              "--keypoints", str(keypoints15), "--out", str(out)])
    assert rc == 0
    with open(out / "submission.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["RowId", "Location"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(lookup) + 1))
    locations = np.array([float(r[1]) for r in rows[1:]])
    assert ((locations >= 0) & (locations <= kaggle.SIDE_PX)).all()
    # each Location is the pipeline's point for that image and feature (clipped), to the 4 decimals written
    from facepack.pipeline import FacePipeline
    from facepack.runs import load_run

    ids, images = kaggle.read_test(d / "test.csv")
    points, fallback = kaggle.predict_points(FacePipeline(None, load_run(keypoints15)[0], keypoint_format="15"), images)
    assert fallback >= 1  # the flat grey image has no face
    for (image_id, name), loc in zip(lookup, locations):
        j = kaggle.FEATURES.index(name)
        want = np.clip(points[ids.index(image_id)].reshape(-1)[j], 0, kaggle.SIDE_PX)
        assert loc == pytest.approx(want, abs=1e-4)


def test_locations_are_clipped_to_the_image():
    points = np.full((1, 15, 2), 50.0)
    points[0, 0] = [-3.0, 120.0]
    rows = kaggle.submission_rows([(10, 5, 0), (11, 5, 1), (12, 5, 2)], [5], points)
    assert rows == [(10, 0.0), (11, 96.0), (12, 50.0)]


def test_bad_files_are_refused_with_the_line(competition, tmp_path):
    d, _ = competition
    bad = tmp_path / "lookup.csv"
    bad.write_text("RowId,ImageId,FeatureName,Location\n1,1,left_eye_centre_x,\n")
    with pytest.raises(ValueError, match=r"lookup\.csv: line 2: unknown FeatureName 'left_eye_centre_x'"):
        kaggle.read_lookup(bad, [1])
    bad.write_text("RowId,ImageId,FeatureName,Location\n1,99,left_eye_center_x,\n")
    with pytest.raises(ValueError, match="ImageId 99 is not in the test file"):
        kaggle.read_lookup(bad, [1])
    short = tmp_path / "test.csv"
    short.write_text("ImageId,Image\n1,0 1 2\n")
    with pytest.raises(ValueError, match=r"test\.csv: line 2: Image must hold 96\*96 values"):
        kaggle.read_test(short)


def test_a_68_point_run_is_refused_before_it_loads(competition, untrained_runs, tmp_path, capsys):
    d, _ = competition
    rc = load_predict().main(["--kaggle-test", str(d / "test.csv"), "--kaggle-lookup", str(d / "IdLookupTable.csv"),
                              "--keypoints", str(untrained_runs["keypoints"]), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "15-point" in capsys.readouterr().err


MIRROR_GAP_MIN_PX = 0.01  # an untrained model is not mirror-symmetric: averaging moves its points by more


def test_no_face_fallback_is_mirror_averaged_as_the_spec_default(keypoints15):
    """The whole-image fallback follows spec.KEYPOINTS["mirror_average"] like FacePipeline.analyze."""
    from facepack import pipeline, spec
    from facepack.pipeline import FacePipeline
    from facepack.runs import load_run

    assert spec.KEYPOINTS["mirror_average"] is True  # the shipped default this test pins
    pipe = FacePipeline(None, load_run(keypoints15)[0], keypoint_format="15")
    grey = np.full((1, 96, 96), 128, dtype=np.uint8)  # no face: the fallback
    rgb = np.repeat(grey[0][:, :, None], 3, axis=2)
    whole = [(0.0, 0.0, float(kaggle.SIDE_PX))]
    crops = pipeline.crop_mod.crop_squares(rgb, whole, pipe.keypoint_size)
    mirrored = np.asarray(pipeline.keypoints(pipe.predictor("keypoints"), crops, whole, spec.MIRROR_PERMUTATION["15"])[0])
    direct = np.asarray(pipeline.keypoints(pipe.predictor("keypoints"), crops, whole)[0])
    assert np.abs(mirrored - direct).max() > MIRROR_GAP_MIN_PX
    points, fallback = kaggle.predict_points(pipe, grey)
    assert fallback == 1
    np.testing.assert_allclose(points[0], mirrored, atol=1e-9)
    points_off, _ = kaggle.predict_points(pipe, grey, mirror_keypoints=False)
    np.testing.assert_allclose(points_off[0], direct, atol=1e-9)
