"""Facial keypoint data: the 68-point CSV (+ image folder) and Kaggle's 15-point training.csv.

68-point format (YouTube Faces exercise data): header ``,0,1,...,135``; each row is the image
file name then 68 (x, y) pairs in pixels of that image (iBUG/300-W order); images live in
``training/`` next to the CSV. Some "*.jpg" files are really RGBA PNGs: images are always
decoded by content (facepack.data.images.load_rgb).

15-point format (Kaggle facial-keypoints-detection ``training.csv``): 30 columns
``<name>_x, <name>_y`` for ``name`` in facepack.spec.KAGGLE15_NAMES (matched by name, so any
column order works), many of them empty, and an ``Image`` column of 96*96 space-separated
grayscale pixels.

Coordinates are continuous image pixels (facepack.spec.PIXEL_CONVENTION: pixel i covers [i, i + 1),
its centre is i + 0.5); each file's stored numbers are converted on reading by its format's offset
(facepack.data.annotations, spec.ANNOTATION_FORMATS); both CSV formats here are read as stored
(offset 0; the spec gives the measurement). Missing keypoints are NaN: masked out of the loss, never filled in.

Validation splits (split_indices): "frame" holds out random rows (frames of people the model also
trains on: optimistic); "person" holds out whole people, read from the file names
(``Person_Name_<frame>.jpg``, PERSON_PATTERN), so the held-out people are never seen.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepack import spec
from facepack.data.annotations import to_continuous
from facepack.data.errors import DatasetError, Problems, inside, outside_message, synthetic_info, verify_images, where

__all__ = ["KeypointData", "DatasetError", "load_keypoints", "load_keypoints68", "load_kaggle15",
           "detect_format", "keypoint_fingerprint", "find_csvs", "KAGGLE15_COLUMNS", "VAL_SPLITS",
           "PERSON_PATTERN", "person_of", "split_indices", "auto_val_split"]

KAGGLE15_SIDE = 96
KAGGLE15_COLUMNS = [f"{n}_{axis}" for n in spec.KAGGLE15_NAMES for axis in ("x", "y")]
N68 = spec.KEYPOINTS["formats"]["68"]["count"]
HEADER68 = [""] + [str(i) for i in range(2 * N68)]
NAME68 = "YouTube Faces keypoints (68 points)"
NAME15 = "Kaggle facial keypoints (15 points)"

VAL_SPLITS = ("frame", "person")
# YouTube-Faces file names: the person's name, "_", the frame number (e.g. Abdel_Aziz_Al-Hakim_40.jpg).
PERSON_PATTERN = re.compile(r"^(?P<person>.+)_(?P<frame>\d+)\.[A-Za-z0-9]+$")

csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))  # Kaggle's Image column is ~35 kB


@dataclass
class KeypointData:
    images: list  # Path per row, or uint8 (H, W, 3) arrays (Kaggle: pixels live in the CSV)
    points: np.ndarray  # (N, P, 2) float32 image pixels, NaN where missing
    format: str  # "68" | "15"
    synthetic: bool
    problems: list[str] = field(default_factory=list)
    root: Path = Path(".")
    name: str = ""
    skipped: list[dict] = field(default_factory=list)  # {"file", "line", "reason"} per skipped row
    csv: Path | None = None  # the CSV the rows came from

    def __len__(self) -> int:
        return len(self.images)


def keypoint_fingerprint(data: KeypointData, indices=None) -> str:
    """Short sha256 over the sorted (image name, points to 0.01 px) of rows ``indices`` (all by
    default): identifies the data a run saw (Kaggle rows, whose pixels live in the CSV, by row)."""
    import hashlib

    rows = range(len(data.images)) if indices is None else [int(i) for i in indices]
    lines = []
    for i in rows:
        src = data.images[i]
        name = Path(src).name if not isinstance(src, np.ndarray) else f"row{i}"
        pts = ",".join("nan" if np.isnan(v) else f"{v:.2f}" for v in np.asarray(data.points[i], np.float64).ravel())
        lines.append(f"{name}\t{pts}\n")
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode())
    return h.hexdigest()[:16]


def person_of(name: str) -> str:
    """File name -> the person it shows (``Abdel_Aziz_Al-Hakim_40.jpg`` -> ``Abdel_Aziz_Al-Hakim``).

    ValueError naming the file when it does not end in ``_<frame number>.<extension>``.
    """
    m = PERSON_PATTERN.match(Path(str(name)).name)
    if m is None:
        raise ValueError(f"--val-split person: file name {Path(str(name)).name!r} does not carry the person "
                         f"(expected Person_Name_<frame>.jpg); use --val-split frame")
    return m.group("person")


def auto_val_split(data: KeypointData) -> str:
    """"person" when every row's file name carries a person and there are at least 2 people
    (the YouTube-Faces data: 347 people), else "frame" (Kaggle's rows, generated data)."""
    if any(isinstance(src, np.ndarray) for src in data.images):
        return "frame"
    people = {m.group("person") for m in (PERSON_PATTERN.match(Path(src).name) for src in data.images) if m}
    named = all(PERSON_PATTERN.match(Path(src).name) for src in data.images)
    return "person" if named and len(people) >= 2 else "frame"


def split_indices(data: KeypointData, val_fraction: float, seed: int, by: str = "frame") -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx), sorted int arrays, deterministic in ``seed``.

    by="frame": ``max(1, round(n * val_fraction))`` random rows (numpy default_rng(seed)
    permutation; the split of runs made before person splits existed).
    by="person": whole people (person_of each file name) in default_rng(seed) order over the
    sorted names, until at least ``round(n * val_fraction)`` rows are held out (at least one
    person, never all). ValueError for rows without file names (Kaggle) or names without a person.
    """
    n = len(data.images)
    if by not in VAL_SPLITS:
        raise ValueError(f"--val-split must be one of {list(VAL_SPLITS)}, got {by!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"--val-fraction must be in (0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    if by == "frame":
        order = rng.permutation(n)
        n_val = max(1, int(round(n * val_fraction)))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    if any(isinstance(src, np.ndarray) for src in data.images):
        raise ValueError("--val-split person: these rows have no file names (Kaggle's pixels live in the CSV); "
                         "use --val-split frame")
    people = np.array([person_of(Path(src).name) for src in data.images])
    names = np.unique(people)
    if len(names) < 2:
        raise ValueError(f"--val-split person: need at least 2 people, found {len(names)}")
    want = max(1, int(round(n * val_fraction)))
    held, count = [], 0
    for k in rng.permutation(len(names)):
        if count >= want or len(held) == len(names) - 1:
            break
        held.append(names[k])
        count += int((people == names[k]).sum())
    is_val = np.isin(people, held)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _open_csv(csv_path: Path):
    try:
        handle = open(csv_path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"{csv_path}: cannot open the keypoint CSV ({exc})") from None
    return handle


def _read_header(csv_path: Path) -> list[str]:
    with _open_csv(csv_path) as handle:
        try:
            return next(csv.reader(handle), [])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{where(csv_path, 1)}: not a readable CSV header ({exc})") from None


def detect_format(csv_path: os.PathLike | str) -> str:
    """"68" or "15" from the CSV header; DatasetError naming the file otherwise."""
    csv_path = Path(csv_path)
    header = [h.strip() for h in _read_header(csv_path)]
    if header == HEADER68:
        return "68"
    if "Image" in header and any(c in header for c in KAGGLE15_COLUMNS):
        return "15"
    raise DatasetError(f"{where(csv_path, 1)}: unknown keypoint CSV header: expected ',0,1,...,135' "
                       f"(68 points) or Kaggle's '<name>_x,<name>_y,...,Image' (15 points), got "
                       f"{','.join(header[:6])}{',...' if len(header) > 6 else ''} ({len(header)} columns)")


def find_csvs(folder: Path) -> list[Path]:
    """The CSV files of a keypoint dataset folder (evaluate.py refuses a folder with several)."""
    return sorted(Path(folder).glob("*.csv"))


def _find_csv(folder: Path) -> Path:
    for name in ("training_frames_keypoints.csv", "training.csv"):
        if (folder / name).is_file():
            return folder / name
    csvs = find_csvs(folder)
    if len(csvs) == 1:
        return csvs[0]
    raise DatasetError(f"--data: expected one keypoint CSV in {folder}, found {[p.name for p in csvs]}")


def load_keypoints(path, skip_bad: bool = False, verify: str = "decode") -> KeypointData:
    """Load a keypoint dataset from a folder or a CSV, detecting the 68- or 15-point format.

    verify: "decode" (every image decoded once, verdicts cached; facepack.data.errors.verify_images)
    or "header" (fast, misses truncated data). File names must stay inside the image folder.
    """
    path = Path(path)
    if path.is_dir():
        path = _find_csv(path)
    elif not path.is_file():
        raise DatasetError(f"--data: keypoint dataset {path} does not exist (give a folder or a CSV)")
    fmt = detect_format(path)
    if fmt == "68":
        return load_keypoints68(path, skip_bad=skip_bad, verify=verify)
    return load_kaggle15(path, skip_bad=skip_bad)


def _parse_coord(raw: str) -> float | None:
    """A coordinate cell -> float (NaN for an empty cell), or None if it is not a number."""
    raw = raw.strip()
    if raw == "" or raw.lower() == "nan":
        return math.nan
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_coords(cells: list[str], names: list[str]) -> np.ndarray | str:
    """Cells -> (P, 2) float32 (NaN where empty), or a description of the first bad cell."""
    values = []
    for raw, name in zip(cells, names):
        v = _parse_coord(raw)
        if v is None:
            return f"coordinate {name} = {raw.strip()[:20]!r} is not a number"
        values.append(v)
    pts = np.asarray(values, dtype=np.float32).reshape(-1, 2)
    both = np.isnan(pts).any(axis=1)
    pts[both] = np.nan  # a point is present only when both x and y are
    if both.all():
        return "no keypoint present (every coordinate is empty)"
    return pts


def _keypoint_data(csv_path: Path, root: Path, images: list, points: list, fmt: str, problems) -> KeypointData:
    """The loaders' common ending: no usable row is an error; synthetic folders say so."""
    if not images:
        raise DatasetError(f"{csv_path}: no usable rows")
    info = synthetic_info(root)
    name = (info.get("name") or f"synthetic {fmt}-point faces") if info is not None else {"68": NAME68, "15": NAME15}[fmt]
    return KeypointData(images=images, points=np.stack(points).astype(np.float32), format=fmt,
                        synthetic=info is not None, problems=list(problems.messages), root=root, name=name,
                        skipped=list(problems.rows), csv=csv_path)


def load_keypoints68(csv_path, image_dir=None, skip_bad: bool = False, verify: str = "decode") -> KeypointData:
    """The 68-point CSV: rows ``file, x0, y0, ..., x67, y67``; images in ``image_dir``.

    image_dir defaults to the folder named like the CSV's prefix next to it (``training/`` for
    training_frames_keypoints.csv, ``test/`` for test_frames_keypoints.csv), else ``training/``,
    else the CSV's own folder.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"--data: keypoint CSV {csv_path} does not exist")
    root = csv_path.parent
    if image_dir is None:
        candidates = [root / csv_path.stem.split("_frames")[0], root / "training"]
        image_dir = next((c for c in candidates if c.is_dir()), root)
    image_dir = Path(image_dir)
    problems = Problems(skip_bad)
    names = [str(i) for i in range(2 * N68)]
    images: list[Path] = []
    points: list[np.ndarray] = []
    rows: list[tuple[int, Path, np.ndarray]] = []  # parsed rows whose image is still to verify
    bad: list[tuple[int, str]] = []  # (line, reason): reported in line order after the images are verified
    with _open_csv(csv_path) as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader, [])]
            if header != HEADER68:
                raise DatasetError(f"{where(csv_path, 1)}: expected the 68-point header ',0,1,...,135' "
                                   f"({len(HEADER68)} columns), got {len(header)} columns starting "
                                   f"{','.join(header[:4])!r}")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(HEADER68):
                    bad.append((line, f"wrong column count: expected {len(HEADER68)} "
                                f"(file name + 136 coordinates), got {len(row)}"))
                    continue
                pts = _parse_coords(row[1:], names)
                if isinstance(pts, str):
                    bad.append((line, f"{row[0]}: {pts}"))
                    continue
                path = inside(image_dir, row[0].strip())
                if path is None:
                    bad.append((line, outside_message(image_dir, row[0].strip())))
                    continue
                rows.append((line, path, pts))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{where(csv_path, reader.line_num)}: not readable as CSV ({exc})") from None
    if bad and not problems.skip_bad:  # fail fast, before decoding any image
        problems.add_row(csv_path, *bad[0])
    verdicts = verify_images(image_dir, [path for _, path, _ in rows], verify)
    bad += [(line, verdicts[path]) for line, path, _ in rows if verdicts[path]]
    for line, reason in sorted(bad):
        problems.add_row(csv_path, line, reason)
    for line, path, pts in rows:
        if not verdicts[path]:
            images.append(path)
            points.append(to_continuous(pts, "youtube_faces_csv").astype(np.float32))
    return _keypoint_data(csv_path, root, images, points, "68", problems)


def _fast_ints(raw: str) -> np.ndarray | None:
    """Space-separated non-negative integers -> int64 array, vectorised (None: not that simple).

    Kaggle's training.csv holds 7,049 x 9,216 pixel values; ``str.split`` + ``float`` takes
    about a minute for them, this about a second.
    """
    try:
        b = np.frombuffer(raw.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        return None
    digit = (b >= 48) & (b <= 57)
    if not digit.any() or not np.all(digit | (b == 32) | (b == 9)):
        return None
    start = digit.copy()
    start[1:] &= ~digit[:-1]
    end = digit.copy()
    end[:-1] &= ~digit[1:]
    pos = np.flatnonzero(digit)
    token = np.cumsum(start)[pos] - 1  # token index of every digit
    end_pos = np.flatnonzero(end)
    power = end_pos[token] - pos
    if power.max() > 17:  # would overflow; not a pixel anyway
        return None
    values = (b[pos] - 48).astype(np.int64) * _POW10[power]
    return np.bincount(token, weights=values, minlength=len(end_pos)).astype(np.int64)


_POW10 = 10 ** np.arange(18, dtype=np.int64)


def _parse_pixels(raw: str, side: int = KAGGLE15_SIDE) -> np.ndarray | str:
    """Kaggle's space-separated grayscale pixels -> (side, side, 3) uint8, or what is wrong."""
    fast = _fast_ints(raw)
    if fast is not None and fast.size == side * side and fast.max() <= 255:
        return np.repeat(fast.astype(np.uint8).reshape(side, side)[:, :, None], 3, axis=2)
    cells = raw.split()
    if len(cells) != side * side:
        return f"Image has {len(cells)} pixel values, expected {side}*{side} = {side * side}"
    try:
        arr = np.asarray(cells, dtype=np.float32)
    except ValueError:
        bad = next(c for c in cells if not _is_number(c))
        return f"Image pixel {bad[:20]!r} is not a number"
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        return f"Image pixels must be 0..255, got {float(np.nanmin(arr)):g}..{float(np.nanmax(arr)):g}"
    gray = np.round(arr).astype(np.uint8).reshape(side, side)
    return np.repeat(gray[:, :, None], 3, axis=2)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_kaggle15(csv_path, skip_bad: bool = False) -> KeypointData:
    """Kaggle's 15-point training.csv: columns by name (facepack.spec.KAGGLE15_NAMES), NaN kept."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"--data: keypoint CSV {csv_path} does not exist")
    problems = Problems(skip_bad)
    images: list[np.ndarray] = []
    points: list[np.ndarray] = []
    with _open_csv(csv_path) as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in KAGGLE15_COLUMNS + ["Image"] if c not in header]
            if missing:
                raise DatasetError(f"{where(csv_path, 1)}: Kaggle 15-point header lacks columns {missing[:5]}"
                                   f"{' ...' if len(missing) > 5 else ''} (is this test.csv? it has no keypoints)")
            cols = [header.index(c) for c in KAGGLE15_COLUMNS]
            image_col = header.index("Image")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    problems.add_row(csv_path, line, f"wrong column count: expected {len(header)}, got {len(row)}")
                    continue
                pts = _parse_coords([row[i] for i in cols], KAGGLE15_COLUMNS)
                if isinstance(pts, str):
                    problems.add_row(csv_path, line, pts)
                    continue
                img = _parse_pixels(row[image_col])
                if isinstance(img, str):
                    problems.add_row(csv_path, line, img)
                    continue
                images.append(img)
                points.append(to_continuous(pts, "kaggle15").astype(np.float32))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{where(csv_path, reader.line_num)}: not readable as CSV ({exc})") from None
    return _keypoint_data(csv_path, csv_path.parent, images, points, "15", problems)
