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
    that node, not at the Identity after it."""
    import shutil

    from facepack.export.keras_export import input_specs, locate_graph_failure, make_probes

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
    where = locate_graph_failure(broken, "cumsum", probe, "cpu", model)
    assert where is not None and where.startswith(f"op NoSuchOp (graph node {target['name']!r}, Keras layer 'after') fails:"), where
    assert "\n" not in where
    # the intact bundle has no failing node
    assert locate_graph_failure(out, "cumsum", probe, "cpu", model) is None


def test_keras_layer_of_graph_node_names(cumsum_export):
    from facepack.export.keras_export import keras_layer_of

    model = cumsum_export[0]
    assert keras_layer_of("StatefulPartitionedCall/functional_1/after_1/MatMul", model) == "after"
    assert keras_layer_of("StatefulPartitionedCall/functional_1/first/BiasAdd", model) == "first"
    assert keras_layer_of("StatefulPartitionedCall/functional_1/Cumsum", model) is None
    assert keras_layer_of("Identity", model) is None


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
