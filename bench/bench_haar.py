"""OpenCV's Haar cascade (facepack/detect/haar.py) against MTCNN: recall, false faces, speed, box map.

    python bench/bench_haar.py                  # 300 faces per dataset + 52 face-free images (~3 min idle)
    python bench/bench_haar.py --faces 1000 --face-free 156

Faces: the same seeded samples of ../shared/datasets as bench/bench_detector_thresholds.py
(scut-fbp5500-train portraits: found when a box centre lies in the photo's central region;
youtube-faces-keypoints-train crops: found when it lies in the labelled points' box;
bench/common.py:match_face). Face-free images: that bench's generated ones (noise, textures,
gradients, stripes, shapes, scrambled SCUT tiles): every detection on them is false.

Detectors, each on the same decoded images (RGB uint8, the detection image of facepack.pipeline):
  mtcnn            facepack.pipeline.detect with spec.MTCNN, then spec.FACE_FILTER (what predict.py keeps)
  haar (settings)  facepack.detect.haar.HaarDetector with HAAR and a few alternatives (histogram
                   equalisation on/off, min_neighbors 3/5); the row marked (default) is HAAR
Speed: median milliseconds per image of the detector call alone (decoding excluded), one thread
of the process at a time; OpenCV uses its own thread pool (cv2.getNumThreads() is printed).

Box map: on faces both detectors found, the MTCNN box relative to the cascade's raw square box
(x offset, y offset, width, height as fractions of the Haar side; medians and quartiles). These
medians are facepack/detect/haar.py:HAAR_TO_MTCNN_BOX; the last line gives the median IoU of the
mapped and the raw Haar boxes with the MTCNN box.

Writes bench/results/haar.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_detector_thresholds as thresholds  # noqa: E402
import common  # noqa: E402

VARIANTS = {  # name -> HaarDetector settings (overrides of haar.HAAR)
    "haar": {},
    "haar eq=off nb=5": {"equalize": False, "min_neighbors": 5},
    "haar eq=off nb=3": {"equalize": False, "min_neighbors": 3},
    "haar eq=on nb=3": {"equalize": True, "min_neighbors": 3},
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=300, help="faces per dataset, a seeded sample (default 300)")
    p.add_argument("--face-free", type=int, default=52, help="generated face-free images (default 52)")
    args = p.parse_args(argv)
    if args.faces < 1 or args.face_free < 0:
        p.error(f"--faces must be >= 1 and --face-free >= 0, got {args.faces} and {args.face_free}")
    return args


def iou(a: dict, b: dict) -> float:
    x0, y0 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x1 = min(a["x"] + a["width"], b["x"] + b["width"])
    y1 = min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def main(argv=None) -> int:
    import cv2
    import numpy as np

    from facepack import pipeline, spec
    from facepack.data.images import load_rgb
    from facepack.detect import haar, mtcnn_detector

    args = parse_args(argv)
    info = common.machine_info()
    info["opencv"] = cv2.__version__
    info["opencv_threads"] = cv2.getNumThreads()
    items = thresholds.face_items(args.faces)
    if not items:
        print(f"bench_haar.py: no dataset under {thresholds.DATASETS}", file=sys.stderr)
        return 2
    mtcnn = mtcnn_detector.build_detector()
    options = mtcnn_detector.resolve_options(None)
    cascades = {name: haar.HaarDetector(settings=s) for name, s in VARIANTS.items()}
    conf, box_px = spec.FACE_FILTER["min_confidence"], spec.FACE_FILTER["min_box_size_px"]
    names = ["mtcnn", *cascades]
    found = {n: {"scut": 0, "youtube": 0} for n in names}
    false = {n: 0 for n in names}
    ms = {n: [] for n in names}
    box_rel, ious_raw, ious_mapped = [], [], []

    def run_all(rgb):
        out = {}
        t = time.perf_counter()
        out["mtcnn"] = pipeline.filter_faces(pipeline.detect(mtcnn, rgb, options), conf, box_px)
        ms["mtcnn"].append((time.perf_counter() - t) * 1000.0)
        for n, det in cascades.items():
            t = time.perf_counter()
            out[n] = pipeline.filter_faces(det.detect(rgb), conf, box_px)
            ms[n].append((time.perf_counter() - t) * 1000.0)
        return out

    pipeline.detect(mtcnn, load_rgb(items[0]["path"]), options)  # warm-up (TF graph building)
    t0 = time.perf_counter()
    for k, it in enumerate(items):
        rgb = load_rgb(it["path"])
        truth = it["truth"] if it["truth"] is not None else thresholds.scut_truth(*rgb.shape[:2])
        dets = run_all(rgb)
        hits = {n: common.match_face(dets[n], truth) for n in names}
        for n in names:
            found[n][it["dataset"]] += hits[n] is not None
        m, h = hits["mtcnn"], hits["haar"]
        if m is not None and h is not None:
            r, b = h["raw_box"], m["box"]
            s = (r["width"] + r["height"]) / 2
            box_rel.append([(b["x"] - r["x"]) / s, (b["y"] - r["y"]) / s, b["width"] / s, b["height"] / s])
            ious_raw.append(iou(r, b))
            ious_mapped.append(iou(h["box"], b))
        if (k + 1) % 100 == 0:
            print(f"  {k + 1}/{len(items)} face images, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    face_ms = {n: list(v) for n, v in ms.items()}
    for n in names:
        ms[n].clear()
    for it in thresholds.face_free_items(args.face_free):
        dets = run_all(thresholds.face_free_image(it["kind"], it["index"], it["size"]))
        for n in names:
            false[n] += len(dets[n])
    free_ms = ms
    n_scut = sum(it["dataset"] == "scut" for it in items)
    n_yt = len(items) - n_scut
    rows = []
    for n in names:
        label = n
        if n == "haar":  # the module's settings
            label = f"haar (default: eq={'on' if haar.HAAR['equalize'] else 'off'} nb={haar.HAAR['min_neighbors']})"
        rows.append([label, 100.0 * found[n]["scut"] / max(n_scut, 1), 100.0 * found[n]["youtube"] / max(n_yt, 1),
                     100.0 * (found[n]["scut"] + found[n]["youtube"]) / len(items), false[n],
                     common.median(face_ms[n]), common.median(free_ms[n]) if free_ms[n] else None])
    print(common.machine_line(info) + f", OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)")
    print(f"{n_scut} SCUT-FBP5500 (350 x 350) + {n_yt} YouTube-Faces (72..494 px) faces, "
          f"{args.face_free} face-free images (640 x 480 and 1280 x 720); MTCNN with spec.FACE_FILTER "
          f"(min confidence {conf}, min box {box_px} px), Haar with min box {box_px} px")
    print(common.format_table(["detector", "SCUT recall %", "YouTube recall %", "recall %", "false dets",
                               "ms / face image", "ms / face-free image"], rows, digits=1))
    result = {"machine": info, "faces": {"scut": n_scut, "youtube": n_yt}, "face_free": args.face_free,
              "rows": [dict(zip(["detector", "scut_recall", "youtube_recall", "recall", "false", "ms_face",
                                 "ms_free"], r)) for r in rows],
              "haar_settings": haar.HAAR}
    if box_rel:
        rel = np.asarray(box_rel)
        q = np.percentile(rel, [25, 50, 75], axis=0)
        fit = dict(zip(["dx", "dy", "sw", "sh"], (round(float(v), 3) for v in q[1])))
        print(f"box map on {len(rel)} faces both found (MTCNN box / Haar raw box, fractions of the Haar side; "
              "median [quartiles]): " + ", ".join(f"{k} {q[1][i]:.3f} [{q[0][i]:.3f}..{q[2][i]:.3f}]"
                                                   for i, k in enumerate(["dx", "dy", "sw", "sh"])))
        print(f"  -> HAAR_TO_MTCNN_BOX = {fit} (now {haar.HAAR_TO_MTCNN_BOX}); median IoU with the MTCNN box: "
              f"raw {np.median(ious_raw):.3f}, mapped {np.median(ious_mapped):.3f}")
        result["box_map"] = {"faces": len(rel), "median": fit, "quartiles": q.tolist(),
                             "iou_raw": float(np.median(ious_raw)), "iou_mapped": float(np.median(ious_mapped))}
    print(f"JSON: {common.write_json('haar', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
