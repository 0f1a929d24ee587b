"""The shipped models on their own held-out data, face crops bilinear vs area-sampled (issue 12).

    python bench/bench_crop_models.py                       # beauty fold 1 + keypoints, both crops
    python bench/bench_crop_models.py --kind beauty --downscale area

Runs training/evaluate.py as a user would (its data, its held-out part, its metrics) once per
crop mode (spec.CROP_DOWNSCALE): "bilinear" is evaluate.py unchanged; "area" swaps the square
crop of the evaluation pipeline (facepack/data/tfdata.py:_crop, used for beauty's face crops and
the keypoint crops from the ground-truth points) and of the page's path (facepack/crop.py, the
keypoint --end-to-end crops) for facepack/crop.py's area-sampled crop wherever the square is
larger than the crop (step > 1 photo pixel); upscaled squares stay bilinear, as in the library.
The --end-to-end detector's R/O-Net patches follow the mode too (spec.MTCNN["patch_resize"]);
beauty's boxes come from the run's face cache, so only its crops change.
Prints one table and writes bench/results/crop_models.json (evaluate.py's folders are under
runs/eval/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

MODELS = {"beauty": ROOT / "models/shipped/beauty", "keypoints": ROOT / "models/shipped/keypoints"}


_ORIGINAL: dict = {}


def use_downscale(mode: str) -> None:
    """Make evaluate.py's crops follow ``mode`` (module docstring)."""
    import numpy as np
    import tensorflow as tf

    from facepack import crop, spec
    from facepack.data import tfdata

    spec.CROP_DOWNSCALE = mode  # facepack/crop.py (the page's path: --end-to-end)
    spec.MTCNN["patch_resize"] = mode  # the detector of --end-to-end: the R/O-Net patches alike
    bilinear = _ORIGINAL.setdefault("crop", tfdata._crop)
    tfdata._crop = bilinear
    if mode == "bilinear":
        return

    def area_or_bilinear(image_u8, x0, y0, side, out_size: int):
        def area(img, a, b, s):
            return crop.area_crop(lambda c0, r0, c1, r1: img[r0:r1, c0:c1], (float(a), float(b), float(s)),
                                  out_size, img.shape[0], img.shape[1])

        def run_area():
            out = tf.numpy_function(area, [image_u8, x0, y0, side], tf.float32, stateful=False)
            out.set_shape([out_size, out_size, 3])
            return out

        return tf.cond(tf.cast(side, tf.float32) / out_size > 1.0, run_area,
                       lambda: bilinear(image_u8, x0, y0, side, out_size))

    tfdata._crop = area_or_bilinear
    np.seterr(all="ignore")


def evaluate(kind: str, mode: str, out: Path) -> dict:
    from training import evaluate as ev

    use_downscale(mode)
    argv = ["--model", str(MODELS[kind]), "--out", str(out)]
    if kind == "keypoints":
        argv.append("--end-to-end")
    ev.main(argv)
    return json.loads((out / "metrics.json").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=sorted(MODELS), action="append", help="default: both")
    p.add_argument("--downscale", choices=["bilinear", "area"], action="append", help="default: both")
    p.add_argument("--out", default=str(ROOT / "bench/results/crop_models.json"))
    args = p.parse_args(argv)
    import datetime

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = {}
    out = Path(args.out)
    if out.is_file():
        results = json.loads(out.read_text())
    for kind in args.kind or sorted(MODELS):
        for mode in args.downscale or ["bilinear", "area"]:
            report = evaluate(kind, mode, ROOT / f"runs/eval/crop_{kind}_{mode}_{stamp}")
            results[f"{kind}/{mode}"] = report.get("metrics", report)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, default=float))
            print(json.dumps({f"{kind}/{mode}": results[f"{kind}/{mode}"]}, indent=1, default=float)[:3000], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
