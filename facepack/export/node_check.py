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


def _write_job(bundle: Path, requests: list, work: Path) -> Path:
    """Input files + job.json for node_check.mjs; returns the job's path."""
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
    job.write_text(json.dumps({"bundle": str(bundle), "requests": reqs, "out": str(work)}))
    return job


def _read_results(work: Path, backends) -> dict:
    result = json.loads((Path(work) / "result.json").read_text())
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


def _last_error_line(stderr: str, returncode) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("    at ")]
    return lines[-1].strip() if lines else f"exit code {returncode}"


class NodeSession:
    """A Node process (node_check.mjs --serve) started AHEAD of the work: it loads TF.js and starts
    every backend while Python is still importing TensorFlow and converting (on two cores the
    two overlap), then runs jobs on demand. Use as a context manager; ``run`` is
    run_node_backends' contract.
    """

    def __init__(self, backends, timeout_s: float = 600.0):
        self.backends = list(backends)
        self.timeout_s = timeout_s
        self._start()

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([shutil.which("node") or "node", str(SCRIPT), "--serve", ",".join(self.backends), "-"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=ROOT)
        self._buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-3000:]

    def _read_line(self) -> str:
        import os
        import select
        import time

        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"TF.js ({','.join(self.backends)}, Node) did not answer within {self.timeout_s:.0f} s")
            ready, _, _ = select.select([self._proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._proc.stdout.fileno(), 65536)
            if not chunk:
                code = self._proc.wait()
                raise RuntimeError(f"TF.js ({','.join(self.backends)}, Node) stopped: "
                                   f"{_last_error_line(self._stderr_text(), code)}\n{self._stderr_text()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def run(self, bundle: Path, requests: list, work: Path) -> dict:
        job = _write_job(bundle, requests, work)
        if self._proc.poll() is not None:  # a crash in an earlier job (a WASM abort): start afresh
            self._restart()
        self._proc.stdin.write(f"{job}\n".encode())
        self._proc.stdin.flush()
        while True:  # skip "ready" and TF.js' own console lines
            line = self._read_line().strip()
            if line == "done":
                results = _read_results(work, self.backends)
                if any(isinstance(row, Exception) for rows in results.values() for row in rows):
                    self._restart()  # a failed run can leave the WASM heap corrupt ("memory access out of bounds")
                return results
            if line.startswith("failed "):
                raise RuntimeError(f"TF.js ({','.join(self.backends)}, Node) could not run the job: {line[7:]}")

    def _restart(self) -> None:
        self.close()
        self._start()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()


def run_node_backends(bundle: Path, backends, requests: list, work: Path, session: NodeSession | None = None) -> dict:
    """Run every (model name, inputs) of ``bundle`` on each backend, in ONE Node process
    (``session``'s, when given: started ahead, backends as its own).

    inputs: one array, a list of arrays in the manifest's input order, or a dict {input name:
    array} (passed to predictAsync as an object by name); dtype float*, int* or bool, sent as
    float32 / int32 / bool. Returns {backend: [list of output arrays, or a NodeRunError when
    TF.js failed to load or run that request on that backend]}.
    Raises RuntimeError when Node itself fails.
    """
    if session is not None:
        return session.run(bundle, requests, work)
    job = _write_job(bundle, requests, work)
    backends = list(backends)
    proc = subprocess.run([shutil.which("node") or "node", str(SCRIPT), str(bundle), ",".join(backends), str(job)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    if proc.returncode != 0 or not (Path(work) / "result.json").is_file():
        raise RuntimeError(f"TF.js ({','.join(backends)}, Node) could not run the exported models: "
                           f"{_last_error_line(proc.stderr, proc.returncode)}\n{proc.stderr[-3000:]}")
    return _read_results(work, backends)


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
        check = parity(item.reference(item.probe), got, entry["precision"], f"{item.name} in TF.js {backend}",
                       item.meta.get("backbone"))
        entry["parity"]["tfjs"] = {"backend": backend, "max_abs_diff": check["max_abs_diff"],
                                   "rel_rms": check["rel_rms"]}
        _log(log, f"  {item.name}: TF.js {backend} max abs diff {check['max_abs_diff']:.2e}")
