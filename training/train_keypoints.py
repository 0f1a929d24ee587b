"""Train the facial keypoint model (68 iBUG points, or Kaggle's 15) on square face crops.

Title: facial keypoint regression from a detector-style square crop
Model: a small depthwise-separable CNN (``kpnet``, under 1 MB) or MobileNetV2-0.35; output N (x, y)
       in crop units (0..1). Missing points (Kaggle data) are masked out of the loss.
Data:  the 68-point CSV (`,0,...,135` header + training/ images) or Kaggle's training.csv. The crop
       is the spec's rule applied to the ground-truth points' bounding box, jittered in training;
       horizontal flips swap left/right points with the spec's permutation. Without --data a
       synthetic 68-point dataset is generated and a small model trained on it.

Usage:
    python training/train_keypoints.py                                 # synthetic, quick
    python training/train_keypoints.py --data ../shared/datasets/youtube-faces-keypoints-train
    python training/train_keypoints.py --data training.csv             # Kaggle 15-point format

Writes runs/keypoints/<timestamp>/: model.keras, run.json, history.csv, curves.png, predictions.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from facepack import spec  # noqa: E402
from facepack.data.kp_augment import ROBUST  # noqa: E402  (cv2 + numpy only)

# ---------------------------------------------------------------------------------------------
# Hyperparameters (defaults for real data; SYNTHETIC overrides what --data-less runs change)
# ---------------------------------------------------------------------------------------------
DEFAULTS = {
    "backbone": "kpnet",
    "input_size": spec.KEYPOINTS["input_size_px"],  # pixels, square crop
    "width": 24,  # kpnet channels of the first block (the model grows x8 from there)
    "epochs": 60,
    "batch_size": 32,  # crops
    "lr": 2e-3,  # Adam, cosine-decayed to 0
    "weight_decay": 1e-4,
    "val_fraction": 0.1,  # held out of the training data for validation
    # Validation protocol: "person" holds out whole people (file names carry them), "frame" random
    # rows; "auto" is person where the names carry at least 2 people, else frame (run.json records which).
    "val_split": "auto",
    "bn_momentum": 0.9,  # Keras' 0.99 lags far behind on short runs
    "seed": 0,
    # "robust" (facepack.data.kp_augment): rotation, box scale/shift, mirror, colour, grey, occlusion,
    # low resolution, blur, JPEG, with the probabilities and ranges below; "basic": box scale +-10 %,
    # shift +-5 %, mirror, brightness/contrast (the pipeline of runs before it, and of packed data).
    # Default basic: measured (person split, 35 epochs, seed 0) robust scored held-out NME 0.0680 vs
    # basic 0.0612 on the YouTube-Faces people, and 0.122 vs 0.175 on the grey three-quarter
    # Einstein face (tests/fixtures/einstein.pts): it helps off-distribution, costs on it at that length.
    "augment": "basic",
    **ROBUST,
}
SYNTHETIC = {"epochs": 25, "n_synthetic": 800, "lr": 5e-3}  # NME 0.052 vs mean shape 0.140


def parse_args(argv):
    from facepack.training import trainer_parser

    p = trainer_parser("train_keypoints.py", __doc__, DEFAULTS, SYNTHETIC, "68-point dataset folder/CSV or Kaggle training.csv")
    p.add_argument("--backbone", choices=["kpnet", "mobilenet_v2"])
    p.add_argument("--input-size", type=int, help="square crop in pixels")
    p.add_argument("--width", type=int, help="kpnet base width (channels)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--bn-momentum", type=float, help="BatchNormalization moving-average momentum")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--augment", choices=["basic", "robust"],
                   help="training augmentation (basic: box jitter, mirror, brightness/contrast; robust: the flags below)")
    p.add_argument("--rotate-deg", type=float, help="robust: in-plane rotation up to +- this many degrees")
    p.add_argument("--box-scale", type=float, help="robust: crop side x (1 +- this), log-uniform")
    p.add_argument("--box-shift", type=float, help="robust: crop centre +- this fraction of the side")
    for name, what in (("colour", "colour jitter"), ("grey", "greyscale"), ("occlude", "a rectangle occluder"),
                       ("low-res", "down/up-sampling to --min-eye-px"), ("blur", "Gaussian blur"),
                       ("jpeg", "JPEG re-encoding at quality 15..90")):
        p.add_argument(f"--{name}-p", type=float, metavar="P", help=f"robust: probability of {what} per sample")
    p.add_argument("--min-eye-px", type=float, help="robust: smallest outer-eye-corner distance of the "
                   "low-resolution step, in crop pixels")
    p.add_argument("--val-split", choices=["auto", "frame", "person"],
                   help="validation: whole people the model never sees (person) or random frames of the "
                        "training people (frame: the protocol of runs before it existed); auto (default): "
                        "person where the file names carry at least 2 people, else frame")
    return p.parse_args(argv)


def resolve_config(args) -> dict:
    """Fill every default exactly once (facepack.training.fill_defaults), then check this trainer's flags."""
    from facepack.training import fill_defaults

    cfg = fill_defaults(args, DEFAULTS, SYNTHETIC)
    if cfg["width"] < 1:
        raise ValueError(f"--width must be >= 1, got {cfg['width']}")
    for key in ("colour_p", "grey_p", "occlude_p", "low_res_p", "blur_p", "jpeg_p"):
        if not 0 <= cfg[key] <= 1:
            raise ValueError(f"--{key.replace('_', '-')} must be a probability in [0, 1], got {cfg[key]}")
    if not 0 <= cfg["rotate_deg"] <= 90 or not 0 <= cfg["box_scale"] < 1 or not 0 <= cfg["box_shift"] < 0.5:
        raise ValueError(f"--rotate-deg must be 0..90, --box-scale 0..1 and --box-shift 0..0.5, got "
                         f"{cfg['rotate_deg']}, {cfg['box_scale']}, {cfg['box_shift']}")
    return cfg


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def load_data(cfg: dict):
    from facepack.data.keypoints import load_keypoints
    from facepack.data.synthetic import ensure_synthetic

    root = cfg["data"] or ensure_synthetic("keypoints68", n=cfg["n_synthetic"])
    data = load_keypoints(root, skip_bad=cfg["skip_bad"])
    for problem in data.problems:
        print(f"skipped: {problem}")
    n = len(data.images)
    if n < 4:
        raise ValueError(f"--data: need at least 4 faces, found {n} in {root}")
    from facepack.data.keypoints import auto_val_split, split_indices

    # Runs from before --val-split held out random frames: their run.json has no val_split (evaluate.py
    # passes "frame" for them). "auto" is resolved here and recorded in run.json's args.
    if cfg.get("val_split") in (None, "auto"):
        cfg["val_split"] = auto_val_split(data)
    train_idx, val_idx = split_indices(data, cfg["val_fraction"], cfg["seed"], cfg["val_split"])
    if cfg["max_train"]:
        train_idx = train_idx[: cfg["max_train"]]
    return data, train_idx, val_idx


def crop_targets(data, indices) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth in crop units (N, P, 2) and the squares (N, 3: x0, y0, side) they live in."""
    from facepack.data.tfdata import crop_square_for_points

    squares = np.array([crop_square_for_points(data.points[i]) for i in indices], dtype=np.float64)
    pts = data.points[indices].astype(np.float64)
    units = (pts - squares[:, None, :2]) / squares[:, None, 2:3]
    return units, squares


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def build_model(keras, cfg: dict, num_points: int):
    from facepack.models.keypoints import build_keypoint_model

    from facepack.training import set_bn_momentum

    model = build_keypoint_model(keras, num_points, cfg["backbone"], cfg["input_size"], width=cfg["width"])
    set_bn_momentum(keras, model, cfg["bn_momentum"])
    return model


def compile_model(keras, model, cfg: dict, steps: int):
    from facepack.models.keypoints import masked_keypoint_loss

    lr = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=max(1, steps * cfg["epochs"]))
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"])
    model.compile(optimizer=opt, loss=masked_keypoint_loss(keras))


# ---------------------------------------------------------------------------------------------
# Train / Evaluate
# ---------------------------------------------------------------------------------------------
def prepare_data(keras, cfg: dict) -> dict:
    """Batches for training and validation from a dataset (tf.data) or a packed .npz (numpy, no TF)."""
    from facepack.data.packed import is_packed, load_packed, packed_batches, pipeline_images_per_second

    if is_packed(cfg["data"]):
        if cfg["augment"] == "robust":
            print("packed data: augmentation is the packed file's basic one (--augment robust needs the dataset "
                  "folder: its context crops are wider)")
            cfg["augment"] = "basic"
        packed = load_packed(cfg["data"])
        meta = packed["meta"]
        if meta["kind"] != "keypoints" or meta["size"] != cfg["input_size"]:
            raise ValueError(f"--data: {cfg['data']} holds {meta['kind']} data at {meta['size']} px; "
                             f"this run needs keypoint data at --input-size {cfg['input_size']}")
        def packed_train(first_epoch: int, epochs: int):
            return packed_batches(keras, packed, cfg["batch_size"], True, cfg["seed"], first_epoch=first_epoch)

        train_b = packed_train(0, 1)
        val_b = packed_batches(keras, packed, cfg["batch_size"], False)
        is_val = packed["is_val"] == 1
        true_units = packed["targets"][is_val].astype(np.float64)
        n_val = int(is_val.sum())
        # Packed data keeps no photo geometry: evaluate in crop pixels (NME is scale-free).
        squares = np.tile([0.0, 0.0, float(cfg["input_size"])], (n_val, 1))
        return {"train_for": packed_train, "steps_per_epoch": None, "skipped": [],
                "val": val_b, "n_train": int((~is_val).sum()), "n_val": n_val,
                "format": meta["format"], "num_points": int(true_units.shape[1]),
                "val_true_units": true_units, "val_squares": squares, "train_units": packed["targets"][~is_val],
                "dataset": dict(meta["dataset"], packed=str(cfg["data"])), "synthetic": bool(meta["dataset"]["synthetic"]),
                "error_unit": f"pixels of the {cfg['input_size']}-px crop",
                "pipeline_ips": lambda: pipeline_images_per_second(train_b)}
    from facepack.data.tfdata import keypoint_dataset, measure_images_per_second

    data, train_idx, val_idx = load_data(cfg)
    built: dict = {}

    if cfg["augment"] == "robust":
        from facepack.data.kp_augment import context_crops, robust_batches

        t0 = time.perf_counter()
        ctx_images, ctx_targets = context_crops(data, train_idx, cfg["input_size"])
        print(f"robust augmentation: {len(train_idx)} context crops in {time.perf_counter() - t0:.0f} s")
        aug_cfg = {k: cfg[k] for k in ROBUST}

        def train_for(first_epoch: int, epochs: int):
            """Augmented batches from epoch first_epoch on (each a pure function of seed and epoch: exact --resume)."""
            built["ds"] = robust_batches(keras, ctx_images, ctx_targets, cfg["input_size"], cfg["batch_size"],
                                         cfg["seed"], data.format, aug_cfg, first_epoch=first_epoch)
            return built["ds"]
    else:
        def train_for(first_epoch: int, epochs: int):
            """Training batches of epochs first_epoch.. (a pure function of seed and epoch: exact --resume)."""
            built["ds"] = keypoint_dataset(data, train_idx, cfg["input_size"], cfg["batch_size"], training=True,
                                           seed=cfg["seed"], first_epoch=first_epoch, epochs=epochs)
            return built["ds"]

    val_ds = keypoint_dataset(data, val_idx, cfg["input_size"], cfg["batch_size"], training=False)
    true_units, squares = crop_targets(data, val_idx)
    steps = int(np.ceil(len(train_idx) / cfg["batch_size"]))
    robust = cfg["augment"] == "robust"
    return {"train_for": train_for, "steps_per_epoch": None if robust else steps, "skipped": data.skipped,
            "val": val_ds, "n_train": len(train_idx), "n_val": len(val_idx),
            "format": data.format, "num_points": int(data.points.shape[1]),
            "val_true_units": true_units, "val_squares": squares, "train_units": crop_targets(data, train_idx)[0],
            "dataset": dataset_info(data, train_idx, val_idx, cfg["seed"]), "synthetic": bool(data.synthetic),
            "error_unit": "image pixels",
            "pipeline_ips": (lambda: pipeline_images_per_second(built.get("ds") or train_for(0, 1))) if robust else
                            (lambda: measure_images_per_second(built.get("ds") or train_for(0, 1), batches=min(10, steps)))}


def held_out_text(data, train_idx, val_idx, seed) -> str:
    """run.json's words for the held-out part: how many faces, and whether their people were trained on
    (read from the file names, so it describes the split whichever protocol made it)."""
    from facepack.data.keypoints import PERSON_PATTERN

    def people(idx):
        if any(isinstance(data.images[i], np.ndarray) for i in idx):
            return None
        found = [PERSON_PATTERN.match(Path(data.images[i]).name) for i in idx]
        return None if not all(found) else {m.group("person") for m in found}

    val_people, train_people = people(val_idx), people(train_idx)
    if val_people is not None and train_people is not None and not (val_people & train_people) and len(val_people) > 0:
        return f"{len(val_idx)} faces of {len(val_people)} people never trained on (person split, seed {seed})"
    return f"{len(val_idx)} faces by seed {seed} (random frames: their people are trained on too)"


def dataset_info(data, train_idx, val_idx, seed) -> dict:
    from facepack.data.keypoints import keypoint_fingerprint

    return {"name": data.name, "path": str(data.root), "csv": data.csv.name if data.csv else None,
            "fingerprint": keypoint_fingerprint(data, list(train_idx) + list(val_idx)),
            "format": data.format, "train": int(len(train_idx)),
            "validation": int(len(val_idx)), "held_out": held_out_text(data, train_idx, val_idx, seed),
            "synthetic": bool(data.synthetic),
            "terms": ("synthetic data generated by facepack" if data.synthetic else
                      "research data (YouTube Faces derived keypoints / Kaggle); see the dataset's terms")}


def evaluate(model, d: dict, cfg, run_dir: Path | None = None) -> dict:
    """Held-out NME / failure rate / mean error, the mean-shape baseline, and the prediction grid."""
    from facepack.metrics import keypoint_metrics, mean_shape_baseline

    pred_units = model.predict(d["val"], verbose=0).reshape(d["n_val"], -1, 2).astype(np.float64)
    true_units, squares = d["val_true_units"], d["val_squares"]
    to_px = lambda u: squares[:, None, :2] + u * squares[:, None, 2:3]  # noqa: E731 (spec.crop_to_image, vectorised)
    metrics = keypoint_metrics(to_px(pred_units), to_px(true_units), d["format"])
    metrics["error_unit"] = d["error_unit"]
    base = mean_shape_baseline(d["train_units"], true_units)
    metrics["baseline_mean_shape_nme"] = keypoint_metrics(to_px(base), to_px(true_units), d["format"])["nme_mean"]
    if run_dir is not None:
        from facepack.plots import keypoint_grid

        batch = d["val"][0] if hasattr(d["val"], "__getitem__") else next(iter(d["val"]))
        images = np.asarray(batch[0])[:18]
        size = cfg["input_size"]
        keypoint_grid(images, pred_units[: len(images)] * size - 0.5, true_units[: len(images)] * size - 0.5,
                      run_dir / "predictions.png", title="keypoints: predicted (red) over ground truth (green)")
    return metrics


def train(cfg: dict, runs_root=None, resume: str | None = None) -> Path:
    import keras

    from facepack import training
    training.seed_everything(cfg["seed"])
    d = prepare_data(keras, cfg)
    print(f"data: {d['dataset']['name']} ({d['format']}-point{', SYNTHETIC' if d['synthetic'] else ''}): "
          f"{d['n_train']} train, {d['n_val']} validation")
    run_dir, done, history = training.open_run("keypoints", cfg, runs_root, resume)
    d["dataset"].update(training.data_paths(d["dataset"], run_dir))
    steps = int(np.ceil(d["n_train"] / cfg["batch_size"]))
    deadline = (time.time() + 60 * cfg["max_minutes"]) if cfg.get("max_minutes") else None
    t0 = time.perf_counter()
    with training.distribution_scope(cfg["distribute"]):
        model = build_model(keras, cfg, d["num_points"])
        if done:
            training.restore_weights(model, run_dir)  # the optimizer state follows in fit (RunBackup)
            print(f"--resume: {done} epoch(s) already done in {run_dir}")
        compile_model(keras, model, cfg, steps)
        state: dict = {"deadline": deadline, "stop_after": cfg.get("stop_after")}
        if done < cfg["epochs"]:
            model.fit(d["train_for"](done, cfg["epochs"] - done), steps_per_epoch=d["steps_per_epoch"],
                      validation_data=d["val"], initial_epoch=done, epochs=cfg["epochs"],
                      callbacks=training.make_callbacks(keras, run_dir, history, "full", state),
                      verbose=training.verbose_level())
        training.check_nan(state)
    train_seconds = time.perf_counter() - t0

    metrics = evaluate(model, d, cfg, run_dir=run_dir)
    print(f"held-out: NME mean {metrics['nme_mean']:.4f} median {metrics['nme_median']:.4f} "
          f"failure@{spec.KEYPOINTS['failure_nme']} {metrics['failure_rate']:.3f} "
          f"mean error {metrics['mean_error_px']:.2f} px (mean-shape baseline NME "
          f"{metrics.get('baseline_mean_shape_nme', float('nan')):.4f})")
    training.save_model(keras, model, run_dir / "model.keras")
    from facepack.plots import training_curves

    cols = history.columns()
    if cols:
        training_curves({k: v for k, v in cols.items() if k not in ("epoch", "seconds", "phase")},
                        run_dir / "curves.png", title=f"keypoints {cfg['backbone']}@{cfg['input_size']}")
    info = {
        "model": "keypoints", "backbone": cfg["backbone"], "input_size": cfg["input_size"],
        "width": cfg["width"], "num_points": d["num_points"], "format": d["format"], "synthetic": d["synthetic"],
        "pretrained": "none (from scratch)", "dataset": d["dataset"],
        "skipped": d["skipped"],  # --skip-bad: {"file", "line", "reason"} per row left out
        "metrics": metrics, "args": dict(cfg), "versions": training.versions(),
        **training.run_summary(history, d["n_train"], d["pipeline_ips"](), train_seconds),
    }
    training.finish_run(run_dir, info)
    print(f"run written to {run_dir}")
    return run_dir


def main(argv=None) -> Path:
    from facepack.training import run_main

    return run_main(argv, parse_args, resolve_config, train)


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
