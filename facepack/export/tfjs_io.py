"""Writing one tf_keras model as a TF.js layers model, reading it back, and listing its files.

Thin wrappers over the ``tensorflowjs`` converter's Python API, imported lazily (it pulls in
TF Decision Forests and JAX, several seconds).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
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


def _tensorflowjs():
    """The tensorflowjs package (TFDF, which it imports, would otherwise import IPython under
    pytest's captured stdout to print a welcome message)."""
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflowjs

    return tensorflowjs


def check_quantize(quantize: str) -> str:
    if quantize not in QUANTIZE:
        raise ValueError(f"--quantize must be one of {list(QUANTIZE)}, got {quantize!r}")
    return quantize


def weight_specs(folder: str | Path) -> list[dict]:
    """[{name, shape, dtype, quantization?}] of a written model.json's weights."""
    manifest = json.loads((Path(folder) / MODEL_JSON).read_text())["weightsManifest"]
    return [w for group in manifest for w in group["weights"]]


def _save(tfjs, model, folder: Path, dtype_map) -> None:
    with warnings.catch_warnings():  # tensorflowjs saves via a temporary HDF5 file ("legacy format")
        warnings.simplefilter("ignore", UserWarning)
        tfjs.converters.save_keras_model(model, str(folder), quantization_dtype_map=dtype_map)
    if not (folder / MODEL_JSON).is_file():
        raise RuntimeError(f"tensorflowjs wrote no {MODEL_JSON} into {folder}")


def save_layers_model(model, folder: str | Path, quantize: str = "none") -> Path:
    """Write ``model`` (tf_keras) to ``folder``/model.json + weight shards; returns the folder.

    Quantised: written once in float32 to learn the converter's weight names, then again with
    the weights of >= QUANT_MIN_ELEMENTS elements mapped to the quantisation dtype.
    """
    tfjs = _tensorflowjs()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _save(tfjs, model, folder, None)
    dtype = QUANTIZE[check_quantize(quantize)]
    if dtype is not None:
        names = [w["name"] for w in weight_specs(folder) if int(np.prod(w["shape"])) >= QUANT_MIN_ELEMENTS]
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _save(tfjs, model, folder, {dtype: [glob.escape(n) for n in names]} if names else None)
    return folder


def load_layers_model(folder: str | Path):
    """Read an exported layers model back into tf_keras (weights dequantised)."""
    return _tensorflowjs().converters.load_keras_model(str(Path(folder) / MODEL_JSON))


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
    """Give every rank-0 bias of a fused conv/matmul the rank-1 shape TF.js WASM requires.

    (The grappler remapper fuses `conv(x) + 3.0` into a conv with a scalar bias; TF.js WASM
    then fails with "FusedConv2D only supports rank-1 bias but got rank 0".) Returns the
    names of the weights widened; ``values`` ({name: array}) is updated in place.
    """
    shapes = {name: list(v.shape) for name, v in values.items()}
    widened = []
    for node in model_json["modelTopology"].get("node", []):
        if node["op"] not in FUSED_WITH_BIAS or len(node["input"]) < 3:
            continue
        bias = node["input"][2].split(":")[0]
        if bias in values and values[bias].ndim == 0:
            width = _bias_width(node, shapes)
            if width is None:
                continue
            scalar = values[bias]
            name = f"{bias}__rank1_{width}"
            values[name] = np.full((width,), scalar, dtype=scalar.dtype)
            node["input"][2] = name  # the scalar Const stays for any other user
            widened.append(name)
    for name in widened:  # a Const node per new weight, as the converter writes them
        model_json["modelTopology"]["node"].append(
            {"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"},
                                                  "value": {"tensor": {"dtype": "DT_FLOAT",
                                                                       "tensorShape": {"dim": [{"size": str(values[name].shape[0])}]}}}}})
    return widened


def save_graph_model(model3, folder: str | Path, quantize: str = "none") -> tuple[Path, list[str]]:
    """Write a Keras 3 model as a TF.js graph model (model.export -> SavedModel -> converter).

    Scalar biases are widened for WASM (widen_scalar_biases) and large weights quantised as in
    save_layers_model. Returns (folder, notes).
    """
    import tempfile

    tfjs = _tensorflowjs()
    from tensorflowjs.read_weights import read_weights
    from tensorflowjs.write_weights import write_weights

    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="facepack-savedmodel-") as saved:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model3.export(saved, format="tf_saved_model", verbose=False)
        tfjs.converters.convert_tf_saved_model(saved, str(folder))
    model_json = json.loads((folder / MODEL_JSON).read_text())
    entries = read_weights(model_json["weightsManifest"], str(folder), flatten=True)
    values = {e["name"]: np.asarray(e["data"]) for e in entries}
    widened = widen_scalar_biases(model_json, values)
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
    notes = [f"graph model; widened {len(widened)} scalar biases to rank 1 for WASM"] if widened else ["graph model"]
    return folder, notes
