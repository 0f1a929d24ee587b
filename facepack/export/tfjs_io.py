"""Writing one tf_keras model as a TF.js layers model, reading it back, and listing its files.

Thin wrappers over the ``tensorflowjs`` converter's Python API, imported lazily (it pulls in
TF Decision Forests and JAX, several seconds).

Weight shards are renamed after their content (``hash_shard_names``:
``group1-shard1of1.<16 hex of sha256>.bin``, model.json rewritten to match), so a server may
cache them forever (server.py) and no cache can pair a model.json with another export's weights.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

# --quantize value -> the tensorflowjs quantisation dtype (None: float32 weights)
QUANTIZE = {"none": None, "float16": "float16", "uint8": "uint8"}
# Only weight tensors with at least this many elements are quantised (conv/dense kernels: ~95%
# of the bytes). Small tensors stay float32: BatchNorm statistics in particular, whose per-tensor
# uint8 range would round small variances to ~0 and blow up the error downstream.
QUANT_MIN_ELEMENTS = 4096
PRECISION = {"none": "float32", "float16": "float16", "uint8": "uint8"}
MODEL_JSON = "model.json"
SHARD_HASH_CHARS = 16  # hex digits of the shard's sha256 in its file name (64 bits)
# a content-named shard: <stem>.<16 hex>.bin (server.py serves exactly these as immutable)
HASHED_SHARD_RE = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{%d})\.bin$" % SHARD_HASH_CHARS)


def _tensorflowjs():
    """The whole tensorflowjs package (its __init__ imports every converter: TF Decision
    Forests, TF Hub and JAX, ~1-2 s). TFDF would otherwise import IPython under pytest's
    captured stdout to print a welcome message. Prefer ``tfjs_module`` for one submodule."""
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflowjs

    return tensorflowjs


def tfjs_module(name: str):
    """One submodule of tensorflowjs (e.g. "converters.keras_h5_conversion") WITHOUT running the
    package's __init__ files, which import all converters (TFDF, TF Hub, JAX): the layers path
    needs none of them. While it imports, empty stand-ins for ``tensorflowjs`` and
    ``tensorflowjs.converters`` hold the package paths; they are removed afterwards, so a later
    ``import tensorflowjs`` runs the real __init__ (reusing the submodules already loaded)."""
    import importlib
    import importlib.util
    import types

    full = f"tensorflowjs.{name}"
    if full in sys.modules:
        return sys.modules[full]
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    stubs = []
    if "tensorflowjs" not in sys.modules:
        spec = importlib.util.find_spec("tensorflowjs")
        root = list(spec.submodule_search_locations)
        for pkg, path in (("tensorflowjs", root), ("tensorflowjs.converters", [os.path.join(root[0], "converters")])):
            module = types.ModuleType(pkg)
            module.__path__ = path
            module.__package__ = pkg
            sys.modules[pkg] = module
            stubs.append(pkg)
    try:
        return importlib.import_module(full)
    finally:
        for pkg in stubs:
            sys.modules.pop(pkg, None)


def check_quantize(quantize: str) -> str:
    if quantize not in QUANTIZE:
        raise ValueError(f"--quantize must be one of {list(QUANTIZE)}, got {quantize!r}")
    return quantize


def weight_specs(folder: str | Path) -> list[dict]:
    """[{name, shape, dtype, quantization?}] of a written model.json's weights."""
    manifest = json.loads((Path(folder) / MODEL_JSON).read_text())["weightsManifest"]
    return [w for group in manifest for w in group["weights"]]


def written_precision(folder: str | Path, quantize: str) -> str:
    """The precision the written ``folder``/model.json really has: PRECISION[quantize] when at least
    one weight tensor was quantised, else "float32" (no tensor has QUANT_MIN_ELEMENTS values, so
    --quantize changed nothing: the manifest must not claim float16/uint8 for float32 bytes)."""
    if QUANTIZE[check_quantize(quantize)] is None:
        return "float32"
    quantised = any(w.get("quantization") for w in weight_specs(folder))
    return PRECISION[quantize] if quantised else "float32"


def unquantised_note(quantize: str) -> str:
    """The manifest note for a --quantize that changed nothing (written_precision fell back to float32)."""
    return (f"--quantize {quantize} asked, but no weight tensor has >= {QUANT_MIN_ELEMENTS} values "
            f"(only those are quantised): every weight stays float32")


def _save(h5_conversion, model, folder: Path, dtype_map) -> None:
    with warnings.catch_warnings():  # tensorflowjs saves via a temporary HDF5 file ("legacy format")
        warnings.simplefilter("ignore", UserWarning)
        h5_conversion.save_keras_model(model, str(folder), quantization_dtype_map=dtype_map)
    if not (folder / MODEL_JSON).is_file():
        raise RuntimeError(f"tensorflowjs wrote no {MODEL_JSON} into {folder}")


def save_layers_model(model, folder: str | Path, quantize: str = "none", rule: dict | None = None) -> Path:
    """Write ``model`` (tf_keras) to ``folder``/model.json + weight shards; returns the folder.

    Quantised: written once in float32 to learn the converter's weight names, then again with
    the weights of >= QUANT_MIN_ELEMENTS elements mapped to the quantisation dtype.
    rule (uint8 only; facepack.export.quantize.prepare_uint8 sets it): {"float16": [weight names]
    kept float16 instead, "on_grid": [weight names] whose float32 values were put on TF.js' uint8
    grid beforehand}; every "on_grid" tensor is read back and must dequantise to the model's own
    values (RuntimeError naming the weight otherwise), so the integers written are the ones chosen.
    """
    tfjs = tfjs_module("converters.keras_h5_conversion")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _save(tfjs, model, folder, None)
    dtype = QUANTIZE[check_quantize(quantize)]
    rule = rule if dtype == "uint8" else None
    if dtype is not None:
        written = [w["name"] for w in weight_specs(folder)]
        names = [w["name"] for w in weight_specs(folder) if int(np.prod(w["shape"])) >= QUANT_MIN_ELEMENTS]
        keep16 = set((rule or {}).get("float16", []))
        unknown = sorted((keep16 | set((rule or {}).get("on_grid", []))) - set(written))
        if unknown:
            raise ValueError(f"uint8 rule names weights the model does not have: {unknown[:3]}")
        dtype_map = {}
        if [n for n in names if n not in keep16]:
            dtype_map[dtype] = [glob.escape(n) for n in names if n not in keep16]
        if [n for n in names if n in keep16]:
            dtype_map["float16"] = [glob.escape(n) for n in names if n in keep16]
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _save(tfjs, model, folder, dtype_map or None)
        if rule:
            check_on_grid(model, folder, rule.get("on_grid", []))
    hash_shard_names(folder)
    return folder


# A weight put on TF.js' grid must read back within this fraction of its grid step (float32
# rounding of min + scale * q is ~1e-5 of a step; a weight off the grid is off by up to 0.5).
ON_GRID_TOL_STEPS = 1e-3


def check_on_grid(model, folder: str | Path, names) -> int:
    """Every weight in ``names`` of the written ``folder`` is uint8 and dequantises to ``model``'s
    own float32 values within ON_GRID_TOL_STEPS grid steps; returns how many were checked.
    RuntimeError naming the weight otherwise."""
    specs = {w["name"]: w for w in weight_specs(folder)}
    ours = {v.name.split(":")[0]: np.asarray(v.numpy(), np.float32) for v in model.weights}
    values = read_layers_weights(folder)
    for name in names:
        quant = specs[name].get("quantization") or {}
        if quant.get("dtype") != "uint8":
            raise RuntimeError(f"weight {name!r}: planned as uint8 on TF.js' grid but written as "
                               f"{quant.get('dtype', 'float32')}")
        step = float(quant["scale"])
        off = float(np.abs(values[name] - ours[name].reshape(values[name].shape)).max()) / step
        if not off <= ON_GRID_TOL_STEPS:
            raise RuntimeError(f"weight {name!r}: written uint8 value differs from the planned one by {off:.3g} "
                               f"grid steps (> {ON_GRID_TOL_STEPS}): not on TF.js' grid")
    return len(names)


def read_layers_weights(folder: str | Path, dequantize: bool = True) -> dict:
    """{weight name: array} of a written layers model: dequantised float32, or with
    ``dequantize=False`` the stored arrays (uint8 levels, float16, float32)."""
    read_weights = tfjs_module("read_weights")
    manifest = json.loads((Path(folder) / MODEL_JSON).read_text())["weightsManifest"]
    if dequantize:
        entries = read_weights.read_weights(manifest, str(folder), flatten=True)
        return {e["name"]: np.asarray(e["data"]) for e in entries}
    out = {}
    for group in manifest:
        data = b"".join((Path(folder) / path).read_bytes() for path in group["paths"])
        offset = 0
        for w in group["weights"]:
            quant = w.get("quantization") or {}
            dtype = np.dtype(quant.get("dtype", w["dtype"]))
            count = int(np.prod(w["shape"]))
            out[w["name"]] = np.frombuffer(data, dtype, count, offset).reshape(w["shape"])
            offset += count * dtype.itemsize
    return out


def hash_shard_names(folder: str | Path) -> list[str]:
    """Rename every weight shard of ``folder``/model.json to ``<stem>.<sha256[:16]>.bin`` and
    rewrite its weightsManifest paths; returns the new names. Idempotent (a name that already
    carries a hash gets the hash of its current content)."""
    folder = Path(folder)
    model_json = json.loads((folder / MODEL_JSON).read_text())
    renamed = []
    for group in model_json.get("weightsManifest", []):
        paths = []
        for rel in group["paths"]:
            src = folder / rel
            match = HASHED_SHARD_RE.match(src.name)
            stem = match.group("stem") if match else (src.name[:-4] if src.name.endswith(".bin") else src.name)
            name = f"{stem}.{sha256(src)[:SHARD_HASH_CHARS]}.bin"
            if name != src.name:
                os.replace(src, src.with_name(name))
            paths.append(Path(rel).with_name(name).as_posix())
            renamed.append(name)
        group["paths"] = paths
    (folder / MODEL_JSON).write_text(json.dumps(model_json))
    return renamed


def load_layers_model(folder: str | Path):
    """Read an exported layers model back into tf_keras (weights dequantised)."""
    return tfjs_module("converters.keras_tfjs_loader").load_keras_model(str(Path(folder) / MODEL_JSON))


def predict_list(model, x) -> list[np.ndarray]:
    """Outputs of a (Keras 3 or tf_keras) model as a list of float32 arrays."""
    with warnings.catch_warnings():  # Keras 3: "structure of `inputs` doesn't match" for a bare tensor
        warnings.simplefilter("ignore", UserWarning)
        out = model(x, training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o, dtype=np.float32) for o in outs]


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(root: str | Path, folder: str | Path) -> list[dict]:
    """[{path (relative to root, '/'-separated), bytes, sha256}] of every file under folder."""
    root, folder = Path(root), Path(folder)
    return [{"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file()]


# --- graph models (a SavedModel through the converter), for models the layers format cannot hold ---

FUSED_WITH_BIAS = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def _bias_width(node: dict, shapes: dict) -> int | None:
    """Output channels of a fused conv/matmul node, from its filter's shape."""
    filt = shapes.get(node["input"][1].split(":")[0])
    if filt is None:
        return None
    if node["op"] == "FusedDepthwiseConv2dNative":
        return int(filt[2] * filt[3])
    return int(filt[-1])


def widen_scalar_biases(model_json: dict, values: dict) -> list[str]:
    """Give every bias of a fused conv/matmul the rank-1 shape TF.js WASM requires.

    The grappler remapper fuses `conv(x) + 3.0` into a conv with a rank-0 bias, and
    `conv(x) + c` with c of shape (1, 1, 1, C) (a per-channel constant, e.g. a folded
    Normalization or a broadcast weight) into one with a rank-4 bias; TF.js WASM then fails with
    "FusedConv2D only supports rank-1 bias but got rank N". A bias whose dimensions are all 1
    but the last becomes a rank-1 weight of the conv's width (broadcast when its last dim is
    1). Returns the names of the weights added; ``values`` ({name: array}) is updated in place.
    """
    shapes = {name: list(v.shape) for name, v in values.items()}
    widened = []
    for node in model_json["modelTopology"].get("node", []):
        if node["op"] not in FUSED_WITH_BIAS or len(node["input"]) < 3:
            continue
        bias = node["input"][2].split(":")[0]
        if bias not in values or values[bias].ndim == 1:
            continue
        value = values[bias]
        if value.ndim > 1 and any(d != 1 for d in value.shape[:-1]):
            continue  # not a per-channel bias: left as is (WASM will say so; the exporter falls back)
        width = _bias_width(node, shapes)
        if width is None or (value.ndim > 0 and value.shape[-1] not in (1, width)):
            continue
        name = f"{bias}__rank1_{width}"
        values[name] = np.broadcast_to(value.reshape(-1), (width,)).astype(value.dtype)
        node["input"][2] = name  # the original Const stays for any other user
        widened.append(name)
    for name in widened:  # a Const node per new weight, as the converter writes them
        model_json["modelTopology"]["node"].append(
            {"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"},
                                                  "value": {"tensor": {"dtype": "DT_FLOAT",
                                                                       "tensorShape": {"dim": [{"size": str(values[name].shape[0])}]}}}}})
    return widened


_FUSED_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "LeakyRelu"}  # what unfusing can emit
# Fused activations every TF.js 4.22 backend implements (the cpu backend throws "Activation tanh
# has not been implemented for the CPU backend" for a _FusedMatMul ending in Tanh).
TFJS_FUSED_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Sigmoid", "LeakyRelu"}
_UNFUSED_BASE = {"_FusedMatMul": "MatMul", "_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}
_BASE_ATTRS = {"MatMul": ("T", "transpose_a", "transpose_b"),
               "Conv2D": ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations", "use_cudnn_on_gpu"),
               "DepthwiseConv2dNative": ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations")}


def _fused_ops(node: dict) -> list[str]:
    import base64

    raw = ((node.get("attr") or {}).get("fused_ops") or {}).get("list", {}).get("s", [])
    return [base64.b64decode(x).decode() for x in raw]


def unfuse_tensor_biases(model_json: dict, values: dict) -> list[str]:
    """Split a fused conv/matmul whose "bias" is not a weight of the conv's width, or whose
    fused activation a TF.js backend lacks (Tanh), back into conv/matmul + AddV2 (+ its
    activation); returns the names of the nodes split.

    The converter fuses `x @ W + y` into _FusedMatMul even when y is a computed tensor (the
    recurrent term of an LSTM cell) or a broadcast constant of rank > 1; TF.js WASM then fails
    with "_FusedMatMul only supports rank-1 bias but got rank N". The cpu backend accepts both.
    Run after widen_scalar_biases (per-channel constants become rank 1 there, staying fused).
    """
    nodes = model_json["modelTopology"].get("node", [])
    added, split = [], []
    for node in nodes:
        if node["op"] not in _UNFUSED_BASE or len(node["input"]) < 3:
            continue
        bias = node["input"][2].split(":")[0]
        ops = _fused_ops(node)
        if not ops or ops[0] != "BiasAdd" or len(ops) > 2 or (len(ops) == 2 and ops[1] not in _FUSED_ACTIVATIONS):
            continue
        vector_bias = bias in values and (values[bias].ndim <= 1 or all(d == 1 for d in values[bias].shape[:-1]))
        if vector_bias and (len(ops) == 1 or ops[1] in TFJS_FUSED_ACTIVATIONS):
            continue  # TF.js runs it fused (a rank 0 / per-channel bias is widen_scalar_biases' job)
        if int(((node.get("attr") or {}).get("num_args") or {}).get("i", 1)) != 1:
            continue
        base = _UNFUSED_BASE[node["op"]]
        name, attr = node["name"], node.get("attr") or {}
        data, extra_inputs = node["input"][:3], node["input"][3:]  # control inputs may follow
        core = {"name": f"{name}/__unfused_{base}", "op": base, "input": data[:2] + extra_inputs,
                "attr": {k: v for k, v in attr.items() if k in _BASE_ATTRS[base]}}
        tdtype = attr.get("T", {"type": "DT_FLOAT"})
        add = {"name": name if len(ops) == 1 else f"{name}/__unfused_add", "op": "AddV2",
               "input": [core["name"], data[2]], "attr": {"T": tdtype}}
        added += [core, add]
        if len(ops) == 2:
            act = {"name": name, "op": ops[1], "input": [add["name"]], "attr": {"T": tdtype}}
            if ops[1] == "LeakyRelu":
                act["attr"]["alpha"] = {"f": attr.get("leakyrelu_alpha", {}).get("f", 0.2)}
            added.append(act)
        node["name"] = None  # replaced
        split.append(name)
    model_json["modelTopology"]["node"] = [n for n in nodes if n["name"] is not None] + added
    return split


# The graph ops the JS library registers itself (tf.registerOp): single-sourced in the JS.
JS_OPS_FILE = Path(__file__).resolve().parent.parent.parent / "static" / "facepack" / "layers" / "ops.js"


def js_registered_ops() -> set[str]:
    """Op names of ``REGISTERED_OPS`` in static/facepack/layers/ops.js (empty if absent)."""
    import re

    if not JS_OPS_FILE.is_file():
        return set()
    found = re.search(r"REGISTERED_OPS\s*=\s*\[([^\]]*)\]", JS_OPS_FILE.read_text())
    return set(re.findall(r"['\"]([A-Za-z0-9_]+)['\"]", found.group(1))) if found else set()


def unsupported_ops(err: BaseException) -> list[str]:
    """The op names of the converter's "Unsupported Ops in the model ...\nA, B" error, else []."""
    text = str(err)
    if not text.startswith("Unsupported Ops"):
        return []
    return [op.strip() for op in text.split("\n", 1)[-1].split(",") if op.strip()]


# Ops of TensorFlow's lowered control flow (v1 while loops / conds: RNN layers, masking).
CONTROL_FLOW_OPS = frozenset({"Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond", "While",
                              "StatelessWhile", "If", "StatelessIf"})


def has_control_flow(model_json: dict) -> bool:
    """True when the graph needs GraphModel.executeAsync (control flow ops)."""
    topology = model_json["modelTopology"]
    nodes = list(topology.get("node", []))
    for fn in (topology.get("library") or {}).get("function", []):
        nodes += fn.get("nodeDef", [])
    return any(n["op"] in CONTROL_FLOW_OPS for n in nodes)


def strip_control_inputs(model_json: dict) -> int:
    """Drop the control-only inputs ("^node") of every node; returns how many were dropped.

    TF.js' executeAsync treats a control input as a data input, and the ones SavedModel's
    lowered while loops carry (Consts inside the loop body waiting on the frame's pivot, the
    output Identity waiting on every loop Exit) leave it with "Cannot compute the outputs
    [Identity] ... Consider providing the following inputs: []". An inference graph holds no
    stateful op whose order they would guard; the exporter's parity check confirms the result.
    """
    dropped = 0
    for node in model_json["modelTopology"].get("node", []):
        inputs = node.get("input", [])
        kept = [i for i in inputs if not i.startswith("^")]
        dropped += len(inputs) - len(kept)
        node["input"] = kept
    return dropped


def _signature_def(saved_dir: str | Path, signature: str = "serving_default"):
    """The SignatureDef ``signature`` of the SavedModel at ``saved_dir`` (saved_model.pb), or None."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(saved_dir) / "saved_model.pb").read_bytes())
    defs = [g.signature_def[signature] for g in saved_model.meta_graphs if signature in g.signature_def]
    return defs[0] if defs else None


def signature_output_keys(saved_dir: str | Path, signature: str = "serving_default") -> list[str]:
    """The output keys of a SavedModel's signature ("output_0", ...; a dict output's keys)."""
    found = _signature_def(saved_dir, signature)
    return list(found.outputs) if found is not None else []


def signature_output_tensors(saved_dir: str | Path, signature: str = "serving_default") -> dict:
    """{graph tensor name: output key} of a SavedModel's signature, exactly as the tensorflowjs
    converter sees it: the converter freezes ``loaded.signatures[signature]`` and names the graph's
    outputs after that function's output tensors (``fn.outputs``: "Identity:0", "Identity_1:0", ...);
    the SavedModel's signature_def maps each output key to "<call>:<i>", output i of that function.
    {} when the signature_def cannot be read."""
    import tensorflow as tf

    found = _signature_def(saved_dir, signature)
    if found is None:
        return {}
    outputs = list(tf.saved_model.load(str(saved_dir)).signatures[signature].outputs)
    mapping = {}
    for key, info in found.outputs.items():
        index = info.name.rsplit(":", 1)[-1]
        if not index.isdigit() or int(index) >= len(outputs):
            return {}
        mapping[outputs[int(index)].name] = key
    return mapping if len(mapping) == len(found.outputs) == len(outputs) else {}


def rekey_signature_outputs(model_json: dict, tensor_keys: dict) -> int:
    """Key the graph model's signature outputs by the SavedModel's output keys ("output_0", a dict
    output's key) where the converter keyed them by graph tensor name ("Identity:0"): its
    _build_signature_def finds an output's key by dtype and shape only, so outputs sharing both
    (h and cumsum(h)) fall back to the tensor name. ``tensor_keys``: signature_output_tensors.
    Returns how many keys were changed."""
    outputs = (model_json.get("signature") or {}).get("outputs")
    if not outputs or not tensor_keys:
        return 0
    renamed, out = 0, {}
    for key, info in outputs.items():
        tensor = key if key in tensor_keys else (info or {}).get("name")
        new = tensor_keys.get(tensor) if key not in tensor_keys.values() else None
        if new is not None and new not in outputs and new not in out:
            out[new] = info
            renamed += 1
        else:
            out[key] = info
    model_json["signature"]["outputs"] = out
    return renamed


def save_graph_model(model3, folder: str | Path, quantize: str = "none",
                     input_signature=None) -> tuple[Path, list[str]]:
    """Write a Keras 3 model as a TF.js graph model (model.export -> SavedModel -> converter).

    input_signature: passed to ``model.export`` (a tf.TensorSpec structure; default: the
    model's own, which for a subclassed model fixes the batch size it was built with).
    Fused biases are widened to rank 1 for WASM (widen_scalar_biases) and large weights
    quantised as in save_layers_model. Signature outputs the converter keyed by graph tensor
    name (outputs sharing dtype and shape) are re-keyed by the SavedModel's output keys
    (rekey_signature_outputs). Returns (folder, notes).
    """
    import tempfile

    conversion = tfjs_module("converters.tf_saved_model_conversion_v2")
    read_weights = tfjs_module("read_weights").read_weights
    write_weights = tfjs_module("write_weights").write_weights

    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="facepack-savedmodel-") as saved:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model3.export(saved, format="tf_saved_model", verbose=False, input_signature=input_signature)
        try:
            conversion.convert_tf_saved_model(saved, str(folder))
            js_ops = []
        except ValueError as err:  # ops TF.js lacks: fine when static/facepack/layers supplies them all
            js_ops = unsupported_ops(err)
            if not js_ops or not set(js_ops) <= js_registered_ops():
                raise
            shutil.rmtree(folder, ignore_errors=True)
            conversion.convert_tf_saved_model(saved, str(folder), skip_op_check=True)
        model_json = json.loads((folder / MODEL_JSON).read_text())
        keys = list(((model_json.get("signature") or {}).get("outputs") or {}))
        # only when the converter keyed an output by tensor name: loading the SavedModel costs ~2 s (ResNet50V2)
        rekeyed = rekey_signature_outputs(model_json, signature_output_tensors(saved)) \
            if set(keys) != set(signature_output_keys(saved)) else 0
    entries = read_weights(model_json["weightsManifest"], str(folder), flatten=True)
    values = {e["name"]: np.asarray(e["data"]) for e in entries}
    widened = widen_scalar_biases(model_json, values)
    unfused = unfuse_tensor_biases(model_json, values)
    control = has_control_flow(model_json)
    stripped = strip_control_inputs(model_json) if control else 0
    dtype = QUANTIZE[check_quantize(quantize)]
    names = [n for n, v in values.items() if v.size >= QUANT_MIN_ELEMENTS and v.dtype == np.float32]
    dtype_map = {dtype: [glob.escape(n) for n in names]} if dtype and names else None
    for group in model_json["weightsManifest"]:
        for path in group["paths"]:
            (folder / path).unlink()
    group = [{"name": n, "data": v} for n, v in values.items()]
    model_json["weightsManifest"] = write_weights([group], str(folder), write_manifest=False,
                                                  quantization_dtype_map=dtype_map)
    (folder / MODEL_JSON).write_text(json.dumps(model_json))
    hash_shard_names(folder)
    notes = [f"graph model; widened {len(widened)} scalar biases to rank 1 for WASM"] if widened else ["graph model"]
    if js_ops:
        notes.append(f"op(s) {', '.join(js_ops)} run by the JS library's own kernels (static/facepack/layers/ops.js)")
    if unfused:
        notes.append(f"split {len(unfused)} fused conv/matmul nodes whose bias is not a rank-1 weight (WASM) "
                     f"or whose activation TF.js cannot fuse")
    if rekeyed:
        notes.append(f"keyed {rekeyed} signature output(s) by the SavedModel's output keys (the converter keyed "
                     f"them by graph tensor name)")
    if control:
        notes.append(f"control flow: needs executeAsync (predictAsync); dropped {stripped} control-only inputs")
    return folder, notes
