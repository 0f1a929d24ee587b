"""How much the shipped models move when a face's square moves by a tiny box difference (issue 12).

    python bench/bench_crop_sensitivity.py PHOTO [PHOTO ...] [--shift-px 1e-3]

Per face Python finds (facepack/pipeline.py, the shipped models), the beauty score and the 68
keypoints on the square as found and on the square shifted by --shift-px in x and y (the size of
a JS vs Python box difference), once with bilinear face crops and once area-sampled
(facepack/crop.py, downscale "bilinear" / "area"). Prints |Δ beauty| (points), max |Δ keypoint|
(photo pixels) and the crop step (square side / crop side) per face and mode.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photos", nargs="+")
    p.add_argument("--shift-px", type=float, default=1e-3)
    args = p.parse_args(argv)
    import numpy as np

    import common
    from facepack import crop, pipeline
    from facepack.pipeline import FacePipeline, decode

    pipe = FacePipeline.from_runs(common.SHIPPED["beauty"], common.SHIPPED["keypoints"])
    d = args.shift_px
    print("photo | face px | beauty step | |Δ beauty| bilinear | area | keypoint step | max |Δ kp| px bilinear | area")
    for path in args.photos:
        rgb = decode(Path(path).read_bytes(), Path(path).name)
        faces = pipeline.detect(pipe.detector, rgb)
        for f in faces:
            row = [Path(path).name, f"{max(f['box']['width'], f['box']['height']):.0f}"]
            for kind, size in (("beauty", pipe.beauty_size), ("keypoints", pipe.keypoint_size)):
                sq = pipeline.face_square(f["box"], kind, keypoint_format=str(pipe.num_points))
                moved = (sq[0] + d, sq[1] + d, sq[2])
                row.append(f"{sq[2] / size:.1f}")
                for mode in ("bilinear", "area"):
                    crops = crop.crop_squares(rgb, [sq, moved], size, downscale=mode)
                    if kind == "beauty":
                        s = [r["score"] for r in pipeline.beauty(pipe.beauty_model, crops)]
                        row.append(f"{abs(s[1] - s[0]):.4f}")
                    else:
                        pts = [np.asarray(k) for k in pipeline.keypoints(pipe.keypoint_model, crops, [sq, moved])]
                        row.append(f"{np.abs(pts[1] - pts[0]).max():.4f}")
            print(" | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
