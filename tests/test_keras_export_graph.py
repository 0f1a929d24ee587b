"""Graph-model path of the exporter (facepack/export/keras_export.py): Keras 3 ops with a negative
axis, and failures traced to the graph node (and Keras layer) where they start.

keras.ops.cumsum(x, axis=-1) followed by a Dense: TF.js 4.22 passed axis -1 to its Cumsum kernels,
which then produced a tensor of shape [undefined, 2] on cpu (the Dense's MatMul failed: "Error in
matMul: inner shapes (2) and (8)") and read out of bounds on wasm; static/facepack/layers/ops.js
registers Cumsum/Cumprod with the axis made non-negative. One export (module fixture) serves all
tests; Node runs once for the export and once per located failure.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.node]

# float32 parity bar of export_model (max |tfjs - keras| <= REL_TOL * max |keras|), relative
REL_TOL = 1e-4


@pytest.fixture(scope="module")
def cumsum_export(tmp_path_factory):
    from facepack.export.node_check import node_available

    ok, why = node_available()
    if not ok:
        pytest.fail(f"TF.js in Node is needed for the exporter's checks ({why}): run `npm install`")
    import keras

    from facepack.export import export_model

    keras.utils.set_random_seed(3)
    x = keras.Input((8,), name="features")
    h = keras.layers.Dense(8, bias_initializer="random_normal", name="first")(x)
    y = keras.layers.Dense(3, name="after")(keras.ops.cumsum(h, axis=-1))
    model = keras.Model(x, y)
    out = tmp_path_factory.mktemp("cumsum") / "bundle"
    manifest = export_model(model, out, name="cumsum", log=None)
    return model, out, manifest["models"]["cumsum"]


def test_cumsum_negative_axis_then_dense_exports_and_matches(cumsum_export):
    _, _, entry = cumsum_export
    assert entry["format"] == "graph-model"
    assert set(entry["parity"]["backends"]) == {"cpu", "wasm"}
    for backend, measured in entry["parity"]["backends"].items():
        assert measured["rel_diff"] <= REL_TOL, f"{backend}: {measured}"


def test_a_failing_node_is_named_with_its_op_and_keras_layer(cumsum_export, tmp_path):
    """An op TF.js cannot run (the Dense 'after' MatMul renamed to an unknown op) is reported at
    that node, not at the Identity after it: traced once, on the first backend that failed, after
    one log line saying so."""
    import shutil

    from facepack.export import keras_export
    from facepack.export.keras_export import (_check_in_tfjs, _Rejected, input_specs, keras_outputs,
                                              locate_graph_failure, make_probes)

    model, out, _ = cumsum_export
    broken = tmp_path / "bundle"
    shutil.copytree(out, broken)
    model_json = broken / "cumsum" / "model.json"
    graph = json.loads(model_json.read_text())
    nodes = graph["modelTopology"]["node"]
    target = next(n for n in nodes if n["op"] == "MatMul" and "/after" in n["name"])
    target["op"] = "NoSuchOp"
    model_json.write_text(json.dumps(graph))
    probe = make_probes(model, input_specs(model))
    logs = []
    with pytest.raises(_Rejected) as excinfo:
        _check_in_tfjs(broken, "cumsum", [probe], [keras_outputs(model, probe.arrays)], ("cpu", "wasm"), "float32",
                       graph_of=model, log=logs.append)
    where = str(excinfo.value)
    assert where.startswith(f"TF.js cpu: op NoSuchOp (graph node {target['name']!r}, Keras layer 'after') fails:"), where
    assert "\n" not in where
    assert logs == [f"  TF.js cpu failed; tracing the failure to its graph node "
                    f"(at most {keras_export.GRAPH_LOCATE_BUDGET_S:g} s)..."]
    # the intact bundle has no failing node
    assert locate_graph_failure(out, "cumsum", probe, "cpu", model) is None
    # out of budget before any node ran (BUDGET_MS 0): nothing named, and it says why
    import subprocess

    from facepack.export.node_check import ROOT, _write_job

    job = _write_job(broken, [("cumsum", probe.arrays)], tmp_path)
    proc = subprocess.run(["node", str(keras_export.GRAPH_LOCATE_SCRIPT), str(broken), "cumsum", "cpu", str(job), "0"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["node"] is None and found["checked"] == 0 and found["stopped"].startswith("budget 0 ms: 0 of "), found


def test_keras_node_of_graph_node_names(cumsum_export):
    """Layers by their name scope; the Keras op node keras.ops.cumsum (an Operation, no scope of its
    own) by its class when it is the model's only one; nothing is guessed from other scopes."""
    from facepack.export.keras_export import keras_node_of

    model = cumsum_export[0]
    cumsum = next(op.name for op in model.operations if type(op).__name__ == "Cumsum")
    assert keras_node_of("StatefulPartitionedCall/functional_1/after_1/MatMul", model, "MatMul") == "Keras layer 'after'"
    assert keras_node_of("StatefulPartitionedCall/functional_1/first/BiasAdd", model, "BiasAdd") == "Keras layer 'first'"
    assert keras_node_of("StatefulPartitionedCall/functional_1/Cumsum", model, "Cumsum") == f"Keras op {cumsum!r}"
    assert keras_node_of(f"StatefulPartitionedCall/functional_1/{cumsum}/Cumsum", model) == f"Keras op {cumsum!r}"
    assert keras_node_of("StatefulPartitionedCall/functional_1/Cumprod", model, "Cumprod") is None
    assert keras_node_of("StatefulPartitionedCall/functional_1/other/Relu", model, "Relu") is None  # not a layer
    assert keras_node_of("Identity", model, "Identity") is None


def test_compare_says_what_kind_of_mismatch():
    """A structural mismatch (output count, shape) is told from numbers by kind, not by wording."""
    import numpy as np

    from facepack.export.keras_export import compare

    ref = [np.ones((2, 3), np.float32)]
    assert compare(ref, [np.ones((2, 3), np.float32)], "float32")["kind"] is None
    assert compare(ref, [np.ones((2, 3), np.float32), np.ones(1)], "float32")["kind"] == "count"
    assert compare(ref, [np.ones((3, 2), np.float32)], "float32")["kind"] == "shape"
    values = compare(ref, [np.full((2, 3), 2.0, np.float32)], "float32")
    assert values["kind"] == "values" and not values["ok"] and "shape" not in values["why"]
    assert compare(ref, [np.full((2, 3), 2.0, np.float32)], "float16")["kind"] == "values"


def test_bridge_names_a_keras_op_it_cannot_rebuild(cumsum_export):
    """The layers path refuses a Keras 3 op with no tf_keras layer in one line naming the op and
    its node (the exporter then takes the graph path)."""
    import tf_keras

    from facepack.export.bridge import BridgeError, to_tf_keras

    model = cumsum_export[0]
    node = next(entry["name"] for entry in model.get_config()["layers"] if entry["class_name"] == "Cumsum")
    with pytest.raises(BridgeError, match=rf"^Keras op Cumsum \(node '{node}', from keras\.src\.ops\.numpy\) has no "
                                          r"tf_keras layer; a graph model carries Keras ops$"):
        to_tf_keras(model, tf_keras)
