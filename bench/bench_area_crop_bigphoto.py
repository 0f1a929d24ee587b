"""One area-sampled face crop of a large JPEG read by window decoding (facepack/bigphoto.py, review #27).

    python bench/bench_area_crop_bigphoto.py                    # 12000 x 9000 (108 MP), 8000-px square -> 192 px
    python bench/bench_area_crop_bigphoto.py --size 4032x3024 --side 2500

The JPEG (noise, quality 90) is generated into a temporary folder. Each way runs in a fresh
process: "bands" is RegionPhoto.crop_squares as shipped (the square read in bands of
bigphoto.AREA_BAND_BYTES); "blocks" hands crop.area_crop RegionPhoto.region directly, one window
decode per crop.AREA_BLOCK_ROWS-row block (the behaviour of c3d820f). Prints per way: window
decodes, wall and process-CPU seconds of the crop, the process's peak resident set (ru_maxrss,
MiB; TensorFlow's import included) and whether the two crops are equal bit for bit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from facepack import bigphoto, crop
import tensorflow as tf  # imported before timing (the window decoder)
path, way, sq, size = {path!r}, {way!r}, {square!r}, {size}
bigphoto.REGION_MIN_PIXELS = 1  # read by region at any size (as photos over 16 MP are)
photo = bigphoto.open_photo(path)
assert isinstance(photo, bigphoto.RegionPhoto) and photo._window_decoding, type(photo)
photo._window_gather(np.array([0]), np.array([0]))  # the file's bytes read and checked once, outside the timing
calls = [0]
decode = photo._decode_window
def counted(*a):
    calls[0] += 1
    return decode(*a)
photo._decode_window = counted
t, c = time.perf_counter(), time.process_time()
if way == "bands":
    out = photo.crop_squares([sq], size, downscale="area")[0]
else:
    out = crop.area_crop(photo.region, sq, size, photo.height, photo.width)
wall, cpu = time.perf_counter() - t, time.process_time() - c
np.save({out_npy!r}, out)
print(json.dumps({{"way": way, "decodes": calls[0], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="12000x9000", help="WIDTHxHEIGHT of the generated JPEG")
    p.add_argument("--side", type=float, default=8000.0, help="the square's side (pixels)")
    p.add_argument("--crop", type=int, default=192, help="crop side (pixels)")
    args = p.parse_args(argv)
    from PIL import Image

    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        rng = np.random.default_rng(0)
        small = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8))
        small.resize((w, h), Image.BILINEAR).save(path, quality=90)
        square = [(w - args.side) / 2 + 0.25, (h - args.side) / 2 + 0.5, args.side]
        outs = {}
        for way in ("blocks", "bands"):
            out_npy = str(Path(tmp) / f"{way}.npy")
            code = CHILD.format(root=str(ROOT), path=str(path), way=way, square=square, size=args.crop, out_npy=out_npy)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"{way}: {res.stderr[-2000:]}")
            print(res.stdout.strip().splitlines()[-1], flush=True)
            outs[way] = np.load(out_npy)
        print(json.dumps({"photo": args.size, "square": square, "crop": args.crop,
                          "equal_bit_for_bit": bool(np.array_equal(outs["blocks"], outs["bands"]))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
