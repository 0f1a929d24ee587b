"""Bundle bytes per model and precision, and the time to the first result on a fresh page load.

    python bench/bench_size.py            # 3 page loads per precision (about 1-2 minutes)
    python bench/bench_size.py --quick    # 1 page load per precision

Bytes: every file of the bundle's models (model.json + weight shards) of bench/results/bundle-<q>/
(the shipped models, built with convert/to_tfjs.py --quantize q when missing), raw and gzipped
(level 6, what a web server's compression would send). MTCNN is always float32.

Time to first result, a fresh headless /usr/bin/chromium each load (nothing cached), WASM
backend, tests/fixtures/astronaut.png, performance.now() = ms since navigation start:
  page     the real page (server.create_app serving the bundle and static/vendor/, as
           `python server.py --models DIR`) at /?backend=wasm: "ready" is when the page says so
           (models loaded and warmed up); then the photo is chosen in its file input at once, and
           "first result" is when the page has the analysed result (decode, analysis with
           Grad-CAM); the driver's round trip (a few ms) is included
  harness  the minimal page of bench/bench_speed.py (COOP/COEP, no-store), which starts
           loading at once from its address and analyses the raw RGB pixels: the library alone
Medians over --runs loads. JSON: bench/results/size.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# Table column -> manifest model names.
GROUPS = {"mtcnn": ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"), "beauty": ("beauty_features", "beauty_head"),
          "keypoints": ("keypoints",)}
RUNTIME_FILES = ("tf.fesm.js", "tf-backend-wasm.fesm.js", "tfjs-backend-wasm-threaded-simd.wasm")
VENDOR_DIR = common.ROOT / "static" / "vendor"  # python scripts/vendor_tfjs.py writes it
# In-page polls (every 5 ms) that resolve with performance.now(); Playwright runs them over CDP,
# which the page's CSP allows (wait_for_function would eval a string, which it refuses).
PAGE_READY_JS = """() => new Promise((resolve) => { const tick = () => {
  const state = document.body.dataset.state;
  if (state === 'ready' || state === 'error') resolve({ state, ms: performance.now() }); else setTimeout(tick, 5); };
  tick(); })"""
PAGE_RESULT_JS = """() => new Promise((resolve) => { const tick = () => {
  const r = window.facepackLastResult;
  if (r) resolve({ ms: performance.now(), faces: r.faces.length, backend: r.backend });
  else if (document.body.dataset.state === 'error') resolve({ error: document.getElementById('message').textContent });
  else setTimeout(tick, 5); };
  tick(); })"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 page load per precision")
    p.add_argument("--runs", type=int, help="fresh page loads per precision (default 3; --quick 1)")
    p.add_argument("--precisions", nargs="+", default=list(common.PRECISIONS), choices=list(common.PRECISIONS),
                   help="bundle precisions (convert/to_tfjs.py --quantize values; default all)")
    p.add_argument("--no-browser", action="store_true", help="bytes only: skip the page loads")
    args = p.parse_args(argv)
    args.runs = (1 if args.quick else 3) if args.runs is None else args.runs
    if args.runs < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    return args


def file_bytes(path: Path) -> tuple[int, int]:
    """(raw bytes, gzip level-6 bytes) of one file."""
    data = Path(path).read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=6, mtime=0))


def model_bytes(bundle: Path) -> dict:
    """{model folder name: {"raw", "gzip"}} for every folder of the bundle holding a model.json."""
    out = {}
    for model_json in sorted(Path(bundle).glob("*/model.json")):
        sizes = [file_bytes(f) for f in sorted(model_json.parent.iterdir()) if f.is_file()]
        out[model_json.parent.name] = {"raw": sum(s[0] for s in sizes), "gzip": sum(s[1] for s in sizes)}
    return out


def group_bytes(models: dict, key: str = "raw") -> dict:
    """Sum per GROUPS column (and "total") of model_bytes output; KeyError names a missing model."""
    out = {}
    for group, names in GROUPS.items():
        missing = [n for n in names if n not in models]
        if missing:
            raise KeyError(f"bundle has no model folder(s) {missing}; found {sorted(models)}")
        out[group] = sum(models[n][key] for n in names)
    out["total"] = sum(m[key] for m in models.values())
    return out


def runtime_bytes() -> int:
    """Bytes of the TF.js files a page loads besides the models (WASM path)."""
    from jsharness import NODE_MODULES, VENDOR_FILES

    return sum((NODE_MODULES / VENDOR_FILES[name]).stat().st_size for name in RUNTIME_FILES)


def first_results(quantize: str, runs: int, log) -> list[dict]:
    from bench_speed import PAGE_MODULE, browser_jobs, harness_routes, photos, raw_jobs
    from jsharness import chromium_page, page_html, playwright_session, static_server

    with tempfile.TemporaryDirectory() as tmp:
        jobs = raw_jobs({"astronaut": photos()["astronaut"]}, Path(tmp))
        job = {"bundle": f"/bench/results/bundle-{quantize}", "backend": "wasm", "images": browser_jobs(jobs)}
        out = []
        pages = {"/bench.html": page_html(PAGE_MODULE, "facepack bench")}
        with static_server(harness_routes(Path(tmp)), pages) as base, \
                playwright_session() as pw:
            for i in range(runs):
                log(f"  first result {common.PRECISIONS[quantize]} load {i + 1}/{runs}")
                with chromium_page(f"{base}/bench.html?first={quote(json.dumps(job))}", timeout_ms=300_000,
                                   playwright=pw) as page:
                    page.wait_for_function("() => window.firstResultValue !== undefined", timeout=300_000)
                    value = page.evaluate("() => window.firstResultValue")
                if "error" in value:
                    raise RuntimeError(f"the page failed: {value['error']}; page errors: {page.errors}")
                out.append(value)
        return out


def _serve(app):
    """The Flask app on a free port in a thread (as tests/test_page.py serves it)."""
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def page_first_results(quantize: str, runs: int, log) -> list[dict]:
    """Fresh loads of the real page (server.py) on the bundle: ready and first-result ms."""
    import server
    from jsharness import CHROMIUM, CHROMIUM_ARGS, playwright_session

    if not (VENDOR_DIR / "tf.fesm.js").is_file():
        raise FileNotFoundError(f"{VENDOR_DIR} has no TF.js copy; run python scripts/vendor_tfjs.py")
    args = server.parse_args(["--models", str(common.bundle_dir(quantize)), "--vendor", str(VENDOR_DIR)])
    httpd = _serve(server.create_app(server.config_from_args(args)))
    out = []
    try:
        with playwright_session() as pw:
            for i in range(runs):
                log(f"  page (server.py) {common.PRECISIONS[quantize]} load {i + 1}/{runs}")
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    page.set_default_timeout(300_000)
                    page.goto(f"http://127.0.0.1:{httpd.server_port}/?backend=wasm")
                    ready = page.evaluate(PAGE_READY_JS)
                    if ready["state"] != "ready":
                        raise RuntimeError(f"the page did not get ready: {page.text_content('#message')}")
                    page.set_input_files("#file-input", str(common.PHOTOS["astronaut"]))
                    result = page.evaluate(PAGE_RESULT_JS)
                finally:
                    browser.close()
                if "error" in result:
                    raise RuntimeError(f"the page failed on astronaut.png: {result['error']}")
                out.append({"ready_ms": ready["ms"], "first_result_ms": result["ms"], "faces": result["faces"],
                            "backend": result["backend"]})
    finally:
        httpd.shutdown()
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    info = common.machine_info(chromium=not args.no_browser)
    rows, data = [], {}
    for q in args.precisions:
        models = model_bytes(common.ensure_bundle(q, log))
        raw, gz = group_bytes(models, "raw"), group_bytes(models, "gzip")
        loads = [] if args.no_browser else first_results(q, args.runs, log)
        page_loads = [] if args.no_browser else page_first_results(q, args.runs, log)
        data[common.PRECISIONS[q]] = {"models": models, "groups_raw": raw, "groups_gzip": gz,
                                      "harness_loads": loads, "page_loads": page_loads}
        kb = lambda n: n / 1024  # noqa: E731
        rows.append([common.PRECISIONS[q], kb(raw["mtcnn"]), kb(raw["beauty"]), kb(raw["keypoints"]), kb(raw["total"]),
                     kb(gz["total"]), common.median(v["ready_ms"] for v in page_loads),
                     common.median(v["first_result_ms"] for v in page_loads),
                     common.median(v["models_ready_ms"] for v in loads),
                     common.median(v["first_result_ms"] for v in loads)])
    headers = ["precision", "MTCNN KiB", "beauty KiB", "keypoints KiB", "total KiB", "total gzip KiB",
               "page: ready ms", "page: first result ms", "harness: ready ms", "harness: first result ms"]
    rt = runtime_bytes()
    print(common.machine_line(info))
    print(f"Bundles of models/shipped (beauty MobileNetV2-0.75@128 + Grad-CAM head, keypoints kpnet@96, MTCNN "
          f"float32). The page also loads TF.js + the threaded-SIMD WASM binary: {rt / 1024:.0f} KiB. "
          f"Chromium, WASM backend, astronaut.png, median of {args.runs} fresh load(s) each, ms since "
          f"navigation start; page = server.py's page, harness = the library alone (see --help).")
    print(common.format_table(headers, rows))
    out = {"machine": info, "args": vars(args), "runtime_bytes": rt, "precisions": data}
    print(f"JSON: {common.write_json('size', out).relative_to(common.ROOT)}")
    return out


if __name__ == "__main__":
    main()
