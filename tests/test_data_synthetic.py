"""facepack.data.synthetic: generated datasets are in the real layouts, flagged, and meaningful."""

import json

import numpy as np
import pytest

from facepack import spec
from facepack.data.errors import MARKER
from facepack.data.images import load_rgb
from facepack.data.keypoints import load_keypoints
from facepack.data.scut import load_scut
from facepack.data.synthetic import (beauty_score, ensure_synthetic, ibug68_to_kaggle15, make_kaggle15_csv,
                                     make_keypoints68_dataset, make_scut_dataset, template68)


def test_scut_release_layout_files(tmp_path):
    root = make_scut_dataset(tmp_path / "s", n=20, image_size=32)
    tt = root / "train_test_files"
    assert len((tt / "All_labels.txt").read_text().splitlines()) == 20
    split = tt / "split_of_60%training and 40%testing"
    assert len((split / "train.txt").read_text().splitlines()) == 12
    assert len((split / "test.txt").read_text().splitlines()) == 8
    for k in range(1, 6):
        fold = tt / "5_folders_cross_validations_files" / f"cross_validation_{k}"
        assert (fold / f"train_{k}.txt").is_file() and (fold / f"test_{k}.txt").is_file()
    assert len(list((root / "Images").glob("*.jpg"))) == 20
    info = json.loads((root / MARKER).read_text())
    assert info["synthetic"] is True and info["kind"] == "beauty"
    assert "SYNTHETIC" in (root / "README.txt").read_text()
    assert load_scut(root).synthetic


def test_scut_reduced_layout(tmp_path):
    root = make_scut_dataset(tmp_path / "r", n=12, image_size=32, layout="reduced")
    assert not (root / "train_test_files").exists() and (root / "train.txt").is_file()
    d = load_scut(root)
    assert d.layout == "reduced" and d.synthetic and len(d.train) == 12
    with pytest.raises(ValueError, match="layout must be"):
        make_scut_dataset(tmp_path / "x", layout="zip")


def test_generation_is_deterministic_per_seed(tmp_path):
    a = make_scut_dataset(tmp_path / "a", n=10, seed=3, image_size=32, layout="reduced")
    b = make_scut_dataset(tmp_path / "b", n=10, seed=3, image_size=32, layout="reduced")
    c = make_scut_dataset(tmp_path / "c", n=10, seed=4, image_size=32, layout="reduced")
    assert (a / "train.txt").read_text() == (b / "train.txt").read_text() != (c / "train.txt").read_text()
    np.testing.assert_array_equal(load_rgb(a / "Images/synth_0001.jpg"), load_rgb(b / "Images/synth_0001.jpg"))


def test_beauty_score_is_smooth_monotone_and_on_1_to_5():
    grid = np.linspace(0, 1, 11)
    s = beauty_score(grid, 1.0, 1.0)
    assert np.all(np.diff(s) > 0) and np.all(np.diff(s) < 0.5)
    assert np.all(np.diff(beauty_score(0.5, np.linspace(0.7, 1.4, 8), 1.0)) > 0)
    assert np.all(np.diff(beauty_score(0.5, 1.0, np.linspace(0.7, 1.3, 8))) > 0)
    extremes = beauty_score(np.array([0.0, 1.0]), np.array([0.7, 1.4]), np.array([0.7, 1.3]))
    assert 1.0 <= extremes[0] < 2.0 and 4.0 < extremes[1] <= 5.0


def test_scores_are_visible_in_the_images(tmp_path):
    """Skin brightness (the strongest feature) read from the face centre tracks the label."""
    root = make_scut_dataset(tmp_path / "v", n=60, image_size=48, layout="reduced")
    d = load_scut(root)
    centre = [np.median(load_rgb(s.path)[20:28, 14:34].mean(axis=2)) for s in d.train]
    scores = [s.score for s in d.train]
    assert np.corrcoef(centre, scores)[0, 1] > 0.6
    assert 0.4 < np.std(scores) < 1.2 and 2.5 < np.mean(scores) < 3.5


def test_keypoints68_dataset_draws_features_at_the_points(tmp_path):
    root = make_keypoints68_dataset(tmp_path / "k", n=8, image_size=96)
    d = load_keypoints(root)
    assert d.format == "68" and d.synthetic and d.points.shape == (8, 68, 2)
    for path, pts in zip(d.images, d.points):
        img = load_rgb(path).astype(int)
        for eye in (pts[36:42], pts[42:48]):  # the pupil is drawn dark at the eye's centre
            x, y = eye.mean(axis=0)
            assert img[int(y), int(x)].max() < 90
        x, y = pts[48:60].mean(axis=0)  # lips: red dominates
        r, g, b = img[int(y), int(x)]
        assert r > g + 20 or r < 90  # red lip or the dark mouth opening
    kinds = {p.read_bytes()[:4] == b"\x89PNG" for p in d.images}
    assert kinds == {True, False}  # some RGBA PNGs behind .jpg names, some JPEGs


def test_kaggle15_csv_has_missing_points(tmp_path):
    path = make_kaggle15_csv(tmp_path / "kg" / "training.csv", n=30)
    d = load_keypoints(path)
    assert d.format == "15" and d.synthetic and d.points.shape == (30, 15, 2)
    always = [spec.KAGGLE15_NAMES.index(n) for n in ("left_eye_center", "right_eye_center", "nose_tip",
                                                      "mouth_center_bottom_lip")]
    assert not np.isnan(d.points[:, always]).any()
    assert np.isnan(d.points).any(axis=(1, 2)).sum() >= 5
    eyes = d.points[:, :2, 0]  # the subject's left eye is on the image's right
    assert np.all(eyes[:, 0] > eyes[:, 1])


def test_template_is_symmetric_and_in_ibug_order():
    t = template68()
    assert t[36, 0] < t[39, 0] < 0 < t[42, 0] < t[45, 0]  # right eye (image left) then left eye
    assert t[8, 1] == pytest.approx(1.0) and t[8, 0] == pytest.approx(0.0)  # chin
    assert t[0, 0] == pytest.approx(-1.0) and t[16, 0] == pytest.approx(1.0)
    k = ibug68_to_kaggle15(t)
    assert k.shape == (15, 2) and k[0, 0] > 0 > k[1, 0]


def test_ensure_synthetic_generates_once_and_returns_loadable_paths(tmp_path):
    root = ensure_synthetic("beauty", root=tmp_path, n=10, image_size=32)
    stamp = (root / MARKER).stat().st_mtime_ns
    assert ensure_synthetic("beauty", root=tmp_path, n=10, image_size=32) == root
    assert (root / MARKER).stat().st_mtime_ns == stamp  # reused, not regenerated
    assert ensure_synthetic("beauty", root=tmp_path, n=11, image_size=32) != root
    assert load_scut(root).synthetic
    kp = ensure_synthetic("keypoints68", root=tmp_path, n=5, image_size=48)
    assert load_keypoints(kp).synthetic
    csv_path = ensure_synthetic("kaggle15", root=tmp_path, n=5)
    assert csv_path.name == "training.csv" and load_keypoints(csv_path).format == "15"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    with pytest.raises(ValueError, match="kind must be one of"):
        ensure_synthetic("faces", root=tmp_path)
