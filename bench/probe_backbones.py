"""Linear probe of frozen pretrained backbones on SCUT-FBP5500 face crops (issue 13): which is worth fine-tuning.

    python bench/probe_backbones.py --data ../shared/datasets/scut-fbp5500-train [--limit N]

Each image is cropped the way the page crops for the beauty model (MTCNN box -> the spec's beauty
square, facepack/data/facecrops.py, boxes cached), resized to each backbone's native input, and
its frozen features (global average pool) feed a ridge regression on the 1..5 labels. Protocol:
5-fold cross-validation over all images given (seeded permutation); inside each training part the
ridge penalty is chosen by an inner 5-fold CV on a grid; features are z-scored on the training
part. Prints Pearson correlation (PC) mean +- std over the folds per feature set, and MAE.

Feature sets:
  dlib-resnet/pool256     dlib face-descriptor ResNet (importers "dlib-resnet"), 150 px, pooled 256-d
  dlib-resnet/desc128     its 128-d descriptor
  dlib-resnet/conv128     pooled output of its conv128 stage (a truncated ~1.2 M-parameter net)
  dlib-resnet/tight       pool256 on a tighter square (margin 0.1 instead of the beauty margin)
  efficientnet-lite0      EfficientNet-Lite0 ImageNet (importers "efficientnet-lite0"), 224 px, 1280-d
Features are cached in --cache (npz) so a rerun only fits the probes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import common  # noqa: E402,F401  (a bench script's TensorFlow start-up lines are filtered: facepack/tfquiet.py)

ALPHAS = np.logspace(-1, 5, 13)  # ridge penalties tried (on z-scored features)
FOLDS = 5
BATCH = 300  # images decoded and cropped at a time (predict batches of 50)


def read_labels(root: Path, limit: int | None):
    lines = [ln.split() for ln in (root / "train.txt").read_text().splitlines() if ln.strip()]
    if limit:
        lines = lines[:limit]
    return [root / "Images" / f for f, _ in lines], np.array([float(s) for _, s in lines])


def extract(paths, squares, tight_squares, log=print) -> dict[str, np.ndarray]:
    import keras

    from facepack.crop import crop_squares
    from facepack.data.images import load_rgb
    from facepack.models import importers
    from facepack.models.beauty import POOL_LAYER, build_beauty_model

    dlib = importers.dlib_descriptor_model(keras)
    conv128 = keras.layers.GlobalAveragePooling2D()(dlib.get_layer("conv128_2_relu").output)
    dlib_all = keras.Model(dlib.input, [*dlib.outputs, conv128])
    lite = build_beauty_model(keras, "efficientnet_lite0", 224, weights="efficientnet-lite0")
    lite_pool = keras.Model(lite.input, lite.get_layer(POOL_LAYER).output)
    out: dict[str, list] = {k: [] for k in ("dlib-resnet/pool256", "dlib-resnet/desc128", "dlib-resnet/conv128",
                                            "dlib-resnet/tight", "efficientnet-lite0")}
    t0 = time.time()
    for start in range(0, len(paths), BATCH):
        rgbs = [load_rgb(p) for p in paths[start:start + BATCH]]
        sq, tsq = squares[start:start + BATCH], tight_squares[start:start + BATCH]
        c150 = np.concatenate([crop_squares(r, [s], 150) for r, s in zip(rgbs, sq)])
        t150 = np.concatenate([crop_squares(r, [s], 150) for r, s in zip(rgbs, tsq)])
        c224 = np.concatenate([crop_squares(r, [s], 224) for r, s in zip(rgbs, sq)])
        desc, pool, c128 = dlib_all.predict(c150, batch_size=50, verbose=0)
        out["dlib-resnet/pool256"].append(pool)
        out["dlib-resnet/desc128"].append(desc)
        out["dlib-resnet/conv128"].append(c128)
        out["dlib-resnet/tight"].append(dlib_all.predict(t150, batch_size=50, verbose=0)[1])
        out["efficientnet-lite0"].append(lite_pool.predict(c224, batch_size=50, verbose=0))
        if log:
            log(f"  features {start + len(rgbs)}/{len(paths)} ({time.time() - t0:.0f} s)")
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}


def _ridge_fits(x, y, alphas):
    """Ridge on z-scored x for every alpha at once (one eigendecomposition): [predict(q)] per alpha."""
    mu, sd = x.mean(0), x.std(0) + 1e-8
    z = (x - mu) / sd
    ym = y.mean()
    lam, vecs = np.linalg.eigh(z.T @ z)
    proj = vecs.T @ (z.T @ (y - ym))
    ws = [vecs @ (proj / (lam + alpha)) for alpha in alphas]
    return [lambda q, w=w: ((q - mu) / sd) @ w + ym for w in ws]


def _folds(n, k, seed):
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[i::k] for i in range(k)]


def _pc(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def probe(x, y, seed=0) -> dict:
    pcs, maes, chosen = [], [], []
    for test in _folds(len(y), FOLDS, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        inner = _folds(len(train), FOLDS, seed + 1)
        pred = np.empty((len(ALPHAS), len(train)))
        for itest in inner:
            itrain = np.setdiff1d(np.arange(len(train)), itest)
            for a, fit in enumerate(_ridge_fits(x[train[itrain]], y[train[itrain]], ALPHAS)):
                pred[a, itest] = fit(x[train[itest]])
        best = int(np.argmax([_pc(p, y[train]) for p in pred]))
        alpha = float(ALPHAS[best])
        pred = _ridge_fits(x[train], y[train], [alpha])[0](x[test])
        pcs.append(_pc(pred, y[test]))
        maes.append(float(np.abs(pred - y[test]).mean()))
        chosen.append(alpha)
    return {"pc": float(np.mean(pcs)), "pc_std": float(np.std(pcs)), "mae": float(np.mean(maes)), "alphas": chosen}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="SCUT-FBP5500 folder with Images/ and train.txt")
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "facepack" / "probe_features.npz"))
    ap.add_argument("--faces-cache", default=None,
                    help="face boxes cached by an earlier detector version (facecrops.face_squares cache_file)")
    args = ap.parse_args(argv)
    root = Path(args.data)
    paths, y = read_labels(root, args.limit)
    cache = Path(args.cache)
    if cache.is_file() and len(np.load(cache)["y"]) == len(y):
        feats = dict(np.load(cache))
    else:
        from facepack import spec
        from facepack.data.facecrops import face_squares

        squares, report = face_squares(paths, **({"cache_file": args.faces_cache} if args.faces_cache else {}))
        # the same centres, side shrunk from the beauty margin to 0.1 (both relative to the box)
        side = squares[:, 2] * (1 + 2 * 0.1) / (1 + 2 * spec.BEAUTY["crop_margin"])
        tight = np.stack([squares[:, 0] + (squares[:, 2] - side) / 2, squares[:, 1] + (squares[:, 2] - side) / 2,
                          side], 1)
        print(f"face boxes: {report['detected']} detected, {len(report['fallback_whole_image'])} whole-image fallbacks")
        feats = extract(paths, squares, tight)
        feats["y"] = y
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **feats)
    print(f"ridge probe, {FOLDS}-fold CV over {len(y)} images (penalty by inner {FOLDS}-fold CV):")
    print(f"| frozen features | dims | PC mean +- std | MAE |\n|---|---|---|---|")
    for name, x in feats.items():
        if name == "y":
            continue
        r = probe(x.astype(np.float64), y)
        print(f"| {name} | {x.shape[1]} | {r['pc']:.3f} +- {r['pc_std']:.3f} | {r['mae']:.3f} |", flush=True)
    both = np.concatenate([feats["dlib-resnet/pool256"], feats["efficientnet-lite0"]], 1).astype(np.float64)
    r = probe(both, y)
    print(f"| dlib pool256 + lite0 (concatenated) | {both.shape[1]} | {r['pc']:.3f} +- {r['pc_std']:.3f} | {r['mae']:.3f} |")


if __name__ == "__main__":
    main()
