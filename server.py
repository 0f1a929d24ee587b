"""Flask server for the facepack page: static files only, every photo stays in the browser.

    python server.py [--host 127.0.0.1] [--port 8000] [--models DIR] [--debug]

Served by waitress (a production WSGI server: a fixed pool of SERVER_THREADS worker threads,
idle connections closed after SERVER_CHANNEL_TIMEOUT_S, at most SERVER_CONNECTION_LIMIT open
connections, request bodies capped: there are no uploads). ``--debug`` runs Werkzeug's
development server with the debugger and reloader instead (127.0.0.1 only).

Serves
  /                 static/index.html, with a Content-Security-Policy that allows its inline
                    import map by sha256 hash (computed here from the served HTML)
  /<file>           the page's own files under static/ (app.js, app.css, facepack/..., img/...)
  /vendor/<file>    the TF.js copies written by `python scripts/vendor_tfjs.py`
  /models/<file>    the model bundles written by `python convert/to_tfjs.py` (or --models DIR)
  /api/status       JSON: are the models and the vendored TF.js present, and what the manifest holds

There is no upload endpoint: anything but GET/HEAD/OPTIONS is answered 405. Files are resolved
with safe_join and then realpath-checked against their root, so ``..`` (plain, %-encoded or
double-encoded), absolute paths, backslashes, dotfiles and symlinks leading outside give 404.

Every response carries COOP/COEP (the page is cross-origin isolated, so the WASM backend may
use threads), CORP, nosniff and a CSP without 'unsafe-inline'. Weight shards whose file name
carries their content hash (``group1-shard1of1.<16 hex>.bin``, written by the exporter) are
immutable (ETag + one year); everything else, model.json and manifest.json included, revalidates
(ETag + no-cache, 304 on a match): a re-export reaches a returning visitor, whose cached
model.json names the old shards, and no cache can pair new metadata with old weights.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from flask import Flask, Response, abort, g, jsonify, request, send_file
from werkzeug.security import safe_join

PROJECT_ROOT = Path(__file__).resolve().parent
STATIC_DIR = PROJECT_ROOT / "static"
DEFAULT_MODELS_DIR = STATIC_DIR / "models"
DEFAULT_VENDOR_DIR = STATIC_DIR / "vendor"
INDEX_HTML = "index.html"
MANIFEST = "manifest.json"
VENDOR_INDEX = "vendor.json"  # written by scripts/vendor_tfjs.py
LIBRARY_ENTRY = "facepack/index.js"
MODELS_COMMAND = "python convert/to_tfjs.py"
VENDOR_COMMAND = "python scripts/vendor_tfjs.py"
SERVER_THREADS = 8  # waitress worker threads: the page requests ~15 files at start-up
SERVER_CHANNEL_TIMEOUT_S = 30  # an idle connection (no bytes either way) is closed after this
SERVER_CLEANUP_INTERVAL_S = 10  # how often waitress looks for idle connections
SERVER_CONNECTION_LIMIT = 200  # open connections at most; more wait in the listen backlog
SERVER_MAX_BODY_BYTES = 64 * 1024  # no uploads: GET/HEAD/OPTIONS carry no body worth more
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
DEFAULT_MIME = "application/octet-stream"
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"  # weight shards: content never changes
CACHE_REVALIDATE = "no-cache"  # model.json, manifest.json, the page: always ask (ETag -> 304)
# content-named weight shards (facepack/export/tfjs_io.py:HASHED_SHARD_RE): only these are immutable
HASHED_NAME = re.compile(r"\.[0-9a-f]{16}\.bin$")

# The CSP: no 'unsafe-inline' anywhere. 'wasm-unsafe-eval' compiles the WASM backend; blob: in
# script-src/worker-src is the WASM backend's pthread worker (tf-backend-wasm builds it from a
# Blob and importScripts() its own factory from another Blob); mediastream: plays the camera.
CSP_BASE = {
    "default-src": ["'none'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'", "blob:"],
    "worker-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "img-src": ["'self'", "blob:", "data:"],
    "media-src": ["'self'", "blob:", "mediastream:"],
    "style-src": ["'self'"],
    "font-src": ["'self'"],
    "manifest-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
    "object-src": ["'none'"],
}
SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
_INLINE_SCRIPT = re.compile(r"<script\b(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>", re.S | re.I)
_IMPORT_MAP = re.compile(r"<script\b[^>]*type=[\"']importmap[\"'][^>]*>(?P<body>.*?)</script\s*>", re.S | re.I)


# --- Pure helpers -------------------------------------------------------------------------------
def csp_header(script_hashes: list[str] = ()) -> str:
    """The Content-Security-Policy value, with ``'sha256-...'`` sources added to script-src."""
    directives = {k: list(v) for k, v in CSP_BASE.items()}
    directives["script-src"] += [f"'sha256-{h}'" for h in script_hashes]
    return "; ".join(f"{k} {' '.join(v)}" for k, v in directives.items())


def inline_script_hashes(html: str) -> list[str]:
    """Base64 sha256 of every inline <script> body (no src=), as CSP hash sources expect."""
    hashes = []
    for match in _INLINE_SCRIPT.finditer(html):
        if re.search(r"\bsrc\s*=", match.group("attrs"), re.I):
            continue
        digest = hashlib.sha256(match.group("body").encode("utf-8")).digest()
        hashes.append(base64.b64encode(digest).decode("ascii"))
    return hashes


def import_map_targets(html: str) -> dict[str, str]:
    """{bare specifier: URL} of the page's import map ({} when it has none)."""
    match = _IMPORT_MAP.search(html)
    return json.loads(match.group("body")).get("imports", {}) if match else {}


def mime_type(path: str | Path) -> str:
    return MIME_TYPES.get(Path(path).suffix.lower(), DEFAULT_MIME)


def cache_control(path: str | Path) -> str:
    """Immutable for a shard whose name carries its content hash; revalidate for everything else."""
    return CACHE_IMMUTABLE if HASHED_NAME.search(Path(path).name) else CACHE_REVALIDATE


def resolve_inside(root: str | Path, subpath: str) -> Path | None:
    """The regular file ``subpath`` names under ``root``, or None when it is missing or escapes.

    Rejects empty and absolute paths, backslashes, NUL, ``.``/``..``/empty segments and dotfiles
    before joining (werkzeug's safe_join), then compares realpaths so a symlink inside the
    root that points outside is refused too.
    """
    if not subpath or subpath.startswith("/") or "\\" in subpath or "\x00" in subpath:
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in subpath.split("/")):
        return None
    joined = safe_join(os.fspath(root), subpath)
    if joined is None:
        return None
    real_root = os.path.realpath(root)
    real = os.path.realpath(joined)
    if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
        return None
    return Path(real)


@functools.lru_cache(maxsize=4096)
def _content_etag(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of the file's bytes (cached per path, mtime and size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def file_etag(path: Path) -> str:
    st = path.stat()
    return _content_etag(os.fspath(path), st.st_mtime_ns, st.st_size)


def _display_dir(path: Path) -> str:
    """A folder as the user would type it: relative to the project when inside it."""
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return os.fspath(path)


# --- Status -------------------------------------------------------------------------------------
def _model_files(model: dict) -> list[tuple[str, int]]:
    """(path relative to the bundle root, bytes) of each file of one manifest entry."""
    return [(str(f["path"]), int(f.get("bytes", 0))) for f in model.get("files", [])]


def models_status(models_dir: Path) -> dict:
    """Is the bundle present and complete? A summary of its manifest for the page."""
    status = {"dir": _display_dir(models_dir), "command": MODELS_COMMAND, "present": False,
              "missing": [], "manifest": None, "error": None}
    manifest_path = resolve_inside(models_dir, MANIFEST)
    if manifest_path is None:
        status["missing"] = [MANIFEST]
        status["error"] = f"{_display_dir(models_dir)}/{MANIFEST} not found"
        return status
    try:
        manifest = json.loads(manifest_path.read_text())
        models = manifest["models"]
    except (ValueError, KeyError, TypeError) as exc:
        status["error"] = f"{MANIFEST}: not a facepack manifest ({exc.__class__.__name__}: {exc})"
        return status
    summary, missing = {}, []
    for name, model in models.items():
        files = _model_files(model)
        missing += [rel for rel, _ in files if resolve_inside(models_dir, rel) is None]
        run = model.get("run") or {}
        summary[name] = {"backbone": model.get("backbone"), "precision": model.get("precision"),
                         "input_size": model.get("input_size"), "bytes": sum(b for _, b in files),
                         "synthetic": bool(run.get("synthetic", manifest.get("synthetic", False))),
                         "dataset": (run.get("dataset") or {}).get("name")}
    status.update(present=not missing, missing=missing,
                  manifest={"synthetic": bool(manifest.get("synthetic", False)),
                            "spec_version": (manifest.get("spec") or {}).get("spec_version"),
                            "models": summary})
    if missing:
        status["error"] = f"{len(missing)} model file(s) listed in {MANIFEST} are missing, e.g. {missing[0]}"
    return status


def vendor_status(vendor_dir: Path, index_html: str) -> dict:
    """Are the vendored TF.js files (those in vendor.json and those the import map names) present?"""
    status = {"dir": _display_dir(vendor_dir), "command": VENDOR_COMMAND, "present": False,
              "missing": [], "versions": None}
    wanted = [url[len("/vendor/"):] for url in import_map_targets(index_html).values()
              if url.startswith("/vendor/")]
    index_path = resolve_inside(vendor_dir, VENDOR_INDEX)
    if index_path is None:
        wanted.append(VENDOR_INDEX)
    else:
        index = json.loads(index_path.read_text())
        status["versions"] = index.get("versions")
        wanted += [f["path"] for f in index.get("files", [])]
    status["missing"] = sorted({rel for rel in wanted if resolve_inside(vendor_dir, rel) is None})
    status["present"] = not status["missing"]
    return status


# --- Application --------------------------------------------------------------------------------
def _send(root: Path, subpath: str) -> Response:
    path = resolve_inside(root, subpath)
    if path is None:
        abort(404)
    response = send_file(path, mimetype=mime_type(path), etag=file_etag(path), conditional=True,
                         max_age=None, last_modified=None)
    response.headers["Cache-Control"] = cache_control(path)
    return response


@functools.lru_cache(maxsize=8)
def _read_page(path: str, mtime_ns: int, size: int) -> tuple[str, list[str], str]:
    html = Path(path).read_text(encoding="utf-8")
    return html, inline_script_hashes(html), hashlib.sha256(html.encode("utf-8")).hexdigest()[:32]


def read_page(static_dir: Path) -> tuple[str, list[str], str]:
    """(index.html text, its inline-script hashes, its ETag)."""
    path = resolve_inside(static_dir, INDEX_HTML)
    if path is None:
        abort(404)
    st = path.stat()
    return _read_page(os.fspath(path), st.st_mtime_ns, st.st_size)


def create_app(test_config: dict | None = None) -> Flask:
    """The application factory. Config: STATIC_DIR, MODELS_DIR, VENDOR_DIR (paths)."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(STATIC_DIR=STATIC_DIR, MODELS_DIR=DEFAULT_MODELS_DIR, VENDOR_DIR=DEFAULT_VENDOR_DIR)
    if test_config:
        unknown = sorted(set(test_config) - set(app.config))
        if unknown:
            raise ValueError(f"create_app: unknown config key(s) {unknown}; "
                             f"expected STATIC_DIR, MODELS_DIR, VENDOR_DIR or a Flask setting")
        app.config.update(test_config)
    for key in ("STATIC_DIR", "MODELS_DIR", "VENDOR_DIR"):
        app.config[key] = Path(app.config[key])
    app.url_map.merge_slashes = False  # "/models//etc/passwd" must 404, not redirect
    app.url_map.strict_slashes = False

    @app.before_request
    def reject_writes():
        if request.method not in ALLOWED_METHODS:
            abort(405)  # no upload endpoint: photos never leave the browser

    @app.get("/")
    @app.get("/index.html")
    def index():
        html, hashes, etag = read_page(app.config["STATIC_DIR"])
        g.script_hashes = hashes
        response = Response(html, mimetype="text/html")
        response.set_etag(etag)
        response.headers["Cache-Control"] = CACHE_REVALIDATE
        return response.make_conditional(request)

    @app.get("/api/status")
    def status():
        html, _, _ = read_page(app.config["STATIC_DIR"])
        response = jsonify(models=models_status(app.config["MODELS_DIR"]),
                           vendor=vendor_status(app.config["VENDOR_DIR"], html),
                           library={"present": resolve_inside(app.config["STATIC_DIR"], LIBRARY_ENTRY) is not None})
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/models/<path:subpath>")
    def models(subpath):
        return _send(app.config["MODELS_DIR"], subpath)

    @app.get("/vendor/<path:subpath>")
    def vendor(subpath):
        return _send(app.config["VENDOR_DIR"], subpath)

    @app.get("/<path:subpath>")
    def page_files(subpath):
        first = subpath.split("/", 1)[0]
        if first in ("models", "vendor", "api"):
            abort(404)  # never fall through to static/models or static/vendor
        return _send(app.config["STATIC_DIR"], subpath)

    @app.after_request
    def security_headers(response):
        for key, value in SECURITY_HEADERS.items():
            response.headers[key] = value
        response.headers["Content-Security-Policy"] = csp_header(g.get("script_hashes", []))
        return response

    return app


# --- CLI ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the facepack page (everything runs in the browser).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--models", default=str(DEFAULT_MODELS_DIR),
                        help=f"model bundle folder with {MANIFEST} (default static/models; built by `{MODELS_COMMAND}`)")
    parser.add_argument("--vendor", default=str(DEFAULT_VENDOR_DIR),
                        help=f"vendored TF.js folder (default static/vendor; built by `{VENDOR_COMMAND}`)")
    parser.add_argument("--debug", action="store_true",
                        help="Werkzeug's development server with debugger and reloader (127.0.0.1 only), "
                             "instead of waitress")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: expected 0..65535, got {args.port}")
    if args.debug and args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"--debug: the Werkzeug debugger runs code typed into the browser; use --host 127.0.0.1, "
                     f"got --host {args.host}")
    return args


def config_from_args(args: argparse.Namespace) -> dict:
    """create_app config from parsed arguments (a missing folder is reported by the page)."""
    return {"MODELS_DIR": Path(args.models), "VENDOR_DIR": Path(args.vendor)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app = create_app(config_from_args(args))
    html, _, _ = read_page(app.config["STATIC_DIR"])
    for what, st in (("models", models_status(app.config["MODELS_DIR"])),
                     ("vendored TF.js", vendor_status(app.config["VENDOR_DIR"], html))):
        if not st["present"]:
            print(f"warning: {what} missing in {st['dir']} ({', '.join(st['missing'][:3])}); "
                  f"build them with `{st['command']}`", file=sys.stderr)
    print(f"facepack page on http://{args.host}:{args.port}/  (photos never leave the browser)", flush=True)
    if args.debug:
        print("debug: Werkzeug development server with debugger and reloader (not for production)", flush=True)
        app.run(host=args.host, port=args.port, debug=True)
        return 0
    try:
        serve(app, host=args.host, port=args.port, threads=SERVER_THREADS)
    except OSError as err:  # the address is taken, or not this machine's: one line, not a traceback
        print(f"server.py: error: cannot listen on {args.host}:{args.port}: {err.strerror or err}; "
              f"stop what uses it or choose another --port", file=sys.stderr)
        return 2
    return 0


def waitress_options(threads: int = SERVER_THREADS, **overrides) -> dict:
    """The waitress settings (limits and timeouts above); ``overrides`` replace single ones (tests)."""
    options = {"threads": threads, "channel_timeout": SERVER_CHANNEL_TIMEOUT_S,
               "cleanup_interval": SERVER_CLEANUP_INTERVAL_S, "connection_limit": SERVER_CONNECTION_LIMIT,
               "max_request_body_size": SERVER_MAX_BODY_BYTES, "asyncore_use_poll": True, "ident": "facepack"}
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        raise ValueError(f"waitress_options: unknown setting(s) {unknown}; expected some of {sorted(options)}")
    options.update(overrides)
    return options


def serve(app, host: str, port: int, threads: int = SERVER_THREADS) -> None:
    """Serve ``app`` with waitress (a production WSGI server; Flask's own server is for development).

    Blocks until interrupted. ``threads``: worker threads (the page fetches ~15 files at start);
    timeouts and limits: waitress_options (asyncore_use_poll: no select() limit of 1024 sockets).
    """
    import waitress

    waitress.serve(app, host=host, port=port, **waitress_options(threads))


if __name__ == "__main__":
    sys.exit(main())
