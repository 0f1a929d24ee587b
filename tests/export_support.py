"""Helpers shared by the export tests (tests/test_export_*.py, tests/test_npm.py).

``calibrated_run``: an untrained run whose BatchNorm statistics are calibrated, so activations
keep a unit scale through the network (a freshly initialised backbone shrinks them towards 0,
which would make any parity check pass trivially).
``run_node``: run exported models in Node on one TF.js backend (facepack/export/node_check.mjs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")


def calibrated_run(kind: str, out_dir: Path, **kwargs) -> Path:
    """An untrained run with calibrated BatchNorm (conftest.make_untrained_run calibrates on
    fixture crops). Tests using it also assert that activations did not vanish."""
    from conftest import make_untrained_run

    return make_untrained_run(kind, out_dir, **kwargs)


def run_node(bundle: Path, backend: str, requests: list[tuple[str, np.ndarray]], work: Path) -> list[list[np.ndarray]]:
    """Outputs of each (model name, input batch) in Node on ``backend`` (facepack/export/node_check.mjs)."""
    from facepack.export.node_check import run_node as _run_node

    return _run_node(bundle, backend, requests, work)


def export_cases(cases: dict, folder: Path, backends) -> dict:
    """Export each {case: (Keras model, sample or None)} with export_model, checked on ``backends`` in
    one Node process; returns {case: (manifest entry, bundle folder, model)}."""
    from facepack.export import export_model
    from facepack.export.node_check import NodeSession

    out = {}
    with NodeSession(backends) as session:
        for case, (model, sample) in cases.items():
            manifest = export_model(model, folder / case, name=case, sample=sample, backends=backends, log=None,
                                    _node_session=session)
            out[case] = (manifest["models"][case], folder / case, model)
    return out
