"""What a minimum detector confidence and a minimum face size cost in recall and remove in false faces.

    python bench/bench_detector_thresholds.py            # 800 faces per dataset + 156 face-free images (~7 min)
    python bench/bench_detector_thresholds.py --quick    # 150 faces per dataset + 60 face-free images
    python bench/bench_detector_thresholds.py --all      # every face of both datasets (~20 min)
    python bench/bench_detector_thresholds.py --faces 1000 --face-free 60 --min-face-size 20   # another
                                        # pyramid start (detection-image pixels; default: the spec's)

(On the 2-core CI box: ~0.2 s per SCUT photo, ~0.13 s per YouTube photo, ~0.6 s per face-free
image when idle; `--faces 1000 --face-free 390` took 16 min at load average 10.)

The detector is the Python reference (facepack.pipeline.detect: the `mtcnn` package with the
spec's settings, no face filter), run once per image; every (min_confidence, min_box_size)
candidate is then applied to its detections, as facepack.pipeline.filter_faces applies the
settings (a face is kept when score >= min_confidence and max(box width, height) >= min_box_size,
photo pixels).

The rows: each confidence alone (no size limit), then each size with the default confidence.

Faces: the two datasets of ../shared/datasets (a seeded sample of each, or --all):
  scut-fbp5500-train              350 x 350 portraits, one frontal face each; the face counts as
                                  found when a kept box's centre lies in the central half of the
                                  photo (x in [1/4, 3/4] of the width, y in [1/5, 4/5] of the height)
  youtube-faces-keypoints-train   72..494 px face crops with 68 labelled points; found when a kept
                                  box's centre lies inside the points' box (bench/common.py:match_face)
Recall = faces found / faces; "kept" = faces still found with the filter / faces found without it.

Face-free images (generated here, seeded, 640 x 480 and 1280 x 720): uniform and Gaussian
noise (raw and blurred), value-noise textures (smooth random fields, skin tones included),
linear and radial gradients, stripes and checkerboards, and synthetic scenes of random ellipses,
rectangles and polygons (sharp and blurred), and "scrambled faces": 40 px tiles of SCUT
portraits in random order (skin, eyes, mouths, hair; no face). Every detection on them is false.

Prints one table (a row per candidate, the spec's defaults marked) and writes
bench/results/detector_thresholds.json (the raw detections too, so other candidates can be
evaluated without re-running the detector).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DATASETS = common.KEYPOINT_DATA.parent
SCUT_DATA = DATASETS / "scut-fbp5500-train"
YT_DATA = DATASETS / "youtube-faces-keypoints-train"
SEED = 0
CONFIDENCES = (0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.95, 0.97, 0.99)  # the detector's own O-Net cut is 0.8
BOX_SIZES_PX = (0, 20, 24, 30, 36, 40, 48)
NOISE_KINDS = ("uniform", "gaussian", "gaussian_blur2", "gaussian_blur6", "value_noise", "skin_noise",
               "linear_gradient", "radial_gradient", "stripes", "checkerboard", "shapes", "shapes_blur",
               "scrambled_faces")
SCRAMBLE_TILE_PX = 40  # scrambled_faces: tile side; a face (~200 px in a 350 px SCUT photo) spans ~5 tiles
FACE_FREE_SIZES = ((480, 640), (720, 1280))
SCUT_CENTRE = (0.25, 0.2, 0.75, 0.8)  # x0, y0, x1, y1 fractions of the photo: where its face's box centre lies


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="150 faces per dataset and 60 face-free images")
    p.add_argument("--all", action="store_true", help="every face of both datasets (overrides --faces)")
    p.add_argument("--faces", type=int, help="faces per dataset, a seeded sample (default 800; --quick 150)")
    p.add_argument("--face-free", type=int, help="generated face-free images (default 156; --quick 60)")
    p.add_argument("--min-face-size", type=float, metavar="PX",
                   help="the detector's min_face_size (pixels of the detection image; default: "
                        "spec.MTCNN['min_face_size_px']); the JSON then is detector_thresholds_mfs<PX>.json")
    p.add_argument("--reuse", action="store_true",
                   help="re-evaluate the detections of the last run (bench/results/detector_thresholds.json)")
    args = p.parse_args(argv)
    args.faces = (150 if args.quick else 800) if args.faces is None else args.faces
    args.face_free = (60 if args.quick else 156) if args.face_free is None else args.face_free
    if args.min_face_size is not None and not args.min_face_size > 0:
        p.error(f"--min-face-size must be > 0 pixels, got {args.min_face_size}")
    if args.faces < 1 or args.face_free < 0:
        p.error(f"--faces must be >= 1 and --face-free >= 0, got {args.faces} and {args.face_free}")
    return args


# --- Images ---------------------------------------------------------------------------------
def face_items(limit: int | None) -> list[dict]:
    """[{dataset, path, truth}] - truth: points (YouTube) or the central-region corners (SCUT)."""
    import numpy as np

    items = []
    if (SCUT_DATA / "train.txt").is_file():
        names = [line.split()[0] for line in (SCUT_DATA / "train.txt").read_text().splitlines() if line.strip()]
        for name in names:
            items.append({"dataset": "scut", "path": SCUT_DATA / "Images" / name, "truth": None})
    if (YT_DATA / "training_frames_keypoints.csv").is_file():
        from facepack.data.keypoints import load_keypoints

        data = load_keypoints(YT_DATA)
        for path, pts in zip(data.images, data.points):
            items.append({"dataset": "youtube", "path": Path(path), "truth": np.asarray(pts, dtype=np.float64)})
    if limit is None:
        return items
    rng = np.random.default_rng(SEED)
    out = []
    for name in ("scut", "youtube"):
        group = [it for it in items if it["dataset"] == name]
        out += [group[i] for i in sorted(rng.permutation(len(group))[:limit])]
    return out


def face_free_image(kind: str, index: int, size: tuple[int, int]):
    """(H, W, 3) uint8 of a generated image without faces, seeded by (kind, index)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    h, w = size
    rng = np.random.default_rng([SEED, NOISE_KINDS.index(kind), index])
    if kind == "uniform":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind.startswith("gaussian"):
        arr = np.clip(rng.normal(rng.uniform(60, 190), rng.uniform(20, 60), (h, w, 3)), 0, 255).astype(np.uint8)
        radius = {"gaussian": 0, "gaussian_blur2": 2, "gaussian_blur6": 6}[kind]
        return np.asarray(Image.fromarray(arr).filter(ImageFilter.GaussianBlur(radius))) if radius else arr
    if kind in ("value_noise", "skin_noise"):
        cells = int(rng.integers(3, 24))
        grid = rng.uniform(0, 1, (cells, int(cells * w / h) + 1, 3 if kind == "value_noise" else 1))
        field = np.asarray(Image.fromarray((grid * 255).astype(np.uint8).squeeze()).resize((w, h), Image.BICUBIC),
                           dtype=np.float64) / 255.0
        if kind == "value_noise":
            return (field * 255).astype(np.uint8)
        skin = np.array([rng.uniform(150, 235), rng.uniform(100, 180), rng.uniform(80, 150)])
        return np.clip(skin * (0.55 + 0.6 * field[:, :, None]), 0, 255).astype(np.uint8)
    if kind == "scrambled_faces":
        # Tiles of SCUT portraits (skin, eyes, hair, mouths) in a random order: face parts, no face.
        names = sorted((SCUT_DATA / "Images").glob("*.jpg"))
        if not names:
            return face_free_image("shapes", index, size)
        out = np.zeros((h, w, 3), np.uint8)
        t = SCRAMBLE_TILE_PX
        for y in range(0, h, t):
            for x in range(0, w, t):
                src = np.asarray(Image.open(names[int(rng.integers(len(names)))]).convert("RGB"))
                sy, sx = int(rng.integers(0, src.shape[0] - t)), int(rng.integers(0, src.shape[1] - t))
                out[y:y + t, x:x + t] = src[sy:sy + t, sx:sx + t][:h - y, :w - x]
        return out
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "linear_gradient":
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * xx + np.sin(a) * yy)
        t = (t - t.min()) / (np.ptp(t) + 1e-9)
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        return (c0 + (c1 - c0) * t[:, :, None]).astype(np.uint8)
    if kind == "radial_gradient":
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy)
        t = t / t.max()
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        return (c0 + (c1 - c0) * t[:, :, None]).astype(np.uint8)
    if kind in ("stripes", "checkerboard"):
        period = rng.uniform(6, 120)
        a = rng.uniform(0, np.pi)
        u = np.cos(a) * xx + np.sin(a) * yy
        v = -np.sin(a) * xx + np.cos(a) * yy
        on = (np.floor(u / period) % 2).astype(bool)
        if kind == "checkerboard":
            on ^= (np.floor(v / period) % 2).astype(bool)
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        return np.where(on[:, :, None], c1, c0).astype(np.uint8)
    # shapes / shapes_blur: random ellipses, rectangles and polygons on a gradient
    bg = face_free_image("linear_gradient", index, size)
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(10, 60))):
        x0, y0 = rng.uniform(-0.1 * w, w), rng.uniform(-0.1 * h, h)
        sw, sh = rng.uniform(8, 0.4 * w), rng.uniform(8, 0.4 * h)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse([x0, y0, x0 + sw, y0 + sh], fill=colour)
        elif shape == 1:
            draw.rectangle([x0, y0, x0 + sw, y0 + sh], fill=colour)
        else:
            pts = [(x0 + rng.uniform(0, sw), y0 + rng.uniform(0, sh)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=colour)
    if kind == "shapes_blur":
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 4))))
    return np.asarray(img)


def face_free_items(count: int) -> list[dict]:
    """[{kind, index, size}] cycling through NOISE_KINDS and FACE_FREE_SIZES."""
    return [{"kind": NOISE_KINDS[i % len(NOISE_KINDS)], "index": i,
             "size": FACE_FREE_SIZES[(i // len(NOISE_KINDS)) % len(FACE_FREE_SIZES)]} for i in range(count)]


# --- Measure --------------------------------------------------------------------------------
def detections(faces: list[dict]) -> list[dict]:
    return [{"box": f["box"], "score": f["score"]} for f in faces]


def scut_truth(h: int, w: int):
    """Corners of the central region as 'points' for common.match_face."""
    x0, y0, x1, y1 = SCUT_CENTRE
    return [[x0 * w, y0 * h], [x1 * w, y1 * h]]


def evaluate(face_runs: list[dict], free_runs: list[dict], min_confidence: float, min_box_size: float) -> dict:
    """One candidate's recall per dataset and false detections per face-free kind."""
    from facepack.pipeline import filter_faces

    def kept(faces):
        return filter_faces(faces, min_confidence, min_box_size)

    out = {"min_confidence": min_confidence, "min_box_size": min_box_size}
    for name in ("scut", "youtube"):
        runs = [r for r in face_runs if r["dataset"] == name]
        out[f"{name}_faces"] = len(runs)
        out[f"{name}_found"] = sum(common.match_face(kept(r["faces"]), r["truth"]) is not None for r in runs)
    out["false_total"] = sum(len(kept(r["faces"])) for r in free_runs)
    out["false_by_kind"] = {k: sum(len(kept(r["faces"])) for r in free_runs if r["kind"] == k) for k in NOISE_KINDS}
    out["face_free_images"] = len(free_runs)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    info = common.machine_info()
    from facepack import pipeline, spec
    from facepack.data.images import load_rgb
    from facepack.detect import mtcnn_detector

    defaults = (spec.FACE_FILTER["min_confidence"], spec.FACE_FILTER["min_box_size_px"])
    options = mtcnn_detector.resolve_options(None if args.min_face_size is None
                                             else {"min_face_size": args.min_face_size})
    info["min_face_size_px"] = options["min_face_size"]
    json_name = "detector_thresholds" + ("" if args.min_face_size is None else f"_mfs{args.min_face_size:g}")
    if args.reuse:
        last = json.loads((common.RESULTS_DIR / f"{json_name}.json").read_text())
        return report(info, last["face_runs"], last["face_free_runs"], defaults, last["seconds"], json_name)
    items = face_items(None if args.all else args.faces)
    if not items:
        print(f"bench_detector_thresholds.py: no dataset under {DATASETS} (scut-fbp5500-train, "
              "youtube-faces-keypoints-train)", file=sys.stderr)
        return 2
    detector = mtcnn_detector.build_detector()
    t0 = time.perf_counter()
    face_runs = []
    for it in items:
        rgb = load_rgb(it["path"])
        truth = it["truth"] if it["truth"] is not None else scut_truth(*rgb.shape[:2])
        face_runs.append({"dataset": it["dataset"], "path": str(it["path"]), "truth": [list(map(float, p)) for p in truth],
                          "faces": detections(pipeline.detect(detector, rgb, options))})
    face_s = time.perf_counter() - t0
    free_runs = []
    for it in face_free_items(args.face_free):
        rgb = face_free_image(it["kind"], it["index"], it["size"])
        free_runs.append({**it, "faces": detections(pipeline.detect(detector, rgb, options))})
    free_s = time.perf_counter() - t0 - face_s
    return report(info, face_runs, free_runs, defaults, {"faces": face_s, "face_free": free_s}, json_name)


def report(info: dict, face_runs: list, free_runs: list, defaults: tuple, seconds: dict,
           json_name: str = "detector_thresholds") -> int:
    """Print the table and write the JSON."""
    face_s, free_s = seconds["faces"], seconds["face_free"]
    candidates = sorted({(c, 0) for c in CONFIDENCES} | {(defaults[0], s) for s in BOX_SIZES_PX} | {defaults})
    rows, table = [], []
    for c, s in candidates:
        r = evaluate(face_runs, free_runs, c, s)
        rows.append(r)
        found = r["scut_found"] + r["youtube_found"]
        total = r["scut_faces"] + r["youtube_faces"]
        table.append([f"{c:g}", f"{s:g}" + (" (default)" if (c, s) == defaults else ""),
                      100.0 * r["scut_found"] / max(r["scut_faces"], 1), 100.0 * r["youtube_found"] / max(r["youtube_faces"], 1),
                      100.0 * found / max(total, 1), r["false_total"]])
    base = evaluate(face_runs, free_runs, 0.0, 0.0)
    base_found = base["scut_found"] + base["youtube_found"]
    for row, r in zip(table, rows):
        row.insert(5, 100.0 * (r["scut_found"] + r["youtube_found"]) / max(base_found, 1))
    print(common.machine_line(info))
    print(f"Detector min_face_size {info['min_face_size_px']:g} px (detection image). "
          f"{base['scut_faces']} SCUT-FBP5500 + {base['youtube_faces']} YouTube-Faces faces ({face_s:.0f} s), "
          f"{len(free_runs)} face-free images ({free_s:.0f} s); no filter: recall {100.0 * base_found / max(len(face_runs), 1):.2f} %, "
          f"{base['false_total']} false detections")
    print(common.format_table(["min conf", "min box px", "SCUT recall %", "YouTube recall %", "recall %",
                               "kept of found %", "false dets"], table, digits=2))
    by_kind = evaluate(face_runs, free_runs, *defaults)["false_by_kind"]
    print("false detections per face-free kind, no filter -> defaults: " +
          ", ".join(f"{k} {base['false_by_kind'][k]}->{by_kind[k]}" for k in NOISE_KINDS))
    path = common.write_json(json_name, {
        "machine": info, "defaults": {"min_confidence": defaults[0], "min_box_size_px": defaults[1]},
        "no_filter": base, "candidates": rows, "seconds": seconds, "face_runs": face_runs, "face_free_runs": free_runs})
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
