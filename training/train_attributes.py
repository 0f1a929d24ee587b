"""Train the face-attributes model on CelebA (or the synthetic stand-in in its layout).

Title: multi-label face attributes (CelebA's 40 binary attributes)
Model: a beauty backbone (MobileNetV2 by default) -> global average pooling -> Dense(40) sigmoid;
       one independent probability per attribute (facepack/models/attributes.py).
Loss:  binary cross-entropy (or --loss focal), the positive term of each attribute weighted by
       n_neg / n_pos on the training part (--balance pos_weight) against CelebA's imbalance.
Decide: an attribute is on when its probability reaches its own threshold, chosen on the
       validation part (--thresholds f1: the threshold of best validation F1; prior: threshold
       rescaling by the training positive rate; 0.5).
Report: on the test part, mean accuracy and macro precision / recall / F1, each per attribute
       (attributes.csv, attributes.png), next to the all-negative and majority-class baselines.
Data:  the CelebA release layout (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt
       with 0/1/2 = train/val/test). Without --data a synthetic dataset in that layout is generated
       (facepack/data/celeba.py; every attribute drawn as a coloured cell) and a small model is
       trained on it in seconds; everything it produces says "synthetic".

Usage:
    python training/train_attributes.py                                   # synthetic, quick
    python training/train_attributes.py --data ~/celeba --crop face --input-size 128
    python training/train_attributes.py --data ~/celeba --loss focal --thresholds prior

Writes runs/attributes/<timestamp>/: model.keras, run.json (attribute names, thresholds, metrics,
baselines, data terms), attributes.csv, history.csv, curves.png, attributes.png.
"""

from __future__ import annotations

import csv
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
    "backbone": "mobilenet_v2",  # light, and exports (any spec.BEAUTY["backbones"] works)
    "input_size": 128,  # pixels, square
    "weights": "imagenet",
    "head_epochs": 1,  # phase 1: backbone frozen (skipped when the backbone starts from scratch)
    "epochs": 10,  # phase 2: the whole network
    "batch_size": 64,  # images
    "head_lr": 1e-3,  # Adam learning rate, phase 1
    "lr": 1e-3,  # learning rate, phase 2 (cosine-decayed to 0)
    "momentum": 0.9,  # SGD only
    "weight_decay": 0.0,  # decoupled, per step, phase 2
    "optimizer": "adam",
    "loss": "bce",  # bce | focal (gamma facepack.models.attributes.FOCAL_GAMMA)
    "balance": "pos_weight",  # pos_weight: positive term x n_neg/n_pos per attribute (training part); none
    "thresholds": "f1",  # f1 (best validation F1) | prior (training positive rate) | 0.5
    "dropout": 0.0,
    "alpha": 1.0,  # MobileNet width multiplier
    "bn_momentum": 0.9,
    "crop": "face",  # face: the page's beauty crop (MTCNN box -> spec square); image: whole image resized
    "flip": True,  # random horizontal flip (CelebA's attributes are left/right symmetric)
    "seed": 0,
}
SYNTHETIC = {  # a fresh machine with no dataset: train something small, fast, that really learns
    "backbone": "small_cnn", "input_size": 48, "weights": "none", "head_epochs": 0,
    "epochs": 8, "batch_size": 16, "lr": 3e-3, "n_synthetic": 600,
    "crop": "image",  # synthetic images are drawn to fill the frame; no detector pass
    "flip": False,  # the synthetic attributes live in fixed cells: a flip would swap them
}
from facepack.models.attributes import BACKBONES  # noqa: E402

FLAG_KEYS = ("data", "skip_bad", "distribute", "max_train", "max_minutes", "stop_after")


def parse_args(argv):
    from facepack.training import trainer_parser

    p = trainer_parser("train_attributes.py", __doc__, DEFAULTS, SYNTHETIC, "CelebA folder (release layout)")
    p.add_argument("--backbone", choices=BACKBONES, help="small_cnn (from scratch only) or a beauty backbone")
    p.add_argument("--input-size", type=int, help="square input in pixels")
    p.add_argument("--weights", help="imagenet | none | PATH to backbone weights (.h5) | a packaged weight set "
                   "(efficientnet-lite0|lite1|lite2, as train_beauty.py)")
    p.add_argument("--head-epochs", type=int, help="phase 1 epochs (head only)")
    p.add_argument("--epochs", type=int, help="phase 2 epochs (whole network)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--head-lr", type=float)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay (phase 2)")
    p.add_argument("--optimizer", choices=["sgd", "adam"])
    p.add_argument("--loss", choices=["bce", "focal"])
    p.add_argument("--balance", choices=["pos_weight", "none"], help="class-imbalance handling")
    p.add_argument("--thresholds", choices=["f1", "prior", "0.5"], help="how the per-attribute thresholds are chosen")
    p.add_argument("--dropout", type=float)
    p.add_argument("--alpha", type=float, help="MobileNet width multiplier (e.g. 0.35, 0.5, 1.0)")
    p.add_argument("--bn-momentum", type=float, help="BatchNormalization moving-average momentum")
    p.add_argument("--crop", choices=["face", "image"],
                   help="face: the page's beauty crop (MTCNN, boxes cached under ~/.cache/facepack/faces); image: whole image")
    p.add_argument("--flip", action=__import__("argparse").BooleanOptionalAction, help="random horizontal flips")
    return p.parse_args(argv)


def resolve_config(args) -> dict:
    """Every default filled exactly once: the flag, else the synthetic preset (no --data), else DEFAULTS."""
    preset = dict(DEFAULTS, **({} if args.data else SYNTHETIC))
    cfg = {k: (getattr(args, k) if getattr(args, k, None) is not None else v) for k, v in preset.items()}
    cfg["n_synthetic"] = args.n_synthetic or SYNTHETIC["n_synthetic"]
    cfg.update({k: getattr(args, k) for k in FLAG_KEYS})
    for key in ("epochs", "batch_size"):
        if cfg[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {cfg[key]}")
    if cfg["head_epochs"] < 0:
        raise ValueError(f"--head-epochs must be >= 0, got {cfg['head_epochs']}")
    resolve_weights(cfg, args.backbone)
    return cfg


def resolve_weights(cfg: dict, backbone_flag) -> None:
    """--weights as train_beauty.py reads it: none -> None; a packaged weight set names its backbone."""
    from facepack.models import importers
    from facepack.models.beauty import pretrained_weight_set

    weights = str(cfg["weights"])
    if weights.lower() == "none":
        cfg["weights"] = None
    elif weights in importers.WEIGHT_SETS:
        fits = importers.WEIGHT_SETS[weights].backbone
        if backbone_flag not in (None, fits):
            raise ValueError(f"--weights {weights} fits --backbone {fits}, got --backbone {backbone_flag}")
        cfg["backbone"] = fits
    elif weights != "imagenet" and not Path(weights).is_file():
        raise ValueError(f"--weights must be imagenet, none, one of {sorted(importers.WEIGHT_SETS)} "
                         f"or an existing file, got {weights!r}")
    cfg["weight_set"] = None if cfg["backbone"] == "small_cnn" else pretrained_weight_set(cfg["backbone"], cfg["weights"])  # ValueError on a misfit
    if cfg["weights"] is None and cfg["head_epochs"]:
        cfg["head_epochs"] = 0  # a random backbone gains nothing from a frozen phase


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def load_data(cfg: dict):
    """-> CelebAData, with the training part cut to --max-train."""
    from facepack.data.celeba import ensure_synthetic_celeba, load_celeba

    root = cfg["data"] or ensure_synthetic_celeba(cfg["n_synthetic"], seed=cfg["seed"])
    data = load_celeba(root)
    for part in ("train", "val", "test"):
        if not (data.part == {"train": 0, "val": 1, "test": 2}[part]).any():
            raise ValueError(f"--data: {root} has no images in the {part} part (list_eval_partition.txt)")
    return data


def prepare_data(cfg: dict) -> dict:
    from facepack.data.celeba import attribute_dataset

    data = load_data(cfg)
    parts = {p: data.select(p) for p in ("train", "val", "test")}
    if cfg["max_train"]:
        paths, labels = parts["train"]
        parts["train"] = (paths[: cfg["max_train"]], labels[: cfg["max_train"]])
    squares, crops = crop_squares(cfg, parts)
    built: dict = {}

    def train_for(first_epoch: int, epochs: int):
        paths, labels = parts["train"]
        built["ds"] = attribute_dataset(paths, labels, cfg["input_size"], cfg["batch_size"], training=True,
                                        seed=cfg["seed"], squares=squares["train"], flip=cfg["flip"],
                                        first_epoch=first_epoch, epochs=epochs)
        return built["ds"]

    evals = {p: attribute_dataset(*parts[p], cfg["input_size"], cfg["batch_size"], training=False,
                                  squares=squares[p]) for p in ("val", "test")}
    counts = {p: len(parts[p][0]) for p in parts}
    info = {"name": data.name, "layout": "CelebA release", "path": str(data.root),
            "held_out": "list_eval_partition.txt: 1 = validation (thresholds), 2 = test (metrics)",
            **counts, "synthetic": data.synthetic, "terms": data.terms(), "crop": crops}
    return {"data": data, "parts": parts, "train_for": train_for, "val": evals["val"], "test": evals["test"],
            "steps_per_epoch": int(np.ceil(counts["train"] / cfg["batch_size"])), "dataset": info,
            "built": built}


def crop_squares(cfg: dict, parts: dict):
    """({part: squares | None}, crop description) for --crop (face: the beauty crop rule)."""
    if cfg["crop"] == "image":
        return {p: None for p in parts}, {"rule": "whole image resized"}
    from facepack.data.facecrops import face_squares

    order = [p for p in ("train", "val", "test")]
    all_paths = [path for p in order for path in parts[p][0]]
    squares, report = face_squares(all_paths)
    out, start = {}, 0
    for p in order:
        out[p] = squares[start:start + len(parts[p][0])]
        start += len(parts[p][0])
    info = {"rule": f"MTCNN box -> spec square, margin {spec.BEAUTY['crop_margin']} (the page's beauty crop)",
            "detected": report["detected"], "no_face_whole_image": len(report["fallback_whole_image"]),
            "multiple_faces": report["multiple_faces"]}
    return out, info


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def build_model(keras, cfg: dict, n_attributes: int):
    from facepack import training
    from facepack.models.attributes import build_attributes_model
    from facepack.models.importers import ImporterError

    try:
        model = build_attributes_model(keras, n_attributes, cfg["backbone"], cfg["input_size"],
                                       weights=cfg["weights"], dropout=cfg["dropout"], alpha=cfg["alpha"])
    except ImporterError as exc:
        raise TrainingError(str(exc)) from None
    training.set_bn_momentum(keras, model, cfg["bn_momentum"])
    return model


def compile_phase(keras, model, cfg: dict, phase: str, steps: int, pos_weight):
    from facepack.models.attributes import make_loss
    from facepack.models.beauty import backbone_layers

    for layer in backbone_layers(model):
        layer.trainable = phase != "head"
    lr = cfg["head_lr"] if phase == "head" else keras.optimizers.schedules.CosineDecay(
        cfg["lr"], decay_steps=max(1, steps * cfg["epochs"]))
    if cfg["optimizer"] == "sgd":
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=cfg["momentum"], nesterov=True,
                                   weight_decay=cfg["weight_decay"] or None)
    else:
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"])
    model.compile(optimizer=opt, loss=make_loss(keras, cfg["loss"], pos_weight),
                  metrics=[keras.metrics.BinaryAccuracy(name="acc")])


# ---------------------------------------------------------------------------------------------
# Train / Evaluate
# ---------------------------------------------------------------------------------------------
def evaluate(model, d: dict, cfg: dict, run_dir: Path | None = None) -> dict:
    """Thresholds on the validation part, metrics on the test part (and at 0.5), baselines.

    -> {"thresholds" (K,), "metrics", "metrics_at_0.5", "baselines", "val_probs", "test_probs"}.
    """
    from facepack.models.attributes import attribute_metrics, baselines, choose_thresholds

    names = list(d["data"].names)
    train_labels = d["parts"]["train"][1]
    val_probs = np.asarray(model.predict(d["val"], verbose=0), dtype=np.float64)
    test_probs = np.asarray(model.predict(d["test"], verbose=0), dtype=np.float64)
    thresholds = choose_thresholds(val_probs, d["parts"]["val"][1], cfg["thresholds"], train_labels.mean(axis=0))
    test_labels = d["parts"]["test"][1]
    out = {"thresholds": thresholds, "val_probs": val_probs, "test_probs": test_probs,
           "metrics": attribute_metrics(test_probs >= thresholds, test_labels, names),
           "metrics_at_0.5": attribute_metrics(test_probs >= 0.5, test_labels, names),
           "baselines": baselines(train_labels, test_labels, names)}
    if run_dir is not None:
        write_table(run_dir / "attributes.csv", out, train_labels.mean(axis=0))
        from facepack.plots_attributes import attribute_bars

        attribute_bars(out["metrics"], run_dir / "attributes.png", out["baselines"],
                       title=f"attributes {cfg['backbone']}@{cfg['input_size']} (test part"
                       f"{', SYNTHETIC' if d['data'].synthetic else ''})")
    return out


TABLE_COLUMNS = ("attribute", "threshold", "train_rate", "positives", "accuracy", "precision", "recall", "f1",
                 "f1_at_0.5")


def write_table(path: Path, result: dict, train_rates) -> Path:
    """attributes.csv: one row per attribute (TABLE_COLUMNS), then a "macro" row."""
    per, per05 = result["metrics"]["per_attribute"], result["metrics_at_0.5"]["per_attribute"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS)
        for j, (name, m) in enumerate(per.items()):
            w.writerow([name, f"{result['thresholds'][j]:.4f}", f"{train_rates[j]:.4f}", m["positives"],
                        f"{m['accuracy']:.4f}", f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
                        f"{per05[name]['f1']:.4f}"])
        m = result["metrics"]
        w.writerow(["macro", "", "", "", f"{m['mean_accuracy']:.4f}", f"{m['macro_precision']:.4f}",
                    f"{m['macro_recall']:.4f}", f"{m['macro_f1']:.4f}", f"{result['metrics_at_0.5']['macro_f1']:.4f}"])
    return path


def train(cfg: dict, runs_root=None, resume: str | None = None) -> Path:
    import keras

    from facepack import training
    from facepack.models.attributes import positive_weights

    training.seed_everything(cfg["seed"])
    d = prepare_data(cfg)
    info_ds, names = d["dataset"], list(d["data"].names)
    print(f"data: {info_ds['name']} ({info_ds['layout']} layout{', SYNTHETIC' if info_ds['synthetic'] else ''}): "
          f"{info_ds['train']} train, {info_ds['val']} validation, {info_ds['test']} test; {len(names)} attributes")
    train_labels = d["parts"]["train"][1]
    pos_weight = positive_weights(train_labels) if cfg["balance"] == "pos_weight" else None

    run_dir, done, history = training.open_run("attributes", cfg, runs_root, resume)
    info_ds.update(training.data_paths(info_ds, run_dir))
    steps = d["steps_per_epoch"]
    deadline = (time.time() + 60 * cfg["max_minutes"]) if cfg.get("max_minutes") else None
    with training.distribution_scope(cfg["distribute"]):
        model = build_model(keras, cfg, len(names))
        if done:
            training.restore_weights(model, run_dir)
            print(f"--resume: {done} epoch(s) already done in {run_dir}")
        start = 0
        t_train = time.perf_counter()
        for phase, n_epochs in (("head", cfg["head_epochs"]), ("full", cfg["epochs"])):
            end = start + n_epochs
            if n_epochs and done < end:
                first = max(start, done)
                compile_phase(keras, model, cfg, phase, steps, pos_weight)
                state: dict = {"deadline": deadline, "stop_after": cfg.get("stop_after")}
                print(f"phase {phase!r}: epochs {first + 1}..{end}")
                model.fit(d["train_for"](first, end - first), steps_per_epoch=steps, validation_data=d["val"],
                          initial_epoch=first, epochs=end,
                          callbacks=training.make_callbacks(keras, run_dir, history, phase, state),
                          verbose=training.verbose_level())
                training.check_nan(state)
            start = end
        train_seconds = time.perf_counter() - t_train

    result = evaluate(model, d, cfg, run_dir)
    m, base = result["metrics"], result["baselines"]
    print(f"test part: macro F1 {m['macro_f1']:.4f} (at 0.5: {result['metrics_at_0.5']['macro_f1']:.4f}; "
          f"majority baseline {base['majority']['macro_f1']:.4f}, all-negative {base['all_negative']['macro_f1']:.4f})  "
          f"mean accuracy {m['mean_accuracy']:.4f} (majority {base['majority']['mean_accuracy']:.4f})  "
          f"macro precision {m['macro_precision']:.4f}  recall {m['macro_recall']:.4f}  (n={m['n']})")
    np.savez(run_dir / "held_out_predictions.npz", val_probs=result["val_probs"], test_probs=result["test_probs"],
             test_labels=d["parts"]["test"][1], thresholds=result["thresholds"], names=np.asarray(names))
    training.save_model(keras, model, run_dir / "model.keras")
    cols = history.columns()
    if cols:
        from facepack.plots import training_curves

        training_curves({k: v for k, v in cols.items() if k not in ("epoch", "seconds")}, run_dir / "curves.png",
                        title=f"attributes {cfg['backbone']}@{cfg['input_size']}")
    from training.train_beauty import weights_info

    info = {
        "model": "attributes", "backbone": cfg["backbone"], "input_size": cfg["input_size"], "alpha": cfg["alpha"],
        "dropout": cfg["dropout"], "synthetic": bool(info_ds["synthetic"]),
        "attributes": {"names": names, "thresholds": [round(float(t), 4) for t in result["thresholds"]],
                       "threshold_method": cfg["thresholds"],
                       "crop_rule": "beauty",  # the page crops this model's faces by the beauty rule
                       "train_rates": [float(r) for r in train_labels.mean(axis=0)],
                       "pos_weight": None if pos_weight is None else [float(w) for w in pos_weight]},
        "pretrained": cfg["weights"] if isinstance(cfg["weights"], str) else "none (from scratch)",
        "weights": weights_info(cfg), "dataset": info_ds,
        "metrics": {k: v for k, v in m.items()}, "metrics_at_0.5": result["metrics_at_0.5"],
        "baselines": base, "args": dict(cfg), "versions": training.versions(),
        **training.run_summary(history, info_ds["train"], None, train_seconds),
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
