"""The WASM backend starts on a retry after a failed start, without a page reload.

TF.js 4.22 (tfjs-backend-wasm src/backend_wasm.ts) sets a module-level ``initAborted`` when a
start aborts (a .wasm URL answering 404, a file that is not WebAssembly, a wrong wasmPaths folder)
and then refuses every setWasmPaths call ('The WASM backend was already initialized') until a
start succeeds; static/facepack/backend.js used to call setWasmPaths before each start, so every
retry failed that way. It now hands TF.js one file map and updates it in place (configureWasm),
and ends the Workers a failed start of the threaded build leaves behind (withFailedWorkersEnded).

Browser: headless Chromium on a cross-origin isolated test page (tests/jsharness.py), one browser
for the module and a fresh page (fresh TF.js) per test; page.route makes the first .wasm fetches
fail and then lets them through. Node: tests/js/backend_retry.mjs with a wasmPaths folder
without the .wasm files, then the default one. No models are needed.
"""

from __future__ import annotations

import time

import pytest

from jsharness import (CHROMIUM, CHROMIUM_ARGS, chromium_ready, node_ready, page_html, playwright_session, run_node,
                       static_server)

ok_node, why_node = node_ready()
ok_chromium, why_chromium = chromium_ready()
pytestmark = pytest.mark.skipif(not ok_node, reason=why_node)

THREADED = "tfjs-backend-wasm-threaded-simd.wasm"  # the build an isolated page loads
ALREADY = "already initialized"  # TF.js's setWasmPaths refusal: the old retry's error
POOL = 8  # pthread Workers of TF.js's threaded build (tfjs-backend-wasm PTHREAD_POOL_SIZE)

PAGE = """
import * as tf from '@tensorflow/tfjs';
import { createFaceAnalyzer } from '/facepack/index.js';
import { selectBackend, wasmThreadsInUse } from '/facepack/backend.js';

const add = async () => {
  const x = tf.add(tf.scalar(2), tf.scalar(3));
  try { return (await x.data())[0]; } finally { x.dispose(); }
};
window.attempt = async (requested, opts) => {
  try {
    const r = await selectBackend(requested, opts);
    return { ok: true, backend: r.backend, failures: r.failures, value: await add(), threads: wasmThreadsInUse() };
  } catch (err) { return { ok: false, message: err.message, code: err.code ?? null }; }
};
// createFaceAnalyzer chooses the backend before it reads the bundle: with no bundle at modelUrl it
// throws the backend's error when WASM cannot start, else the manifest's.
window.analyzer = async (modelUrl) => {
  try { await createFaceAnalyzer({ modelUrl, backend: 'wasm' }); return { ok: true }; } catch (err) {
    return { ok: false, message: err.message, code: err.code ?? null, backend: tf.getBackend() };
  }
};
window.cores = () => ({ value: navigator.hardwareConcurrency,
  own: Object.getOwnPropertyNames(navigator).includes('hardwareConcurrency') });
window.pageReady = true;
"""

# How the first .wasm fetches fail (Playwright route actions).
FAILURES = {
    "http_404": lambda route: route.fulfill(status=404, content_type="text/plain", body="not here"),
    "html_not_wasm": lambda route: route.fulfill(status=200, content_type="text/html",
                                                 body="<!doctype html><title>SPA fallback</title>"),
    "network_error": lambda route: route.abort("failed"),
}


@pytest.fixture(scope="module")
def server():
    with static_server({}, {"/index.html": page_html(PAGE)}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not ok_chromium:
        pytest.skip(why_chromium)
    with playwright_session() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Wasm:
    """A fresh page whose .wasm fetches fail (FAILURES[how]) while ``failing`` is true."""

    def __init__(self, browser, url, how="http_404"):
        self.failing = True
        self.fetched = []
        self.page = browser.new_page()
        self.page.set_default_timeout(120_000)
        self.page.route("**/*.wasm", self._route)
        self.page.goto(url + "/index.html")
        deadline = time.monotonic() + 120
        while not self.page.evaluate("() => window.pageReady === true"):  # poll: no eval-based waits
            assert time.monotonic() < deadline, "test page never set window.pageReady"
            time.sleep(0.05)
        self.how = how

    def _route(self, route):
        self.fetched.append((route.request.url.rsplit("/", 1)[-1], self.failing))
        if self.failing:
            return FAILURES[self.how](route)
        return route.continue_()

    def workers(self, want, timeout_s=10):
        """The page's Workers once there are ``want`` of them (or after timeout_s: the count then)."""
        deadline = time.monotonic() + timeout_s
        while len(self.page.workers) != want and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)  # lets Playwright take the workers' close events
        return len(self.page.workers)

    def call(self, fn, *args):
        return self.page.evaluate(f"(args) => window.{fn}(...args)", list(args))

    def close(self):
        self.page.close()


@pytest.fixture
def wasm_page(browser, server):
    pages = []

    def make(how="http_404"):
        pages.append(Wasm(browser, server, how))
        return pages[-1]

    yield make
    for p in pages:
        p.close()


@pytest.mark.parametrize("how", sorted(FAILURES))
def test_browser_wasm_starts_on_retry(wasm_page, how):
    """useBackend('wasm') fails while the .wasm cannot be fetched, then starts once it can."""
    w = wasm_page(how)
    first = w.call("attempt", "wasm", {})
    assert not first["ok"] and first["code"] == "backend-unavailable", first
    assert ALREADY not in first["message"], first
    # the threaded build's 8 pthread Workers, created before the fetch, ended with the failed start
    assert w.workers(0) == 0
    native = "() => Worker.toString().includes('[native code]')"
    assert w.page.evaluate(native), "the page's Worker constructor was left replaced after a failed start"
    w.failing = False
    second = w.call("attempt", "wasm", {})
    assert second["ok"], second
    assert (second["backend"], second["value"]) == ("wasm", 5), second
    assert (THREADED, False) in w.fetched, w.fetched  # the retry fetched the threaded build itself
    assert w.workers(POOL) == POOL  # the started backend keeps its pool
    assert w.page.evaluate(native), "the page's Worker constructor was left replaced after a start"


def test_browser_retry_with_corrected_wasm_paths_and_threads(wasm_page):
    """A wrong wasmPaths, 'auto' meanwhile (CPU, with the real reason), then the right location
    with wasmThreads 2: the pool gets 2 threads and navigator.hardwareConcurrency is as it was."""
    w = wasm_page()
    w.failing = False  # the server itself answers 404 under /nowhere/
    before = w.call("cores")
    first = w.call("attempt", "wasm", {"wasmPaths": "/nowhere/", "wasmThreads": 2})
    assert not first["ok"] and "/nowhere/" in first["message"] and "404" in first["message"], first
    auto = w.call("attempt", "auto", {"wasmPaths": "/nowhere/"})
    assert auto["ok"] and auto["backend"] == "cpu" and auto["value"] == 5, auto
    assert len(auto["failures"]) == 1 and "404" in auto["failures"][0] and ALREADY not in auto["failures"][0], auto
    assert w.workers(0) == 0
    right = w.call("attempt", "wasm", {"wasmPaths": None, "wasmThreads": 2})
    assert right["ok"] and right["backend"] == "wasm" and right["value"] == 5, right
    assert right["threads"] == 2, right
    assert w.call("cores") == before
    assert [name for name, _ in w.fetched if name == THREADED]  # the threaded build, from /vendor/


def test_browser_second_create_face_analyzer_gets_past_the_backend(wasm_page):
    """The case users meet: the first createFaceAnalyzer fails on the backend, the second (after
    the cause is gone) starts WASM and goes on to the bundle (absent here: the manifest's error)."""
    w = wasm_page()
    first = w.call("analyzer", "/no-bundle")
    assert not first["ok"] and first["code"] == "backend-unavailable", first
    w.failing = False
    second = w.call("analyzer", "/no-bundle")
    assert not second["ok"] and second["code"] != "backend-unavailable", second
    assert second["backend"] == "wasm", second
    assert "manifest" in second["message"].lower() or "404" in second["message"], second


def test_node_wasm_starts_on_retry(tmp_path):
    """Node: a wasmPaths folder without the .wasm files, 'auto' meanwhile, then the default folder."""
    out = run_node("backend_retry.mjs", {"wrong": f"{tmp_path}/", "right": None}, timeout=120)
    assert not out["first"]["ok"] and out["first"]["code"] == "backend-unavailable", out
    assert out["auto"]["ok"] and out["auto"]["backend"] == "cpu", out
    assert ALREADY not in out["auto"]["failures"][0], out
    assert out["second"]["ok"] and (out["second"]["backend"], out["second"]["value"]) == ("wasm", 5), out
    # started: the location is fixed, and a call naming another one keeps the running backend
    assert out["third"]["ok"] and out["third"]["backend"] == "wasm", out


def test_node_after_the_apps_own_failed_start_says_to_reload(tmp_path):
    """What TF.js leaves no way around: the app's own failed start (setWasmPaths + tf.setBackend,
    no facepack location) leaves TF.js taking no location; the error says so and what to do, and
    'auto' falls back to CPU."""
    out = run_node("backend_retry.mjs", {"wrong": f"{tmp_path}/", "right": None, "appFirst": True}, timeout=120)
    assert out["app"] is False, out
    named = out["named"]
    assert not named["ok"] and named["code"] == "backend-unavailable", out
    assert "reload the page" in named["message"] and "facepack" in named["message"], out
    assert out["auto"]["ok"] and out["auto"]["backend"] == "cpu", out
