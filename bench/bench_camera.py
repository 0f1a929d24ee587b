"""Camera frames per second on the page (issue 15): a 640 x 480 fake camera stream of a face.

Serves the page (server.create_app) with a bundle (default static/models: the shipped models),
starts headless Chromium with the fake camera playing a Y4M video of the astronaut's face drifting
sideways (tests/test_page.py:face_stream), clicks "Start camera" on the WASM backend and, after a
warm-up, counts the frames the page analysed for `--seconds`. Prints frames/s (frames / wall time)
and, per kind of frame ('full' detection, 'track'), the median worker timings per stage (ms) from
window.facepackCameraLog (the page's per-frame record; absent before it existed, then only the
frames per second and the stage timings of the frames seen by polling).

    python bench/bench_camera.py --seconds 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FIXTURES, ROOT, format_table, machine_info, machine_line, write_json  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def serve(models: Path, vendor: Path, static: Path | None = None):
    import server
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *a, **k):
            pass

    config = server.config_from_args(server.parse_args(["--port", "0", "--models", str(models), "--vendor", str(vendor)]))
    if static is not None:  # the page of another commit: git archive REV static | tar -x -C DIR
        config["STATIC_DIR"] = static
    app = server.create_app(config)
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "static" / "models")
    ap.add_argument("--vendor", type=Path, default=ROOT / "static" / "vendor")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured time after the warm-up")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of camera before counting")
    ap.add_argument("--label", default="now")
    ap.add_argument("--screenshot", type=Path, default=None,
                    help="save a screenshot of the page at the end (with --accessories: sunglasses and hat on)")
    ap.add_argument("--accessories", action="store_true", help="turn on the sunglasses and hat toggles while measuring")
    ap.add_argument("--static", type=Path, default=None,
                    help="serve the page from this folder (e.g. an older commit's static/, unpacked with git archive)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from test_page import face_stream  # tests/ is on sys.path (common.py)

    info = machine_info(chromium=True)
    with tempfile.TemporaryDirectory() as tmp:
        video = face_stream(FIXTURES / "astronaut.png", Path(tmp) / "face.y4m")
        httpd = serve(args.models, args.vendor, args.static)
        url = f"http://127.0.0.1:{httpd.server_port}/?backend=wasm"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + [f"--use-file-for-fake-video-capture={video}"])
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.goto(url)
            deadline = time.monotonic() + 300
            while pg.evaluate("document.body.dataset.state") != "ready":
                if time.monotonic() > deadline:
                    raise SystemExit(f"page not ready: {pg.inner_text('#message')}")
                time.sleep(0.2)
            if args.accessories:
                pg.check("#sunglasses-toggle")
                pg.check("#hat-toggle")
            pg.click("#camera-button")
            frames = lambda: int(pg.evaluate("Number(document.getElementById('fps').dataset.frames || 0)"))  # noqa: E731
            while frames() < 2:
                time.sleep(0.05)
            time.sleep(args.warmup)
            f0, t0 = frames(), time.monotonic()
            polled = []
            log0 = pg.evaluate("(window.facepackCameraLog || []).length")
            long0 = pg.evaluate("(window.facepackLongTasks || []).length")
            while time.monotonic() - t0 < args.seconds:
                polled.append(pg.evaluate("window.facepackLastResult && {t: window.facepackLastResult.timings,"
                                          " k: window.facepackLastResult.tracking, n: window.facepackLastResult.faces.length}"))
                time.sleep(0.03)
            f1, t1 = frames(), time.monotonic()
            log = pg.evaluate(f"(window.facepackCameraLog || []).slice({log0})")
            shown = pg.inner_text("#fps")
            long_tasks = pg.evaluate(f"(window.facepackLongTasks || []).slice({long0}).map((t) => t.duration)")
            if args.screenshot:
                pg.screenshot(path=str(args.screenshot))
            browser.close()
        httpd.shutdown()
    fps = (f1 - f0) / (t1 - t0)
    rows = []
    if log:
        by_kind = {}
        for entry in log:
            by_kind.setdefault(entry["kind"], []).append(entry)
        stages = sorted({k for e in log for k in e["timings"]})
        for kind, entries in sorted(by_kind.items()):
            rows.append([kind, len(entries)] + [statistics.median(e["timings"].get(s, 0) for e in entries) for s in stages])
        headers = ["frame", "n"] + stages
    else:
        seen = [p for p in polled if p]
        stages = sorted({k for p in seen for k in p["t"]})
        for kind in sorted({p["k"] for p in seen}):
            entries = [p for p in seen if p["k"] == kind]
            rows.append([kind, len(entries)] + [statistics.median(e["t"].get(s, 0) for e in entries) for s in stages])
        headers = ["frame (polled)", "n"] + stages
    print(machine_line(info))
    print(f"{args.label}: {fps:.1f} frames/s ({f1 - f0} frames in {t1 - t0:.1f} s); page shows: {shown}; "
          f"main-thread tasks over 50 ms: {len(long_tasks)} (longest {max(long_tasks, default=0):.0f} ms)")
    print(format_table(headers, rows))
    write_json(f"camera-{args.label}", {"machine": info, "fps": fps, "frames": f1 - f0, "seconds": t1 - t0,
                                         "shown": shown, "headers": headers, "rows": rows, "log": log,
                                         "long_tasks_ms": long_tasks})
    return 0


if __name__ == "__main__":
    sys.exit(main())
