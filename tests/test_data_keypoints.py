"""facepack.data.keypoints: the 68-point CSV and Kaggle's 15-point CSV, bad rows, mirror table."""

import csv
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from facepack import spec
from facepack.data.errors import MARKER
from facepack.data.images import load_rgb
from facepack.data.keypoints import (KAGGLE15_COLUMNS, DatasetError, detect_format, load_kaggle15,
                                     load_keypoints, load_keypoints68)
from facepack.data.synthetic import (ibug68_to_kaggle15, make_kaggle15_csv, make_keypoints68_dataset,
                                     template68)

N68, N15 = 12, 20



@pytest.fixture(scope="session")
def kp68(tmp_path_factory):
    return make_keypoints68_dataset(tmp_path_factory.mktemp("kp68"), n=N68, image_size=64)


@pytest.fixture(scope="session")
def kaggle(tmp_path_factory):
    return make_kaggle15_csv(tmp_path_factory.mktemp("kaggle") / "training.csv", n=N15)


def _rows(csv_path):
    with open(csv_path, newline="") as f:
        return list(csv.reader(f))


# --- 68 points ------------------------------------------------------------------------------------
def test_load_68_from_folder_and_csv(kp68):
    d = load_keypoints(kp68)
    assert (d.format, d.synthetic, len(d.images)) == ("68", True, N68)
    assert d.points.shape == (N68, 68, 2) and d.points.dtype == np.float32
    assert all(p.parent == kp68 / "training" and p.is_file() for p in d.images)
    rows = _rows(kp68 / "training_frames_keypoints.csv")
    assert d.images[3].name == rows[4][0]
    np.testing.assert_allclose(d.points[3].reshape(-1), np.array(rows[4][1:], float), atol=1e-4)
    same = load_keypoints(kp68 / "training_frames_keypoints.csv")
    np.testing.assert_array_equal(same.points, d.points)
    assert detect_format(kp68 / "training_frames_keypoints.csv") == "68"


def test_rgba_pngs_behind_jpg_names_decode_to_rgb(kp68):
    d = load_keypoints68(kp68 / "training_frames_keypoints.csv")
    pngs = [p for p in d.images if p.read_bytes()[:4] == b"\x89PNG"]
    assert pngs and all(p.suffix == ".jpg" for p in pngs)
    assert Image.open(pngs[0]).mode == "RGBA"
    assert load_rgb(pngs[0]).shape[2] == 3


def test_real_68_data_is_not_flagged_synthetic(tmp_path, kp68):
    root = tmp_path / "real"
    shutil.copytree(kp68, root)
    (root / MARKER).unlink()
    d = load_keypoints(root)
    assert not d.synthetic and "68" in d.name


def _bad68(tmp_path, kp68, mutate):
    """Copy the 68-point dataset and rewrite row 2 (CSV line 3) with ``mutate(row)``."""
    root = tmp_path / "bad68"
    shutil.copytree(kp68, root)
    csv_path = root / "training_frames_keypoints.csv"
    rows = _rows(csv_path)
    rows[2] = mutate(list(rows[2]))
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    (root / "training" / "broken.jpg").write_bytes(b"garbage")
    from test_data_scut import _truncated_jpeg

    _truncated_jpeg(root / "training" / "cut.jpg")
    return csv_path


BAD68 = {
    "wrong column count": (lambda r: r[:-2], r"wrong column count: expected 137 \(file name \+ 136 coordinates\), got 135"),
    "unparsable coordinate": (lambda r: r[:5] + ["12,5"] + r[6:], r"coordinate 4 = '12,5' is not a number"),
    "missing image": (lambda r: ["nobody.jpg"] + r[1:], r"image nobody.jpg not found"),
    "unreadable image": (lambda r: ["broken.jpg"] + r[1:], r"image broken.jpg is not a readable image"),
    "no keypoints": (lambda r: r[:1] + [""] * 136, r"no keypoint present"),
    "truncated image": (lambda r: ["cut.jpg"] + r[1:], r"image cut.jpg is not a readable image \(OSError: image file is truncated"),
    "absolute path": (lambda r: ["/etc/hostname"] + r[1:], r"file name '/etc/hostname' points outside the image folder"),
    "path climbing out": (lambda r: ["../training_frames_keypoints.csv"] + r[1:], r"points outside the image folder"),
}


@pytest.mark.parametrize("case", sorted(BAD68))
def test_bad_68_rows_name_file_and_line(tmp_path, kp68, case):
    mutate, message = BAD68[case]
    csv_path = _bad68(tmp_path, kp68, mutate)
    with pytest.raises(DatasetError, match=rf"training_frames_keypoints.csv:3: .*{message}"):
        load_keypoints(csv_path.parent)
    d = load_keypoints(csv_path.parent, skip_bad=True)
    assert len(d.images) == N68 - 1 and len(d.problems) == 1
    assert re.search(rf":3: .*{message}", d.problems[0])


def test_missing_68_coordinates_are_nan_not_filled(tmp_path, kp68):
    csv_path = _bad68(tmp_path, kp68, lambda r: r[:1] + ["", ""] + r[3:])  # point 0 missing
    d = load_keypoints(csv_path)
    assert np.isnan(d.points[1, 0]).all() and not np.isnan(d.points[1, 1:]).any()


def test_wrong_header_is_reported(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DatasetError, match=r"x.csv:1: unknown keypoint CSV header"):
        load_keypoints(bad)
    with pytest.raises(DatasetError, match=r"x.csv:1: expected the 68-point header"):
        load_keypoints68(bad)


# --- Kaggle 15 points ----------------------------------------------------------------------------
def test_load_kaggle15(kaggle):
    d = load_keypoints(kaggle)
    assert (d.format, d.synthetic, len(d.images)) == ("15", True, N15)
    assert d.points.shape == (N15, 15, 2)
    img = d.images[0]
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[..., 0], img[..., 2])  # grayscale
    rows = _rows(kaggle)
    header = rows[0]
    pixels = np.array(rows[1][header.index("Image")].split(), int).reshape(96, 96)
    np.testing.assert_array_equal(img[..., 1], pixels)


def test_kaggle15_missing_values_stay_nan(kaggle):
    d = load_kaggle15(kaggle)
    rows = _rows(kaggle)
    header = rows[0]
    for i, row in enumerate(rows[1:]):
        for j, name in enumerate(spec.KAGGLE15_NAMES):
            empty = row[header.index(f"{name}_x")] == ""
            assert np.isnan(d.points[i, j]).all() == empty
    assert 0 < np.isnan(d.points).mean() < 1


def test_kaggle15_columns_are_matched_by_name(tmp_path, kaggle):
    rows = _rows(kaggle)
    order = list(reversed(range(len(rows[0]))))
    shuffled = tmp_path / "training.csv"
    with open(shuffled, "w", newline="") as f:
        csv.writer(f).writerows([[r[k] for k in order] for r in rows])
    np.testing.assert_array_equal(load_kaggle15(shuffled).points, load_kaggle15(kaggle).points)
    assert not load_kaggle15(shuffled).synthetic  # no SYNTHETIC marker in that folder


def _bad15(tmp_path, kaggle, mutate):
    rows = _rows(kaggle)
    rows[2] = mutate(list(rows[2]), rows[0])
    path = tmp_path / "training.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _set(row, header, col, value):
    row[header.index(col)] = value
    return row


BAD15 = {
    "wrong column count": (lambda r, h: r[:-1], r"wrong column count: expected 31, got 30"),
    "unparsable coordinate": (lambda r, h: _set(r, h, "nose_tip_x", "left"), r"coordinate nose_tip_x = 'left' is not a number"),
    "short image": (lambda r, h: _set(r, h, "Image", "1 2 3"), r"Image has 3 pixel values, expected 96\*96 = 9216"),
    "bad pixel": (lambda r, h: _set(r, h, "Image", " ".join(["7"] * 9215 + ["x"])), r"Image pixel 'x' is not a number"),
    "pixel out of range": (lambda r, h: _set(r, h, "Image", " ".join(["7"] * 9215 + ["300"])), r"Image pixels must be 0..255"),
}


@pytest.mark.parametrize("case", sorted(BAD15))
def test_bad_kaggle_rows_name_file_and_line(tmp_path, kaggle, case):
    mutate, message = BAD15[case]
    path = _bad15(tmp_path, kaggle, mutate)
    with pytest.raises(DatasetError, match=rf"training.csv:3: {message}"):
        load_keypoints(path)
    d = load_keypoints(path, skip_bad=True)
    assert len(d.images) == N15 - 1 and len(d.problems) == 1 and ":3: " in d.problems[0]


def test_kaggle_test_csv_is_refused(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("ImageId,Image\n1," + " ".join(["0"] * 9216) + "\n")
    with pytest.raises(DatasetError, match="unknown keypoint CSV header"):
        load_keypoints(path)
    with pytest.raises(DatasetError, match=r"test.csv:1: Kaggle 15-point header lacks columns"):
        load_kaggle15(path)


def test_kaggle_column_names_follow_the_spec():
    assert KAGGLE15_COLUMNS[:4] == ["left_eye_center_x", "left_eye_center_y", "right_eye_center_x", "right_eye_center_y"]
    assert len(KAGGLE15_COLUMNS) == 30


# --- Mirror permutation ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["68", "15"])
def test_mirror_permutation_is_an_involution(fmt):
    perm = np.array(spec.MIRROR_PERMUTATION[fmt])
    assert sorted(perm) == list(range(len(perm)))
    np.testing.assert_array_equal(perm[perm], np.arange(len(perm)))


def test_mirror_permutation_68_landmarks():
    perm = spec.MIRROR_PERMUTATION["68"]
    assert perm[36] == 45 and perm[45] == 36 and perm[8] == 8 and perm[0] == 16 and perm[30] == 30
    assert perm[48] == 54 and perm[62] == 62


def test_mirror_permutation_15_landmarks():
    names, perm = spec.KAGGLE15_NAMES, spec.MIRROR_PERMUTATION["15"]
    assert names[perm[names.index("left_eye_center")]] == "right_eye_center"
    assert names[perm[names.index("nose_tip")]] == "nose_tip"
    assert names[perm[names.index("mouth_left_corner")]] == "mouth_right_corner"


def _mirror(points, perm, width):
    flipped = np.asarray(points, dtype=np.float64).copy()
    flipped[..., 0] = width - flipped[..., 0]
    return flipped[..., perm, :]


def test_flipping_a_symmetric_face_gives_the_same_points():
    face = template68() * 30 + 50  # symmetric about x = 50, image width 100
    np.testing.assert_allclose(_mirror(face, spec.MIRROR_PERMUTATION["68"], 100), face, atol=1e-9)
    face15 = ibug68_to_kaggle15(face)
    np.testing.assert_allclose(_mirror(face15, spec.MIRROR_PERMUTATION["15"], 100), face15, atol=1e-9)
    # and the identity permutation does not (the test can fail)
    assert np.abs(_mirror(face, list(range(68)), 100) - face).max() > 1


def test_fast_pixel_parser_matches_the_plain_one():
    from facepack.data.keypoints import _fast_ints, _parse_pixels

    rng = np.random.default_rng(1)
    values = rng.integers(0, 256, 96 * 96)
    raw = " ".join(f"{v:03d}" if i % 7 == 0 else str(v) for i, v in enumerate(values))  # leading zeros too
    np.testing.assert_array_equal(_parse_pixels(raw)[..., 0], values.reshape(96, 96))
    np.testing.assert_array_equal(_fast_ints(" 4\t17  255 "), [4, 17, 255])
    assert _fast_ints("1.5 2") is None and _fast_ints("") is None and _fast_ints("-3 4") is None


def test_test_split_csv_reads_images_from_test_folder(tmp_path, kp68):
    root = tmp_path / "release"
    shutil.copytree(kp68, root)
    (root / "training").rename(root / "test")
    (root / "training_frames_keypoints.csv").rename(root / "test_frames_keypoints.csv")
    d = load_keypoints68(root / "test_frames_keypoints.csv")
    assert len(d.images) == N68 and all(p.parent.name == "test" for p in d.images)


# --- Validation splits (issue 19: people the model never saw) --------------------------------------
def _named(counts):
    """KeypointData with ``counts[k]`` frames of person k (file names only; no images needed)."""
    from pathlib import Path

    from facepack.data.keypoints import KeypointData

    names = [Path(f"Person_{chr(65 + k)}_{f:02d}.jpg") for k, c in enumerate(counts) for f in range(c)]
    return KeypointData(images=names, points=np.zeros((len(names), 68, 2), np.float32), format="68", synthetic=False)


def test_person_split_holds_out_whole_people_deterministically():
    from facepack.data.keypoints import person_of, split_indices

    data = _named([9, 12, 9, 9, 12, 9, 12, 9, 9, 12])  # 102 faces of 10 people
    train, val = split_indices(data, 0.1, 0, "person")
    people = lambda idx: {person_of(data.images[i].name) for i in idx}  # noqa: E731
    assert people(train).isdisjoint(people(val)) and people(val)
    assert len(val) >= round(102 * 0.1) and len(train) + len(val) == 102
    assert len(val) - 12 < round(102 * 0.1)  # people are added only until the fraction is reached
    assert sorted(np.concatenate([train, val])) == list(range(102))
    again = split_indices(data, 0.1, 0, "person")
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    assert not np.array_equal(split_indices(data, 0.1, 1, "person")[1], val)  # the seed matters
    # "frame" is the old rule: default_rng(seed).permutation, the first round(n * f) held out
    order = np.random.default_rng(0).permutation(102)
    f_train, f_val = split_indices(data, 0.1, 0, "frame")
    np.testing.assert_array_equal(f_val, np.sort(order[:10]))
    assert people(f_train) & people(f_val)  # frames of held-out people are trained on


def test_person_split_needs_names_that_carry_people():
    from facepack.data.keypoints import KeypointData, auto_val_split, person_of, split_indices

    assert person_of("Abdel_Aziz_Al-Hakim_40.jpg") == "Abdel_Aziz_Al-Hakim"
    with pytest.raises(ValueError, match="does not carry the person"):
        person_of("face.jpg")
    kaggle_like = KeypointData(images=[np.zeros((96, 96, 3), np.uint8)] * 4, points=np.zeros((4, 15, 2)),
                               format="15", synthetic=False)
    with pytest.raises(ValueError, match="--val-split person: these rows have no file names"):
        split_indices(kaggle_like, 0.5, 0, "person")
    with pytest.raises(ValueError, match="--val-split must be one of"):
        split_indices(kaggle_like, 0.5, 0, "people")
    assert auto_val_split(kaggle_like) == "frame" and auto_val_split(_named([3, 3])) == "person"
    assert auto_val_split(_named([6])) == "frame"  # one person: nothing to hold out by person


# --- Robust augmentation (facepack/data/kp_augment.py) ----------------------------------------------
# A Gaussian blob's intensity centroid must land where the augmented target says (rotation, scale,
# shift, mirror): measured mean 0.009 px, max 0.039 px over 50 random draws (bilinear sampling).
BLOB_CENTROID_TOL_PX = 0.08
GEOMETRY_ONLY = {"colour_p": 0, "grey_p": 0, "occlude_p": 0, "low_res_p": 0, "blur_p": 0, "jpeg_p": 0}


def test_augmentation_identity_is_the_centre_of_the_context_crop():
    from facepack.data import kp_augment as K

    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    out, _ = K._warp(img, 32, 0.0, 1.0, (0.0, 0.0))
    np.testing.assert_array_equal(out, img[16:48, 16:48])


def test_augmented_points_follow_the_pixels():
    from facepack.data import kp_augment as K

    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:64, 0:64] + 0.5  # continuous pixel centres
    errors, moved = [], []
    for trial in range(20):
        px, py = rng.uniform(26, 38, 2)
        blob = 255 * np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * 1.5 ** 2))
        img = np.repeat(blob[..., None], 3, axis=2).astype(np.uint8)
        uv = np.array([[(px - 16) / 32, (py - 16) / 32]], np.float32)  # base crop = centre 32 px
        out, q = K.augment(img, uv, 32, [0], np.random.default_rng(trial), GEOMETRY_ONLY)
        w = out[..., 0]
        cx, cy = (w * xs[:32, :32]).sum() / w.sum(), (w * ys[:32, :32]).sum() / w.sum()
        errors.append(np.hypot(cx - q[0, 0] * 32, cy - q[0, 1] * 32))
        moved.append(np.hypot(*(q[0] - uv[0])) * 32)
    assert max(errors) < BLOB_CENTROID_TOL_PX, errors
    assert np.median(moved) > 1.0, moved  # the draws really move the point (px of the 32-px crop)


def test_augmentation_is_a_function_of_the_seed_and_mirrors_with_the_permutation():
    from facepack.data import kp_augment as K

    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (192, 192, 3)).astype(np.uint8)
    uv = rng.uniform(0.2, 0.8, (68, 2)).astype(np.float32)
    perm = spec.MIRROR_PERMUTATION["68"]
    a = K.augment(img, uv, 96, perm, np.random.default_rng((0, 3, 7)), None, (36, 45))
    b = K.augment(img, uv, 96, perm, np.random.default_rng((0, 3, 7)), None, (36, 45))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # no rotation/scale/shift: the sample is the base crop, or its mirror with u -> 1 - u and permuted points
    still = dict(GEOMETRY_ONLY, rotate_deg=0.0, box_scale=0.0, box_shift=0.0)
    flips = 0
    for seed in range(8):
        out, q = K.augment(img, uv, 96, perm, np.random.default_rng(seed), still)
        base = img[48:144, 48:144].astype(np.float32)
        if np.array_equal(out, base):
            np.testing.assert_allclose(q, uv, atol=1e-5)
        else:
            flips += 1
            np.testing.assert_array_equal(out, base[:, ::-1])
            np.testing.assert_allclose(q, np.stack([1 - uv[:, 0], uv[:, 1]], axis=1)[perm], atol=1e-5)
    assert 0 < flips < 8


@pytest.mark.parametrize("argv,flag", [(["--grey-p", "1.5"], "--grey-p"), (["--rotate-deg", "120"], "--rotate-deg")])
def test_robust_augmentation_flags_are_checked(argv, flag):
    from training import train_keypoints

    with pytest.raises(ValueError, match=flag):
        train_keypoints.resolve_config(train_keypoints.parse_args(argv))
    cfg = train_keypoints.resolve_config(train_keypoints.parse_args(["--data", "x"]))
    assert (cfg["augment"], cfg["val_split"], cfg["rotate_deg"]) == ("basic", "auto", 30.0)
