"""The npm package's README recipes, exactly as written, with each bundler (issue 20).

The package (python convert/to_tfjs.py --npm, here from the session's tiny bundle) is packed,
its tarball unpacked into node_modules/ with its dependencies linked from the repo's
node_modules (the same pinned versions; test_npm.py checks `npm install <tarball>`), and for each
recipe of its README "Browser and bundlers" section a project folder gets the recipe's files and
runs its commands (`npx vite|webpack|esbuild` are the repo's pinned devDependencies). The built
apps are served on 127.0.0.1 by a plain static server that answers missing paths with the app's
HTML page (as SPA and dev servers do) and sends no special headers; one headless Chromium opens
each app and its result must equal the Python reference pipeline on the same photo. Also: the
esbuild Node bundle of the README's Node example, the messages for missing models / .wasm files,
an explicit backend that cannot start, and `tsc --noEmit` on the README examples.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from jsharness import (CHROMIUM, CHROMIUM_ARGS, DETECT_SCORE_TOL, KEYPOINT_TOL_PX, LANDMARK_TOL_PX, ROOT, SCORE_TOL_POINTS,
                       serve_handler)
from test_npm import NPM

NODE = shutil.which("node")
BIN = ROOT / "node_modules" / ".bin"
TOOLS = ("vite", "webpack", "esbuild", "tsc")
pytestmark = [pytest.mark.node, pytest.mark.slow]
PACKAGE = "facepack"
RECIPES = {"vite": "Vite", "webpack": "webpack", "esbuild": "esbuild"}  # folder -> README heading
SERVED = {"vite": "dist", "webpack": "dist", "esbuild": "public"}  # what each recipe says to serve
BOX_TOL_PX = 0.5  # each box coordinate, photo pixels (same pixels and models on both sides)
PAGE_TIMEOUT_MS = 120_000


def _require_tools():
    missing = [t for t in TOOLS if not (BIN / t).exists()]
    if NODE is None or NPM is None or missing:
        pytest.fail(f"node/npm or the bundlers {missing} are missing: run `npm ci` in {ROOT} (package.json devDependencies)")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)")


def readme_files(text: str) -> list[tuple[str, str]]:
    """[(path, content)] of the README's code blocks that start with a `// path` or `<!-- path -->` line."""
    out = []
    for m in re.finditer(r"```(?:js|html)\n(?://|<!--) (\S+)(?: -->)?\n(.*?)```", text, re.S):
        out.append((m.group(1), m.group(2)))
    return out


def readme_commands(text: str) -> list[list[str]]:
    """The ```sh lines of a README section, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines += [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.split("#")[0].strip()]
    return lines


def section(text: str, heading: str) -> str:
    m = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^##)", text, re.S | re.M)
    assert m, f"README has no '### {heading}' section"
    return m.group(1)


def run_command(argv: list[str], cwd: Path) -> float:
    """Run one README command in ``cwd`` (npx <bundler>: the repo's pinned one); returns seconds."""
    if argv[:2] == ["npm", "install"]:
        return 0.0  # installed once from the tarball (the bundlers are the repo's devDependencies)
    assert argv[0] == "npx", f"README command not understood: {argv}"
    tool = argv[1]
    exe = cwd / "node_modules" / ".bin" / tool if tool == "facepack-assets" else BIN / tool
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), *argv[2:]], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, f"{' '.join(argv)} failed in {cwd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return time.perf_counter() - t0


def folder_bytes(folder: Path, suffixes=(".js",)) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes)


@pytest.fixture(scope="module")
def package(tiny_bundle, tmp_path_factory):
    """(project folder with the tarball installed, the installed package's README text, timings)."""
    _require_tools()
    from facepack.export.npm import build_npm_package

    root = tmp_path_factory.mktemp("bundlers")
    tarball = build_npm_package(tiny_bundle, root / "dist" / "npm", name=PACKAGE, version="0.0.0", log=None)
    project = root / "installed"
    modules = project / "node_modules"
    t0 = time.perf_counter()
    modules.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(root / "unpacked", filter="data")
    (root / "unpacked" / "package").rename(modules / PACKAGE)
    pkg = json.loads((modules / PACKAGE / "package.json").read_text())
    for dep in pkg["dependencies"]:
        assert (ROOT / "node_modules" / dep).is_dir(), f"{dep} is not in {ROOT / 'node_modules'} (npm ci)"
        (modules / dep).parent.mkdir(parents=True, exist_ok=True)
        if not (modules / dep).exists():
            (modules / dep).symlink_to(ROOT / "node_modules" / dep, target_is_directory=True)
    (modules / "@types").symlink_to(ROOT / "node_modules" / "@types")  # for tsc (types: ["node"])
    (modules / ".bin").mkdir()
    for name, rel in pkg["bin"].items():
        (modules / ".bin" / name).symlink_to(modules / PACKAGE / rel)
    readme = (modules / PACKAGE / "README.md").read_text()
    return {"root": root, "project": project, "readme": readme, "install_s": time.perf_counter() - t0,
            "tarball_mb": tarball.stat().st_size / 1e6}


@pytest.fixture(scope="module")
def apps(package, fixtures_dir):
    """{recipe: {"dir": served folder, "build_s", "js_bytes"}}: each README recipe built as written
    (the three builds run side by side: webpack is mostly single-threaded)."""
    from concurrent.futures import ThreadPoolExecutor

    readme = package["readme"]
    browser = readme[readme.index("## Browser and bundlers"):readme.index("## API")]
    common = readme_files(browser[:browser.index("### Vite")])

    def build(name: str) -> dict:
        app = package["root"] / f"app-{name}"
        app.mkdir()
        (app / "package.json").write_text(json.dumps({"name": f"app-{name}", "private": True}))
        (app / "node_modules").symlink_to(package["project"] / "node_modules", target_is_directory=True)
        text = section(browser, RECIPES[name])
        files = common + readme_files(text)
        commands = readme_commands(text)
        if name == "esbuild":  # the module worker recipe builds on the esbuild one
            worker = section(browser, "Module worker")
            files += readme_files(worker)
            commands += readme_commands(worker)
        for rel, content in files:
            (app / rel).parent.mkdir(parents=True, exist_ok=True)
            (app / rel).write_text(content)
        build_s = sum(run_command(argv, app) for argv in commands)
        served = app / SERVED[name]
        shutil.copy(fixtures_dir / "astronaut.png", served / "photo.jpg")  # PNG bytes: the browser sniffs
        js = folder_bytes(served) - folder_bytes(served / "facepack")
        return {"dir": served, "build_s": build_s, "js_bytes": js}

    with ThreadPoolExecutor(len(RECIPES)) as pool:
        return dict(zip(RECIPES, pool.map(build, RECIPES)))


class _SpaHandler(http.server.SimpleHTTPRequestHandler):
    """Static files; a missing path gets index.html with 200 (what SPA/dev servers do). No special headers."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript", ".mjs": "text/javascript"}

    def log_message(self, *args):
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not path.exists() and not unquote(urlparse(self.path).path).endswith("/"):
            self.path = "/index.html"
        return super().send_head()


@contextlib.contextmanager
def serve(folder: Path):
    handler = lambda *a, **k: _SpaHandler(*a, directory=str(folder), **k)  # noqa: E731
    with serve_handler(handler) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_result(browser, url: str) -> dict:
    """Open ``url``, wait until #out leaves 'working...', return its JSON (or {'error': text})."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function("() => document.querySelector('#out').textContent !== 'working...'", timeout=PAGE_TIMEOUT_MS)
        text = page.inner_text("#out")
        wall = time.perf_counter() - t0
    finally:
        page.close()
    if text.startswith("error: "):
        return {"error": text[len("error: "):], "page_errors": errors}
    result = json.loads(text)
    result["wall_s"] = wall
    return result


@pytest.fixture(scope="module")
def python_faces(untrained_runs, fixtures_dir) -> list:
    from facepack.pipeline import FacePipeline

    pipe = FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"])
    return pipe.analyze(fixtures_dir / "astronaut.png")["faces"]


def assert_faces_match(js_faces: list, py_faces: list):
    assert len(js_faces) == len(py_faces) >= 1
    for js, py in zip(js_faces, py_faces):
        for key in ("x", "y", "width", "height"):
            assert js["box"][key] == pytest.approx(py["box"][key], abs=BOX_TOL_PX), key
        assert js["score"] == pytest.approx(py["score"], abs=DETECT_SCORE_TOL)
        assert js["beauty"]["score"] == pytest.approx(py["beauty"]["score"], abs=SCORE_TOL_POINTS)
        assert js["beauty"]["score_1to5"] == pytest.approx(py["beauty"]["score_1to5"], abs=SCORE_TOL_POINTS / 20)
        np.testing.assert_allclose(js["keypoints"], py["keypoints"], atol=KEYPOINT_TOL_PX)
        for name, point in py["landmarks5"].items():
            np.testing.assert_allclose(js["landmarks5"][name], point, atol=LANDMARK_TOL_PX)


@pytest.fixture(scope="module")
def results(apps, browser) -> dict:
    """{page: result} for every recipe (and the module worker page), one Chromium for all."""
    out = {}
    for name, app in apps.items():
        with serve(app["dir"]) as url:
            out[name] = open_result(browser, f"{url}/")
            if name == "esbuild":
                out["worker"] = open_result(browser, f"{url}/worker.html")
    return out


@pytest.mark.parametrize("page", ["vite", "webpack", "esbuild", "worker"])
def test_recipe_gives_the_python_numbers(results, python_faces, apps, package, page):
    result = results[page]
    assert "error" not in result, result
    assert_faces_match(result["faces"], python_faces)
    # Headless Chromium's WebGL is SwiftShader (software): 'auto' takes WASM and says why.
    assert result["backend"] == "wasm"
    assert "software" in result["reason"] or "no WebGL" in result["reason"], result["reason"]
    app = apps["esbuild" if page == "worker" else page]
    print(f"\n{page}: js {app['js_bytes'] / 1e6:.2f} MB, build {app['build_s']:.1f} s, first result "
          f"{result['ms']} ms in page ({result['wall_s']:.1f} s wall), backend {result['backend']}; "
          f"tarball {package['tarball_mb']:.1f} MB")


def test_browser_bundles_hold_no_node_builtins(apps):
    """No `node:` import reached the browser bundles, and webpack emits no stray asset (issue 20)."""
    assert sorted(p.name for p in apps["webpack"]["dir"].glob("*.js")) == ["main.js"]
    for name, app in apps.items():
        for js in app["dir"].rglob("*.js"):
            if "facepack" in js.relative_to(app["dir"]).parts:
                continue
            text = js.read_text(errors="replace")
            assert not re.search(r"""(?:from|import\()\s*["']node:""", text), f"{name}: {js.name} imports node:"


# --- What goes wrong, said plainly ---------------------------------------------------------------
PROBE_APP = """
import { createFaceAnalyzer, selectBackend } from 'facepack';

const q = new URLSearchParams(location.search);
const config = JSON.parse(q.get('config'));
const show = (text) => { document.querySelector('#out').textContent = text; };
const start = config.modelUrl === '(backend only)'
  ? selectBackend(config.backend ?? 'auto', { wasmPaths: config.wasmPaths })
  : createFaceAnalyzer(config).then((a) => ({ backend: a.backend, reason: a.backendReason }));
start.then((r) => show(JSON.stringify({ backend: r.backend, reason: r.reason }))).catch((err) => show(`error: ${err.message}`));
"""


@pytest.fixture(scope="module")
def probe_url(apps):
    """The esbuild app's folder plus probe.html/probe.js (test-only: createFaceAnalyzer(?config=))."""
    app = apps["esbuild"]["dir"]
    src = app.parent / "src" / "probe.js"
    src.write_text(PROBE_APP)
    run_command(["npx", "esbuild", "src/probe.js", "--bundle", "--format=esm", "--outfile=public/probe.js"], app.parent)
    (app / "probe.html").write_text("<!doctype html><pre id='out'>working...</pre><script type='module' src='probe.js'></script>")
    with serve(app) as url:
        yield f"{url}/probe.html"


def probe(browser, url: str, **config) -> dict:
    return open_result(browser, f"{url}?config={json.dumps(config)}")


def test_models_answered_with_html_name_the_folder_to_copy(browser, probe_url):
    out = probe(browser, probe_url, modelUrl="/nowhere/models/", wasmPaths="/facepack/wasm/")
    assert "HTML page" in out["error"] and "/nowhere/models/manifest.json" in out["error"], out
    assert "models/" in out["error"] and "npx facepack-assets" in out["error"], out


def test_model_url_without_a_server_names_the_url(browser, probe_url):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = probe(browser, probe_url, modelUrl=f"http://127.0.0.1:{port}/models/", wasmPaths="/facepack/wasm/")
    assert f"http://127.0.0.1:{port}/models/manifest.json" in out["error"], out
    assert "no answer from the server" in out["error"] and "modelUrl" in out["error"], out


def test_missing_model_url_says_it_is_required(browser, probe_url):
    out = probe(browser, probe_url, wasmPaths="/facepack/wasm/")
    assert "modelUrl" in out["error"] and "required in a browser" in out["error"], out


def test_explicit_wasm_without_its_files_raises(browser, probe_url):
    out = probe(browser, probe_url, modelUrl="(backend only)", backend="wasm", wasmPaths="/nowhere/")
    assert 'backend "wasm" could not start' in out["error"], out
    assert "HTML page" in out["error"] and "wasmPaths" in out["error"], out


def test_explicit_webgl_is_not_replaced(browser, probe_url):
    out = probe(browser, probe_url, modelUrl="(backend only)", backend="webgl", wasmPaths="/facepack/wasm/")
    assert out.get("backend") == "webgl", out  # SwiftShader WebGL starts: asked for, so used


def test_auto_without_wasm_files_falls_back_to_cpu_and_says_why(browser, probe_url):
    out = probe(browser, probe_url, modelUrl="(backend only)", wasmPaths="/nowhere/")
    assert out.get("backend") == "cpu", out
    assert "skipped wasm" in out["reason"] and "HTML page" in out["reason"], out


# --- Node: the esbuild bundle of the README's Node example -----------------------------------------
def test_esbuild_node_bundle_runs_the_readme_example(package, python_faces, fixtures_dir):
    project = package["project"]
    readme = package["readme"]
    example = re.search(r"## Node\n.*?```js\n(.*?)```", readme, re.S).group(1)
    (project / "example.mjs").write_text(example)
    build, run = readme_commands(section(readme, "Node bundles"))
    run_command(build, project)
    shutil.copy(fixtures_dir / "astronaut.png", project / "photo.jpg")
    assert run[:2] == ["node", "dist/app.mjs"]
    proc = subprocess.run([NODE, *run[1:]], cwd=project, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["backend"] == "wasm"
    assert_faces_match(result["faces"], python_faces)
    assert proc.stdout.startswith("face at (")


GUIDED_ESM = """
import { ACCESSORIES, createFaceAnalyzer, createGuidedExplainer, drawAccessories, readImageFile } from 'facepack';
import { calls, fakeContext } from './fake-context.mjs';
const analyzer = await createFaceAnalyzer();
const image = await readImageFile('photo.png');
const { faces } = await analyzer.analyze(image, { heatmaps: true });
const explainer = await createGuidedExplainer(undefined, { manifest: analyzer.manifest });
const maps = await explainer.explain(image, faces);
explainer.dispose();
drawAccessories(fakeContext, faces, [...ACCESSORIES], analyzer.manifest.spec);
const stats = (m) => { let lo = Infinity, hi = -Infinity; for (const v of m.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return { width: m.width, height: m.height, n: m.data.length, lo, hi }; };
console.log(JSON.stringify({ accessories: ACCESSORIES, faces: faces.map((f) => ({ square: f.heatmap.square, crop: f.heatmap.crop_size })),
  maps: maps.map((m) => ({ square: m.square, crop: m.crop_size, guided: stats(m.guided), guidedGradcam: stats(m.guidedGradcam) })),
  calls, sync: true }));
"""
GUIDED_CJS = """
const facepack = require('facepack');
const { calls, fakeContext } = require('./fake-context.cjs');
(async () => {
  const analyzer = await facepack.createFaceAnalyzer();
  const { faces } = await analyzer.analyzeFile('photo.png');
  const explainer = await facepack.createGuidedExplainer();
  const maps = await explainer.explain(await facepack.readImageFile('photo.png'), faces);
  explainer.dispose();
  await facepack.drawAccessories(fakeContext, faces, ['sunglasses', 'hat'], analyzer.manifest.spec);
  console.log(JSON.stringify({ faces: faces.length, maps: maps.map((m) => [m.square, m.guided.width]), calls }));
})();
"""
# A 2D context that records drawAccessories' calls (Node has no canvas; Path2D is stubbed).
FAKE_CONTEXT = """
globalThis.Path2D = class Path2D { constructor(d) { this.d = d; } };
const calls = { save: 0, restore: 0, transform: [], fill: 0 };
const fakeContext = { fillStyle: null, save() { calls.save += 1; }, restore() { calls.restore += 1; },
  transform(...m) { calls.transform.push(m); }, fill(path) { if (path instanceof Path2D) calls.fill += 1; } };
"""
GUIDED_MAX_TOL = 1e-6  # a map's maximum after the 99th-percentile scaling and clipping: 1 (float32)


def test_guided_and_accessories_from_the_package(package, fixtures_dir):
    """createGuidedExplainer and drawAccessories (and ACCESSORIES) come from the built package's
    entry under import and require: guided maps over the same squares as analyze()'s Grad-CAM,
    0..1 with the 99th percentile at 1; every accessory drawn on every face."""
    project = package["project"] / "guided"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "g", "private": True}))
    (project / "node_modules").symlink_to(package["project"] / "node_modules", target_is_directory=True)
    shutil.copy(fixtures_dir / "astronaut.png", project / "photo.png")
    (project / "fake-context.mjs").write_text(FAKE_CONTEXT + "export { calls, fakeContext };\n")
    (project / "fake-context.cjs").write_text(FAKE_CONTEXT + "module.exports = { calls, fakeContext };\n")
    (project / "esm.mjs").write_text(GUIDED_ESM)
    (project / "cjs.cjs").write_text(GUIDED_CJS)
    out = {}
    for script in ("esm.mjs", "cjs.cjs"):
        proc = subprocess.run([NODE, script], cwd=project, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (script, proc.stderr[-3000:])
        out[script] = json.loads(proc.stdout.splitlines()[-1])
    esm, cjs = out["esm.mjs"], out["cjs.cjs"]
    assert esm["accessories"] == ["sunglasses", "hat"]
    assert len(esm["faces"]) == 1 and len(esm["maps"]) == 1
    for face, m in zip(esm["faces"], esm["maps"]):
        assert m["square"] == face["square"] and m["crop"] == face["crop"]
        for key in ("guided", "guidedGradcam"):
            st = m[key]
            assert st["width"] == st["height"] == m["crop"] and st["n"] == m["crop"] ** 2
            assert st["lo"] >= 0 and abs(st["hi"] - 1) <= GUIDED_MAX_TOL, (key, st)
    for result, n_faces in ((esm, len(esm["faces"])), (cjs, cjs["faces"])):
        calls = result["calls"]
        assert len(calls["transform"]) == calls["save"] == calls["restore"] == 2 * n_faces  # sunglasses + hat per face
        assert calls["fill"] > 2 * n_faces  # each accessory is several paths
    assert cjs["maps"] == [[m["square"], m["crop"]] for m in esm["maps"]]


# --- Types --------------------------------------------------------------------------------------
TS_CHECKS = """
import { ACCESSORIES, MODEL_SPECS, createFaceAnalyzer, createGuidedExplainer, drawAccessories, loadModel, type Face,
  type ImageInput } from 'facepack';

const name: 'x' extends typeof MODEL_SPECS.keypoints.inputs[0]['name'] ? never : string = MODEL_SPECS.keypoints.inputs[0].name;
const shape: readonly [null, 96, 96, 3] = MODEL_SPECS.keypoints.inputs[0].shape;
async function check(face: Face, input: ImageInput) {
  const analyzer = await createFaceAnalyzer();
  const score: number | undefined = face.beauty?.score_1to5;
  const r = await analyzer.analyze(input, { maxFaces: 1 });
  const file = await analyzer.analyzeFile('photo.jpg');
  // @ts-expect-error: not an image
  await analyzer.analyze('photo.jpg');
  // @ts-expect-error: unknown option
  await analyzer.analyze(input, { maxFace: 1 });
  // @ts-expect-error: no such model in this package
  await loadModel('nope');
  const net = await loadModel('keypoints');
  const smiling: boolean | undefined = face.attributes?.Smiling?.on;
  const pnet = analyzer.modelSets.detector.pnet.entry.input_size;
  const explainer = await createGuidedExplainer(undefined, { manifest: analyzer.manifest, models: analyzer.modelSets.beauty });
  const maps = await explainer.explain(input, r.faces);
  const side: number = maps[0].guidedGradcam.width + maps[0].square.side;
  explainer.dispose();
  const ctx = new OffscreenCanvas(8, 8).getContext('2d')!;
  drawAccessories(ctx, r.faces, [...ACCESSORIES], analyzer.manifest.spec);
  // @ts-expect-error: no such accessory
  drawAccessories(ctx, r.faces, ['monocle'], analyzer.manifest.spec);
  return [score, r.faces.length, file.backend, net.inputs[0].shape, name, shape, smiling, pnet, side];
}
check;
"""
CJS_CHECK = """
import facepack = require('facepack');
facepack.createFaceAnalyzer().then((a) => a.analyzeFile('photo.jpg')).then((r) => r.faces.map((f) => f.beauty?.score_1to5));
const dir: string = facepack.MODELS_DIR;
dir;
facepack.createGuidedExplainer().then((e) => e.explain({ data: new Uint8Array(12), width: 2, height: 2 }, []));
const drawn: Promise<void> = facepack.drawAccessories(new OffscreenCanvas(8, 8).getContext('2d')!, [], ['hat'], {});
drawn;
"""


def test_readme_examples_type_check(package):
    """tsc --noEmit (strict, skipLibCheck) on the README's examples as JS with checkJs, plus typed
    model specs, an ESM and a CommonJS TypeScript file against the package's .d.ts files."""
    project = package["project"]
    check = project / "typecheck"
    check.mkdir()
    readme = package["readme"]
    blocks = re.findall(r"```js\n(.*?)```", readme, re.S)
    (check / "example.mjs").write_text(blocks[0])
    (check / "models.mjs").write_text(re.search(r"// models\.mjs.*?(?=```)", readme, re.S).group(0))
    browser = readme[readme.index("## Browser and bundlers"):readme.index("## API")]
    for rel, content in readme_files(browser):
        if rel == "src/main.js":  # (the worker's globals are not the DOM's)
            (check / Path(rel).name.replace(".js", ".browser.js")).write_text(content)
    (check / "checks.mts").write_text(TS_CHECKS)
    (check / "require.cts").write_text(CJS_CHECK)
    (check / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "strict": True, "noEmit": True, "skipLibCheck": True, "allowJs": True, "checkJs": True,
        "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "lib": ["es2022", "dom"],
        "types": ["node"]}, "include": ["*.mjs", "*.js", "*.mts", "*.cts"]}))
    proc = subprocess.run([str(BIN / "tsc"), "-p", "."], cwd=check, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# --- 'auto' decides by renderer (the measured path needs a GPU this box lacks) -----------------------
AUTO_PLANS = [  # (node, renderer) -> order tried, and whether WebGL and WASM are timed first
    ((True, None), ["wasm", "cpu"], False),
    ((False, None), ["wasm", "cpu"], False),
    ((False, "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)"),
     ["wasm", "cpu"], False),
    ((False, "llvmpipe (LLVM 15.0.6, 256 bits)"), ["wasm", "cpu"], False),
    ((False, "ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0)"), ["webgl", "wasm", "cpu"], True),
]


def test_auto_plan_prefers_wasm_over_software_webgl():
    script = ("import { autoPlan } from './static/facepack/backend.js';"
              f"const cases = {json.dumps([list(c[0]) for c in AUTO_PLANS])};"
              "console.log(JSON.stringify(cases.map(([node, renderer]) => autoPlan({ node, renderer }))));")
    proc = subprocess.run([NODE, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for (env, order, measure), plan in zip(AUTO_PLANS, json.loads(proc.stdout)):
        assert plan["order"] == order and plan["measure"] is measure, (env, plan)
        assert plan["reason"]


def test_option_types_list_the_runtime_keys():
    """types.d.cts ModelConfig / AnalyzeOptions name exactly the keys lib/options.js accepts."""
    script = ("import { ANALYZE_DEFAULTS, MODEL_CONFIG_DEFAULTS } from './static/facepack/options.js';"
              "console.log(JSON.stringify([Object.keys(MODEL_CONFIG_DEFAULTS), Object.keys(ANALYZE_DEFAULTS)]));")
    proc = subprocess.run([NODE, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runtime = json.loads(proc.stdout)
    types = (ROOT / "npm" / "types.d.cts").read_text()
    for interface, keys in zip(("ModelConfig", "AnalyzeOptions"), runtime):
        body = re.search(rf"export interface {interface} {{(.*?)\n}}", types, re.S).group(1)
        assert sorted(re.findall(r"^  (\w+)\?:", body, re.M)) == sorted(keys), interface
