"""Which uint8 export rule keeps the beauty score within 0.3 points (0..100) on real faces? (issue 13)

Simulates TF.js' uint8 weights in Python (tensorflowjs.quantization.quantize_weights: per-tensor
affine min + scale * q, zero nudged, only tensors of >= tfjs_io.QUANT_MIN_ELEMENTS values, as
facepack/export/tfjs_io.save_layers_model writes them) on the shipped beauty model and measures the
expected-score change on the run's held-out face crops (fold 1, 660 SCUT-FBP5500 training-split
images, the page's crop rule, via training/evaluate.py's own data path). Rules:

  minmax      every large tensor uint8 over its min/max (what `--quantize uint8` writes today)
  mse-clip    each tensor's clipping range chosen by grid search to minimise the weight MSE
  eq          per-output-channel range equalisation first: every Conv2D/DepthwiseConv2D kernel
              that feeds a BatchNormalization has each output channel scaled to the tensor's
              largest |w| and the BN compensates (gamma / s, moving_mean * s): the same function in
              float (measured max change ~5e-5 points), so per-tensor uint8 acts per channel
  eq+f16@B    eq, and the most sensitive tensors kept float16 greedily (single-tensor sensitivity:
              mean change with only that tensor uint8, on the first --sens-faces faces, per element)
              while the extra float16 bytes stay <= B elements
  eq+bc+f16@B the same plus bias correction: each conv's mean output shift from its rounded
              weights (ΔW · E[input], E over the first --sens-faces faces) moved into its BN mean

Usage (needs ../shared/datasets/scut-fbp5500-train; a few minutes on 2 cores):
    python bench/bench_quantize.py [--model models/shipped/beauty] [--budgets 500000,1000000]
Prints one row per rule: max / mean / 95th percentile |Δ score| in points (0..100), N faces.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def held_out_faces(model_dir: str, cache: Path) -> np.ndarray:
    """(N, S, S, 3) float32 0..255: the run's held-out face crops, as training/evaluate.py feeds them."""
    if cache.is_file():
        return np.load(cache)
    from facepack.data.tfdata import beauty_dataset
    from facepack.runs import load_run, resolve_run
    from training import evaluate as ev
    from training import train_beauty
    run_dir = resolve_run("beauty", model_dir, flag="--model")
    _, info = load_run(run_dir)
    source, _ = ev._data_source(run_dir, info, None)
    cfg = ev._trainer_cfg(train_beauty, info, source, None, False)
    _, val, _, _ = train_beauty.load_data(cfg)
    squares, _, _ = train_beauty.crop_squares(cfg, val, [])
    ds = beauty_dataset(val, info["input_size"], 32, training=False, cache=False, squares=squares)
    xs = np.concatenate([(b[0] if isinstance(b, tuple) else b).numpy() for b in ds]).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, xs)
    return xs


def q8(w: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """w rounded as TF.js uint8 stores it (optionally clipped to [lo, hi] first)."""
    from tensorflowjs.quantization import dequantize_weights, quantize_weights
    d = w if lo is None else np.clip(w, lo, hi)
    q, meta = quantize_weights(d.astype(np.float32), np.uint8)
    return dequantize_weights(q, meta, np.float32)


def mse_clip(w: np.ndarray, steps: int = 15) -> np.ndarray:
    lo0, hi0 = float(w.min()), float(w.max())
    best = min(((float(((q8(w, lo0 * a, hi0 * b) - w) ** 2).sum()), a, b)
                for a in np.linspace(0.3, 1, steps) for b in np.linspace(0.3, 1, steps)))
    return q8(w, lo0 * best[1], hi0 * best[2])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/shipped/beauty")
    p.add_argument("--faces-cache", default=str(Path.home() / ".cache/facepack/bench/beauty_heldout_faces.npy"))
    p.add_argument("--sens-faces", type=int, default=64)
    p.add_argument("--budgets", default="500000,1000000", help="float16 elements allowed (each costs +1 byte)")
    args = p.parse_args(argv)
    import keras

    from facepack.export.tfjs_io import QUANT_MIN_ELEMENTS
    from facepack.models.beauty import expected_score
    from facepack.runs import load_run

    model, _ = load_run(args.model)
    x = held_out_faces(args.model, Path(args.faces_cache))
    weights = list(model.weights)
    orig = [w.numpy().copy() for w in weights]
    index = {id(w): i for i, w in enumerate(weights)}
    big = [i for i, v in enumerate(orig) if v.size >= QUANT_MIN_ELEMENTS]

    def score(vals, xs=x):
        for w, v in zip(weights, vals):
            w.assign(v)
        try:
            return expected_score(model.predict(xs, batch_size=64, verbose=0))
        finally:
            for w, v in zip(weights, orig):
                w.assign(v)

    ref = score(orig)
    pairs = []  # (conv layer, its BN, output-channel axis)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            src = layer.input._keras_history.operation
            if isinstance(src, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and not src.use_bias:
                pairs.append((src, layer, 2 if isinstance(src, keras.layers.DepthwiseConv2D) else 3))
    eq = [v.copy() for v in orig]
    for conv, bn, ax in pairs:
        ki = index[id(conv.kernel)]
        r = np.abs(eq[ki]).max(axis=tuple(a for a in range(4) if a != ax))
        s = r.max() / np.maximum(r, 1e-12)
        eq[ki] = eq[ki] * s.reshape([-1 if a == ax else 1 for a in range(4)])
        eq[index[id(bn.gamma)]] = eq[index[id(bn.gamma)]] / s
        eq[index[id(bn.moving_mean)]] = eq[index[id(bn.moving_mean)]] * s

    rows = []

    def report(name, vals):
        d = np.abs(score(vals) - ref)
        rows.append((name, float(d.max()), float(d.mean()), float(np.percentile(d, 95))))
        print(f"{name:34s} max {d.max():.3f}  mean {d.mean():.3f}  p95 {np.percentile(d, 95):.3f} points "
              f"(N={len(d)})", flush=True)

    def rounded(base, rule, keep=()):
        out = list(base)
        for i in big:
            out[i] = base[i].astype(np.float16).astype(np.float32) if i in keep else rule(base[i])
        return out

    print(f"{len(big)} tensors >= {QUANT_MIN_ELEMENTS} values ({sum(orig[i].size for i in big)} values); "
          f"{len(pairs)} conv->BN pairs; {len(x)} faces")
    report("float16 (all large tensors)", rounded(orig, None, keep=big))
    report("uint8 minmax", rounded(orig, q8))
    report("uint8 mse-clip", rounded(orig, mse_clip))
    report("float32 eq (no rounding)", eq)
    eq_q = {i: q8(eq[i]) for i in big}
    report("uint8 eq", [eq_q.get(i, eq[i]) for i in range(len(eq))])
    report("uint8 eq+mse-clip", rounded(eq, mse_clip))

    # single-tensor sensitivity (only tensor i uint8, the rest float16) on the first faces
    xs, rs = x[:args.sens_faces], ref[:args.sens_faces]
    f16 = [v.astype(np.float16).astype(np.float32) if i in big else v for i, v in enumerate(eq)]
    sens = {}
    for i in big:
        vals = list(f16)
        vals[i] = eq_q[i]
        sens[i] = float(np.abs(score(vals, xs) - rs).mean()) / orig[i].size
    ranked = sorted(big, key=lambda i: -sens[i])
    convs_in = keras.Model(model.inputs, [conv.input for conv, _, _ in pairs])
    ex = [o.mean(axis=(0, 1, 2)) for o in convs_in.predict(xs, batch_size=16, verbose=0)]
    for budget in [int(b) for b in args.budgets.split(",")]:
        keep, used = [], 0
        for i in ranked:
            if used + orig[i].size <= budget:
                keep.append(i)
                used += orig[i].size
        vals = [eq[i].astype(np.float16).astype(np.float32) if i in keep else eq_q.get(i, eq[i])
                for i in range(len(eq))]
        report(f"uint8 eq+f16@{used}", vals)
        bc = list(vals)
        for (conv, bn, ax), e in zip(pairs, ex):
            ki = index[id(conv.kernel)]
            if ki not in big or ki in keep:
                continue
            dw = (bc[ki] - eq[ki]).sum(axis=(0, 1))
            shift = dw[:, 0] * e if ax == 2 else e @ dw
            bc[index[id(bn.moving_mean)]] = bc[index[id(bn.moving_mean)]] + shift
        report(f"uint8 eq+bc+f16@{used}", bc)
        print("   float16:", [weights[i].path for i in keep], flush=True)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
