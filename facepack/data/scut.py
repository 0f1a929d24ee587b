"""SCUT-FBP5500 beauty-score data: the release layout and the reduced one.

Release layout (what users download)::

    <root>/Images/*.jpg
    <root>/train_test_files/All_labels.txt
    <root>/train_test_files/split_of_60%training and 40%testing/{train,test}.txt
    <root>/train_test_files/5_folders_cross_validations_files/cross_validation_{1..5}/{train_i,test_i}.txt

Reduced layout: ``<root>/Images/`` plus one labels file (``train.txt``, ``labels.txt`` ...).
Every labels file has lines ``<file name> <mean score 1..5>``.

``load_scut`` validates every row eagerly (file name inside Images/, image decodes fully: verdicts
cached by path, size and mtime, so only new files cost a decode) so
bad data surfaces as a :class:`DatasetError` naming the file and line before any training.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from facepack.data.errors import DatasetError, Problems, inside, outside_message, synthetic_info, verify_images

__all__ = ["BeautySample", "BeautyData", "DatasetError", "load_scut", "dataset_fingerprint",
           "SPLITS", "split_files"]

SPLITS = ("60-40", "cv1", "cv2", "cv3", "cv4", "cv5")
SCORE_RANGE = (1.0, 5.0)  # mean rating of the release, inclusive
TRAIN_TEST_DIR = "train_test_files"
ALL_LABELS = "All_labels.txt"
SPLIT_60_40_DIR = "split_of_60%training and 40%testing"
CV_DIR = "5_folders_cross_validations_files"
LABEL_CANDIDATES = ("train.txt", "labels.txt", "All_labels.txt", "all_labels.txt")
REAL_NAME = "SCUT-FBP5500"


@dataclass
class BeautySample:
    path: Path
    score: float  # mean rating on 1..5


@dataclass
class BeautyData:
    train: list[BeautySample]
    test: list[BeautySample]
    layout: str  # "release" | "reduced"
    split: str  # "60-40", "cv1".."cv5", or the labels file name for the reduced layout
    synthetic: bool
    problems: list[str] = field(default_factory=list)
    root: Path = Path(".")
    name: str = REAL_NAME
    skipped: list[dict] = field(default_factory=list)  # {"file", "line", "reason"} per skipped row


def find_root(root: os.PathLike | str) -> Path:
    """The folder holding ``Images/``: ``root`` itself or its only child that has one."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"--data: dataset folder {root} does not exist")
    if (root / "Images").is_dir():
        return root
    children = [p for p in root.iterdir() if p.is_dir() and (p / "Images").is_dir()]
    if len(children) == 1:  # e.g. the unzipped archive: <root>/SCUT-FBP5500_v2/Images
        return children[0]
    raise DatasetError(f"--data: expected an SCUT-FBP5500 folder with an Images/ subfolder, "
                       f"got {root} (contents: {sorted(p.name for p in root.iterdir())[:10]})")


def detect_layout(root: Path) -> str:
    """"release" if the official train_test_files/ folder is there, else "reduced"."""
    return "release" if (root / TRAIN_TEST_DIR).is_dir() else "reduced"


def split_files(root: Path, split: str) -> tuple[Path, Path]:
    """(train labels file, test labels file) of ``split`` in the release layout."""
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {list(SPLITS)}, got {split!r}")
    base = Path(root) / TRAIN_TEST_DIR
    if split == "60-40":
        return base / SPLIT_60_40_DIR / "train.txt", base / SPLIT_60_40_DIR / "test.txt"
    k = int(split[2:])
    fold = base / CV_DIR / f"cross_validation_{k}"
    return fold / f"train_{k}.txt", fold / f"test_{k}.txt"


def find_labels_file(root: Path, labels: os.PathLike | str | None) -> Path:
    """The labels file of the reduced layout: ``labels`` (absolute or under root) or the one *.txt."""
    if labels is not None:
        path = Path(labels)
        if not path.is_absolute() and not path.exists():
            path = root / path
        if not path.is_file():
            raise DatasetError(f"--labels: labels file {path} does not exist")
        return path
    for name in LABEL_CANDIDATES:
        if (root / name).is_file():
            return root / name
    txts = sorted(p for p in root.glob("*.txt") if p.name.lower() != "readme.txt")
    if len(txts) == 1:
        return txts[0]
    raise DatasetError(f"--labels: no labels file found in {root} (looked for {list(LABEL_CANDIDATES)} "
                       f"or a single *.txt; found {[p.name for p in txts]}); pass --labels FILE")


def parse_label_line(text: str) -> tuple[str, float] | str:
    """``"<file> <score>"`` -> (file, score), or a description of what is wrong."""
    fields = text.split()
    if len(fields) != 2:
        return f"expected 2 fields '<file> <score 1..5>', got {len(fields)}: {text.strip()[:80]!r}"
    name, raw = fields
    try:
        score = float(raw)
    except ValueError:
        return f"score {raw!r} of {name} is not a number"
    lo, hi = SCORE_RANGE
    if math.isnan(score) or not (lo <= score <= hi):
        return f"score {raw} of {name} is outside {lo:g}..{hi:g}"
    return name, score


def read_labels(labels_path: Path, image_dir: Path, problems: Problems,
                verify: str = "decode") -> list[BeautySample]:
    """Parse one labels file; every row is checked (parse, range, path inside ``image_dir``, image
    decodes: facepack.data.errors.verify_images) before it is kept."""
    try:
        text = labels_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{labels_path}: not a UTF-8 text labels file ({exc})") from None
    rows: list[tuple[int, Path, float]] = []
    bad: list[tuple[int, str]] = []  # (line, reason): reported in line order after the images are verified
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parsed = parse_label_line(line)
        if isinstance(parsed, str):
            bad.append((lineno, parsed))
            continue
        name, score = parsed
        if name in seen:
            bad.append((lineno, f"{name} is listed twice (first on line {seen[name]})"))
            continue
        seen[name] = lineno
        path = inside(image_dir, name)
        if path is None:
            bad.append((lineno, outside_message(image_dir, name)))
            continue
        rows.append((lineno, path, score))
    if bad and not problems.skip_bad:  # fail fast, before decoding any image
        problems.add_row(labels_path, *bad[0])
    verdicts = verify_images(image_dir, [path for _, path, _ in rows], verify)
    bad += [(lineno, verdicts[path]) for lineno, path, _ in rows if verdicts[path]]
    for lineno, reason in sorted(bad):
        problems.add_row(labels_path, lineno, reason)
    samples = [BeautySample(path, score) for _, path, score in rows if not verdicts[path]]
    if not samples:
        raise DatasetError(f"{labels_path}: no usable rows ('<file> <score 1..5>' per line)")
    return samples


def load_scut(root, split: str = "60-40", labels=None, skip_bad: bool = False,
              verify: str = "decode") -> BeautyData:
    """Load SCUT-FBP5500 (release or reduced layout) into train/test sample lists.

    root: the dataset folder (or its parent, or a labels file next to ``Images/``).
    split: "60-40" or "cv1".."cv5" (release layout). The reduced layout has no test split: all
    rows go to ``train`` and ``test`` is empty (the trainer holds out a validation part).
    labels: a labels file to use instead (all rows in ``train``), for either layout.
    skip_bad: skip bad rows and list them in ``problems`` / ``skipped`` instead of raising DatasetError.
    verify: "decode" (decode every image once; verdicts cached by path, size and mtime) or
    "header" (exists + PIL header check: fast, but misses truncated image data).
    """
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {list(SPLITS)}, got {split!r}")
    if verify not in ("header", "decode"):
        raise ValueError(f"verify must be 'header' or 'decode', got {verify!r}")
    if Path(root).is_file() and labels is None:  # --data pointing at a labels file next to Images/
        root, labels = Path(root).parent, Path(root)
    root = find_root(root)
    layout = detect_layout(root)
    image_dir = root / "Images"
    problems = Problems(skip_bad)
    info = synthetic_info(root)
    if labels is not None or layout == "reduced":
        if layout == "reduced" and split != "60-40" and labels is None:
            raise ValueError(f"--split {split} needs the release layout ({TRAIN_TEST_DIR}/ under {root}); "
                             f"this is the reduced layout (Images/ + one labels file): use --split 60-40")
        labels_path = find_labels_file(root, labels)
        train = read_labels(labels_path, image_dir, problems, verify)
        test: list[BeautySample] = []
        split_name = labels_path.name
    else:
        train_path, test_path = split_files(root, split)
        for path in (train_path, test_path):
            if not path.is_file():
                raise DatasetError(f"--split {split}: labels file {path} is missing from the release layout")
        train = read_labels(train_path, image_dir, problems, verify)
        test = read_labels(test_path, image_dir, problems, verify)
        split_name = split
    name = (info.get("name") or "synthetic SCUT-like faces") if info is not None else REAL_NAME
    return BeautyData(train=train, test=test, layout=layout, split=split_name, synthetic=info is not None,
                      problems=list(problems.messages), root=root, name=name, skipped=list(problems.rows))


def dataset_fingerprint(samples) -> str:
    """Short sha256 over the sorted (file name, score) pairs: identifies the data a run saw."""
    h = hashlib.sha256()
    for name, score in sorted((Path(s.path).name, float(s.score)) for s in samples):
        h.update(f"{name}\t{score:.6f}\n".encode())
    return h.hexdigest()[:16]
