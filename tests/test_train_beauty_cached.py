"""The shipped beauty model is what training/train_beauty_cached.py's defaults make, and its recipe's
5-fold cross-validation (models/shipped/beauty/cv.json) meets issue 13's target (JSON only, no training)."""

import json

import pytest

from facepack import runs
from training import train_beauty_cached as T

BEAUTY = runs.SHIPPED_ROOT / "beauty"
CV_TARGET_PC = 0.88  # issue 13: mean Pearson correlation over the 5 folds inside the 3,300-image split
RECIPE_KEYS = tuple(T.DEFAULTS)  # every hyperparameter of the recipe, the seed included


@pytest.fixture(scope="module")
def shipped():
    return (json.loads((BEAUTY / "run.json").read_text()), json.loads((BEAUTY / "cv.json").read_text()))


def test_defaults_are_the_shipped_recipe(shipped):
    """`train_beauty_cached.py --data D --cv-all` with no other flag re-runs the shipped CV."""
    info, cv = shipped
    for key in RECIPE_KEYS:
        assert info["args"][key] == T.DEFAULTS[key], f"run.json args {key}={info['args'][key]!r}, DEFAULTS {T.DEFAULTS[key]!r}"
        assert cv["config"][key] == T.DEFAULTS[key], f"cv.json config {key}={cv['config'][key]!r}, DEFAULTS {T.DEFAULTS[key]!r}"
    assert info["frozen"]["until_block"] == T.DEFAULTS["freeze_until"]
    assert info["args"]["trainer"] == cv["config"]["trainer"] == "train_beauty_cached.py"


def test_shipped_cv_meets_the_issue_target_and_contains_the_shipped_model(shipped):
    info, cv = shipped
    pcs = cv["calibrated"]["pc"]["folds"]
    assert cv["folds"] == list(range(1, T.CV_FOLDS + 1)) and len(pcs) == T.CV_FOLDS
    assert cv["calibrated"]["pc"]["mean"] == pytest.approx(sum(pcs) / len(pcs), abs=1e-12)
    assert cv["calibrated"]["pc"]["mean"] >= CV_TARGET_PC
    fold = info["args"]["cv_fold"]  # the shipped model is that fold's model of the same CV run
    assert pcs[fold - 1] == pytest.approx(info["metrics"]["pc"], abs=1e-12)
    assert set(cv["calibrated"]["groups"]) == {"AF", "AM", "CF", "CM"}


def test_feature_cache_key_follows_the_crop_downscale(monkeypatch, tmp_path):
    """Cached maps of bilinear crops are not reused once tfdata crops with "area" (spec.CROP_DOWNSCALE):
    the trainer's end-to-end check compares them with the raw faces cropped the current way."""
    import numpy as np

    from facepack import spec
    from facepack.models import importers

    monkeypatch.setenv("FACEPACK_CACHE", str(tmp_path))
    monkeypatch.setattr(importers, "weight_set_info", lambda name: {"sha256": "0" * 64})

    class Sample:
        def __init__(self, name, score):
            self.path, self.score = f"Images/{name}", score

    samples = [Sample("AF1.jpg", 3.2), Sample("CM7.jpg", 2.5)]
    squares = np.array([[10.0, 12.0, 280.0], [4.0, 5.0, 260.0]])
    cfg = {"weights": "efficientnet-lite0", "input_size": 192, "freeze_until": 8}
    paths = {}
    for mode in ("bilinear", "area"):
        monkeypatch.setattr(spec, "CROP_DOWNSCALE", mode)
        paths[mode] = T.features_cache_file(cfg, samples, squares)
    assert paths["area"] != paths["bilinear"]
    assert paths["area"].parent == paths["bilinear"].parent == tmp_path / "features"
    assert paths["area"].name.startswith("efficientnet-lite0-192-b8-")
