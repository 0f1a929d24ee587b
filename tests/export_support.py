"""Helpers shared by the export tests (tests/test_export_*.py, tests/test_npm.py).

``calibrated_run``: an untrained run whose BatchNorm statistics are set from a probe batch, so
activations keep a unit scale through the network (a freshly initialised backbone shrinks them
towards 0, which would make any parity check pass trivially).
``run_node``: run exported models in Node on one TF.js backend (facepack/export/node_check.mjs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")


def _resolve(arg, values):
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return values[tuple(arg["config"]["keras_history"])]
    if isinstance(arg, (list, tuple)):
        return [_resolve(a, values) for a in arg]
    return arg


def calibrate_batchnorm(model, x: np.ndarray) -> None:
    """Set every BatchNormalization's moving mean/variance to its input's statistics on ``x``.

    One eager walk of the functional graph (Keras 3 config order): each BatchNormalization is
    calibrated just before it is applied, so every layer sees calibrated inputs.
    """
    import keras

    ops = {op.name: op for op in model.operations}
    values = {}
    for entry in model.get_config()["layers"]:
        name = entry["name"]
        if entry["class_name"] == "InputLayer":
            values[(name, 0, 0)] = keras.ops.convert_to_tensor(x)
            continue
        for node_index, node in enumerate(entry["inbound_nodes"]):
            args = _resolve(node["args"], values)
            kwargs = {k: v for k, v in node["kwargs"].items() if k != "mask"}
            layer = ops[name]
            if isinstance(layer, keras.layers.BatchNormalization):
                h = np.asarray(args[0], np.float64)
                axes = tuple(range(h.ndim - 1))
                gamma, beta, _, _ = layer.get_weights()
                layer.set_weights([gamma, beta, h.mean(axes).astype("float32"),
                                   (h.var(axes) + 1e-3).astype("float32")])
            y = layer(*args, **kwargs)
            for i, t in enumerate(y if isinstance(y, (list, tuple)) else [y]):
                values[(name, node_index, i)] = t


def calibrated_run(kind: str, out_dir: Path, **kwargs) -> Path:
    """make_untrained_run + BatchNorm calibration on seeded images (model.keras rewritten)."""
    import keras

    from conftest import make_untrained_run
    from facepack.export.sources import image_probe
    from facepack.runs import load_run

    run = make_untrained_run(kind, out_dir, **kwargs)
    model, _ = load_run(run, keras)
    size = int(model.input_shape[1])
    calibrate_batchnorm(model, image_probe(size, size, seed=99, batch=4))
    model.save(run / "model.keras")
    return run


def run_node(bundle: Path, backend: str, requests: list[tuple[str, np.ndarray]], work: Path) -> list[list[np.ndarray]]:
    """Outputs of each (model name, input batch) in Node on ``backend`` (facepack/export/node_check.mjs)."""
    from facepack.export.node_check import run_node as _run_node

    return _run_node(bundle, backend, requests, work)
