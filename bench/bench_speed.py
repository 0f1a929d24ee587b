"""Milliseconds per stage and end to end: the JS library in Node and Chromium, and the Python reference.

    python bench/bench_speed.py            # full: 3 runs of each configuration (about 5-8 minutes)
    python bench/bench_speed.py --quick    # 1 run, fewer calls (about 2-3 minutes)

Configurations (photos: tests/fixtures/astronaut.png 512x512, einstein.jpg 1024x817; one face is
found on each, so a model stage's ms are per face):
  node      WASM backend, each bundle precision (float32, float16, uint8), both photos
  node      pure-JS CPU backend, float32, one small photo (astronaut at 256 px: it is ~30x slower)
  chromium  headless /usr/bin/chromium, harness page with COOP/COEP (WASM threads), each precision
  chromium  WebGL through SwiftShader (software), float32, astronaut only (~8x slower than WASM)
  python    FacePipeline of the shipped Keras models (tf.function), both photos: the reference

Cold is the first analyze of a photo (for the first photo, the first call after loading the
models, which the library warms up on zeros); warm is the median of the later calls. Each
configuration runs --runs times in a fresh process (browser); the table shows the medians over
runs. All analyses include Grad-CAM (heatmaps: true). Bundles: bench/results/bundle-<q>/ of
models/shipped (built with convert/to_tfjs.py when missing). JSON: bench/results/speed.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STAGES = ("detect", "crop", "keypoints", "beauty", "gradcam", "total")
SMALL_SIDE_PX = 256  # the CPU backend's photo

PAGE_MODULE = """
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createFaceAnalyzer } from '/facepack/index.js';
import { benchAnalyzer } from '/bench/runner.mjs';

async function rawImage(item) {
  const response = await fetch(item.url);
  if (!response.ok) throw new Error(`${item.url}: HTTP ${response.status}`);
  return { name: item.name, input: { data: new Uint8Array(await response.arrayBuffer()),
                                     width: item.width, height: item.height } };
}
// job: {bundle (URL), backend, repeat, images: [{name, url, width, height}], heatmaps?, options?,
//       models? (modelConfig.models), config? (more modelConfig, e.g. {wasmThreads: 2}), warmup? (runner.mjs)}
window.benchJob = async (job) => {
  const images = await Promise.all(job.images.map(rawImage));
  const out = await benchAnalyzer(createFaceAnalyzer, tf, { modelUrl: job.bundle, backend: job.backend,
                                                            wasmPaths: '/vendor/',
                                                            ...(job.models ? { models: job.models } : {}),
                                                            ...(job.config ?? {}) }, images,
                                  { repeat: job.repeat, heatmaps: job.heatmaps ?? true, options: job.options ?? {},
                                    warmup: job.warmup ?? 0 });
  if (out.backend === 'wasm') out.env.threads = getThreadsCount();
  out.env.crossOriginIsolated = self.crossOriginIsolated;
  return out;
};
// Time to first result (bench_size.py): from navigation start, models not cached.
window.firstResult = async (job) => {
  const [image] = await Promise.all(job.images.map(rawImage));
  const analyzer = await createFaceAnalyzer({ modelUrl: job.bundle, backend: job.backend, wasmPaths: '/vendor/' });
  const ready = performance.now();
  const result = await analyzer.analyze(image.input, { heatmaps: true });
  const done = performance.now();
  analyzer.dispose();
  return { models_ready_ms: ready, first_result_ms: done, faces: result.faces.length, backend: analyzer.backend };
};
// ?first=<job JSON>: start at once on load (no round trip to the driver before the clock stops).
const asked = new URLSearchParams(location.search).get('first');
if (asked) window.firstResult(JSON.parse(asked)).then((v) => { window.firstResultValue = v; },
                                                       (e) => { window.firstResultValue = { error: String(e) }; });
window.pageReady = true;
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 run per configuration and 2 calls per photo")
    p.add_argument("--runs", type=int, help="fresh processes per configuration (default 3; --quick 1)")
    p.add_argument("--repeat", type=int, help="analyze calls per photo per run, the first cold (default 4; --quick 2)")
    p.add_argument("--precisions", nargs="+", default=list(common.PRECISIONS), choices=list(common.PRECISIONS),
                   help="bundle precisions (convert/to_tfjs.py --quantize values; default all)")
    p.add_argument("--skip", nargs="+", default=[], choices=["node", "node-cpu", "chromium", "webgl", "python"],
                   help="configurations to leave out")
    args = p.parse_args(argv)
    args.runs = (1 if args.quick else 3) if args.runs is None else args.runs
    args.repeat = (2 if args.quick else 4) if args.repeat is None else args.repeat
    for flag in ("runs", "repeat"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    return args


def photos(small: bool = False) -> dict:
    """{name: RGB} of the two fixtures, or (small=True) astronaut at SMALL_SIDE_PX."""
    if not small:
        return {name: common.load_photo(name) for name in common.PHOTOS}
    import numpy as np
    from PIL import Image

    img = Image.fromarray(common.load_photo("astronaut")).resize((SMALL_SIDE_PX, SMALL_SIDE_PX), Image.BILINEAR)
    return {f"astronaut@{SMALL_SIDE_PX}": np.asarray(img)}


def raw_jobs(rgbs: dict, folder: Path) -> list[dict]:
    from jsharness import write_raw

    return [write_raw(rgb, folder / f"{name.replace('@', '_')}.rgb", name) for name, rgb in rgbs.items()]


def combine(run_outputs: list[dict]) -> dict:
    """Several runs of one configuration -> per photo {faces, cold, warm} (medians over runs) and load_ms."""
    per_photo = {}
    for out in run_outputs:
        for r in out["results"]:
            cw = common.cold_warm(r["runs"], STAGES)
            entry = per_photo.setdefault(r["name"], {"faces": len(r["faces"]), "cold": {}, "warm": {}, "_runs": []})
            entry["_runs"].append(cw)
    for entry in per_photo.values():
        runs = entry.pop("_runs")
        for when in ("cold", "warm"):
            entry[when] = {k: common.median(cw[k][when] for cw in runs) for k in STAGES}
        entry["runs"] = len(runs)
    return {"load_ms": common.median(o["load_ms"] for o in run_outputs), "env": run_outputs[-1].get("env"),
            "backend": run_outputs[-1].get("backend"), "photos": per_photo}


def node_config(quantize: str, backend: str, jobs: list[dict], runs: int, repeat: int, log) -> dict:
    from jsharness import run_node

    bundle = common.ensure_bundle(quantize, log)
    job = {"bundle": str(bundle), "backend": backend, "repeat": repeat, "images": jobs}
    outs = []
    for i in range(runs):
        log(f"  node {backend} {common.PRECISIONS[quantize]} run {i + 1}/{runs}")
        outs.append(run_node(common.ROOT / "bench" / "speed.mjs", job, timeout=600))
    return combine(outs)


def harness_routes(raw_dir: Path) -> dict:
    return {"/bench/": common.ROOT / "bench", "/raw/": raw_dir}


def browser_jobs(jobs: list[dict]) -> list[dict]:
    return [{"name": j["name"], "url": f"/raw/{Path(j['path']).name}", "width": j["width"], "height": j["height"]}
            for j in jobs]


def chromium_config(playwright, base: str, quantize: str, backend: str, jobs, runs: int, repeat: int, log,
                    heatmaps: bool = True, options: dict | None = None, models: list[str] | None = None,
                    config: dict | None = None, warmup: int = 0) -> dict:
    from jsharness import chromium_page, wait_for_global

    common.ensure_bundle(quantize, log)
    job = {"bundle": f"/bench/results/bundle-{quantize}", "backend": backend, "repeat": repeat,
           "images": browser_jobs(jobs), "heatmaps": heatmaps, "options": options or {},
           **({"models": models} if models else {}), "config": config or {}, "warmup": warmup}
    outs = []
    for i in range(runs):
        log(f"  chromium {backend} {common.PRECISIONS[quantize]} run {i + 1}/{runs}")
        with chromium_page(f"{base}/bench.html", webgl=backend == "webgl", timeout_ms=600_000,
                           playwright=playwright) as page:
            wait_for_global(page, "pageReady")
            outs.append(page.evaluate("job => window.benchJob(job)", job))
    return combine(outs)


def python_config(rgbs: dict, repeat: int, log) -> dict:
    """FacePipeline.from_runs on the shipped models: load ms, then per photo cold + warm calls."""
    watch = common.Stopwatch()
    from facepack.pipeline import FacePipeline

    pipe = FacePipeline.from_runs(common.SHIPPED["beauty"], common.SHIPPED["keypoints"])
    load_ms = watch.lap()
    per_photo = {}
    for name, rgb in rgbs.items():
        log(f"  python {name}")
        results = [pipe.analyze(rgb, heatmaps=True) for _ in range(repeat)]
        cw = common.cold_warm([r["timings_ms"] for r in results], STAGES)
        per_photo[name] = {"faces": len(results[-1]["faces"]), "runs": 1,
                           "cold": {k: v["cold"] for k, v in cw.items()}, "warm": {k: v["warm"] for k, v in cw.items()}}
    return {"load_ms": load_ms, "backend": "tensorflow", "env": {}, "photos": per_photo}


def table_rows(configs: list[dict]) -> list[list]:
    rows = []
    for c in configs:
        for name, p in c["result"]["photos"].items():
            warm = p["warm"] if p["warm"]["total"] is not None else p["cold"]
            rows.append([c["where"], c["backend"], c["precision"], name, p["faces"],
                         *[warm[k] for k in STAGES], p["cold"]["total"], c["result"]["load_ms"]])
    return rows


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 (progress; the table goes to stdout)
    info = common.machine_info(chromium="chromium" not in args.skip or "webgl" not in args.skip)
    configs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jobs = raw_jobs(photos(), tmp)
        small_jobs = raw_jobs(photos(small=True), tmp)
        if "node" not in args.skip:
            for q in args.precisions:
                configs.append({"where": "node", "backend": "wasm", "precision": common.PRECISIONS[q],
                                "result": node_config(q, "wasm", jobs, args.runs, args.repeat, log)})
        if "node-cpu" not in args.skip:
            configs.append({"where": "node", "backend": "cpu", "precision": "float32",
                            "result": node_config("none", "cpu", small_jobs, 1, 2, log)})
        if not {"chromium", "webgl"} <= set(args.skip):
            from jsharness import page_html, playwright_session, static_server

            pages = {"/bench.html": page_html(PAGE_MODULE, "facepack bench")}
            with static_server(harness_routes(tmp), pages) as base, \
                    playwright_session() as pw:
                if "chromium" not in args.skip:
                    for q in args.precisions:
                        configs.append({"where": "chromium", "backend": "wasm", "precision": common.PRECISIONS[q],
                                        "result": chromium_config(pw, base, q, "wasm", jobs, args.runs, args.repeat,
                                                                  log)})
                if "webgl" not in args.skip:
                    configs.append({"where": "chromium", "backend": "webgl (SwiftShader)", "precision": "float32",
                                    "result": chromium_config(pw, base, "none", "webgl", jobs[:1], 1,
                                                              max(2, args.repeat - 1), log)})
        if "python" not in args.skip:
            import tensorflow as tf

            info["tensorflow"] = tf.__version__
            configs.append({"where": "python", "backend": "tensorflow", "precision": "float32",
                            "result": python_config(photos(), args.repeat + 1, log)})
    headers = ["where", "backend", "precision", "photo", "faces", *[f"{k} ms" for k in STAGES[:-1]],
               "total ms (warm)", "total ms (cold)", "load ms"]
    print(common.machine_line(info))
    print(f"Warm: median of {args.repeat - 1} calls after the first, median over {args.runs} run(s); "
          f"cold: the first call. Stages of the warm calls. WASM env: "
          + "; ".join(f"{c['where']} {c['precision']}: {c['result']['env']}" for c in configs
                      if c['backend'] == 'wasm' and c['precision'] == 'float32'))
    print(common.format_table(headers, table_rows(configs)))
    out = {"machine": info, "args": vars(args), "configs": configs}
    path = common.write_json("speed", out)
    print(f"JSON: {path.relative_to(common.ROOT)}")
    return out


if __name__ == "__main__":
    main()
