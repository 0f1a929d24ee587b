"""Train the beauty model on CPU: a frozen pretrained lower part run once, its feature maps cached.

Title: facial beauty prediction, the CPU path (cached features of a frozen ImageNet backbone)
Model: the same model train_beauty.py builds with --weights efficientnet-liteN (EfficientNet-Lite
       ImageNet backbone -> global average pooling -> Dense(101) softmax over the scores 0..100,
       raw RGB 0..255 in), one Keras model. Blocks before --freeze-until keep their ImageNet
       weights; blocks from --freeze-until on, the 1280-channel top conv and the head are trained.
       With --calibrate a fixed last layer maps the expected score linearly (fitted on the
       training part only; facepack/models/beauty.py:add_calibration), so the exported head and
       the page need no change.
Speed: the frozen part runs once per face crop and once on its horizontal mirror; its output
       (the feature map entering block --freeze-until) is cached as float16 under
       $FACEPACK_CACHE/features/ (default ~/.cache/facepack), keyed by data, crop rule, weights,
       input size and block. Epochs then cost only the top blocks; each epoch shows every
       training face once, mirrored or not at random (seeded). No other augmentation.
Data:  SCUT-FBP5500, reduced layout (Images/ + one labels file): hold out fold --cv-fold K of 5
       (the same folds as train_beauty.py --cv-fold; fold 1 is its default 20 % hold-out), and
       face crops as the page makes them (train_beauty.py --crop face).
Probe: --probe fits a ridge regression on the pooled 1280-d top features (mean of the crop and
       its mirror; ridge strength by leave-one-out on the training part only): the floor to beat.

Usage:
    python training/train_beauty_cached.py --data ../shared/datasets/scut-fbp5500-train --cv-fold 1
    python training/train_beauty_cached.py --data ../shared/datasets/scut-fbp5500-train --cv-all
    python training/train_beauty_cached.py --data ../shared/datasets/scut-fbp5500-train --cv-all --probe

Writes (one fold) runs/beauty/<timestamp>/: model.keras, run.json (metrics before/after calibration,
per group), history.csv, curves.png, scatter.png, held_out_predictions.npz: the layout of
train_beauty.py, so evaluate.py, convert/to_tfjs.py and facepack.runs.choose_run take it.
--cv-all writes runs/beauty_cv/<timestamp>/: fold1..fold5/ (run folders as above, kept out of
runs/beauty/ so that protocol runs are not chosen as the model) and cv.json + cv.md (mean +- std of
PC / MAE / RMSE / mean signed error, per group, before and after calibration).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from facepack import spec  # noqa: E402
from facepack.training import TrainingError  # noqa: E402

DEFAULTS = {
    "weights": "efficientnet-lite0",  # a packaged weight set (facepack/models/importers.py WEIGHT_SETS)
    "input_size": 192,  # pixels, square (Lite0 is native at 224; 192 costs 0.73x the compute)
    # The shipped recipe (issue 13; its 5-fold CV is models/shipped/beauty/cv.json: PC 0.8904).
    # Lite0 blocks: 8..10 = the 112-channel stage, 11..14 the 192-channel stage, 15 the last. The
    # previous model trained from block 11 (8 epochs, weight decay 1e-4, dropout 0.3): CV PC 0.8772.
    "freeze_until": 8,  # first trained block; the map entering it is cached (12x12x80 at 192 px)
    "epochs": 6,
    "batch_size": 32,  # faces
    "optimizer": "adam",
    "lr": 5e-4,  # peak learning rate, cosine-decayed to 0 over --epochs
    "weight_decay": 5e-4,  # decoupled
    "momentum": 0.9,  # sgd only
    "label_sigma": 3.0,  # Gaussian label distributions over the 101 bins
    "dropout": 0.5,
    "bn_momentum": 0.9,
    "calibrate": "linear",  # none | bias | linear: map of the expected score fitted on the training part
    "seed": 0,
}
CV_FOLDS = 5
SUMMARY_PARTS = ("calibrated", "before_calibration", "probe")  # cv.json blocks of mean +- std
CALIBRATIONS = ("none", "bias", "linear")
RIDGE_ALPHAS = tuple(10.0 ** np.arange(-2, 5.01, 0.5))  # the probe's grid (standardised features)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="train_beauty_cached.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] + "\nDefaults: " + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()))
    p.add_argument("--data", required=True, help="SCUT-FBP5500 folder, reduced layout (Images/ + labels file)")
    p.add_argument("--labels", help="labels file (default: the only *.txt beside Images/)")
    folds = p.add_mutually_exclusive_group(required=True)
    folds.add_argument("--cv-fold", type=int, choices=range(1, CV_FOLDS + 1), metavar="K",
                       help=f"hold out fold K of {CV_FOLDS} (folds seeded by --seed, as train_beauty.py)")
    folds.add_argument("--cv-all", action="store_true", help=f"all {CV_FOLDS} folds in turn + cv.json/cv.md")
    p.add_argument("--faces-cache", metavar="FILE",
                   help="face boxes cached by an earlier detector version (facepack/data/facecrops.py) instead "
                   "of detecting with this one (default: this version's cache, detecting what is missing)")
    p.add_argument("--probe", action="store_true", help="ridge probe on pooled top features only (no model)")
    p.add_argument("--weights", choices=["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
    p.add_argument("--input-size", type=int, help="square input in pixels")
    p.add_argument("--freeze-until", type=int, metavar="BLOCK",
                   help="first trained block; the blocks before it stay frozen and their output is cached")
    p.add_argument("--epochs", type=int)
    p.add_argument("--stop-after", type=int, metavar="EPOCHS",
                   help="stop after this many epochs, the learning-rate schedule still planned for --epochs")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--label-sigma", type=float, help="std of the Gaussian labels (bins); 0 = one-hot")
    p.add_argument("--dropout", type=float)
    p.add_argument("--bn-momentum", type=float)
    p.add_argument("--calibrate", choices=CALIBRATIONS,
                   help="fold a map of the expected score, fitted on the training part, into the model")
    p.add_argument("--seed", type=int)
    p.add_argument("--runs", default=None, help="runs root (default: runs/)")
    p.add_argument("--max-train", type=int, help="use at most this many training faces (quick trials)")
    return p.parse_args(argv)


def resolve_config(args) -> dict:
    cfg = {k: (getattr(args, k) if getattr(args, k, None) is not None else v) for k, v in DEFAULTS.items()}
    from facepack.models import importers

    cfg["backbone"] = importers.WEIGHT_SETS[cfg["weights"]].backbone
    for key in ("epochs", "batch_size"):
        if cfg[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {cfg[key]}")
    if cfg["input_size"] < 32 or cfg["input_size"] % 32:
        raise ValueError(f"--input-size must be a multiple of 32 (>= 32), got {cfg['input_size']}")
    n_blocks = len(importers.lite_blocks(cfg["backbone"]))
    if not 1 <= cfg["freeze_until"] < n_blocks:
        raise ValueError(f"--freeze-until must be in 1..{n_blocks - 1} for {cfg['backbone']}, got {cfg['freeze_until']}")
    if cfg["label_sigma"] < 0:
        raise ValueError(f"--label-sigma must be >= 0 (bins), got {cfg['label_sigma']}")
    # what train_beauty.load_data / evaluate.py need to re-derive the same held-out part
    cfg.update({"data": args.data, "labels": args.labels, "split": "60-40", "cv_fold": args.cv_fold,
                "val_fraction": 0.2, "max_train": args.max_train, "stop_after": args.stop_after, "skip_bad": False, "crop": "face",
                "head_epochs": 0, "alpha": 1.0, "cv_all": bool(args.cv_all), "probe": bool(args.probe),
                "trainer": "train_beauty_cached.py",
                "faces_cache": str(Path(args.faces_cache).resolve()) if args.faces_cache else None})
    if args.faces_cache and not Path(args.faces_cache).is_file():
        raise ValueError(f"--faces-cache: {args.faces_cache} is not a file")
    return cfg


# ---------------------------------------------------------------------------------------------
# The frozen part, run once: cached feature maps (crop and mirror) + pooled top features
# ---------------------------------------------------------------------------------------------
def cut_layer(model, block: int) -> str:
    names = [layer.name for layer in model.layers]
    return f"block{block}_expand_conv" if f"block{block}_expand_conv" in names else f"block{block}_dw_conv"


def features_cache_file(cfg: dict, samples, squares: np.ndarray) -> Path:
    from facepack.data.scut import dataset_fingerprint
    from facepack.models.importers import weight_set_info

    root = os.environ.get("FACEPACK_CACHE") or Path.home() / ".cache" / "facepack"
    key = json.dumps({"data": dataset_fingerprint(samples), "order": [Path(s.path).name for s in samples],
                      "squares": hashlib.sha256(np.ascontiguousarray(squares, np.float64).tobytes()).hexdigest(),
                      "weights": weight_set_info(cfg["weights"])["sha256"], "size": cfg["input_size"],
                      "block": cfg["freeze_until"], "crop_margin": spec.BEAUTY["crop_margin"], "version": 1,
                      # tfdata crops squares larger than the input with this (area since 3f91350): a cache of
                      # bilinear crops would fail end_to_end_check against the area-cropped raw faces
                      **({"downscale": spec.CROP_DOWNSCALE} if spec.CROP_DOWNSCALE != "bilinear" else {})},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(root) / "features" / f"{cfg['weights']}-{cfg['input_size']}-b{cfg['freeze_until']}-{digest}.npz"


def cached_features(keras, cfg: dict, samples, squares: np.ndarray) -> dict:
    """{"maps": (N, 2, h, w, C) float16 (crop, mirror), "pooled": (N, 2, 1280) float32, "names"}.

    Computed once with the frozen ImageNet model on the face crops (facepack/data/tfdata.py
    beauty_dataset, the page's crop) and cached (features_cache_file).
    """
    path = features_cache_file(cfg, samples, squares)
    if path.is_file():
        with np.load(path) as z:
            print(f"features: cached {path}")
            return {k: z[k] for k in z.files}
    from facepack.data.tfdata import beauty_dataset
    from facepack.models.beauty import build_beauty_model
    from facepack.progress import progress  # tqdm on a terminal; in logs whole lines, the last one once

    model = build_beauty_model(keras, cfg["backbone"], cfg["input_size"], weights=cfg["weights"])
    cut = model.get_layer(cut_layer(model, cfg["freeze_until"])).input
    pooled = keras.layers.GlobalAveragePooling2D()(model.get_layer("features").output)
    extractor = keras.Model(model.input, [cut, pooled])
    ds = beauty_dataset(samples, cfg["input_size"], 32, training=False, squares=squares, cache=False)
    maps, pools = [], []
    t0 = time.perf_counter()
    for images, _ in progress(ds, total=int(np.ceil(len(samples) / 32)), desc="frozen part (crop + mirror)", unit="batch"):
        x = np.asarray(images)
        a = extractor.predict_on_batch(x)
        b = extractor.predict_on_batch(x[:, :, ::-1])
        maps.append(np.stack([np.asarray(a[0]), np.asarray(b[0])], 1).astype(np.float16))
        pools.append(np.stack([np.asarray(a[1]), np.asarray(b[1])], 1).astype(np.float32))
    out = {"maps": np.concatenate(maps), "pooled": np.concatenate(pools),
           "names": np.array([Path(s.path).name for s in samples])}
    print(f"features: {len(samples)} faces x 2 in {time.perf_counter() - t0:.0f} s, maps {out['maps'].shape} "
          f"({out['maps'].nbytes / 2**20:.0f} MiB) -> {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)
    return out


# ---------------------------------------------------------------------------------------------
# Probe and calibration
# ---------------------------------------------------------------------------------------------
def ridge_probe(x_train, y_train, x_val, alphas=RIDGE_ALPHAS) -> tuple[np.ndarray, dict]:
    """Ridge regression (features standardised on the training part); alpha by exact leave-one-out
    error on the training part (SVD). -> (validation predictions, {"alpha", "loo_rmse"})."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt, xv = (x_train - mu) / sd, (x_val - mu) / sd
    ym = y_train.mean()
    u, s, vt = np.linalg.svd(xt, full_matrices=False)
    uty = u.T @ (y_train - ym)
    best = None
    for a in alphas:
        d = s ** 2 / (s ** 2 + a)
        fit = u @ (d * uty)
        hat = np.einsum("ij,j,ij->i", u, d, u)
        loo = np.sqrt(np.mean(((y_train - ym - fit) / (1 - hat)) ** 2))
        if best is None or loo < best[1]:
            best = (a, loo)
    a = best[0]
    w = vt.T @ ((s / (s ** 2 + a)) * uty)
    return xv @ w + ym, {"alpha": float(a), "loo_rmse": float(best[1])}


def fit_calibration(pred_1to5, true_1to5, kind: str) -> tuple[float, float]:
    """(slope, offset) on the 0..100 score scale with true ~ slope * pred + offset (least squares);
    bias: slope 1, offset = mean error; none: identity."""
    scale = spec.BEAUTY["label_scale"]
    p, t = np.asarray(pred_1to5, np.float64) * scale, np.asarray(true_1to5, np.float64) * scale
    if kind == "none":
        return 1.0, 0.0
    if kind == "bias":
        return 1.0, float(np.mean(t - p))
    slope, offset = np.polyfit(p, t, 1)
    if not slope > 0:
        raise TrainingError(f"--calibrate linear: the fitted slope is {slope:.3f} (predictions do not follow the "
                            "labels on the training part); use --calibrate bias or none")
    return float(slope), float(offset)


def apply_calibration(pred_1to5, slope: float, offset: float) -> np.ndarray:
    """The fitted linear map of the expected score (1..5), clipped to the score range. Equals the
    calibration layer only while no bin's target leaves 0..100 (slope near 1); the reported metrics
    use the layer's own map (predict_maps(..., calibration=calibration_matrix(...)))."""
    scale = spec.BEAUTY["label_scale"]
    return np.clip(slope * np.asarray(pred_1to5, np.float64) * scale + offset, 0, spec.BEAUTY["bins"] - 1) / scale


# ---------------------------------------------------------------------------------------------
# Training the top on cached maps
# ---------------------------------------------------------------------------------------------
def _batches_class(keras):
    class MirrorBatches(keras.utils.PyDataset):
        """Batches of cached maps: each epoch a seeded shuffle, each face as crop or mirror at random."""

        def __init__(self, maps, labels, batch_size: int, seed: int, training: bool):
            super().__init__()
            self.maps, self.labels, self.bs, self.seed, self.training = maps, labels, batch_size, seed, training
            self.epoch = 0
            self._plan()

        def _plan(self):
            rng = np.random.default_rng([self.seed, self.epoch])
            n = len(self.maps)
            self.order = rng.permutation(n) if self.training else np.arange(n)
            self.mirror = rng.integers(0, 2, n) if self.training else np.zeros(n, int)

        def __len__(self):
            return int(np.ceil(len(self.maps) / self.bs))

        def __getitem__(self, i):
            idx = np.sort(self.order[i * self.bs:(i + 1) * self.bs]) if not self.training else \
                self.order[i * self.bs:(i + 1) * self.bs]
            x = self.maps[idx, self.mirror[idx]].astype(np.float32)
            return x, self.labels[idx]

        def on_epoch_end(self):
            if self.training:
                self.epoch += 1
                self._plan()

    return MirrorBatches


def predict_maps(model, maps, batch_size: int = 128, calibration=None) -> tuple[np.ndarray, np.ndarray]:
    """(expected score (1..5) averaged over the crop and its mirror, that of the crop alone).

    ``calibration``: a (101, 101) calibration_matrix applied to the probabilities first, exactly
    what the saved model's calibration layer does (so the numbers are the shipped model's).
    """
    from facepack.models.beauty import expected_score, score_to_1to5

    out = []
    for view in (0, 1):
        probs = np.concatenate([np.asarray(model.predict_on_batch(maps[i:i + batch_size, view].astype(np.float32)))
                                for i in range(0, len(maps), batch_size)])
        if calibration is not None:
            probs = probs @ calibration
        out.append(score_to_1to5(expected_score(probs)))
    return np.mean(out, 0), out[0]


def train_fold(keras, cfg: dict, fold: int, feats: dict, data, run_dir: Path) -> dict:
    """Train the top on fold ``fold``'s training part; write the run folder; -> run.json info."""
    from facepack import training
    from facepack.data.labels import beauty_labels
    from facepack.models.beauty import add_calibration, build_beauty_model, calibration_matrix, top_part
    from training import train_beauty

    fcfg = dict(cfg, cv_fold=fold)
    train_set, val_set, _, held_out = train_beauty.load_data(fcfg)
    index = {str(n): i for i, n in enumerate(feats["names"])}
    tr = np.array([index[Path(s.path).name] for s in train_set])
    va = np.array([index[Path(s.path).name] for s in val_set])
    y_tr = np.array([s.score for s in train_set])
    y_va = np.array([s.score for s in val_set])
    names_va = [Path(s.path).name for s in val_set]
    info = {"model": "beauty", "backbone": cfg["backbone"], "input_size": cfg["input_size"], "alpha": 1.0,
            "dropout": cfg["dropout"], "synthetic": False, "pretrained": cfg["weights"],
            "weights": train_beauty.weights_info(dict(cfg, weight_set=cfg["weights"])),
            "dataset": dict(cfg["dataset"], held_out=held_out, train=len(train_set), validation=len(val_set)),
            "skipped": []}
    info["dataset"].update(training.data_paths(info["dataset"], run_dir))

    if cfg["probe"]:
        x = feats["pooled"].astype(np.float64).mean(1)
        pred, ridge = ridge_probe(x[tr], y_tr, x[va])
        metrics = train_beauty.held_out_metrics(pred, y_va, names_va)
        info.update({"probe": dict(ridge, features="pooled top_relu (1280), mean of crop and mirror"),
                     "metrics": metrics})
        training.write_json(run_dir / "probe.json", info)
        print(f"fold {fold} probe: PC {metrics['pc']:.4f}  MAE {metrics['mae']:.4f}  RMSE {metrics['rmse']:.4f}  "
              f"alpha {ridge['alpha']:g}")
        return info

    training.seed_everything(cfg["seed"])
    model = build_beauty_model(keras, cfg["backbone"], cfg["input_size"], weights=cfg["weights"],
                               dropout=cfg["dropout"])
    training.set_bn_momentum(keras, model, cfg["bn_momentum"])
    top = top_part(keras, model, cfg["freeze_until"])
    steps = int(np.ceil(len(tr) / cfg["batch_size"]))
    lr = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=steps * cfg["epochs"])
    if cfg["optimizer"] == "sgd":
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=cfg["momentum"], nesterov=True,
                                   weight_decay=cfg["weight_decay"] or None)
    else:
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"])
    top.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(),
                metrics=train_beauty.score_metrics(keras))
    batches = _batches_class(keras)
    labels_tr = beauty_labels(y_tr, cfg["label_sigma"])
    labels_va = beauty_labels(y_va, cfg["label_sigma"])
    maps = feats["maps"]
    train_b = batches(maps[tr], labels_tr, cfg["batch_size"], cfg["seed"], True)
    val_b = batches(maps[va], labels_va, 128, cfg["seed"], False)
    history = training.History(run_dir / "history.csv")
    state: dict = {"stop_after": cfg.get("stop_after")}
    t0 = time.perf_counter()
    top.fit(train_b, validation_data=val_b, epochs=cfg["epochs"],
            callbacks=training.make_callbacks(keras, run_dir, history, "top", state),
            verbose=training.verbose_level())
    training.check_nan(state)
    train_seconds = time.perf_counter() - t0

    # the metrics are those of the model as shipped: one view per face (no test-time mirror)
    pred_va_flip, pred_va = predict_maps(top, maps[va])
    _, pred_tr = predict_maps(top, maps[tr])
    before = train_beauty.held_out_metrics(pred_va, y_va, names_va)
    slope, offset = fit_calibration(pred_tr, y_tr, cfg["calibrate"])
    if cfg["calibrate"] != "none":
        model = add_calibration(keras, model, slope, offset)
        # "after calibration" is what the saved model computes: the fixed 101x101 map on the
        # probabilities. That clips each bin's target to 0..100, so with a slope far from 1 it is
        # not the linear map of the expected score (apply_calibration) the fit assumed.
        after_flip, after_pred = predict_maps(top, maps[va], calibration=calibration_matrix(slope, offset))
    else:
        after_flip, after_pred = pred_va_flip, pred_va
    after = train_beauty.held_out_metrics(after_pred, y_va, names_va)
    # the one saved model, checked on raw pixels for a few held-out faces
    check = end_to_end_check(keras, model, cfg, val_set[:8], after_pred[:8])
    metrics = dict(after)
    metrics.update({"before_calibration": before,
                    "training_part_mean_signed_error": float(np.mean(pred_tr - y_tr)),
                    "with_test_time_mirror": train_beauty.held_out_metrics(after_flip, y_va)})
    np.savez(run_dir / "held_out_predictions.npz", names=np.asarray(names_va), pred_1to5=after_pred,
             pred_uncalibrated_1to5=pred_va, true_1to5=y_va)
    from facepack.plots import score_scatter, training_curves

    score_scatter(after_pred, y_va, run_dir / "scatter.png", metrics,
                  title=f"beauty {cfg['backbone']}@{cfg['input_size']} fold {fold} (held-out)")
    cols = history.columns()
    training_curves({k: v for k, v in cols.items() if k not in ("epoch", "seconds")}, run_dir / "curves.png",
                    title=f"beauty {cfg['backbone']}@{cfg['input_size']} top from block {cfg['freeze_until']}")
    training.save_model(keras, model, run_dir / "model.keras")
    info.update({
        "metrics": metrics,
        "calibration": {"kind": cfg["calibrate"], "slope": slope, "offset_points": offset,
                        "fitted_on": f"the training part ({len(tr)} faces, one view each), "
                                     "expected scores on 0..100", "layer": "calibration (fixed Dense 101x101 after the softmax)"},
        "frozen": {"until_block": cfg["freeze_until"], "cache": cfg["features_cache"],
                   "trainable_params": int(sum(np.prod(w.shape) for w in top.trainable_weights))},
        "end_to_end_check": check,
        "args": {k: v for k, v in fcfg.items() if k != "dataset"},
        "versions": training.versions(),
        **training.run_summary(history, len(tr), None, train_seconds),
    })
    training.finish_run(run_dir, info)
    print(f"fold {fold}: PC {before['pc']:.4f} MAE {before['mae']:.4f} RMSE {before['rmse']:.4f} "
          f"mse {before['mean_signed_error']:+.4f} -> calibrated ({cfg['calibrate']} {slope:.3f}x{offset:+.2f}) "
          f"PC {after['pc']:.4f} MAE {after['mae']:.4f} RMSE {after['rmse']:.4f} mse {after['mean_signed_error']:+.4f}")
    return info


def end_to_end_check(keras, model, cfg, samples, want) -> dict:
    """The saved model on raw face crops equals the cached-features path (same faces, no mirror)."""
    from facepack.data.tfdata import beauty_dataset
    from facepack.models.beauty import expected_score, score_to_1to5
    from training import train_beauty

    squares, _, _ = train_beauty.crop_squares(cfg, samples, [])
    ds = beauty_dataset(samples, cfg["input_size"], len(samples), training=False, squares=squares, cache=False)
    got = score_to_1to5(expected_score(model.predict(ds, verbose=0)))
    diff = float(np.max(np.abs(got - want)))
    # float16 feature cache: the two paths agree to ~1e-3 on 1..5
    if diff > 0.02:
        raise TrainingError(f"the saved model differs from the cached-feature path by {diff:.4f} (1..5, limit "
                            f"0.02) on {len(samples)} faces (both with the calibration layer): the feature cache "
                            f"{cfg['features_cache']} may be stale; delete it and re-run. If the difference stays, "
                            "the two paths disagree (a bug: report it with the run's config.json)")
    return {"faces": len(samples), "max_abs_diff_1to5": diff}


# ---------------------------------------------------------------------------------------------
# Folds and the CV summary
# ---------------------------------------------------------------------------------------------
def _mean_std(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "folds": v.tolist()}


def cv_summary(infos: dict, cfg: dict) -> dict:
    """Mean +- std over folds of PC, MAE, RMSE, mean signed error (calibrated and before), per group."""
    keys = ("pc", "mae", "rmse", "mean_signed_error")
    out = {"folds": sorted(infos), "config": {k: v for k, v in cfg.items() if k != "dataset"}}
    parts = ((("probe", lambda m: m),) if cfg.get("probe") else
             (("calibrated", lambda m: m), ("before_calibration", lambda m: m.get("before_calibration", m))))
    for label, get in parts:
        ms = [get(infos[f]["metrics"]) for f in sorted(infos)]
        block = {k: _mean_std([m[k] for m in ms]) for k in keys}
        block["groups"] = {g: {k: _mean_std([m["groups"][g][k] for m in ms]) for k in keys}
                           for g in train_beauty_groups() if all(g in m.get("groups", {}) for m in ms)}
        out[label] = block
    return out


def train_beauty_groups():
    from training.train_beauty import GROUPS

    return GROUPS


def cv_markdown(summary: dict, title: str) -> str:
    lines = [f"# {title}", ""]
    for label in SUMMARY_PARTS:
        if label not in summary:
            continue
        block = summary[label]
        lines += [f"## {label} (mean ± std over folds {summary['folds']})", "",
                  "| part | PC | MAE | RMSE | mean signed error |", "|---|---|---|---|---|"]
        rows = [("all", block)] + list(block.get("groups", {}).items())
        for name, m in rows:
            lines.append(f"| {name} | " + " | ".join(f"{m[k]['mean']:.4f} ± {m[k]['std']:.4f}"
                                                 for k in ("pc", "mae", "rmse", "mean_signed_error")) + " |")
        lines += ["", "per fold PC: " + ", ".join(f"{v:.4f}" for v in block["pc"]["folds"]), ""]
    return "\n".join(lines)


def train(cfg: dict, runs_root=None) -> Path:
    import keras

    from facepack import runs, training
    from facepack.data.scut import dataset_fingerprint
    from training import train_beauty

    train_set, val_set, data, held_out = train_beauty.load_data(dict(cfg, cv_fold=cfg["cv_fold"] or 1))
    samples = list(data.train)
    squares, _, crops = train_beauty.crop_squares(cfg, samples, [])
    cfg["dataset"] = dict(train_beauty.dataset_info(data, held_out, train_set, val_set, dataset_fingerprint),
                          crop=crops)
    feats = cached_features(keras, cfg, samples, squares)
    cfg["features_cache"] = str(features_cache_file(cfg, samples, squares))
    base = Path(runs_root) if runs_root is not None else runs.RUNS_ROOT
    folds = list(range(1, CV_FOLDS + 1)) if cfg["cv_all"] else [cfg["cv_fold"]]
    if cfg["cv_all"]:
        out_dir = training.new_run_dir("beauty_cv", base, name=_dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                                       + ("-probe" if cfg["probe"] else ""))
    infos = {}
    for k in folds:
        if cfg["cv_all"]:
            run_dir = out_dir / f"fold{k}"
            run_dir.mkdir()
        else:
            run_dir = training.new_run_dir("beauty_probe" if cfg["probe"] else "beauty", base)
        training.save_config(run_dir, {k2: v for k2, v in dict(cfg, cv_fold=k).items()})
        if not cfg["probe"]:
            training.write_json(run_dir / training.RESUME_FILE, {"epoch": 0, "phase": None, "weights": None})
        print(f"== fold {k} of {CV_FOLDS} -> {run_dir}")
        infos[k] = train_fold(keras, cfg, k, feats, data, run_dir)
    if not cfg["cv_all"]:
        print(f"run written to {run_dir}")
        return run_dir
    summary = cv_summary(infos, cfg)
    summary["runs"] = {k: str(out_dir / f"fold{k}") for k in folds}
    training.write_json(out_dir / "cv.json", summary)
    what = "ridge probe" if cfg["probe"] else f"{cfg['backbone']}@{cfg['input_size']}, top from block {cfg['freeze_until']}"
    (out_dir / "cv.md").write_text(cv_markdown(summary, f"Beauty {CV_FOLDS}-fold CV: {what}"))
    print((out_dir / "cv.md").read_text())
    print(f"CV written to {out_dir}")
    return out_dir


def main(argv=None) -> Path:
    from facepack.models.importers import ImporterError

    args = parse_args(argv)
    try:
        return train(resolve_config(args), runs_root=args.runs)
    except ImporterError as exc:  # a weight package that is not installed: one line (run_cli), exit 2
        raise TrainingError(str(exc)) from None


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
