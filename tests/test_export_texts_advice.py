"""The "What to do: ..." end of export_model's refusal (keras_export._advice) matches why each path
was refused. Before, every refusal that was not about an unsupported op/kernel or a parity miss
ended in "replace the layer named above ...", also when no layer was named: the graph path refused
because Keras runs on jax (never tried), inputs whose names TensorFlow cannot key apart, a graph
model that could not be checked because no TF.js backend was requested. And (F5) a layers path
refused for a Keras op with no tf_keras layer beside a graph path refused only for input names still
led with "layers-model: replace that layer/op": renaming the inputs is enough there.

The reasons below are the ones export_model gave (measured with TF 2.19 / Keras 3.15), then each
kind is reproduced end to end."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from export_support import NODE

OLD_ADVICE = "replace the layer named above"
HAS_JAX = importlib.util.find_spec("jax") is not None

# reasons export_model recorded, per kind (shortened where long)
BACKEND = ("the graph path needs Keras on TensorFlow and this process runs Keras on 'jax': set "
           "KERAS_BACKEND=tensorflow before the first `import keras` (a .keras file saved under any backend "
           "loads), or use the facepack-export command")
TANH_OP = ("tf_keras bridge: Keras op Tanh (node 'tanh', from keras.src.ops.numpy) has no tf_keras layer; a graph "
           "model carries Keras ops")
COLLISION = ("SavedModel/tensorflowjs converter: Name collision after sanitization. Please rename tf.function input "
             "parameters. Original: ['a-b', 'a.b'], Sanitized: ['a_b']")
NON_UNIQUE = ("SavedModel/tensorflowjs converter: Got non-flat/non-unique argument names for SavedModel signature "
              "'serve': more than one argument to '__inference_signature_wrapper___call___84' was named 'aB'")
SIGNATURE_KEYS = ("graph model: its signature inputs ['x_0:0', 'x:0'] do not name the Keras inputs ['x', '1x']: "
                  "two inputs would share one key (['x:0', 'x:0'])")
# an IntegerLookup's table captured by the SavedModel signature (measured; not an input name)
LEFT_OVER_KEY = ("graph model: its signature inputs ['unknown:0', 'ids'] do not name the Keras inputs ['ids']: "
                 "key(s) ['unknown:0'] name no Keras input")
NO_BACKENDS = "a graph model can only be checked in TF.js; pass backends"
NO_KERNEL = ("SavedModel/tensorflowjs converter: TF.js has no kernel for op(s) Erfinv (nor does "
             "static/facepack/layers/ops.js)")
DIFFERS = "TF.js cpu on the generated probe: output 0 differs from Keras by 0.0123 (relative 0.012 > 0.0001)"
LOCATED = ("TF.js wasm: op Cumsum (graph node 'StatefulPartitionedCall/functional_1/Cumsum', Keras op 'cumsum') "
           "fails: Kernel 'Cumsum' not registered for backend 'wasm'")


def test_advice_follows_the_kind_of_refusal():
    from facepack.export import keras_export as ke

    def advice(**reasons):
        return ke._advice({k.replace("_", "-"): v for k, v in reasons.items()})

    # the graph path was never tried: that comes first, whatever the layers path said
    assert advice(graph_model=BACKEND) == ke.ADVICE_BACKEND
    assert advice(layers_model=TANH_OP, graph_model=BACKEND) == ke.ADVICE_BACKEND
    assert "KERAS_BACKEND=tensorflow" in ke.ADVICE_BACKEND
    for reason in (COLLISION, NON_UNIQUE, SIGNATURE_KEYS):
        assert advice(graph_model=reason) == ke.ADVICE_INPUT_NAMES, reason
    assert "rename the model's inputs" in ke.ADVICE_INPUT_NAMES
    # the paths need different things: each named
    assert advice(layers_model=TANH_OP, graph_model=NO_BACKENDS) == (
        f"layers-model: {ke.ADVICE_UNSUPPORTED}; graph-model: {ke.ADVICE_BACKENDS}")
    assert advice(layers_model=DIFFERS, graph_model=SIGNATURE_KEYS) == (
        f"layers-model: {ke.ADVICE_DIFFERS}; graph-model: {ke.ADVICE_INPUT_NAMES}")
    # the same thing for both: said once (as before)
    assert advice(layers_model=TANH_OP, graph_model=NO_KERNEL) == ke.ADVICE_UNSUPPORTED
    # a failure traced to a named layer/op keeps the layer advice
    assert advice(graph_model=LOCATED) == ke.ADVICE_LAYER
    # F5: the layers path lacks a tf_keras layer for a Keras op, the graph path (which carries Keras
    # ops) was refused only for the input names: renaming comes alone (before: "layers-model: replace
    # that layer/op ...; graph-model: rename ...")
    for reason in (COLLISION, NON_UNIQUE, SIGNATURE_KEYS):
        assert advice(layers_model=TANH_OP, graph_model=reason) == ke.ADVICE_INPUT_NAMES_THEN_GRAPH, reason
    assert ke.ADVICE_INPUT_NAMES_THEN_GRAPH.startswith(ke.ADVICE_INPUT_NAMES + "; ")
    assert "graph path was refused only for the input names" in ke.ADVICE_INPUT_NAMES_THEN_GRAPH
    assert "replace" not in ke.ADVICE_INPUT_NAMES_THEN_GRAPH
    # ... not for other layers-path refusals (a TF.js kernel the graph would lack too, a bridge
    # limit on a layer), nor for a left-over signature key (a captured table: no naming problem)
    assert advice(layers_model=NO_KERNEL, graph_model=COLLISION) == (
        f"layers-model: {ke.ADVICE_UNSUPPORTED}; graph-model: {ke.ADVICE_INPUT_NAMES}")
    assert advice(layers_model=TANH_OP, graph_model=LEFT_OVER_KEY) == (
        f"layers-model: {ke.ADVICE_UNSUPPORTED}; graph-model: {ke.ADVICE_LOOKUP_TABLE}")
    assert advice(layers_model=TANH_OP, graph_model=BACKEND) == ke.ADVICE_BACKEND
    for text in (ke.ADVICE_BACKEND, ke.ADVICE_INPUT_NAMES, ke.ADVICE_BACKENDS):
        assert OLD_ADVICE not in text


def _what_to_do(err) -> str:
    text = str(err)
    assert "\n" not in text and text.count(". What to do: ") == 1, text
    return text.split(". What to do: ", 1)[1]


def _same_shape_model(n1: str, n2: str):
    import keras

    L = keras.layers
    a, b = L.Input((6,), name=n1), L.Input((6,), name=n2)
    return keras.Model([a, b], L.Dense(2, name="d")(L.Concatenate(name="cat")([a, L.Subtract(name="sub")([a, b])])))


@pytest.mark.parametrize("names, says", [
    (("a-b", "a.b"), "Name collision after sanitization"),  # TensorFlow's converter refuses
    (("x", "1x"), "do not name the Keras inputs"),  # signature_input_keys refuses ('1x' is TF's 'x' too)
])
def test_input_name_refusal_says_to_rename_the_inputs(names, says, tmp_path):
    """Two same-shape inputs TensorFlow cannot key apart, on the graph path (no TF.js needed to be
    refused): the advice is to rename the inputs, not to replace a layer."""
    from facepack.export import ExportError, export_model
    from facepack.export.keras_export import ADVICE_INPUT_NAMES

    with pytest.raises(ExportError) as excinfo:
        export_model(_same_shape_model(*names), tmp_path / "b", name="m", paths=("graph-model",), backends=(),
                     log=None)
    assert says in str(excinfo.value)
    assert _what_to_do(excinfo.value) == ADVICE_INPUT_NAMES


@pytest.mark.node
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_following_the_rename_advice_exports_the_graph_model(tmp_path):
    """The advice's recipe on the model refused above: keras.Model(ins, model(ins)) with ins named
    'ab', 'ab2' exports on the graph path and matches Keras in TF.js (cpu)."""
    import keras

    from facepack.export import export_model

    model = _same_shape_model("a-b", "a.b")
    ins = [keras.Input((6,), name="ab"), keras.Input((6,), name="ab2")]
    entry = export_model(keras.Model(ins, model(ins)), tmp_path / "b", name="m", paths=("graph-model",),
                         backends=("cpu",), log=None)["models"]["m"]
    assert entry["format"] == "graph-model"
    assert [(i["name"], i["signature_key"]) for i in entry["inputs"]] == [("ab", "ab:0"), ("ab2", "ab2:0")]


def _tanh_model(n1: str, n2: str):
    """Two same-shape inputs named n1, n2 and a Keras op with no tf_keras layer (tanh)."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(1)
    a, b = L.Input((6,), name=n1), L.Input((6,), name=n2)
    return keras.Model([a, b], keras.ops.tanh(L.Dense(4, name="d")(L.Subtract(name="sub")([a, b]))))


@pytest.mark.parametrize("names, says", [
    (("a-b", "a.b"), "Name collision after sanitization"),
    (("x", "1x"), "do not name the Keras inputs"),
])
def test_keras_op_and_input_names_say_rename_only(names, says, tmp_path):
    """Both paths refused: the layers path for keras.ops.tanh (no tf_keras layer), the graph path
    only for the input names. Measured before (a-b, a.b): "What to do: layers-model: replace that
    layer/op with one TF.js supports, or register a TF.js layer/kernel for it (static/facepack/
    layers/); graph-model: rename the model's inputs ..."; now the rename advice alone, saying the
    graph path then converts the op."""
    from facepack.export import ExportError, export_model
    from facepack.export import keras_export as ke

    with pytest.raises(ExportError) as excinfo:
        export_model(_tanh_model(*names), tmp_path / "b", name="m", backends=(), log=None)
    text = str(excinfo.value)
    assert "layers-model: tf_keras bridge: Keras op Tanh" in text and says in text, text
    assert "replace that layer/op" not in text and OLD_ADVICE not in text, text
    assert _what_to_do(excinfo.value) == ke.ADVICE_INPUT_NAMES_THEN_GRAPH


@pytest.mark.node
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_renaming_the_inputs_of_the_keras_op_model_exports_it(tmp_path):
    """The advice above followed: the same model behind inputs named 'ab', 'ab2' exports on the
    graph path (the layers path still lacks tanh) and matches Keras in TF.js on cpu and wasm."""
    import keras

    from facepack.export import export_model

    model = _tanh_model("a-b", "a.b")
    ins = [keras.Input((6,), name="ab"), keras.Input((6,), name="ab2")]
    entry = export_model(keras.Model(ins, model(ins)), tmp_path / "b", name="m", backends=("cpu", "wasm"),
                         log=None)["models"]["m"]
    assert entry["format"] == "graph-model"
    assert "has no tf_keras layer" in entry["export"]["tried"][0]["reason"]
    assert set(entry["parity"]["backends"]) == {"cpu", "wasm"}


def test_unchecked_graph_model_says_to_pass_backends(tmp_path):
    """backends=() and a model the layers path refuses (a Keras op): the graph model is written but
    cannot be checked; the advice names both paths, and the flag in the console's words."""
    import keras

    from facepack.export import ExportError, export_model
    from facepack.export.keras_export import ADVICE_UNSUPPORTED, CLI_FLAGS

    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.ops.tanh(keras.layers.Dense(4, name="d")(x)))
    with pytest.raises(ExportError) as excinfo:
        export_model(model, tmp_path / "b", name="m", backends=(), log=None)
    advice = _what_to_do(excinfo.value)
    assert advice.startswith(f"layers-model: {ADVICE_UNSUPPORTED}; graph-model: pass backends=cpu,wasm "), advice
    assert "graph-model: pass --backends cpu,wasm " in excinfo.value.render(CLI_FLAGS)
    assert OLD_ADVICE not in advice


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_backend_refusal_says_to_run_under_tensorflow(tmp_path):
    """export_model from Python under KERAS_BACKEND=jax: the graph path is refused for the backend.
    Alone (paths=('graph-model',)), and after a layers-path refusal (a Keras op the bridge lacks):
    the advice is to run under KERAS_BACKEND=tensorflow (the graph path was not tried), not to
    replace a layer. One subprocess for both (Keras keeps the backend it was imported with)."""
    from facepack.export.keras_export import ADVICE_BACKEND

    code = ("import keras\nfrom facepack.export import export_model, ExportError\n"
            "assert keras.backend.backend() == 'jax'\n"
            "x = keras.Input((4,), name='x'); L = keras.layers\n"
            "dense = keras.Model(x, L.Dense(3)(x))\n"
            "op = keras.Model(x, keras.ops.tanh(L.Dense(4, name='d')(x)))\n"
            f"for i, (m, paths) in enumerate([(dense, ('graph-model',)), (op, ('layers-model', 'graph-model'))]):\n"
            "    try:\n"
            f"        export_model(m, {str(tmp_path)!r} + f'/out{{i}}', name='m', paths=paths, backends=(), log=None)\n"
            "        print('EXPORTED')\n"
            "    except ExportError as err:\n"
            "        print('REFUSED', err)\n")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("REFUSED", "EXPORTED"))]
    assert proc.returncode == 0 and len(lines) == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    graph_only, both = lines
    assert graph_only.startswith("REFUSED cannot export 'm' to TF.js: graph-model: the graph path needs Keras"), graph_only
    assert both.startswith("REFUSED cannot export 'm' to TF.js: layers-model: tf_keras bridge: Keras op Tanh"), both
    for line in lines:
        assert _what_to_do(line) == ADVICE_BACKEND, line
        assert OLD_ADVICE not in line


def test_long_reasons_are_cut_at_a_word_with_an_ellipsis():
    """A reason over MAX_REASON_CHARS ends at a whole word with " …" (it was cut mid-word with "...",
    whose dots the callers' "." trimming then ate: "the exporter tries the graph path (model.ex;")."""
    from facepack.export.keras_export import MAX_REASON_CHARS, _one_line

    line = _one_line("inputs of dtype float32 are refused; " * 12 + "the exporter tries the graph path (model.export) next")
    assert len(line) <= MAX_REASON_CHARS and line.endswith(" …"), line
    assert line[:-2].endswith(("refused", "inputs", "of", "dtype", "float32", "are")), line


def test_a_string_input_is_refused_with_what_to_export_instead():
    import keras

    from facepack.export import ExportError
    from facepack.export.keras_export import input_specs

    words = keras.Input((1,), dtype="string", name="words")
    model = keras.Model(words, keras.layers.Hashing(num_bins=3)(words))
    with pytest.raises(ExportError, match=r"input 'words' is a string tensor.*turn the strings into numbers"):
        input_specs(model)


def test_a_lambda_whose_code_lacks_a_name_says_how_to_fix_the_lambda(tmp_path):
    """A Lambda that refers to a module its (loaded) code cannot see fails in Keras itself with a
    NameError: the advice is about the Lambda, not "pass --sample with valid inputs", which cannot help."""
    import keras

    from facepack.export import ExportError, export_model

    lam = eval("lambda t: missing_module.tanh(t)", {})  # a loaded Lambda's code: no module globals
    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Lambda(lam, output_shape=(3,))(x))
    with pytest.raises(ExportError) as excinfo:
        export_model(model, tmp_path / "b", name="lam", backends=(), log=None)
    text = str(excinfo.value)
    assert "name 'missing_module' is not defined" in text and "export_model(model, out, name=...) in the process that built the model" in text, text
    assert "sample" not in text, text
