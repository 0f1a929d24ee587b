"""Shared pytest fixtures. Module-specific fixtures live in their own test modules."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches (decode verdicts, face boxes, converted weights: $FACEPACK_CACHE) go to a temporary
    folder for the whole session, never ~/.cache; a module may still point it elsewhere."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FACEPACK_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def make_untrained_run(kind: str, out_dir: Path, *, backbone: str | None = None, input_size: int | None = None,
                       num_points: int = 68, seed: int = 0) -> Path:
    """A run folder (model.keras + run.json) holding an untrained, seeded model: fast to build.

    Tests that need "a model" (pipeline, export, parity, page) use this instead of training.
    """
    import json

    import keras
    import numpy as np

    from facepack import spec
    from facepack.models.beauty import build_beauty_model
    from facepack.models.keypoints import build_keypoint_model

    keras.utils.set_random_seed(seed)
    if kind == "beauty":
        backbone = backbone or "mobilenet_v2"
        input_size = input_size or 64
        model = build_beauty_model(keras, backbone, input_size)
        # Spread the head weights so the distribution is not flat (scores differ across faces).
        w, b = model.get_layer("scores").get_weights()
        rng = np.random.default_rng(seed)
        model.get_layer("scores").set_weights([rng.normal(0, 0.05, w.shape).astype("float32"), b])
        info = {"model": "beauty", "backbone": backbone, "input_size": input_size}
    else:
        backbone = backbone or "kpnet"
        input_size = input_size or spec.KEYPOINTS["input_size_px"]
        model = build_keypoint_model(keras, num_points, backbone, input_size)
        info = {"model": "keypoints", "backbone": backbone, "input_size": input_size,
                "num_points": num_points, "format": str(num_points)}
    info.update({"synthetic": True, "untrained": True,
                 "dataset": {"name": "none (untrained test model)", "terms": "n/a", "synthetic": True},
                 "metrics": {}, "args": {}, "versions": {"keras": keras.__version__}})
    # Untrained BatchNorm statistics shrink activations to ~1e-12 (flat scores, degenerate
    # Grad-CAM): calibrate them on fixture crops so the model behaves like a trained one.
    from jsharness import _calibration_crops, calibrate_batchnorm

    calibrate_batchnorm(model, _calibration_crops(FIXTURES, input_size))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "model.keras")
    (out_dir / "run.json").write_text(json.dumps(info, indent=2))
    return out_dir


@pytest.fixture(scope="session")
def untrained_runs(tmp_path_factory) -> dict:
    """{"beauty": run_dir, "keypoints": run_dir} with small untrained models (session-wide)."""
    root = tmp_path_factory.mktemp("runs")
    return {"beauty": make_untrained_run("beauty", root / "beauty" / "20000101-000000"),
            "keypoints": make_untrained_run("keypoints", root / "keypoints" / "20000101-000000")}


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, untrained_runs) -> Path:
    """A converted bundle (manifest + MTCNN + beauty + keypoints, float32) of the untrained runs."""
    from facepack.export import build_bundle

    out = tmp_path_factory.mktemp("bundle") / "models"
    build_bundle(out, beauty_run=untrained_runs["beauty"], keypoints_run=untrained_runs["keypoints"],
                 quantize="none")
    return out


@pytest.fixture(scope="module")
def fresh_weight_cache(tmp_path_factory):
    """A fresh FACEPACK_CACHE for one test module (the weight importers' tests), so conversion
    itself runs instead of reading the session cache."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("facepack_cache")
    mp.setenv("FACEPACK_CACHE", str(root))
    yield root
    mp.undo()


def load_predict():
    """predict.py (a script, not a module of the package) loaded as a module, freshly."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("predict_cli", ROOT / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def predict():
    """predict.py as a module, shared by the photo and video tests."""
    return load_predict()

