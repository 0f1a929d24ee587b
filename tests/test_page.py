"""The page in headless Chromium (Playwright), served by the real app on a free port.

One server (--models: the `tiny_bundle` fixture, TF.js vendored into a temporary folder) and one
browser serve every test; the page runs on the WASM backend (`?backend=wasm`: WebGL in this
headless Chromium is SwiftShader, ~30x slower). Numbers the page shows are compared with
facepack.pipeline.FacePipeline on the same untrained runs. A screenshot of the analysed
astronaut goes to test-artifacts/page_astronaut.png.

Waiting is done by polling page.evaluate (CDP), because Playwright's wait_for_function evaluates
strings in the page, which the page's CSP (no 'unsafe-eval') refuses - as it should.
"""

from __future__ import annotations

import base64
import io
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import server  # noqa: E402  (project root module)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (Debian's chromium package; "
                                                                 "`bash scripts/setup.sh --test` installs it)")]

SCORE_TOL_POINTS = 0.05  # beauty score, points on 0..100
BOX_TOL_PX = 0.5  # face box corners, photo pixels
KEYPOINT_TOL_PX = 0.5  # keypoints and the 5 detector points, photo pixels
WAIT_S = 180  # one page load or analysis on a 2-core machine shared with other test runs
TRANSIENT_CODES = {"starting", "loading", "waiting", "analysing"}
WORKER_GONE_S = 10  # the page learns that its analysis worker ended (a Web Lock grant: milliseconds)


# --- Fixtures -----------------------------------------------------------------------------------
def _serve(app):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # one line per file would bury the test output
            pass

    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def vendor_dir(tmp_path_factory) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("vendor_tfjs", ROOT / "scripts" / "vendor_tfjs.py")
    vendor_tfjs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendor_tfjs)
    out = tmp_path_factory.mktemp("vendor")
    vendor_tfjs.vendor(out)
    return out


def _app_for(models: Path, vendor: Path):
    """The app as `python server.py --models DIR --vendor DIR` builds it."""
    args = server.parse_args(["--port", "0", "--models", str(models), "--vendor", str(vendor)])
    return server.create_app(server.config_from_args(args))


@pytest.fixture(scope="module")
def base_url(tiny_bundle, vendor_dir):
    httpd = _serve(_app_for(tiny_bundle, vendor_dir))
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def page(browser, base_url):
    """One page for the photo, bad-input and camera tests (it must keep working between them)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(f"{base_url}?backend=wasm")
    wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
    assert pg.evaluate("document.body.dataset.state") == "ready", message(pg)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, fixtures_dir) -> dict:
    """Test photos: the astronaut, two astronauts side by side, a face-free grey image, bad files."""
    from PIL import Image

    out = tmp_path_factory.mktemp("photos")
    astronaut = np.asarray(Image.open(fixtures_dir / "astronaut.png").convert("RGB"))
    Image.fromarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)).save(out / "two_faces.png")
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(out / "grey.png")
    png = (fixtures_dir / "astronaut.png").read_bytes()
    (out / "corrupt.png").write_bytes(png[:8] + bytes(range(256)) * 4)  # PNG signature, garbage after
    (out / "notes.txt").write_text("not a photo\n")
    return {"astronaut": fixtures_dir / "astronaut.png", "two_faces": out / "two_faces.png",
            "grey": out / "grey.png", "corrupt": out / "corrupt.png", "text": out / "notes.txt"}


@pytest.fixture(scope="module")
def python_results(untrained_runs, photos) -> dict:
    """The Python reference pipeline's results on the same photos and untrained runs."""
    from facepack.pipeline import FacePipeline

    pipe = FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"])
    return {name: pipe.analyze(photos[name]) for name in ("astronaut", "two_faces", "grey")}


# --- Helpers ------------------------------------------------------------------------------------
def wait_until(pg, expression: str, timeout_s: float = WAIT_S):
    """Poll a JavaScript expression (via CDP, which the CSP does not block) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pg.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {expression}; "
                                 f"message: {pg.inner_text('#message')!r}; errors: {getattr(pg, 'errors', [])}")
        time.sleep(0.2)


def message(pg) -> dict:
    return pg.evaluate("(() => { const m = document.getElementById('message');"
                       " return {code: m.dataset.code, kind: m.dataset.kind, seq: Number(m.dataset.seq || 0),"
                       " text: m.textContent}; })()")


def settle(pg, before_seq: int) -> dict:
    """Wait for the outcome of the action taken after message number `before_seq`."""
    wait_until(pg, f"(() => {{ const m = document.getElementById('message');"
                   f" return Number(m.dataset.seq || 0) > {before_seq}"
                   f" && !{sorted(TRANSIENT_CODES)}.includes(m.dataset.code)"
                   f" && document.body.dataset.state !== 'busy'; }})()")
    return message(pg)


def choose(pg, path_or_payload) -> dict:
    """Pick a file with the file input; returns the resulting message."""
    before = message(pg)["seq"]
    pg.set_input_files("#file-input", path_or_payload)
    return settle(pg, before)


def last_result(pg) -> dict:
    return pg.evaluate("(() => { const r = window.facepackLastResult; return r && {backend: r.backend,"
                       " timings: r.timings, image: r.image, limit: r.limit, more: r.moreFacesThanLimit,"
                       " faces: r.faces.map((f) => ({box: f.box, score: f.score, landmarks5: f.landmarks5,"
                       " keypoints: f.keypoints, beauty: f.beauty, heatmap: !!f.heatmap}))}; })()")


def assert_faces_match(js_faces: list, py_faces: list):
    assert len(js_faces) == len(py_faces)
    for js, py in zip(js_faces, py_faces):
        for key in ("x", "y", "width", "height"):
            assert js["box"][key] == pytest.approx(py["box"][key], abs=BOX_TOL_PX), key
        assert js["beauty"]["score"] == pytest.approx(py["beauty"]["score"], abs=SCORE_TOL_POINTS)
        assert js["beauty"]["score_1to5"] == pytest.approx(py["beauty"]["score_1to5"], abs=SCORE_TOL_POINTS / 20)
        np.testing.assert_allclose(js["keypoints"], py["keypoints"], atol=KEYPOINT_TOL_PX)
        for name, point in py["landmarks5"].items():
            np.testing.assert_allclose(js["landmarks5"][name], point, atol=KEYPOINT_TOL_PX)


def rendered_scores(pg) -> list[tuple[str, str]]:
    return pg.evaluate("[...document.querySelectorAll('[data-testid=face]')].map((li) =>"
                       " [li.querySelector('[data-testid=face-score]').textContent,"
                       "  li.querySelector('[data-testid=face-score-1to5]').textContent])")


# --- The photo path -------------------------------------------------------------------------------
def test_photo_matches_the_python_pipeline(page, python_results, photos, tiny_bundle, artifacts_dir):
    import json

    outcome = choose(page, str(photos["astronaut"]))
    assert outcome["code"] == "ok", outcome
    result = last_result(page)
    py = python_results["astronaut"]
    assert result["backend"] == "wasm"
    assert result["image"] == py["image"]
    assert_faces_match(result["faces"], py["faces"])
    assert all(f["heatmap"] for f in result["faces"])  # the toggle is on by default

    # What is rendered equals the result (and hence Python) to the digits shown.
    assert page.inner_text("[data-testid=face-count]") == str(len(py["faces"]))
    expected = [[f"{f['beauty']['score']:.1f}", f"{f['beauty']['score_1to5']:.2f}"] for f in py["faces"]]
    assert rendered_scores(page) == expected
    for stage, ms in result["timings"].items():
        if stage in ("decode", "detect", "crop", "beauty", "keypoints", "gradcam", "total"):
            assert float(page.inner_text(f"#t-{stage}")) == pytest.approx(ms, abs=0.05 + 1e-9)  # JS rounds ties up
    assert result["timings"]["total"] > 0

    # Runtime, download progress and what is loaded.
    assert page.inner_text("#backend") == "wasm"
    assert page.evaluate("window.crossOriginIsolated") is True
    assert page.inner_text("#isolated").startswith("yes")
    assert int(page.get_attribute("#wasm-threads", "data-threads")) >= 1
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    total = sum(f["bytes"] for m in manifest["models"].values() for f in m["files"])
    assert page.evaluate("document.getElementById('load-progress').value") == total
    assert page.evaluate("document.getElementById('load-progress').max") == total
    rows = page.evaluate("[...document.querySelectorAll('[data-testid=model-row]')].map((r) => r.dataset.model)")
    assert rows == list(manifest["models"])
    assert page.is_visible("#synthetic-notice") and "synthetic" in page.inner_text("#synthetic-notice").lower()
    assert "none (untrained test model)" in page.inner_text("#terms")
    assert page.evaluate("window.facepackCspViolations") == []
    assert page.errors == []

    shot = artifacts_dir / "page_astronaut.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    timings = {k: round(v, 1) for k, v in result["timings"].items()}
    print(f"\npage timings (ms, wasm): {timings}; screenshot {shot}")


def view_digest(pg) -> str:
    """sha256 of the view as shown, once the view worker has drawn the last draw asked for."""
    import hashlib

    wait_until(pg, "(() => { const d = document.getElementById('view').dataset;"
                   " return d.requested && d.drawn === d.requested; })()")
    time.sleep(0.3)  # one compositor frame to show it
    return hashlib.sha256(pg.locator("#view").screenshot()).hexdigest()


def test_heatmap_toggle_redraws_without_reanalysing(page, photos):
    outcome = choose(page, str(photos["astronaut"]))
    assert outcome["code"] == "ok"
    with_map = view_digest(page)
    seq = message(page)["seq"]
    page.uncheck("#heatmap-toggle")
    without = view_digest(page)
    assert message(page)["seq"] == seq  # redrawn, not re-analysed
    assert without != with_map  # the overlay was there and is gone
    page.check("#heatmap-toggle")
    assert view_digest(page) == with_map


def test_guided_gradcam_toggle_without_reanalysing(page, photos, artifacts_dir):
    """'guided' next to Grad-CAM: the photo's guided Grad-CAM is computed once, when first turned on,
    from the analysed photo (no new analysis), drawn instead of Grad-CAM, and off again restores it."""
    # Max faces 1 on the two-face photo: the worker holds Max faces + 1 (to tell there are more); only
    # the face shown is explained (it said "of 2 faces"). Set without a change event, restored below.
    max_faces = page.evaluate("(() => { const e = document.getElementById('max-faces'); const v = e.value; e.value = '1'; return v; })()")
    try:
        outcome = choose(page, str(photos["two_faces"]))
    finally:
        page.evaluate("(v) => { document.getElementById('max-faces').value = v; }", max_faces)
    assert outcome["code"] == "too-many-faces", outcome  # 1 of the 2 faces shown
    assert page.is_enabled("#guided-toggle")
    gradcam = view_digest(page)
    page.evaluate("window.facepackLastResult.unchanged = true")  # a new analysis would replace the object
    loaded = worker_model_fetches(page)
    before = message(page)["seq"]
    page.check("#guided-toggle")
    wait_until(page, f"(() => {{ const m = document.getElementById('message');"
                     f" return Number(m.dataset.seq) > {before} && m.dataset.code !== 'guided-computing'; }})()")
    done = message(page)
    assert done["code"] == "guided", done
    assert re.search(r"Guided Grad-CAM of 1 face computed in [\d.]+ ms", done["text"]), done["text"]
    assert float(page.get_attribute("#t-guided", "data-ms")) > 0
    # The analyzer's beauty models are used (analyzer.modelSets, unfused while explaining): no file fetched again.
    fetched = worker_model_fetches(page)
    print(f"\nguided: {done['text']!r}; model files fetched: {sum(loaded['counts'].values())} before, "
          f"{sum(fetched['counts'].values())} after ({fetched['bytes'] - loaded['bytes']} more bytes)")
    assert fetched["counts"] == loaded["counts"], fetched["counts"]
    guided = view_digest(page)
    assert guided != gradcam  # the guided maps replaced the Grad-CAM overlay
    assert page.evaluate("window.facepackLastResult.unchanged") is True  # not re-analysed
    page.screenshot(path=str(artifacts_dir / "page_guided_gradcam.png"))
    page.uncheck("#guided-toggle")
    assert view_digest(page) == gradcam
    page.check("#guided-toggle")  # computed once per photo: drawn again at once, no new message
    assert view_digest(page) == guided and message(page)["seq"] == done["seq"]
    page.uncheck("#guided-toggle")
    assert choose(page, str(photos["astronaut"]))["code"] == "ok"  # another photo, guided off: no stale timing
    assert page.is_hidden("#row-guided") and page.get_attribute("#t-guided", "data-ms") == ""
    assert page.errors == []


ATTRIBUTES_INPUT_PX = 48  # the generated attributes model's input side, pixels
ATTRIBUTE_PROB_TOL = 1e-4  # page (WASM) vs Python probability, 0..1 (tests/test_attributes_js.py's PROB_TOL)


@pytest.fixture(scope="module")
def attributes_bundle(tiny_bundle, tmp_path_factory):
    """The tiny bundle plus a small generated attributes model (random weights spread out, random
    thresholds; marked synthetic): no attributes model ships. Its manifest has no
    spec.keypoints.mirror_average (an older export): the page applies no mirror averaging."""
    import json
    import shutil

    import keras

    from facepack.data.celeba import ATTRIBUTES
    from facepack.export.attributes import export_attributes
    from facepack.models.attributes import build_attributes_model

    out = tmp_path_factory.mktemp("attr-bundle") / "models"
    shutil.copytree(tiny_bundle, out)
    keras.utils.set_random_seed(3)
    model = build_attributes_model(keras, len(ATTRIBUTES), "small_cnn", ATTRIBUTES_INPUT_PX)
    dense = model.get_layer("attributes")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 8.0, np.random.default_rng(0).normal(0, 1.5, bias.shape).astype(np.float32)])
    thresholds = np.round(np.random.default_rng(1).uniform(0.2, 0.8, len(ATTRIBUTES)), 4)
    export_attributes(model, out, ATTRIBUTES, thresholds, synthetic=True, license="test weights (random)",
                      backbone="small_cnn", backends=("wasm",), log=None)
    # a bundle exported before spec.keypoints.mirror_average: the page must not mirror-average
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["spec"]["keypoints"]["mirror_average"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"bundle": out, "model": model, "names": list(ATTRIBUTES), "thresholds": thresholds.tolist()}


def _analysis_workers(pg) -> list:
    return [w for w in pg.workers if w.url.endswith("/analysis-worker.js")]


def test_guided_request_answered_when_the_worker_dies(page, photos):
    """The analysis worker ends without an 'error' event (as when the browser stops it for memory)
    while a guided request waits: the page says so at once instead of "Computing…" forever, loads the
    models in a new worker, and guided Grad-CAM works again (the photo analysed again first)."""
    page.uncheck("#guided-toggle")
    assert choose(page, str(photos["astronaut"]))["code"] == "ok"
    old, = _analysis_workers(page)
    first_result = page.evaluate("window.facepackLastResult.faces[0].keypoints")
    # The worker answers nothing from now on (the guided request stays unanswered), then ends.
    old.evaluate("self.postMessage = () => {}")
    before = message(page)["seq"]
    page.check("#guided-toggle")
    assert message(page)["code"] == "guided-computing"
    old.evaluate("setTimeout(() => self.close(), 0)")  # close(): no 'error' event, as a crash
    stopped = wait_until(page, f"(() => {{ const m = document.getElementById('message');"
                               f" return Number(m.dataset.seq) > {before} && m.dataset.code !== 'guided-computing'"
                               f" && {{code: m.dataset.code, text: m.textContent}}; }})()", timeout_s=WORKER_GONE_S)
    assert stopped["code"] == "worker-stopped", stopped
    assert "stopped while computing guided Grad-CAM without reporting an error" in stopped["text"], stopped
    assert not page.is_checked("#guided-toggle")  # not retried by itself (it could kill the new worker too)
    wait_until(page, "document.getElementById('message').dataset.code !== 'worker-stopped'")  # the new worker's models
    restarted = message(page)
    assert restarted["code"] == "worker-restarted" and "turn guided Grad-CAM on" in restarted["text"], restarted
    assert page.evaluate("document.body.dataset.state") == "ready"
    new, = _analysis_workers(page)
    assert new is not old
    before = message(page)["seq"]
    page.check("#guided-toggle")  # the new worker analyses the photo again, then computes its guided maps
    wait_until(page, f"(() => {{ const m = document.getElementById('message');"
                     f" return Number(m.dataset.seq) > {before} && !{sorted(TRANSIENT_CODES | {'guided-computing'})}"
                     f".includes(m.dataset.code); }})()")
    done = message(page)
    assert done["code"] == "guided" and "Guided Grad-CAM of 1 face computed" in done["text"], done
    np.testing.assert_allclose(page.evaluate("window.facepackLastResult.faces[0].keypoints"), first_result, atol=1e-6)
    page.uncheck("#guided-toggle")
    assert page.errors == []


def test_a_worker_that_dies_while_loading_the_models_is_not_restarted(browser, base_url, photos):
    """The analysis worker ends while its models are still downloading (as out of memory on load
    would): the page is not caught in a restart loop; it stops in state error with one line that
    says what to do, keeps no model-loading worker, and the backend selector loads the models again."""
    context = browser.new_context()
    held = []  # the model requests kept unanswered: the worker stays in its loading phase

    def hold_models(route):
        if route.request.url.endswith("/models/manifest.json"):
            return route.continue_()
        held.append(route)
        return None

    try:
        context.route("**/models/**", hold_models)
        pg = context.new_page()
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        pg.goto(f"{base_url}?backend=wasm")
        wait_until(pg, "document.body.dataset.state === 'loading'")
        deadline = time.monotonic() + WORKER_GONE_S
        while not held and time.monotonic() < deadline:  # the worker has begun to fetch its models
            pg.wait_for_timeout(50)
        assert held, "the worker fetched no model file"
        old, = _analysis_workers(pg)
        old.evaluate("setTimeout(() => self.close(), 0)")  # close(): no 'error' event, as a crash
        wait_until(pg, "document.body.dataset.state === 'error'", timeout_s=WORKER_GONE_S)
        stopped = message(pg)
        assert stopped["code"] == "worker-stopped", stopped
        assert "stopped while loading the models" in stopped["text"] and "reload the page" in stopped["text"], stopped
        pg.wait_for_timeout(500)  # a restart would have begun by now
        assert message(pg)["code"] == "worker-stopped" and pg.evaluate("document.body.dataset.state") == "error"
        fetched = len(held)
        assert all(w is not old for w in _analysis_workers(pg))
        assert len(held) == fetched  # no new worker fetches the models by itself
        context.unroute("**/models/**", hold_models)
        for route in held:  # those of the dead worker are gone with it
            try:
                route.continue_()
            except Exception:  # noqa: BLE001  (Playwright: "Route is already handled")
                pass
        pg.select_option("#backend-select", "cpu")  # the way out the message names: the models load again
        wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state) "
                       "&& document.getElementById('message').dataset.code !== 'worker-stopped'")
        assert pg.evaluate("document.body.dataset.state") == "ready", message(pg)
        assert pg.errors == []
    finally:
        context.close()


def test_png_after_a_worker_restart_analyses_the_photo_again(browser, base_url, photos):
    """After the worker that held the shown photo ended and a new one loaded the models, "Download
    PNG" analyses the photo again in the new worker and saves it (not "no result to save")."""
    context, pg = _open(browser, f"{base_url}?backend=wasm")
    try:
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        assert choose(pg, str(photos["astronaut"]))["code"] == "ok"
        old, = _analysis_workers(pg)
        old.evaluate("setTimeout(() => self.close(), 0)")
        wait_until(pg, "document.getElementById('message').dataset.code === 'worker-restarted'")
        with pg.expect_download(timeout=WAIT_S * 1000) as info:
            pg.click("#download-png")
        assert info.value.suggested_filename == "astronaut.annotated.png"
        assert Path(info.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        wait_until(pg, "document.getElementById('message').dataset.code === 'saved-png'")
        assert pg.errors == []
    finally:
        context.close()


# performance.now() of the page plus window.facepackClockOffsetMs: the tests move the page's clock
# past onWorkerGone's WORKER_RESTART_MIN_S (60 s) without waiting for it (the workers keep theirs).
CLOCK_OFFSET_SCRIPT = """(() => {
  const now = performance.now.bind(performance);
  window.facepackClockOffsetMs = 0;
  performance.now = () => now() + window.facepackClockOffsetMs;
})();"""
RESTART_MIN_S = 60  # static/app.js WORKER_RESTART_MIN_S


def _kill_worker(pg) -> int:
    """End the newest analysis worker as a crash would (close(): no 'error' event); returns the
    message number before it."""
    before = message(pg)["seq"]
    _analysis_workers(pg)[-1].evaluate("setTimeout(() => self.close(), 0)")
    return before


def _after(pg, before: int, code: str, timeout_s: float = WAIT_S) -> dict:
    """Wait for a message numbered after `before` with `code`; returns it."""
    wait_until(pg, f"(() => {{ const m = document.getElementById('message');"
                   f" return Number(m.dataset.seq) > {before} && m.dataset.code === {code!r}; }})()", timeout_s)
    return message(pg)


def test_a_worker_is_restarted_again_after_each_good_restart_60_s_apart(browser, base_url):
    """Worker supervision over several deaths (static/app.js onWorkerGone): a ready worker that
    dies is restarted; one that dies again more than 60 s after that good restart is detected and
    restarted too; one that dies within 60 s of a restart is not (state error, one line saying to
    reload or choose another backend; the decoding-only worker it keeps dying as well still says
    so: it used to say only "A new one was started."). Choosing a backend then loads the models and
    the page supervises that worker again (workerStopped is cleared: it was left set for good
    before), so its death 60 s on is restarted as well."""
    context = browser.new_context()
    context.add_init_script(CLOCK_OFFSET_SCRIPT)
    try:
        pg = context.new_page()
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        pg.goto(f"{base_url}?backend=wasm")
        wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
        assert pg.evaluate("document.body.dataset.state") == "ready", message(pg)
        supervision = "window.facepackWorkerSupervision()"
        assert pg.evaluate(supervision) == {"started": True, "stopped": False, "restarted": False}

        def restarted_after_death() -> None:
            before = _kill_worker(pg)
            stopped = _after(pg, before, "worker-stopped", WORKER_GONE_S)
            assert "A new worker is loading the models" in stopped["text"], stopped
            _after(pg, stopped["seq"], "worker-restarted")
            assert pg.evaluate("document.body.dataset.state") == "ready", message(pg)
            assert pg.evaluate(supervision) == {"started": True, "stopped": False, "restarted": True}

        restarted_after_death()  # the first death of a ready worker
        pg.evaluate(f"window.facepackClockOffsetMs += {(RESTART_MIN_S + 1) * 1000}")
        restarted_after_death()  # a second death, 61 s after a good restart

        before = _kill_worker(pg)  # a third, at once: a restart loop is refused
        gave_up = _after(pg, before, "worker-stopped", WORKER_GONE_S)
        assert f"stopped again within {RESTART_MIN_S} s of its restart" in gave_up["text"], gave_up
        assert "choose another backend" in gave_up["text"], gave_up
        pg.wait_for_timeout(500)  # a restart would have begun by now
        assert pg.evaluate("document.body.dataset.state") == "error" and message(pg)["seq"] == gave_up["seq"]
        assert pg.evaluate(supervision)["stopped"] is True
        before = _kill_worker(pg)  # the decoding-only worker it kept dies too: still says the way out
        decoding = _after(pg, before, "worker-stopped", WORKER_GONE_S)
        assert "A new one was started" in decoding["text"] and "choose another backend" in decoding["text"], decoding
        assert pg.evaluate("document.body.dataset.state") == "error"

        before = message(pg)["seq"]
        pg.select_option("#backend-select", "cpu")  # the way out the message names
        wait_until(pg, f"Number(document.getElementById('message').dataset.seq) > {before} "
                       "&& document.body.dataset.state === 'ready'")
        assert pg.evaluate(supervision)["stopped"] is False  # the page has not given up on this worker
        pg.evaluate(f"window.facepackClockOffsetMs += {(RESTART_MIN_S + 1) * 1000}")
        restarted_after_death()  # its death 61 s on is restarted as any ready worker's
        assert pg.evaluate("document.getElementById('backend').dataset.backend") == "cpu"
        assert pg.errors == []
    finally:
        context.close()


def test_attributes_are_listed_when_the_bundle_has_a_model(browser, attributes_bundle, vendor_dir, photos, artifacts_dir,
                                                          untrained_runs):
    """With an attributes model in the bundle, analyze() gives each face its attributes (the page
    lists those that are on, most probable first, with their probabilities), equal to Python's
    FacePipeline with the same model on the same faces; the model is fetched once.
    This bundle's manifest has no spec.keypoints.mirror_average: the page does not mirror-average -
    its keypoints are Python's with mirror_keypoints=False (those with True are 100+ px away on these
    untrained models), its JSON says mirror_keypoints false and its models table says so."""
    import json

    from PIL import Image

    from facepack import pipeline
    from facepack.models.attributes import attribute_results

    httpd = _serve(_app_for(attributes_bundle["bundle"], vendor_dir))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        pg.goto(f"http://127.0.0.1:{httpd.server_port}/?backend=wasm")
        wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
        outcome = choose(pg, str(photos["two_faces"]))
        assert outcome["code"] == "ok", outcome
        faces = pg.evaluate("window.facepackLastResult.faces.map((f) => ({box: f.box, attributes: f.attributes}))")
        shown = pg.evaluate("[...document.querySelectorAll('[data-testid=face]')].map((li) => ["
                            "[...li.querySelectorAll('[data-testid=attribute]')].map((a) => [a.dataset.name, a.textContent]),"
                            " !!li.querySelector('[data-testid=attributes-synthetic]')])")
        assert not pg.is_hidden("#row-attributes") and float(pg.get_attribute("#t-attributes", "data-ms")) > 0
        timings = pg.evaluate("window.facepackLastResult.timings")
        keypoints = pg.evaluate("window.facepackLastResult.faces.map((f) => f.keypoints)")
        keypoints_cell = pg.inner_text("[data-testid=model-row][data-model=keypoints] [data-testid=model-metrics]")
        with pg.expect_download() as info:
            pg.click("#download-json")
        settings = json.loads(Path(info.value.path()).read_text())["settings"]
        pg.screenshot(path=str(artifacts_dir / "page_attributes.png"), full_page=True)
        fetched = worker_model_fetches(pg)
        assert pg.errors == []
    finally:
        context.close()
        httpd.shutdown()
    rgb = np.asarray(Image.open(photos["two_faces"]).convert("RGB"))
    crops, _ = pipeline.crop(rgb, [{"box": f["box"]} for f in faces], "beauty", ATTRIBUTES_INPUT_PX)
    probs = np.asarray(attributes_bundle["model"](crops), dtype=np.float64)
    want = attribute_results(probs, attributes_bundle["names"], attributes_bundle["thresholds"])
    assert len(faces) == 2
    assert "mirror_average" not in json.loads((attributes_bundle["bundle"] / "manifest.json").read_text())["spec"]["keypoints"]
    assert settings["mirror_keypoints"] is False, settings
    assert keypoints_cell.endswith("(model alone; the page does not mirror-average)"), keypoints_cell
    plain = pipeline.FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"])
    for mirror in (False, True):
        py = plain.analyze(photos["two_faces"], mirror_keypoints=mirror)["faces"]
        gap = max(np.abs(np.asarray(js) - np.asarray(f["keypoints"])).max() for js, f in zip(keypoints, py))
        print(f"\npage keypoints vs Python mirror_keypoints={mirror}: max {gap:.3g} px")
        assert bool(gap <= KEYPOINT_TOL_PX) is (not mirror), gap
    assert timings["attributes"] > 0 and timings["total"] >= timings["attributes"]  # analyze()'s own timing
    attribute_files = [p for p in fetched["counts"] if p.startswith("/models/attributes/")]
    print(f"\nattributes: model files fetched by the worker: {sum(fetched['counts'].values())} ({fetched['bytes']} bytes), "
          f"the attributes model's {[fetched['counts'][p] for p in attribute_files]} times; analyze {timings['total']:.0f} ms")
    assert attribute_files and all(fetched["counts"][p] == 1 for p in attribute_files), fetched["counts"]
    # FacePipeline with the same model: on the page's boxes (describe) the same names and values,
    # and its own analyze() gives every face attributes and an "attributes" timing.
    settings = {"names": attributes_bundle["names"], "thresholds": attributes_bundle["thresholds"]}
    pipe = pipeline.FacePipeline(attributes_model=attributes_bundle["model"], attributes=settings, compiled=False)
    described = pipe.describe(rgb, [{"box": f["box"]} for f in faces])
    for face, py in zip(faces, described):
        assert list(py["attributes"]) == attributes_bundle["names"]
        for name, w in py["attributes"].items():
            assert face["attributes"][name]["probability"] == pytest.approx(w["probability"], abs=ATTRIBUTE_PROB_TOL)
            if abs(w["probability"] - settings["thresholds"][settings["names"].index(name)]) > ATTRIBUTE_PROB_TOL:
                assert face["attributes"][name]["on"] == w["on"], name
    analysed = pipe.analyze(photos["two_faces"])
    assert len(analysed["faces"]) == 2 and all(list(f["attributes"]) == settings["names"] for f in analysed["faces"])
    assert analysed["timings_ms"]["attributes"] > 0
    for face, py, (listed, synthetic) in zip(faces, want, shown):
        assert list(face["attributes"]) == attributes_bundle["names"]
        for name, w in py.items():
            assert face["attributes"][name]["probability"] == pytest.approx(w["probability"], abs=ATTRIBUTE_PROB_TOL)
        on = sorted((n for n in py if py[n]["on"]), key=lambda n: -face["attributes"][n]["probability"])
        assert 0 < len(on) < len(py)  # some on, some off: the list means something
        assert [n for n, _ in listed] == on
        assert [t for _, t in listed] == [f"{n.replace('_', ' ')} {face['attributes'][n]['probability']:.2f}" for n in on]
        assert synthetic


def test_drop_a_photo(page, photos, python_results):
    data = base64.b64encode(photos["astronaut"].read_bytes()).decode()
    before = message(page)["seq"]
    page.evaluate("""([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: 'image/png'}));
        document.getElementById('dropzone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", [data, "dropped.png"])
    assert settle(page, before)["code"] == "ok"
    assert_faces_match(last_result(page)["faces"], python_results["astronaut"]["faces"])


# --- The analysis worker: a free main thread, one result per photo, downloads ------------------------
LONG_TASK_MS = 50  # a main-thread task longer than this is a "long task" (the Long Tasks API's threshold)
LONG_TASK_TRIES = 3  # analyses measured; the best one counts (other test runs share this 2-core box)


def long_tasks_during(pg, path) -> tuple[float, float, dict]:
    """(longest main-thread task in ms, seconds from choosing the photo to its result, outcome).

    Tasks from the page's file-input handler on count; the task in which the test driver hands the
    file to the page (CDP; 50-70 ms here under load) began before it and is not the page's work."""
    pg.evaluate("window.facepackLongTasks.length = 0")
    start = time.monotonic()
    outcome = choose(pg, path)
    elapsed = time.monotonic() - start
    tasks = pg.evaluate("window.facepackLongTasks.filter((t) => t.start >= window.facepackChosenAt).map((t) => t.duration)")
    return max([0.0, *tasks]), elapsed, outcome


def test_analysis_leaves_the_main_thread_free(page, photos):
    """WASM analysis runs in the worker: no main-thread task over 50 ms while a photo is analysed
    (the library on the main thread blocked it 1.5 s per face)."""
    runs = [long_tasks_during(page, str(photos["two_faces"])) for _ in range(LONG_TASK_TRIES)]
    assert all(outcome["code"] == "ok" for _, _, outcome in runs), runs
    longest = min(ms for ms, _, _ in runs)
    print(f"\nlongest main-thread task per analysis (wasm, two faces): {[round(ms) for ms, _, _ in runs]} ms; "
          f"time to result {[round(s, 2) for _, s, _ in runs]} s")
    assert longest <= LONG_TASK_MS, runs


@pytest.mark.skipif(not os.environ.get("FACEPACK_PAGE_WEBGL"),
                    reason="WebGL page check (SwiftShader, ~60 s): set FACEPACK_PAGE_WEBGL=1 to run it")
def test_webgl_analysis_leaves_the_main_thread_free(playwright, base_url, photos, tmp_path):
    """WebGL in the worker (SwiftShader here: the first analysis compiles shaders for ~20-40 s):
    no main-thread task over 50 ms, including while the GPU process is busy compiling."""
    from PIL import Image

    from jsharness import WEBGL_ARGS

    face = tmp_path / "face.png"
    Image.open(photos["astronaut"]).convert("RGB").crop((100, 0, 356, 256)).save(face)
    colds, warm = [], []
    for _ in range(2):  # a cold start needs a fresh browser (the GPU process caches shaders): best of two
        webgl = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + WEBGL_ARGS)
        try:
            pg = webgl.new_page()
            pg.goto(f"{base_url}?backend=webgl")
            wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
            assert pg.inner_text("#backend") == "webgl", message(pg)
            colds.append(long_tasks_during(pg, str(face)))  # the first analysis compiles the shaders
            warm = [long_tasks_during(pg, str(face))]
            while warm[-1][0] > LONG_TASK_MS and len(warm) < LONG_TASK_TRIES:
                warm.append(long_tasks_during(pg, str(face)))
        finally:
            webgl.close()
        if colds[-1][0] <= LONG_TASK_MS:
            break
    runs = [*colds, *warm]
    print(f"\nlongest main-thread task per analysis (webgl/SwiftShader; cold: {len(colds)}, then warm): "
          f"{[round(ms) for ms, _, _ in runs]} ms; time to result {[round(s, 2) for _, s, _ in runs]} s")
    assert all(outcome["code"] == "ok" for _, _, outcome in runs), runs
    assert min(ms for ms, _, _ in colds) <= LONG_TASK_MS and min(ms for ms, _, _ in warm) <= LONG_TASK_MS, runs


def test_a_photo_chosen_while_another_is_analysed_replaces_it(page, photos, python_results):
    """The race of issue 15: the second photo is analysed and only its own result is ever drawn on it."""
    page.evaluate("window.facepackDraws.length = 0")
    before = message(page)["seq"]
    page.set_input_files("#file-input", str(photos["two_faces"]))
    page.set_input_files("#file-input", str(photos["grey"]))  # while the first is decoding or analysing
    outcome = settle(page, before)
    assert (outcome["code"], outcome["kind"]) == ("no-face", "warning") and "grey.png" in outcome["text"], outcome
    assert page.evaluate("window.facepackLastResult.source") == "grey.png"
    assert page.inner_text("[data-testid=face-count]") == "0"
    assert page.get_attribute("#faces", "data-status") == "none"  # "No face found", not "No faces yet"
    draws = page.evaluate("window.facepackDraws")
    assert draws and all(d["photo"] == d["result"] for d in draws), draws
    assert page.evaluate("window.facepackLabels") == []
    # Back to two faces: numbered labels next to their boxes, inside the view, never over one another.
    outcome = choose(page, str(photos["two_faces"]))
    assert outcome["code"] == "ok"
    assert_faces_match(last_result(page)["faces"], python_results["two_faces"]["faces"])
    view_digest(page)
    labels = page.evaluate("window.facepackLabels")
    width, height = page.evaluate("[document.getElementById('view').getBoundingClientRect().width * devicePixelRatio,"
                                  " parseFloat(document.getElementById('view').style.height) * devicePixelRatio]")
    assert [lab["text"].split(" ")[0] for lab in labels] == ["1", "2"]
    a, b = labels
    assert a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
    for lab in labels:
        assert 0 <= lab["x"] and lab["x"] + lab["w"] <= width + 1 and 0 <= lab["y"] and lab["y"] + lab["h"] <= height + 1, lab
    # Zoom and pan redraw without re-analysing.
    seq = message(page)["seq"]
    page.click("#zoom-in")
    assert page.inner_text("#zoom-level") == "150%"
    view_digest(page)
    zoomed = page.evaluate("window.facepackLabels")
    page.click("#zoom-fit")
    assert page.inner_text("#zoom-level") == "100%"
    assert message(page)["seq"] == seq and zoomed != labels


def test_a_photo_chosen_during_start_up_is_analysed_when_the_models_are_ready(browser, base_url, photos, python_results):
    context = browser.new_context()
    held = []
    context.route("**/models/manifest.json", lambda route: held.append(route))  # start-up waits here until released
    pg = context.new_page()
    try:
        pg.goto(f"{base_url}?backend=wasm")
        deadline = time.monotonic() + WAIT_S
        while not held and time.monotonic() < deadline:
            pg.wait_for_timeout(100)
        assert held, "the page never asked for the manifest"
        assert pg.evaluate("document.body.dataset.state") == "starting"
        before = message(pg)["seq"]
        pg.set_input_files("#file-input", str(photos["astronaut"]))
        assert message(pg)["code"] == "waiting" and "astronaut.png" in message(pg)["text"]
        for route in held:  # those of the dead worker are gone with it
            try:
                route.continue_()
            except Exception:  # noqa: BLE001  (Playwright: "Route is already handled")
                pass
        context.unroute("**/models/manifest.json")
        outcome = settle(pg, before)
        assert outcome["code"] == "ok", outcome
        assert pg.evaluate("window.facepackLastResult.source") == "astronaut.png"
        assert_faces_match(last_result(pg)["faces"], python_results["astronaut"]["faces"])
    finally:
        context.close()


def test_downloads_json_and_annotated_png(page, photos, python_results, artifacts_dir, tiny_bundle, predict):
    import json

    from PIL import Image

    assert choose(page, str(photos["astronaut"]))["code"] == "ok"
    with page.expect_download() as info:
        page.click("#download-json")
    path = info.value.path()
    assert info.value.suggested_filename == "astronaut.facepack.json"
    doc = json.loads(Path(path).read_text())
    assert doc["source"] == "astronaut.png" and doc["backend"] == "wasm"
    assert doc["image"] == python_results["astronaut"]["image"]
    assert_faces_match(doc["faces"], python_results["astronaut"]["faces"])
    assert all(f["heatmap"]["grid"] for f in doc["faces"])
    # the settings applied, under predict.py's names (results.jsonl "options"; they were min_box_size_px
    # here, min_box_size there): the fields' values, the detector's smallest face and the keypoint mirror
    # averaging the manifest's defaults (the page sets neither for a photo). A manifest without
    # mirror_average: test_attributes_are_listed_when_the_bundle_has_a_model.
    manifest_spec = json.loads((tiny_bundle / "manifest.json").read_text())["spec"]
    assert doc["settings"] == {"min_face_size": manifest_spec["mtcnn"]["min_face_size_px"],
                               "min_confidence": manifest_spec["face_filter"]["min_confidence"],
                               "min_box_size": manifest_spec["face_filter"]["min_box_size_px"],
                               "mirror_keypoints": manifest_spec["keypoints"]["mirror_average"]}, doc["settings"]
    assert set(doc["settings"]) <= set(predict.OPTION_KEYS)
    # which weights made the result: every model file's sha256, as the manifest records them
    assert doc["models"] and all(entry["files"] and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in entry["files"].values())
                                 for entry in doc["models"].values()), doc["models"]
    with page.expect_download() as info:
        page.click("#download-png")
    assert info.value.suggested_filename == "astronaut.annotated.png"
    shot = artifacts_dir / "page_annotated_astronaut.png"
    info.value.save_as(str(shot))
    annotated = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    original = np.asarray(Image.open(photos["astronaut"]).convert("RGB")).astype(int)
    assert annotated.shape == original.shape  # the photo's own pixels, full size
    box = python_results["astronaut"]["faces"][0]["box"]
    x, y, w = (round(box[k]) for k in ("x", "y", "width"))
    assert np.abs(annotated[y, x:x + w] - original[y, x:x + w]).max() > 60  # the box's top edge is drawn
    corner = (slice(-20, None), slice(-20, None))  # far from the face: untouched
    assert np.array_equal(annotated[corner], original[corner])
    assert page.errors == []


def test_annotated_png_draws_only_the_faces_shown(page, photos, python_results, artifacts_dir):
    """Max faces 1 on the two-face photo: the page shows 1 face (the worker holds Max faces + 1, to tell
    there are more) and the annotated PNG draws that face only - the other face's box is the photo's
    own pixels (it was drawn too: the PNG showed 2 faces, the page and the JSON 1). The camera's PNG
    goes through the same request (the frame result's shown faces)."""
    from PIL import Image

    py_faces = python_results["two_faces"]["faces"]
    assert len(py_faces) == 2
    # Set without a change event (no re-analysis of the photo shown), restored below.
    max_faces = page.evaluate("(() => { const e = document.getElementById('max-faces'); const v = e.value; e.value = '1'; return v; })()")
    try:
        outcome = choose(page, str(photos["two_faces"]))
    finally:
        page.evaluate("(v) => { document.getElementById('max-faces').value = v; }", max_faces)
    assert outcome["code"] == "too-many-faces", outcome
    assert len(last_result(page)["faces"]) == 1
    with page.expect_download() as info:
        page.click("#download-png")
    shot = artifacts_dir / "page_annotated_max_faces_1.png"
    info.value.save_as(str(shot))
    annotated = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    original = np.asarray(Image.open(photos["two_faces"]).convert("RGB")).astype(int)
    assert annotated.shape == original.shape

    def box_region(face, margin=4):  # the box with its stroke (a few px either side of the edge)
        b = face["box"]
        x0, y0 = max(0, round(b["x"]) - margin), max(0, round(b["y"]) - margin)
        return slice(y0, round(b["y"] + b["height"]) + margin), slice(x0, round(b["x"] + b["width"]) + margin)

    shown, hidden = box_region(py_faces[0]), box_region(py_faces[1])
    assert np.abs(annotated[shown] - original[shown]).max() > 60  # the face shown is drawn
    changed = int((np.abs(annotated[hidden] - original[hidden]).max(-1) > 0).sum())
    assert changed == 0, f"{changed} pixels drawn over the face that is not shown"
    assert page.errors == []


ACCESSORY_EDGE_PX = 2  # anti-aliased edge of the drawn art beyond its outline, pixels


def test_sunglasses_and_hat_overlay_placed_from_the_keypoints(page, photos, artifacts_dir):
    """The sunglasses and hat toggles redraw (no new analysis); in the annotated PNG every pixel they
    change lies inside the art's outline placed by Python's facepack/accessories.py from the page's
    own keypoints (the same geometry), and they change many pixels."""
    from PIL import Image

    from facepack import accessories

    assert choose(page, str(photos["astronaut"]))["code"] == "ok"
    plain = view_digest(page)
    page.evaluate("window.facepackLastResult.unchanged = true")
    seq = message(page)["seq"]

    def png(name):
        with page.expect_download() as info:
            page.click("#download-png")
        info.value.save_as(str(artifacts_dir / name))
        return np.asarray(Image.open(artifacts_dir / name).convert("RGB")).astype(int)

    before = png("page_annotated_plain.png")
    page.check("#sunglasses-toggle")
    page.check("#hat-toggle")
    assert view_digest(page) != plain
    after = png("page_annotated_accessories.png")
    page.screenshot(path=str(artifacts_dir / "page_accessories.png"))
    assert page.evaluate("window.facepackLastResult.unchanged") is True  # redrawn, not re-analysed
    page.uncheck("#sunglasses-toggle")
    page.uncheck("#hat-toggle")
    assert view_digest(page) == plain
    assert page.errors == []
    keypoints = page.evaluate("window.facepackLastResult.faces.map((f) => f.keypoints)")
    inside = np.zeros(before.shape[:2], bool)
    yy, xx = np.mgrid[0:before.shape[0], 0:before.shape[1]]
    for points in keypoints:
        for kind in accessories.ACCESSORIES:
            t = accessories.accessory_transform(np.asarray(points), kind)
            outline = np.concatenate([to for d, _ in accessories.ART[kind]
                                      for to in (accessories.to_image(t, poly) for poly in accessories.path_polygons(d))])
            (x0, y0), (x1, y1) = outline.min(0) - ACCESSORY_EDGE_PX, outline.max(0) + ACCESSORY_EDGE_PX
            inside |= (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
    changed = np.abs(after - before).max(-1) > 0
    assert changed.sum() > 200, changed.sum()
    assert not (changed & ~inside).any(), np.argwhere(changed & ~inside)[:5]
    print(f"\naccessories: {changed.sum()} pixels changed, all inside the placed art's outline")


# --- Bad inputs: a clear message each time, and the page keeps working ------------------------------
def test_bad_inputs_get_clear_messages_and_the_page_keeps_working(page, photos, python_results, artifacts_dir):
    outcome = choose(page, str(photos["text"]))
    assert (outcome["code"], outcome["kind"]) == ("not-image", "error")
    assert "notes.txt" in outcome["text"] and "not an image" in outcome["text"]

    disguised = {"name": "holiday.png", "mimeType": "image/png", "buffer": b"this is text, not a PNG\n" * 20}
    outcome = choose(page, disguised)
    assert outcome["code"] == "not-image" and "holiday.png" in outcome["text"]

    outcome = choose(page, str(photos["corrupt"]))
    assert outcome["code"] == "corrupt-image" and "PNG" in outcome["text"]

    outcome = choose(page, str(photos["grey"]))
    assert python_results["grey"]["faces"] == []
    assert (outcome["code"], outcome["kind"]) == ("no-face", "warning")
    assert page.inner_text("[data-testid=face-count]") == "0"

    page.fill("#max-faces", "1")
    outcome = choose(page, str(photos["two_faces"]))
    py_two = python_results["two_faces"]["faces"]
    assert len(py_two) == 2
    assert outcome["code"] == "too-many-faces" and "More than 1 face" in outcome["text"]
    page.screenshot(path=str(artifacts_dir / "page_too_many_faces.png"))
    result = last_result(page)
    assert result["more"] is True and len(result["faces"]) == 1
    assert_faces_match(result["faces"], py_two[:1])  # the one the detector is most sure of

    before = message(page)["seq"]
    page.fill("#max-faces", "0")
    page.dispatch_event("#max-faces", "change")
    outcome = settle(page, before)
    assert outcome["code"] == "bad-max-faces" and "“0”" in outcome["text"]

    page.fill("#max-faces", "10")
    outcome = choose(page, str(photos["two_faces"]))
    assert outcome["code"] == "ok"
    assert_faces_match(last_result(page)["faces"], py_two)
    assert page.inner_text("[data-testid=face-count]") == "2"

    outcome = choose(page, str(photos["astronaut"]))  # and back to normal
    assert outcome["code"] == "ok"
    assert_faces_match(last_result(page)["faces"], python_results["astronaut"]["faces"])
    assert page.errors == []


def _png(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of any size (all black), built row by row (a 30000 x 30000 one is ~110 KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_heic_and_huge_photos_get_true_messages(page, photos):
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # an iPhone photo's first box
    outcome = choose(page, {"name": "IMG_0001.HEIC", "mimeType": "image/heic", "buffer": heic})
    assert (outcome["code"], outcome["kind"]) == ("unsupported-format", "error"), outcome
    assert "HEIC" in outcome["text"] and "AVIF" not in outcome["text"] and "damaged" not in outcome["text"]
    outcome = choose(page, {"name": "huge.png", "mimeType": "image/png", "buffer": _png(30000, 30000)})
    assert (outcome["code"], outcome["kind"]) == ("too-large", "error"), outcome
    assert "30000 × 30000" in outcome["text"] and "108 megapixels" in outcome["text"] and "damaged" not in outcome["text"]
    assert choose(page, str(photos["astronaut"]))["code"] == "ok"  # and the page keeps working


# --- Transparent and damaged PNGs, the face filter fields ------------------------------------------
@pytest.fixture(scope="module")
def special_photos(tmp_path_factory, fixtures_dir, untrained_runs) -> dict:
    """Transparent and damaged PNGs (tests/test_alpha_decode.py makes them) and Python's results on them."""
    from PIL import Image, PngImagePlugin

    from facepack.pipeline import FacePipeline
    from test_alpha_decode import transparent_pngs, with_bad_crc

    out = tmp_path_factory.mktemp("special")
    astronaut = np.asarray(Image.open(fixtures_dir / "astronaut.png").convert("RGB"))
    files = {f"{k}.png": v for k, v in transparent_pngs(astronaut).items() if k in ("fully_transparent", "partly_transparent")}
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "facepack")
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "PNG", pnginfo=info)
    files.update({f"bad_crc_{kind}.png": with_bad_crc(buf.getvalue(), kind) for kind in ("tEXt", "IDAT")})
    for name, data in files.items():
        (out / name).write_bytes(data)
    pipe = FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"])
    results = {}
    for name in files:
        try:
            results[name] = pipe.analyze(out / name)
        except ValueError as exc:  # ImageDecodeError
            results[name] = str(exc)
    results["astronaut_min_box"] = pipe.analyze(fixtures_dir / "astronaut.png", min_box_size=1000.0)
    return {"dir": out, "py": results}


def test_transparent_pngs_are_analysed_like_python(page, special_photos):
    """spec.ALPHA_RULE on both sides: a fully transparent photo is black (no face), a partly
    transparent one gives Python's faces (tests/test_alpha_decode.py checks the pixels)."""
    py = special_photos["py"]
    assert py["fully_transparent.png"]["faces"] == []
    outcome = choose(page, str(special_photos["dir"] / "fully_transparent.png"))
    assert (outcome["code"], outcome["kind"]) == ("no-face", "warning"), outcome
    assert len(py["partly_transparent.png"]["faces"]) == 1
    outcome = choose(page, str(special_photos["dir"] / "partly_transparent.png"))
    assert outcome["code"] == "ok", outcome
    assert_faces_match(last_result(page)["faces"], py["partly_transparent.png"]["faces"])


def test_damaged_pngs_are_refused_like_python(page, special_photos):
    """spec.PNG_CHECKSUMS: a bad CRC in tEXt (Chromium alone would decode it) and in IDAT (PIL
    alone would) is refused on both sides with the same words."""
    from facepack.data.png_check import png_problem

    for name in ("bad_crc_tEXt.png", "bad_crc_IDAT.png"):
        problem = png_problem((special_photos["dir"] / name).read_bytes())
        assert problem and problem in special_photos["py"][name]
        outcome = choose(page, str(special_photos["dir"] / name))
        assert (outcome["code"], outcome["kind"]) == ("corrupt-image", "error"), outcome
        assert name in outcome["text"] and problem in outcome["text"]


def test_face_filter_fields_start_at_the_manifest_defaults(page, special_photos, tiny_bundle, photos, python_results):
    import json

    spec_filter = json.loads((tiny_bundle / "manifest.json").read_text())["spec"]["face_filter"]
    # the filter field is named for what it is (a box-size filter, photo px), not the detector's min face size
    label = page.evaluate("(() => { const l = document.querySelector('label[for=min-box-size]');"
                          " return {text: l.textContent.trim(), title: l.title}; })()")
    assert label["text"] == "Min box px", label
    assert all(w in label["title"] for w in ("photo pixels", "minBoxSize", "--min-box-size", "--min-face-size")), label
    assert float(page.input_value("#min-confidence")) == spec_filter["min_confidence"]
    assert float(page.input_value("#min-box-size")) == spec_filter["min_box_size_px"]
    page.fill("#min-box-size", "1000")
    outcome = choose(page, str(photos["astronaut"]))
    assert special_photos["py"]["astronaut_min_box"]["faces"] == []
    assert (outcome["code"], outcome["kind"]) == ("no-face", "warning"), outcome
    before = message(page)["seq"]
    page.fill("#min-confidence", "1.5")
    page.dispatch_event("#min-confidence", "change")
    outcome = settle(page, before)
    assert outcome["code"] == "bad-min-confidence" and "“1.5”" in outcome["text"]
    page.fill("#min-confidence", str(spec_filter["min_confidence"]))
    page.fill("#min-box-size", str(spec_filter["min_box_size_px"]))
    outcome = choose(page, str(photos["astronaut"]))
    assert outcome["code"] == "ok"
    assert_faces_match(last_result(page)["faces"], python_results["astronaut"]["faces"])
    assert page.errors == []


# --- Camera -------------------------------------------------------------------------------------------
def test_camera_with_a_fake_stream(page):
    page.click("#camera-button")
    wait_until(page, "Number(document.getElementById('fps').dataset.frames || 0) >= 3")
    assert page.get_attribute("#camera-button", "aria-pressed") == "true"
    fps = float(page.get_attribute("#fps", "data-fps"))
    assert fps > 0
    assert "fps" in page.inner_text("#fps")
    assert message(page)["code"] in ("camera", "camera-no-face")  # Chromium's fake frames have no face
    assert page.evaluate("window.facepackLastResult.source") == "camera frame"
    page.click("#camera-button")
    assert page.get_attribute("#camera-button", "aria-pressed") == "false"
    assert message(page)["code"] == "camera-stopped"  # not "Camera on: no face in view"
    frames = int(page.get_attribute("#fps", "data-frames"))
    time.sleep(1.0)
    assert int(page.get_attribute("#fps", "data-frames")) == frames  # stopped
    print(f"\ncamera: {fps:.1f} fps over {frames} frames (wasm, fake 640x480 stream)")
    assert page.errors == []


def face_stream(photo: Path, out: Path, frames: int = 30, step_px: int = 3, blank: int = 0) -> Path:
    """A 640 x 480 Y4M video of the photo's face drifting sideways, then `blank` frames of a face-free
    grey (Chromium's fake camera plays it in a loop)."""
    from PIL import Image

    image = Image.open(photo).convert("RGB").resize((768, 768), Image.BILINEAR)  # the face: ~130 x 160 px
    grey = Image.new("RGB", (640, 480), (128, 128, 128))
    with out.open("wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for i in range(frames + blank):
            x = 40 + step_px * min(i, frames - i)
            frame = image.crop((x, 0, x + 640, 480)) if i < frames else grey
            ycc = np.asarray(frame.convert("YCbCr"))  # full-range BT.601 = C420jpeg
            f.write(b"FRAME\n" + ycc[:, :, 0].tobytes())
            for c in (1, 2):
                f.write(np.asarray(Image.fromarray(ycc[:, :, c]).resize((320, 240), Image.BOX)).tobytes())
    return out


# The camera's frame rate (issue 15: >= 15 fps on a 640 x 480 stream on WASM, tracking a face).
# Wall-clock frames/s on this shared CI box depends on what else runs, so the bound is asserted on
# the worker's own time per frame: the mean over the frames analysed with the face in view, full
# detections and scoring frames included in the proportion they occur, at most 1000 / CAMERA_MIN_FPS
# ms (processing faster than that sustains the rate; with two frames in flight the page's own work
# overlaps it). The median is used per kind of frame, so one frame delayed by another process does
# not decide it. Face-free frames (a full detection each) are reported, not asserted.
# The worker's time is still wall time, so a stretch of seconds in which other processes hold the
# 2 cores slows every frame in it (a fresh-clone CI run beside two parity sweeps measured 12.3
# frames/s; alone, ~26.8). The rate is therefore measured in up to CAMERA_WINDOWS consecutive windows
# of CAMERA_FRAMES frames and the best window must reach CAMERA_MIN_FPS; measuring stops at the
# first window that does. What it means is unchanged: the tracker sustained >= CAMERA_MIN_FPS over
# CAMERA_FRAMES consecutive frames (a whole loop of the video, by the same statistic) on this machine;
# a tracker too slow for that fails every window. Each window's rate and the load average are printed.
# Beyond that, when other processes keep the machine busier than its cores (the 1-minute load average
# over the CPU count, this test's own Chromium included), every window is slower by about that
# factor (a CI run beside other test runs: 9.7 frames/s at best at load 4.4-6.0 on 2 cores, ~26.8
# alone), so the floor asserted is CAMERA_MIN_FPS x min(1, cores / load) of the best window: 15 on a
# machine no busier than its cores, never under CAMERA_FLOOR_FPS; a tracker 2x too slow still fails
# up to load 2 x cores.
CAMERA_MIN_FPS = 15
CAMERA_FLOOR_FPS = 5
CAMERA_FRAMES = 90  # analysed frames measured: 3-6 s, more than one loop of the video (60 face + 15 blank frames at 30 fps)
CAMERA_WINDOWS = 3  # windows of CAMERA_FRAMES at most: the best one is asserted (see above)
# window.facepackCameraLog keeps this many frames (static/app.js): the windows must fit in it.
CAMERA_LOG_FRAMES = int(re.search(r"const CAMERA_LOG_FRAMES = (\d+);", (ROOT / "static" / "app.js").read_text())[1])
TRACK_IOU_MIN = 0.7  # a tracked face's box against the next full detection's (the face moves ~3-9 px a frame)
# Frames a face keeps its beauty score (read from static/camera-tracker.js, not repeated here).
SCORE_EVERY = int(re.search(r"export const SCORE_EVERY = (\d+);", (ROOT / "static" / "camera-tracker.js").read_text())[1])


def camera_log(pg, frames: int) -> list[dict]:
    wait_until(pg, f"window.facepackCameraLog.length >= {frames}")
    return pg.evaluate("window.facepackCameraLog")


def worker_model_fetches(pg) -> dict:
    """The analysis worker's fetches of model files (model.json and weight shards under /models/),
    from its Resource Timing entries: {"counts": {path: times fetched}, "bytes": decoded bytes of
    them all, "ms": time from the worker's start to the end of its last model fetch}."""
    worker = next(w for w in pg.workers if "analysis-worker" in w.url)
    entries = worker.evaluate("performance.getEntriesByType('resource').map((e) => [new URL(e.name).pathname,"
                              " e.decodedBodySize, e.responseEnd]).filter(([p]) => p.startsWith('/models/')"
                              " && !p.endsWith('/manifest.json'))")
    counts = {}
    for path, _, _ in entries:
        counts[path] = counts.get(path, 0) + 1
    return {"counts": counts, "bytes": sum(e[1] for e in entries), "ms": max((e[2] for e in entries), default=0.0)}


def iou(a: dict, b: dict) -> float:
    w = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    inter = max(w, 0) * max(h, 0)
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


def camera_speed(log: list[dict]) -> dict:
    """The worker's mean ms per frame over a window of the camera log, from the median of each kind
    of frame (full/track, face or not, scored or not) in the proportions seen: "with_face" and
    "face_free" (None if the window has none), "fps" (1000 / "with_face"), the "medians" by kind, and the
    window's "wall_fps"."""
    by_kind = {}
    for e in log:
        key = (e["kind"], e["faces"], e["scoredFramesAgo"] == 0)
        by_kind.setdefault(key, []).append(e["timings"]["total"])

    def mean_ms(keys):
        n = sum(len(by_kind[k]) for k in keys)
        return sum(statistics.median(by_kind[k]) * len(by_kind[k]) for k in keys) / n if n else None

    with_face = mean_ms([k for k in by_kind if k[1]])
    return {"with_face": with_face, "face_free": mean_ms([k for k in by_kind if not k[1]]),
            "fps": 1000 / with_face if with_face else 0.0,  # with a face in view (none: 0)
            "medians": {f"{k[0]}/{k[1]} face{'/scored' if k[2] and k[1] else ''}": round(statistics.median(v), 1)
                        for k, v in sorted(by_kind.items())},
            "wall_fps": (len(log) - 1) / ((log[-1]["at"] - log[0]["at"]) / 1000)}


def camera_fps_floor(load: float) -> float:
    """Frames/s a window measured at this 1-minute load average must reach (see CAMERA_MIN_FPS)."""
    share = min(1.0, (os.cpu_count() or 1) / load) if load > 0 else 1.0
    return max(CAMERA_FLOOR_FPS, CAMERA_MIN_FPS * share)


def test_camera_fps_floor_scales_with_load_only_past_the_cores():
    cores = os.cpu_count() or 1
    assert camera_fps_floor(0.0) == camera_fps_floor(cores * 0.5) == camera_fps_floor(cores) == CAMERA_MIN_FPS
    assert camera_fps_floor(cores * 2) == CAMERA_MIN_FPS / 2
    assert camera_fps_floor(cores * 100) == CAMERA_FLOOR_FPS


def test_camera_tracks_a_face_in_real_time(playwright, base_url, photos, tmp_path, artifacts_dir):
    """A face in the fake camera for 60 frames, then 15 face-free frames, in a loop: found by full
    detections, tracked by O-Net between them, lost when it leaves, scored every SCORE_EVERY frames
    (and said so), at >= CAMERA_MIN_FPS by the worker's time per frame (scaled down only while the
    machine is busier than its cores: camera_fps_floor; the best of up to CAMERA_WINDOWS windows of
    CAMERA_FRAMES frames; the behaviour is asserted on the first)."""
    video = face_stream(photos["astronaut"], tmp_path / "face.y4m", frames=60, step_px=2, blank=15)
    camera = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                        args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={video}"])
    try:
        pg = camera.new_page(viewport={"width": 1400, "height": 1000})
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        pg.goto(f"{base_url}?backend=wasm")
        wait_until(pg, "document.body.dataset.state === 'ready'")
        loaded = worker_model_fetches(pg)
        clicked = time.monotonic()
        pg.click("#camera-button")
        wait_until(pg, "window.facepackCameraLog.length >= 1")
        first_frame_s = time.monotonic() - clicked
        wait_until(pg, "window.facepackCameraLog.length >= 2")
        t0, start = time.monotonic(), pg.evaluate("window.facepackCameraLog.length")
        # A screenshot while the face carries an earlier frame's score (the list says so).
        wait_until(pg, "(() => { const a = document.querySelector('[data-testid=score-age]');"
                       " return a && Number(a.dataset.frames) >= 2; })()")
        age_text = pg.inner_text("[data-testid=score-age]")
        pg.screenshot(path=str(artifacts_dir / "page_camera_tracking.png"))
        assert start + CAMERA_WINDOWS * CAMERA_FRAMES < CAMERA_LOG_FRAMES, start  # no frame shifted out
        windows = []  # (frames, speed, 1-minute load average at its end), consecutive, until one is fast enough
        for w in range(CAMERA_WINDOWS):
            a = start + w * CAMERA_FRAMES
            frames = camera_log(pg, a + CAMERA_FRAMES)[a:a + CAMERA_FRAMES]
            windows.append((frames, camera_speed(frames), os.getloadavg()[0]))
            if w == 0:
                shown = pg.inner_text("#fps")
                fps_shown = float(pg.get_attribute("#fps", "data-fps"))
            if windows[-1][1]["fps"] >= camera_fps_floor(windows[-1][2]):
                break
        fetched = worker_model_fetches(pg)
        assert pg.errors == []
    finally:
        camera.close()
    # The tracker runs on the analyzer's models (analyzer.modelSets): no model file is fetched again.
    print(f"\ncamera: model files fetched by the worker: {sum(fetched['counts'].values())} "
          f"({fetched['bytes']} bytes; {sum(loaded['counts'].values())} files, {loaded['bytes']} bytes before the camera); "
          f"first frame {first_frame_s * 1000:.0f} ms after the click")
    assert loaded["counts"] and set(loaded["counts"].values()) == {1}, loaded["counts"]
    assert fetched["counts"] == loaded["counts"], fetched["counts"]  # after every window measured
    log = windows[0][0]  # the behaviour: on the first window
    assert re.fullmatch(r" · scored \d+ frames? ago", age_text), age_text
    kinds = {(e["kind"], e["faces"]) for e in log}
    assert {("full", 1), ("track", 1)} <= kinds, kinds  # found, then tracked
    assert ("full", 0) in kinds and ("track", 0) not in kinds, kinds  # it left: a full look, no ghost kept
    assert all(e["faces"] <= 1 for e in log)
    # Tracking follows the face: the tracked box before each full detection against that detection's box.
    pairs = [(a["box"], b["box"]) for a, b in zip(log, log[1:]) if a["kind"] == "track" and b["kind"] == "full"
             and a["faces"] == b["faces"] == 1]
    assert pairs and min(iou(a, b) for a, b in pairs) >= TRACK_IOU_MIN, [iou(a, b) for a, b in pairs]
    # Scores are recomputed at least every SCORE_EVERY frames a face is tracked, and a fresh face is scored at once.
    ages = [e["scoredFramesAgo"] for e in log if e["faces"]]
    assert max(ages) <= SCORE_EVERY - 1 and 0 in ages, ages
    for a, b in zip(log, log[1:]):
        if b["faces"] and not a["faces"]:
            assert b["scoredFramesAgo"] == 0  # a face that came back is scored on its first frame
    # Speed: the mean worker time per frame, from the median of each kind of frame, in the proportions seen,
    # in the best of the windows measured (the last one, unless none reached CAMERA_MIN_FPS).
    print(f"\ncamera: {len(windows)} window(s) of {CAMERA_FRAMES} frames in {time.monotonic() - t0:.1f} s; "
          f"the page shows {shown!r} after the first; load averages now {[round(x, 1) for x in os.getloadavg()]}")
    for w, (frames, speed, load) in enumerate(windows, 1):
        face_free = f"{1000 / speed['face_free']:.1f}" if speed["face_free"] else "-"
        print(f"camera window {w}: with a face {speed['fps']:.1f} frames/s from the worker's {speed['with_face'] or 0:.1f} ms "
              f"a frame (no face: {face_free} frames/s; medians (ms) {speed['medians']}); wall clock {speed['wall_fps']:.1f} "
              f"frames/s; load {load:.1f}")
    assert fps_shown > 0
    rates = [speed["fps"] for _, speed, _ in windows]
    best = max(range(len(windows)), key=lambda w: rates[w] / camera_fps_floor(windows[w][2]))
    floor = camera_fps_floor(windows[best][2])
    print(f"camera: floor {floor:.1f} frames/s (CAMERA_MIN_FPS {CAMERA_MIN_FPS} x min(1, {os.cpu_count()} cores / "
          f"load {windows[best][2]:.1f}))")
    assert rates[best] >= floor, (
        f"the camera tracked a face at {rates[best]:.1f} frames/s at best (worker time per frame), under "
        f"{floor:.1f} ({CAMERA_MIN_FPS} scaled by the load), in each of {len(windows)} windows of {CAMERA_FRAMES} frames: "
        f"{[round(r, 1) for r in rates]} frames/s at load "
        f"{[round(load, 1) for _, _, load in windows]}; best window's medians {windows[best][1]['medians']}")


def test_backend_selector_rebuilds_the_analyzer(page, photos, python_results):
    before = message(page)["seq"]
    page.select_option("#backend-select", "cpu")
    wait_until(page, "document.getElementById('backend').textContent === 'cpu'"
                     " && document.body.dataset.state === 'ready'")
    outcome = settle(page, before)
    assert outcome["code"] in ("ok", "no-face"), outcome  # re-analyses the photo shown, on the CPU
    outcome = choose(page, str(photos["grey"]))  # small and face-free: quick on the pure-JS backend
    assert outcome["code"] == "no-face" and last_result(page)["backend"] == "cpu"
    before = message(page)["seq"]
    page.select_option("#backend-select", "wasm")
    wait_until(page, "document.getElementById('backend').textContent === 'wasm'"
                     " && document.body.dataset.state === 'ready'")
    settle(page, before)
    outcome = choose(page, str(photos["astronaut"]))
    assert outcome["code"] == "ok" and last_result(page)["backend"] == "wasm"
    assert_faces_match(last_result(page)["faces"], python_results["astronaut"]["faces"])
    assert page.errors == []


# --- Set-up problems -----------------------------------------------------------------------------------
def _open(browser, url):
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(url)
    wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
    return context, pg


def test_missing_models_name_the_command(browser, vendor_dir, tmp_path, photos, artifacts_dir):
    httpd = _serve(_app_for(tmp_path / "no_models", vendor_dir))
    try:
        context, pg = _open(browser, f"http://127.0.0.1:{httpd.server_port}/")
        assert pg.evaluate("document.body.dataset.state") == "error"
        assert message(pg)["code"] == "models-missing"
        notice = pg.inner_text("[data-testid=notice-models-missing]")
        assert "python convert/to_tfjs.py" in notice and "missing: manifest.json" in notice
        assert not pg.is_visible("#load")  # no download starts
        outcome = choose(pg, str(photos["astronaut"]))  # still answers, does not crash
        assert outcome["code"] == "models-missing"
        pg.screenshot(path=str(artifacts_dir / "page_missing_models.png"))
        context.close()
    finally:
        httpd.shutdown()


def test_a_half_copied_model_file_is_named(browser, tiny_bundle, vendor_dir, tmp_path):
    """A served bundle with one weight file cut short: the page's error names the model and the file
    (its size against manifest.json's), not only TF.js' "the tensor should have N values"."""
    import shutil

    broken = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, broken)
    shard = sorted((broken / "keypoints").glob("*.bin"))[0]
    with open(shard, "r+b") as f:
        f.truncate(1000)
    httpd = _serve(_app_for(broken, vendor_dir))
    try:
        context, pg = _open(browser, f"http://127.0.0.1:{httpd.server_port}/?backend=wasm")
        failed = message(pg)
        assert pg.evaluate("document.body.dataset.state") == "error" and failed["code"] == "models-failed", failed
        assert 'model "keypoints"' in failed["text"] and f"{shard.name} has 1000 bytes, manifest.json says" in failed["text"], failed
        context.close()
    finally:
        httpd.shutdown()


def test_missing_vendor_files_name_the_command(browser, tiny_bundle, tmp_path):
    (tmp_path / "vendor").mkdir()
    httpd = _serve(_app_for(tiny_bundle, tmp_path / "vendor"))
    try:
        context, pg = _open(browser, f"http://127.0.0.1:{httpd.server_port}/")
        assert "python scripts/vendor_tfjs.py" in pg.inner_text("[data-testid=notice-vendor-missing]")
        assert message(pg)["code"] == "setup-missing"
        context.close()
    finally:
        httpd.shutdown()


def test_webgl_unavailable_falls_back(playwright, base_url, photos, python_results):
    # No GPU and no software rasteriser: neither <canvas> nor OffscreenCanvas gives a WebGL context.
    no_gl = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                       args=CHROMIUM_ARGS + ["--disable-gpu", "--disable-software-rasterizer"])
    try:
        pg = no_gl.new_page()
        pg.goto(f"{base_url}?backend=webgl")
        wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
        assert pg.inner_text("#webgl") == "unavailable"
        notice = pg.inner_text("[data-testid=notice-backend-fallback]")
        assert "webgl" in notice and "WebGL unavailable" in notice and "wasm" in notice
        assert pg.inner_text("#backend") == "wasm"
        outcome = choose(pg, str(photos["astronaut"]))
        assert outcome["code"] == "ok"
        assert_faces_match(last_result(pg)["faces"], python_results["astronaut"]["faces"])
    finally:
        no_gl.close()


def test_wasm_files_the_server_cannot_serve_are_named_in_the_fallback_notice(browser, base_url):
    """?backend=wasm while every .wasm request answers 404: the page falls back and its notice gives
    the library's reason (the server's 404 and what to do), not "not available in this browser"."""
    context = browser.new_context()
    try:
        context.route("**/*.wasm", lambda route: route.fulfill(status=404, body="not found"))
        pg = context.new_page()
        pg.goto(f"{base_url}?backend=wasm")
        wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
        notice = pg.inner_text("[data-testid=notice-backend-fallback]")
        assert "could not start" in notice and "404" in notice and "instead" in notice, notice
        assert "not available in this browser" not in notice, notice
    finally:
        context.close()


def test_camera_refused_is_explained(playwright, base_url):
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]  # nobody says yes
    refusing = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        pg = refusing.new_page()
        pg.goto(f"{base_url}?backend=wasm")
        wait_until(pg, "['ready', 'error'].includes(document.body.dataset.state)")
        before = message(pg)["seq"]
        pg.click("#camera-button")
        outcome = settle(pg, before)
        assert (outcome["code"], outcome["kind"]) == ("camera-denied", "error"), outcome
        assert pg.get_attribute("#camera-button", "aria-pressed") == "false"
    finally:
        refusing.close()
