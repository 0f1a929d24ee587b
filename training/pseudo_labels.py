"""Teacher keypoints for more identities (issue 19): face-api's landmark68 net (MIT) and/or a facepack
keypoint run, measured on held-out people, then applied to the SCUT-FBP5500 training faces.

    # how good is each teacher on the person split's held-out people (and the offset correction)
    python training/pseudo_labels.py measure --data <youtube-faces folder> [--model RUN]
    # pseudo-label the SCUT faces (two passes: whole image, then the crop rule on pass 1's points)
    python training/pseudo_labels.py label --scut <scut-fbp5500 folder> --out kp_pseudo.npz [--model RUN] [--faceapi]

face-api runs in Node on tfjs-backend-wasm (training/pseudo_labels_faceapi.mjs). Its points are
corrected by the mean offset (crop units) it shows against the human labels of the training
people (the issue measured (-0.36, -0.86) px in photos; the project's convention is
facepack.spec.PIXEL_CONVENTION); the correction is fitted here and written with the labels.
The label file holds the crops' squares in image pixels and the points in image pixels, so any
trainer can crop with the spec rule (facepack.data.tfdata.keypoint_dataset).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NODE_SCRIPT = REPO / "training" / "pseudo_labels_faceapi.mjs"
TEACHER_SIZE = 112  # px: face-api's landmark net input (it resizes any crop to 112)


def faceapi_units(crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 crops -> (N, 68, 2) float64 face-api points in crop units (uncorrected)."""
    crops = np.ascontiguousarray(np.clip(np.round(crops), 0, 255).astype(np.uint8))
    n, s = len(crops), crops.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "crops.u8", Path(tmp) / "points.f32"
        crops.tofile(src)
        subprocess.run(["node", str(NODE_SCRIPT), str(src), str(n), str(s), str(dst)], check=True, cwd=REPO)
        return np.fromfile(dst, np.float32).reshape(n, 68, 2).astype(np.float64)


def model_units(model, crops: np.ndarray, mirror: bool = True) -> np.ndarray:
    """A facepack keypoint model's points (N, 68, 2) in crop units, averaged with the mirrored crop."""
    from facepack import spec

    x = np.asarray(crops, np.float32)
    p = np.asarray(model.predict(x, batch_size=128, verbose=0), np.float64).reshape(len(x), -1, 2)
    if not mirror:
        return p
    q = np.asarray(model.predict(x[:, :, ::-1], batch_size=128, verbose=0), np.float64).reshape(len(x), -1, 2)
    q = np.stack([1.0 - q[..., 0], q[..., 1]], -1)[:, spec.MIRROR_PERMUTATION["68"]]
    return (p + q) / 2


def nme(units, true_units, squares) -> dict:
    from facepack.metrics import keypoint_metrics

    to_px = lambda u: squares[:, None, :2] + u * squares[:, None, 2:3]  # noqa: E731
    m = keypoint_metrics(to_px(units), to_px(true_units), "68")
    return {k: round(m[k], 5) for k in ("nme_mean", "nme_median", "failure_rate")}


def measure(args) -> dict:
    from facepack.data.keypoints import load_keypoints, split_indices  # before Keras

    import keras

    from train_keypoints_lite import clean_crops, einstein_data

    data = load_keypoints(args.data)
    train_idx, val_idx = split_indices(data, 0.1, 0, "person")
    fit_idx = np.random.default_rng(0).choice(train_idx, args.fit_faces, replace=False)
    out = {}
    fa = {}
    for name, idx in (("fit", fit_idx), ("val", val_idx)):
        images, units, squares = clean_crops(data, idx, TEACHER_SIZE)
        fa[name] = (faceapi_units(images), units, squares, images)
    offset = np.mean(fa["fit"][1] - fa["fit"][0], axis=(0, 1))  # crop units, (dx, dy)
    out["faceapi_offset_crop_units"] = offset.tolist()
    out["faceapi_offset_px_of_112"] = (offset * TEACHER_SIZE).tolist()
    out["faceapi_val_raw"] = nme(fa["val"][0], fa["val"][1], fa["val"][2])
    out["faceapi_val_corrected"] = nme(fa["val"][0] + offset, fa["val"][1], fa["val"][2])
    e_images, e_units, e_squares = clean_crops(einstein_data(), [0], TEACHER_SIZE)
    e_fa = faceapi_units(e_images) + offset
    out["faceapi_einstein_corrected"] = nme(e_fa, e_units, e_squares)
    if args.model:
        from facepack.runs import load_run

        model, _ = load_run(args.model, keras)
        size = int(model.input_shape[1])
        images, units, squares = clean_crops(data, val_idx, size)
        mine = model_units(model, images)
        out["model_val_mirror_avg"] = nme(mine, units, squares)
        out["model_val_plain"] = nme(model_units(model, images, mirror=False), units, squares)
        out["average_val"] = nme((mine + fa["val"][0] + offset) / 2, units, squares)
        e_images, e_units, e_squares = clean_crops(einstein_data(), [0], size)
        e_mine = model_units(model, e_images)
        out["model_einstein_mirror_avg"] = nme(e_mine, e_units, e_squares)
        out["average_einstein"] = nme((e_mine + e_fa) / 2, e_units, e_squares)
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


def crops_for_squares(data, squares: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S, 3) float32 crops of every row of ``data`` at the given squares (x0, y0, side)."""
    from facepack.data.tfdata import keypoint_dataset

    ds = keypoint_dataset(data, range(len(data.images)), size, 64, training=False, cache=False, squares=squares)
    return np.concatenate([np.asarray(x) for x, _ in ds])


def label(args) -> Path:
    """Pseudo-label the SCUT faces: pass 1 on the whole (face-centred) photo, then passes on the
    spec crop of the previous pass's points; teachers averaged where both are given (face-api
    only in the last pass when a model is given: it is the slow one).

    The .npz: root, names, points (N, 68, 2) image px, disagreement (N,) NME between the two
    teachers in the last pass (NaN with one teacher), teachers, faceapi_offset, model, command."""
    if args.faceapi and not args.measure:
        raise ValueError("--faceapi needs --measure FILE (pseudo_labels.py measure --out FILE: face-api's offset)")
    if not args.model and not args.faceapi:
        raise ValueError("label: give --model RUN and/or --faceapi (with --measure FILE)")
    if args.passes < 1:
        raise ValueError(f"--passes must be >= 1, got {args.passes}")
    from facepack.data.keypoints import KeypointData  # before Keras

    import keras
    from PIL import Image

    from facepack.data.tfdata import crop_square_for_points

    root = Path(args.scut)
    names = [line.split()[0] for line in (root / "train.txt").read_text().split("\n") if line.strip()]
    if args.limit:
        names = names[: args.limit]
    paths = [root / "Images" / n for n in names]
    sizes = np.array([Image.open(p).size for p in paths], np.float64)
    data = KeypointData(images=paths, points=np.zeros((len(paths), 68, 2), np.float32), format="68",
                        synthetic=False, root=root, name="SCUT-FBP5500 train (pseudo-labelled)")
    # Pass 1's square: where the spec crop of the SCUT faces lies (median of 100 labelled ones:
    # x0 0.14 W, y0 0.25 H, side 0.73 W; the photos are 350 x 350 face-centred portraits).
    squares = np.stack([0.14 * sizes[:, 0], 0.25 * sizes[:, 1], 0.73 * sizes[:, 0]], 1)
    offset = np.array(json.loads(Path(args.measure).read_text())["faceapi_offset_crop_units"]) if args.faceapi else None
    model = None
    if args.model:
        from facepack.runs import load_run

        model, _ = load_run(args.model, keras)
    for step in range(args.passes):
        teachers = {}
        if offset is not None and (model is None or step == args.passes - 1):  # face-api is the slow one
            teachers["faceapi"] = faceapi_units(crops_for_squares(data, squares, TEACHER_SIZE)) + offset
        if model is not None:
            teachers["model"] = model_units(model, crops_for_squares(data, squares, int(model.input_shape[1])))
        units = np.mean(list(teachers.values()), axis=0)
        points = squares[:, None, :2] + units * squares[:, None, 2:3]
        if len(teachers) == 2:
            spread = (np.linalg.norm((teachers["faceapi"] - teachers["model"]) * squares[:, None, 2:3], axis=-1).mean(1)
                      / np.linalg.norm(points[:, 36] - points[:, 45], axis=-1))
            agree = f"teachers' disagreement NME median {np.median(spread):.4f}"
        else:  # one teacher: nothing to disagree with (train_keypoints_lite.py refuses to filter on it)
            spread = np.full(len(names), np.nan)
            agree = f"one teacher ({next(iter(teachers))})"
        new = np.array([crop_square_for_points(p) for p in points])
        moved = np.abs(squares - new).max(1) / new[:, 2]  # fraction of the side
        squares = new
        print(f"pass {step + 1}: {agree}, square moved "
              f"median {np.median(moved):.3f} / 95 % {np.quantile(moved, 0.95):.3f} / max {moved.max():.3f} of its side",
              flush=True)
    out = Path(args.out)
    np.savez(out, root=str(root.resolve()), names=np.array(names), points=points.astype(np.float32), disagreement=spread.astype(np.float32),
             teachers=np.array([t for t, on in (("faceapi", offset is not None), ("model", model is not None)) if on]),
             faceapi_offset=np.zeros(2) if offset is None else offset, model=str(args.model),
             command=getattr(args, "command", ""))
    print(f"pseudo labels: {len(names)} faces -> {out}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="pseudo_labels.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--data", required=True)
    m.add_argument("--model", default=None, help="a keypoint run folder (teacher 2)")
    m.add_argument("--fit-faces", type=int, default=400, help="training faces the face-api offset is fitted on")
    m.add_argument("--out", default=None, help="write the numbers here (JSON; label's --measure)")
    lab = sub.add_parser("label")
    lab.add_argument("--scut", required=True, help="SCUT-FBP5500 folder with train.txt and Images/")
    lab.add_argument("--out", required=True, help=".npz: names, points (image px), disagreement")
    lab.add_argument("--model", default=None, help="a keypoint run folder (teacher)")
    lab.add_argument("--faceapi", action="store_true", help="face-api's landmark68 net as a teacher")
    lab.add_argument("--measure", default=None, help="measure's JSON (face-api's offset correction)")
    lab.add_argument("--passes", type=int, default=2)
    lab.add_argument("--limit", type=int, default=0)
    args = p.parse_args(argv)
    args.command = shlex.join(["pseudo_labels.py", *(sys.argv[1:] if argv is None else argv)])
    sys.path.insert(0, str(REPO / "training"))
    if args.cmd == "measure":
        return measure(args)
    return label(args)


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
