"""The shipped models on their own held-out data, face crops bilinear vs area-sampled (issue 12).

    python bench/bench_crop_models.py                       # beauty fold 1 + keypoints, both crops
    python bench/bench_crop_models.py --kind beauty --downscale area

Runs training/evaluate.py as a user would (its data, its held-out part, its metrics) once per
crop mode, set through spec.CROP_DOWNSCALE (use_downscale): "area" is evaluate.py as shipped (the
evaluation pipeline's crop, facepack/data/tfdata.py:_crop, and the page's path, facepack/crop.py,
area-sample wherever the square is larger than the crop, step > 1 photo pixel; upscaled squares
stay bilinear); "bilinear" is the crop before the switch (crop_and_resize everywhere).
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
import common  # noqa: E402,F401  (a bench script's TensorFlow start-up lines are filtered: facepack/tfquiet.py)

MODELS = {"beauty": ROOT / "models/shipped/beauty", "keypoints": ROOT / "models/shipped/keypoints"}


def use_downscale(mode: str) -> None:
    """Make evaluate.py's crops follow ``mode`` through the library's own switch, spec.CROP_DOWNSCALE:
    facepack/crop.py (the page's path, --end-to-end) and facepack/data/tfdata.py:_crop (the
    evaluation pipeline; read when its graph is traced) both follow it, and the --end-to-end
    detector's R/O-Net patches follow spec.MTCNN["patch_resize"]. ``--downscale bilinear``
    reproduces the pre-area crops (crop_and_resize everywhere)."""
    import numpy as np

    from facepack import spec

    spec.CROP_DOWNSCALE = mode
    spec.MTCNN["patch_resize"] = mode
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
