"""Integer inputs and Keras 3's argmax in TF.js (tests/js/int_inputs.mjs, Node, cpu + wasm).

* generic.js: an int input's {data, shape} with a value outside int32 or not an integer throws,
  naming the input, the value and its index (TF.js computes int64 ids as int32: 2**40 became 0).
* layers/ops.js: Bitcast (no TF.js kernel) and BitwiseAnd (the converter reads its inputs under the
  wrong names; no broadcasting), which Keras 3's TensorFlow argmax uses for its -0.0 fix (signbit):
  such a model exports as a graph model and matches Keras, -0.0, ties and random values included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jsharness import ROOT, node_ready, run_node

pytestmark = pytest.mark.skipif(not node_ready()[0], reason=node_ready()[1])

BACKENDS = ("cpu", "wasm")
SPECIAL_ROWS = [
    [-0.0, 0.0, -1.0, -2.0, -3.0],  # Keras: 1 (-0.0 counts below +0.0); np.argmax: 0
    [0.0, -0.0, -1.0, -2.0, -3.0],
    [1.0, 1.0, 1.0, 0.0, 0.0],  # ties: the first
    [-0.0, -0.0, -0.0, -0.0, -0.0],
    [-1.0, -0.0, -0.0, -2.0, -3.0],
    [-5.0, -4.0, -0.0, -3.0, 0.0],
    [-5.0, -0.0, -1.0, -2.0, -3.0],
    [2.0, -1.0, 2.0, 2.0, -0.0],
]
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def argmax_run(tmp_path_factory):
    import keras

    work = tmp_path_factory.mktemp("argmax")
    x = keras.Input((5,), name="x")
    ids = keras.Input((3,), dtype="int64", name="ids")
    h = keras.layers.Dense(3, name="d")(x)
    model = keras.Model([x, ids], [keras.ops.argmax(x, axis=-1), keras.ops.argmax(h, axis=-1), h,
                                   keras.ops.cast(ids, "int32") * 3 + 1])
    model.save(work / "m.keras")
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-m", "facepack.export.cli", str(work / "m.keras"), "--name", "m",
                           "--out", str(work / "out")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"export failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    xs = np.concatenate([np.array(SPECIAL_ROWS, np.float32),
                         RNG.standard_normal((200, 5)).astype(np.float32)])
    id_rows = RNG.integers(-1000, 1000, (len(xs), 3)).astype(np.int64)
    expected = [np.asarray(o) for o in model.predict([xs, id_rows], verbose=0)]
    job = {"bundle": str(work / "out"), "name": "m", "backends": list(BACKENDS), "x": xs.tolist(),
           "ids": id_rows.tolist(),
           "bitcast": {"floats": [-0.0, 0.0, 1.0, -1.0, 3.4e38, -1e-45, float(np.float32(0.1))],
                       "ints": [-2147483648, 0, 1065353216, -1, 2143289344, 2139095040, 1]}}
    return {"work": work, "xs": xs, "expected": expected, "job": job, "stdout": proc.stdout,
            "js": run_node("int_inputs.mjs", job)}


def test_argmax_exports_as_a_graph_model_with_the_library_ops(argmax_run):
    manifest = json.loads((argmax_run["work"] / "out" / "manifest.json").read_text())
    assert manifest["models"]["m"]["format"] == "graph-model", argmax_run["stdout"]
    graph = json.loads(next((argmax_run["work"] / "out").rglob("model.json")).read_text())
    ops = {n["op"] for n in graph["modelTopology"]["node"]}
    assert {"Bitcast", "BitwiseAnd"} <= ops, sorted(ops)


@pytest.mark.parametrize("backend", BACKENDS)
def test_argmax_matches_keras(argmax_run, backend):
    got = argmax_run["js"][backend]["predict"]
    first, second, h, ids3 = argmax_run["expected"]
    xs = argmax_run["xs"]
    # the -0.0 rows matter: Keras' answer differs from a plain argmax there
    assert first[0] == 1 and np.argmax(xs[0]) == 0
    assert got[0]["dtype"] == "int32" and got[0]["data"] == first.tolist()
    assert got[1]["data"] == second.tolist()
    np.testing.assert_allclose(np.reshape(got[2]["data"], h.shape), h, atol=1e-5)
    assert got[3]["dtype"] == "int32" and np.reshape(got[3]["data"], ids3.shape).tolist() == ids3.tolist()
    assert argmax_run["js"][backend]["sameBig"], "BigInt64Array / Int32Array ids gave other results"


@pytest.mark.parametrize("backend", BACKENDS)
def test_int_inputs_outside_int32_throw(argmax_run, backend):
    errors = argmax_run["js"][backend]["errors"]
    expect = {"big": ("1099511627776", 1), "bigint": ("1099511627776n", 4), "negative": ("-2147483649", 2),
              "fraction": ("1.5", 2), "nan": ("NaN", 1), "uint32": ("4294967295", 2),
              "array_input": ("8589934592", 2)}
    for case, (value, index) in expect.items():
        msg = errors[case]
        assert msg.startswith(f'input "ids": value {value} at index {index} '), (case, msg)
        assert "int32" in msg and "TF.js" in msg, (case, msg)
    assert "not an integer" in errors["fraction"] and "outside int32" in errors["big"]
    assert errors["limits"] == "no error"
    assert errors["float_kept"] == "4"  # argmax of [1.5, 2.5, -0.5, 0.25, 3.75]: floats pass unchecked


@pytest.mark.parametrize("backend", BACKENDS)
def test_bitcast_reinterprets_bits_like_tf(argmax_run, backend):
    bc = argmax_run["js"][backend]["bitcast"]
    floats = np.array(argmax_run["job"]["bitcast"]["floats"], np.float32)
    ints = np.array(argmax_run["job"]["bitcast"]["ints"], np.int32)
    assert bc["f2i"] == floats.view(np.int32).tolist()
    assert bc["i2f_bits"] == ints.tolist()  # NaN / inf bit patterns survive the round trip
    assert bc["same"] == len(floats)
    assert bc["and"] == (ints & np.int32(-2147483648)).tolist()
    for key, pair in (("refuse64", "DT_FLOAT to DT_INT64"), ("refuse8", "DT_FLOAT to DT_UINT8"),
                      ("refuseU32", "DT_FLOAT to DT_UINT32"), ("refuseBool", "bool to int32")):
        assert bc[key].startswith(f"Bitcast from {pair} is not supported"), bc[key]


def test_int32_data_helper(argmax_run):
    d = argmax_run["js"]["intData"]
    assert d["nested"] == [1, 2, 3, -4] and d["passthrough"] and d["scalar"] == [7]
    assert d["string"].startswith('input "s": value 1 at index 0 is not an integer (a string)')


def test_exporter_reads_the_new_ops_from_ops_js():
    from facepack.export.tfjs_io import js_registered_ops

    assert {"Bitcast", "BitwiseAnd"} <= js_registered_ops()
