"""Pack a dataset into one .npz so the trainers can run where TensorFlow is not installed.

The beauty images are resized to --input-size exactly as the tf.data pipeline does; keypoint
faces are cropped by the spec's rule with room for jitter. The train/validation assignment is
the trainer's own (same --seed, --split, --val-fraction), so a packed run holds out the same images.

Usage:
    python training/pack_dataset.py beauty --data ../shared/datasets/scut-fbp5500-train --input-size 160 --out scut160.npz
    python training/pack_dataset.py keypoints --data ../shared/datasets/youtube-faces-keypoints-train --out kp96.npz
    python training/train_beauty.py --data scut160.npz --input-size 160 ...   # anywhere Keras 3 runs (JAX too)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(prog="pack_dataset.py", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["beauty", "keypoints"])
    p.add_argument("--data", help="dataset folder or CSV (as the trainer takes it); omit for the synthetic one")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--input-size", type=int, help="square size in pixels (default: the trainer's)")
    p.add_argument("--split", default="60-40", help="beauty, release layout: 60-40 or cv1..cv5")
    p.add_argument("--cv-fold", type=int, help="beauty, reduced layout: hold out fold K of 5 (as the trainer)")
    p.add_argument("--crop", choices=["face", "image"],
                   help="beauty: the page's detector crop (default for real data) or the whole image")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad", action="store_true")
    args = p.parse_args(argv)
    if not args.out.endswith(".npz"):
        raise ValueError(f"--out must end in .npz, got {args.out!r}")
    if args.kind == "beauty":
        from training import train_beauty as trainer
        from facepack.data.packed import pack_beauty
        from facepack.data.scut import dataset_fingerprint

        cfg = trainer.resolve_config(trainer.parse_args(_trainer_argv(args)))
        train, val, data, held_out = trainer.load_data(cfg)
        train_sq, val_sq, crops = trainer.crop_squares(cfg, train, val)
        meta = {"dataset": dict(trainer.dataset_info(data, held_out, train, val, dataset_fingerprint), crop=crops),
                "seed": args.seed}
        squares = None if train_sq is None else np.concatenate([train_sq, val_sq])
        out = pack_beauty(train, val, cfg["input_size"], args.out, meta, squares=squares)
        print(f"packed {len(train)} train + {len(val)} validation images at {cfg['input_size']} px -> {out} "
              f"({out.stat().st_size / 1e6:.1f} MB)")
    else:
        from training import train_keypoints as trainer
        from facepack.data.packed import pack_keypoints

        cfg = trainer.resolve_config(trainer.parse_args(_trainer_argv(args)))
        data, train_idx, val_idx = trainer.load_data(cfg)
        meta = {"dataset": trainer.dataset_info(data, train_idx, val_idx, cfg["seed"]), "seed": args.seed}
        out = pack_keypoints(data, train_idx, val_idx, cfg["input_size"], args.out, meta)
        print(f"packed {len(train_idx)} train + {len(val_idx)} validation faces at {cfg['input_size']} px -> {out} "
              f"({out.stat().st_size / 1e6:.1f} MB)")
    return out


def _trainer_argv(args) -> list[str]:
    argv = (["--data", args.data] if args.data else []) + ["--seed", str(args.seed)]
    if args.input_size:
        argv += ["--input-size", str(args.input_size)]
    if args.val_fraction:
        argv += ["--val-fraction", str(args.val_fraction)]
    if args.skip_bad:
        argv += ["--skip-bad"]
    if args.kind == "beauty":
        argv += ["--split", args.split]
        argv += ["--cv-fold", str(args.cv_fold)] if args.cv_fold else []
        argv += ["--crop", args.crop] if args.crop else []
    return argv


if __name__ == "__main__":
    from facepack.cli import run_cli

    sys.exit(run_cli(main))
