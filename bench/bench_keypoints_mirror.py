"""Keypoint NME with and without test-time mirror averaging (issue 19; the pipeline's
mirror_keypoints / JS mirrorKeypoints option).

    python bench/bench_keypoints_mirror.py [--model models/shipped/keypoints] [--data FOLDER]

Crops by the spec rule from the ground-truth points' box (training/train_keypoints_lite.py
clean_crops; the Einstein fixture from its annotated .pts), then facepack/pipeline.py:keypoints
with and without spec.MIRROR_PERMUTATION (one model call on the batch [crops, mirrored crops]),
NME by facepack.metrics.keypoint_metrics in image pixels. Protocols: the person split (held-out
people, seed 0, 10 %), the frame split (random frames), the Einstein fixture. Prints JSON.
Without --data the dataset is found as training/evaluate.py finds it (the run's recorded dataset,
evaluate.recorded_data), else bench/common.KEYPOINT_DATA (env FACEPACK_KEYPOINT_DATA). Prints on
stderr which sets were scored; when no dataset is found it says so in one line and scores the
Einstein row alone. An explicit --data without training_frames_keypoints.csv is a usage error
(exit 2), as in training/evaluate.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))
sys.path.append(str(ROOT / "bench"))  # bench/common.py (KEYPOINT_DATA)
import common  # noqa: E402,F401  (a bench script's TensorFlow start-up lines are filtered: facepack/tfquiet.py)

CSV = "training_frames_keypoints.csv"  # what makes a folder the keypoint dataset


def measure(model, crops, squares, truth_px, fmt: str) -> dict:
    """{"plain": metrics, "mirror": metrics} of one set of crops (N, S, S, 3)."""
    import numpy as np

    from facepack import spec
    from facepack.metrics import keypoint_metrics
    from facepack.pipeline import keypoints

    out = {}
    for name, perm in (("plain", None), ("mirror", spec.MIRROR_PERMUTATION[fmt])):
        pred = np.concatenate([np.asarray(keypoints(model, crops[i:i + 64], [tuple(s) for s in squares[i:i + 64]], perm))
                               for i in range(0, len(crops), 64)])
        m = keypoint_metrics(pred, truth_px, fmt)
        out[name] = {k: round(float(m[k]), 5) for k in ("nme_mean", "nme_median", "failure_rate")} | {"n": int(m["n"])}
    return out


def find_data(run_dir: Path, info: dict) -> Path | None:
    """The keypoint dataset when --data is not given: training/evaluate.py's recorded_data (the
    run's own dataset), else bench/common.KEYPOINT_DATA; None when neither holds the csv."""
    from common import KEYPOINT_DATA
    from evaluate import recorded_data

    for path in (recorded_data(run_dir, info), KEYPOINT_DATA):
        if path is not None and (Path(path) / "training_frames_keypoints.csv").is_file():
            return Path(path)
    return None


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "shipped" / "keypoints"))
    p.add_argument("--data", type=Path, default=None,
                   help="YouTube-Faces keypoint folder (default: the run's recorded dataset, else bench/common.KEYPOINT_DATA)")
    args = p.parse_args(argv)
    if args.data is not None and not (args.data / CSV).is_file():  # a typo must not drop the person split silently
        p.error(f"--data: {args.data} {'has no ' + CSV if args.data.is_dir() else 'does not exist'} "
                "(expected a YouTube-Faces keypoint folder)")

    import numpy as np

    from facepack.data.keypoints import load_keypoints, split_indices
    from facepack.pipeline import compile_model
    from facepack.runs import load_run
    from train_keypoints_lite import clean_crops, einstein_data

    model, info = load_run(args.model)
    data_dir = args.data or find_data(Path(args.model), info)
    fmt = str(info.get("format", "68"))
    size = int(info["input_size"])
    run = compile_model(model)
    report = {"model": str(args.model)}
    sets = {"einstein": (einstein_data(), np.array([0]))}
    if data_dir is not None and (data_dir / "training_frames_keypoints.csv").is_file():
        data = load_keypoints(data_dir)
        seed, frac = info["args"]["seed"], info["args"]["val_fraction"]
        sets["person_split"] = (data, split_indices(data, frac, seed, "person")[1])
        sets["frame_split"] = (data, split_indices(data, frac, seed, "frame")[1])
    else:
        print(f"bench_keypoints_mirror: keypoint dataset not found ({data_dir or 'no candidate exists'}); "
              "scoring the Einstein fixture only (pass --data FOLDER)", file=sys.stderr)
    report["data"] = str(data_dir) if "person_split" in sets else None
    print(f"bench_keypoints_mirror: scoring {', '.join(sets)}"
          + (f" (data {data_dir})" if "person_split" in sets else ""), file=sys.stderr)
    for name, (data, idx) in sets.items():
        crops, units, squares = clean_crops(data, idx, size)
        truth = squares[:, None, :2] + units * squares[:, None, 2:3]
        report[name] = measure(run, crops, squares, truth, fmt)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
