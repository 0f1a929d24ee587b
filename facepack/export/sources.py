"""What goes into a bundle: each exported model as an ``Export`` (tf_keras model + reference).

One ``Export`` per TF.js model. Its ``reference`` is the model the export must equal (the
Keras 3 training model, or the `mtcnn` package's own net); ``probe`` is the input batch the
parity check feeds both (deterministic, raw RGB 0..255 for image models).

Model names (manifest keys, folder names):
  mtcnn_pnet, mtcnn_rnet, mtcnn_onet   the detector (mtcnn_nets.py)
  beauty_features, beauty_head         the beauty model split for Grad-CAM (models/beauty.py)
  keypoints                            the keypoint model
  <NAME>                               a user's own Keras 3 model (convert/to_tfjs.py --model)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from facepack import spec
from facepack.export import mtcnn_nets
from facepack.export.bridge import BridgeError, to_tf_keras
from facepack.export.tfjs_io import predict_list

PROBE_BATCH = 2
PROBE_SEED = 1234
PNET_PROBE_SIZE = (37, 29)  # (H, W): odd, non-square, several P-Net cells


@dataclass
class Export:
    """One TF.js model to write: ``model`` (tf_keras) must equal ``reference`` on ``probe``."""

    name: str
    model: object  # tf_keras model
    reference: Callable[[np.ndarray], list]  # probe -> list of arrays
    probe: np.ndarray
    probe_desc: str
    meta: dict = field(default_factory=dict)  # manifest fields: backbone, input_size, run, role...
    output_names: list | None = None
    quantizable: bool = True
    format: str = "layers-model"  # or "graph-model": ``keras3`` is written via a SavedModel
    keras3: object = None


def image_probe(h: int, w: int, seed: int = PROBE_SEED, batch: int = PROBE_BATCH) -> np.ndarray:
    """Deterministic raw RGB 0..255 float32 images (smooth gradients + noise, face-like range)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), (xx + yy) / max(h + w - 2, 1)], -1) * 200 + 20
    noise = rng.normal(0, 20, (batch, h, w, 3))
    return np.clip(base[None] + noise, 0, 255).astype(np.float32)


def _public_run_path(run_dir: Path) -> str:
    """The run's folder as the manifest may show it (it is served publicly): relative to the
    project when inside it, else its last two parts (e.g. beauty/<stamp>), never a local absolute path."""
    from facepack.runs import PROJECT_ROOT

    resolved = Path(run_dir).resolve()
    try:
        return resolved.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return f"{resolved.parent.name}/{resolved.name}"


def run_meta(run_dir: Path, info: dict) -> dict:
    """The manifest's "run" block for a trained run folder."""
    dataset = info.get("dataset") or {}
    return {
        "path": _public_run_path(run_dir),
        "metrics": info.get("metrics", {}),
        "dataset": {"name": dataset.get("name", "unknown"), "terms": dataset.get("terms", "unknown")},
        "synthetic": bool(info.get("synthetic", dataset.get("synthetic", False))),
        "untrained": bool(info.get("untrained", False)),
        "created": info.get("created"),
        **({"weights": info["weights"]} if info.get("weights") else {}),  # name, licence, source (train_beauty)
        # keypoints: the mirror-averaged numbers (the page's default), metrics are the model alone
        **({"metrics_mirror": info["metrics_mirror"]} if info.get("metrics_mirror") else {}),
        **({"cv": cv} if (cv := _cv_summary(Path(run_dir))) else {}),
    }


def _cv_summary(run_dir: Path) -> dict | None:
    """The run folder's cross-validation headline (cv.json of training/train_beauty_cached.py --cv-all):
    {"pc_mean", "pc_std", "folds"} of its "calibrated" block; None when the folder has no cv.json or it has
    no calibrated PC: a --probe CV writes only a "probe" block (cv_summary there), a linear probe's PC that
    the page's 'CV pc' headline must not pass off as the shipped model's."""
    path = run_dir / "cv.json"
    if not path.is_file():
        return None
    pc = (json.loads(path.read_text()).get("calibrated") or {}).get("pc")
    if not pc:
        return None
    return {"pc_mean": pc["mean"], "pc_std": pc["std"], "folds": len(pc["folds"])}


def mtcnn_exports() -> list[Export]:
    """P-, R-, O-Net with the package's weights; reference: the package's own nets."""
    import tf_keras

    from mtcnn.metadata import __version__ as mtcnn_version

    out = []
    for net in mtcnn_nets.NET_NAMES:
        model = mtcnn_nets.build_pretrained_mtcnn_net(tf_keras, net)
        pkg = mtcnn_nets.load_package_net(net)
        h, w = PNET_PROBE_SIZE if net == "pnet" else mtcnn_nets.INPUT_SHAPES[net][:2]
        shape = mtcnn_nets.INPUT_SHAPES[net]
        out.append(Export(
            name=f"mtcnn_{net}", model=model,
            reference=lambda x, net=net, pkg=pkg: mtcnn_nets.package_forward(net, x, pkg),
            probe=image_probe(h, w), probe_desc=f"{PROBE_BATCH} seeded raw RGB images {h}x{w}, vs the mtcnn package",
            output_names=list(mtcnn_nets.OUTPUT_NAMES[net]), quantizable=False,
            meta={"role": f"mtcnn.{net}", "input_size": shape[0], "backbone": None,
                  "input_range": "raw RGB 0..255 (normalisation is the first layer)",
                  "run": {"source": f"mtcnn {mtcnn_version} package weights ({mtcnn_nets.WEIGHT_FILES[net]})",
                          "license": "MIT", "synthetic": False}}))
    return out


def beauty_exports(run_dir: Path) -> list[Export]:
    """beauty_features (image -> last feature map) and beauty_head (feature map -> 101 probs)."""
    import keras
    import tf_keras

    from facepack.models.beauty import split_for_gradcam
    from facepack.runs import load_run

    model3, info = load_run(run_dir, keras)
    model2, notes = to_tf_keras(model3, tf_keras)
    feat3, head3 = split_for_gradcam(keras, model3)
    feat2, head2 = split_for_gradcam(tf_keras, model2)
    size = int(model3.input_shape[1])
    probe = image_probe(size, size)
    fmap_probe = predict_list(feat3, probe)[0]
    common = {"backbone": info.get("backbone"), "run": run_meta(run_dir, info)}  # bridge_notes: a list each
    return [
        Export("beauty_features", feat2, lambda x: predict_list(feat3, x), probe,
               f"{PROBE_BATCH} seeded raw RGB images {size}x{size}", output_names=["feature_map"],
               meta={**common, "role": "beauty.features", "input_size": size, "bridge_notes": list(notes)}),
        Export("beauty_head", head2, lambda x: predict_list(head3, x), fmap_probe,
               "the Keras feature maps of the beauty_features probe", output_names=["probs"],
               meta={**common, "role": "beauty.head", "input_size": size, "bins": spec.BEAUTY["bins"],
                     "bridge_notes": list(notes)}),
    ]


def keypoints_exports(run_dir: Path) -> list[Export]:
    import keras
    import tf_keras

    from facepack.runs import load_run

    model3, info = load_run(run_dir, keras)
    model2, notes = to_tf_keras(model3, tf_keras)
    size = int(model3.input_shape[1])
    num_points = int(model3.output_shape[-1]) // 2
    return [Export("keypoints", model2, lambda x: predict_list(model3, x), image_probe(size, size),
                   f"{PROBE_BATCH} seeded raw RGB images {size}x{size}", output_names=["points"],
                   meta={"role": "keypoints", "backbone": info.get("backbone"), "input_size": size,
                         "num_points": num_points, "points_format": str(info.get("format", num_points)),
                         "output_layout": "(N, 2 * points): x0, y0, x1, y1, ... in crop units 0..1",
                         "run": run_meta(run_dir, info), "bridge_notes": notes})]


def user_model_exports(path: Path, name: str) -> list[Export]:
    """A user's own Keras 3 model file, exported as-is under ``name`` (build_bundle's path; the
    full exporter with its fallback on any failure is keras_export.export_model).

    Probes come from the model's input specs (keras_export.make_probes: token ids, masks,
    several inputs); ``probe`` is one array, or a list for several inputs.
    """
    import keras
    import tf_keras

    from facepack.export.keras_export import input_specs, keras_outputs, make_probes

    if not Path(path).is_file():
        raise ValueError(f"--model: expected a Keras 3 .keras file, got {str(path)!r} (not a file)")
    model3 = keras.models.load_model(path, compile=False)
    try:
        model2, notes, fmt = *to_tf_keras(model3, tf_keras, name=name), "layers-model"
    except BridgeError as err:  # not expressible as TF.js layers: a graph model (checked in Node)
        model2, notes, fmt = None, [f"layers format impossible ({err}); exported as a graph model"], "graph-model"
    specs = input_specs(model3)
    probe = make_probes(model3, specs)
    x = probe.arrays[0] if len(probe.arrays) == 1 else probe.arrays
    shape = specs[0].shape
    return [Export(name, model2, lambda x: keras_outputs(model3, x if isinstance(x, list) else [x]), x,
                   probe.desc, format=fmt, keras3=model3,
                   meta={"role": "user", "backbone": None,
                         "input_size": shape[1] if len(specs) == 1 and len(shape) == 4 else None,
                         "run": {"source": Path(path).name, "synthetic": False}, "bridge_notes": notes})]
