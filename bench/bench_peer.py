"""facepack next to @vladmandic/face-api in the same run: milliseconds, model bytes, keypoint NME.

    npm install --prefix bench/peer @vladmandic/face-api     # once (its npm package ships its models)
    python bench/bench_peer.py            # 100 held-out faces, 4 calls per photo (about 3-5 minutes)
    python bench/bench_peer.py --quick    # 30 faces, 2 calls per photo

Both run in Node 20 on TF.js 4.22 with the WASM backend (face-api's dist/face-api.node-wasm.js,
no tfjs-node), one process each, on the same raw RGB pixels:
  detectors  ours: MTCNN (the library's detect stage); theirs: TinyFaceDetector (inputSize 416,
             score 0.5) and SSD MobileNetV1 (confidence 0.5); ms per photo, warm median
  end to end ours: MTCNN + crop + kpnet@96 (the library, bench/results bundle, --precision);
             theirs: detector + faceLandmark68Net (detectAllFaces().withFaceLandmarks())
  same crops both landmark models on the same square around the ground-truth points (the spec's
             keypoint crop rule; ours at 96 px through the Python reference model, theirs at
             112 px, its input size): no detector in the way
Labelled faces: tests/fixtures/einstein.jpg + einstein.pts (68 points of Einstein's face) and the
first --faces of the shipped keypoint model's held-out faces of
../shared/datasets/youtube-faces-keypoints-train (when present; set FACEPACK_KEYPOINT_DATA to
move it). NME: mean point error / outer-eye-corner distance (facepack.metrics); a face counts as
found when the nearest detection's box centre lies inside the points' bounding box; a miss counts
as a failure and as infinite NME in the median. Ours were trained on other faces of the same
dataset (not these held-out ones); theirs on other data (iBUG-style 68 points too).
JSON: bench/results/peer.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PEER_PACKAGE = common.PEER_DIR / "node_modules" / "@vladmandic" / "face-api"
PEER_MODELS = {"tiny": "tiny_face_detector_model", "ssd": "ssd_mobilenetv1_model",
               "landmarks": "face_landmark_68_model"}
PEER_CROP_PX = 112  # faceLandmark68Net's input size
INSTALL = "npm install --prefix bench/peer @vladmandic/face-api"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="30 dataset faces, 2 calls per photo")
    p.add_argument("--faces", type=int, help="held-out dataset faces (default 100; --quick 30; 0: Einstein only)")
    p.add_argument("--repeat", type=int, help="calls per photo for the ms, the first dropped (default 4; --quick 2)")
    p.add_argument("--precision", default="float16", choices=list(common.PRECISIONS),
                   help="our bundle (convert/to_tfjs.py --quantize value; default float16, what the main job ships)")
    args = p.parse_args(argv)
    args.faces = (30 if args.quick else 100) if args.faces is None else args.faces
    args.repeat = (2 if args.quick else 4) if args.repeat is None else args.repeat
    if args.repeat < 2 or args.faces < 0:
        p.error(f"--repeat must be >= 2 and --faces >= 0, got {args.repeat} and {args.faces}")
    return args


def peer_model_bytes(name: str) -> int:
    """Bytes of one face-api model: its weights manifest + weight files."""
    folder = PEER_PACKAGE / "model"
    return sum(f.stat().st_size for f in folder.glob(f"{name}*") if f.is_file())


def labelled_faces(limit: int) -> list[tuple[str, object, object]]:
    """[(name, RGB, (68, 2) points)]: Einstein first, then the held-out dataset faces."""
    from facepack.data.images import load_rgb

    out = [("einstein", common.load_photo("einstein"), common.read_pts(common.FIXTURES / "einstein.pts"))]
    out += [(Path(path).stem, load_rgb(path), pts) for path, pts in common.heldout_keypoint_faces(limit)]
    return out


def gt_square(points) -> tuple[float, float, float]:
    from facepack.data.tfdata import crop_square_for_points

    return crop_square_for_points(points)


def ours_on_gt_crops(faces) -> list[float]:
    """NME of the shipped Keras keypoint model (the reference) on the ground-truth crops."""
    import numpy as np

    from facepack import pipeline
    from facepack.crop import crop_squares
    from facepack.runs import load_run

    model, _ = load_run(common.SHIPPED["keypoints"])
    size = int(model.input_shape[1])
    out = []
    for _, rgb, pts in faces:
        sq = gt_square(pts)
        pred = pipeline.keypoints(model, crop_squares(rgb, [sq], size), [sq])[0]
        out.append(common.nme(np.asarray(pred), pts))
    return out


def crop_to_photo(points, square, crop_px: int):
    """Points in a crop's pixels (crop_px wide) -> photo pixels (the crop covers ``square``)."""
    import numpy as np

    from facepack.crop import crop_points_to_image

    return crop_points_to_image(np.asarray(points, dtype=np.float64) / crop_px, square)


def write_inputs(faces, folder: Path) -> tuple[list, list, list]:
    """Raw files for Node: the photos, the labelled images, their ground-truth crops at PEER_CROP_PX."""
    import numpy as np

    from facepack.crop import crop_squares
    from jsharness import write_raw

    photos = [write_raw(common.load_photo(n), folder / f"photo_{n}.rgb", n) for n in common.PHOTOS]
    labelled, crops = [], []
    for i, (name, rgb, pts) in enumerate(faces):
        labelled.append(write_raw(rgb, folder / f"face{i}.rgb", name))
        crop = crop_squares(rgb, [gt_square(pts)], PEER_CROP_PX)[0]
        crops.append(write_raw(np.clip(np.round(crop), 0, 255).astype(np.uint8), folder / f"crop{i}.rgb", name))
    return photos, labelled, crops


def run_ours(bundle: Path, photos, labelled, repeat: int, log) -> dict:
    from jsharness import run_node

    script = common.ROOT / "bench" / "speed.mjs"
    log("  facepack (Node, WASM): photos")
    timing = run_node(script, {"bundle": str(bundle), "backend": "wasm", "repeat": repeat, "heatmaps": False,
                               "images": photos}, timeout=600)
    log(f"  facepack (Node, WASM): {len(labelled)} labelled faces")
    faces = run_node(script, {"bundle": str(bundle), "backend": "wasm", "repeat": 1, "heatmaps": False,
                              "images": labelled}, timeout=600)
    return {"timing": timing, "labelled": faces}


def run_theirs(photos, labelled, crops, repeat: int, log) -> dict:
    from jsharness import run_node

    log(f"  face-api (Node, WASM): photos, {len(labelled)} labelled faces, {len(crops)} crops")
    return run_node(common.ROOT / "bench" / "peer.mjs",
                    {"repeat": repeat, "photos": photos, "labelled": labelled, "crops": crops}, timeout=600)


def warm(values) -> float | None:
    """Median of the calls after the first."""
    return common.median(values[1:])


def nme_cells(einstein: float, summary: dict) -> list:
    def nme_text(v):
        return "missed" if v is None or v == float("inf") else f"{v:.4f}"

    return [nme_text(einstein), f"{summary['found']}/{summary['n']}" if summary["n"] else "-",
            nme_text(summary["nme_mean_found"]) if summary["n"] else "-",
            nme_text(summary["nme_median_all"]) if summary["n"] else "-",
            f"{summary['failure_rate']:.3f}" if summary["n"] else "-"]


def detector_cells(found: list[bool]) -> list:
    rest = found[1:]
    return ["found" if found[0] else "missed", f"{sum(rest)}/{len(rest)}" if rest else "-", "-", "-", "-"]


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if not (PEER_PACKAGE / "dist" / "face-api.node-wasm.js").is_file():
        sys.exit(f"bench_peer: {PEER_PACKAGE} is missing; install it with: {INSTALL}")
    info = common.machine_info()
    info["face_api"] = common.package_version(PEER_PACKAGE / "package.json")
    bundle = common.ensure_bundle(args.precision, log)
    faces = labelled_faces(args.faces)
    if len(faces) == 1:
        log(f"  no dataset at {common.KEYPOINT_DATA}: Einstein only")
    truths = [pts for _, _, pts in faces]
    with tempfile.TemporaryDirectory() as tmp:
        photos, labelled, crops = write_inputs(faces, Path(tmp))
        ours = run_ours(bundle, photos, labelled, args.repeat, log)
        theirs = run_theirs(photos, labelled, crops, args.repeat, log)
    log("  facepack (Python reference): keypoints on the same crops")
    ours_crop_nme = ours_on_gt_crops(faces)

    # NME per face (inf = missed) for each end-to-end method, and detector hits.
    ours_match = [common.match_face(r["faces"], t) for r, t in zip(ours["labelled"]["results"], truths)]
    nmes = {"ours_e2e": [common.nme(m["keypoints"], t) if m else float("inf") for m, t in zip(ours_match, truths)]}
    found = {"ours": [m is not None for m in ours_match]}
    for key in ("tiny", "ssd"):
        matches = [common.match_face(r[key], t) for r, t in zip(theirs["labelled"], truths)]
        found[key] = [m is not None for m in matches]
        nmes[f"{key}_e2e"] = [common.nme(m["points"], t) if m else float("inf") for m, t in zip(matches, truths)]
    squares = [gt_square(t) for t in truths]
    nmes["theirs_crop"] = [common.nme(crop_to_photo(c["points"], sq, PEER_CROP_PX), t)
                           for c, sq, t in zip(theirs["crops"], squares, truths)]
    nmes["ours_crop"] = ours_crop_nme
    summaries = {k: common.nme_summary(v[1:]) for k, v in nmes.items()}

    # ms: warm medians on the two photos (ours: the library's stage timings; theirs: per call).
    ours_ms = {r["name"]: {k: warm([run[k] for run in r["runs"]]) for k in ("detect", "crop", "keypoints")}
               for r in ours["timing"]["results"]}
    theirs_ms = {p["name"]: p for p in theirs["photos"]}
    kib = lambda n: n / 1024  # noqa: E731
    from bench_size import group_bytes, model_bytes

    our_bytes = group_bytes(model_bytes(bundle))
    peer_bytes = {k: peer_model_bytes(v) for k, v in PEER_MODELS.items()}
    names = list(common.PHOTOS)
    crop_ms_ours = common.median(ours_ms[n]["keypoints"] for n in names)  # one face per photo: one crop
    crop_ms_theirs = warm([c["ms"] for c in theirs["crops"]])
    rows = [
        ["facepack MTCNN", kib(our_bytes["mtcnn"]), *[ours_ms[n]["detect"] for n in names], None,
         *detector_cells(found["ours"])],
        ["face-api TinyFaceDetector", kib(peer_bytes["tiny"]),
         *[warm(theirs_ms[n]["tiny"]["detect_ms"]) for n in names],
         None, *detector_cells(found["tiny"])],
        ["face-api SSD MobileNetV1", kib(peer_bytes["ssd"]), *[warm(theirs_ms[n]["ssd"]["detect_ms"]) for n in names],
         None, *detector_cells(found["ssd"])],
        ["facepack MTCNN + kpnet", kib(our_bytes["mtcnn"] + our_bytes["keypoints"]),
         *[sum(ours_ms[n].values()) for n in names], None, *nme_cells(nmes["ours_e2e"][0], summaries["ours_e2e"])],
        ["face-api Tiny + landmark68", kib(peer_bytes["tiny"] + peer_bytes["landmarks"]),
         *[warm(theirs_ms[n]["tiny"]["e2e_ms"]) for n in names], None,
         *nme_cells(nmes["tiny_e2e"][0], summaries["tiny_e2e"])],
        ["face-api SSD + landmark68", kib(peer_bytes["ssd"] + peer_bytes["landmarks"]),
         *[warm(theirs_ms[n]["ssd"]["e2e_ms"]) for n in names], None,
         *nme_cells(nmes["ssd_e2e"][0], summaries["ssd_e2e"])],
        ["facepack kpnet, same crops", kib(our_bytes["keypoints"]), None, None, crop_ms_ours,
         *nme_cells(nmes["ours_crop"][0], summaries["ours_crop"])],
        ["face-api landmark68, same crops", kib(peer_bytes["landmarks"]), None, None, crop_ms_theirs,
         *nme_cells(nmes["theirs_crop"][0], summaries["theirs_crop"])],
    ]
    n_data = len(faces) - 1
    headers = ["method", "model KiB", "ms astronaut", "ms einstein", "ms per crop", "Einstein NME",
               "YTF found", "YTF NME mean (found)", "YTF NME median (all)", "YTF failure"]
    print(common.machine_line(info) + f", face-api {info['face_api']} (Node, WASM, "
          f"{theirs['versions']['threads']} thread)")
    print(f"Ours: the {common.PRECISIONS[args.precision]} bundle of models/shipped; ms: warm median of "
          f"{args.repeat - 1} calls (ours: detect + crop + keypoints stages; Grad-CAM and beauty off). "
          f"YTF: {n_data} held-out faces of youtube-faces-keypoints-train"
          + ("" if n_data else " (dataset not found)") + ". Einstein: the labelled face in einstein.jpg "
          "(detector rows: found or missed).")
    print(common.format_table(headers, rows))
    out = {"machine": info, "args": vars(args), "peer_versions": theirs["versions"], "our_bytes": our_bytes,
           "peer_bytes": peer_bytes, "ours_ms": ours_ms, "theirs_ms": {n: {k: {m: theirs_ms[n][k][m] for m in
                                                                               ("detect_ms", "e2e_ms")}
                                                                           for k in ("tiny", "ssd")} for n in names},
           "crop_ms": {"ours": crop_ms_ours, "theirs": crop_ms_theirs}, "found": found,
           "nme": {k: [None if v == float("inf") else v for v in vals] for k, vals in nmes.items()},
           "summaries": summaries, "faces": [name for name, _, _ in faces]}
    print(f"JSON: {common.write_json('peer', out).relative_to(common.ROOT)}")
    return out


if __name__ == "__main__":
    main()
