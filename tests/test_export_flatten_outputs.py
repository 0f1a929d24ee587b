"""Two export defects, each checked end to end (Keras 3 model -> bundle -> TF.js in Node, cpu + wasm).

1. A ``Flatten`` of a rank-2 input (``GlobalAveragePooling2D() -> Flatten() -> Dense``, the usual
   transfer-learning head; ``Dense -> Flatten -> Dense``) is the identity in Keras 3, but TF.js'
   Flatten refuses it at load ("Input 0 is incompatible with layer flat: expected min_ndim=3, found
   ndim=2"), so the layers path failed and the export fell back to a graph model. bridge.py now
   writes it as ``Reshape((units,))`` under the same name: a layers model again, the layer still
   found by name (Grad-CAM-style lookups), also as the model's output, inside nested models, with
   data_format="channels_first", shared between a rank-2 and a rank-4 input, and on rank 1.
2. node_check.mjs wrote ``await t.data()`` as it was; TF.js' cpu Cast keeps the input's data when
   no precision is lost, so an int32 output cast from bool came back as 1 byte per element
   ("cannot reshape array of size 2 into shape (2,4)": the export was refused) and a float32
   output cast from int32 as int32 bits read as float32 ("output 1 differs from Keras by 9").
   Outputs are now written as their dtype says.

One Node process for all exports (NodeSession); each export about a second."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export_support import NODE

pytestmark = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]

BACKENDS = ("cpu", "wasm")


def _gap_head():
    """conv -> GAP -> Flatten("flat") -> Dense("scores"): the transfer-learning head."""
    import keras

    L = keras.layers
    x = keras.Input((8, 8, 3), name="img")
    y = L.GlobalAveragePooling2D(name="pool")(L.Conv2D(4, 3, name="conv")(x))
    return keras.Model(x, L.Dense(2, name="scores")(L.Flatten(name="flat")(y)))


def _dense_sequential():
    import keras

    L = keras.layers
    return keras.Sequential([keras.Input((6,)), L.Dense(4, name="d1"), L.Flatten(name="flat"), L.Dense(3, name="d2")])


def _flatten_output():
    """The Flatten is an output layer (and the other output's path goes through it too)."""
    import keras

    L = keras.layers
    x = keras.Input((8, 8, 3), name="img")
    flat = L.Flatten(name="flat")(L.GlobalAveragePooling2D(name="pool")(L.Conv2D(4, 3, name="conv")(x)))
    return keras.Model(x, [L.Dense(2, name="scores")(flat), flat])


def _nested():
    """A functional base ending in GAP -> Flatten, then a Sequential head Dense -> Flatten -> Dense."""
    import keras

    L = keras.layers
    xb = keras.Input((8, 8, 3), name="base_in")
    pooled = L.GlobalAveragePooling2D(name="base_pool")(L.Conv2D(5, 3, name="base_conv")(xb))
    base = keras.Model(xb, L.Flatten(name="base_flat")(pooled), name="base")
    head = keras.Sequential([keras.Input((5,)), L.Dense(4, name="head_d"), L.Flatten(name="head_flat"),
                             L.Dense(2, name="head_out")], name="head")
    x = keras.Input((8, 8, 3), name="img")
    return keras.Model(x, head(base(x)))


def _channels_first():
    import keras

    L = keras.layers
    x = keras.Input((6,), name="x")
    y = L.Flatten(data_format="channels_first", name="flat")(L.Dense(4, name="d1")(x))
    return keras.Model(x, L.Dense(3, name="d2")(y))


def _shared():
    """Two Flatten layers each called on a rank-2 and a rank-4 tensor, in both orders."""
    import keras

    L = keras.layers
    x = keras.Input((6, 6, 2), name="img")
    conv = L.Conv2D(3, 3, name="conv")(x)
    pooled = L.GlobalAveragePooling2D(name="pool")(conv)
    low_first, high_first = L.Flatten(name="low_first"), L.Flatten(name="high_first")
    parts = [low_first(pooled), low_first(conv)]
    parts += [high_first(conv), high_first(pooled)]
    return keras.Model(x, L.Dense(2, name="d")(L.Concatenate(name="cat")(parts)))


def _rank1():
    """Keras 3's Flatten makes a (batch,) input (batch, 1)."""
    import keras

    L = keras.layers
    x = keras.Input((), name="x")
    return keras.Model(x, L.Dense(2, name="d")(L.Flatten(name="flat")(x)))


FLATTEN_MODELS = {"gap_head": _gap_head, "dense_sequential": _dense_sequential, "flatten_output": _flatten_output,
                  "nested": _nested, "channels_first": _channels_first, "shared": _shared, "rank1": _rank1}


def _bool_as_int32():
    """Outputs [Dense, cast(Dense > 0, int32)]: Keras ops, so a graph model; TF.js cpu keeps the
    comparison's 1-byte bool data under int32."""
    import keras

    x = keras.Input((6,), name="x")
    d = keras.layers.Dense(4, name="d")(x)
    return keras.Model(x, [d, keras.ops.cast(d > 0, "int32")])


def _int32_as_float32():
    """Outputs [ids -> Embedding -> GAP -> Dense, cast(ids, float32)]: TF.js cpu keeps the int32 data under float32."""
    import keras

    L = keras.layers
    ids = keras.Input((5,), dtype="int32", name="ids")
    emb = L.Dense(2, name="d")(L.GlobalAveragePooling1D(name="gap")(L.Embedding(10, 3, name="emb")(ids)))
    return keras.Model(ids, [emb, keras.ops.cast(ids, "float32")])


def _bool_output():
    """A comparison (bool) output next to a float one."""
    import keras

    x = keras.Input((6,), name="x")
    d = keras.layers.Dense(4, name="d")(x)
    return keras.Model(x, [d, keras.ops.greater(d, 0.0)])


DTYPE_MODELS = {"bool_as_int32": _bool_as_int32, "int32_as_float32": _int32_as_float32, "bool_output": _bool_output}


def _sample(model, seed=3):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = (4,) + tuple(t.shape[1:])
        xs.append(rng.integers(0, 10, shape).astype(np.int32) if "int" in str(t.dtype)
                  else rng.normal(size=shape).astype(np.float32))
    return xs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (manifest entry, bundle, model, TF.js outputs on _sample per backend)}, one Node process."""
    import keras

    from facepack.export import ExportError, export_model
    from facepack.export.node_check import NodeSession, run_node_backends

    tmp = tmp_path_factory.mktemp("flatten_outputs")
    out = {}
    with NodeSession(BACKENDS) as session:
        for case, build in {**FLATTEN_MODELS, **DTYPE_MODELS}.items():
            keras.utils.set_random_seed(7)
            model = build()
            try:
                manifest = export_model(model, tmp / case, name=case, backends=BACKENDS, log=None,
                                        _node_session=session)
            except ExportError as err:  # reported by the tests of this case only
                out[case] = err
                continue
            xs = _sample(model)
            got = run_node_backends(tmp / case, BACKENDS, [(case, xs if len(xs) > 1 else xs[0])], tmp / f"{case}_run",
                                    session=session)
            out[case] = (manifest["models"][case], tmp / case, model, xs, {b: got[b][0] for b in BACKENDS})
    return out


def _case(exported, case):
    result = exported[case]
    if isinstance(result, Exception):
        pytest.fail(f"{case}: {result}")
    return result


def _layers(bundle, case):
    """{layer name: (class, config)} of the bundle's model.json, nested models included."""
    topology = json.loads((bundle / case / "model.json").read_text())["modelTopology"]["model_config"]
    found = {}

    def walk(cfg):
        for layer in cfg["config"]["layers"]:
            found[layer["config"]["name"]] = (layer["class_name"], layer["config"])
            if "layers" in layer["config"]:
                walk(layer)

    walk(topology)
    return found


def _outputs(model, xs):
    from facepack.export.keras_export import keras_outputs

    return [np.asarray(o) for o in keras_outputs(model, xs)]


@pytest.mark.parametrize("case", list(FLATTEN_MODELS))
def test_rank2_flatten_exports_as_a_layers_model_matching_keras(exported, case):
    entry, _, model, xs, got = _case(exported, case)
    assert entry["format"] == "layers-model", entry["export"]["tried"]
    assert [t["path"] for t in entry["export"]["tried"]] == ["layers-model"]
    for backend in BACKENDS:
        assert entry["parity"]["backends"][backend]["max_abs_diff"] <= 1e-5, (case, backend, entry["parity"])
        want = _outputs(model, xs)
        assert len(got[backend]) == len(want)
        for g, w in zip(got[backend], want):
            assert g.shape == w.shape, (case, backend, g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case, names", [
    ("gap_head", {"flat": [4]}), ("dense_sequential", {"flat": [4]}), ("flatten_output", {"flat": [4]}),
    ("nested", {"base_flat": [5], "head_flat": [4]}), ("channels_first", {"flat": [4]}),
    ("shared", {"low_first": [3], "high_first__1": [3]}), ("rank1", {"flat": [1]})])
def test_rank2_flatten_is_a_reshape_under_its_own_name(exported, case, names):
    entry, bundle, _, _, _ = _case(exported, case)
    layers = _layers(bundle, case)
    for name, target in names.items():
        assert layers[name][0] == "Reshape" and layers[name][1]["target_shape"] == target, layers[name]
    assert not [n for n, (cls, _) in layers.items() if cls == "Flatten" and n in names]
    assert any("Flatten of a rank-" in note and "-> Reshape(" in note for note in entry["bridge_notes"]), entry["bridge_notes"]


def test_rank4_flatten_stays_a_flatten(exported):
    """The shared layers' rank-4 calls: a Flatten (the first call's layer, or one per later call)."""
    _, bundle, _, _, _ = _case(exported, "shared")
    layers = _layers(bundle, "shared")
    assert layers["high_first"][0] == "Flatten" and layers["low_first__1"][0] == "Flatten"


def test_flatten_output_keeps_its_name(exported):
    entry, _, _, _, _ = _case(exported, "flatten_output")
    assert [o["name"] for o in entry["outputs"]] == ["scores", "flat"]
    assert entry["outputs"][1]["shape"] == [None, 4]


def test_layer_lookup_by_name_sees_the_keras_shape():
    """Grad-CAM-style lookups: get_layer(name).output in the tf_keras twin (what is written to
    TF.js) has the Keras 3 layer's shape, nested models included."""
    import keras
    import tf_keras

    from facepack.export.bridge import to_tf_keras

    for build, path in ((_gap_head, ["flat"]), (_nested, ["base", "base_flat"]), (_nested, ["head", "head_flat"]),
                        (_flatten_output, ["flat"])):
        keras.utils.set_random_seed(7)
        model3 = build()
        model2, _ = to_tf_keras(model3, tf_keras)
        layer3, layer2 = model3, model2
        for name in path:
            layer3, layer2 = layer3.get_layer(name), layer2.get_layer(name)
        assert tuple(layer2.output.shape) == tuple(layer3.output.shape), (path, layer2.output.shape)
        # a sub-model up to the looked-up layer, as Grad-CAM builds one
        if len(path) == 1:
            sub = tf_keras.Model(model2.inputs, [model2.get_layer("conv").output, layer2.output])
            x = _sample(model3)[0]
            np.testing.assert_allclose(sub.predict(x, verbose=0)[1],
                                       keras.Model(model3.inputs, layer3.output).predict(x, verbose=0),
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case, dtypes", [("bool_as_int32", ["float32", "int32"]),
                                          ("int32_as_float32", ["float32", "float32"]),
                                          ("bool_output", ["float32", "bool"])])
def test_outputs_are_read_back_by_their_dtype(exported, case, dtypes):
    """Before: bool_as_int32 refused ("cannot reshape array of size 2 into shape (2,4)"), int32_as_float32
    refused ("output 1 differs from Keras by 9 (relative 1 > 0.0001)"). Now both export, and the
    integer/bool outputs equal Keras' exactly on both backends."""
    entry, _, model, xs, got = _case(exported, case)
    assert entry["format"] == "graph-model", entry["export"]["tried"]
    want = _outputs(model, xs)
    for backend in BACKENDS:
        assert entry["parity"]["backends"][backend]["max_abs_diff"] <= 1e-5, (case, backend, entry["parity"])
        assert [str(g.dtype) for g in got[backend]] == [{"bool": "uint8"}.get(d, d) for d in dtypes]
        np.testing.assert_allclose(got[backend][0], want[0], rtol=1e-5, atol=1e-5)
        assert got[backend][1].shape == want[1].shape
        assert np.array_equal(got[backend][1].astype(np.float64), want[1].astype(np.float64)), (backend, got[backend][1])
        assert 0 < np.count_nonzero(want[1]) < want[1].size or case == "int32_as_float32"  # not all one value
