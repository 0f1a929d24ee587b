"""facepack.data.scut: both layouts, every split, every bad-row case (file and line named)."""

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from facepack.data.errors import MARKER
from facepack.data.scut import DatasetError, SPLITS, dataset_fingerprint, load_scut, split_files
from facepack.data.synthetic import make_scut_dataset

N = 30



@pytest.fixture(scope="session")
def release(tmp_path_factory):
    return make_scut_dataset(tmp_path_factory.mktemp("scut") / "SCUT-FBP5500_v2", n=N, image_size=32)


@pytest.fixture(scope="session")
def reduced(tmp_path_factory):
    return make_scut_dataset(tmp_path_factory.mktemp("scut_reduced"), n=N, image_size=32, layout="reduced")


def _names(samples):
    return [s.path.name for s in samples]


def test_release_60_40(release):
    d = load_scut(release)
    assert (d.layout, d.split, d.synthetic) == ("release", "60-40", True)
    assert (len(d.train), len(d.test)) == (18, 12)
    assert not set(_names(d.train)) & set(_names(d.test))
    all_rows = dict(line.split() for line in (release / "train_test_files/All_labels.txt").read_text().splitlines())
    assert set(_names(d.train + d.test)) == set(all_rows)
    for s in d.train + d.test:
        assert s.path.is_file() and 1.0 <= s.score <= 5.0
        assert s.score == pytest.approx(float(all_rows[s.path.name]))
    assert d.problems == [] and d.root == release and "synthetic" in d.name


@pytest.mark.parametrize("split", [s for s in SPLITS if s.startswith("cv")])
def test_release_cross_validation_folds(release, split):
    d = load_scut(release, split=split)
    assert d.split == split
    assert len(d.train) + len(d.test) == N and len(d.test) == N // 5
    assert not set(_names(d.train)) & set(_names(d.test))


def test_cv_test_folds_partition_the_data(release):
    tests = [set(_names(load_scut(release, split=f"cv{k}").test)) for k in range(1, 6)]
    assert sum(len(t) for t in tests) == N and len(set().union(*tests)) == N


def test_split_file_names_follow_the_release(release):
    assert split_files(release, "60-40")[0].parent.name == "split_of_60%training and 40%testing"
    train, test = split_files(release, "cv3")
    assert (train.name, test.name, train.parent.name) == ("train_3.txt", "test_3.txt", "cross_validation_3")


def test_bad_split_names_the_flag(release):
    with pytest.raises(ValueError, match=r"--split must be one of .*got 'cv6'"):
        load_scut(release, split="cv6")


def test_missing_split_file_names_it(tmp_path, release):
    root = tmp_path / "copy"
    shutil.copytree(release, root)
    (root / "train_test_files/5_folders_cross_validations_files/cross_validation_2/test_2.txt").unlink()
    with pytest.raises(DatasetError, match="test_2.txt is missing"):
        load_scut(root, split="cv2")


def test_reduced_layout_puts_everything_in_train(reduced):
    d = load_scut(reduced)
    assert (d.layout, d.split, len(d.train), d.test) == ("reduced", "train.txt", N, [])
    assert d.synthetic


def test_reduced_layout_refuses_cv_splits(reduced):
    with pytest.raises(ValueError, match="--split cv1 needs the release layout"):
        load_scut(reduced, split="cv1")


def test_explicit_labels_file_on_the_release_layout(release):
    d = load_scut(release, labels=release / "train_test_files/All_labels.txt")
    assert len(d.train) == N and d.test == [] and d.split == "All_labels.txt"


def test_parent_folder_of_the_unzipped_release_is_accepted(release):
    assert load_scut(release.parent).root == release


def test_real_data_is_not_flagged_synthetic(tmp_path, reduced):
    root = tmp_path / "real"
    shutil.copytree(reduced, root)
    (root / MARKER).unlink()
    d = load_scut(root)
    assert not d.synthetic and d.name == "SCUT-FBP5500"


def test_crlf_bom_and_blank_lines_are_fine(tmp_path, reduced):
    root = _mini(tmp_path, ["a.jpg 3.5", "", "b.jpg 1.0"])
    labels = root / "train.txt"
    labels.write_bytes(b"\xef\xbb\xbfa.jpg 3.5\r\n\r\nb.jpg 1.0\r\n")
    d = load_scut(root)
    assert [(s.path.name, s.score) for s in d.train] == [("a.jpg", 3.5), ("b.jpg", 1.0)]


# --- bad rows ---------------------------------------------------------------------------------------
def _mini(tmp_path, lines, images=("a.jpg", "b.jpg", "c.jpg")):
    """A reduced-layout folder with valid images ``images`` and a train.txt of ``lines``."""
    root = tmp_path / "mini"
    (root / "Images").mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(root / "Images" / name)
    (root / "Images" / "broken.jpg").write_bytes(b"not an image at all")
    _truncated_jpeg(root / "Images" / "cut.jpg")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root


def _truncated_jpeg(path):
    """A real JPEG cut to a third: its header (and PIL's verify) is intact, its data is not."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


BAD_ROWS = {
    "missing image": ("gone.jpg 3.0", r"image gone.jpg not found"),
    "unreadable image": ("broken.jpg 3.0", r"image broken.jpg is not a readable image"),
    "truncated image": ("cut.jpg 3.0", r"image cut.jpg is not a readable image \(OSError: image file is truncated"),
    "absolute path": ("/etc/hostname 3.0", r"file name '/etc/hostname' points outside the image folder"),
    "path climbing out": ("../train.txt 3.0", r"file name '../train.txt' points outside the image folder"),
    "unparsable label": ("b.jpg three", r"score 'three' of b.jpg is not a number"),
    "score above 5": ("b.jpg 5.2", r"score 5.2 of b.jpg is outside 1..5"),
    "score below 1": ("b.jpg 0.5", r"score 0.5 of b.jpg is outside 1..5"),
    "nan score": ("b.jpg nan", r"score nan of b.jpg is outside 1..5"),
    "too many columns": ("b.jpg 3.0 extra", r"expected 2 fields '<file> <score 1..5>', got 3"),
    "too few columns": ("b.jpg", r"expected 2 fields .* got 1"),
    "duplicate": ("a.jpg 2.0", r"a.jpg is listed twice \(first on line 1\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_raises_naming_file_and_line(tmp_path, case):
    row, message = BAD_ROWS[case]
    root = _mini(tmp_path, ["a.jpg 3.0", row, "c.jpg 4.0"])
    with pytest.raises(DatasetError, match=rf"train.txt:2: {message}"):
        load_scut(root)


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_skip_bad_reports_and_skips(tmp_path, case):
    row, message = BAD_ROWS[case]
    root = _mini(tmp_path, ["a.jpg 3.0", row, "c.jpg 4.0"])
    d = load_scut(root, skip_bad=True)
    assert [s.path.name for s in d.train] == ["a.jpg", "c.jpg"]
    assert len(d.problems) == 1 and ":2: " in d.problems[0]


def test_skip_bad_collects_every_problem(tmp_path):
    rows = ["a.jpg 3.0"] + [BAD_ROWS[c][0] for c in sorted(BAD_ROWS) if c != "duplicate"]
    d = load_scut(_mini(tmp_path, rows), skip_bad=True)
    assert len(d.train) == 1 and len(d.problems) == len(BAD_ROWS) - 1
    assert [re.search(r"train.txt:(\d+): ", p).group(1) for p in d.problems] == [str(i) for i in range(2, len(rows) + 1)]


def test_only_bad_rows_is_an_error_even_when_skipping(tmp_path):
    with pytest.raises(DatasetError, match="no usable rows"):
        load_scut(_mini(tmp_path, ["gone.jpg 3.0"]), skip_bad=True)


def test_skipped_rows_are_recorded_with_file_line_and_reason(tmp_path):
    root = _mini(tmp_path, ["a.jpg 3.0", "cut.jpg 2.0", "../train.txt 3.0", "c.jpg 4.0"])
    d = load_scut(root, skip_bad=True)
    assert [s.path.name for s in d.train] == ["a.jpg", "c.jpg"]
    assert [(r["file"], r["line"]) for r in d.skipped] == [(str(root / "train.txt"), 2), (str(root / "train.txt"), 3)]
    assert "truncated" in d.skipped[0]["reason"] and "outside the image folder" in d.skipped[1]["reason"]


def test_subfolders_inside_images_are_fine(tmp_path):
    root = _mini(tmp_path, ["sub/../a.jpg 3.0", "./c.jpg 4.0"])
    assert [s.path.name for s in load_scut(root).train] == ["a.jpg", "c.jpg"]


def test_decode_verdicts_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    """The full decode runs once per file; a file changed on disk is decoded again."""
    import os

    from facepack.data import errors

    monkeypatch.setenv("FACEPACK_CACHE", str(tmp_path / "cache"))
    decoded = []
    real = errors.check_image
    monkeypatch.setattr(errors, "check_image", lambda path, full=False: (decoded.append(path.name), real(path, full))[1])
    root = _mini(tmp_path, ["a.jpg 3.0", "b.jpg 2.0", "cut.jpg 2.0"])
    assert len(load_scut(root, skip_bad=True).train) == 2 and sorted(decoded) == ["a.jpg", "b.jpg", "cut.jpg"]
    decoded.clear()
    assert len(load_scut(root, skip_bad=True).train) == 2 and decoded == []  # verdicts from the cache
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(root / "Images" / "cut.jpg")  # repaired
    os.utime(root / "Images" / "cut.jpg", ns=(1, 1))
    assert len(load_scut(root, skip_bad=True).train) == 3 and decoded == ["cut.jpg"]


def test_truncated_jpeg_is_caught_by_full_verification(tmp_path):
    root = _mini(tmp_path, ["a.jpg 3.0", "cut.jpg 2.0"])
    with pytest.raises(DatasetError, match=r"train.txt:2: image cut.jpg is not a readable image .*truncated"):
        load_scut(root)  # decoding is the default
    assert len(load_scut(root, verify="header").train) == 2  # the header alone passes: why decoding is needed


def test_missing_folder_and_ambiguous_labels(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_scut(tmp_path / "nowhere")
    root = _mini(tmp_path, ["a.jpg 3.0"])
    (root / "train.txt").rename(root / "one.txt")
    (root / "two.txt").write_text("a.jpg 3.0\n")
    with pytest.raises(DatasetError, match="--labels: no labels file found"):
        load_scut(root)
    assert len(load_scut(root, labels="two.txt").train) == 1


def test_fingerprint_is_order_free_and_label_sensitive(release):
    d = load_scut(release)
    fp = dataset_fingerprint(d.train)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert dataset_fingerprint(list(reversed(d.train))) == fp
    changed = list(d.train)
    changed[0] = type(changed[0])(changed[0].path, changed[0].score + 0.1)
    assert dataset_fingerprint(changed) != fp
    assert dataset_fingerprint(d.test) != fp


def test_labels_file_as_root(reduced):
    d = load_scut(reduced / "train.txt")
    assert d.root == reduced and len(d.train) == N and d.split == "train.txt"
