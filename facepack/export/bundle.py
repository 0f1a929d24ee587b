"""Building a bundle: every Export -> TF.js model folder, parity-checked, plus manifest.json.

Steps for each model (``export_one``):
  1. write it with the tensorflowjs converter (quantised if asked): a layers model from the
     tf_keras twin (bridge.py), or a graph model from a SavedModel when the layers format cannot
     hold the architecture;
  2. read it back (layers: tensorflowjs -> tf_keras; graph: TF.js in Node) and run the probe;
  3. compare with the reference (Keras 3 model / mtcnn package): the max abs difference goes
     into the manifest and must be within the tolerance for the precision, else ParityError;
  4. list its files with sizes and sha256.
Then the beauty pair is checked end to end (expected score), and with ``node_check`` every
model is run in TF.js itself (node_check.py, WASM) and held to the same tolerance.

``build_bundle`` writes everything into a temporary folder next to ``out_dir`` and only then
swaps it into place (``atomic_replace``): a failed or interrupted conversion leaves the previous
bundle byte-identical.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facepack.export import manifest as manifest_mod
from facepack.export import sources
from facepack.export.tfjs_io import (PRECISION, check_quantize, file_entries, load_layers_model,
                                     predict_list, save_graph_model, save_layers_model)

# Parity tolerances per precision (float32: float rounding only; quantised weights: the
# measured error of quantisation, see the README's size/accuracy table):
# float32 fails if max |ref - got| > MAX_ABS_REL_TOL * max(1, max |ref|);
# float16/uint8 fail if rms(ref - got) / rms(ref) > RMS_REL_TOL (max abs diff still recorded).
MAX_ABS_REL_TOL = 1e-3
RMS_REL_TOL = {"float16": 0.25, "uint8": 1.0}
# The beauty pair end to end (exported features -> exported head vs the Keras model): change of
# the expected score, points on 0..100. Measured on calibrated random 224 px models (README):
# float16 <= 0.3, uint8 <= 1.3 points (ResNet50, the worst).
SCORE_TOL_POINTS = {"float32": 0.05, "float16": 2.0, "uint8": 5.0}
MODEL_SETS = ("mtcnn", "beauty", "keypoints")


class ParityError(RuntimeError):
    """An exported model's outputs differ from the reference by more than the tolerance."""


def _log(log, message: str) -> None:
    if log is not None:
        log(message)


def parity(reference_outs: list, exported_outs: list, precision: str, name: str) -> dict:
    """{"max_abs_diff", "rel_rms", "tolerance", "criterion"}; raises ParityError above tolerance."""
    if len(reference_outs) != len(exported_outs):
        raise ParityError(f"model {name!r}: exported model has {len(exported_outs)} outputs, reference {len(reference_outs)}")
    diff, scale, err2, ref2 = 0.0, 1.0, 0.0, 0.0
    for ref, got in zip(reference_outs, exported_outs):
        ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
        if ref.shape != got.shape:
            raise ParityError(f"model {name!r}: exported output shape {got.shape} vs reference {ref.shape}")
        diff = max(diff, float(np.abs(ref - got).max()))
        scale = max(scale, float(np.abs(ref).max()))
        err2 += float(((ref - got) ** 2).mean())
        ref2 += float((ref ** 2).mean())
    rel_rms = float(np.sqrt(err2 / ref2)) if ref2 > 0 else float(np.sqrt(err2))
    if precision == "float32":
        tolerance, value, criterion = MAX_ABS_REL_TOL * scale, diff, "max_abs_diff"
    else:
        tolerance, value, criterion = RMS_REL_TOL[precision], rel_rms, "rel_rms"
    if not np.isfinite(value) or value > tolerance:
        raise ParityError(f"model {name!r} ({precision}): {criterion} {value:.3g} between the exported TF.js "
                          f"model and the reference exceeds the tolerance {tolerance:.3g}")
    return {"max_abs_diff": diff, "rel_rms": rel_rms, "tolerance": tolerance, "criterion": criterion}


def export_one(item: sources.Export, root: Path, quantize: str, log=print, loaded_models: dict | None = None) -> dict:
    """Write ``item`` under ``root``/<name>/, check parity, return its manifest entry.

    loaded_models: if given, receives {name: the model read back from TF.js}.
    """
    t0 = time.perf_counter()
    quantize = quantize if item.quantizable else "none"
    precision = PRECISION[quantize]
    folder = root / item.name
    if folder.exists():
        shutil.rmtree(folder)
    if item.format == "graph-model":
        _, notes = save_graph_model(item.keras3, folder, quantize)
        item.meta.setdefault("bridge_notes", []).extend(notes)
        got = _graph_outputs_in_node(root, item)
    else:
        save_layers_model(item.model, folder, quantize)
        loaded = load_layers_model(folder)
        if loaded_models is not None:
            loaded_models[item.name] = loaded
        got = predict_list(loaded, item.probe)
    check = parity(item.reference(item.probe), got, precision, item.name)
    files = file_entries(root, folder)
    model = item.model if item.model is not None else item.keras3
    entry = {
        "path": item.name,
        "format": item.format,
        "role": item.meta.get("role", item.name),
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "inputs": manifest_mod.tensor_specs(model.inputs, [t.name.split(":")[0] for t in model.inputs]),
        "outputs": manifest_mod.tensor_specs(model.outputs, item.output_names or _output_names(model)),
        "input_size": item.meta.get("input_size"),
        "backbone": item.meta.get("backbone"),
        "precision": precision,
        "parity": {**check, "probe": item.probe_desc,
                   "against": "mtcnn package" if item.name.startswith("mtcnn_") else "Keras 3 model",
                   "read_back": "TF.js in Node (wasm)" if item.format == "graph-model" else "tensorflowjs -> tf_keras"},
        **{k: v for k, v in item.meta.items() if k not in ("role", "input_size", "backbone")},
    }
    _log(log, f"  {item.name}: {entry['bytes'] / 1e6:.2f} MB {precision}, max abs diff "
              f"{check['max_abs_diff']:.2e}, rel rms {check['rel_rms']:.1e} ({check['criterion']} tol {check['tolerance']:.1e}), {time.perf_counter() - t0:.1f} s")
    return entry


def beauty_score_check(items: dict, loaded: dict, entries: dict, log=print) -> None:
    """End-to-end expected-score change of the exported beauty pair; recorded in both entries."""
    if not {"beauty_features", "beauty_head"} <= set(loaded):
        return
    feats, head = items["beauty_features"], items["beauty_head"]
    bins = np.arange(entries["beauty_head"]["outputs"][0]["shape"][-1], dtype=np.float64)
    ref = np.asarray(head.reference(feats.reference(feats.probe)[0])[0], np.float64) @ bins
    fmap = predict_list(loaded["beauty_features"], feats.probe)[0]
    got = np.asarray(predict_list(loaded["beauty_head"], fmap)[0], np.float64) @ bins
    change = float(np.abs(got - ref).max())
    precision = entries["beauty_features"]["precision"]
    for name in ("beauty_features", "beauty_head"):
        entries[name]["parity"]["score_change_points"] = change
        entries[name]["parity"]["score_tolerance_points"] = SCORE_TOL_POINTS[precision]
    _log(log, f"  beauty score (exported features -> head vs Keras): max change {change:.3g} points")
    if not np.isfinite(change) or change > SCORE_TOL_POINTS[precision]:
        raise ParityError(f"beauty model ({precision}): the exported expected score differs from the Keras model "
                          f"by {change:.3g} points, above the tolerance {SCORE_TOL_POINTS[precision]} points")


def _output_names(model) -> list[str]:
    names = getattr(model, "output_names", None)
    return list(names) if names else [t.name.split("/")[0].split(":")[0] for t in model.outputs]


def _graph_outputs_in_node(root: Path, item) -> list:
    """A graph model cannot be read back into Python: run it in TF.js (Node, WASM) instead."""
    import json as _json
    import tempfile

    from facepack.export.node_check import node_available, run_node

    ok, why = node_available()
    if not ok:
        raise RuntimeError(f"model {item.name!r} needs the graph-model format, whose parity check runs TF.js in "
                           f"Node, which is not possible here ({why})")
    (root / manifest_mod.MANIFEST_FILE).write_text(_json.dumps(
        {"spec": {}, "models": {item.name: {"path": item.name, "format": "graph-model"}}}))
    with tempfile.TemporaryDirectory(prefix="facepack-graph-") as work:
        return run_node(root, "wasm", [(item.name, item.probe)], Path(work))[0]


# --- atomic replacement -------------------------------------------------------------------

def _sibling(out: Path, tag: str) -> Path:
    return out.parent / f".{out.name}.{tag}-{os.getpid()}"


@contextmanager
def atomic_replace(out_dir: str | Path):
    """Yield a fresh temp folder next to ``out_dir``; on success it becomes ``out_dir``.

    On any exception (or KeyboardInterrupt) the temp folder is removed and ``out_dir`` is
    untouched. The swap is: out -> backup, temp -> out, delete backup (restored on failure).
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, backup = _sibling(out, "tmp"), _sibling(out, "backup")
    for stale in (tmp, backup):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    had_old = out.exists()
    if had_old:
        os.replace(out, backup)
    try:
        os.replace(tmp, out)
    except BaseException:
        if had_old:
            os.replace(backup, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if had_old:
        shutil.rmtree(backup, ignore_errors=True)


# --- the bundle ---------------------------------------------------------------------------

def carry_over(out: Path, tmp: Path, old: dict, rebuilt: set) -> dict:
    """Copy the models of the bundle at ``out`` (``old``: its manifest) that are not ``rebuilt``
    (names, which are also folder names) into ``tmp``; returns their manifest entries, unchanged
    (keep_others here, and export_model adding a model to a bundle)."""
    entries = {}
    for name, entry in old["models"].items():
        if name not in rebuilt and entry["path"] not in rebuilt:
            shutil.copytree(Path(out) / entry["path"], Path(tmp) / entry["path"])
            entries[name] = entry
    return entries


def _collect(models, beauty_run, keypoints_run, runs_root, user_model, user_name) -> list:
    """The Export list for the requested model sets (resolving latest runs)."""
    from facepack.runs import resolve_run

    if user_model is not None:
        if not user_name:
            raise ValueError("--name: a model name is required with --model, got none")
        return sources.user_model_exports(Path(user_model), user_name)
    unknown = [m for m in models if m not in MODEL_SETS]
    if unknown:
        raise ValueError(f"--only must name models among {list(MODEL_SETS)}, got {unknown}")
    items = []
    if "mtcnn" in models:
        items += sources.mtcnn_exports()
    if "beauty" in models:
        items += sources.beauty_exports(resolve_run("beauty", beauty_run, runs_root))
    if "keypoints" in models:
        items += sources.keypoints_exports(resolve_run("keypoints", keypoints_run, runs_root))
    return items


def build_bundle(out_dir, beauty_run=None, keypoints_run=None, quantize: str = "none",
                 include_mtcnn: bool = True, *, models=None, runs_root=None, user_model=None,
                 user_name: str | None = None, keep_others: bool = False, node_check: bool = False,
                 log=print, _after_model=None) -> dict:
    """Convert the models and write the bundle at ``out_dir`` atomically; returns the manifest.

    beauty_run / keypoints_run: run folders (None: the latest run, facepack.runs.latest_run).
    quantize: "none" | "float16" | "uint8" (MTCNN nets always stay float32).
    models: which of MODEL_SETS to convert (default all; include_mtcnn=False drops "mtcnn").
    keep_others: keep the models of an existing bundle at ``out_dir`` that are not rebuilt
      (``--only``); their manifest entries and files are carried over unchanged.
    user_model, user_name: export a user's own Keras 3 .keras file instead, as ``user_name``.
    node_check: also run every converted model in TF.js (Node, WASM backend) and hold it to the
      same tolerance (node_check.py); recorded as parity.tfjs in the manifest.
    _after_model: test hook called with the model name after each model is written.
    """
    check_quantize(quantize)
    t0 = time.perf_counter()
    if models is None:
        models = [m for m in MODEL_SETS if include_mtcnn or m != "mtcnn"]
    out = Path(out_dir)
    old = None
    if keep_others and (out / manifest_mod.MANIFEST_FILE).is_file():
        old = manifest_mod.read_manifest(out)
    items = _collect(list(models), beauty_run, keypoints_run, runs_root, user_model, user_name)
    entries = {}
    with atomic_replace(out) as tmp:
        if old is not None:
            entries.update(carry_over(out, tmp, old, {item.name for item in items}))
        loaded = {}
        for item in items:
            _log(log, f"converting {item.name} ...")
            entries[item.name] = export_one(item, tmp, quantize, log, loaded)
            if _after_model is not None:
                _after_model(item.name)
        beauty_score_check({item.name: item for item in items}, loaded, entries, log)
        manifest = manifest_mod.build_manifest(entries)
        manifest_mod.write_manifest(tmp, manifest)
        if node_check:
            from facepack.export.node_check import check_in_node, node_available

            ok, why = node_available()
            if not ok:
                raise RuntimeError(f"--node-check: cannot run TF.js in Node here ({why}); pass --no-node-check")
            check_in_node(tmp, items, entries, log=log)
            manifest_mod.write_manifest(tmp, manifest)
        manifest_mod.verify_files(tmp, manifest)
    total = sum(e["bytes"] for e in entries.values())
    _log(log, f"wrote {out} ({len(entries)} models, {total / 1e6:.2f} MB) in {time.perf_counter() - t0:.1f} s")
    return manifest


def main_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
