"""Exported models give the Keras outputs in TF.js (Node: WASM and pure-JS CPU backends).

Every backbone the trainer offers is converted at a small input size with BatchNorm statistics
calibrated on images (so activations keep their scale and a wrong layer would show), then run
in Node through static/facepack/generic.js (facepack/export/node_check.mjs), and on WebGL in
headless Chromium (SwiftShader) through the same library.
"""

import numpy as np
import pytest

from export_support import NODE, calibrated_run, run_node
from facepack.export import build_bundle
from facepack.export.mtcnn_nets import package_forward
from facepack.export.sources import image_probe
from facepack.models.beauty import BACKBONES

pytestmark = [pytest.mark.node, pytest.mark.slow,
              pytest.mark.skipif(NODE is None, reason="node is not installed")]

SIZE_PX = 64  # small input: fast, and still exercises every layer type
NODE_BACKENDS = ["wasm", "cpu"]
PROB_TOL = 1e-5  # softmax outputs (beauty probs, MTCNN probs)
REL_TOL = 1e-3  # other outputs, relative to max |reference|


def assert_close(got, ref, what):
    ref = np.asarray(ref, np.float64)
    tol = max(PROB_TOL, REL_TOL * float(np.abs(ref).max()))
    diff = float(np.abs(np.asarray(got, np.float64) - ref).max())
    assert got.shape == ref.shape, what
    print(f"{what}: max abs diff {diff:.3g} (scale {np.abs(ref).max():.3g})")
    assert diff <= tol, f"{what}: max abs diff {diff:.3g} > {tol:.3g}"


# The session's untrained runs (conftest.untrained_runs: calibrated, seed 0) and their float32 bundle
# (tiny_bundle) are the beauty backbone and keypoint backbone below: they are not built twice.
SESSION_BEAUTY_BACKBONE = "mobilenet_v2"
SESSION_KEYPOINT_BACKBONE = "kpnet"


def _session_run(untrained_runs, tiny_bundle, kind: str, backbone: str, input_size: int | None = None):
    """(tiny_bundle, Keras model) of the session's ``kind`` run, checked to be ``backbone`` at ``input_size``."""
    import json

    import keras

    from facepack.runs import load_run

    info = json.loads((untrained_runs[kind] / "run.json").read_text())
    assert info["backbone"] == backbone and input_size in (None, info["input_size"]), info
    return tiny_bundle, load_run(untrained_runs[kind], keras)[0]


@pytest.fixture(scope="module")
def backbone_bundles(tmp_path_factory, untrained_runs, tiny_bundle):
    """{backbone: (bundle dir, Keras 3 model)} for every beauty backbone, calibrated."""
    import keras

    from facepack.runs import load_run

    out = {SESSION_BEAUTY_BACKBONE: _session_run(untrained_runs, tiny_bundle, "beauty", SESSION_BEAUTY_BACKBONE, SIZE_PX)}
    for backbone in sorted(set(BACKBONES) - set(out)):
        root = tmp_path_factory.mktemp(backbone)
        run = calibrated_run("beauty", root / "run", backbone=backbone, input_size=SIZE_PX)
        bundle = root / "models"
        build_bundle(bundle, beauty_run=run, models=["beauty"], log=None)
        out[backbone] = (bundle, load_run(run, keras)[0])
    return out


@pytest.fixture(scope="module")
def node_runs(backbone_bundles, keypoint_bundles, tmp_path_factory):
    """Every bundle's probes on every Node backend, in ONE Node process (NodeSession; a process per
    bundle and backend cost ~2 s each): {key: (Keras references, {backend: rows})}, key = the beauty
    backbone or "kp_" + the keypoint backbone; a row is the outputs, or the NodeRunError of that request."""
    import keras

    from facepack.export.node_check import NodeSession
    from facepack.models.beauty import split_for_gradcam

    work = tmp_path_factory.mktemp("node")
    out = {}
    with NodeSession(NODE_BACKENDS) as session:
        for backbone, (bundle, model) in backbone_bundles.items():
            features, _ = split_for_gradcam(keras, model)
            x = image_probe(SIZE_PX, SIZE_PX, seed=11, batch=2)
            fmap = np.asarray(features(x))
            refs = {"feature map": fmap, "probs": np.asarray(model(x))}
            out[backbone] = (refs, session.run(bundle, [("beauty_features", x), ("beauty_head", fmap)], work / backbone))
        kx = image_probe(96, 96, seed=3)
        for backbone, (bundle, model) in keypoint_bundles.items():
            refs = {"keypoints": np.asarray(model(kx))}
            out[f"kp_{backbone}"] = (refs, session.run(bundle, [("keypoints", kx)], work / f"kp_{backbone}"))
    return out


def _node_outputs(node_runs, key: str, backend: str) -> tuple[dict, list]:
    """(references, outputs per request) of ``key`` on ``backend``; RuntimeError with TF.js' message
    when a request failed there (as export_support.run_node)."""
    refs, results = node_runs[key]
    rows = results[backend]
    for name, row in zip(refs, rows):
        if isinstance(row, Exception):
            raise RuntimeError(f"TF.js ({backend}, Node) could not run {key}'s {name}: {row}")
    return refs, rows


@pytest.mark.parametrize("backend", NODE_BACKENDS)
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_beauty_backbone_equal_in_tfjs(node_runs, backbone, backend):
    refs, ((got_fmap,), (got_probs,)) = _node_outputs(node_runs, backbone, backend)
    assert np.abs(refs["feature map"]).max() > 1.0, "calibration failed: activations vanished, the test would be vacuous"
    assert_close(got_fmap, refs["feature map"], f"{backbone}/{backend} feature map")
    assert_close(got_probs, refs["probs"], f"{backbone}/{backend} probs")


@pytest.fixture(scope="module")
def keypoint_bundles(tmp_path_factory, untrained_runs, tiny_bundle):
    """{backbone: (bundle dir, Keras 3 model)} of calibrated keypoint models, every backbone."""
    import keras

    from facepack.models.keypoints import BACKBONES as KP_BACKBONES
    from facepack.runs import load_run

    out = {SESSION_KEYPOINT_BACKBONE: _session_run(untrained_runs, tiny_bundle, "keypoints", SESSION_KEYPOINT_BACKBONE)}
    for backbone in sorted(set(KP_BACKBONES) - set(out)):
        root = tmp_path_factory.mktemp(f"kp_{backbone}")
        run = calibrated_run("keypoints", root / "run", backbone=backbone)
        build_bundle(root / "models", keypoints_run=run, models=["keypoints"], log=None)
        out[backbone] = (root / "models", load_run(run, keras)[0])
    return out


@pytest.mark.parametrize("backend", NODE_BACKENDS)
@pytest.mark.parametrize("backbone", ["kpnet", "mobilenet_v2"])
def test_keypoints_equal_in_tfjs(node_runs, backbone, backend):
    refs, ((got,),) = _node_outputs(node_runs, f"kp_{backbone}", backend)
    assert np.abs(refs["keypoints"]).max() > 0.1, "calibration failed: outputs vanished, the test would be vacuous"
    assert_close(got, refs["keypoints"], f"keypoints {backbone}/{backend}")


@pytest.mark.parametrize("backend", NODE_BACKENDS)
def test_mtcnn_equal_to_package_in_tfjs(tiny_bundle, backend, tmp_path):
    nets = {"mtcnn_pnet": image_probe(53, 71, seed=4), "mtcnn_rnet": image_probe(24, 24, seed=5, batch=5),
            "mtcnn_onet": image_probe(48, 48, seed=6, batch=3)}
    got = run_node(tiny_bundle, backend, list(nets.items()), tmp_path)
    for (name, x), outs in zip(nets.items(), got):
        ref = package_forward(name.split("_")[1], x)
        assert len(outs) == len(ref)
        for k, (g, r) in enumerate(zip(outs, ref)):
            assert_close(g, r, f"{name}[{k}]/{backend}")



# --- the same models in headless Chromium on WebGL (SwiftShader) -------------------------------------

# WASM and CPU run the same TF.js kernels in Node (tests above); the browser adds WebGL.
BROWSER_BACKENDS = ["webgl"]
PAGE_JS = """
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '/facepack/backend.js';
import { load } from '/facepack/generic.js';

window.runCase = async (backend, bundleUrl, name, inputUrl, shape) => {
  const active = await useBackend(backend);
  const data = new Float32Array(await (await fetch(inputUrl)).arrayBuffer());
  const net = await load(bundleUrl, name);
  const out = net.predict({ data, shape });
  const outs = Array.isArray(out) ? out : [out];
  const result = { backend: active, shapes: outs.map((t) => t.shape), outputs: [] };
  for (const t of outs) result.outputs.push(Array.from(await t.data()));
  tf.dispose(outs);
  net.dispose();
  return result;
};
window.pageReady = true;
"""


def test_all_models_equal_in_browser_webgl(backbone_bundles, keypoint_bundles, tiny_bundle, tmp_path):
    """Every backbone, the keypoint model and the MTCNN nets on WebGL in Chromium."""
    import keras

    from jsharness import chromium_page, chromium_ready, page_html, static_server, wait_for_global

    ok, why = chromium_ready()
    if not ok:
        pytest.skip(why)
    from facepack.models.beauty import split_for_gradcam

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    routes = {"/inputs/": inputs, "/bundles/tiny/": tiny_bundle}
    cases = []  # (bundle key, model name, input, expected outputs)

    def add(key, name, x, expected):
        path = inputs / f"{len(cases)}.f32"
        np.ascontiguousarray(x, "<f4").tofile(path)
        cases.append((key, name, path.name, list(x.shape), expected))

    for backbone, (bundle, model) in backbone_bundles.items():
        routes[f"/bundles/{backbone}/"] = bundle
        features, _ = split_for_gradcam(keras, model)
        x = image_probe(SIZE_PX, SIZE_PX, seed=21)
        fmap = np.asarray(features(x))
        add(backbone, "beauty_features", x, [fmap])
        add(backbone, "beauty_head", fmap, [np.asarray(model(x))])
    kx = image_probe(96, 96, seed=22)
    for backbone, (bundle, model) in keypoint_bundles.items():
        routes[f"/bundles/kp_{backbone}/"] = bundle
        add(f"kp_{backbone}", "keypoints", kx, [np.asarray(model(kx))])
    for net, (h, w, n) in {"pnet": (41, 33, 2), "rnet": (24, 24, 4), "onet": (48, 48, 3)}.items():
        x = image_probe(h, w, seed=23, batch=n)
        add("tiny", f"mtcnn_{net}", x, package_forward(net, x))

    with static_server(routes, pages={"/export.html": page_html(PAGE_JS)}) as base, \
            chromium_page(f"{base}/export.html", webgl=True) as page:
        wait_for_global(page, "pageReady")
        for backend in BROWSER_BACKENDS:
            for key, name, file, shape, expected in cases:
                res = page.evaluate("([b, u, n, i, s]) => window.runCase(b, u, n, i, s)",
                                    [backend, f"{base}/bundles/{key}/", name, f"{base}/inputs/{file}", shape])
                assert res["backend"] == backend, res["backend"]
                assert len(res["outputs"]) == len(expected)
                for k, (vals, shp, ref) in enumerate(zip(res["outputs"], res["shapes"], expected)):
                    assert_close(np.asarray(vals, np.float32).reshape(shp), ref, f"{key}/{name}[{k}]/{backend} (browser)")
        assert not [e for e in page.errors if "error" in e.lower()], page.errors
