"""Helpers to drive the JavaScript library from pytest: Node scripts and headless Chromium pages.

Other test modules may import these (``from jsharness import ...``; tests/ is on sys.path).

Node (``run_node``): a script under tests/js/ gets a JSON job file and prints one JSON document;
TF.js runs on its WASM backend (no tfjs-node). Images travel as raw RGB bytes (``write_raw``) so
both sides see the same decoded pixels.

Chromium (``static_server`` + ``chromium_page``): a tiny threaded HTTP server (COOP/COEP, so the
page is cross-origin isolated) serves static/facepack/, the TF.js files from node_modules under
/vendor/ (mapped by ``IMPORT_MAP``, as static/index.html does), and any extra folders; Playwright
drives /usr/bin/chromium (never downloaded).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import mimetypes
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
LIBRARY_DIR = ROOT / "static" / "facepack"
NODE_MODULES = ROOT / "node_modules"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update"]
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]

# URL under /vendor/ -> file under node_modules (what scripts/vendor_tfjs.py copies for the page).
VENDOR_FILES = {
    "tf.fesm.js": "@tensorflow/tfjs/dist/tf.fesm.js",
    "tf-backend-wasm.fesm.js": "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js",
    "tfjs-backend-wasm.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
}
NODE_STUB = "node-builtin-stub.js"
# Bare specifiers the library (and the WASM backend's fesm bundle) import, for the page.
IMPORT_MAP = {
    "imports": {
        "@tensorflow/tfjs": "/vendor/tf.fesm.js",
        "@tensorflow/tfjs-core": "/vendor/tf.fesm.js",  # the WASM fesm imports core: same instance
        "@tensorflow/tfjs-backend-wasm": "/vendor/tf-backend-wasm.fesm.js",
        **{name: f"/vendor/{NODE_STUB}" for name in ("fs", "path", "os", "perf_hooks", "worker_threads")},
    }
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# --- Node -----------------------------------------------------------------------------------
def node_binary() -> str | None:
    return shutil.which("node")


def node_ready() -> tuple[bool, str]:
    """(usable, reason): Node and the TF.js packages the library imports are present."""
    if node_binary() is None:
        return False, "node is not on PATH"
    for rel in VENDOR_FILES.values():
        if not (NODE_MODULES / rel).is_file():
            return False, f"{NODE_MODULES / rel} is missing (run npm ci)"
    return True, ""


def write_raw(rgb: np.ndarray, path: str | os.PathLike, name: str | None = None) -> dict:
    """Write an (H, W, 3|4) uint8 image as raw bytes; returns its job entry for tests/js scripts."""
    arr = np.ascontiguousarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"write_raw: expected an (H, W, 3|4) uint8 array, got {arr.dtype} {arr.shape}")
    Path(path).write_bytes(arr.tobytes())
    return {"name": name or Path(path).stem, "path": str(path), "width": int(arr.shape[1]),
            "height": int(arr.shape[0]), "channels": int(arr.shape[2])}


def run_node(script: str | os.PathLike, job: dict, timeout: float = 300) -> dict:
    """Run ``node tests/js/<script> JOB.json`` from the repo root; returns its JSON stdout.

    Raises RuntimeError with the script's stderr when it fails or prints no JSON.
    """
    script = Path(script)
    if not script.is_absolute():
        script = JS_DIR / script
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(job, fh)
        job_path = fh.name
    try:
        proc = subprocess.run([node_binary() or "node", str(script), job_path], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
    finally:
        os.unlink(job_path)
    if proc.returncode != 0:
        raise RuntimeError(f"node {script.name} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"node {script.name} printed no JSON:\nstdout: {proc.stdout[-2000:]}\n"
                           f"stderr: {proc.stderr[-2000:]}") from None


# --- HTTP server for pages ------------------------------------------------------------------
def default_routes() -> dict:
    """URL prefix -> folder: the library and the page-only stub; vendor files are mapped by name."""
    return {"/facepack/": LIBRARY_DIR}


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    pages: dict = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _resolve(self, path: str):
        if path in self.pages:
            return self.pages[path], "text/html; charset=utf-8"
        if path.startswith("/vendor/"):
            name = path[len("/vendor/"):]
            if name == NODE_STUB:
                return b"export default {};\n", "text/javascript"
            if name in VENDOR_FILES:
                return NODE_MODULES / VENDOR_FILES[name], None
            return None, None
        for prefix, folder in self.routes.items():
            if path.startswith(prefix):
                root = Path(folder).resolve()
                target = (root / path[len(prefix):]).resolve()
                if target.is_file() and (target == root or root in target.parents):
                    return target, None
        return None, None

    def do_GET(self):  # noqa: N802 (http.server API)
        path = unquote(urlparse(self.path).path)
        body, ctype = self._resolve(path)
        if body is None:
            self.send_response(404)
            for k, v in ISOLATION_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            return
        if isinstance(body, Path):
            ctype = ("application/wasm" if body.suffix == ".wasm" else
                     "text/javascript" if body.suffix in (".js", ".mjs") else
                     mimetypes.guess_type(body.name)[0] or "application/octet-stream")
            body = body.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in ISOLATION_HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def static_server(routes: dict | None = None, pages: dict | None = None):
    """Serve ``routes`` ({"/prefix/": folder}), /vendor/ TF.js and ``pages`` ({"/x.html": bytes}).

    Yields the base URL (http://127.0.0.1:PORT). Every response is cross-origin isolated.
    """
    handler = type("Handler", (_Handler,), {"routes": {**default_routes(), **(routes or {})},
                                            "pages": {k: (v.encode() if isinstance(v, str) else v)
                                                      for k, v in (pages or {}).items()}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def page_html(module_source: str, title: str = "facepack test") -> str:
    """An HTML page with the TF.js import map and one inline module script."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<script type='importmap'>{json.dumps(IMPORT_MAP)}</script></head><body>"
            f"<script type='module'>{module_source}</script></body></html>")


# --- Chromium -------------------------------------------------------------------------------
def chromium_ready() -> tuple[bool, str]:
    """(usable, reason): /usr/bin/chromium and Playwright for Python are present."""
    if not Path(CHROMIUM).is_file():
        return False, f"{CHROMIUM} is not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False, "playwright (python) is not installed"
    return True, ""


@contextlib.contextmanager
def chromium_page(url: str, webgl: bool = False, timeout_ms: int = 240_000):
    """A Playwright page of headless /usr/bin/chromium at ``url`` (console errors collected on page.errors)."""
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + (WEBGL_ARGS if webgl else [])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            page.errors = []
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
            page.goto(url)
            yield page
        finally:
            browser.close()


def wait_for_global(page, name: str, timeout_ms: int = 240_000):
    """Wait until ``window[name]`` is set by the page's module; raise with page errors if it never is."""
    try:
        page.wait_for_function(f"() => window[{json.dumps(name)}] !== undefined", timeout=timeout_ms)
    except Exception as exc:
        raise RuntimeError(f"page never set window.{name}; page errors: {getattr(page, 'errors', [])}") from exc
    return page.evaluate(f"() => window[{json.dumps(name)}]")


@functools.lru_cache(maxsize=1)
def js_numeric_literals() -> dict:
    """{relative path: [(line number, literal text)]} of numeric literals in static/facepack code (comments stripped)."""
    import re

    out = {}
    token = re.compile(r"(?<![\w.$])(\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?![\w$])")
    for path in sorted(LIBRARY_DIR.rglob("*.js")):
        text = path.read_text()
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        found = []
        for lineno, line in enumerate(text.splitlines(), 1):
            code = re.sub(r"//.*$", "", line)
            code = re.sub(r"'(?:\\.|[^'])*'|\"(?:\\.|[^\"])*\"|`(?:\\.|[^`])*`", "''", code)
            found += [(lineno, m.group(0)) for m in token.finditer(code)]
        out[str(path.relative_to(ROOT))] = found
    return out
