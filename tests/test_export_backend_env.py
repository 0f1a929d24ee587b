"""The exporter's command lines under a shell that exports another KERAS_BACKEND (the README
suggests JAX for training on a GPU): facepack-export and convert/to_tfjs.py --model run Keras on
TensorFlow anyway (the SavedModel export, the tensorflowjs converter and tf_keras need it), say so
in one line, and export a .keras file saved under jax. Before: rc 1 and a 39-line traceback ending
"ModuleNotFoundError: import of jax halted; None in sys.modules"."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from export_support import NODE

NOTE = ("note: KERAS_BACKEND=jax is set, but the exporter runs Keras on TensorFlow (KERAS_BACKEND=tensorflow "
        "for this run); a .keras file saved under any backend loads fine")
HAS_JAX = importlib.util.find_spec("jax") is not None


def _env(backend: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    return env


def test_use_tensorflow_backend_overrides_another_backend_before_keras_is_imported():
    """One line for jax/torch, none for tensorflow or unset; always tensorflow afterwards. A
    subprocess: no Keras imported there (once Keras is imported the helper leaves the process alone)."""
    code = ("import sys\nfrom facepack.export.cli import use_tensorflow_backend as use\n"
            "for before in ({'KERAS_BACKEND': 'jax'}, {'KERAS_BACKEND': 'torch'}, {'KERAS_BACKEND': 'tensorflow'}, {}):\n"
            "    env = dict(before)\n"
            "    note = use(env)\n"
            "    print(env['KERAS_BACKEND'], note is not None and note.startswith(f\"note: KERAS_BACKEND={before.get('KERAS_BACKEND')} is set\"), note is None)\n"
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["tensorflow True False", "tensorflow True False", "tensorflow False True",
                                        "tensorflow False True", "False False"], proc.stderr


@pytest.fixture(scope="module")
def jax_model(tmp_path_factory):
    """A small Dense model saved by Keras running on jax (checks the notice's claim)."""
    if not HAS_JAX:
        pytest.skip("jax is not installed in this environment")
    path = tmp_path_factory.mktemp("jaxmodel") / "dense_jax.keras"
    code = ("import keras\nassert keras.backend.backend() == 'jax', keras.backend.backend()\n"
            "inp = keras.Input((6,))\n"
            "m = keras.Model(inp, keras.layers.Dense(3, name='d')(keras.layers.Dense(4, activation='relu')(inp)))\n"
            f"m.save({str(path)!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env("jax"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and path.exists(), proc.stderr[-3000:]
    return path


def _check_bundle(proc, out, name: str, prog: str):
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert lines.count(f"{prog}: {NOTE}") == 1, proc.stderr[-3000:]
    assert (out / name / "model.json").exists()
    assert name in json.loads((out / "manifest.json").read_text())["models"]


NEEDS_NODE = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]


@pytest.mark.parametrize("prog, command, backends", [
    pytest.param("facepack-export", ["-m", "facepack.export.cli"], "cpu", marks=NEEDS_NODE),
    # scripts/main.sh's step: prints the note once, not again from the shared run()
    pytest.param("convert/to_tfjs.py", ["convert/to_tfjs.py", "--model"], "none"),
])
def test_export_command_under_jax_backend_exports_a_jax_saved_model(prog, command, backends, jax_model, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, *command, str(jax_model), "--name", "dense", "--out", str(out),
                           "--backends", backends], cwd=ROOT, env=_env("jax"), capture_output=True, text=True,
                          timeout=600)
    _check_bundle(proc, out, "dense", prog)
    if backends == "cpu":
        assert "layers-model: cpu max abs diff" in proc.stderr
    else:
        assert "facepack-export: note" not in proc.stderr


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_export_model_under_jax_refuses_the_graph_path_with_what_to_do(tmp_path):
    """From Python, Keras keeps the backend it was imported with: under jax, model.export writes an
    XlaCallModule op ("supports up to serialization version 9 but the serialized module needs
    version 10" before), so the graph path is refused in words that say how to export instead,
    and the whole error has no doubled full stop."""
    code = ("import keras\nfrom facepack.export import export_model, ExportError\n"
            "x = keras.Input((8,), name='a'); m = keras.Model(x, keras.layers.Dense(3)(x))\n"
            f"try:\n    export_model(m, {str(tmp_path / 'out')!r}, name='d', paths=('graph-model',))\n"
            "except ExportError as err:\n    print('REFUSED', err)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env("jax"), capture_output=True, text=True,
                          timeout=300)
    refused = [ln for ln in proc.stdout.splitlines() if ln.startswith("REFUSED")]
    assert proc.returncode == 0 and refused, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "needs Keras on TensorFlow and this process runs Keras on 'jax'" in refused[0], refused[0]
    assert "KERAS_BACKEND=tensorflow before the first `import keras`" in refused[0], refused[0]
    assert ".." not in refused[0] and "XlaCallModule" not in refused[0], refused[0]
