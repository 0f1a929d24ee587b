"""Landmark annotation files <-> facepack's continuous pixel coordinates (facepack.spec.PIXEL_CONVENTION).

facepack's points are continuous: pixel i covers [i, i + 1), its centre is i + 0.5. Each
annotation format stores points its own way (facepack.spec.ANNOTATION_FORMATS gives the offset
and the reason): reading adds the offset, writing subtracts it, so a write/read round trip is
exact and a point on a pixel's centre reads as ``i + 0.5`` whatever the file's convention.

- ``.pts`` (iBUG / 300-W / menpo): ``version: 1`` / ``n_points: N`` / ``{`` / N lines ``x y`` / ``}``;
  1-based pixel indices (offset -0.5).
- dlib imglab XML: ``<image file=..><box top left width height><part name x y/>...``; points are
  0-based pixel indices (offset +0.5), boxes pixel edges (no offset: [left, left + width)).
- YouTube-Faces 68-point CSV: ``,0,1,...,135`` then ``file, x0, y0, ..., x67, y67`` (offset 0,
  measured; see the spec). facepack.data.keypoints.load_keypoints68 reads it with images.
- Kaggle facial-keypoints CSV: ``<name>_x, <name>_y`` columns (facepack.spec.KAGGLE15_NAMES) on
  the 96 x 96 image, undocumented sub-pixel floats read as stored (offset 0); load_kaggle15.

Points are (P, 2) float64 arrays (x, y), NaN where missing. Errors name the file and the line.
"""

from __future__ import annotations

import csv
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from facepack import spec

__all__ = ["FORMATS", "offset", "to_continuous", "from_continuous", "read_pts", "write_pts",
           "read_dlib_xml", "write_dlib_xml", "read_youtube_faces_csv", "write_youtube_faces_csv",
           "write_kaggle15_csv", "AnnotationError"]

FORMATS = tuple(spec.ANNOTATION_FORMATS)


class AnnotationError(ValueError):
    """An annotation file that cannot be read (the message names the file and line)."""


def offset(fmt: str) -> float:
    """Pixels added to a format's stored coordinates to get continuous ones (spec.ANNOTATION_FORMATS)."""
    if fmt not in spec.ANNOTATION_FORMATS:
        raise ValueError(f"annotation format must be one of {list(FORMATS)}, got {fmt!r}")
    return float(spec.ANNOTATION_FORMATS[fmt]["offset"])


def to_continuous(points, fmt: str) -> np.ndarray:
    """Stored coordinates of ``fmt`` (any shape ending in 2) -> continuous pixels (float64, NaN kept)."""
    return np.asarray(points, dtype=np.float64) + offset(fmt)


def from_continuous(points, fmt: str) -> np.ndarray:
    """Continuous pixels -> the coordinates ``fmt`` stores (the inverse of to_continuous)."""
    return np.asarray(points, dtype=np.float64) - offset(fmt)


def _fmt(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.6f}"


# --- iBUG / menpo .pts -----------------------------------------------------------------------------
def read_pts(path) -> np.ndarray:
    """A .pts file -> (N, 2) continuous pixels."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read the .pts file ({exc})") from None
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "{")
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "}")
    except StopIteration:
        raise AnnotationError(f"{path}: not a .pts file (no '{{' ... '}}' block of points)") from None
    declared = None
    for i, line in enumerate(lines[:start]):
        if line.split(":")[0].strip() == "n_points":
            try:
                declared = int(line.split(":", 1)[1])
            except ValueError:
                raise AnnotationError(f"{path}:{i + 1}: n_points is not an integer: {line.strip()!r}") from None
    pts = []
    for i in range(start + 1, end):
        cells = lines[i].split()
        if not cells:
            continue
        try:
            x, y = (float(c) for c in cells)
        except ValueError:
            raise AnnotationError(f"{path}:{i + 1}: expected 'x y', got {lines[i].strip()!r}") from None
        pts.append((x, y))
    if declared is not None and declared != len(pts):
        raise AnnotationError(f"{path}: n_points says {declared} but the file holds {len(pts)} points")
    return to_continuous(np.asarray(pts, dtype=np.float64).reshape(-1, 2), "pts")


def write_pts(path, points) -> Path:
    """(N, 2) continuous pixels -> a version-1 .pts file (1-based, as read_pts reads it)."""
    stored = from_continuous(points, "pts").reshape(-1, 2)
    body = "".join(f"{_fmt(x)} {_fmt(y)}\n" for x, y in stored)
    Path(path).write_text(f"version: 1\nn_points: {len(stored)}\n{{\n{body}}}\n", encoding="utf-8")
    return Path(path)


# --- dlib imglab XML -------------------------------------------------------------------------------
def read_dlib_xml(path) -> list[dict]:
    """An imglab XML file -> [{"file", "box": {x, y, width, height}, "points": (P, 2)}], one per <box>.

    Parts are ordered by their integer names (00, 01, ...); parts a box lacks are NaN up to the
    largest name present in the file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise AnnotationError(f"{path}: not a readable dlib XML file ({exc})") from None
    boxes = []
    for image in root.iter("image"):
        for box in image.iter("box"):
            try:
                rect = {k: float(box.attrib[a]) for k, a in (("x", "left"), ("y", "top"), ("width", "width"),
                                                             ("height", "height"))}
                parts = {int(p.attrib["name"]): (float(p.attrib["x"]), float(p.attrib["y"])) for p in box.iter("part")}
            except (KeyError, ValueError) as exc:
                raise AnnotationError(f"{path}: image {image.attrib.get('file')!r}: a <box> or <part> lacks or "
                                      f"misstates an attribute ({exc})") from None
            boxes.append((image.attrib.get("file", ""), rect, parts))
    n = max((max(parts) + 1 for _, _, parts in boxes if parts), default=0)
    out = []
    for file, rect, parts in boxes:
        stored = np.full((n, 2), np.nan)
        for k, xy in parts.items():
            stored[k] = xy
        out.append({"file": file, "box": rect, "points": to_continuous(stored, "dlib_xml")})
    return out


def write_dlib_xml(path, items) -> Path:
    """[{"file", "box": {x, y, width, height}, "points": (P, 2) continuous}] -> an imglab XML file.

    Points are written rounded to dlib's integer pixel indices (dlib reads integers); NaN points
    are left out. Boxes are written as given (pixel edges), rounded to integers.
    """
    dataset = ET.Element("dataset")
    images = ET.SubElement(dataset, "images")
    for item in items:
        image = ET.SubElement(images, "image", file=str(item["file"]))
        b = item["box"]
        box = ET.SubElement(image, "box", top=str(round(b["y"])), left=str(round(b["x"])),
                            width=str(round(b["width"])), height=str(round(b["height"])))
        stored = from_continuous(item["points"], "dlib_xml").reshape(-1, 2)
        for k, (x, y) in enumerate(stored):
            if not (math.isnan(x) or math.isnan(y)):
                ET.SubElement(box, "part", name=f"{k:02d}", x=str(int(round(x))), y=str(int(round(y))))
    ET.indent(dataset)
    Path(path).write_bytes(b"<?xml version='1.0' encoding='ISO-8859-1'?>\n" + ET.tostring(dataset) + b"\n")
    return Path(path)


# --- YouTube-Faces 68-point CSV --------------------------------------------------------------------
def read_youtube_faces_csv(path) -> tuple[list[str], np.ndarray]:
    """The 68-point CSV -> (file names, (N, 68, 2) continuous pixels); no images are opened
    (facepack.data.keypoints.load_keypoints68 reads the same rows with their images)."""
    path = Path(path)
    names, rows = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if header != [""] + [str(i) for i in range(136)]:
                raise AnnotationError(f"{path}:1: expected the 68-point header ',0,1,...,135'")
            for row in reader:
                if not row:
                    continue
                if len(row) != 137:
                    raise AnnotationError(f"{path}:{reader.line_num}: expected 137 columns, got {len(row)}")
                try:
                    rows.append([float(c) if c.strip() else math.nan for c in row[1:]])
                except ValueError:
                    raise AnnotationError(f"{path}:{reader.line_num}: a coordinate is not a number") from None
                names.append(row[0])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(f"{path}: cannot read the keypoint CSV ({exc})") from None
    return names, to_continuous(np.asarray(rows, dtype=np.float64).reshape(-1, 68, 2), "youtube_faces_csv")


def write_youtube_faces_csv(path, names, points) -> Path:
    """File names and (N, 68, 2) continuous pixels -> the 68-point CSV."""
    stored = from_continuous(points, "youtube_faces_csv").reshape(len(names), 136)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([""] + [str(i) for i in range(136)])
        for name, row in zip(names, stored):
            writer.writerow([name] + ["" if math.isnan(v) else repr(float(v)) for v in row])
    return Path(path)


# --- Kaggle 15-point CSV ---------------------------------------------------------------------------
def write_kaggle15_csv(path, points, images) -> Path:
    """(N, 15, 2) continuous pixels (NaN: missing) and (N, 96, 96) grey uint8 images -> a Kaggle
    training.csv (read back with facepack.data.keypoints.load_kaggle15)."""
    stored = from_continuous(points, "kaggle15").reshape(len(images), 30)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"{n}_{a}" for n in spec.KAGGLE15_NAMES for a in ("x", "y")] + ["Image"])
        for row, img in zip(stored, images):
            grey = np.asarray(img, dtype=np.uint8).reshape(-1)
            writer.writerow(["" if math.isnan(v) else repr(float(v)) for v in row] + [" ".join(map(str, grey))])
    return Path(path)
