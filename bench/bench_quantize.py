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
    python bench/bench_quantize.py --rules float16 --budgets "" --export-uint8 /tmp/b   # the exporter's bundle, read back
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


def faces_cache_key(run_dir: Path) -> tuple[str, dict]:
    """(16 hex digits, what they cover) of the held-out face crops of ``run_dir``: the run (its path
    and the sha256 of its run.json: split, seed, fold, dataset, crop options), its input size, the
    crop rule (spec.CROP_DOWNSCALE and the rest of spec's crop settings) and the CV fold. Another
    run, fold, size or crop rule gets other crops, so another cache file."""
    import hashlib

    from facepack import spec

    run_dir = Path(run_dir).resolve()
    info = json.loads((run_dir / "run.json").read_text())
    what = {"run": str(run_dir), "run_json_sha256": hashlib.sha256((run_dir / "run.json").read_bytes()).hexdigest(),
            "input_size": int(info["input_size"]), "crop_downscale": spec.CROP_DOWNSCALE,
            "crop": {"pad_value": spec.CROP_PAD_VALUE, "method": spec.CROP_METHOD},
            "cv_fold": (info.get("args") or {}).get("cv_fold")}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16], what


def cache_file(cache: Path, key: str) -> Path:
    """--faces-cache NAME.npy -> NAME-<key>.npy beside it (the key: faces_cache_key)."""
    cache = Path(cache)
    return cache.with_name(f"{cache.stem}-{key}{cache.suffix or '.npy'}")


def held_out_faces(model_dir: str, cache: Path, log=print) -> np.ndarray:
    """(N, S, S, 3) float32 0..255: the run's held-out face crops, as training/evaluate.py feeds them.

    Cached in cache_file(cache, faces_cache_key(run)) with a .json beside it naming what the key
    covers; a cache of another run, fold, input size or crop rule is not reused. Says which file
    it reuses or writes."""
    from facepack.runs import resolve_run

    run_dir = resolve_run("beauty", model_dir, flag="--model")
    key, what = faces_cache_key(run_dir)
    path = cache_file(cache, key)
    desc = (f"run {what['run']} (run.json {what['run_json_sha256'][:12]}), fold {what['cv_fold']}, "
            f"{what['input_size']} px, crop downscale {what['crop_downscale']}")
    if path.is_file():
        log(f"using cached held-out faces from {path} ({desc})")
        return np.load(path)
    xs = compute_held_out_faces(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, xs)
    path.with_suffix(".json").write_text(json.dumps(what, indent=1) + "\n")
    log(f"wrote held-out faces cache {path} ({len(xs)} faces; {desc})")
    return xs


def compute_held_out_faces(run_dir: Path) -> np.ndarray:
    """The held-out face crops of ``run_dir`` (training/evaluate.py's data path); needs the dataset."""
    from facepack.data.tfdata import beauty_dataset
    from facepack.runs import load_run
    from training import evaluate as ev
    from training import train_beauty
    _, info = load_run(run_dir)
    source, _ = ev._data_source(run_dir, info, None)
    cfg = ev._trainer_cfg(train_beauty, info, source, None, False)
    _, val, _, _ = train_beauty.load_data(cfg)
    squares, _, _ = train_beauty.crop_squares(cfg, val, [])
    ds = beauty_dataset(val, info["input_size"], 32, training=False, cache=False, squares=squares)
    return np.concatenate([(b[0] if isinstance(b, tuple) else b).numpy() for b in ds]).astype(np.float32)


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
    p.add_argument("--faces-cache", default=str(Path.home() / ".cache/facepack/bench/beauty_heldout_faces.npy"),
                   help="held-out faces cache: NAME.npy is kept as NAME-<key>.npy, the key covering the run "
                        "(path, run.json), fold, input size and crop rule (faces_cache_key)")
    p.add_argument("--sens-faces", type=int, default=64)
    p.add_argument("--budgets", default="250000,500000", help="float16 elements allowed (each costs +1 byte)")
    p.add_argument("--rules", default="minmax,eq,gptq",
                   help="comma list of: float16, minmax, mse-clip, eq, eq-mse-clip, eq-f16, gptq")
    p.add_argument("--calib", default="dataset,fixtures",
                   help="GPTQ calibration: dataset (every 5th held-out face; rows also give the other 4/5) "
                        "and/or fixtures (quantize.fixture_calibration)")
    p.add_argument("--fixture-count", type=int, default=48)
    p.add_argument("--read-back", default=None, metavar="BUNDLE",
                   help="also score a written bundle's beauty_features + beauty_head (read back with tensorflowjs)")
    p.add_argument("--export-uint8", default=None, metavar="DIR",
                   help="first write --model's uint8 face bundle into DIR with the exporter (build_bundle; it uses the "
                        "run's quantization_plan.json when there is one), then score it as --read-back does")
    p.add_argument("--stages", type=int, default=1, help="sequential GPTQ: layer groups rounded one after another")
    args = p.parse_args(argv)
    import time

    import keras

    from facepack.export import quantize as qz
    from facepack.export.tfjs_io import QUANT_MIN_ELEMENTS
    from facepack.models.beauty import expected_score
    from facepack.runs import load_run

    rules = args.rules.split(",")
    if args.export_uint8:
        from facepack.export import build_bundle
        t0 = time.perf_counter()
        manifest = build_bundle(args.export_uint8, beauty_run=args.model, models=["beauty"], quantize="uint8", log=None)
        q = manifest["models"]["beauty_features"]["quantization"]
        print(f"   exported {args.export_uint8} in {time.perf_counter() - t0:.0f} s; float16 chosen by: "
              f"{q.get('float16_chosen_by')}", flush=True)
        args.read_back = args.export_uint8
    model, _ = load_run(args.model)
    x = held_out_faces(args.model, Path(args.faces_cache))
    weights = list(model.weights)
    orig = [w.numpy().copy() for w in weights]
    index = {id(w): i for i, w in enumerate(weights)}
    big = [i for i, v in enumerate(orig) if v.size >= QUANT_MIN_ELEMENTS]

    def assign(vals):
        for w, v in zip(weights, vals):
            w.assign(v)

    def score(vals, xs=x):
        assign(vals)
        try:
            return expected_score(model.predict(xs, batch_size=64, verbose=0))
        finally:
            assign(orig)

    ref = score(orig)
    pairs = qz.conv_bn_pairs(model)
    qz.equalise(model)
    eq = [w.numpy().copy() for w in weights]
    assign(orig)
    bytes_f32 = 4 * sum(v.size for i, v in enumerate(orig) if i not in big)

    rows = []

    def report(name, vals, calib="-", f16=0, mask=None):
        d = np.abs(score(vals) - ref)
        mb = (bytes_f32 + sum(orig[i].size for i in big) + f16) / 1e6
        row = {"rule": name, "mb": round(mb, 3), "max": float(d.max()), "mean": float(d.mean()),
               "p95": float(np.percentile(d, 95)), "n": len(d), "calib": calib}
        extra = ""
        if mask is not None:
            dm = d[mask]
            row.update(max_unseen=float(dm.max()), mean_unseen=float(dm.mean()), n_unseen=int(mask.sum()))
            extra = f"  | faces not calibrated on: max {dm.max():.3f} mean {dm.mean():.3f} (N={mask.sum()})"
        rows.append(row)
        print(f"{name:34s} {mb:5.2f} MB  max {d.max():.3f}  mean {d.mean():.3f}  p95 {np.percentile(d, 95):.3f} "
              f"points (N={len(d)}, calib {calib}){extra}", flush=True)

    def rounded(base, rule, keep=()):
        out = list(base)
        for i in big:
            out[i] = base[i].astype(np.float16).astype(np.float32) if i in keep else rule(base[i])
        return out

    print(f"{len(big)} tensors >= {QUANT_MIN_ELEMENTS} values ({sum(orig[i].size for i in big)} values); "
          f"{len(pairs)} conv->BN pairs; {len(x)} faces", flush=True)
    if args.read_back:
        from facepack.export.tfjs_io import load_layers_model, weight_specs
        feats = load_layers_model(Path(args.read_back) / "beauty_features")
        head = load_layers_model(Path(args.read_back) / "beauty_head")
        got = np.concatenate([expected_score(head.predict(feats.predict(x[i:i + 64], verbose=0), verbose=0))
                              for i in range(0, len(x), 64)])
        d = np.abs(got - ref)
        files = [f for m in ("beauty_features", "beauty_head") for f in (Path(args.read_back) / m).iterdir()]
        mb = sum(f.stat().st_size for f in files) / 1e6
        kinds = [(w.get("quantization") or {}).get("dtype", "float32")
                 for m in ("beauty_features", "beauty_head") for w in weight_specs(Path(args.read_back) / m)]
        rows.append({"rule": f"written bundle {args.read_back}", "mb": round(mb, 3), "max": float(d.max()),
                     "mean": float(d.mean()), "p95": float(np.percentile(d, 95)), "n": len(d), "calib": "as written"})
        print(f"{'written bundle (read back)':34s} {mb:5.2f} MB  max {d.max():.3f}  mean {d.mean():.3f}  "
              f"p95 {np.percentile(d, 95):.3f} points (N={len(d)}; tensors: "
              f"{ {k: kinds.count(k) for k in sorted(set(kinds))} })", flush=True)
    if "float16" in rules:
        report("float16 (all large tensors)", rounded(orig, None, keep=big), f16=sum(orig[i].size for i in big))
    if "minmax" in rules:
        report("uint8 minmax", rounded(orig, q8))
    if "mse-clip" in rules:
        report("uint8 mse-clip", rounded(orig, mse_clip))
    eq_q = {i: q8(eq[i]) for i in big}
    if "eq" in rules:
        report("uint8 eq", [eq_q.get(i, eq[i]) for i in range(len(eq))])
    if "eq-mse-clip" in rules:
        report("uint8 eq+mse-clip", rounded(eq, mse_clip))

    def sensitivity(quantised, xs):
        """{i: mean |Δ score| on xs with only tensor i uint8 (the rest float16), per element}."""
        rs = score(orig, xs)
        f16 = [v.astype(np.float16).astype(np.float32) if i in big else v for i, v in enumerate(eq)]
        out = {}
        for i in big:
            vals = list(f16)
            vals[i] = quantised[i]
            out[i] = float(np.abs(score(vals, xs) - rs).mean()) / orig[i].size
        return out

    def with_f16(quantised, sens, budget):
        keep, used = [], 0
        for i in sorted(big, key=lambda i: -sens[i]):
            if used + orig[i].size <= budget:
                keep.append(i)
                used += orig[i].size
        vals = [eq[i].astype(np.float16).astype(np.float32) if i in keep else quantised.get(i, eq[i])
                for i in range(len(eq))]
        return vals, keep, used

    budgets = [int(b) for b in args.budgets.split(",") if b]
    if "eq-f16" in rules:
        sens = sensitivity(eq_q, x[:args.sens_faces])
        for budget in budgets:
            vals, keep, used = with_f16(eq_q, sens, budget)
            report(f"uint8 eq+f16@{used}", vals, "dataset (first faces)", f16=used)
    if "gptq" in rules:
        layers = qz.quantisable_layers(model, QUANT_MIN_ELEMENTS)
        kernel_of = {id(layer): index[id(qz._kernel(layer))] for layer in layers}
        missing = [weights[i].path for i in big if i not in kernel_of.values()]
        if missing:
            print("   not GPTQ-rounded (min/max):", missing)
        for source in args.calib.split(","):
            if source == "dataset":
                sel = np.arange(0, len(x), 5)
                calib, mask, label = x[sel], np.ones(len(x), bool), f"dataset ({len(sel)} held-out faces)"
                mask[sel] = False
            else:
                calib = qz.fixture_calibration(int(model.input_shape[1]), args.fixture_count)
                mask, label = None, f"fixtures ({len(calib)} augmented crops)"
            t0 = time.perf_counter()
            assign(eq)
            qz.gptq_model(model, layers, calib, stages=args.stages)
            gq = dict(eq_q)
            for layer in layers:
                gq[kernel_of[id(layer)]] = qz._kernel(layer).numpy().copy()
            assign(orig)
            print(f"   H + GPTQ {time.perf_counter() - t0:.1f} s ({source}, {args.stages} stage(s))", flush=True)
            report(f"uint8 eq+gptq{'' if args.stages == 1 else f' seq{args.stages}'}", [gq.get(i, eq[i]) for i in range(len(eq))], label, mask=mask)
            if budgets:
                t0 = time.perf_counter()
                sens = sensitivity(gq, calib[:args.sens_faces])
                print(f"   sensitivity {time.perf_counter() - t0:.1f} s on {min(len(calib), args.sens_faces)} images", flush=True)
                for budget in budgets:
                    vals, keep, used = with_f16(gq, sens, budget)
                    report(f"uint8 eq+gptq{'' if args.stages == 1 else f' seq{args.stages}'}+f16@{used}", vals, label, f16=used, mask=mask)
                    print("   float16:", [weights[i].path for i in keep], flush=True)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
