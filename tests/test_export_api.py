"""facepack.export.export_model / facepack-export (facepack/export/keras_export.py, cli.py).

One small model per case the exporter's core owns (several inputs, token ids, Masking + LSTM
through executeAsync, Lambda with/without --unsafe, a registered custom layer via
--custom-objects, a subclassed model, a model without weights, a fused conv bias of rank 4, a
mixed_float16 model, --sample), all exported once in a module fixture. Besides what each export
measured itself, every written bundle is run again here, all in ONE Node process on cpu and wasm,
against Keras outputs computed by this test.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

import numpy as np
import pytest

from export_support import NODE

from facepack.export.keras_export import CLI_FLAGS

pytestmark = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]

BACKENDS = ("cpu", "wasm")
REL_TOL = 1e-4  # max |TF.js - Keras| / max |Keras|, per output (float32 rounding only)
SCALE_FLOOR = 1e-3  # outputs smaller than this in magnitude are compared at REL_TOL * SCALE_FLOOR
SAMPLE_ROWS = 3

CUSTOM_MODULE = textwrap.dedent('''
    import keras


    @keras.saving.register_keras_serializable(package="facepack_test")
    class ScaledTanh(keras.layers.Layer):
        """tanh(x @ w) * scale: a layer no TF.js or tf_keras class knows."""

        def __init__(self, units=4, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.scale = units, scale

        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], self.units), initializer="random_normal")

        def call(self, x):
            return keras.ops.tanh(keras.ops.matmul(x, self.w)) * self.scale

        def get_config(self):
            return {**super().get_config(), "units": self.units, "scale": self.scale}
''')


def _models(tmp):
    """{case: (model object or .keras path, export kwargs, Keras model to compare with)}."""
    import keras

    from facepack.export.keras_export import load_custom_objects

    keras.utils.set_random_seed(7)
    L = keras.layers
    out = {}

    a, b = L.Input((8,), name="a"), L.Input((4,), name="b")
    two = keras.Model([a, b], L.Dense(3, name="d")(L.Concatenate(name="cat")([a, b])))
    np.savez(tmp / "two.npz", a=np.linspace(-3, 3, SAMPLE_ROWS * 8, dtype=np.float32).reshape(SAMPLE_ROWS, 8),
             b=np.full((SAMPLE_ROWS, 4), 5.0, np.float32))
    out["two_inputs"] = (two, {"sample": tmp / "two.npz"}, two)

    a, b = L.Input((8,), name="a"), L.Input((4,), name="b")  # dict in, dict out (two outputs)
    c = L.Concatenate(name="cat")([a, b])
    dict_io = keras.Model({"a": a, "b": b}, {"q": L.Dense(2, name="q")(c), "p": L.Dense(3, name="p")(c)})
    out["dict_io"] = (dict_io, {}, dict_io)

    tokens = L.Input((10,), dtype="int32", name="tokens")
    e = L.Embedding(50, 6, mask_zero=True, name="emb")(tokens)
    emb = keras.Model(tokens, L.Dense(2, name="d")(L.GlobalAveragePooling1D(name="gap")(e)))
    out["embedding"] = (emb, {}, emb)

    seq = L.Input((7, 3), name="seq")
    lstm = keras.Model(seq, L.LSTM(5, name="lstm")(L.Masking(0.0, name="mask")(seq)))
    out["masking_lstm"] = (lstm, {"paths": ("graph-model",)}, lstm)

    x = L.Input((4,), name="x")
    lam = keras.Model(x, L.Dense(3, name="d")(L.Lambda(lambda t: t * 3.0 + 1.0, name="lam")(x)))
    lam.save(tmp / "lambda.keras")
    out["lambda_unsafe"] = (tmp / "lambda.keras", {"unsafe": True}, lam)

    module = tmp / "my_layers.py"
    module.write_text(CUSTOM_MODULE)
    scaled = load_custom_objects(module)["ScaledTanh"]
    x = L.Input((6,), name="x")
    custom = keras.Model(x, scaled(3, name="scaled")(x))
    custom.save(tmp / "custom.keras")
    keras.saving.get_custom_objects().pop("facepack_test>ScaledTanh")  # as in a fresh process
    out["custom_objects"] = (tmp / "custom.keras", {"custom_objects": module}, custom)

    class Doubled(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = L.Dense(3)

        def call(self, inputs):
            return self.dense(inputs) * 2.0 - 1.0

    sub = Doubled(name="doubled")
    sub(np.zeros((1, 5), np.float32))
    out["subclassed"] = (sub, {}, sub)

    x = L.Input((3, 4), name="x")
    flat = keras.Model(x, L.Flatten(name="flat")(x))
    out["no_weights"] = (flat, {}, flat)

    # a learned position embedding (1, H, W, C) added to a patch conv: the converter fuses it
    # into the conv as a rank-4 bias, which TF.js WASM rejects unless it is split again
    x = L.Input((8, 8, 3), name="x")
    y = L.Conv2D(4, 3, use_bias=False, name="patches")(x)
    pos = np.random.default_rng(3).normal(0.0, 1.0, (1, 6, 6, 4)).astype(np.float32)
    rank4 = keras.Model(x, keras.ops.add(y, pos))
    out["rank4_bias"] = (rank4, {}, rank4)

    x = L.Input((6,), name="x")  # Dense(tanh) with a bias: _FusedMatMul(BiasAdd, Tanh), which TF.js cpu lacks
    dense = L.Dense(8, activation="tanh", name="d")
    fused_tanh = keras.Model(x, dense(x))
    dense.bias.assign(np.linspace(-1.0, 1.0, 8, dtype=np.float32))
    out["fused_tanh"] = (fused_tanh, {"paths": ("graph-model",)}, fused_tanh)

    x = L.Input((6,), name="x")  # Keras 3 gelu is exact: the graph holds Erfc, a kernel the JS library adds
    gelu = keras.Model(x, L.Dense(3, name="d2")(L.Dense(8, activation="gelu", name="d1")(x)))
    out["gelu_graph"] = (gelu, {"paths": ("graph-model",)}, gelu)

    keras.config.set_dtype_policy("mixed_float16")
    try:
        x = L.Input((8,), name="x")
        y = L.Dense(6, activation="relu", name="d1")(x)
        mixed = keras.Model(x, L.Dense(2, dtype="float32", name="d2")(y))
    finally:
        keras.config.set_dtype_policy("float32")
    out["mixed_float16"] = (mixed, {}, mixed)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (manifest, bundle dir, Keras model)} for every case, exported on cpu and wasm."""
    from facepack.export import export_model
    from facepack.export.node_check import NodeSession

    tmp = tmp_path_factory.mktemp("export_api")
    out = {}
    with NodeSession(BACKENDS) as session:  # one Node process for every export's check
        for case, (model, kwargs, keras_model) in _models(tmp).items():
            bundle = tmp / "bundles" / case
            manifest = export_model(model, bundle, name=case, backends=BACKENDS, log=None, _node_session=session,
                                    **kwargs)
            out[case] = (manifest, bundle, keras_model)
    return out


@pytest.fixture(scope="module")
def rerun(exported, tmp_path_factory):
    """Every exported model run again in ONE Node process on cpu and wasm, on the probe inputs
    rebuilt here: {case: {backend: outputs}} plus the Keras outputs {case: outputs}."""
    from facepack.export import manifest as manifest_mod
    from facepack.export.keras_export import input_specs, keras_outputs, make_probes
    from facepack.export.node_check import run_node_backends

    root = tmp_path_factory.mktemp("all")
    entries, requests, keras_outs = {}, [], {}
    for case, (manifest, bundle, keras_model) in exported.items():
        shutil.copytree(bundle / case, root / case)
        entries[case] = manifest["models"][case]
        model = keras_model
        if case == "mixed_float16":
            from facepack.export.keras_export import float32_twin

            model = float32_twin(keras_model)[0]
        specs = input_specs(model)
        probe = make_probes(model, specs, seed=99)
        if len(specs) > 1:  # by input name, in reverse order: generic.js must map names, not positions
            requests.append((case, {s.name: a for s, a in reversed(list(zip(specs, probe.arrays)))}))
        else:
            requests.append((case, probe.arrays))
        keras_outs[case] = keras_outputs(model, probe.arrays)
    (root / manifest_mod.MANIFEST_FILE).write_text(json.dumps({"spec": {}, "models": entries}))
    results = run_node_backends(root, BACKENDS, requests, root / "work")
    return {case: {b: results[b][i] for b in BACKENDS} for i, (case, _) in enumerate(requests)}, keras_outs


def run_package_example(bundle, tmp):
    """The npm package's example.mjs (npm/example-generic.mjs) for the bundle's first model: the
    package folder written into a project's node_modules (no pack / npm install; its dependencies
    linked from the repo's node_modules), then `node example.mjs` there. Returns the process."""
    import subprocess

    from export_support import ROOT
    from facepack.export.npm import build_npm_package

    modules = tmp / "proj" / "node_modules"
    modules.mkdir(parents=True)
    for dep in ("@tensorflow", "@jsquash", "pngjs"):
        (modules / dep).symlink_to(ROOT / "node_modules" / dep, target_is_directory=True)
    build_npm_package(bundle, modules / "genpkg", name="genpkg", pack=False, log=None)
    shutil.copy(modules / "genpkg" / "example.mjs", tmp / "proj" / "example.mjs")
    return subprocess.run([NODE, "example.mjs"], cwd=tmp / "proj", capture_output=True, text=True, timeout=180)


def example_pattern(shape, k: int) -> np.ndarray:
    """example.mjs's float input k: (i * 7 + 3 * k) % 256 at flat index i."""
    n = int(np.prod(shape))
    return ((np.arange(n) * 7 + 3 * k) % 256).astype(np.float32).reshape(shape)


CONTROL_FLOW_WARNING = "did not contain any nodes with control flow"


CASES = ["two_inputs", "dict_io", "embedding", "masking_lstm", "lambda_unsafe", "custom_objects", "subclassed",
         "no_weights", "rank4_bias", "mixed_float16", "gelu_graph", "fused_tanh"]


@pytest.mark.parametrize("case", CASES)
def test_case_matches_keras_on_cpu_and_wasm(exported, rerun, case):
    outs, keras_outs = rerun
    manifest, bundle, _ = exported[case]
    entry = manifest["models"][case]
    for backend in BACKENDS:
        got = outs[case][backend]
        assert not isinstance(got, Exception), f"{case}/{backend}: {got}"
        ref = keras_outs[case]
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert g.shape == r.shape, f"{case}/{backend}"
            rel = float(np.abs(g.astype(np.float64) - r).max()) / max(SCALE_FLOOR, float(np.abs(r).max()))
            assert rel < REL_TOL, f"{case}/{backend}: relative difference {rel:.3g}"
        measured = entry["parity"]["backends"][backend]
        assert measured["rel_diff"] < REL_TOL
    assert entry["export"]["tried"][-1] == {"path": entry["format"], "ok": True}
    assert entry["license"] == entry["run"]["license"] == "unknown, given by the user"
    assert (bundle / case / "model.json").is_file()


def test_layers_path_first_graph_path_when_it_fails(exported):
    fmt = {case: exported[case][0]["models"][case]["format"] for case in CASES}
    assert fmt["two_inputs"] == fmt["no_weights"] == fmt["mixed_float16"] == "layers-model"
    for case in ("lambda_unsafe", "custom_objects", "subclassed", "rank4_bias"):
        tried = exported[case][0]["models"][case]["export"]["tried"]
        assert fmt[case] == "graph-model" and tried[0]["path"] == "layers-model" and not tried[0]["ok"], case
        assert tried[0]["reason"] and "\n" not in tried[0]["reason"]


def test_parity_failure_in_tfjs_falls_back_to_the_graph_model(exported, tmp_path, monkeypatch):
    """A layers model that loads and runs in TF.js but differs from Keras (here: a bridge that
    gets one weight wrong by 1e-2) is rejected, and the graph model is written instead."""
    from facepack.export import bridge, export_model

    original = bridge.to_tf_keras

    def off_by_a_little(model3, tf_keras, name=None):
        model2, notes = original(model3, tf_keras, name=name)
        weights = model2.get_weights()
        weights[0] = weights[0] + 1e-2
        model2.set_weights(weights)
        return model2, notes

    monkeypatch.setattr(bridge, "to_tf_keras", off_by_a_little)
    model = exported["two_inputs"][2]
    entry = export_model(model, tmp_path / "b", name="two", log=None)["models"]["two"]
    tried = entry["export"]["tried"]
    assert [t["path"] for t in tried] == ["layers-model", "graph-model"] and entry["format"] == "graph-model"
    assert tried[0]["reason"].startswith("TF.js cpu on the generated probe: output 0 differs from Keras by")
    assert entry["parity"]["backends"]["wasm"]["rel_diff"] < REL_TOL


def test_graph_model_inputs_of_one_shape_are_fed_by_name(tmp_path):
    """Two inputs of the same dtype and shape: the tensorflowjs converter keys their signature by
    tensor name ("a:0", "b:0") instead of by input name (it matches signature names by shape). The
    graph model is written with those keys, and TF.js gets each input under its own key: run in
    Node (cpu, wasm) on inputs that differ, by name in reverse order and as a list, the outputs
    are Keras' (and far from Keras' with a and b swapped). Cases: Dense(Concatenate) and Subtract
    forced onto the graph path; a Siamese model sharing a DepthwiseConv1D, which the layers path
    refuses (so the graph path is its fallback)."""
    import keras

    from facepack.export import export_model
    from facepack.export import manifest as manifest_mod
    from facepack.export.keras_export import input_specs, keras_outputs, make_probes
    from facepack.export.node_check import NodeSession, run_node_backends

    keras.utils.set_random_seed(11)
    L = keras.layers
    a, b = L.Input((8,), name="a"), L.Input((8,), name="b")
    same = keras.Model([a, b], [L.Dense(3, name="d")(L.Concatenate(name="cat")([a, b])),
                                L.Subtract(name="sub")([a, b])])
    a, b = L.Input((10, 3), name="a"), L.Input((10, 3), name="b")
    shared = L.DepthwiseConv1D(3, name="dw")
    fa, fb = L.Flatten(name="fa")(shared(a)), L.Flatten(name="fb")(shared(b))
    siamese = keras.Model([a, b], L.Dense(2, name="d")(L.Concatenate(name="cat")([fa, L.Subtract(name="sub")([fa, fb])])))
    cases = {"same_shape": (same, ("graph-model",)), "siamese": (siamese, ("layers-model", "graph-model"))}

    root = tmp_path / "all"
    entries, requests, refs = {}, [], {}
    with NodeSession(BACKENDS) as session:
        for case, (model, paths) in cases.items():
            manifest = export_model(model, tmp_path / case, name=case, paths=paths, backends=BACKENDS, log=None,
                                    _node_session=session)
            entry = entries[case] = manifest["models"][case]
            tried = entry["export"]["tried"]
            assert entry["format"] == "graph-model" and tried[-1] == {"path": "graph-model", "ok": True}, case
            assert [(i["name"], i["signature_key"]) for i in entry["inputs"]] == [("a", "a:0"), ("b", "b:0")], case
            for backend in BACKENDS:
                assert entry["parity"]["backends"][backend]["rel_diff"] < REL_TOL, (case, backend)
            shutil.copytree(tmp_path / case / case, root / case)
            specs = input_specs(model)
            arrays = make_probes(model, specs, seed=99).arrays
            refs[case] = keras_outputs(model, arrays)
            swapped = keras_outputs(model, arrays[::-1])
            assert max(float(np.abs(s - r).max()) / max(SCALE_FLOOR, float(np.abs(r).max()))
                       for s, r in zip(swapped, refs[case])) > 0.1, f"{case}: swapping a and b must matter"
            requests.append((case, {s.name: x for s, x in reversed(list(zip(specs, arrays)))}))
            requests.append((case, list(arrays)))
        assert tried[0]["path"] == "layers-model" and "shared replaced layers are not supported" in tried[0]["reason"]
        (root / manifest_mod.MANIFEST_FILE).write_text(json.dumps({"spec": {}, "models": entries}))
        results = run_node_backends(root, BACKENDS, requests, tmp_path / "work", session)
    for backend in BACKENDS:
        for (case, x), got in zip(requests, results[backend]):
            how = f"{case}/{backend}/{'by name' if isinstance(x, dict) else 'list'}"
            assert not isinstance(got, Exception), f"{how}: {got}"
            assert len(got) == len(refs[case]), how
            for g, r in zip(got, refs[case]):
                assert g.shape == r.shape, how
                rel = float(np.abs(g.astype(np.float64) - r).max()) / max(SCALE_FLOOR, float(np.abs(r).max()))
                assert rel < REL_TOL, f"{how}: relative difference {rel:.3g}"
    # The generic npm package's example.mjs on it: one input per model input, fed by name (it fed
    # inputs[0] alone: "the model takes 2 input(s) (a, b), got 1"), predictAsync without TF.js'
    # control-flow notice; its numbers are Keras' on the same inputs.
    proc = run_package_example(tmp_path / "same_shape", tmp_path / "example")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert CONTROL_FLOW_WARNING not in proc.stdout + proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert line["inputs"] == ["a", "b"] and [o["shape"] for o in line["outputs"]] == [[1, 3], [1, 8]]
    want = keras_outputs(cases["same_shape"][0], [example_pattern((1, 8), 0), example_pattern((1, 8), 1)])
    for got, ref in zip(line["outputs"], want):
        np.testing.assert_allclose(got["first"], ref.ravel()[:10], atol=REL_TOL * max(1.0, float(np.abs(ref).max())))


def test_graph_failure_trace_feeds_inputs_by_signature_key(tmp_path):
    """locate_graph_failure runs the raw TF.js GraphModel, whose positional input order is its
    signature's (here a, z), not Keras' (z, a): fed by position it blamed ConcatV2 for a shape
    error of its own making; fed by signature key no node fails."""
    import keras

    from facepack.export import export_model
    from facepack.export.keras_export import input_specs, locate_graph_failure, make_probes

    L = keras.layers
    z, a = L.Input((8,), name="z"), L.Input((4,), name="a")
    model = keras.Model([z, a], L.Dense(3, name="d")(L.Concatenate(name="cat")([z, a])))
    export_model(model, tmp_path / "b", name="m", paths=("graph-model",), backends=("cpu",), log=None)
    probe = make_probes(model, input_specs(model))
    assert locate_graph_failure(tmp_path / "b", "m", probe, "cpu", model) is None


def test_graph_model_inputs_named_as_users_do(tmp_path):
    """Inputs of one shape whose names TensorFlow respells for its placeholders (upper case, '-',
    '.', a leading digit: 'Query-Ids:0' is 'query_ids:0'), forced onto the graph path: exported,
    each Keras input under its own key, equal to Keras in Node (export_model's own check). Before:
    refused, "its signature inputs ['query_ids:0', 'st_doc:0'] do not name the Keras inputs"."""
    import keras

    from facepack.export import export_model

    keras.utils.set_random_seed(5)
    L = keras.layers
    a, b = L.Input((6,), name="Query-Ids"), L.Input((6,), name="1st.Doc")
    model = keras.Model([a, b], L.Dense(2, name="d")(L.Concatenate(name="cat")([a, L.Subtract(name="sub")([a, b])])))
    manifest = export_model(model, tmp_path / "named", name="named", paths=("graph-model",), backends=BACKENDS, log=None)
    entry = manifest["models"]["named"]
    assert entry["format"] == "graph-model"
    assert [(i["name"], i["signature_key"]) for i in entry["inputs"]] == [("Query-Ids", "query_ids:0"),
                                                                          ("1st.Doc", "st_doc:0")]
    for backend in BACKENDS:
        assert entry["parity"]["backends"][backend]["rel_diff"] < REL_TOL, backend


def _run_generic_js(bundle, name: str, body: str) -> subprocess.CompletedProcess:
    """Node, as an ES module: `net` = static/facepack/generic.js load(bundle, name), then `body`."""
    import subprocess

    from export_support import ROOT

    script = (f"import {{ load }} from {json.dumps(str(ROOT / 'static' / 'facepack' / 'generic.js'))};\n"
              f"const net = await load({json.dumps(str(bundle))}, {json.dumps(name)});\n" + body)
    return subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_signature_keys_match_inputs_by_name_or_tensor_name_only():
    """keras_export.signature_input_keys: the key named after the input, else "<name>:<N>" when
    exactly one key is that; no positional guess; a one-line reason otherwise."""
    from facepack.export.keras_export import _Rejected, signature_input_keys

    assert signature_input_keys(["a", "b"], ["b", "a"]) == ["a", "b"]
    assert signature_input_keys(["a", "b"], ["b:0", "a:0"]) == ["a:0", "b:0"]
    assert signature_input_keys(["a", "b", "c"], ["c", "b:0", "a:0"]) == ["a:0", "b:0", "c"]
    assert signature_input_keys(["x"], ["serving_x"]) == ["serving_x"]  # one input, one key
    assert signature_input_keys(["a:0", "a"], ["a", "a:0"]) == ["a:0", "a"]  # exact names first
    # TensorFlow's spelling of the placeholders (measured with TF 2.19, new-user names).
    assert signature_input_keys(["Query", "Doc"], ["query:0", "doc:0"]) == ["query:0", "doc:0"]
    assert signature_input_keys(["query-ids", "feat.a", "1st"], ["st:0", "feat_a:0", "query_ids:0"]) == \
        ["query_ids:0", "feat_a:0", "st:0"]
    for names, keys, words in ((["a", "b"], ["input_1", "input_2"], "no key is 'a' or 'a:N'"),
                               (["a", "b"], ["a:0", "a:1", "b"], "2 keys could be input 'a' (a:0, a:1)"),
                               (["ab", "b"], ["ab:0", "b:0"], None),
                               (["a", "b"], ["a", "b", "c:0"], "key(s) ['c:0'] name no Keras input"),
                               (["a", "b"], ["a"], "no key is 'b' or 'b:N'")):
        if words is None:
            assert signature_input_keys(names, keys) == keys
            continue
        with pytest.raises(_Rejected) as excinfo:
            signature_input_keys(names, keys)
        message = str(excinfo.value)
        assert "do not name the Keras inputs" in message and words in message and "\n" not in message, message


def test_masking_lstm_is_an_async_graph_model(exported):
    entry = exported["masking_lstm"][0]["models"]["masking_lstm"]
    assert entry["format"] == "graph-model" and entry["execution"] == "async"
    assert "Masking" in entry["parity"]["probe"]  # the probe masks steps


def test_probes_follow_input_specs(exported):
    emb = exported["embedding"][0]["models"]["embedding"]
    assert [{k: i[k] for k in ("name", "shape", "dtype")} for i in emb["inputs"]] == \
        [{"name": "tokens", "shape": [None, 10], "dtype": "int32"}]
    assert "token ids in [0, 50)" in emb["parity"]["probe"] and "mask_zero" in emb["parity"]["probe"]
    assert emb["inputs"][0]["token_ids"] == {"min": 0, "max_exclusive": 50, "source": "embedding_input_dim"}
    two = exported["two_inputs"][0]["models"]["two_inputs"]
    assert [i["name"] for i in two["inputs"]] == ["a", "b"]


def test_dict_outputs_keep_keras_order(exported):
    entry = exported["dict_io"][0]["models"]["dict_io"]
    assert [o["name"] for o in entry["outputs"]] == ["p", "q"]  # keras.tree.flatten: sorted keys
    assert [o["shape"] for o in entry["outputs"]] == [[None, 3], [None, 2]]


def test_sample_is_checked_too(exported):
    entry = exported["two_inputs"][0]["models"]["two_inputs"]
    for backend in BACKENDS:
        assert set(entry["parity"]["backends"][backend]["probes"]) == {"generated", "sample"}
    assert f"a [{SAMPLE_ROWS}, 8]" in entry["parity"]["probe"]


def test_rank4_bias_is_split_for_wasm(exported):
    notes = exported["rank4_bias"][0]["models"]["rank4_bias"]["export"]["notes"]
    assert any("split 1 fused conv/matmul" in n for n in notes)


def test_fused_tanh_is_split_for_the_cpu_backend(exported):
    """TF.js' cpu backend has no fused matmul + tanh. TensorFlow's graph optimiser fuses
    MatMul + BiasAdd + Tanh only when it runs with oneDNN (on by default on CPUs with AVX-512):
    there the exporter splits the node again and says so; without oneDNN nothing is fused. Either
    way the bundle's graph holds no fused tanh (its numbers: test_case_matches_keras_on_cpu_and_wasm)."""
    from tensorflow.python.util import _pywrap_util_port

    from facepack.export.tfjs_io import _fused_ops

    _, bundle, _ = exported["fused_tanh"]
    notes = exported["fused_tanh"][0]["models"]["fused_tanh"]["export"]["notes"]
    nodes = json.loads((bundle / "fused_tanh" / "model.json").read_text())["modelTopology"]["node"]
    fused = [n["name"] for n in nodes if n["op"].startswith("_Fused") and "Tanh" in _fused_ops(n)]
    assert not fused, f"fused tanh nodes left in the bundle: {fused}"
    assert any(n["op"] == "Tanh" for n in nodes)
    if _pywrap_util_port.IsMklEnabled():
        assert any("split 1 fused conv/matmul" in n for n in notes)


def test_node_session_restarts_after_a_failed_run(exported, tmp_path):
    """A failed run can leave TF.js' WASM heap corrupt: the session starts a fresh Node after it."""
    from facepack.export.node_check import NodeRunError, NodeSession

    manifest, bundle, model = exported["no_weights"]
    x = np.ones((2, 3, 4), np.float32)
    with NodeSession(BACKENDS) as session:
        first = session._proc.pid
        bad = session.run(bundle, [("no_such_model", x)], tmp_path / "bad")
        assert all(isinstance(bad[b][0], NodeRunError) and "no_such_model" in str(bad[b][0]) for b in BACKENDS)
        assert session._proc.pid != first
        good = session.run(bundle, [("no_weights", x)], tmp_path / "good")
        assert all(np.array_equal(good[b][0][0], x.reshape(2, 12)) for b in BACKENDS)


def test_exact_gelu_graph_uses_the_js_erfc_kernel(exported):
    notes = exported["gelu_graph"][0]["models"]["gelu_graph"]["export"]["notes"]
    assert any("op(s) Erfc run by the JS library" in n for n in notes)


def test_no_weights_bundle_has_only_model_json(exported):
    entry = exported["no_weights"][0]["models"]["no_weights"]
    assert [f["path"] for f in entry["files"]] == ["no_weights/model.json"]


def test_mixed_float16_says_float32_twin(exported):
    entry = exported["mixed_float16"][0]["models"]["mixed_float16"]
    assert entry["export"]["float32_twin_of"] == "mixed_float16"
    assert any("float32 twin" in n for n in entry["export"]["notes"])


# --- refusals and the CLI ----------------------------------------------------------------------

def _one_line_error(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_lambda_without_unsafe_is_refused(exported, tmp_path):
    from facepack.export import ExportError, export_model

    path = exported["lambda_unsafe"][1].parent.parent / "lambda.keras"
    with pytest.raises(ExportError) as excinfo:
        export_model(path, tmp_path / "b", name="lam", log=None)
    assert "layer Lambda" in _one_line_error(excinfo) and "unsafe=True" in str(excinfo.value)
    assert "--unsafe" in excinfo.value.render(CLI_FLAGS)
    assert not (tmp_path / "b").exists()


def test_unknown_custom_layer_names_the_flag(exported, tmp_path):
    import keras

    from facepack.export import ExportError, export_model

    keras.saving.get_custom_objects().pop("facepack_test>ScaledTanh", None)  # the fixture's import registered it
    path = exported["custom_objects"][1].parent.parent / "custom.keras"
    with pytest.raises(ExportError) as excinfo:
        export_model(path, tmp_path / "b", name="c", log=None)
    assert "'ScaledTanh'" in _one_line_error(excinfo) and "custom_objects=your_module.py" in str(excinfo.value)


def test_refusal_names_the_op_and_each_path(tmp_path):
    import keras

    from facepack.export import ExportError, export_model

    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.ops.erfinv(keras.ops.tanh(keras.layers.Dense(4, name="d")(x))))
    old = tmp_path / "b"
    old.mkdir()
    (old / "keep.txt").write_text("old bundle")
    (old / "manifest.json").write_text(json.dumps({"format_version": 1, "models": {}}))  # a bundle: refused otherwise
    with pytest.raises(ExportError) as excinfo:
        export_model(model, old, name="inv", log=None)
    text = _one_line_error(excinfo)
    assert text.startswith("cannot export 'inv' to TF.js: layers-model: ")
    assert "graph-model: " in text and "Erfinv" in text and "What to do:" in text
    assert (old / "keep.txt").read_text() == "old bundle"


def test_bad_arguments_name_the_parameter(tmp_path):
    """The Python API names parameters (name=), the console its flags (--name): one mapping."""
    from facepack.export import ExportError, export_model

    for kwargs, word, flag in (({"name": "bad name"}, "name=", "--name "),
                               ({"name": "n", "backends": ("webgl",)}, "backends=", "--backends "),
                               ({"name": "n", "quantize": "int4"}, "quantize=", "--quantize ")):
        with pytest.raises(ExportError) as excinfo:
            export_model(tmp_path / "missing.keras", tmp_path / "b", log=None, **kwargs)
        assert str(excinfo.value).startswith(word) and "--" not in str(excinfo.value)
        assert excinfo.value.render(CLI_FLAGS).startswith(flag)
    with pytest.raises(ExportError, match="expected a Keras 3 .keras file .not found.") as excinfo:
        export_model(tmp_path / "missing.keras", tmp_path / "b", name="n", log=None)
    assert excinfo.value.render(CLI_FLAGS).startswith("MODEL ")


def test_cli_help_and_exit_codes(exported, tmp_path, capsys):
    from facepack.export.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for words in ("layers model", "graph model", "--sample", "--custom-objects", "--unsafe", "--quantize",
                  "--backends", "--license", "default cpu,wasm", "Exit codes"):
        assert words in text, words
    path = exported["lambda_unsafe"][1].parent.parent / "lambda.keras"
    assert main([str(path), "--name", "lam", "--out", str(tmp_path / "refused"), "--quiet"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("facepack-export:")]
    assert len(lines) == 1 and "--unsafe" in lines[0] and "left unchanged" in lines[0]
    code = main([str(path), "--name", "lam", "--out", str(tmp_path / "ok"), "--unsafe", "--quiet",
                 "--license", "CC-BY-4.0"])
    assert code == 0
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    assert manifest["models"]["lam"]["run"]["license"] == "CC-BY-4.0"

    # Another process writing the same folder: one line naming it, exit 75 (EX_TEMPFAIL), no traceback.
    import subprocess

    busy = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom facepack.export.bundle import export_lock\n"
         "with export_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n", str(busy)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main([str(path), "--name", "lam", "--out", str(busy), "--unsafe", "--quiet"])
        err = capsys.readouterr().err
        assert code == 75, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and f"PID {holder.pid}" in lines[0] and "Traceback" not in err, err
    finally:
        holder.kill()
        holder.wait()


def test_to_tfjs_model_flag_calls_the_same_exporter(exported, tmp_path):
    from export_support import ROOT

    sys.path.insert(0, str(ROOT / "convert"))
    try:
        import to_tfjs
    finally:
        sys.path.pop(0)
    path = exported["lambda_unsafe"][1].parent.parent / "lambda.keras"
    assert to_tfjs.main(["--model", str(path), "--name", "lam", "--out", str(tmp_path / "b")]) == 2
    assert to_tfjs.main(["--model", str(path), "--name", "lam", "--out", str(tmp_path / "b"), "--unsafe",
                         "--backends", "wasm"]) == 0
    entry = json.loads((tmp_path / "b" / "manifest.json").read_text())["models"]["lam"]
    assert list(entry["parity"]["backends"]) == ["wasm"] and entry["format"] == "graph-model"


def test_build_bundle_user_model_takes_several_inputs(exported, tmp_path):
    """build_bundle(user_model=...) (the face-bundle route) probes every input too (it raised
    "TypeError: 'tuple' object cannot be interpreted as an integer" on a 2-input model)."""
    from facepack.export import build_bundle

    path = tmp_path / "two.keras"
    exported["two_inputs"][2].save(path)
    manifest = build_bundle(tmp_path / "b", user_model=path, user_name="two", node_check=True, log=None)
    entry = manifest["models"]["two"]
    assert entry["parity"]["max_abs_diff"] <= entry["parity"]["tolerance"]
    assert entry["parity"]["tfjs"]["max_abs_diff"] <= entry["parity"]["tolerance"]
    assert "a [2, 8] float32" in entry["parity"]["probe"] and "b [2, 4] float32" in entry["parity"]["probe"]


def test_sync_predict_of_a_control_flow_model_names_predict_async(exported):
    """generic.js: predict() on a graph model with control flow says to use predictAsync."""
    bundle = exported["masking_lstm"][1]
    proc = _run_generic_js(bundle, 'masking_lstm',
                           "const x = { data: new Float32Array(2 * 7 * 3).fill(0.5), shape: [2, 7, 3] };\n"
                           "try { net.predict(x); console.log('NO ERROR'); } catch (err) { console.log(err.message); }\n"
                           "const y = await net.predictAsync(x);\n"
                           "console.log(JSON.stringify({ async: net.async, shape: y.shape }));\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip() and not line.startswith(("=", "Hi,"))]
    assert "use predictAsync" in lines[0], lines
    assert json.loads(lines[-1]) == {"async": True, "shape": [2, 5]}


def test_generic_package_example_runs_an_async_model(exported, tmp_path):
    """The npm package's example.mjs on the Masking + LSTM graph model (execution "async"): it
    called predict ("use predictAsync / runModelAsync"); now predictAsync, exit 0. An unknown
    model name exits 1 with one line on stderr (it surfaced through tfjs-backend-wasm's rethrow
    with exit code 7)."""
    manifest, bundle, model = exported["masking_lstm"]
    assert manifest["models"]["masking_lstm"]["execution"] == "async"
    proc = run_package_example(bundle, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert line["inputs"] == ["seq"] and [o["shape"] for o in line["outputs"]] == [[1, 5]]
    ref = np.asarray(model(example_pattern((1, 7, 3), 0)))
    np.testing.assert_allclose(line["outputs"][0]["first"], ref.ravel(), atol=1e-4)
    readme = (tmp_path / "proj" / "node_modules" / "genpkg" / "README.md").read_text()
    assert "- input `seq`: shape [N, 7, 3], float32" in readme and "await net.predictAsync(inputs)" in readme
    assert "photo.jpg" not in readme and "raw RGB pixel values" not in readme
    example = tmp_path / "proj" / "example.mjs"
    example.write_text(example.read_text().replace("loadModel('masking_lstm')", "loadModel('nope')"))
    import subprocess

    proc = subprocess.run([NODE, "example.mjs"], cwd=tmp_path / "proj", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    errors = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(errors) == 1 and errors[0].startswith("example.mjs: ") and "nope" in errors[0], proc.stderr[-2000:]


def test_generic_package_example_feeds_token_ids(exported, tmp_path):
    """example.mjs on an int32 Embedding(50) input: ids 0, 1, 2, ... below the bound the export
    checked (the manifest's inputs[].token_ids: TOKEN_ID_RANGE {"tokens": [0, 50]}), equal to Keras on the
    same ids; the README lists the input as int32 token ids; tsc (strict, checkJs) accepts it."""
    import subprocess

    from export_support import ROOT

    manifest, bundle, model = exported["embedding"]
    proc = run_package_example(bundle, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    example = (tmp_path / "proj" / "example.mjs").read_text()
    assert 'const TOKEN_ID_RANGE = {"tokens": [0, 50]};' in example
    (line,) = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    ref = np.asarray(model((np.arange(10, dtype=np.int32) % 50)[None]))
    np.testing.assert_allclose(line["outputs"][0]["first"], ref.ravel(), atol=1e-5)
    readme = (tmp_path / "proj" / "node_modules" / "genpkg" / "README.md").read_text()
    assert "- input `tokens`: shape [N, 10], int32 (token ids; the export checked ids in [0, 50))" in readme
    check = tmp_path / "proj" / "typecheck"
    check.mkdir()
    (tmp_path / "proj" / "node_modules" / "@types").symlink_to(ROOT / "node_modules" / "@types")
    (check / "example.mjs").write_text(example)
    (check / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "strict": True, "noEmit": True, "skipLibCheck": True, "allowJs": True, "checkJs": True,
        "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "lib": ["es2022"],
        "types": ["node"]}, "include": ["*.mjs"]}))
    proc = subprocess.run([str(ROOT / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=check, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_predict_async_of_a_sync_graph_model_is_quiet(exported):
    """generic.js predictAsync on a graph model without control flow (manifest execution "sync")
    runs the sync path: TF.js printed "This model execution did not contain any nodes with control
    flow ... You can use model.execute() instead." on every call. Same outputs as predict."""
    manifest, bundle, _ = exported["gelu_graph"]
    entry = manifest["models"]["gelu_graph"]
    assert entry["format"] == "graph-model" and entry["execution"] == "sync"
    proc = _run_generic_js(bundle, 'gelu_graph',
                           "const x = { data: Float32Array.from({ length: 12 }, (_, i) => i / 4 - 1), shape: [2, 6] };\n"
                           "const a = await net.predictAsync(x); const b = await net.predictAsync(x); const c = net.predict(x);\n"
                           "console.log(JSON.stringify({ a: Array.from(a.dataSync()), b: Array.from(b.dataSync()),"
                           " c: Array.from(c.dataSync()) }));\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert CONTROL_FLOW_WARNING not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    got = json.loads([x for x in proc.stdout.splitlines() if x.startswith("{")][-1])
    assert got["a"] == got["b"] == got["c"] and len(got["a"]) == 6


def test_float16_weights_are_held_to_the_rms_tolerance(tmp_path):
    from facepack.export import export_model
    import keras

    from facepack.export.keras_export import QUANT_RMS_TOL as RMS_REL_TOL

    from facepack.export.tfjs_io import QUANT_MIN_ELEMENTS

    keras.utils.set_random_seed(11)
    x = keras.Input((64,), name="x")
    model = keras.Model(x, keras.layers.Dense(128, name="d")(x))  # 8192 kernel values: quantised
    assert 64 * 128 >= QUANT_MIN_ELEMENTS
    entry = export_model(model, tmp_path / "b", name="q", quantize="float16", backends=("wasm",),
                         log=None)["models"]["q"]
    assert entry["precision"] == entry["export"]["precision"] == "float16"
    assert entry["parity"]["criterion"] == "rel_rms" and entry["parity"]["tolerance"] == RMS_REL_TOL["float16"]
    assert "rel_tol" not in entry["parity"]  # the float32 criterion's; it contradicted "rel_rms"
    # float16 rounding of the kernel (relative ~2^-11 per value) shows; far below the tolerance
    assert 1e-5 < entry["parity"]["backends"]["wasm"]["rel_rms"] <= RMS_REL_TOL["float16"]


def test_quantize_that_changes_nothing_says_float32(tmp_path):
    """A model whose every weight tensor is under QUANT_MIN_ELEMENTS values keeps float32 bytes under
    --quantize float16: the manifest says float32 (held to the float32 criterion) and why."""
    import keras

    from facepack.export import export_model
    from facepack.export.tfjs_io import QUANT_MIN_ELEMENTS, weight_specs

    keras.utils.set_random_seed(12)
    x = keras.Input((12, 12, 3), name="x")
    y = keras.layers.Conv2D(6, 3, name="c")(x)  # 162 kernel values
    model = keras.Model(x, keras.layers.Dense(3, name="d")(keras.layers.GlobalAveragePooling2D(name="g")(y)))
    assert max(int(np.prod(w.shape)) for w in model.weights) < QUANT_MIN_ELEMENTS
    lines = []
    entry = export_model(model, tmp_path / "b", name="tiny", quantize="float16", backends=(), log=lines.append)["models"]["tiny"]
    assert not any(w.get("quantization") for w in weight_specs(tmp_path / "b" / "tiny"))  # float32 bytes
    assert {w["dtype"] for w in weight_specs(tmp_path / "b" / "tiny")} == {"float32"}
    assert entry["precision"] == entry["export"]["precision"] == "float32"
    assert entry["parity"]["criterion"] == "max_abs_diff"
    assert any(f"no weight tensor has >= {QUANT_MIN_ELEMENTS} values" in n for n in entry["export"]["notes"])
    assert any("every weight stays float32" in line for line in lines)


def _tree(folder) -> dict:
    """{relative path: bytes} of every file under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_keeps_other_models_and_refuses_a_foreign_folder(exported, tmp_path):
    """--out that holds the user's files is refused (the swap would delete them); a bundle gets
    NAME added and keeps its other models byte-identical."""
    from facepack.export import ExportError, export_model

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("notes")
    model = exported["no_weights"][2]
    with pytest.raises(ExportError) as excinfo:
        export_model(model, foreign, name="c", backends=(), log=None)
    assert _one_line_error(excinfo).startswith("out_dir=") and "not a facepack bundle" in str(excinfo.value)
    assert excinfo.value.render(CLI_FLAGS).startswith("--out ")
    assert _tree(foreign) == {"notes.txt": b"notes"}

    bundle = tmp_path / "bundle"
    shutil.copytree(exported["two_inputs"][1], bundle)
    before = _tree(bundle)
    manifest = export_model(model, bundle, name="second", backends=(), log=None)
    assert list(manifest["models"]) == ["two_inputs", "second"]
    assert manifest["spec"] == {}  # user models only: no face settings (they were ~6 KB)
    after = _tree(bundle)
    assert {k: v for k, v in after.items() if k.startswith("two_inputs/")} == \
        {k: v for k, v in before.items() if k.startswith("two_inputs/")}
    assert json.loads(after["manifest.json"])["models"]["two_inputs"] == \
        json.loads(before["manifest.json"])["models"]["two_inputs"]


OUTLIER_WEIGHT = 40.0  # one kernel weight among N(0, 1/256) ones: uint8's 256 levels go to it


def test_quantised_exports_are_held_to_measured_limits(exported, tmp_path):
    """uint8 of a Dense 256->64->10 softmax model with one outlier weight: refused in one line that
    suggests float16, the bundle left byte-identical; float16 passes, with the rel_rms criterion,
    its limit and the top-1 agreement in the manifest."""
    import keras

    from facepack.export import ExportError, export_model
    from facepack.export.keras_export import QUANT_RMS_TOL

    keras.utils.set_random_seed(5)
    x = keras.Input((256,), name="x")
    model = keras.Model(x, keras.layers.Dense(10, activation="softmax", name="p")(
        keras.layers.Dense(64, activation="relu", name="h")(x)))
    kernel, bias = model.get_layer("h").get_weights()
    kernel[3, 7] = OUTLIER_WEIGHT
    model.get_layer("h").set_weights([kernel, bias])
    bundle = tmp_path / "bundle"
    shutil.copytree(exported["two_inputs"][1], bundle)
    before = _tree(bundle)
    with pytest.raises(ExportError) as excinfo:
        export_model(model, bundle, name="outlier", quantize="uint8", backends=(), log=None)
    text = _one_line_error(excinfo)
    assert "with uint8 weights" in text and f"> {QUANT_RMS_TOL['uint8']:g}" in text
    assert "quantize=float16" in text and "--quantize float16" in excinfo.value.render(CLI_FLAGS)
    assert _tree(bundle) == before
    lines = []
    parity = export_model(model, bundle, name="outlier", quantize="float16", backends=(),
                          log=lines.append)["models"]["outlier"]["parity"]
    assert parity["criterion"] == "rel_rms" and parity["tolerance"] == QUANT_RMS_TOL["float16"]
    assert "rel_tol" not in parity and parity["rel_rms"] <= QUANT_RMS_TOL["float16"]
    assert parity["top1_agreement"] == 1.0 and parity["top1_rows"] == 2
    assert any(line.startswith("criterion: rms(tfjs - keras) / rms(keras) <= 0.01 (float16") for line in lines)


def test_sample_and_model_file_errors_say_what_is_wrong(exported, tmp_path):
    from facepack.export import ExportError, export_model
    from facepack.export.keras_export import _one_line

    model = exported["two_inputs"][2]
    cases = {"nan": ({"a": np.full((2, 8), np.nan, np.float32), "b": np.zeros((2, 4), np.float32)},
                     "input 'a' holds 16 NaN/inf value(s) of 16"),
             "batch": ({"a": np.zeros((3, 8), np.float32), "b": np.zeros((2, 4), np.float32)},
                       "different batch sizes {'a': 3, 'b': 2}")}
    for case, (sample, words) in cases.items():
        with pytest.raises(ExportError) as excinfo:
            export_model(model, tmp_path / case, name=case, sample=sample, backends=(), log=None)
        assert _one_line_error(excinfo).startswith("sample=dict: ") and words in str(excinfo.value), case
    (tmp_path / "junk.keras").write_text("not a zip")
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    for path, words in ((tmp_path / "junk.keras", "not a .keras file (a .keras file is a zip archive)"),
                        (saved, "SavedModel folders are not supported")):
        with pytest.raises(ExportError, match=words.replace("(", r"\(").replace(")", r"\)")):
            export_model(path, tmp_path / "o", name="m", log=None)
    keras_style = ValueError("Exception encountered when calling UpSampling2D.call().\n\n\x1b[1mUse a static "
                             "shape; specify the `output_shape` argument.\x1b[0m\n\nArguments received by x:\n  • a")
    assert _one_line(keras_style) == ("Exception encountered when calling UpSampling2D.call(). Use a static shape; "
                                      "specify the `output_shape` argument")


def test_probes_look_through_augmentation_and_vary_free_sizes():
    import keras

    from facepack.export.keras_export import (FREE_DIM_IMAGE, FREE_DIM_IMAGE_2, has_free_dims, input_specs,
                                              make_probes)

    L = keras.layers
    x = keras.Input((None, None, 3), name="img")
    aug = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1)], name="aug")
    model = keras.Model(x, L.GlobalAveragePooling2D()(L.Conv2D(2, 3)(L.Rescaling(1 / 255)(aug(x)))))
    specs = input_specs(model)
    first, second = make_probes(model, specs), make_probes(model, specs, second=True)
    assert has_free_dims(specs) and first.kind == "generated" and second.kind == "generated-2"
    assert first.arrays[0].shape[1:3] == (FREE_DIM_IMAGE, FREE_DIM_IMAGE) != second.arrays[0].shape[1:3] == \
        (FREE_DIM_IMAGE_2, FREE_DIM_IMAGE_2)
    assert first.arrays[0].max() > 1.0 and first.arrays[0].min() >= 0.0 and "raw RGB 0..255" in first.desc


def test_cli_argument_errors_come_before_tensorflow(tmp_path):
    """Bad --name / --backends / a missing MODEL exit 2 without importing TensorFlow."""
    import subprocess

    from export_support import ROOT

    script = ("import sys\nfrom facepack.export.cli import main\n"
              f"for argv in (['m.keras', '--name', 'bad name'], [{str(ROOT / 'README.md')!r}, '--name', 'n'], "
              f"['{tmp_path}/missing.keras', '--name', 'n'], ['m.keras', '--name', 'n', '--backends', 'webgl']):\n"
              "    print(main(argv), 'tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.split("\n")[:4] == ["2 False"] * 4, proc.stdout + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("facepack-export: error: ")]
    assert [e.split(": ")[2].split(" ")[0] for e in errors] == ["--name", "MODEL", "MODEL", "--backends"], errors
