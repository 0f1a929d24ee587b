"""Train the beauty-score model on SCUT-FBP5500 (or the synthetic stand-in).

Title: facial beauty prediction as label distribution learning
Model: backbone (ResNet50 by default) -> global average pooling -> Dense(101) softmax over the
       integer scores 0..100; the predicted score is the expectation sum_i p_i * i.
Data:  SCUT-FBP5500 (release layout with its 60/40 split or 5 CV folds, or the reduced layout
       Images/ + one labels file). Without --data, a synthetic dataset in the release layout is
       generated in seconds and a small model is trained on it, so the whole project runs end to
       end on a fresh machine (everything it produces says "synthetic").

Usage:
    python training/train_beauty.py                                   # synthetic, quick
    python training/train_beauty.py --data ~/SCUT-FBP5500_v2 --split cv1
    python training/train_beauty.py --data ../shared/datasets/scut-fbp5500-train \
        --backbone mobilenet_v2 --input-size 160 --weights none

Writes runs/beauty/<timestamp>/: model.keras, run.json, history.csv, curves.png, scatter.png.
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
from facepack.training import TrainingError  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Hyperparameters (defaults for real data; SYNTHETIC overrides what --data-less runs change)
# ---------------------------------------------------------------------------------------------
DEFAULTS = {
    "backbone": "resnet50",
    "input_size": spec.BEAUTY["input_size_px"],  # pixels, square
    "weights": "imagenet",
    "head_epochs": 3,  # phase 1: backbone frozen (skipped when the backbone starts from scratch)
    "epochs": 20,  # phase 2: the whole network
    "batch_size": 32,  # images
    "head_lr": 1e-2,  # SGD learning rate, phase 1
    "lr": 1e-3,  # SGD learning rate, phase 2 (cosine-decayed to 0)
    "momentum": 0.9,
    "weight_decay": 0.0,  # decoupled, per step, phase 2
    "optimizer": "sgd",  # Adam made the Grad-CAM explanations unstable in earlier work
    "label_sigma": 0.0,  # bins on 0..100; 0 = one-hot labels
    "val_fraction": 0.2,  # reduced layout only: part of the labels held out for validation
    "dropout": 0.0,
    "alpha": 1.0,  # MobileNet width multiplier
    "bn_momentum": 0.9,  # Keras' 0.999 needs thousands of steps before validation means anything
    "crop": "face",  # face: the page's detector crop (MTCNN box -> spec square rule); image: whole image
    "seed": 0,
}
CV_FOLDS = 5  # --cv-fold: folds of the reduced layout's labels
SYNTHETIC = {  # a fresh machine with no dataset: train something small, fast, that really learns
    "backbone": "mobilenet_v2", "input_size": 64, "weights": "none", "head_epochs": 0,
    "epochs": 15, "batch_size": 32, "lr": 0.03, "label_sigma": 3.0, "n_synthetic": 600,
    "crop": "image",  # synthetic faces are drawn to fill the frame; no detector pass
}


def parse_args(argv):
    from facepack.training import trainer_parser

    p = trainer_parser("train_beauty.py", __doc__, DEFAULTS, SYNTHETIC, "SCUT-FBP5500 folder (release or reduced layout)")
    p.add_argument("--labels", help="labels file for the reduced layout (default: the only *.txt beside Images/)")
    p.add_argument("--split", default="60-40", help="release layout protocol: 60-40 or cv1..cv5 (default 60-40)")
    p.add_argument("--val-fraction", type=float, help="reduced layout: fraction held out for validation")
    p.add_argument("--cv-fold", type=int, choices=range(1, CV_FOLDS + 1), metavar="K",
                   help=f"reduced layout: hold out fold K of {CV_FOLDS} (folds seeded by --seed; fold 1 is the "
                   "default 20 %% hold-out) instead of --val-fraction")
    p.add_argument("--crop", choices=["face", "image"],
                   help="face: train on the page's crop (MTCNN box -> spec square, boxes cached under "
                   "~/.cache/facepack/faces); image: the whole dataset image")
    p.add_argument("--backbone", choices=spec.BEAUTY["backbones"])
    p.add_argument("--input-size", type=int, help="square input in pixels")
    p.add_argument("--weights", help="imagenet | none | PATH to backbone weights (.h5) | a weight set that ships "
                   "in a package: efficientnet-lite0|lite1|lite2 (ImageNet, Apache-2.0; sets --backbone "
                   "efficientnet_liteN; converted once with the [import] extra, see facepack/models/importers.py)")
    p.add_argument("--head-epochs", type=int, help="phase 1 epochs (head only)")
    p.add_argument("--epochs", type=int, help="phase 2 epochs (whole network)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--head-lr", type=float)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay (phase 2)")
    p.add_argument("--optimizer", choices=["sgd", "adam"])
    p.add_argument("--label-sigma", type=float, help="train on Gaussian label distributions of this std (bins)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--alpha", type=float, help="MobileNet width multiplier (e.g. 0.5, 0.75, 1.0)")
    p.add_argument("--bn-momentum", type=float, help="BatchNormalization moving-average momentum")
    return p.parse_args(argv)


def resolve_config(args) -> dict:
    """Fill every default exactly once (facepack.training.fill_defaults), then check this trainer's flags."""
    from facepack.training import fill_defaults

    cfg = fill_defaults(args, DEFAULTS, SYNTHETIC)
    if cfg["head_epochs"] < 0:
        raise ValueError(f"--head-epochs must be >= 0, got {cfg['head_epochs']}")
    if cfg["label_sigma"] < 0:
        raise ValueError(f"--label-sigma must be >= 0 (bins), got {cfg['label_sigma']}")
    weights = str(cfg["weights"])
    from facepack.models import importers

    if weights.lower() == "none":
        cfg["weights"] = None
    elif weights in importers.WEIGHT_SETS:
        fits = importers.WEIGHT_SETS[weights].backbone
        if args.backbone is None:
            cfg["backbone"] = fits  # the weight set names its architecture
        elif args.backbone != fits:
            raise ValueError(f"--weights {weights} fits --backbone {fits}, got --backbone {args.backbone}")
    elif weights != "imagenet" and not Path(weights).is_file():
        raise ValueError(f"--weights must be imagenet, none, one of {sorted(importers.WEIGHT_SETS)} "
                         f"or an existing file, got {weights!r}")
    from facepack.models.beauty import pretrained_weight_set

    cfg["weight_set"] = pretrained_weight_set(cfg["backbone"], cfg["weights"])  # ValueError on a misfit
    if cfg["weights"] is None and cfg["head_epochs"] and args.head_epochs is None:
        cfg["head_epochs"] = 0  # a random backbone gains nothing from a frozen phase
    cfg["split"], cfg["labels"], cfg["cv_fold"] = args.split, args.labels, args.cv_fold
    return cfg


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def load_data(cfg: dict):
    """-> (train samples, validation samples, BeautyData, held-out description)."""
    from facepack.data.scut import load_scut
    from facepack.data.synthetic import ensure_synthetic

    root = cfg["data"] or ensure_synthetic("beauty", n=cfg["n_synthetic"])
    data = load_scut(root, split=cfg["split"], labels=cfg["labels"], skip_bad=cfg["skip_bad"])
    for problem in data.problems:
        print(f"skipped: {problem}")
    if data.test:
        train, val = list(data.train), list(data.test)
        held_out = f"the {data.split} protocol's test part"
    else:
        rng = np.random.default_rng(cfg["seed"])
        order = rng.permutation(len(data.train))
        if cfg.get("cv_fold"):
            k = cfg["cv_fold"]
            lo, hi = (len(order) * (k - 1)) // CV_FOLDS, (len(order) * k) // CV_FOLDS
            val = [data.train[i] for i in order[lo:hi]]
            train = [data.train[i] for i in np.concatenate([order[:lo], order[hi:]])]
            held_out = f"fold {k} of {CV_FOLDS} ({hi - lo} images) of the labels, folds by seed {cfg['seed']}"
        else:
            n_val = max(1, int(round(len(order) * cfg["val_fraction"])))
            val = [data.train[i] for i in order[:n_val]]
            train = [data.train[i] for i in order[n_val:]]
            held_out = f"{n_val} images ({cfg['val_fraction']:.0%}) held out of the labels by seed {cfg['seed']}"
    if cfg["max_train"]:
        train = train[: cfg["max_train"]]
    if len(train) < 2:
        raise ValueError(f"--data: need at least 2 training images, found {len(train)} in {root}")
    return train, val, data, held_out


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def build_model(keras, cfg: dict):
    from facepack import training
    from facepack.models.beauty import build_beauty_model
    from facepack.models.importers import ImporterError

    try:
        model = build_beauty_model(keras, cfg["backbone"], cfg["input_size"], weights=cfg["weights"],
                                   dropout=cfg["dropout"], alpha=cfg["alpha"])
        training.set_bn_momentum(keras, model, cfg["bn_momentum"])
        return model
    except ValueError:
        raise
    except ImporterError as exc:  # a packaged weight set that is not installed (says what to install)
        raise TrainingError(str(exc)) from None
    except Exception as exc:  # download failures surface as many exception types
        if cfg["weights"] == "imagenet":
            raise TrainingError(
                f"--weights imagenet: could not get the ImageNet weights for {cfg['backbone']} "
                f"({exc.__class__.__name__}: {exc}). Without internet, pass --weights none (train from "
                "scratch) or --weights PATH to a local weights file "
                "(~/.keras/models/ is where Keras caches them).") from None
        raise


def score_metrics(keras):
    """Training-time metric: MAE of the expected score on 1..5 (works for one-hot and Gaussian labels)."""
    ops = keras.ops
    bins = ops.arange(spec.BEAUTY["bins"], dtype="float32") / spec.BEAUTY["label_scale"]

    def mae_1to5(y_true, y_pred):
        return ops.mean(ops.abs(ops.sum(y_pred * bins, axis=-1) - ops.sum(y_true * bins, axis=-1)))

    return [mae_1to5]


def compile_phase(keras, model, cfg: dict, phase: str, steps: int):
    from facepack.models.beauty import backbone_layers

    frozen = phase == "head"
    for layer in backbone_layers(model):
        layer.trainable = not frozen
    if phase == "head":
        lr = cfg["head_lr"]
    else:
        lr = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=max(1, steps * cfg["epochs"]))
    if cfg["optimizer"] == "sgd":
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=cfg["momentum"], nesterov=True,
                                   weight_decay=cfg["weight_decay"] or None)
    else:
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"])
    model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(), metrics=score_metrics(keras))


# ---------------------------------------------------------------------------------------------
# Train / Evaluate
# ---------------------------------------------------------------------------------------------
GROUPS = ("AF", "AM", "CF", "CM")  # SCUT-FBP5500 file-name prefixes: Asian/Caucasian female/male


def held_out_metrics(pred, true, names=None) -> dict:
    """PC / MAE / RMSE / n on 1..5, the mean signed error (predicted - true; < 0: scores too low),
    and the same per SCUT group (AF/AM/CF/CM, from the file-name prefix) when ``names`` are given."""
    from facepack.metrics import beauty_metrics

    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    metrics = dict(beauty_metrics(pred, true), mean_signed_error=float(np.mean(pred - true)))
    if names is not None:
        prefix = np.array([str(n)[:2].upper() for n in names])
        groups = {}
        for g in GROUPS:
            sel = prefix == g
            if sel.sum() >= 2:
                groups[g] = dict(beauty_metrics(pred[sel], true[sel]),
                                 mean_signed_error=float(np.mean(pred[sel] - true[sel])))
        if groups:
            metrics["groups"] = groups
    return metrics


def evaluate(model, val_batches, val_scores, cfg, run_dir: Path | None = None,
             val_names=None) -> tuple[dict, np.ndarray]:
    """Held-out metrics (held_out_metrics) on 1..5, and the scatter plot when run_dir is given."""
    from facepack.models.beauty import expected_score, score_to_1to5

    probs = model.predict(val_batches, verbose=0)
    pred = score_to_1to5(expected_score(probs))
    metrics = held_out_metrics(pred, val_scores, val_names)
    if run_dir is not None:
        from facepack.plots import score_scatter

        score_scatter(pred, val_scores, run_dir / "scatter.png", metrics,
                      title=f"beauty {cfg['backbone']}@{cfg['input_size']} (held-out)")
    return metrics, pred


def prepare_data(keras, cfg: dict) -> dict:
    """Batches for training and validation, whatever the source: a dataset folder through tf.data,
    or a packed .npz (training/pack_dataset.py) through numpy, which needs no TensorFlow."""
    from facepack.data.packed import is_packed, load_packed, packed_batches, pipeline_images_per_second

    if is_packed(cfg["data"]):
        packed = load_packed(cfg["data"])
        meta = packed["meta"]
        if meta["kind"] != "beauty" or meta["size"] != cfg["input_size"]:
            raise ValueError(f"--data: {cfg['data']} holds {meta['kind']} data at {meta['size']} px; "
                             f"this run needs beauty data at --input-size {cfg['input_size']}")
        def packed_train(first_epoch: int, epochs: int):
            return packed_batches(keras, packed, cfg["batch_size"], True, cfg["seed"], cfg["label_sigma"], first_epoch)

        train_b = packed_train(0, 1)
        val_b = packed_batches(keras, packed, cfg["batch_size"], False, label_sigma=cfg["label_sigma"])
        is_val = packed["is_val"] == 1
        return {"train_for": packed_train, "steps_per_epoch": None, "skipped": [],
                "val": val_b, "n_train": int((~is_val).sum()), "n_val": int(is_val.sum()),
                "val_scores": packed["scores"][is_val], "val_names": packed["names"][is_val],
                "dataset": dict(meta["dataset"], packed=str(cfg["data"])),
                "synthetic": bool(meta["dataset"]["synthetic"]),
                "pipeline_ips": lambda: pipeline_images_per_second(train_b)}
    from facepack.data.scut import dataset_fingerprint
    from facepack.data.tfdata import beauty_dataset, measure_images_per_second

    train_set, val_set, data, held_out = load_data(cfg)
    train_sq, val_sq, crops = crop_squares(cfg, train_set, val_set)
    built: dict = {}

    def train_for(first_epoch: int, epochs: int):
        """Training batches of epochs first_epoch.. (a pure function of seed and epoch: exact --resume)."""
        built["ds"] = beauty_dataset(train_set, cfg["input_size"], cfg["batch_size"], training=True,
                                     seed=cfg["seed"], label_sigma=cfg["label_sigma"], squares=train_sq,
                                     first_epoch=first_epoch, epochs=epochs)
        return built["ds"]

    val_ds = beauty_dataset(val_set, cfg["input_size"], cfg["batch_size"], training=False,
                            label_sigma=cfg["label_sigma"], squares=val_sq)
    steps = int(np.ceil(len(train_set) / cfg["batch_size"]))
    return {"train_for": train_for, "steps_per_epoch": steps, "skipped": data.skipped,
            "val": val_ds, "n_train": len(train_set), "n_val": len(val_set),
            "val_scores": np.array([s.score for s in val_set]), "synthetic": bool(data.synthetic),
            "val_names": [Path(s.path).name for s in val_set],
            "dataset": dict(dataset_info(data, held_out, train_set, val_set, dataset_fingerprint), crop=crops),
            "pipeline_ips": lambda: measure_images_per_second(built.get("ds") or train_for(0, 1),
                                                              batches=min(10, steps))}


def crop_squares(cfg: dict, train_set, val_set):
    """(train squares | None, validation squares | None, crop description) for --crop."""
    if cfg.get("crop", "image") == "image":
        return None, None, {"rule": "whole image resized"}
    from facepack.data.facecrops import face_squares

    boxes = cfg.get("faces_cache")  # an earlier detector's boxes (train_beauty_cached.py --faces-cache), where present
    squares, report = face_squares([s.path for s in list(train_set) + list(val_set)],
                                   cache_file=boxes if boxes and Path(boxes).is_file() else None)
    fallback = report["fallback_whole_image"]
    print(f"face crops: {report['detected']} detected, {len(fallback)} without a face (whole image used"
          f"{': ' + ', '.join(fallback[:5]) if fallback else ''}), {report['multiple_faces']} with several faces")
    info = {"rule": f"MTCNN box -> spec square, margin {spec.BEAUTY['crop_margin']} (the page's crop)",
            "detected": report["detected"], "no_face_whole_image": len(fallback),
            "multiple_faces": report["multiple_faces"], "boxes": report["cache"]}
    return squares[: len(train_set)], squares[len(train_set):], info


def dataset_info(data, held_out: str, train_set, val_set, fingerprint) -> dict:
    return {"name": data.name, "layout": data.layout, "path": str(data.root), "split": data.split,
            "held_out": held_out, "train": len(train_set), "validation": len(val_set),
            "fingerprint": fingerprint(list(train_set) + list(val_set)), "synthetic": bool(data.synthetic),
            "terms": ("synthetic data generated by facepack" if data.synthetic else
                      "SCUT-FBP5500: non-commercial research use only (Liang et al., 2018)")}


def weights_info(cfg: dict) -> dict:
    """run.json "weights": where the starting weights came from and their licence (goes into the
    bundle's manifest and the model card)."""
    from facepack.models.importers import weight_set_info

    if cfg.get("weight_set"):
        return weight_set_info(cfg["weight_set"])
    if cfg["weights"] is None:
        return {"name": "none", "licence": "n/a (trained from scratch)"}
    if cfg["weights"] == "imagenet":
        return {"name": "imagenet", "source": f"keras.applications ({cfg['backbone']})",
                "licence": "see the keras.applications documentation for this backbone"}
    return {"name": str(cfg["weights"]), "source": "local file", "licence": "unknown (a local file)"}


def train(cfg: dict, runs_root=None, resume: str | None = None) -> Path:
    import keras

    from facepack import training

    training.seed_everything(cfg["seed"])
    d = prepare_data(keras, cfg)
    ds_info = d["dataset"]
    print(f"data: {ds_info['name']} ({ds_info.get('layout', '?')} layout{', SYNTHETIC' if d['synthetic'] else ''}): "
          f"{d['n_train']} train, {d['n_val']} validation ({ds_info['held_out']})")

    run_dir, done, history = training.open_run("beauty", cfg, runs_root, resume)
    ds_info.update(training.data_paths(ds_info, run_dir))

    val_ds = d["val"]
    steps = int(np.ceil(d["n_train"] / cfg["batch_size"]))
    deadline = (time.time() + 60 * cfg["max_minutes"]) if cfg.get("max_minutes") else None

    with training.distribution_scope(cfg["distribute"]):
        model = build_model(keras, cfg)
        if done:
            training.restore_weights(model, run_dir)  # the optimizer state follows in fit (RunBackup)
            print(f"--resume: {done} epoch(s) already done in {run_dir}")
        phases = [("head", cfg["head_epochs"]), ("full", cfg["epochs"])]
        start = 0
        t_train = time.perf_counter()
        for phase, n_epochs in phases:
            end = start + n_epochs
            if n_epochs and done < end:
                first = max(start, done)
                compile_phase(keras, model, cfg, phase, steps)
                state: dict = {"deadline": deadline, "stop_after": cfg.get("stop_after")}
                print(f"phase {phase!r}: epochs {first + 1}..{end}")
                model.fit(d["train_for"](first, end - first), steps_per_epoch=d["steps_per_epoch"],
                          validation_data=val_ds, initial_epoch=first, epochs=end,
                          callbacks=training.make_callbacks(keras, run_dir, history, phase, state),
                          verbose=training.verbose_level())
                training.check_nan(state)
            start = end
        train_seconds = time.perf_counter() - t_train

    metrics, pred = evaluate(model, val_ds, d["val_scores"], cfg, run_dir, d["val_names"])
    np.savez(run_dir / "held_out_predictions.npz", names=np.asarray(d["val_names"]), pred_1to5=pred,
             true_1to5=np.asarray(d["val_scores"]))
    print(f"held-out: PC {metrics['pc']:.4f}  MAE {metrics['mae']:.4f}  RMSE {metrics['rmse']:.4f}  "
          f"mean signed error {metrics['mean_signed_error']:+.4f}  (1..5, n={metrics['n']})")
    for g, m in metrics.get("groups", {}).items():
        print(f"  {g}: PC {m['pc']:.4f}  MAE {m['mae']:.4f}  RMSE {m['rmse']:.4f}  "
              f"mean signed error {m['mean_signed_error']:+.4f}  (n={m['n']})")
    training.save_model(keras, model, run_dir / "model.keras")
    cols = history.columns()
    from facepack.plots import training_curves

    if cols:
        training_curves({k: v for k, v in cols.items() if k not in ("epoch", "seconds")}, run_dir / "curves.png",
                        title=f"beauty {cfg['backbone']}@{cfg['input_size']}")
    info = {
        "model": "beauty", "backbone": cfg["backbone"], "input_size": cfg["input_size"], "alpha": cfg["alpha"],
        "dropout": cfg["dropout"], "synthetic": d["synthetic"],
        "pretrained": cfg["weights"] if isinstance(cfg["weights"], str) else "none (from scratch)",
        "weights": weights_info(cfg),
        "dataset": ds_info,
        "skipped": d["skipped"],  # --skip-bad: {"file", "line", "reason"} per row left out
        "metrics": metrics,
        "args": {k: v for k, v in cfg.items()},
        "versions": training.versions(),
        **training.run_summary(history, d["n_train"], d["pipeline_ips"](), train_seconds),
    }
    training.finish_run(run_dir, info)
    print(f"run written to {run_dir}")
    return run_dir


def main(argv=None) -> Path:
    from facepack.models.importers import ImporterError
    from facepack.training import run_main

    try:
        return run_main(argv, parse_args, resolve_config, train)
    except ImporterError as exc:  # a weight package that is not installed: one line (run_cli), exit 2
        raise TrainingError(str(exc)) from None


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
