"""Peak memory and time of predict.py on one large JPEG (issue 16: 12000 x 9000, 108 MP).

    python bench/bench_predict_memory.py                    # 12000 x 9000, the current predict.py
    python bench/bench_predict_memory.py --before REV       # also predict.py and facepack/ of git REV
    python bench/bench_predict_memory.py --size 4032x3024   # another size

The photo is generated (noise background, the astronaut fixture scaled to 3000 px and Einstein
to 4902 x 6144 pasted in; JPEG quality 90) into a temporary folder. Each predict.py runs in a
fresh process with the shipped models (or --beauty/--keypoints); peak memory is that process's
maximum resident set size (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss, the figure
/usr/bin/time -v prints), time is its wall clock, start-up (TensorFlow, models) included. A
small photo (the Einstein fixture) is run too: the resident size of TensorFlow and the models.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def make_photo(path: Path, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    bg = Image.fromarray(rng.integers(90, 160, (max(1, height // 50), max(1, width // 50), 3), dtype=np.uint8))
    bg = bg.resize((width, height), Image.BILINEAR)
    k = max(1, min(width, height) // 1500)
    e = Image.open(FIXTURES / "einstein.jpg").convert("RGB")
    e = e.resize((e.width * k, e.height * k), Image.BICUBIC)
    bg.paste(e, (width // 20, height // 6))
    side = min(width, height) // 3
    a = Image.open(FIXTURES / "astronaut.png").convert("RGB").resize((side, side), Image.BICUBIC)
    bg.paste(a, (int(width * 0.58), height // 3))
    bg.save(path, quality=90)


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit status) of one child process (run alone: RUSAGE_CHILDREN is a max)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t, rc)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="12000x9000", help="WIDTHxHEIGHT of the generated JPEG")
    parser.add_argument("--before", metavar="REV", default=None, help="also measure predict.py of this git revision")
    parser.add_argument("--heatmap", action="store_true", help="pass --heatmap to predict.py")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = tmp / "big.jpg"
        make_photo(photo, width, height)
        trees = [("now", ROOT)]
        if args.before:
            old = tmp / "before"
            old.mkdir()
            archive = subprocess.run(["git", "archive", args.before, "predict.py", "facepack"], cwd=ROOT,
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            (old / "models").symlink_to(ROOT / "models")
            trees.append((args.before, old))
        extra = ["--heatmap"] if args.heatmap else []
        print(f"photo {width} x {height} = {width * height / 1e6:.0f} MP, {photo.stat().st_size / 1e6:.1f} MB JPEG")
        print(f"{'predict.py':<12} {'photo':<14} {'peak RSS MB':>12} {'wall s':>8} {'exit':>5}")
        for label, tree in trees:
            for name, path in (("einstein.jpg", FIXTURES / "einstein.jpg"), (f"{width}x{height}", photo)):
                out = tmp / f"out-{label}-{name}".replace("/", "_")
                rss, wall, rc = measure([sys.executable, str(tree / "predict.py"), str(path), "--out", str(out), *extra],
                                        tree)
                print(f"{label:<12} {name:<14} {rss:>12.0f} {wall:>8.1f} {rc:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
