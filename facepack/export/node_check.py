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


def run_node(bundle: Path, backend: str, requests: list, work: Path) -> list[list[np.ndarray]]:
    """Outputs of each (model name, input batch) of ``bundle`` in Node on ``backend``."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    reqs = []
    for i, (name, x) in enumerate(requests):
        path = work / f"in_{i}.f32"
        np.ascontiguousarray(x, dtype="<f4").tofile(path)
        reqs.append({"name": name, "input": str(path), "shape": list(x.shape)})
    job = work / "job.json"
    job.write_text(json.dumps({"requests": reqs, "out": str(work)}))
    proc = subprocess.run([shutil.which("node") or "node", str(SCRIPT), str(bundle), backend, str(job)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"TF.js ({backend}, Node) could not run the exported models:\n{proc.stderr[-3000:]}")
    result = json.loads((work / "result.json").read_text())
    if result["backend"] != backend:
        raise RuntimeError(f"TF.js backend {backend!r} requested, {result['backend']!r} in use")
    return [[np.fromfile(f, "<f4").reshape(s) for f, s in zip(r["files"], r["shapes"])] for r in result["results"]]


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
