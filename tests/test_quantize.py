"""facepack/export/quantize.py: TF.js' uint8 grid, GPTQ rounding, equalisation, and the shipped
beauty model's uint8 bundle (issue 13: <= 4.5 MB, score within 0.3 points of float in TF.js: the
real measure is bench/bench_quantize.py on the 660 held-out faces; the score test here runs on the
calibration faces, a regression guard only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facepack.export import quantize as qz
from facepack.export.tfjs_io import tfjs_module

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_BEAUTY = ROOT / "models" / "shipped" / "beauty"
# Issue 13's targets for the uint8 beauty model (beauty_features + beauty_head files).
UINT8_BEAUTY_MAX_BYTES = 4_500_000
SCORE_TOL_POINTS = 0.3  # |uint8 TF.js score - Keras float score|, points on 0..100
# GPTQ must beat nearest rounding on the layer's own objective ||(W_q - W) X|| by this factor
# (measured 0.68 dense, 0.87 depthwise on these seeded problems).
GPTQ_GAIN_MAX = 0.9
EQUALISE_TOL = 1e-4  # max |equalised - original| output of a conv->BN model, relative to max |output|
JS_CHECK_CROPS = 12  # jittered fixture crops scored in JS (seed != the calibration's)


def _tfjs_levels_written(w):
    """(levels, dequantised) as tensorflowjs.quantization.quantize_weights writes float32 ``w``."""
    quant = tfjs_module("quantization")
    q, meta = quant.quantize_weights(np.asarray(w, np.float32), np.uint8)
    return q, quant.dequantize_weights(q, meta, np.float32)


@pytest.mark.parametrize("lo,hi", [(-0.7, 0.3), (-2.0, -0.5), (0.1, 0.9), (-1e-3, 5.0)])
def test_grid_is_the_one_tfjs_picks_and_written_levels_survive(lo, hi):
    rng = np.random.default_rng(0)
    w = rng.uniform(lo, hi, (40, 30)).astype(np.float32)
    grid = qz.Grid(w)
    q_tfjs, _ = _tfjs_levels_written(w)
    np.testing.assert_array_equal(qz.tfjs_levels(w), q_tfjs)
    np.testing.assert_array_equal(grid.levels(w).astype(np.uint8), q_tfjs)
    # any levels that use 0 and 255 come back unchanged from TF.js' quantiser
    q = rng.integers(0, 256, w.shape).astype(np.uint8)
    q.flat[3], q.flat[7] = 0, 255
    written = grid.written(q)
    assert qz.on_tfjs_grid(written, q)
    np.testing.assert_array_equal(_tfjs_levels_written(written)[0], q)
    # without the extremes the grid TF.js picks is another one: on_tfjs_grid says so
    assert not qz.on_tfjs_grid(grid.written(np.clip(q, 1, 254)), np.clip(q, 1, 254))


def test_gptq_beats_nearest_rounding_on_the_layer_objective():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 48)) @ rng.normal(size=(48, 48)) * 0.3  # correlated inputs
    w = rng.normal(size=(24, 48)).astype(np.float32)
    grid = qz.Grid(w)
    q = qz.gptq_levels(w, x.T @ x, grid, qz._pins(w))
    assert q.min() == 0 and q.max() == 255 and qz.on_tfjs_grid(grid.written(q.astype(np.uint8)), q.astype(np.uint8))
    err = lambda v: np.linalg.norm(x @ (v - w).T)  # noqa: E731
    assert err(grid.written(q.astype(np.uint8))) < GPTQ_GAIN_MAX * err(_tfjs_levels_written(w)[1])
    # depthwise: one problem per channel over its k*k taps, batched
    c, k = 16, 9
    patches = rng.normal(size=(c, 3000, k)) + rng.normal(size=(c, 3000, 1))
    wd = rng.normal(size=(c, 1, k)).astype(np.float32)
    gd = qz.Grid(wd)
    qd = qz.gptq_levels(wd, patches.transpose(0, 2, 1) @ patches, gd, qz._pins(wd))
    errd = lambda v: np.linalg.norm(np.einsum("cnk,cok->cno", patches, v - wd))  # noqa: E731
    assert errd(gd.written(qd.astype(np.uint8))) < GPTQ_GAIN_MAX * errd(_tfjs_levels_written(wd)[1])


def test_equalise_keeps_the_function_and_evens_channel_ranges():
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((12, 12, 8))
    x = tf_keras.layers.Conv2D(16, 1, use_bias=False, name="c1")(inp)
    x = tf_keras.layers.BatchNormalization(name="bn1")(x)
    x = tf_keras.layers.ReLU()(x)
    x = tf_keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = tf_keras.layers.BatchNormalization(name="bn2")(x)
    shared = tf_keras.layers.Conv2D(4, 1, use_bias=False, name="shared")(x)  # feeds a BN and an add
    y = tf_keras.layers.BatchNormalization(name="bn3")(shared)
    model = tf_keras.Model(inp, tf_keras.layers.Add()([y, shared]))
    rng = np.random.default_rng(2)
    for layer in model.layers:  # uneven channels and non-trivial BN statistics
        if layer.name in ("c1", "dw"):
            k = layer.get_weights()[0]
            layer.set_weights([k * rng.uniform(0.05, 3.0, k.shape[-2 if layer.name == "dw" else -1]).reshape(
                [-1, 1] if layer.name == "dw" else [-1])])
        if layer.name.startswith("bn"):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), rng.uniform(0.5, 2, n)])
    xs = rng.uniform(-1, 1, (4, 12, 12, 8)).astype(np.float32)
    before = model(xs).numpy()
    assert [(c.name, b.name) for c, b, _ in qz.conv_bn_pairs(model)] == [("c1", "bn1"), ("dw", "bn2")]
    assert qz.equalise(model) == 2
    after = model(xs).numpy()
    assert np.abs(after - before).max() <= EQUALISE_TOL * np.abs(before).max()
    ranges = np.abs(model.get_layer("c1").kernel.numpy()).max(axis=(0, 1, 2))
    np.testing.assert_allclose(ranges, ranges.max(), rtol=1e-6)


def test_fixture_calibration_is_deterministic_and_in_range():
    a = qz.fixture_calibration(64, count=6)
    b = qz.fixture_calibration(64, count=6)
    assert a.shape == (6, 64, 64, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 255 and a.std() > 20  # real image content, not a flat fill


def test_read_plan_none_without_file_and_rejects_another_rule_or_version(tmp_path):
    assert qz.read_plan(tmp_path) is None and qz.read_plan(None) is None
    plan = {"version": qz.PLAN_VERSION, "rule": qz.RULE_NAME, "float16": [], "chosen": {"on": "x"}}
    (tmp_path / qz.PLAN_FILE).write_text(json.dumps(plan))
    assert qz.read_plan(tmp_path) == plan
    for bad in ({"version": qz.PLAN_VERSION + 1}, {"rule": "minmax"}):
        (tmp_path / qz.PLAN_FILE).write_text(json.dumps({**plan, **bad}))
        with pytest.raises(ValueError, match="--plan"):
            qz.read_plan(tmp_path)


@pytest.fixture(scope="module")
def shipped_uint8_beauty(tmp_path_factory):
    """The shipped beauty model exported with --quantize uint8 (manifest, folder)."""
    from facepack.export import build_bundle

    if not (SHIPPED_BEAUTY / "run.json").is_file():
        pytest.fail(f"{SHIPPED_BEAUTY} is missing: the shipped beauty model is part of the repository")
    out = tmp_path_factory.mktemp("uint8") / "models"
    manifest = build_bundle(out, beauty_run=SHIPPED_BEAUTY, models=["beauty"], quantize="uint8", log=None)
    return manifest, out


def test_shipped_uint8_beauty_bundle_is_on_grid_and_within_size(shipped_uint8_beauty):
    from facepack.export.tfjs_io import read_layers_weights

    manifest, out = shipped_uint8_beauty
    models = manifest["models"]
    assert sum(f["bytes"] for m in ("beauty_features", "beauty_head") for f in models[m]["files"]) <= UINT8_BEAUTY_MAX_BYTES
    on_grid = 0
    for name in ("beauty_features", "beauty_head"):
        rule = models[name]["quantization"]
        assert rule["rule"] == qz.RULE_NAME and models[name]["precision"] == "uint8"
        specs = {w["name"]: w for g in json.loads((out / name / "model.json").read_text())["weightsManifest"]
                 for w in g["weights"]}
        levels = read_layers_weights(out / name, dequantize=False)
        values = read_layers_weights(out / name)
        for weight in rule["float16"]:
            assert specs[weight]["quantization"]["dtype"] == "float16"
        for weight in rule["on_grid"]:  # the stored integers are the ones TF.js' quantiser picks again
            assert specs[weight]["quantization"]["dtype"] == "uint8"
            assert levels[weight].min() == 0 and levels[weight].max() == 255
            np.testing.assert_array_equal(qz.tfjs_levels(values[weight]), levels[weight])
            on_grid += 1
    assert on_grid >= 10  # most kernels are uint8 (the float16 ones fit the size budget)
    # the float16 kernels are the ones the run's plan chose on its training faces, and the manifest says so
    plan = qz.read_plan(SHIPPED_BEAUTY)
    if plan is None:
        pytest.fail(f"{SHIPPED_BEAUTY / qz.PLAN_FILE} is missing: `python -m facepack.export.quantize --plan` writes it")
    written = [w for name in ("beauty_features", "beauty_head") for w in models[name]["quantization"]["float16"]]
    assert written == plan["float16"]
    assert [models[name]["quantization"]["float16_source"] for name in ("beauty_features", "beauty_head")] == [qz.PLAN_FILE] * 2
    assert plan["measured"]["max_points"] <= SCORE_TOL_POINTS  # on training faces the choice was not made on


def test_shipped_uint8_beauty_score_on_calibration_faces_in_node(shipped_uint8_beauty, tmp_path):
    """In-calibration regression guard: TF.js (Node, WASM) on the uint8 bundle vs the Keras float
    model, on the page's crops of the three fixture faces + jittered crops with another seed than
    the rule's. These are the SAME faces the GPTQ rounding is calibrated on (quantize.FIXTURE_FACES),
    so passing says nothing about unseen faces (review #4): tests/fixtures holds no other face, and
    mirrored / rescaled / shifted crops are already in the calibration's augmentation. Unseen faces:
    bench/bench_quantize.py on the 660 held-out faces (commit 014893a: max 0.258, mean 0.045 points)."""
    from jsharness import node_ready, run_node

    from facepack.models.beauty import expected_score
    from facepack.runs import load_run

    ok, why = node_ready()
    if not ok:
        pytest.fail(why)
    _, out = shipped_uint8_beauty
    model, _ = load_run(SHIPPED_BEAUTY)
    size = int(model.input_shape[1])
    crops = np.concatenate([qz.fixture_calibration(size, count=3, seed=1, jitter=False),
                            qz.fixture_calibration(size, count=JS_CHECK_CROPS, seed=1)])
    ref = expected_score(model.predict(crops, verbose=0))
    path = tmp_path / "crops.f32"
    crops.astype("<f4").tofile(path)
    js = run_node("beauty_scores.mjs", {"bundles": [str(out)], "crops": str(path), "n": len(crops), "size": size})
    got = np.asarray(js["scores"][str(out)])
    change = np.abs(got - ref)
    assert change.max() <= SCORE_TOL_POINTS, f"uint8 score change {change.round(3).tolist()} points"
