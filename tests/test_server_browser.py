"""A returning visitor in headless Chromium gets a re-export's weights with its metadata.

The real server (waitress, server.py's cache headers) serves a bundle written the exporter's way
(content-named shards, atomic swap); Chromium's own HTTP cache holds the first visit's files.
After a re-export with other weights, the second visit must compute the sha256 the new manifest
names. With the old rule (every .bin immutable under a fixed name) the same check returns the
OLD weights with the NEW manifest (the issue's bug): the test runs both.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

import server
from facepack.export.bundle import atomic_replace
from facepack.export.tfjs_io import hash_shard_names

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update"]
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (Debian's chromium package; "
                                                                 "`bash scripts/setup.sh --test` installs it)")]
OLD_WEIGHTS, NEW_WEIGHTS = b"\x01" * 4096, b"\x02" * 4096
# what the page does: manifest, then model.json, then the shards model.json names (static/facepack/io.js)
LOAD_JS = """async () => {
  const manifest = await (await fetch('/models/manifest.json')).json();
  const modelJson = await (await fetch('/models/net/model.json')).json();
  const path = modelJson.weightsManifest[0].paths[0];
  const weights = await (await fetch('/models/net/' + path)).arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', weights));
  return {manifest: manifest.weights_sha256, weights: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')};
}"""


def export(models: Path, weights: bytes, content_named: bool) -> None:
    with atomic_replace(models) as tmp:
        (tmp / "net").mkdir()
        (tmp / "net" / "group1-shard1of1.bin").write_bytes(weights)
        (tmp / "net" / "model.json").write_text(json.dumps(
            {"format": "layers-model", "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": []}]}))
        if content_named:
            hash_shard_names(tmp / "net")
        (tmp / "manifest.json").write_text(json.dumps({"weights_sha256": hashlib.sha256(weights).hexdigest()}))


def visits(browser, models: Path, content_named: bool) -> list[dict]:
    """Two visits in one fresh browser context (one HTTP cache), a re-export between them."""
    import waitress

    export(models, OLD_WEIGHTS, content_named)
    srv = waitress.create_server(server.create_app({"MODELS_DIR": models}), host="127.0.0.1", port=0,
                                 **server.waitress_options(threads=2))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{srv.socket.getsockname()[1]}/api/status"  # any page of the origin
    context = browser.new_context()
    try:
        seen = []
        for weights in (OLD_WEIGHTS, NEW_WEIGHTS):
            if weights is NEW_WEIGHTS:
                export(models, weights, content_named)
            page = context.new_page()
            page.goto(url)
            seen.append(page.evaluate(LOAD_JS))
            page.close()
        return seen
    finally:
        context.close()
        srv.close()  # the daemon thread ends once Chromium's keep-alive sockets close


def test_a_re_export_reaches_a_returning_visitor(tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    old_sha, new_sha = hashlib.sha256(OLD_WEIGHTS).hexdigest(), hashlib.sha256(NEW_WEIGHTS).hexdigest()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        first, second = visits(browser, tmp_path / "hashed" / "models", content_named=True)
        assert first == {"manifest": old_sha, "weights": old_sha}
        assert second == {"manifest": new_sha, "weights": new_sha}
        # the control: fixed shard names, all .bin immutable (before) -> old weights, new metadata
        monkeypatch.setattr(server, "cache_control", lambda path: server.CACHE_IMMUTABLE
                            if str(path).endswith(".bin") else server.CACHE_REVALIDATE)
        first, second = visits(browser, tmp_path / "fixed" / "models", content_named=False)
        browser.close()
        assert first == {"manifest": old_sha, "weights": old_sha}
        assert second == {"manifest": new_sha, "weights": old_sha}
