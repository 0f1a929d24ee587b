"""server.py: headers, MIME types, caching, traversal, no uploads, /api/status; scripts/vendor_tfjs.py.

Runs against the real static/ (index.html, app.js, app.css), a small fake bundle and a vendored
copy of TF.js made by scripts/vendor_tfjs.py, all in temporary folders.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.util
import json
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import server  # noqa: E402  (project root module)


def _load_script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vendor_tfjs = _load_script("vendor_tfjs", ROOT / "scripts" / "vendor_tfjs.py")

SECRET = "facepack-test-secret-7f3a"
SHARD_BYTES = bytes(range(256)) * 8
# a content-named shard as the exporter writes it (facepack/export/tfjs_io.py:hash_shard_names)
SHARD = f"keypoints/group1-shard1of1.{hashlib.sha256(SHARD_BYTES).hexdigest()[:16]}.bin"
UNHASHED_SHARD = "keypoints/group1-shard1of1.bin"  # the converter's own name: never immutable
MODEL_JSON = "keypoints/model.json"


# --- Fixtures -----------------------------------------------------------------------------------
def _write_fake_bundle(models: Path) -> None:
    """A manifest listing one model of two files (enough for the server; not a real model)."""
    (models / "keypoints").mkdir(parents=True)
    (models / MODEL_JSON).write_text(json.dumps({"format": "layers-model", "weightsManifest": []}))
    (models / SHARD).write_bytes(SHARD_BYTES)
    files = [{"path": p, "bytes": (models / p).stat().st_size, "sha256": "0" * 64} for p in (MODEL_JSON, SHARD)]
    manifest = {"spec": {"spec_version": 1}, "synthetic": True, "versions": {},
                "models": {"keypoints": {"path": "keypoints", "format": "layers-model", "files": files,
                                         "backbone": "kpnet", "precision": "float32", "input_size": 96,
                                         "run": {"synthetic": True, "metrics": {"nme": 0.5},
                                                 "dataset": {"name": "synthetic", "terms": "none"}}}}}
    (models / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    """Folders: models (fake bundle + hostile entries), vendor (real TF.js copy), secret outside both."""
    if not (vendor_tfjs.DEFAULT_NODE_MODULES / "@tensorflow" / "tfjs").is_dir():
        pytest.skip("node_modules/@tensorflow/tfjs is absent: run `bash scripts/setup.sh` (npm ci)")
    base = tmp_path_factory.mktemp("site")
    secret = base / "secret.txt"
    secret.write_text(SECRET)
    models = base / "models"
    _write_fake_bundle(models)
    (models / ".hidden.json").write_text(SECRET)
    (models / "leak.json").symlink_to(secret)  # file symlink pointing outside
    (models / "outside").symlink_to(base)  # folder symlink pointing outside
    (models / "inside.json").symlink_to(models / MODEL_JSON)  # symlink staying inside: allowed
    vendor = base / "vendor"
    vendor_tfjs.vendor(vendor)
    return {"base": base, "models": models, "vendor": vendor, "secret": secret}


@pytest.fixture(scope="module")
def app(site):
    return server.create_app({"MODELS_DIR": site["models"], "VENDOR_DIR": site["vendor"], "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


def _import_map_hash(html: str) -> str:
    body = re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1)
    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


# --- Page, CSP and security headers -------------------------------------------------------------
def test_index_csp_allows_the_import_map_by_hash_and_nothing_inline(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    csp = _directives(response.headers["Content-Security-Policy"])
    assert f"'sha256-{_import_map_hash(html)}'" in csp["script-src"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert {"'self'", "'wasm-unsafe-eval'"} <= set(csp["script-src"])
    assert {"'self'", "blob:", "data:"} <= set(csp["img-src"])
    assert {"'self'", "blob:", "mediastream:"} <= set(csp["media-src"])
    assert csp["default-src"] == ["'none'"] and csp["object-src"] == ["'none'"]
    # The import map is the only inline script, and it parses.
    assert len(server.inline_script_hashes(html)) == 1
    assert "@tensorflow/tfjs" in server.import_map_targets(html)
    assert "style=" not in html, "inline style attributes are blocked by the CSP"


def test_csp_hash_follows_the_served_html(tmp_path, site):
    static = tmp_path / "static"
    shutil.copytree(ROOT / "static", static, ignore=shutil.ignore_patterns("models", "vendor"))
    page = static / "index.html"
    page.write_text(page.read_text().replace('"imports": {', '"imports": {\n    "extra": "/vendor/x.js",'))
    app = server.create_app({"STATIC_DIR": static, "MODELS_DIR": site["models"], "VENDOR_DIR": site["vendor"]})
    response = app.test_client().get("/")
    html = response.get_data(as_text=True)
    assert '"extra"' in html
    assert f"'sha256-{_import_map_hash(html)}'" in response.headers["Content-Security-Policy"]
    real = server.create_app({"MODELS_DIR": site["models"]}).test_client().get("/")
    assert real.headers["Content-Security-Policy"] != response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/", 200), ("GET", "/app.js", 200), ("GET", "/app.css", 200),
    ("GET", "/models/manifest.json", 200), ("GET", f"/models/{SHARD}", 200),
    ("GET", "/vendor/tf.fesm.js", 200), ("GET", "/vendor/tfjs-backend-wasm-simd.wasm", 200),
    ("GET", "/api/status", 200), ("GET", "/no-such-file.js", 404), ("POST", "/", 405),
    ("HEAD", "/app.js", 200),
])
def test_security_headers_on_every_response(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "script-src 'self' 'wasm-unsafe-eval'" in csp


@pytest.mark.parametrize("path,mimetype", [
    ("/", "text/html"),
    ("/app.js", "text/javascript"),
    ("/app.css", "text/css"),
    ("/vendor/tf.fesm.js", "text/javascript"),
    ("/vendor/tfjs-backend-wasm.wasm", "application/wasm"),
    ("/vendor/tfjs-backend-wasm-threaded-simd.wasm", "application/wasm"),
    ("/vendor/vendor.json", "application/json"),
    ("/models/manifest.json", "application/json"),
    (f"/models/{MODEL_JSON}", "application/json"),
    (f"/models/{SHARD}", "application/octet-stream"),
])
def test_mime_types(client, path, mimetype):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype


def test_unknown_suffix_is_octet_stream():
    assert server.mime_type("a/b.xyz") == "application/octet-stream"
    assert server.mime_type("x.MJS").startswith("text/javascript")


# --- Caching --------------------------------------------------------------------------------------
def test_weight_shards_are_immutable_with_an_etag(client, site):
    response = client.get(f"/models/{SHARD}")
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = response.headers["ETag"]
    assert etag and response.data == (site["models"] / SHARD).read_bytes()
    again = client.get(f"/models/{SHARD}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    other = client.get(f"/models/{SHARD}", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_only_content_named_shards_are_immutable():
    assert server.cache_control("m/group1-shard1of1.0123456789abcdef.bin") == server.CACHE_IMMUTABLE
    for name in ("m/group1-shard1of1.bin", "m/group1-shard1of1.0123456789ABCDEF.bin",
                 "m/group1-shard1of1.0123456789abcde.bin", "m/model.json", "m/x.0123456789abcdef.json"):
        assert server.cache_control(name) == "no-cache", name


@pytest.mark.parametrize("path", ["/models/manifest.json", f"/models/{MODEL_JSON}", "/", "/app.js",
                                  "/vendor/tf.fesm.js"])
def test_json_and_page_files_revalidate(client, path):
    response = client.get(path)
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers["ETag"]
    assert etag
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304


def test_etag_changes_with_the_content(tmp_path):
    models = tmp_path / "models"
    _write_fake_bundle(models)
    client = server.create_app({"MODELS_DIR": models}).test_client()
    first = client.get(f"/models/{MODEL_JSON}").headers["ETag"]
    (models / MODEL_JSON).write_text('{"format": "layers-model", "changed": true}')
    response = client.get(f"/models/{MODEL_JSON}", headers={"If-None-Match": first})
    assert response.status_code == 200 and response.headers["ETag"] != first


# --- Nothing outside the served folders -------------------------------------------------------------
TRAVERSALS = [
    "/models/../server.py",
    "/models/../../secret.txt",
    "/models/%2e%2e/secret.txt",
    "/models/%2E%2E/%2e%2e/server.py",
    "/models/..%2fsecret.txt",
    "/models/%252e%252e/secret.txt",  # double-encoded
    "/models/%252e%252e%252fsecret.txt",
    "/models/..%5csecret.txt",  # backslash
    "/models/..\\secret.txt",
    "/models//etc/passwd",  # absolute
    "/models/%2fetc%2fpasswd",
    "/vendor//etc/passwd",
    "/%2fetc/passwd",
    "//etc/passwd",
    "/..%2fserver.py",
    "/models/leak.json",  # symlink out of the folder
    "/models/outside/secret.txt",  # folder symlink out of the folder
    "/models/.hidden.json",  # dotfile
    "/models/%00manifest.json",
    "/vendor/../models/../../secret.txt",
    "/../server.py",
    "/api/../server.py",
    "/static/index.html",
    "/facepack/../../server.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_refused(client, site, path):
    assert SECRET in site["secret"].read_text()  # the target exists: a 200 would leak it
    response = client.get(path)
    assert response.status_code in (403, 404), f"{path} -> {response.status_code}"
    assert SECRET.encode() not in response.data
    assert b"def create_app" not in response.data and b"root:" not in response.data


def test_symlink_inside_the_folder_is_served(client, site):
    response = client.get("/models/inside.json")
    assert response.status_code == 200
    assert response.data == (site["models"] / MODEL_JSON).read_bytes()


def _live_server(app):
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd


@pytest.mark.parametrize("raw", ["/models/../../secret.txt", "/models/%2e%2e/%2e%2e/secret.txt",
                                 "/models/..%2f..%2fsecret.txt", "/models/%252e%252e/secret.txt",
                                 "/models/..\\..\\secret.txt", "/models/..%5c..%5csecret.txt",
                                 "/models//etc/passwd", "/models/leak.json", "/../../../etc/passwd"])
def test_traversal_over_real_http(app, site, raw):
    """The same attempts as raw request lines (no client-side URL normalisation)."""
    httpd = _live_server(app)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", httpd.server_port, timeout=10)
        conn.putrequest("GET", raw, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        assert response.status in (400, 403, 404), f"{raw} -> {response.status}"
        assert SECRET.encode() not in body and b"root:" not in body
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("subpath", ["", "/abs", "a\\b", "a/../b", "./a", "a//b", ".git/config", "a\x00b"])
def test_resolve_inside_rejects(tmp_path, subpath):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").write_text("x")
    assert server.resolve_inside(tmp_path, subpath) is None


def test_resolve_inside_accepts_plain_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.bin").write_bytes(b"x")
    assert server.resolve_inside(tmp_path, "a/b.bin") == (tmp_path / "a" / "b.bin").resolve()
    assert server.resolve_inside(tmp_path, "a") is None  # folders are not files


# --- No uploads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/", "/upload", "/api/status", "/models/manifest.json", "/api/analyze"])
def test_writes_are_rejected(client, site, method, path):
    before = sorted(p.name for p in site["models"].iterdir())
    response = client.open(path, method=method, data={"photo": (b"\x89PNG fake", "face.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 405
    assert sorted(p.name for p in site["models"].iterdir()) == before


# --- /api/status ----------------------------------------------------------------------------------
def test_status_with_everything_present(client):
    status = client.get("/api/status").get_json()
    assert status["models"]["present"] is True and status["models"]["missing"] == []
    summary = status["models"]["manifest"]
    assert summary["synthetic"] is True
    assert summary["models"]["keypoints"]["backbone"] == "kpnet"
    assert summary["models"]["keypoints"]["bytes"] > 2000
    assert status["vendor"]["present"] is True
    assert status["vendor"]["versions"]["@tensorflow/tfjs"] == "4.22.0"
    assert status["library"]["present"] is (ROOT / "static" / "facepack" / "index.js").is_file()


def test_status_names_the_commands_when_files_are_missing(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "vendor").mkdir()
    client = server.create_app({"MODELS_DIR": tmp_path / "models", "VENDOR_DIR": tmp_path / "vendor"}).test_client()
    status = client.get("/api/status").get_json()
    assert status["models"]["present"] is False
    assert status["models"]["missing"] == ["manifest.json"]
    assert status["models"]["command"] == "python convert/to_tfjs.py"
    assert status["vendor"]["present"] is False
    assert "tf.fesm.js" in status["vendor"]["missing"] and "vendor.json" in status["vendor"]["missing"]
    assert status["vendor"]["command"] == "python scripts/vendor_tfjs.py"
    assert str(tmp_path) not in json.dumps(status["models"]["missing"])


def test_status_lists_a_missing_shard(tmp_path):
    models = tmp_path / "models"
    _write_fake_bundle(models)
    (models / SHARD).unlink()
    status = server.create_app({"MODELS_DIR": models}).test_client().get("/api/status").get_json()
    assert status["models"]["present"] is False
    assert status["models"]["missing"] == [SHARD]
    assert SHARD in status["models"]["error"]


def test_status_reports_a_broken_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    status = server.create_app({"MODELS_DIR": tmp_path}).test_client().get("/api/status").get_json()
    assert status["models"]["present"] is False and "manifest.json" in status["models"]["error"]


# --- Vendored TF.js and the import map ------------------------------------------------------------
def test_every_import_map_target_is_vendored_and_served(client):
    html = client.get("/").get_data(as_text=True)
    targets = server.import_map_targets(html)
    assert {"@tensorflow/tfjs", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-wasm"} <= set(targets)
    for specifier, url in targets.items():
        assert url.startswith("/vendor/"), specifier
        assert url[len("/vendor/"):] in vendor_tfjs.vendor_files(), specifier
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "text/javascript", url
    # tfjs-core must be the same module instance as tfjs, or the WASM backend registers elsewhere.
    assert targets["@tensorflow/tfjs-core"] == targets["@tensorflow/tfjs"]


def test_import_map_covers_the_wasm_backend_imports(site):
    source = (site["vendor"] / "tf-backend-wasm.fesm.js").read_text()
    imported = set(re.findall(r'''(?:from|import)\s*["']([^"'./][^"']*)["']''', source))
    assert imported, "expected bare imports in tf-backend-wasm.fesm.js"
    mapped = set(server.import_map_targets((ROOT / "static" / "index.html").read_text()))
    assert imported <= mapped, f"unmapped bare imports: {sorted(imported - mapped)}"


def test_vendor_index_matches_the_copies(site):
    index = json.loads((site["vendor"] / "vendor.json").read_text())
    assert sorted(f["path"] for f in index["files"]) == sorted(vendor_tfjs.vendor_files())
    for entry in index["files"]:
        data = (site["vendor"] / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_vendor_names_the_missing_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci"):
        vendor_tfjs.vendor(tmp_path / "out", tmp_path / "no_node_modules")


# --- Factory and CLI --------------------------------------------------------------------------------
def test_create_app_rejects_unknown_config_keys():
    with pytest.raises(ValueError, match="MODEL_DIR"):
        server.create_app({"MODEL_DIR": "x"})


def test_cli_defaults_and_models_flag(tmp_path):
    args = server.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert Path(args.models) == server.DEFAULT_MODELS_DIR
    config = server.config_from_args(server.parse_args(["--models", str(tmp_path), "--port", "0"]))
    assert config["MODELS_DIR"] == tmp_path
    with pytest.raises(SystemExit):
        server.parse_args(["--port", "70000"])


def test_main_serves_the_app_with_waitress_and_its_headers(tmp_path, monkeypatch):
    """`python server.py` runs the real app under waitress (not Flask's development server):
    started on a free port in a thread, a GET of / returns the page with COOP/COEP and the CSP."""
    import socket

    import waitress

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    captured = {}
    real_create_server = waitress.create_server

    def create_server(app, **kw):  # keep a handle to close the server after the check
        captured["server"] = real_create_server(app, **kw)
        return captured["server"]

    monkeypatch.setattr(waitress, "create_server", create_server)

    def serve(app, **kw):  # waitress.serve = create_server(...).run(), made stoppable here
        create_server(app, **kw).run()

    monkeypatch.setattr(waitress, "serve", serve)
    thread = threading.Thread(target=server.main, args=(["--host", "127.0.0.1", "--port", str(port),
                                                         "--models", str(tmp_path), "--vendor", str(tmp_path)],),
                              daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if "server" in captured:
                break
            threading.Event().wait(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(50):
            try:
                conn.request("GET", "/")
                break
            except ConnectionRefusedError:
                threading.Event().wait(0.1)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        assert response.getheader("Server") == "facepack"  # waitress' ident: not Werkzeug
        assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        assert "Content-Security-Policy" in {k for k, _ in response.getheaders()}
        assert b"<html" in body.lower()
        conn.close()  # an open keep-alive channel keeps waitress' loop running until channel_timeout
    finally:
        captured["server"].close()
        thread.join(timeout=10)


def test_waitress_gets_timeouts_and_limits():
    options = server.waitress_options()
    assert options["channel_timeout"] == server.SERVER_CHANNEL_TIMEOUT_S == 30
    assert options["connection_limit"] == server.SERVER_CONNECTION_LIMIT
    assert options["max_request_body_size"] == server.SERVER_MAX_BODY_BYTES
    assert options["asyncore_use_poll"] is True  # select() would fail past 1024 sockets
    with pytest.raises(ValueError, match="unknown setting.*chanel_timeout"):
        server.waitress_options(chanel_timeout=1)


IDLE_SOCKETS = 60  # idle keep-alive connections opened against the server
IDLE_TIMEOUT_S = 1  # channel_timeout for this test (the real one is SERVER_CHANNEL_TIMEOUT_S)


def test_idle_sockets_hold_no_threads_and_are_closed(tmp_path):
    """60 idle connections: requests are still answered at once, the server runs its fixed
    pool of threads (not one per socket), and waitress closes the idle sockets after
    channel_timeout."""
    import socket
    import time

    import waitress

    _write_fake_bundle(tmp_path / "models")
    app = server.create_app({"MODELS_DIR": tmp_path / "models", "VENDOR_DIR": tmp_path})
    srv = waitress.create_server(app, host="127.0.0.1", port=0,
                                 **server.waitress_options(threads=2, channel_timeout=IDLE_TIMEOUT_S, cleanup_interval=1))
    port = srv.socket.getsockname()[1]
    before = threading.active_count()
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    idle = []
    try:
        for _ in range(IDLE_SOCKETS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /models/manifest.json HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(sock)
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/models/manifest.json")
        assert conn.getresponse().status == 200
        assert time.monotonic() - t0 < 2.0
        assert threading.active_count() - before <= 2 + 1  # the pool + the server loop thread
        deadline = time.monotonic() + IDLE_TIMEOUT_S + 5
        closed = 0
        for sock in idle:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += sock.recv(1) == b""
            except (socket.timeout, ConnectionResetError):
                closed += 0
        assert closed == IDLE_SOCKETS
    finally:
        for sock in idle:
            sock.close()
        srv.close()
        thread.join(timeout=10)


def test_debug_runs_werkzeug_on_loopback_only(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(server.Flask, "run", lambda self, **kw: calls.append(kw))
    monkeypatch.setattr(server, "serve", lambda *a, **kw: pytest.fail("waitress must not start with --debug"))
    assert server.main(["--debug", "--port", "8123", "--models", str(tmp_path), "--vendor", str(tmp_path)]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 8123, "debug": True}]
    with pytest.raises(SystemExit):
        server.parse_args(["--debug", "--host", "0.0.0.0"])


def _visit(client, cache: dict, url: str) -> bytes:
    """GET ``url`` as a browser cache would (RFC 9111 for the headers this server sends):
    a fresh immutable entry is used without asking; a no-cache entry is revalidated with its ETag."""
    entry = cache.get(url)
    if entry and "immutable" in entry["cache_control"]:
        return entry["body"]
    headers = {"If-None-Match": entry["etag"]} if entry else {}
    response = client.get(url, headers=headers)
    if response.status_code == 304:
        return entry["body"]
    assert response.status_code == 200, url
    cache[url] = {"etag": response.headers["ETag"], "cache_control": response.headers["Cache-Control"],
                  "body": response.data}
    return response.data


def _export_fake_model(out: Path, weights: bytes) -> None:
    """A bundle written the exporter's way: shards content-named by hash_shard_names, then
    swapped into place atomically (atomic_replace)."""
    from facepack.export.bundle import atomic_replace
    from facepack.export.tfjs_io import hash_shard_names

    with atomic_replace(out) as tmp:
        (tmp / "net").mkdir()
        (tmp / "net" / "group1-shard1of1.bin").write_bytes(weights)
        (tmp / "net" / "model.json").write_text(json.dumps(
            {"format": "layers-model", "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": []}]}))
        hash_shard_names(tmp / "net")
        (tmp / "manifest.json").write_text(json.dumps({"models": {"net": {"path": "net", "files": []}},
                                                      "weights_sha256": hashlib.sha256(weights).hexdigest()}))


def test_returning_visitor_gets_the_new_weights_after_a_re_export(tmp_path):
    """A visitor loads the model (manifest, model.json, shards: cached by the rules above); the
    model is re-exported with other weights; the returning visitor gets exactly the new weights
    with the new metadata (before content-named shards it ran the cached old shard)."""
    models = tmp_path / "models"
    old, new = b"\x01" * 4096, b"\x02" * 4096
    _export_fake_model(models, old)
    client = server.create_app({"MODELS_DIR": models, "VENDOR_DIR": tmp_path}).test_client()
    cache = {}

    def load() -> tuple[dict, bytes]:
        manifest = json.loads(_visit(client, cache, "/models/manifest.json"))
        model = json.loads(_visit(client, cache, "/models/net/model.json"))
        weights = b"".join(_visit(client, cache, f"/models/net/{p}") for p in model["weightsManifest"][0]["paths"])
        return manifest, weights

    manifest, weights = load()
    assert weights == old and manifest["weights_sha256"] == hashlib.sha256(old).hexdigest()
    shard_urls = [u for u in cache if u.endswith(".bin")]
    assert len(shard_urls) == 1 and "immutable" in cache[shard_urls[0]]["cache_control"]
    _export_fake_model(models, new)
    manifest, weights = load()
    assert weights == new and manifest["weights_sha256"] == hashlib.sha256(new).hexdigest()
    assert len([u for u in cache if u.endswith(".bin")]) == 2  # the new shard has a new URL
    assert client.get(shard_urls[0]).status_code == 404  # the old one is gone with the old bundle


def test_main_on_a_port_in_use_says_so_in_one_line(tmp_path, capsys):
    """A taken port: exit 2 and one line naming host:port and what to do (no waitress traceback)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = server.main(["--host", "127.0.0.1", "--port", str(port), "--models", str(tmp_path),
                            "--vendor", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("server.py: error:")]
    assert code == 2 and len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0], err
    assert "Traceback" not in err
