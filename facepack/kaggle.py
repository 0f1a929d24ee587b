"""Kaggle Facial Keypoints Detection: a submission from the competition's test.csv + IdLookupTable.csv.

The competition's layout (https://www.kaggle.com/c/facial-keypoints-detection/data):

    test.csv            ImageId,Image             Image: 96 x 96 grey pixels, space-separated, row-major
    IdLookupTable.csv   RowId,ImageId,FeatureName,Location
                        FeatureName: "<name>_x" / "<name>_y" for name in facepack.spec.KAGGLE15_NAMES
                        (only the rows Kaggle wants; Location empty)
    submission.csv      RowId,Location            one row per lookup row, in its order

Each test image goes through the reference pipeline with a 15-point keypoint model: MTCNN finds
the face (the most confident one), the keypoint crop follows spec.KEYPOINTS (format "15"), and
the points come back in image pixels (the same convention as training.csv, read by
facepack.data.keypoints.load_kaggle15). When no face is detected the whole 96 x 96 image is the
keypoint square (counted in the printed summary). Keypoints are mirror-averaged as
spec.KEYPOINTS["mirror_average"] says (the default of predict.py, the page and the bot), the
no-face fallback included. Locations are clipped to 0..96 (SIDE_PX).

    python predict.py --kaggle-test test.csv --kaggle-lookup IdLookupTable.csv --keypoints RUN --out DIR
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from facepack import spec

SIDE_PX = 96  # the competition's image side; locations are clipped to [0, SIDE_PX]
FEATURES = [f"{name}_{axis}" for name in spec.KAGGLE15_NAMES for axis in ("x", "y")]
SUBMISSION_COLUMNS = ["RowId", "Location"]


def _header(reader, path: Path, wanted: list[str]) -> dict:
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: empty file; expected the header {','.join(wanted)}")
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"{path}: line 1: missing column(s) {missing}; expected {','.join(wanted)}")
    return {c: header.index(c) for c in wanted}


def read_test(path) -> tuple[list[int], np.ndarray]:
    """test.csv -> (ImageIds, (N, 96, 96) uint8 grey images); ValueError naming file and line."""
    path = Path(path)
    ids, images = [], []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        col = _header(reader, path, ["ImageId", "Image"])
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}: line {line}"
            try:
                image_id = int(row[col["ImageId"]])
                pixels = np.asarray(row[col["Image"]].split(), dtype=np.float64)
            except (ValueError, IndexError):
                raise ValueError(f"{where}: expected an integer ImageId and numbers in Image") from None
            if pixels.size != SIDE_PX * SIDE_PX or pixels.min() < 0 or pixels.max() > 255:
                raise ValueError(f"{where}: Image must hold {SIDE_PX}*{SIDE_PX} values 0..255, "
                                 f"got {pixels.size} values")
            ids.append(image_id)
            images.append(np.round(pixels).astype(np.uint8).reshape(SIDE_PX, SIDE_PX))
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: ImageId values repeat; each test image must appear once")
    return ids, np.stack(images) if images else np.zeros((0, SIDE_PX, SIDE_PX), dtype=np.uint8)


def read_lookup(path, image_ids) -> list[tuple[int, int, int]]:
    """IdLookupTable.csv -> [(RowId, ImageId, feature index into FEATURES)], checked against the test ids."""
    path = Path(path)
    known = set(image_ids)
    rows = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        col = _header(reader, path, ["RowId", "ImageId", "FeatureName"])
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}: line {line}"
            try:
                row_id, image_id = int(row[col["RowId"]]), int(row[col["ImageId"]])
                feature = row[col["FeatureName"]]
            except (ValueError, IndexError):
                raise ValueError(f"{where}: expected integer RowId and ImageId and a FeatureName") from None
            if feature not in FEATURES:
                raise ValueError(f"{where}: unknown FeatureName {feature!r}; expected one of <name>_x/_y "
                                 f"for the 15 Kaggle points (left_eye_center_x, ...)")
            if image_id not in known:
                raise ValueError(f"{where}: ImageId {image_id} is not in the test file")
            rows.append((row_id, image_id, FEATURES.index(feature)))
    return rows


def predict_points(pipe, images: np.ndarray, mirror_keypoints: bool | None = None) -> tuple[np.ndarray, int]:
    """(N, 96, 96) grey images -> ((N, 15, 2) points in image pixels, images without a detected face).

    pipe: a facepack.pipeline.FacePipeline with a 15-point keypoint model. mirror_keypoints (None:
    spec.KEYPOINTS["mirror_average"], as FacePipeline.analyze, predict.py and the page): test-time
    mirror averaging, for detected faces and for the whole-image fallback alike.
    """
    from facepack import pipeline, spec

    mirror = pipeline._resolve_mirror_keypoints(mirror_keypoints)
    perm = spec.MIRROR_PERMUTATION["15"] if mirror else None
    points, fallback = [], 0
    whole = [(0.0, 0.0, float(SIDE_PX))]  # the keypoint square when no face is found
    for grey in images:
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        faces = pipe.analyze(rgb, max_faces=1, mirror_keypoints=mirror)["faces"]
        if faces:
            points.append(faces[0]["keypoints"])
        else:
            fallback += 1
            crops = pipeline.crop_mod.crop_squares(rgb, whole, pipe.keypoint_size)
            points.append(pipeline.keypoints(pipe.predictor("keypoints"), crops, whole, perm)[0])
    return np.asarray(points, dtype=np.float64).reshape(len(images), 15, 2), fallback


def submission_rows(lookup, image_ids, points: np.ndarray) -> list[tuple[int, float]]:
    """[(RowId, Location)] for each lookup row, Location clipped to [0, SIDE_PX]."""
    index = {image_id: k for k, image_id in enumerate(image_ids)}
    flat = np.asarray(points, dtype=np.float64).reshape(len(image_ids), -1)  # x0, y0, x1, y1, ... = FEATURES order
    return [(row_id, float(np.clip(flat[index[image_id], feature], 0.0, SIDE_PX)))
            for row_id, image_id, feature in lookup]


def write_submission(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SUBMISSION_COLUMNS)
        writer.writerows((row_id, f"{loc:.4f}") for row_id, loc in rows)


def main_from_args(args) -> int:
    """predict.py --kaggle-test/--kaggle-lookup: read and check both files, then load the model."""
    from facepack.pipeline import FacePipeline
    from facepack.runs import load_run, read_run_info, resolve_run

    ids, images = read_test(args.kaggle_test)
    lookup = read_lookup(args.kaggle_lookup, ids)
    run = resolve_run("keypoints", args.keypoints, root=args.runs)
    points_in_run = read_run_info(run).get("num_points")
    if points_in_run is not None and int(points_in_run) != 15:
        raise ValueError(f"--keypoints {run}: a {points_in_run}-point model; the Kaggle format needs a 15-point "
                         "run (python training/train_keypoints.py on the competition's training.csv)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, _ = load_run(run)
    pipe = FacePipeline(None, model, keypoint_format="15")
    points, fallback = predict_points(pipe, images)
    write_submission(out / "submission.csv", submission_rows(lookup, ids, points))
    print(f"kaggle: {len(lookup)} row(s) for {len(ids)} image(s) -> {out / 'submission.csv'} "
          f"({fallback} image(s) without a detected face used the whole image)", file=sys.stderr)
    return 0
