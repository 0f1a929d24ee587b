"""Export zoo models, run the bundles in TF.js (one Node process per backend), compare with Keras.

Used by tests/test_export_conformance.py and bench/bench_export.py:

    preps = [prepare(e, keras, work) for e in zoo.select(slow=False)]
    exports = {p.entry.name: export_facepack(p, work / "facepack") for p in preps}
    outs = run_batch(facepack_requests(preps, exports), "wasm", "facepack", work / "node-wasm")
    verdict = compare(prep.ref, outs[name])                 # {"rel": ..., "ok": ...} or {"error": ...}

Outcome of one model (``outcome``): "match" (exported; rel < REL_TOL on every backend),
"refused" (ExportError, one line), "crashed" (any other exception: a defect), "wrong" (a bundle was
written but TF.js cannot run it or its outputs differ: the worst case, a silently wrong export).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facepack.export import zoo

# A model matches when max |keras - tfjs| / max |keras| < REL_TOL over all its outputs (float32).
REL_TOL = 1e-4
BACKENDS = ("cpu", "wasm")
NODE_TIMEOUT_S = 1800
REPO = Path(__file__).resolve().parent.parent.parent.parent


@dataclass
class Prepared:
    """A zoo row made concrete: its model (seeded weights), .keras file, inputs and Keras outputs."""

    entry: zoo.ZooModel
    model: object
    path: Path | None  # the saved .keras (None for source="object" rows)
    xs: list
    ref: list
    input_names: list
    build_s: float


def prepare(entry: zoo.ZooModel, keras, work: Path) -> Prepared:
    """Build, sample, predict and (for source="path") save the row's model under ``work``."""
    t0 = time.perf_counter()
    model = zoo.build(entry, keras)
    xs = zoo.sample(entry, model)
    ref = zoo.reference(entry, keras, model, xs)
    path = None
    if entry.source == "path":
        path = Path(work) / "keras" / f"{entry.name}.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    names = [t.name.split(":")[0] for t in getattr(model, "inputs", None) or []] or [f"input_{i}" for i in range(len(xs))]
    return Prepared(entry, model, path, xs, ref, names, time.perf_counter() - t0)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def _export_model_fn():
    """facepack.export.export_model when it exists (issue 11), else None (then the CLI's path)."""
    try:
        from facepack.export import export_model
    except ImportError:
        return None
    return export_model


def exporter_name() -> str:
    return "facepack.export.export_model" if _export_model_fn() else "build_bundle(user_model=...) (convert/to_tfjs.py)"


def export_facepack(prep: Prepared, out_dir: Path, log=None) -> dict:
    """Export one prepared model as the user would; never raises.

    Returns {"status": "exported"|"refused"|"crashed", "message", "one_line", "seconds", "bundle",
    "format", "notes"}. "refused" is an ExportError (the exporter's deliberate one-line refusal).
    """
    entry = prep.entry
    out_dir = Path(out_dir)
    lines = []
    logger = log or lines.append
    t0 = time.perf_counter()
    fn = _export_model_fn()
    try:
        if fn is not None:
            source = prep.path if entry.source == "path" else prep.model
            fn(source, out_dir, name=entry.name,
               sample=prep.xs if entry.sampler is not None else None,
               custom_objects=str(zoo.CUSTOM_LAYERS_FILE) if entry.custom_objects else None,
               unsafe=entry.unsafe, backends=BACKENDS, log=logger)
        else:  # the CLI's route until export_model lands: `convert/to_tfjs.py --model M --name N`
            from facepack.export.bundle import build_bundle

            if prep.path is None:
                raise ValueError(f"model {entry.name!r}: the CLI exports .keras files only (a subclassed model)")
            build_bundle(out_dir, user_model=prep.path, user_name=entry.name, node_check=True, log=logger)
    except Exception as err:  # noqa: BLE001 - every failure is a result here
        status = "refused" if type(err).__name__ == "ExportError" else "crashed"
        return {"status": status, "message": first_line(err), "one_line": "\n" not in str(err).strip(),
                "seconds": time.perf_counter() - t0, "bundle": None, "format": None, "notes": lines[-5:]}
    manifest = json.loads((out_dir / "manifest.json").read_text())
    model_entry = manifest["models"][entry.name]
    return {"status": "exported", "message": "", "one_line": True, "seconds": time.perf_counter() - t0,
            "bundle": str(out_dir), "format": model_entry.get("format"),
            "notes": model_entry.get("bridge_notes", [])}


# --- Node ---------------------------------------------------------------------------------------

def input_specs(prep: Prepared, work: Path, tag: str) -> list[dict]:
    """Write the prepared inputs as raw little-endian files; their specs for the runner."""
    specs = []
    for i, (x, name) in enumerate(zip(prep.xs, prep.input_names)):
        dtype = "int32" if np.issubdtype(x.dtype, np.integer) else "float32"
        file = Path(work) / "inputs" / f"{tag}_{i}.bin"
        file.parent.mkdir(parents=True, exist_ok=True)
        np.ascontiguousarray(x, dtype="<i4" if dtype == "int32" else "<f4").tofile(file)
        specs.append({"file": str(file), "shape": list(x.shape), "dtype": dtype, "name": name})
    return specs


def facepack_requests(preps: list[Prepared], exports: dict, work: Path) -> list[dict]:
    """Runner requests for every exported facepack bundle."""
    return [{"id": p.entry.name, "bundle": exports[p.entry.name]["bundle"], "name": p.entry.name,
             "inputs": input_specs(p, work, p.entry.name)}
            for p in preps if exports[p.entry.name]["status"] == "exported"]


def run_batch(requests: list[dict], backend: str, library: str, work: Path) -> dict:
    """{id: [output arrays] | "error message"} for every request, in ONE node process."""
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if not requests:
        return {}
    job = work / "job.json"
    job.write_text(json.dumps({"backend": backend, "library": library, "out": str(work), "requests": requests}))
    node = shutil.which("node") or "node"
    proc = subprocess.run([node, str(zoo.RUNNER), str(job)], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, cwd=REPO)
    result_file = work / "result.json"
    if proc.returncode != 0 or not result_file.is_file():  # e.g. the library itself fails to import
        lines = [ln.strip() for ln in proc.stderr.splitlines() if "Error" in ln] or proc.stderr.strip().splitlines()[-1:]
        why = f"TF.js runner ({backend}, {library}) failed before running any model: {(lines or ['?'])[0][:300]}"
        return {r["id"]: why for r in requests}
    result = json.loads(result_file.read_text())
    if result["backend"] != backend:
        raise RuntimeError(f"TF.js backend {backend!r} requested, {result['backend']!r} in use")
    out = {}
    for r in result["results"]:
        if "error" in r:
            out[r["id"]] = r["error"]
        else:
            out[r["id"]] = [np.fromfile(f, "<f4").reshape(s) for f, s in zip(r["files"], r["shapes"])]
    return out


# --- comparison ---------------------------------------------------------------------------------

def relative_error(ref: list, got: list) -> float:
    """max over outputs of max |ref - got|, divided by max over outputs of max |ref| (inf on shape mismatch)."""
    if len(ref) != len(got):
        return float("inf")
    scale = max(float(np.abs(r).max()) if r.size else 0.0 for r in ref) or 1.0
    worst = 0.0
    for r, g in zip(ref, got):
        g = np.asarray(g)
        if g.shape != r.shape:
            if g.size != r.size or g.squeeze().shape != r.squeeze().shape:
                return float("inf")
            g = g.reshape(r.shape)  # (N, 1) vs (N,) and the like: same values
        diff = np.abs(r.astype(np.float64) - g.astype(np.float64))
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst / scale if np.isfinite(worst) else float("inf")


def compare(ref: list, got, any_order: bool = False) -> dict:
    """{"ok", "rel"} or {"ok": False, "error"} for one model's outputs on one backend.

    any_order: outputs may come in another order (graph models from a SavedModel signature name
    them output_0.. in their own order): the best-matching order is used.
    """
    if isinstance(got, str):
        return {"ok": False, "rel": None, "error": got}
    if len(got) != len(ref):
        return {"ok": False, "rel": None, "error": f"{len(got)} outputs, Keras has {len(ref)}"}
    orders = itertools.permutations(range(len(got))) if any_order and len(got) <= 5 else [range(len(got))]
    rel = min(relative_error(ref, [got[i] for i in order]) for order in orders)
    if not np.isfinite(rel):
        shapes = [list(np.shape(g)) for g in got]
        return {"ok": False, "rel": None, "error": f"output shapes {shapes} vs Keras {[list(r.shape) for r in ref]}"}
    return {"ok": rel < REL_TOL, "rel": rel, "error": None if rel < REL_TOL else f"rel {rel:.2g} >= {REL_TOL:g}"}


def outcome(export: dict, per_backend: dict) -> str:
    """"match" | "refused" | "crashed" | "wrong" (see the module docstring)."""
    if export["status"] != "exported":
        return export["status"]
    return "match" if all(v["ok"] for v in per_backend.values()) else "wrong"


def conformance(preps: list[Prepared], work: Path, log=None) -> dict:
    """Export every prepared model with facepack, run all bundles per backend, compare.

    Returns {name: {"outcome", "expect", "export": {...}, "backends": {backend: compare()}, "case",
    "family", "export_s"}} plus the timing under "_timing".
    """
    work = Path(work)
    t0 = time.perf_counter()
    exports = {}
    for p in preps:
        exports[p.entry.name] = export_facepack(p, work / "bundles" / p.entry.name)
        if log:
            e = exports[p.entry.name]
            log(f"{p.entry.name}: {e['status']} {e['format'] or e['message']} ({e['seconds']:.1f} s)")
    t_export = time.perf_counter() - t0
    requests = facepack_requests(preps, exports, work)
    outs = {b: run_batch(requests, b, "facepack", work / f"node-{b}") for b in BACKENDS}
    t_node = time.perf_counter() - t0 - t_export
    results = {}
    for p in preps:
        name, export = p.entry.name, exports[p.entry.name]
        backends = {b: compare(p.ref, outs[b][name]) for b in BACKENDS} if export["status"] == "exported" else {}
        results[name] = {"outcome": outcome(export, backends), "expect": p.entry.expect, "case": p.entry.case,
                         "family": p.entry.family, "export": export, "backends": backends,
                         "build_s": p.build_s}
    results["_timing"] = {"export_s": t_export, "node_s": t_node, "exporter": exporter_name()}
    return results


def summary_rows(results: dict) -> list[list]:
    """Table rows: model | case | family | outcome | expected | format | rel cpu | rel wasm | s | message."""
    rows = []
    for name, r in results.items():
        if name.startswith("_"):
            continue
        b = r["backends"]
        rel = {k: (v["rel"] if v.get("rel") is not None else v.get("error")) for k, v in b.items()}
        rows.append([name, r["case"], r["family"], r["outcome"], r["expect"], r["export"]["format"] or "-",
                     rel.get("cpu"), rel.get("wasm"), f"{r['export']['seconds']:.1f}",
                     (r["export"]["message"] or "; ".join(str(v.get("error")) for v in b.values() if v.get("error")))[:110]])
    return rows


SUMMARY_HEADERS = ["model", "case", "family", "outcome", "expected", "format", "rel cpu", "rel wasm", "export s",
                   "message"]


def format_rows(rows: list[list]) -> str:
    """A plain Markdown table of summary_rows (numbers as %.1e / ints)."""
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.1e}" if v < 1 else f"{v:.1f}"
        return str(v).replace("|", "/")
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(SUMMARY_HEADERS)]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(SUMMARY_HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in cells])
