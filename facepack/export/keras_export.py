"""Any Keras 3 model -> a checked TF.js bundle, or one line that says why not.

``export_model`` is the exporter's public entry point (the console script ``facepack-export``,
facepack/export/cli.py, and ``python convert/to_tfjs.py --model`` call it). It tries, in order:

  1. layers model: the Keras 3 model rebuilt in tf_keras (bridge.py:to_tf_keras), written with
     the tensorflowjs converter (tfjs_io.save_layers_model);
  2. graph model: ``model.export()`` -> SavedModel -> the converter (tfjs_io.save_graph_model).

A path is accepted only when TF.js itself (Node: tfjs + tfjs-backend-wasm, node_check.py) loads
the written model and runs it on EVERY requested backend, matching Keras ``model(x)`` on the
probe inputs (and on the user's sample, when given) within the tolerance; any failure (the
bridge raising, TF.js failing to load or run, a parity miss on one backend) moves on to the
next path. If both fail, ``ExportError`` names the layer/op, the backend and what to do.

Probe inputs come from the model's input specs (``make_probes``): int inputs are token ids
in the range the layers reading them accept (``int_input_range``: an Embedding's ``input_dim``, a
CategoryEncoding's ``num_tokens``, an IntegerLookup's vocabulary - drawn from its entries, some
out-of-vocabulary -, Hashing any int; the smallest bound when several read the input; else
0..INT_RANGE_DEFAULT - 1; the range is recorded as the manifest's ``inputs[].token_ids``), with
trailing padding zeros when an Embedding has ``mask_zero``; float inputs feeding a Masking layer get masked
trailing steps; a 3-channel image input whose first layer is Rescaling/Normalization gets raw
RGB 0..255 (augmentation layers, identities at inference, are looked through); every other float
input N(0, 1). Variable dimensions get ``FREE_DIM`` (``FREE_DIM_IMAGE`` for an image's height/width),
and a second probe at ``FREE_DIM_2`` / ``FREE_DIM_IMAGE_2``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepack.export.manifest import INT32_MAX, INT32_MIN

DEFAULT_LICENSE = "unknown, given by the user"
DEFAULT_BACKENDS = ("cpu", "wasm")
NODE_BACKENDS = ("cpu", "wasm")  # what TF.js runs in Node without tfjs-node
PATHS = ("layers-model", "graph-model")  # the order export_model tries
# float32 acceptance, per output and backend: max |tfjs - keras| <= REL_TOL * max(SCALE_FLOOR, max |keras|)
# (float rounding only; the issue's "rel < 1e-4" bar, relative to the output's own scale; outputs
# all below SCALE_FLOOR in magnitude are held to REL_TOL * SCALE_FLOOR absolute).
# Quantised weights (float16/uint8, user models): rms(tfjs - keras) / rms(keras) over every output
# and probe <= QUANT_RMS_TOL[precision]. Measured, float16 / uint8 (layers path, generated probes;
# zoo models with seeded weights, facepack/export/zoo): the tester's 1M-parameter Dense model
# 2.9e-4 / 1.5e-2; mobilenet_v2 4.0e-4 / 1.0e-2; efficientnet_b0 2.4e-4 / 8.8e-3;
# mobilenet_v3_small 1.3e-4 / 9.8e-3; resnet50_v2 (the worst) 7.0e-4 / 4.6e-2. A Dense 256->64->10
# model with ONE kernel weight of 40 (uint8 spends its 256 levels on that outlier): 1.6e-4 / 0.92
# (the tester saw 26/64 top-1 classes agree). Limits: float16 14x, uint8 2x above the worst
# healthy model; the outlier is 9x above. The face models keep bundle.RMS_REL_TOL and their
# end-to-end score check (bundle.SCORE_TOL_POINTS).
QUANT_RMS_TOL = {"float16": 1e-2, "uint8": 1e-1}
REL_TOL = 1e-4
SCALE_FLOOR = 1e-3
PROBE_BATCH = 2
PROBE_SEED = 1234
FREE_DIM = 8  # size given to a variable (None) non-batch dimension in probes
FREE_DIM_IMAGE = 32  # ... of an image's height / width
INT_RANGE_DEFAULT = 10  # token ids 0..9 for an int input that no id-reading layer reads
# TF.js has no int64: every int input is sent and computed as int32 (int64 Keras inputs too), so
# ids must lie in [INT32_MIN, INT32_MAX] (manifest.py; check_int32_ids refuses others, naming the input and a value)
# the layers whose int input says which token ids are valid (int_input_range)
ID_READERS = ("Embedding", "CategoryEncoding", "IntegerLookup", "Hashing")
# Hashing takes any int (it hashes the decimal string): probe ids 0..HASHING_RANGE - 1 (1-3 digits)
HASHING_RANGE = 1000
LOOKUP_OOV_SHARE = 0.25  # IntegerLookup probes: this share of the ids is out of vocabulary (>= 1 id)
# inputs[].token_ids.source: what the range comes from (manifest_schema.json lists the same)
TOKEN_ID_SOURCES = ("embedding_input_dim", "category_encoding_num_tokens", "integer_lookup_vocabulary",
                    "integer_lookup_vocabulary_size", "hashing", "default")
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
MAX_REASON_CHARS = 300
# identity at inference (training=False): looked through when deciding what a probe feeds
INFERENCE_IDENTITY = ("InputLayer", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                      "RandomContrast", "RandomBrightness", "RandomHeight", "RandomWidth", "RandomShear",
                      "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness", "RandomColorJitter",
                      "RandomErasing", "RandomGaussianBlur", "RandomPerspective", "RandomPosterization",
                      "RandomInvert", "RandomElasticTransform", "RandomColorDegeneration", "Dropout",
                      "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                      "AlphaDropout", "ActivityRegularization", "Identity", "Sequential", "Functional")
FREE_DIM_2 = 5  # the second probe's size of a variable dimension (variable-size inputs get two probes)
FREE_DIM_IMAGE_2 = 48
# How errors name the parameters: ExportError templates write @{param}; str(err) is the Python API
# wording, ExportError.render(CLI_FLAGS) the console's (one mapping, used by cli.py).
API_WORDS = {"model": "model ", "name": "name=", "out": "out_dir=", "sample": "sample=",
             "custom_objects": "custom_objects=", "unsafe": "unsafe=True", "quantize": "quantize=",
             "backends": "backends=", "license": "license="}
CLI_FLAGS = {"model": "MODEL ", "name": "--name ", "out": "--out ", "sample": "--sample ",
             "custom_objects": "--custom-objects ", "unsafe": "--unsafe", "quantize": "--quantize ",
             "backends": "--backends ", "license": "--license "}


class ExportError(ValueError):
    """The model cannot be exported; the message is ONE line naming the layer/op, the backend
    (or the step: loading, bridge, converter) and what the user can do.

    The template may name parameters as @{param} (keys of API_WORDS): str(err) words them for the
    Python API (``sample=``), ``render(CLI_FLAGS)`` for the console (``--sample``)."""

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.render(API_WORDS))

    def render(self, words: dict) -> str:
        return re.sub(r"@\{(\w+)\}", lambda m: words.get(m.group(1), m.group(1)), self.template)


@dataclass
class InputSpec:
    """One model input: ``name`` (the Keras input name; signature key of the graph model),
    ``shape`` (batch dim None), ``dtype`` (numpy name as Keras declares it)."""

    name: str
    shape: tuple
    dtype: str

    @property
    def tfjs_dtype(self) -> str:
        from facepack.export.node_check import tfjs_dtype

        return tfjs_dtype(self.dtype)


@dataclass
class Probe:
    """Input arrays (one per InputSpec, batch first) and how they were made."""

    arrays: list
    desc: str
    kind: str  # "generated" | "sample"
    detail: list = field(default_factory=list)  # one line per input
    # {int input name: {"min", "max_exclusive", "source"}}: the token-id range a generated probe drew
    # from (the manifest's inputs[].token_ids; see token_id_range)
    token_ids: dict = field(default_factory=dict)


# --- loading -------------------------------------------------------------------------------

def _one_line(err: BaseException | str) -> str:
    """The first line of an error, collapsed, with the exception type when the message alone
    says little (KeyError: 0); at most MAX_REASON_CHARS."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip() or type(err).__name__
    lines = [" ".join(part.split()) for part in text.split("\n") if part.strip()]
    kept = lines[:1]
    for part in lines[1:]:  # Keras: "Exception encountered when calling X.call()." + the real reason
        if part.startswith(("Arguments received", "Traceback", "File ", "•")) or len(" ".join(kept)) > MAX_REASON_CHARS:
            break
        kept.append(part)
    line = " ".join(k.rstrip(".") + "." if i < len(kept) - 1 else k for i, k in enumerate(kept)).rstrip(".")
    if isinstance(err, (KeyError, IndexError, TypeError, AttributeError, NotImplementedError)):
        line = f"{type(err).__name__}: {line}"
    if len(line) > MAX_REASON_CHARS:
        # cut at a word (not inside "model.export") and mark it with "…", which the "." trimming of the
        # callers leaves in place ("..." became ".")
        cut = line[: MAX_REASON_CHARS - 2]
        space = cut.rfind(" ")
        line = (cut[:space] if space > MAX_REASON_CHARS // 2 else cut).rstrip(" ,;:(") + " …"
    return line


def load_custom_objects(custom_objects) -> dict:
    """{name: class or function} from a dict (returned as is), a path to a ``module.py`` or an
    importable module name. Importing the module runs its ``@keras.saving.
    register_keras_serializable`` decorators; its public classes and functions are returned too."""
    if custom_objects is None:
        return {}
    if isinstance(custom_objects, dict):
        return dict(custom_objects)
    spec_text = str(custom_objects)
    path = Path(spec_text)
    try:
        if path.suffix == ".py" or path.exists():
            if not path.is_file():
                raise ExportError(f"@{{custom_objects}}{spec_text!r}: expected a Python file with your Keras layers "
                                  f"(not a file)")
            name = f"facepack_user_objects_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            if str(path.resolve().parent) not in sys.path:  # its own sibling imports
                sys.path.insert(0, str(path.resolve().parent))
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec_text)
    except ExportError:
        raise
    except Exception as err:
        raise ExportError(f"@{{custom_objects}}{spec_text}: importing it failed ({type(err).__name__}: "
                          f"{_one_line(err)}); fix the module so that it imports on its own") from None
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
            and getattr(v, "__module__", None) == module.__name__}


def check_model_path(model_or_path) -> Path:
    """``model_or_path`` as a Path to a loadable file (.keras zip archive, or legacy .h5/.hdf5);
    ExportError naming what it is instead (missing, a SavedModel folder, not a zip archive)."""
    import zipfile

    path = Path(model_or_path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            raise ExportError(f"@{{model}}{str(path)!r}: SavedModel folders are not supported; load the Keras model "
                              f"that wrote it and save it with model.save('m.keras') (or wrap the SavedModel in "
                              f"keras.layers.TFSMLayer inside a keras.Model and save that)")
        if (path / "run.json").is_file():  # a facepack training run (facepack/runs.py: model.keras or sharded)
            try:
                kind = json.loads((path / "run.json").read_text()).get("model")
            except (OSError, ValueError, AttributeError):
                kind = None
            flag = f"--{kind}" if kind in ("beauty", "keypoints") else "--beauty/--keypoints"
            raise ExportError(f"@{{model}}{str(path)!r}: a facepack training run folder, not a .keras file; export "
                              f"it with python convert/to_tfjs.py {flag} {path}")
        raise ExportError(f"@{{model}}{str(path)!r}: expected a Keras 3 .keras file, got a folder")
    if not path.is_file():
        raise ExportError(f"@{{model}}{str(path)!r}: expected a Keras 3 .keras file (not found)")
    if path.suffix.lower() not in (".h5", ".hdf5") and not zipfile.is_zipfile(path):
        raise ExportError(f"@{{model}}{str(path)!r}: not a .keras file (a .keras file is a zip archive); save the "
                          f"model with model.save('m.keras')")
    return path


def load_keras_model(model_or_path, custom_objects=None, unsafe: bool = False, log=print):
    """A Keras 3 model from a model object or a .keras / .h5 file; errors as ExportError."""
    import keras

    objects = load_custom_objects(custom_objects)
    if unsafe:
        _log(log, "warning: unsafe: the model file may run arbitrary Python code (Lambda layers, "
                  "custom functions) while it loads; use it only for files you trust")
    if not isinstance(model_or_path, (str, Path)):
        if not isinstance(model_or_path, keras.Model):
            raise ExportError(f"model: expected a keras.Model or a path to a .keras file, got "
                              f"{type(model_or_path).__name__}")
        return model_or_path
    path = check_model_path(model_or_path)
    try:
        with keras.saving.custom_object_scope(objects):
            return keras.models.load_model(path, compile=False, custom_objects=objects, safe_mode=not unsafe)
    except Exception as err:
        text = str(err)
        if "safe_mode" in text or "unsafe_deserialization" in text:
            what = re.search(r"`(\w+)` layer", text)
            raise ExportError(f"@{{model}}{path.name}: layer {what.group(1) if what else 'Lambda'} holds Python code, "
                              f"which loading refuses in safe mode; pass @{{unsafe}} if you trust the "
                              f"file") from None
        unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
        if unknown:
            raise ExportError(f"@{{model}}{path.name}: unknown layer or function {unknown.group(1)!r}; pass "
                              f"@{{custom_objects}}your_module.py (the module that defines and registers it)") from None
        raise ExportError(f"@{{model}}{path.name}: Keras could not load it ({type(err).__name__}: "
                          f"{_one_line(err)})") from None


def _replace_mixed_policy(value):
    if isinstance(value, dict):
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and \
                str((value.get("config") or {}).get("name", "")).startswith("mixed_"):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {k: _replace_mixed_policy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_mixed_policy(v) for v in value]
    if isinstance(value, str) and value in ("mixed_float16", "mixed_bfloat16"):
        return "float32"
    return value


def mixed_policy(model) -> str | None:
    """"mixed_float16" / "mixed_bfloat16" if any layer computes in a mixed precision policy."""
    for layer in [model, *model._flatten_layers(include_self=False)]:
        name = getattr(getattr(layer, "dtype_policy", None), "name", "")
        if str(name).startswith("mixed_"):
            return str(name)
    return None


def float32_twin(model, custom_objects=None):
    """(model, policy): a mixed-precision functional/Sequential model rebuilt with float32
    compute and the same (float32) weights; (model, None) for a float32 model."""
    policy = mixed_policy(model)
    if policy is None:
        return model, None
    try:
        config = _replace_mixed_policy(model.get_config())
        twin = type(model).from_config(config, custom_objects=load_custom_objects(custom_objects))
        twin.set_weights(model.get_weights())
    except Exception as err:
        raise ExportError(f"model {model.name!r}: a {policy} model is exported as its float32 twin, which "
                          f"could not be rebuilt ({_one_line(err)}); save it with the float32 policy") from None
    return twin, policy


# --- inputs and probes -------------------------------------------------------------------

def _flat_inputs(model) -> list:
    try:
        return list(model.inputs)
    except AttributeError:
        return []


def input_specs(model) -> list[InputSpec]:
    """One InputSpec per model input, in the order of ``model.inputs`` (dict inputs: sorted keys).

    A subclassed model has no symbolic inputs: its build shape is used (dtype float32); one
    that was never built raises ExportError.
    """
    tensors = _flat_inputs(model)
    if tensors:
        specs = [InputSpec(t.name, (None,) + tuple(t.shape[1:]), str(t.dtype)) for t in tensors]
        for spec in specs:
            if spec.dtype == "string":
                raise ExportError(f"input {spec.name!r} is a string tensor, which a TF.js model cannot take; export "
                                  f"the part of the model after the layers that turn the strings into numbers "
                                  f"(StringLookup, TextVectorization, Hashing: apply them before it and feed "
                                  f"their int outputs)")
        return specs
    build = getattr(model, "_build_shapes_dict", None) or {}
    shapes = list(build.values())
    if len(shapes) != 1:
        raise ExportError(f"model {model.name!r} ({type(model).__name__}): a subclassed model must have been built "
                          f"on one input before saving (call it once on an example); its input shape is unknown")
    shape = shapes[0]
    if isinstance(shape, dict) or (isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple, dict))):
        raise ExportError(f"model {model.name!r} ({type(model).__name__}): a subclassed model with several inputs "
                          f"cannot be traced; wrap it in a functional model (keras.Input(...) per input)")
    return [InputSpec("inputs", (None,) + tuple(shape[1:]), "float32")]


def _keras_history_inputs(tensor, inputs: dict, memo: dict, stop=None) -> set:
    """Indices of the model inputs ``tensor`` depends on (walking _keras_history); ``stop(layer)``
    true: what that layer computes counts as depending on no input (one memo per ``stop``)."""
    key = id(tensor)
    if key in memo:
        return memo[key]
    memo[key] = set()
    if key in inputs:
        memo[key] = {inputs[key]}
        return memo[key]
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return memo[key]
    op, node_index, _ = history
    if stop is not None and stop(op):
        return memo[key]
    nodes = getattr(op, "_inbound_nodes", [])
    deps = set()
    if node_index < len(nodes):
        for t in nodes[node_index].input_tensors:
            deps |= _keras_history_inputs(t, inputs, memo, stop)
    memo[key] = deps
    return deps


def _consumers(model, specs) -> list[list]:
    """For each input: the layers (at any depth of the top-level graph) fed by it, with
    ``direct`` = the layers taking the input tensor itself."""
    tensors = _flat_inputs(model)
    out = [{"all": [], "direct": []} for _ in specs]
    if not tensors:
        return out
    index = {id(t): i for i, t in enumerate(tensors)}
    memo: dict = {}
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            deps = set()
            direct = set()
            for t in node.input_tensors:
                deps |= _keras_history_inputs(t, index, memo)
                if id(t) in index:
                    direct.add(index[id(t)])
            inner = [layer, *layer._flatten_layers(include_self=False)] if hasattr(layer, "_flatten_layers") else [layer]
            first = [layer]
            if hasattr(layer, "layers") and getattr(layer, "layers", None):  # a nested model: its first layer too
                first.append(layer.layers[0])
            for i in deps:
                out[i]["all"].extend(inner)
            for i in direct:
                out[i]["direct"].extend(first)
    return out


def _concrete(shape: tuple, rank4_image: bool, second: bool = False) -> tuple:
    dims = []
    for axis, d in enumerate(shape[1:], start=1):
        if d is None:
            if rank4_image and axis in (1, 2):
                d = FREE_DIM_IMAGE_2 if second else FREE_DIM_IMAGE
            else:
                d = FREE_DIM_2 if second else FREE_DIM
        dims.append(int(d))
    return (PROBE_BATCH, *dims)


def has_free_dims(specs: list[InputSpec]) -> bool:
    """True when an input has a variable (None) non-batch dimension: it is probed at two sizes."""
    return any(d is None for s in specs for d in s.shape[1:])


def make_probes(model, specs: list[InputSpec], seed: int = PROBE_SEED, second: bool = False) -> Probe:
    """Deterministic probe inputs from the input specs (see the module docstring); ``second``:
    the variable dimensions at their second size (FREE_DIM_2, FREE_DIM_IMAGE_2), kind
    "generated-2"."""
    from facepack.export.sources import image_probe

    rng = np.random.default_rng(seed)
    consumers = _consumers(model, specs)
    id_readers = _id_readers(model, len(specs))
    arrays, details, token_ids = [], [], {}
    for spec_index, (spec, used) in enumerate(zip(specs, consumers)):
        layers_all, direct = used["all"], used["direct"]
        names = {type(layer).__name__ for layer in layers_all}
        # the first layer that computes something at inference (augmentation layers are identities)
        first = next((layer for layer in layers_all if type(layer).__name__ not in INFERENCE_IDENTITY), None)
        image = len(spec.shape) == 4 and spec.shape[-1] == 3 and \
            any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in [*direct, *([first] if first else [])])
        shape = _concrete(spec.shape, len(spec.shape) == 4, second)
        kind = np.dtype(spec.dtype).kind
        if kind in "iu":
            readers = id_readers[spec_index]
            if not readers and not layers_all:  # unknown graph (subclassed): the model's own id readers
                readers = _first_id_readers(model._flatten_layers(include_self=False))
            span = int_input_range(readers)
            low, high = span["min"], span["max_exclusive"]
            token_ids[spec.name] = token_id_range(high, span["source"], low)
            embeddings = [layer for layer in readers if type(layer).__name__ == "Embedding"]
            mask_zero = any(getattr(e, "mask_zero", False) for e in embeddings)
            what = f"token ids in [{low}, {high})" + (f" ({span['label']})" if span["label"] else "")
            if span["vocabulary"]:
                x, hits, oov = _lookup_ids(rng, shape, span)
                what += f": {hits} in the vocabulary, {oov} out of it"
            else:
                x = rng.integers(max(low, 1) if mask_zero else low, high, shape)
            if mask_zero and len(shape) >= 2:
                pad = max(1, shape[1] // 4)
                x[-1, shape[1] - pad:] = 0
                what += f", last {pad} steps of item {shape[0] - 1} padded with 0 (mask_zero)"
            x = x.astype(spec.dtype)
        elif kind == "b":
            x = rng.integers(0, 2, shape).astype(bool)
            what = "random booleans"
        elif image:
            x = image_probe(shape[1], shape[2], seed=seed, batch=shape[0])
            what = "raw RGB 0..255 images (the model starts with Rescaling/Normalization)"
        else:
            x = rng.normal(0.0, 1.0, shape).astype(np.float32)
            what = "N(0, 1)"
        if kind == "f" and "Masking" in names and len(shape) >= 3:
            masking = next(layer for layer in layers_all if type(layer).__name__ == "Masking")
            pad = max(1, shape[1] // 4)
            x[-1, shape[1] - pad:] = float(masking.mask_value)
            what += f", last {pad} steps of item {shape[0] - 1} = mask_value {masking.mask_value:g} (Masking)"
        arrays.append(x)
        details.append(f"{spec.name} {list(shape)} {np.asarray(x).dtype}: {what}")
    return Probe(arrays, f"{PROBE_BATCH} seeded inputs" + (" (second size)" if second else "") + ": "
                 + "; ".join(details), "generated-2" if second else "generated", details, token_ids)


def token_id_range(high: int, source="default", low: int = 0) -> dict:
    """The manifest's ``inputs[].token_ids`` of an int input: ids in [min, max_exclusive), the range
    the export's probe drew them from and TF.js was checked on; ``source`` (TOKEN_ID_SOURCES) says
    what it comes from (int_input_range): "embedding_input_dim" (larger ids index past a vocabulary),
    "category_encoding_num_tokens" (larger ids are dropped), "integer_lookup_vocabulary" (its
    smallest to largest entry, plus one out-of-vocabulary id when the entries leave no gap: any
    other id is out of vocabulary), "integer_lookup_vocabulary_size" (an inverted lookup: indices),
    "hashing" (any id; 0..HASHING_RANGE - 1 tried) or "default" (no such layer reads it:
    INT_RANGE_DEFAULT, an assumption). ``source`` True/False: the older call (an Embedding or not)."""
    if isinstance(source, bool):
        source = "embedding_input_dim" if source else "default"
    if source not in TOKEN_ID_SOURCES:
        raise ValueError(f"token_id_range: source {source!r} is not one of {list(TOKEN_ID_SOURCES)}")
    if not INT32_MIN <= int(low) < int(high) <= INT32_MAX + 1:
        raise ValueError(f"token_id_range: empty range or outside int32 [{low}, {high})")
    return {"min": int(low), "max_exclusive": int(high), "source": source}


def _raw_inputs(tensor, index: dict, memo: dict) -> set:
    """Indices of the model inputs whose values reach ``tensor`` without passing an id reader
    (ID_READERS: it maps ids to something else) or a layer/model holding one (looked into by
    _id_readers)."""
    return _keras_history_inputs(tensor, index, memo, stop=_holds_id_reader)


def _holds_id_reader(layer) -> bool:
    """True for an id reader, or a layer/model with one inside (its output no longer holds ids)."""
    if type(layer).__name__ in ID_READERS:
        return True
    inner = layer._flatten_layers(include_self=False) if hasattr(layer, "_flatten_layers") else []
    return any(type(sub).__name__ in ID_READERS for sub in inner)


def _first_id_readers(layers) -> list:
    """The id readers of a graph that cannot be walked (subclassed), in layer order: every
    Embedding when the first reader is one (as before), else the first reader only (an
    IntegerLookup/Hashing/CategoryEncoding maps the ids: the layers after it read its output)."""
    readers = [layer for layer in layers if type(layer).__name__ in ID_READERS]
    if not readers:
        return []
    if type(readers[0]).__name__ == "Embedding":
        return [layer for layer in readers if type(layer).__name__ == "Embedding"]
    return readers[:1]


def _id_readers(model, count: int) -> list[list]:
    """For each of the ``count`` model inputs: the id readers (ID_READERS) that take its values as
    they are, i.e. not after another id reader: input -> IntegerLookup -> Embedding is read by the
    IntegerLookup only (the Embedding reads lookup indices). Nested models are looked into; a
    layer holding id readers (a custom layer with an Embedding inside, TimeDistributed(Embedding))
    gives its _first_id_readers."""
    out = [[] for _ in range(count)]
    tensors = _flat_inputs(model)
    if not tensors:
        return out
    index = {id(t): i for i, t in enumerate(tensors)}
    memo: dict = {}
    for layer in model.layers:
        if not _holds_id_reader(layer):
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            raw = set()
            for t in node.input_tensors:
                raw |= _raw_inputs(t, index, memo)
            if not raw:
                continue
            if type(layer).__name__ in ID_READERS:
                found = [layer]
            else:
                nested = _flat_inputs(layer) if getattr(layer, "layers", None) else []
                found = [r for group in _id_readers(layer, len(nested)) for r in group] if nested else []
                found = found or _first_id_readers(layer._flatten_layers(include_self=False))
            for i in raw:
                out[i].extend(r for r in found if r not in out[i])
    return out


def _reader_range(layer) -> dict | None:
    """What one id reader accepts: {min, max_exclusive, source, label, hard (ids outside are
    invalid), vocabulary (IntegerLookup entries), oov (out-of-vocabulary ids are valid)}; None
    when it says nothing (an IntegerLookup without a vocabulary)."""
    kind = type(layer).__name__
    base = {"min": 0, "hard": True, "vocabulary": [], "oov": False, "exclude": []}
    if kind == "Embedding":
        return {**base, "max_exclusive": int(layer.input_dim), "source": "embedding_input_dim",
                "label": "Embedding input_dim"}
    if kind == "CategoryEncoding":
        return {**base, "max_exclusive": int(layer.num_tokens), "source": "category_encoding_num_tokens",
                "label": "CategoryEncoding num_tokens"}
    if kind == "Hashing":
        return {**base, "max_exclusive": HASHING_RANGE, "source": "hashing", "hard": False,
                "label": f"Hashing takes any id; num_bins {int(layer.num_bins)}"}
    if kind != "IntegerLookup":
        return None
    if getattr(layer, "invert", False):  # indices in, vocabulary out
        return {**base, "max_exclusive": int(layer.vocabulary_size()), "source": "integer_lookup_vocabulary_size",
                "label": "inverted IntegerLookup vocabulary_size"}
    special = [int(t) for t in (getattr(layer, "mask_token", None), getattr(layer, "oov_token", None))
               if t is not None]
    # every entry, negative ones too (the range's min is the smallest entry)
    vocab = sorted({int(v) for v in layer.get_vocabulary(include_special_tokens=False)} - set(special))
    if not vocab:
        return None
    oov = int(getattr(layer, "num_oov_indices", 1) or 0) > 0  # else an id out of vocabulary is an error
    low, high = vocab[0], vocab[-1] + 1
    if oov and len(vocab) == high - low:  # no gap: one id past the last entry (not a special token)
        while high in special:
            high += 1
        high += 1
    return {**base, "min": low, "max_exclusive": high, "source": "integer_lookup_vocabulary", "hard": not oov,
            "vocabulary": vocab, "oov": oov, "exclude": special,
            "label": f"IntegerLookup vocabulary of {len(vocab)}" + ("" if oov else ", num_oov_indices=0")}


def int_input_range(readers) -> dict:
    """The token-id range of an int input read by ``readers`` (_id_readers): {min, max_exclusive,
    source, label, vocabulary, oov, exclude}. The smallest bound wins (the reader with the smallest
    max_exclusive names the source; Embedding first on a tie); a reader whose ids all lie at or
    above it (an IntegerLookup vocabulary 100.. beside an Embedding(50)) is left out. No reader:
    0..INT_RANGE_DEFAULT - 1, source "default"."""
    spans = [r for r in (_reader_range(layer) for layer in readers) if r is not None]
    if not spans:
        return {"min": 0, "max_exclusive": INT_RANGE_DEFAULT, "source": "default", "label": "", "vocabulary": [],
                "oov": False, "exclude": []}
    order = {source: i for i, source in enumerate(TOKEN_ID_SOURCES)}
    binding = min(spans, key=lambda r: (r["max_exclusive"], order[r["source"]]))
    high = binding["max_exclusive"]
    kept = [r for r in spans if r["min"] < high]
    low = max(r["min"] for r in kept)
    vocab = sorted({v for r in kept for v in r["vocabulary"] if low <= v < high})
    lookups = [r for r in kept if r["source"] == "integer_lookup_vocabulary"]
    return {"min": low, "max_exclusive": high, "source": binding["source"], "label": binding["label"],
            "vocabulary": vocab, "oov": bool(lookups) and all(r["oov"] for r in lookups),
            "exclude": sorted({t for r in kept for t in r["exclude"]})}


def _lookup_ids(rng, shape: tuple, span: dict):
    """Probe ids for an IntegerLookup: drawn from its vocabulary, LOOKUP_OOV_SHARE of them (at least
    one) out of vocabulary (ids in the range that are neither an entry nor a special token) when
    the layer takes those; (ids, vocabulary hits, out-of-vocabulary ids)."""
    vocab = np.asarray(span["vocabulary"], dtype=np.int64)
    x = rng.choice(vocab, shape)
    taken = set(span["vocabulary"]) | set(span["exclude"])
    pool = [v for v in range(span["min"], min(span["max_exclusive"], span["min"] + 4 * len(taken) + 4))
            if v not in taken] if span["oov"] else []
    if not pool:
        return x, int(x.size), 0
    out = rng.random(shape) < LOOKUP_OOV_SHARE
    out.flat[0], out.flat[-1] = False, True  # at least one of each
    x[out] = rng.choice(np.asarray(pool, dtype=np.int64), int(out.sum()))
    return x, int(x.size - out.sum()), int(out.sum())


def read_sample(sample, specs: list[InputSpec]) -> Probe:
    """The user's inputs from an .npz (arrays named after the inputs, or arr_0.. in order) or a
    dict / list of arrays; each is checked against its input's shape and cast to its dtype."""
    if isinstance(sample, (str, Path)):
        path = Path(sample)
        if not path.is_file():
            raise ExportError(f"@{{sample}}{str(path)!r}: expected an .npz file of input arrays (not a file)")
        with np.load(path, allow_pickle=False) as data:
            sample = {k: data[k] for k in data.files}
        where = path.name
    else:
        where = type(sample).__name__
    if isinstance(sample, np.ndarray):
        sample = [sample]
    if isinstance(sample, dict):
        names = [s.name for s in specs]
        if all(n in sample for n in names):
            arrays = [sample[n] for n in names]
        elif all(f"arr_{i}" in sample for i in range(len(specs))):
            arrays = [sample[f"arr_{i}"] for i in range(len(specs))]
        else:
            raise ExportError(f"@{{sample}}{where}: expected arrays named {names} (or arr_0.. in input order), "
                              f"got {sorted(sample)}")
    else:
        arrays = list(sample)
        if len(arrays) != len(specs):
            raise ExportError(f"@{{sample}}{where}: the model takes {len(specs)} inputs, got {len(arrays)} arrays")
    out = []
    for spec, arr in zip(specs, arrays):
        arr = np.asarray(arr)
        if arr.ndim != len(spec.shape) or any(d is not None and d != a for d, a in zip(spec.shape[1:], arr.shape[1:])):
            raise ExportError(f"@{{sample}}{where}: input {spec.name!r} needs shape {list(spec.shape)} (None: any), "
                              f"got {list(arr.shape)}")
        if np.dtype(spec.dtype).kind in "iub" and arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise ExportError(f"@{{sample}}{where}: input {spec.name!r} is {spec.dtype}, got non-integer floats")
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ExportError(f"@{{sample}}{where}: input {spec.name!r} holds {bad} NaN/inf value(s) of {arr.size}; "
                              f"give finite inputs (parity cannot be measured on NaN/inf)")
        problem = _int32_problem(spec, arr)  # before the cast: astype("int32") would wrap them silently
        if problem:
            raise ExportError(f"@{{sample}}{where}: {problem}")
        out.append(arr.astype(spec.dtype if np.dtype(spec.dtype).kind != "f" else np.float32))
    batches = {s.name: int(a.shape[0]) for s, a in zip(specs, out)}
    if len(set(batches.values())) > 1:
        raise ExportError(f"@{{sample}}{where}: the inputs have different batch sizes {batches}; give every input "
                          f"the same number of rows (axis 0)")
    details = [f"{s.name} {list(a.shape)} {a.dtype}" for s, a in zip(specs, out)]
    return Probe(out, f"the user's sample {where}: " + "; ".join(details), "sample", details)


def check_int32_ids(probe: Probe, specs: list[InputSpec]) -> None:
    """ExportError naming the input and a value when an int input of ``probe`` holds ids outside
    int32: TF.js has no int64 and computes every int input as int32 (a larger id would wrap and
    TF.js would compute on another id than Keras)."""
    for spec, arr in zip(specs, probe.arrays):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "iu" or not arr.size:
            continue
        problem = _int32_problem(spec, arr)
        if problem:
            raise ExportError(f"the {probe.kind} probe: {problem}")


def _int32_problem(spec: InputSpec, arr: np.ndarray) -> str | None:
    """Why the int array ``arr`` of input ``spec`` cannot go to TF.js (None: it can): ids outside int32."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iu" or np.dtype(spec.dtype).kind not in "iu" or not arr.size:
        return None
    bad = arr[(arr < INT32_MIN) | (arr > INT32_MAX)]
    if not bad.size:
        return None
    return (f"input {spec.name!r} ({spec.dtype}) holds {bad.size} id(s) outside int32, e.g. {int(bad.flat[0])}; "
            f"TF.js computes int inputs as int32 (it has no int64), so ids must fit int32 "
            f"[{INT32_MIN}, {INT32_MAX}]: map them into that range before the model")


def keras_outputs(model, arrays: list) -> list[np.ndarray]:
    """``model(x, training=False)`` with ``arrays`` packed as the model's input structure;
    outputs flattened (dict outputs: sorted keys, as keras.tree.flatten)."""
    import warnings

    import keras

    struct = getattr(model, "_inputs_struct", None)
    if struct is not None and len(arrays) > 0 and len(keras.tree.flatten(struct)) == len(arrays):
        x = keras.tree.pack_sequence_as(struct, list(arrays))
    else:
        x = arrays[0] if len(arrays) == 1 else list(arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = model(x, training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(out)]


def output_keys(model, count: int) -> list[str]:
    """Signature keys of the outputs ``model.export()`` writes, in keras.tree.flatten order."""
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        return [str(k) for k in sorted(struct)]
    return [f"output_{i}" for i in range(count)]


def output_names(model, count: int) -> list[str]:
    """Manifest names of the outputs, in keras.tree.flatten order (dict keys, else the model's
    output names, else output_<i>)."""
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        return [str(k) for k in sorted(struct)]
    names = list(getattr(model, "output_names", None) or [])
    if len(names) == count:
        return [str(n) for n in names]
    return [f"output_{i}" for i in range(count)]


# --- parity --------------------------------------------------------------------------------

def is_classifier(model, outputs: list) -> bool:
    """True when the model has one (batch, classes >= 2) output made by a softmax: a Softmax
    layer or a layer with activation softmax last (then top-1 agreement is recorded)."""
    if len(outputs) != 1 or np.ndim(outputs[0]) != 2 or np.shape(outputs[0])[1] < 2:
        return False
    layers = getattr(model, "layers", None) or []
    if not layers:
        return False
    last = layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return type(last).__name__ == "Softmax" or activation == "softmax"


def compare(reference: list, got: list, precision: str, top1: bool = False) -> dict:
    """{"max_abs_diff", "rel_diff", "rel_rms", "ok", "kind", "why"[, "top1_agreement", "top1_rows"]} of
    TF.js outputs vs Keras. kind: None when ok, else what failed: "count" (TF.js returned another
    number of outputs), "shape" (an output of another shape; both structural: the graph went wrong
    somewhere, _check_in_tfjs traces it) or "values" (the numbers miss the criterion below).

    float32: ok when every output k has max|got - ref| <= REL_TOL * max(SCALE_FLOOR, max|ref|);
    float16/uint8: rms(got - ref) / rms(ref) <= QUANT_RMS_TOL[precision] over all outputs.
    top1: also the fraction of rows whose argmax agrees (output 0, a classifier).
    """
    if len(reference) != len(got):
        return {"ok": False, "kind": "count", "why": f"{len(got)} outputs, Keras has {len(reference)}",
                "max_abs_diff": float("inf"), "rel_diff": float("inf"), "rel_rms": float("inf")}
    worst_abs, worst_rel, err2, ref2 = 0.0, 0.0, 0.0, 0.0
    why = ""
    for k, (ref, out) in enumerate(zip(reference, got)):
        ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
        if ref.shape != out.shape:
            return {"ok": False, "kind": "shape",
                    "why": f"output {k} has shape {list(out.shape)}, Keras {list(ref.shape)}",
                    "max_abs_diff": float("inf"), "rel_diff": float("inf"), "rel_rms": float("inf")}
        diff = float(np.abs(ref - out).max()) if ref.size else 0.0
        if not np.isfinite(diff):
            diff = float("inf")
        scale = max(SCALE_FLOOR, float(np.abs(ref).max()) if ref.size else 0.0)
        rel = diff / scale
        if rel > worst_rel:
            worst_rel = rel
            if precision == "float32" and rel > REL_TOL:
                why = f"output {k} differs from Keras by {diff:.3g} (relative {rel:.2g} > {REL_TOL:g})"
        worst_abs = max(worst_abs, diff)
        err2 += float(((ref - out) ** 2).mean()) if ref.size else 0.0
        ref2 += float((ref ** 2).mean()) if ref.size else 0.0
    rel_rms = float(np.sqrt(err2 / ref2)) if ref2 > 0 else float(np.sqrt(err2))
    result = {"max_abs_diff": worst_abs, "rel_diff": worst_rel, "rel_rms": rel_rms}
    if top1:
        ref, out = np.asarray(reference[0]), np.asarray(got[0])
        result["top1_agreement"] = float(np.mean(ref.argmax(-1) == out.argmax(-1)))
        result["top1_rows"] = int(ref.shape[0])
    quantised_miss = False
    if precision == "float32":
        ok = worst_rel <= REL_TOL
    else:
        ok = bool(np.isfinite(rel_rms) and rel_rms <= QUANT_RMS_TOL[precision])
        if not ok:
            quantised_miss = True
            why = (f"rms(tfjs - keras) / rms(keras) = {rel_rms:.3g} > {QUANT_RMS_TOL[precision]:g}, the limit for "
                   f"{precision} weights" + (f" (top-1 agreement {result['top1_agreement']:.3g})" if top1 else ""))
    return {"ok": bool(ok), "kind": None if ok else "values", "why": why, "quantised_miss": quantised_miss,
            **result}


# --- the two paths ---------------------------------------------------------------------------

def _log(log, message: str) -> None:
    if log is not None:
        log(message)


class _Rejected(Exception):
    """One path failed; the message is the one-line reason (names layer/op and backend)."""


class _QuantRejected(_Rejected):
    """The outputs of quantised weights missed QUANT_RMS_TOL (the other path would too)."""


def _write_layers(model, folder: Path, name: str, quantize: str) -> tuple[list, dict]:
    """Bridge + converter; (notes, extra entry fields)."""
    import tf_keras

    from facepack.export.bridge import to_tf_keras
    from facepack.export.tfjs_io import save_layers_model

    try:
        model2, notes = to_tf_keras(model, tf_keras, name=name)
    except Exception as err:
        raise _Rejected(f"tf_keras bridge: {_one_line(err)}") from None
    try:
        save_layers_model(model2, folder, quantize)
    except Exception as err:
        raise _Rejected(f"tensorflowjs converter (layers): {_one_line(err)}") from None
    return notes, {}


def _write_graph(model, folder: Path, specs: list[InputSpec], quantize: str, n_outputs: int) -> tuple[list, dict]:
    """model.export -> SavedModel -> converter; (notes, extra entry fields: signature keys, execution)."""
    import json

    from facepack.export.tfjs_io import MODEL_JSON, has_control_flow, save_graph_model, unsupported_ops

    import keras

    if keras.backend.backend() != "tensorflow":  # model.export would write an XlaCallModule op TF.js lacks
        raise _Rejected(f"{GRAPH_NEEDS_TENSORFLOW} and this process runs Keras on "
                        f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow before the first `import keras` "
                        f"(a .keras file saved under any backend loads), or use the facepack-export command")
    try:
        _, notes = save_graph_model(model, folder, quantize, input_signature=_input_signature(model, specs))
    except Exception as err:
        text = _one_line(err)
        ops = unsupported_ops(err)
        if ops:
            text = f"TF.js has no kernel for op(s) {', '.join(ops)} (nor does static/facepack/layers/ops.js)"
        raise _Rejected(f"SavedModel/tensorflowjs converter: {text}") from None
    model_json = json.loads((folder / MODEL_JSON).read_text())
    signature = model_json.get("signature") or {}
    sig_inputs, sig_outputs = list((signature.get("inputs") or {})), list((signature.get("outputs") or {}))
    in_keys = signature_input_keys([s.name for s in specs], sig_inputs)
    out_keys = output_keys(model, n_outputs)
    if not all(k in sig_outputs for k in out_keys):
        if n_outputs == 1 and len(sig_outputs) == 1:
            out_keys = sig_outputs
        else:
            raise _Rejected(f"graph model: its signature outputs {sig_outputs} are not the expected {out_keys}")
    execution = "async" if has_control_flow(model_json) else "sync"
    return notes, {"input_keys": in_keys, "output_keys": out_keys, "execution": execution}


def _tf_placeholder_name(name: str) -> str:
    """The graph tensor name TensorFlow gives the placeholder of a TensorSpec named ``name`` (before
    ":0"), as measured with TF 2.19: 'Query' -> 'query', 'query-ids' -> 'query_ids', 'feat.a' ->
    'feat_a', '1st' -> 'st'."""
    return re.sub(r"[^0-9a-z_]", "_", name.lower()).lstrip("0123456789_")


def signature_input_keys(names: list[str], sig_inputs: list[str]) -> list[str]:
    """The graph model's signature key of each Keras input ``names[i]``, in that order.

    The tensorflowjs converter keys a signature input by its SavedModel signature name (the
    Keras input's name, which _input_signature gives its TensorSpec) only when that input is
    the only one of its dtype and shape; inputs that share both (a, b = Input((8,)), Input((8,)))
    are keyed by their graph tensor's name instead, ``"a:0"`` (the placeholder model.export names
    after the TensorSpec, in TensorFlow's spelling: _tf_placeholder_name). So a key is the input's
    name, or else ``"<name>:<N>"`` (or the placeholder spelling's) when exactly one key is that;
    never a guess by position. One input and one key: that key. Raises _Rejected
    naming the keys and the inputs when an input has no such key, or one key would serve two
    inputs, or a key is left over (TF.js would then lack a feed for it)."""
    if len(names) == 1 and len(sig_inputs) == 1:
        return list(sig_inputs)
    keys, why = [], None
    for name in names:
        if name in sig_inputs:
            keys.append(name)
            continue
        tensor = [k for k in sig_inputs if re.fullmatch(re.escape(name) + r":\d+", k)]
        if not tensor:  # TensorFlow's placeholder names: lower case, [^a-z0-9_] -> _, no leading digits or _
            graph_name = _tf_placeholder_name(name)
            tensor = [k for k in sig_inputs if k == graph_name or re.fullmatch(re.escape(graph_name) + r":\d+", k)]
        if len(tensor) != 1:
            why = (f"no key is {name!r} or {name + ':N'!r}" if not tensor
                   else f"{len(tensor)} keys could be input {name!r} ({', '.join(tensor)})")
            break
        keys.append(tensor[0])
    if why is None and len(set(keys)) != len(keys):
        why = f"two inputs would share one key ({keys})"
    if why is None and set(keys) != set(sig_inputs):
        why = f"key(s) {sorted(set(sig_inputs) - set(keys))} name no Keras input"
    if why is not None:
        raise _Rejected(f"graph model: its signature inputs {list(sig_inputs)} do not name the Keras inputs "
                        f"{list(names)}: {why}")
    return keys


def _input_signature(model, specs: list[InputSpec]):
    """A tf.TensorSpec structure like the model's input structure, batch None."""
    import keras
    import tensorflow as tf

    tspecs = [tf.TensorSpec((None,) + tuple(s.shape[1:]), tf.as_dtype(s.dtype), name=s.name) for s in specs]
    struct = getattr(model, "_inputs_struct", None)
    if struct is not None and len(keras.tree.flatten(struct)) == len(tspecs):
        packed = keras.tree.pack_sequence_as(struct, tspecs)
        return [packed]
    return [tspecs[0]] if len(tspecs) == 1 else [tspecs]


def _summary(per: dict, top1: bool) -> dict:
    """The worst of the per-probe measurements ({kind: compare()}) plus the probes themselves."""
    out = {k: max(v[k] for v in per.values()) for k in ("max_abs_diff", "rel_diff", "rel_rms")}
    if top1:
        rows = sum(v["top1_rows"] for v in per.values())
        out["top1_agreement"] = sum(v["top1_agreement"] * v["top1_rows"] for v in per.values()) / rows
        out["top1_rows"] = rows
    return {**out, "probes": per}


def _keep(check: dict) -> dict:
    return {k: check[k] for k in ("max_abs_diff", "rel_diff", "rel_rms", "top1_agreement", "top1_rows") if k in check}


def _reject(where: str, check: dict, precision: str):
    cls = _QuantRejected if precision != "float32" and check.get("quantised_miss") else _Rejected
    return cls(f"{where}: {check['why']}")


def _check_in_tfjs(root: Path, name: str, probes: list[Probe], refs: list, backends, precision: str,
                   session=None, top1: bool = False, graph_of=None, log=None) -> dict:
    """Run every probe on every backend (one Node process); {backend: {max_abs_diff, rel_diff,
    rel_rms[, top1_agreement, top1_rows], probes: {kind: ...}}}; raises _Rejected with the first
    failure (_QuantRejected when quantised outputs miss QUANT_RMS_TOL).

    graph_of: the Keras model of a graph-model bundle: when TF.js fails on it or returns outputs
    of the wrong shape, the failure is traced to the graph node where it starts
    (locate_graph_failure), so the message names that op and its Keras layer rather than a
    downstream symptom (a MatMul failing on the shape a broken op produced). The trace runs once,
    on the backend that failed (the first requested when Node failed as a whole), within
    GRAPH_LOCATE_BUDGET_S; ``log`` is told before it starts (it can take that long)."""
    from facepack.export.node_check import run_node_backends

    def located(backend: str, symptom: str):
        if graph_of is not None:
            _log(log, f"  TF.js {backend} failed; tracing the failure to its graph node "
                      f"(at most {GRAPH_LOCATE_BUDGET_S:g} s)...")
            where = locate_graph_failure(root, name, probes[0], backend, graph_of)
            if where:
                return _Rejected(f"TF.js {backend}: {where}")
        return _Rejected(symptom)

    with tempfile.TemporaryDirectory(prefix="facepack-node-") as work:
        try:
            results = run_node_backends(root, backends, [(name, p.arrays) for p in probes], Path(work), session)
        except Exception as err:
            raise located(backends[0], f"TF.js in Node: {_one_line(err)}") from None
    measured = {}
    for backend in backends:
        rows = results[backend]
        per = {}
        for probe, ref, got in zip(probes, refs, rows):
            if isinstance(got, Exception):
                raise located(backend, f"TF.js {backend}: {_one_line(got)}")
            check = compare(ref, got, precision, top1)
            if not check["ok"]:
                if check["kind"] in ("shape", "count"):  # structural: the graph broke somewhere upstream
                    raise located(backend, f"TF.js {backend} on the {probe.kind} probe: {check['why']}")
                raise _reject(f"TF.js {backend} on the {probe.kind} probe", check, precision)
            per[probe.kind] = _keep(check)
        measured[backend] = _summary(per, top1)
    return measured


GRAPH_LOCATE_SCRIPT = Path(__file__).with_name("graph_locate.mjs")
# seconds for the whole trace (one Node process on one backend: Node's start, the model's load,
# then one run per node, up to graph_locate.mjs' MAX_NODES); past it the failure is reported as
# TF.js gave it (or at the failing node found so far)
GRAPH_LOCATE_BUDGET_S = 60.0
GRAPH_LOCATE_START_S = 5.0  # of that budget: Node's start-up and the model's load, before the node runs


def keras_node_of(node_name: str, model, op: str | None = None) -> str | None:
    """The Keras node a converted graph node comes from, as "Keras layer 'dense_3'" or "Keras op
    'cumsum'", or None when it cannot be told.

    A layer: the first segment of the node's name scope that is one of ``model``'s layer names, also
    after dropping the "_N" suffix tf.function adds to name scopes
    ("StatefulPartitionedCall/functional_1/dense_3/MatMul" -> "dense_3"). A Keras op node
    (keras.ops.cumsum in a functional model: an Operation, not a layer) has no scope of its own
    ("StatefulPartitionedCall/functional_1/Cumsum"): it is named when a scope segment is its name,
    or when it is the model's only op node of class ``op`` (the graph node's TF op, e.g. "Cumsum")."""
    layers = {layer.name for layer in model._flatten_layers(include_self=False)}
    ops = [o for o in getattr(model, "operations", []) or [] if o.name not in layers]
    op_names = {o.name for o in ops}
    parts = node_name.split("/")[:-1]
    for part in parts:
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in layers:
                return f"Keras layer {candidate!r}"
            if candidate in op_names:
                return f"Keras op {candidate!r}"
    same_class = [o.name for o in ops if op and type(o).__name__ == op]
    return f"Keras op {same_class[0]!r}" if len(same_class) == 1 else None


def locate_graph_failure(root: Path, name: str, probe: Probe, backend: str, model) -> str | None:
    """Where TF.js goes wrong in the graph model ``name`` of bundle ``root`` on ``backend``, as
    "op Cumsum (graph node '...', Keras op 'cumsum') fails: <what TF.js did>", or None when no node
    fails or returns an invalid shape (or Node fails, or GRAPH_LOCATE_BUDGET_S passes before a failing
    node is found). Runs graph_locate.mjs (one Node process; each node is run once, so this is for
    failures only). The probe is fed by the manifest entry's signature keys: the graph model's own
    input order (its signature's) need not be the Keras order."""
    import json
    import subprocess

    from facepack.export import manifest as manifest_mod
    from facepack.export.node_check import ROOT, _write_job

    try:
        specs = json.loads((Path(root) / manifest_mod.MANIFEST_FILE).read_text())["models"][name]["inputs"]
        keys = [s["signature_key"] for s in specs]
    except (OSError, ValueError, KeyError, TypeError):
        keys = []
    x = dict(zip(keys, probe.arrays)) if keys and len(keys) == len(probe.arrays) else probe.arrays
    with tempfile.TemporaryDirectory(prefix="facepack-locate-") as work:
        job = _write_job(root, [(name, x)], Path(work))
        try:
            node_budget_ms = int(1000 * max(1.0, GRAPH_LOCATE_BUDGET_S - GRAPH_LOCATE_START_S))
            proc = subprocess.run([shutil.which("node") or "node", str(GRAPH_LOCATE_SCRIPT), str(root), name, backend,
                                   str(job), str(node_budget_ms)], capture_output=True, text=True,
                                  timeout=GRAPH_LOCATE_BUDGET_S, cwd=ROOT)
        except (OSError, subprocess.TimeoutExpired):
            return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return None
    found = json.loads(lines[-1])
    if not found.get("node"):
        return None
    keras_node = keras_node_of(found["node"], model, found["op"])
    return (f"op {found['op']} (graph node {found['node']!r}" + (f", {keras_node}" if keras_node else "")
            + f") fails: {found['error']}")


def _check_in_python(folder: Path, probes: list[Probe], refs: list, precision: str, top1: bool = False) -> dict:
    """No backends requested: read a layers model back with tensorflowjs (tf_keras semantics)."""
    from facepack.export.tfjs_io import load_layers_model, predict_list

    try:
        loaded = load_layers_model(folder)
    except Exception as err:  # a facepack JS layer whose config tf_keras does not know (IntegerLookup's oov_method)
        first = (str(err).strip().splitlines() or [""])[0].split(" using config=")[0][:200]
        raise _Rejected(f"tensorflowjs cannot read the layers model back into tf_keras ({type(err).__name__}: {first}); "
                        "it can only be checked in TF.js: pass backends cpu,wasm") from err
    per = {}
    for probe, ref in zip(probes, refs):
        x = probe.arrays[0] if len(probe.arrays) == 1 else list(probe.arrays)
        check = compare(ref, predict_list(loaded, x), precision, top1)
        if not check["ok"]:
            raise _reject(f"tensorflowjs read-back on the {probe.kind} probe", check, precision)
        per[probe.kind] = _keep(check)
    return _summary(per, top1)


def _write_temp_manifest(root: Path, name: str, entry: dict) -> None:
    """The minimal manifest generic.js needs to load the model (before parity is known)."""
    import json

    from facepack.export import manifest as manifest_mod

    (root / manifest_mod.MANIFEST_FILE).write_text(json.dumps({"spec": {}, "models": {name: entry}}))


# What to do about one path's refusal, by what its reason says (first match wins). A refusal
# that is not about a layer must not be told to replace one: the graph path refused because Keras
# runs on another backend was never tried; inputs that TensorFlow cannot key apart are renamed.
GRAPH_NEEDS_TENSORFLOW = "the graph path needs Keras on TensorFlow"
ADVICE_BACKEND = ("run the export with KERAS_BACKEND=tensorflow set before the first `import keras` (the "
                  "facepack-export command does that itself), so that the graph path is tried too")
ADVICE_INPUT_NAMES = ("rename the model's inputs to distinct names of lower-case letters, digits and _ that start "
                      "with a letter (TensorFlow keeps those as they are): export keras.Model(ins, model(ins)) with "
                      "ins = [keras.Input(shape, dtype=..., name='ids'), ...], one per input in the same order")
# the layers path refused a Keras op the bridge has no tf_keras layer for, the graph path (which
# carries Keras ops) only the input names: renaming is what to do, not replacing the op (_advice)
ADVICE_INPUT_NAMES_THEN_GRAPH = (ADVICE_INPUT_NAMES + "; that alone should do: the graph path was refused only "
                                 "for the input names (it never converted the model), and it carries the Keras ops "
                                 "the layers path has no tf_keras layer for")
# a signature key left over by signature_input_keys ("name no Keras input"): model.export() made a
# captured resource - a lookup layer's table, 'unknown:0' - a graph input; renaming cannot help
ADVICE_LOOKUP_TABLE = ("the model holds a lookup table (an IntegerLookup/StringLookup/TextVectorization vocabulary) "
                       "that model.export() turns into an extra graph input TF.js cannot feed, so the graph path "
                       "cannot take it (renaming the inputs does not help): apply the lookup before the model and "
                       "feed it the indices; an IntegerLookup exports as a layers model (static/facepack/layers/"
                       "lookup.js) unless the layers-model reason names an option of it that is not supported")
ADVICE_BACKENDS = ("pass @{backends}cpu,wasm (TF.js in Node: node and `npm install`) so that TF.js itself can "
                   "check the model")
ADVICE_UNSUPPORTED = ("replace that layer/op with one TF.js supports, or register a TF.js layer/kernel for it "
                      "(static/facepack/layers/)")
ADVICE_DIFFERS = "TF.js computes a different function for a layer of this model; report it with the model"
ADVICE_LAYER = ("replace the layer named above with one TF.js or static/facepack/layers/index.js supports (the "
                "list is there), or export the part of the model before it")
# _write_graph: the converter's signature outputs match no output key of the model (after
# tfjs_io.rekey_signature_outputs re-keyed the ones it keyed by tensor name): no layer is to blame
ADVICE_GRAPH_OUTPUTS = ("the graph model's outputs could not be matched to the model's outputs (the tensorflowjs "
                        "converter keys them by dtype and shape); report it with the model; meanwhile export it "
                        "with outputs that differ in dtype or shape, or one model per output")
ADVICE_RULES = (
    ((GRAPH_NEEDS_TENSORFLOW,), ADVICE_BACKEND),
    (("signature outputs",), ADVICE_GRAPH_OUTPUTS),
    (("name no Keras input",), ADVICE_LOOKUP_TABLE),  # before the input-name rule: same refusal, other cause
    # input names: the converter's (TensorFlow's) own refusals, and signature_input_keys'
    (("Name collision after sanitization", "non-unique argument names", "do not name the Keras inputs"),
     ADVICE_INPUT_NAMES),
    (("can only be checked in TF.js",), ADVICE_BACKENDS),
    (("Unknown layer", "Unknown op", "no kernel", "not supported", "has no tf_keras layer"), ADVICE_UNSUPPORTED),
    (("differs from Keras",), ADVICE_DIFFERS),
)


def _advice_for(reason: str) -> str:
    lower = reason.lower()
    for needles, advice in ADVICE_RULES:
        if any(n.lower() in lower for n in needles):
            return advice
    return ADVICE_LAYER


def _advice(reasons: dict) -> str:
    """What to do when every path was refused ({path: reason}): one piece of advice per distinct
    kind of refusal, named by path when the paths need different things. A graph path refused for
    the Keras backend comes alone: that path was never tried, so it is the thing to do first. So
    does a graph path refused for input names TensorFlow cannot key apart when the layers path
    only lacked a tf_keras layer for a Keras op (ADVICE_INPUT_NAMES_THEN_GRAPH): the graph path
    carries Keras ops, so renaming the inputs is enough (not when a signature key is left over,
    "name no Keras input": that is a captured lookup table, ADVICE_LOOKUP_TABLE, no naming problem)."""
    advice = {path: _advice_for(reason) for path, reason in reasons.items()}
    if ADVICE_BACKEND in advice.values():
        return ADVICE_BACKEND
    graph, layers = reasons.get("graph-model", ""), reasons.get("layers-model", "")
    if advice.get("graph-model") == ADVICE_INPUT_NAMES and "name no keras input" not in graph.lower() \
            and "has no tf_keras layer" in layers.lower():
        return ADVICE_INPUT_NAMES_THEN_GRAPH
    distinct = list(dict.fromkeys(advice.values()))
    if len(distinct) == 1:
        return distinct[0]
    return "; ".join(f"{path}: {text}" for path, text in advice.items())


# --- the entry point -----------------------------------------------------------------------

def check_arguments(model_or_path, out_dir, *, name: str, quantize: str = "none", backends=DEFAULT_BACKENDS):
    """Checks that need no TensorFlow (the CLI runs them before importing it); returns the
    manifest of the facepack bundle at ``out_dir`` (None when it is absent or empty).

    Raises ExportError for a bad name, quantize or backends, a model path that is missing or no
    .keras/.h5 file, and an ``out_dir`` that is a file or a non-empty folder without a facepack
    manifest.json (the export would replace the folder: its files would be lost).
    """
    import json

    from facepack.export import manifest as manifest_mod
    from facepack.export.tfjs_io import QUANTIZE

    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise ExportError(f"@{{name}}{name!r}: expected letters, digits, _ . - (a folder and manifest key)")
    if quantize not in QUANTIZE:
        raise ExportError(f"@{{quantize}}{quantize!r}: expected one of {list(QUANTIZE)}")
    bad = [b for b in tuple(backends or ()) if b not in NODE_BACKENDS]
    if bad:
        raise ExportError(f"@{{backends}}{','.join(map(str, bad))}: expected a subset of {list(NODE_BACKENDS)} "
                          f"(TF.js in Node), or none")
    if isinstance(model_or_path, (str, Path)):
        check_model_path(model_or_path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"@{{out}}{str(out)!r}: is a file; give a folder for the bundle")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    path = out / manifest_mod.MANIFEST_FILE
    try:
        old = json.loads(path.read_text())
        ok = isinstance(old, dict) and isinstance(old.get("models"), dict) and "format_version" in old
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise ExportError(f"@{{out}}{str(out)!r}: is a non-empty folder but not a facepack bundle (no manifest.json "
                          f"written by facepack); the export replaces the whole folder, so pick a new or empty "
                          f"folder, or an existing bundle to add the model to")
    return old



def export_model(model_or_path, out_dir, *, name: str, sample=None, custom_objects=None, unsafe: bool = False,
                 quantize: str = "none", backends=DEFAULT_BACKENDS, license: str = DEFAULT_LICENSE,
                 paths=PATHS, log=print, _node_session=None) -> dict:
    """Export one Keras 3 model as a TF.js bundle at ``out_dir``; returns the manifest dict.

    Args:
      model_or_path: a ``keras.Model`` (functional, Sequential or subclassed and built) or a path
        to a .keras file.
      out_dir: the bundle folder, written atomically (``out_dir/manifest.json`` +
        ``out_dir/<name>/model.json`` + weight shards); a failure leaves it unchanged.
      name: the model's manifest key and folder name (letters, digits, ``_ . -``).
      sample: the user's real inputs: an .npz path (arrays named after the inputs, or arr_0..
        in input order), a dict {input name: array} or a list of arrays; batch first. Parity is
        then also checked on it (besides the generated probe).
      custom_objects: a dict {name: class}, or a path to a ``module.py`` / a module name whose
        import registers the model's custom layers (``@keras.saving.register_keras_serializable``).
      unsafe: allow Lambda layers and other Python code in the file (safe_mode=False); warns.
      quantize: "none" (float32) | "float16" | "uint8" weights (tensors >= 4096 elements).
      backends: TF.js backends (Node) on which the export must load, run and match Keras,
        a subset of ("cpu", "wasm"); () skips TF.js (layers path read back by tensorflowjs only).
      license: the licence of the weights, recorded in the manifest (run.license).
      paths: the formats to try, in order (default PATHS: "layers-model", "graph-model"); e.g.
        ("graph-model",) to measure or force the graph path.
      log: called with progress lines (None: silent).
      _node_session: a node_check.NodeSession over ``backends`` started by the caller (the CLI
        starts it before importing TensorFlow); it is not closed here.

    Path order: layers model (tf_keras bridge) -> graph model (model.export). A path is rejected
    when the bridge/converter raises, TF.js cannot load or run the bundle on a backend, or
    parity fails there (float32: max|tfjs - keras| <= REL_TOL * max(SCALE_FLOOR, max|keras|) per
    output, REL_TOL 1e-4, SCALE_FLOOR 1e-3; manifest ``parity.backends[b].rel_diff`` is the worst
    max|tfjs - keras| / max(SCALE_FLOOR, max|keras|);
    quantised: rms(tfjs - keras) / rms(keras) <= QUANT_RMS_TOL[precision]; a softmax classifier's
    top-1 agreement is recorded as ``parity.top1_agreement``). The manifest entry records ``format`` (the path taken),
    ``precision``, ``inputs`` (name, shape, dtype; ``token_ids`` {min, max_exclusive, source} for an
    int input: the ids the probe drew), ``parity`` (probe, per-backend differences under ``parity.backends``),
    ``export.tried`` (each path and why it was rejected), ``export.float32_twin_of`` for mixed
    precision models, ``execution`` ("async": graph model with control flow, use predictAsync),
    and ``run.license``.

    Raises:
      ExportError (a ValueError): one line naming the layer/op, the backend or step, and what to
        do (a graph model that TF.js fails on is traced to the op where the failure starts:
        locate_graph_failure); e.g. both paths failed, Lambda without ``unsafe``, an unknown custom layer, a bad
        ``sample``, Node missing while ``backends`` is non-empty.
    """
    from facepack.export import manifest as manifest_mod
    from facepack.export.bundle import atomic_replace, carry_over
    from facepack.export.node_check import NodeSession, node_available
    from facepack.export.tfjs_io import PRECISION, check_quantize, file_entries, unquantised_note, written_precision

    t0 = time.perf_counter()
    old_bundle = check_arguments(model_or_path, out_dir, name=name, quantize=quantize, backends=backends)
    backends = tuple(backends or ())
    if backends:
        ok, why = node_available()
        if not ok:
            raise ExportError(f"@{{backends}}{','.join(backends)}: TF.js cannot run in Node here ({why}); install "
                              f"node and run `npm install`, or pass @{{backends}}none")
    precision = PRECISION[quantize]
    paths = tuple(paths)
    if not paths or any(p not in PATHS for p in paths):
        raise ExportError(f"paths: expected a non-empty sequence of {list(PATHS)}, got {list(paths)}")

    # TF.js starts loading in Node now, while Keras loads and the converter runs (node_check.NodeSession)
    if _node_session is not None and list(_node_session.backends) != list(backends):
        raise ExportError(f"_node_session runs {_node_session.backends}, not the requested backends {list(backends)}")
    session = _node_session or (NodeSession(backends) if backends else None)
    try:
        model = load_keras_model(model_or_path, custom_objects, unsafe, log)
        model, mixed = float32_twin(model, custom_objects)
        notes: list[str] = []
        if mixed:
            notes.append(f"exported as the float32 twin of this {mixed} model (TF.js computes in float32)")
            _log(log, f"note: {model.name} uses {mixed}: exported as its float32 twin (same weights, float32 compute)")
        specs = input_specs(model)
        probes = [make_probes(model, specs)]
        check_int32_ids(probes[0], specs)
        if sample is not None:
            probes.append(read_sample(sample, specs))
        refs = []
        for p in list(probes):
            try:
                refs.append(keras_outputs(model, p.arrays))
            except Exception as err:
                if isinstance(err, NameError):  # a Lambda's code refers to a module its loaded copy lacks
                    raise ExportError(f"model {name!r}: Keras itself fails to run it ({_one_line(err)}): a Lambda's "
                                      f"code uses a name that is not defined where the model was loaded; call "
                                      f"facepack.export.export_model(model, out, name=...) in the process that "
                                      f"built the model, or import the name inside the Lambda's function and pass "
                                      f"that function with @{{custom_objects}}your_module.py") from None
                if p.kind == "sample":
                    raise ExportError(f"model {name!r}: Keras itself fails on @{{sample}} ({_one_line(err)}); give "
                                      f"inputs the model takes") from None
                if sample is None:
                    raise ExportError(f"model {name!r}: Keras itself fails on the probe inputs ({_one_line(err)}); "
                                      f"pass @{{sample}}inputs.npz with valid inputs") from None
                # the user's sample is valid input: check on it alone
                probes.remove(p)
                notes.append(f"no generated probe: Keras fails on it ({_one_line(err)}); checked on the sample only")
                _log(log, f"note: Keras fails on the generated probe ({_one_line(err)}); checking on the sample only")
        if has_free_dims(specs) and probes[0].kind == "generated":  # variable sizes: a second probe at other sizes, when Keras takes them
            second = make_probes(model, specs, seed=PROBE_SEED + 1, second=True)
            try:
                refs.insert(1, keras_outputs(model, second.arrays))
                probes.insert(1, second)
            except Exception as err:
                notes.append(f"no second-size probe: Keras fails on {second.desc} ({_one_line(err)})")
        n_out = len(refs[0])
        top1 = is_classifier(model, refs[0])
        out_names = output_names(model, n_out)
        source = Path(model_or_path).name if isinstance(model_or_path, (str, Path)) else f"keras.Model {model.name!r}"
        _log(log, f"exporting {source} as {name!r}: {len(specs)} input(s), {n_out} output(s); probe: "
                  + " | ".join(p.desc for p in probes))

        tried = []
        criterion = (f"max|tfjs - keras| <= {REL_TOL:g} * max(|keras|, {SCALE_FLOOR:g}) per output" if precision == "float32"
                     else f"rms(tfjs - keras) / rms(keras) <= {QUANT_RMS_TOL[precision]:g} ({precision} weights)")
        _log(log, f"criterion: {criterion}")
        with atomic_replace(out_dir) as tmp:
            folder = tmp / name
            others = carry_over(Path(out_dir), tmp, old_bundle, {name}) if old_bundle else {}
            for path in paths:
                t1 = time.perf_counter()
                if folder.exists():
                    shutil.rmtree(folder)
                try:
                    if path == "layers-model":
                        path_notes, extra = _write_layers(model, folder, name, quantize)
                    else:
                        path_notes, extra = _write_graph(model, folder, specs, quantize, n_out)
                    # The precision of the bytes written: float32 when no tensor was big enough to quantise.
                    precision = written_precision(folder, quantize)
                    if precision != PRECISION[quantize]:
                        path_notes = [*path_notes, unquantised_note(quantize)]
                        _log(log, f"  note: {unquantised_note(quantize)}")
                    entry = _entry(name, path, specs, refs, out_names, extra, precision, probes[0].token_ids)
                    _write_temp_manifest(tmp, name, entry)
                    if backends:
                        measured = _check_in_tfjs(tmp, name, probes, refs, backends, precision, session, top1,
                                                  graph_of=model if path == "graph-model" else None, log=log)
                    elif path == "layers-model":
                        measured = {"python": _check_in_python(folder, probes, refs, precision, top1)}
                    else:
                        raise _Rejected("a graph model can only be checked in TF.js; pass backends")
                except _Rejected as err:
                    tried.append({"path": path, "ok": False, "reason": str(err)})
                    _log(log, f"  {path}: rejected ({err}) [{time.perf_counter() - t1:.1f} s]")
                    if isinstance(err, _QuantRejected):  # the other path quantises the same weights
                        higher = "float16 (or none)" if precision == "uint8" else "none (float32)"
                        raise ExportError(f"cannot export {name!r} with {precision} weights: {err}; {precision} "
                                          f"quantisation changes this model's outputs too much: export with "
                                          f"@{{quantize}}{higher}") from None
                    continue
                tried.append({"path": path, "ok": True})
                _log(log, f"  {path}: " + ", ".join(
                    f"{b} max abs diff {m['max_abs_diff']:.2e} (rel {m['rel_diff']:.1e}, rel rms {m['rel_rms']:.1e}"
                    + (f", top-1 agreement {m['top1_agreement']:.3g}" if "top1_agreement" in m else "") + ")"
                    for b, m in measured.items()) + f" [{time.perf_counter() - t1:.1f} s]")
                break
            else:
                reasons = {t["path"]: t["reason"] for t in tried}
                raise ExportError(f"cannot export {name!r} to TF.js: " + "; ".join(f"{p}: {r.rstrip('. ')}" for p, r in reasons.items())
                                  + f". What to do: {_advice(reasons)}")
            files = file_entries(tmp, folder)
            worst = max(measured.values(), key=lambda m: m["rel_diff"])
            tolerance = REL_TOL * max(SCALE_FLOOR, max(float(np.abs(r).max()) if np.size(r) else 0.0
                                               for ref in refs for r in ref))
            entry.update({
                "files": files,
                "bytes": sum(f["bytes"] for f in files),
                "parity": {
                    "max_abs_diff": worst["max_abs_diff"], "rel_rms": worst["rel_rms"],
                    "criterion": "max_abs_diff" if precision == "float32" else "rel_rms",
                    "tolerance": tolerance if precision == "float32" else QUANT_RMS_TOL[precision],
                    **({"rel_tol": REL_TOL, "scale_floor": SCALE_FLOOR} if precision == "float32" else {}),
                    **({"top1_agreement": min(m["top1_agreement"] for m in measured.values()),
                        "top1_rows": measured[next(iter(measured))]["top1_rows"]} if top1 else {}),
                    "probe": " | ".join(p.desc for p in probes),
                    "against": "Keras 3 model" + (f" (float32 twin of {mixed})" if mixed else ""),
                    "read_back": f"TF.js in Node ({', '.join(backends)})" if backends else "tensorflowjs -> tf_keras",
                    "backends": measured,
                    **({"tfjs": {"backend": backends[-1], "max_abs_diff": measured[backends[-1]]["max_abs_diff"]}}
                       if backends else {}),
                },
                "license": license,
                "run": {"source": source, "synthetic": False, "license": license},
                "export": {"path": entry["format"], "tried": tried, "precision": precision,
                           "probes": [{"kind": p.kind, "inputs": p.detail} for p in probes],
                           "notes": notes + path_notes,
                           **({"float32_twin_of": mixed} if mixed else {})},
                "bridge_notes": notes + path_notes,
            })
            manifest = manifest_mod.build_manifest({**others, name: entry})
            manifest_mod.write_manifest(tmp, manifest)
            manifest_mod.verify_files(tmp, manifest)
        _log(log, f"wrote {out_dir} ({entry['format']}, {precision}, {entry['bytes'] / 1e6:.2f} MB) in "
                  f"{time.perf_counter() - t0:.1f} s")
        return manifest
    finally:
        if session is not None and session is not _node_session:
            session.close()


def tfjs_output_dtype(ref) -> str:
    """The dtype TF.js returns for a Keras output array: bool -> 'bool', any int (int64 included:
    TF.js has no int64; IntegerLookup, Hashing "int", casts, argmax) -> 'int32', else 'float32'
    (measured in Node on 34 bundles: npm.output_dtypes, tests/test_npm_int_models.py)."""
    kind = np.asarray(ref).dtype.kind
    return "bool" if kind == "b" else "int32" if kind in "iu" else "float32"


def _entry(name: str, path: str, specs: list[InputSpec], refs: list, out_names: list, extra: dict,
           precision: str, token_ids: dict | None = None) -> dict:
    """The manifest entry's loading fields (what generic.js needs), before parity is known;
    ``token_ids``: the generated probe's {int input name: token_id_range(...)}."""
    inputs = [{"name": s.name, "shape": list(s.shape), "dtype": s.tfjs_dtype,
               **({"keras_dtype": s.dtype} if s.dtype != s.tfjs_dtype else {}),
               **({"token_ids": dict(token_ids[s.name])} if s.name in (token_ids or {}) else {})} for s in specs]
    outputs = [{"name": n, "shape": [None] + list(np.shape(r))[1:], "dtype": tfjs_output_dtype(r)}
               for n, r in zip(out_names, refs[0])]
    if path == "graph-model":
        for spec, key in zip(inputs, extra["input_keys"]):
            spec["signature_key"] = key
        for spec, key in zip(outputs, extra["output_keys"]):
            spec["signature_key"] = key
    return {"path": name, "format": path, "role": "user", "inputs": inputs, "outputs": outputs,
            "input_size": int(specs[0].shape[1]) if len(specs) == 1 and len(specs[0].shape) == 4
            and specs[0].shape[1] is not None else None,
            "backbone": None, "precision": precision,
            "execution": extra.get("execution", "sync")}
