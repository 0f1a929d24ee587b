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
