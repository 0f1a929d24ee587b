"""facepack next to face-api, human, the `mtcnn` package and the Python pipeline on the same photos: one table, one run (issue 14).

    npm install --prefix bench/peer @vladmandic/face-api @vladmandic/human   # once (they ship their models)
    python bench/bench_speed_peers.py                  # 4 photos, 5 calls each, 3 passes (~12 min on 2 cores)
    python bench/bench_speed_peers.py --quick          # 3 calls, 1 pass
    python bench/bench_speed_peers.py --before 86dc96f # adds facepack Node at that commit (package defaults)
    python bench/bench_speed_peers.py --skip facepack_node_fast facepack_chromium_fast   # fewer columns

Photos (bench/photos.py): the fixtures astronaut (512 x 512, 1 face) and einstein (817 x 1024: the
seated man), a composed 1920 x 1080 still (2 faces) and a composed 1986 x 1545 crowd of 25 small
faces. Every JS column runs TF.js 4.22 on WASM (SIMD; the thread count is printed):
  facepack Node      the library, analyze() with keypoints + beauty (no Grad-CAM), the float16
                     bundle of models/shipped (bench/results/bundle-float16, rebuilt when its
                     manifest's spec is not facepack.spec's)
  ... det + kp       like for like with face-api tiny + 68: modelConfig.models ['detector',
                     'keypoints'] (detection + 5 landmarks + the keypoint model; no beauty)
  facepack Chromium  the same in headless /usr/bin/chromium (page with COOP/COEP)
  ... 2 threads      the same with modelConfig.wasmThreads 2 (TF.js alone gives half the logical
                     cores: 1 thread on a 2-core machine; faster when the machine is otherwise
                     idle, slower when it is busy)
  ... fast           the same with analyze option detectorPreset: 'fast' (pyramid from 40 px)
  facepack before    (--before REF) the library at commit REF, with the `mtcnn` package's
                     minimum face size (20 px): the numbers before issue 14 (--before-defaults:
                     with REF's own defaults, i.e. the same detector settings as now)
  face-api           @vladmandic/face-api TinyFaceDetector (416, score 0.5) + faceLandmark68Net
  human              @vladmandic/human BlazeFace + face mesh (caching off, up to 100 faces)
  mtcnn package      the `mtcnn` Python package, detect_faces with its defaults (detect only)
  Python pipeline    facepack.pipeline.FacePipeline (shipped Keras models, TensorFlow on every
                     core: the JS columns use one), analyze() with keypoints + beauty, no Grad-CAM
Every column first makes --warmup untimed passes over all photos (default 1: right after load V8
still compiles in the background, which slowed whichever photo came first by up to 1.4x).
ms: per photo the median of the warm calls (the first call dropped), then the median over
--passes passes (fresh processes; the machine is shared, so one pass can be noisy; --fastest: the
fastest pass instead); "faces": what each found (facepack: after its face filter). A second table
gives ratios (ours / theirs, < 1: facepack faster), a third process-CPU ms of the same calls where
the column can measure them (not Chromium; on a loaded machine they move far less than wall ms),
then the issue's targets on wall ms, met or not.
JSON: bench/results/speed_peers.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PACKAGES = {"face_api": common.PEER_DIR / "node_modules" / "@vladmandic" / "face-api",
            "human": common.PEER_DIR / "node_modules" / "@vladmandic" / "human"}
INSTALL = "npm install --prefix bench/peer @vladmandic/face-api @vladmandic/human"
QUANTIZE = "float16"
COLUMNS = ("facepack_node", "facepack_node_lite", "facepack_chromium", "facepack_chromium_lite", "facepack_chromium_threads",
           "facepack_node_fast", "facepack_chromium_fast", "facepack_before", "face_api", "human", "mtcnn_package", "python")
THREADS = {"wasmThreads": 2}  # modelConfig of the 2-thread Chromium column
FAST = {"detectorPreset": "fast"}  # spec.MTCNN_PRESETS["fast"]
LITE_MODELS = ["detector", "keypoints"]  # like for like with face-api tiny + 68: no beauty
LABELS = {"facepack_node": "facepack Node", "facepack_node_lite": "facepack Node det + kp",
          "facepack_chromium": "facepack Chromium", "facepack_chromium_lite": "facepack Chromium det + kp",
          "facepack_chromium_threads": "facepack Chromium 2 threads",
          "facepack_node_fast": "facepack Node fast", "facepack_chromium_fast": "facepack Chromium fast",
          "facepack_before": "facepack before (Node)", "face_api": "face-api tiny + 68",
          "human": "human BlazeFace + mesh", "mtcnn_package": "`mtcnn` package, detect only",
          "python": "Python pipeline"}
# Ratio columns (ours, theirs), shown where both ran.
RATIOS = [("facepack_node", "face_api"), ("facepack_node_lite", "face_api"), ("facepack_chromium", "face_api"),
          ("facepack_chromium_lite", "face_api"), ("facepack_chromium_threads", "face_api"), ("facepack_node", "human"), ("facepack_node", "mtcnn_package"),
          ("facepack_node", "python"), ("facepack_chromium", "python"), ("facepack_node_fast", "face_api"),
          ("facepack_node", "facepack_before")]
SHORT = {"face_api": "face-api", "human": "human", "mtcnn_package": "`mtcnn`", "python": "Python",
         "facepack_before": "before"}
# The targets (issue 14 "Done when"): the portrait in Chromium WASM, ms.
PORTRAIT = "astronaut"
PORTRAIT_TARGET_MS = 60.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 calls per photo, 1 pass")
    p.add_argument("--repeat", type=int, help="calls per photo, the first dropped (default 5; --quick 3)")
    p.add_argument("--passes", type=int, help="fresh processes per column, median taken (default 3; --quick 1)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed passes over all photos before the timed calls, every column (default 1)")
    p.add_argument("--before", metavar="REF", help="also time the library at this git commit (package defaults)")
    p.add_argument("--before-defaults", action="store_true",
                   help="time --before REF with its own default options (the same spec as now), not the package's 20 px")
    p.add_argument("--skip", nargs="+", default=[], choices=list(COLUMNS), metavar="COLUMN",
                   help="columns to leave out, any of: " + ", ".join(COLUMNS))
    p.add_argument("--fastest", action="store_true",
                   help="per photo the fastest pass instead of the median over passes (a loaded machine)")
    args = p.parse_args(argv)
    args.repeat = (3 if args.quick else 5) if args.repeat is None else args.repeat
    args.passes = (1 if args.quick else 3) if args.passes is None else args.passes
    if args.repeat < 2 or args.passes < 1 or args.warmup < 0:
        p.error(f"--repeat must be >= 2, --passes >= 1 and --warmup >= 0, got {args.repeat}, {args.passes} and {args.warmup}")
    return args


def current_bundle(log) -> Path:
    """The float16 bench bundle, rebuilt when its manifest's spec is not facepack.spec's."""
    import shutil

    from facepack import spec

    out = common.bundle_dir(QUANTIZE)
    manifest = out / "manifest.json"
    if manifest.is_file():
        have = json.loads(manifest.read_text()).get("spec")
        if have != json.loads(json.dumps(spec.spec_dict())):
            log(f"  {out} was exported with another spec: rebuilding it")
            shutil.rmtree(out)
    return common.ensure_bundle(QUANTIZE, log)


def before_library(ref: str, folder: Path) -> Path:
    """static/facepack of commit ``ref`` unpacked under bench/results (so it resolves node_modules)."""
    tar = subprocess.run(["git", "archive", ref, "static/facepack"], cwd=common.ROOT, capture_output=True)
    if tar.returncode != 0:
        raise SystemExit(f"bench_speed_peers: --before {ref}: git archive failed: {tar.stderr.decode()[-300:]}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as fh:
        fh.write(tar.stdout)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as archive:
            archive.extractall(folder, filter="data")
    return folder / "static" / "facepack" / "index.js"


def warm(values) -> float | None:
    return common.median(values[1:])


def facepack_node(bundle: Path, jobs, repeat: int, library: Path | None = None, options: dict | None = None,
                  models: list[str] | None = None, warmup: int = 0) -> dict:
    from jsharness import run_node

    job = {"bundle": str(bundle), "backend": "wasm", "repeat": repeat, "heatmaps": False, "images": jobs, "warmup": warmup,
           "options": options or {}, **({"library": str(library)} if library else {}),
           **({"models": models} if models else {})}
    out = run_node(common.ROOT / "bench" / "speed.mjs", job, timeout=900)
    return {"env": out["env"], "photos": {r["name"]: {"ms": warm([t["total"] for t in r["runs"]]),
                                                      "cpu_ms": warm([t["cpu"] for t in r["runs"]]),
                                                      "detect_ms": warm([t["detect"] for t in r["runs"]]),
                                                      "faces": len(r["faces"])} for r in out["results"]}}


def facepack_chromium(jobs, raw_dir: Path, repeat: int, options: dict | None = None,
                      models: list[str] | None = None, config: dict | None = None, warmup: int = 0) -> dict:
    from bench_speed import PAGE_MODULE, chromium_config, harness_routes
    from jsharness import page_html, playwright_session, static_server

    pages = {"/bench.html": page_html(PAGE_MODULE, "facepack bench")}
    with static_server(harness_routes(raw_dir), pages) as base, playwright_session() as pw:
        res = chromium_config(pw, base, QUANTIZE, "wasm", jobs, 1, repeat, lambda _m: None, heatmaps=False,
                              options=options, models=models, config=config, warmup=warmup)
    return {"env": res["env"], "photos": {name: {"ms": p["warm"]["total"], "detect_ms": p["warm"]["detect"],
                                                 "faces": p["faces"]} for name, p in res["photos"].items()}}


def face_api(jobs, repeat: int, warmup: int = 0) -> dict:
    from jsharness import run_node

    out = run_node(common.ROOT / "bench" / "peer.mjs",
                   {"repeat": repeat, "photos": jobs, "labelled": [], "crops": [], "detectors": ["tiny"],
                    "warmup": warmup}, timeout=900)
    return {"env": out["versions"], "photos": {p["name"]: {"ms": warm(p["tiny"]["e2e_ms"]),
                                                           "cpu_ms": warm(p["tiny"]["e2e_cpu_ms"]),
                                                           "detect_ms": warm(p["tiny"]["detect_ms"]),
                                                           "faces": len(p["tiny"]["faces"])} for p in out["photos"]}}


def human(jobs, repeat: int, warmup: int = 0) -> dict:
    from jsharness import run_node

    out = run_node(common.ROOT / "bench" / "human.mjs", {"repeat": repeat, "photos": jobs, "warmup": warmup}, timeout=900)
    return {"env": out["versions"], "photos": {p["name"]: {"ms": warm(p["ms"]), "cpu_ms": warm(p["cpu_ms"]),
                                                           "faces": len(p["faces"])}
                                               for p in out["photos"]}}


def mtcnn_package(rgbs: dict, repeat: int, warmup: int = 0) -> dict:
    """The package's detect_faces, its defaults, on each photo as given (float32)."""
    import numpy as np

    from facepack.detect import mtcnn_detector

    detector = mtcnn_detector.build_detector()
    for _ in range(warmup):
        for rgb in rgbs.values():
            detector.detect_faces(rgb.astype(np.float32))
    photos = {}
    for name, rgb in rgbs.items():
        image = rgb.astype(np.float32)
        ms, cpu, faces = [], [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            faces = detector.detect_faces(image)
            ms.append((time.perf_counter() - t0) * 1000.0)
            cpu.append((time.process_time() - c0) * 1000.0)
        photos[name] = {"ms": warm(ms), "cpu_ms": warm(cpu), "faces": len(faces)}
    import mtcnn

    return {"env": {"mtcnn": getattr(mtcnn, "__version__", "?")}, "photos": photos}


def python_pipeline(rgbs: dict, repeat: int, warmup: int = 0) -> dict:
    """facepack.pipeline.FacePipeline on the shipped models: analyze() with keypoints + beauty, no Grad-CAM."""
    from facepack.pipeline import FacePipeline

    pipe = FacePipeline.from_runs(common.SHIPPED["beauty"], common.SHIPPED["keypoints"])
    for _ in range(warmup):
        for rgb in rgbs.values():
            pipe.analyze(rgb, heatmaps=False)
    photos = {}
    for name, rgb in rgbs.items():
        ms, cpu, faces = [], [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            faces = pipe.analyze(rgb, heatmaps=False)["faces"]
            ms.append((time.perf_counter() - t0) * 1000.0)
            cpu.append((time.process_time() - c0) * 1000.0)
        photos[name] = {"ms": warm(ms), "cpu_ms": warm(cpu), "faces": len(faces)}
    import tensorflow as tf

    return {"env": {"tensorflow": tf.__version__, "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()},
            "photos": photos}


def combine(passes: list[dict], fastest: bool = False) -> dict:
    """Median (``fastest``: the minimum) over passes of each photo's ms; faces and env of the last pass."""
    last = passes[-1]
    pick = (lambda v: min(x for x in v if x is not None)) if fastest else common.median
    photos = {}
    for name, p in last["photos"].items():
        photos[name] = {**p, "ms": pick([q["photos"][name]["ms"] for q in passes]),
                        "ms_passes": [q["photos"][name]["ms"] for q in passes]}
        if all(q["photos"][name].get("cpu_ms") is not None for q in passes):
            photos[name]["cpu_ms"] = pick([q["photos"][name]["cpu_ms"] for q in passes])
    return {"env": last["env"], "photos": photos}


def table(results: dict, rgbs: dict) -> tuple[list[str], list[list]]:
    """ms (faces) per column, then the RATIOS columns present (ours / theirs)."""
    cols = [c for c in COLUMNS if c in results]
    headers = ["photo", *[f"{LABELS[c]} ms (faces)" for c in cols]]
    ratios = [(o, c) for o, c in RATIOS if o in results and c in results]
    headers += [f"{LABELS[o]} / {SHORT.get(c, LABELS[c])}" for o, c in ratios]
    rows = []
    for name, rgb in rgbs.items():
        h, w = rgb.shape[:2]
        row = [f"{name} {w}x{h}"]
        for c in cols:
            p = results[c]["photos"][name]
            row.append(f"{common.fmt(p['ms'], 0)} ({p['faces']})")
        for o, c in ratios:
            ours, theirs = results[o]["photos"][name]["ms"], results[c]["photos"][name]["ms"]
            row.append(f"{ours / theirs:.2f}x" if ours and theirs else "-")
        rows.append(row)
    return headers, rows


def cpu_table(results: dict, rgbs: dict) -> tuple[list[str], list[list]]:
    """Process-CPU ms per column that measured it (Node columns, face-api, human: one WASM thread;
    the `mtcnn` package and the Python pipeline: every TensorFlow thread together), then facepack
    Node and Node det + kp over face-api. On a loaded machine these move far less than wall ms."""
    cols = [c for c in COLUMNS if c in results
            and all(p.get("cpu_ms") is not None for p in results[c]["photos"].values())]
    ratios = [(o, "face_api") for o in ("facepack_node", "facepack_node_lite", "facepack_node_fast")
              if o in cols and "face_api" in cols]
    headers = ["photo", *[f"{LABELS[c]} CPU ms" for c in cols], *[f"{LABELS[o]} / face-api" for o, _ in ratios]]
    rows = []
    for name, rgb in rgbs.items():
        h, w = rgb.shape[:2]
        row = [f"{name} {w}x{h}", *[common.fmt(results[c]["photos"][name]["cpu_ms"], 0) for c in cols]]
        for o, c in ratios:
            ours, theirs = results[o]["photos"][name]["cpu_ms"], results[c]["photos"][name]["cpu_ms"]
            row.append(f"{ours / theirs:.2f}x" if ours and theirs else "-")
        rows.append(row)
    return headers, rows


def targets(results: dict) -> list[str]:
    """The issue's three targets, one line each: met / not met, with the photos that miss."""
    lines = []

    def ms(col, name):
        return results[col]["photos"][name]["ms"]

    def faces(col, name):
        return results[col]["photos"][name]["faces"]

    if "face_api" in results:
        for col in ("facepack_node", "facepack_chromium", "facepack_node_lite", "facepack_chromium_lite",
                    "facepack_chromium_threads"):
            if col not in results:
                continue
            miss = [n for n in results[col]["photos"]
                    if not (ms(col, n) and ms("face_api", n) and ms(col, n) <= ms("face_api", n))
                    or faces(col, n) < faces("face_api", n)]
            lines.append(f"{LABELS[col]} <= face-api on every photo, as many faces: "
                         + ("met" if not miss else f"NOT met ({', '.join(miss)})"))
    for col in ("facepack_chromium", "facepack_chromium_threads"):
        if col in results and PORTRAIT in results[col]["photos"]:
            got = ms(col, PORTRAIT)
            where = "Chromium WASM" + (", 2 threads" if col == "facepack_chromium_threads" else "")
            lines.append(f"{PORTRAIT} (512x512) in {where} <= {PORTRAIT_TARGET_MS:.0f} ms: "
                         + ("met" if got is not None and got <= PORTRAIT_TARGET_MS else "NOT met") + f" ({common.fmt(got, 0)} ms)")
    if "python" in results:
        for col in ("facepack_node", "facepack_chromium"):
            if col not in results:
                continue
            miss = [n for n in results[col]["photos"]
                    if not (ms(col, n) and ms("python", n) and ms(col, n) <= ms("python", n))]
            lines.append(f"{LABELS[col]} <= Python pipeline on every photo: "
                         + ("met" if not miss else f"NOT met ({', '.join(miss)})"))
    return lines


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    missing = [str(p) for k, p in PACKAGES.items() if not p.is_dir() and k not in args.skip]
    if missing and not {"face_api", "human"} <= set(args.skip):
        sys.exit(f"bench_speed_peers: {', '.join(missing)} missing; install with: {INSTALL} (or --skip face_api human)")
    from jsharness import write_raw
    from photos import speed_photos

    info = common.machine_info(chromium="facepack_chromium" not in args.skip)
    rgbs = speed_photos()
    bundle = current_bundle(log)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jobs = [write_raw(rgb, tmp / f"{name}.rgb", name) for name, rgb in rgbs.items()]
        w = args.warmup
        runners = {
            "facepack_node": lambda: facepack_node(bundle, jobs, args.repeat, warmup=w),
            "facepack_node_lite": lambda: facepack_node(bundle, jobs, args.repeat, models=LITE_MODELS, warmup=w),
            "facepack_node_fast": lambda: facepack_node(bundle, jobs, args.repeat, options=FAST, warmup=w),
            "facepack_chromium": lambda: facepack_chromium(jobs, tmp, args.repeat, warmup=w),
            "facepack_chromium_lite": lambda: facepack_chromium(jobs, tmp, args.repeat, models=LITE_MODELS, warmup=w),
            "facepack_chromium_threads": lambda: facepack_chromium(jobs, tmp, args.repeat, config=THREADS, warmup=w),
            "facepack_chromium_fast": lambda: facepack_chromium(jobs, tmp, args.repeat, FAST, warmup=w),
            "face_api": lambda: face_api(jobs, args.repeat, w),
            "human": lambda: human(jobs, args.repeat, w),
            "mtcnn_package": lambda: mtcnn_package(rgbs, args.repeat, w),
            "python": lambda: python_pipeline(rgbs, args.repeat, w),
        }
        if args.before:
            from facepack import spec

            library = before_library(args.before, common.RESULTS_DIR / f"before-{args.before}")
            package = {} if args.before_defaults else {"minFaceSize": spec.MTCNN_PRESETS["packageCompatible"]["min_face_size_px"]}
            runners["facepack_before"] = lambda: facepack_node(bundle, jobs, args.repeat, library, package, warmup=w)
        passes: dict = {c: [] for c in runners if c not in args.skip}
        for i in range(args.passes):  # interleaved, so that a busy spell of the machine hits every column
            for c in passes:
                log(f"  pass {i + 1}/{args.passes}: {LABELS[c]}")
                passes[c].append(runners[c]())
        results = {c: combine(v, args.fastest) for c, v in passes.items()}
    headers, rows = table(results, rgbs)
    envs = "; ".join(f"{LABELS[c]}: {results[c]['env']}" for c in results)
    print(common.machine_line(info))
    over = "fastest" if args.fastest else "median"
    print(f"Warm ms: median of {args.repeat - 1} calls after the first, {over} of {args.passes} pass(es). {envs}")
    ms_cols = 1 + sum(c in results for c in COLUMNS)
    print(common.format_table(headers[:ms_cols], [r[:ms_cols] for r in rows]))
    print()
    print("Ratios (ours / theirs; < 1: facepack faster):")
    print(common.format_table(headers[:1] + headers[ms_cols:], [r[:1] + r[ms_cols:] for r in rows]))
    print()
    cpu_headers, cpu_rows = cpu_table(results, rgbs)
    if len(cpu_headers) > 1:
        print("Process-CPU ms (same calls; JS: one WASM thread, Python / `mtcnn`: all TensorFlow threads):")
        print(common.format_table(cpu_headers, cpu_rows))
        print()
    print("Targets (wall ms):")
    for line in targets(results):
        print(f"- {line}")
    out = {"machine": info, "args": vars(args), "results": results, "targets": targets(results)}
    print(f"JSON: {common.write_json('speed_peers', out).relative_to(common.ROOT)}")
    return out


if __name__ == "__main__":
    main()
