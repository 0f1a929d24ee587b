"""Running exported models in TF.js under Node (tfjs + tfjs-backend-wasm, no tfjs-node).

The Python read-back in bundle.export_one checks what the converter wrote with tf_keras
semantics; this checks it with TF.js semantics (an activation or layer that TF.js reads
differently shows up here only). Uses the repo's JS library (static/facepack/) and
node_modules; ``node_available`` says whether that is possible here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = Path(__file__).with_name("node_check.mjs")
NODE_MODULES = ROOT / "node_modules"
LIBRARY = ROOT / "static" / "facepack" / "generic.js"


def node_available() -> tuple[bool, str]:
    """(usable, reason)."""
    if shutil.which("node") is None:
        return False, "node is not on PATH"
    for need in (NODE_MODULES / "@tensorflow" / "tfjs", NODE_MODULES / "@tensorflow" / "tfjs-backend-wasm", LIBRARY):
        if not need.exists():
            return False, f"{need} is missing"
    return True, ""


# numpy dtype <-> the file format node_check.mjs reads and writes
_NP_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "u1"}


def tfjs_dtype(dtype) -> str:
    """The TF.js dtype an array of numpy ``dtype`` is sent as: float32, int32 or bool."""
    kind = np.dtype(dtype).kind
    return "bool" if kind == "b" else "int32" if kind in "iu" else "float32"


class NodeRunError(RuntimeError):
    """TF.js could not load or run one model on one backend (message: the TF.js error)."""


def _as_inputs(x) -> list[tuple[str | None, np.ndarray]]:
    if isinstance(x, dict):
        return [(str(k), v) for k, v in x.items()]
    if isinstance(x, (list, tuple)):
        return [(None, v) for v in x]
    return [(None, x)]


def run_node_backends(bundle: Path, backends, requests: list, work: Path) -> dict:
    """Run every (model name, inputs) of ``bundle`` on each backend, in ONE Node process.

    inputs: one array, a list of arrays in the manifest's input order, or a dict {input name:
    array} (passed to predictAsync as an object by name); dtype float*, int* or bool, sent as
    float32 / int32 / bool. Returns {backend: [list of output arrays, or a
    NodeRunError when TF.js failed to load or run that request on that backend]}.
    Raises RuntimeError when Node itself fails.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    reqs = []
    for i, (name, x) in enumerate(requests):
        specs = []
        for j, (key, arr) in enumerate(_as_inputs(x)):
            dtype = tfjs_dtype(np.asarray(arr).dtype)
            path = work / f"in_{i}_{j}.bin"
            np.ascontiguousarray(arr, dtype=_NP_DTYPES[dtype]).tofile(path)
            specs.append({"file": str(path), "shape": list(np.shape(arr)), "dtype": dtype,
                          **({"key": key} if key is not None else {})})
        reqs.append({"name": name, "inputs": specs})
    job = work / "job.json"
    job.write_text(json.dumps({"requests": reqs, "out": str(work)}))
    backends = list(backends)
    proc = subprocess.run([shutil.which("node") or "node", str(SCRIPT), str(bundle), ",".join(backends), str(job)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    if proc.returncode != 0 or not (work / "result.json").is_file():
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("    at ")]
        last = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise RuntimeError(f"TF.js ({','.join(backends)}, Node) could not run the exported models: {last}\n"
                           f"{proc.stderr[-3000:]}")
    result = json.loads((work / "result.json").read_text())
    out = {}
    for backend in backends:
        rows = []
        for r in result["results"][backend]:
            if "error" in r:
                rows.append(NodeRunError(r["error"]))
            else:
                rows.append([np.fromfile(f, _NP_DTYPES.get(d, "<f4")).reshape(s)
                             for f, s, d in zip(r["files"], r["shapes"], r["dtypes"])])
        out[backend] = rows
    return out


def run_node(bundle: Path, backend: str, requests: list, work: Path) -> list[list[np.ndarray]]:
    """Outputs of each (model name, inputs) of ``bundle`` in Node on ``backend``; raises
    RuntimeError naming the backend and TF.js' message when a model fails there."""
    rows = run_node_backends(bundle, [backend], requests, work)[backend]
    for (name, _), row in zip(requests, rows):
        if isinstance(row, Exception):
            raise RuntimeError(f"TF.js ({backend}, Node) could not run the exported model {name!r}: {row}")
    return rows


def check_in_node(bundle: Path, items: list, entries: dict, backend: str = "wasm", log=print) -> None:
    """Run every Export's probe in TF.js; record {"backend", "max_abs_diff"} under parity.tfjs.

    Raises ParityError (via bundle.parity) when an output is beyond the model's tolerance.
    """
    from facepack.export.bundle import _log, parity

    with tempfile.TemporaryDirectory(prefix="facepack-node-") as work:
        outs = run_node(bundle, backend, [(item.name, item.probe) for item in items], Path(work))
    for item, got in zip(items, outs):
        entry = entries[item.name]
        check = parity(item.reference(item.probe), got, entry["precision"], f"{item.name} in TF.js {backend}")
        entry["parity"]["tfjs"] = {"backend": backend, "max_abs_diff": check["max_abs_diff"],
                                   "rel_rms": check["rel_rms"]}
        _log(log, f"  {item.name}: TF.js {backend} max abs diff {check['max_abs_diff']:.2e}")
