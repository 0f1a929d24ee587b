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
swaps it into place in one step (``atomic_replace``, under the folder's writer lock): a failed,
interrupted or killed conversion leaves the previous bundle byte-identical. With
``skip_unchanged`` it first compares the bundle's recorded build key (``build_key``: sources,
options, code, versions) and converts only the model sets whose key changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facepack.export import manifest as manifest_mod
from facepack.export import sources
from facepack.export.tfjs_io import (check_quantize, file_entries, load_layers_model, predict_list, save_graph_model,
                                     save_layers_model, unquantised_note, written_precision)

# Parity tolerances per precision (float32: float rounding only; quantised weights: ~2-3x the
# worst error measured (2026-12-01, the manifests' parity blocks) on every model the builder
# exports: the shipped beauty pair and keypoint model, and the seed-0 calibrated untrained runs
# (tests/conftest.make_untrained_run) of every beauty backbone @64 px and of the kpnet /
# mobilenet_v2 keypoint models):
# float32 fails if max |ref - got| > MAX_ABS_REL_TOL * max(1, max |ref|);
# float16/uint8 fail if rms(ref - got) / rms(ref) > RMS_REL_TOL (max abs diff still recorded).
MAX_ABS_REL_TOL = 1e-3
# measured rel rms, worst: float16 0.0092 (efficientnet_lite1 features; shipped 6.4e-4),
# uint8 0.138 (efficientnet_lite1 features; shipped beauty 0.044, keypoints 0.040 mobilenet_v2)
RMS_REL_TOL = {"float16": 0.025, "uint8": 0.3}
# The beauty pair end to end (exported features -> exported head vs the Keras model): change of
# the expected score, points on 0..100, on the probe. Measured worst: float16 0.072
# (efficientnet_lite1; shipped 0.003), uint8 1.10 (efficientnet_lite2; shipped 0.015).
SCORE_TOL_POINTS = {"float32": 0.05, "float16": 0.2, "uint8": 2.5}
# ResNet50 quantises far worse than the others (same measurement: rel rms float16 0.043, uint8
# 0.378; score float16 0.45, uint8 3.72 points), so its runs get their own, ~2x its worst.
BACKBONE_TOL = {"resnet50": {"rel_rms": {"float16": 0.1, "uint8": 0.8},
                             "score_points": {"float16": 1.0, "uint8": 7.5}}}


def rms_tolerance(precision: str, backbone: str | None = None) -> float:
    """RMS_REL_TOL[precision], or the backbone's own (BACKBONE_TOL) for a quantised precision."""
    return (BACKBONE_TOL.get(backbone) or {}).get("rel_rms", {}).get(precision, RMS_REL_TOL[precision])


def score_tolerance(precision: str, backbone: str | None = None) -> float:
    """SCORE_TOL_POINTS[precision] (points on 0..100), or the backbone's own (BACKBONE_TOL)."""
    return (BACKBONE_TOL.get(backbone) or {}).get("score_points", {}).get(precision, SCORE_TOL_POINTS[precision])


MODEL_SETS = ("mtcnn", "beauty", "keypoints")


class ParityError(RuntimeError):
    """An exported model's outputs differ from the reference by more than the tolerance."""


def _log(log, message: str) -> None:
    if log is not None:
        log(message)


def parity(reference_outs: list, exported_outs: list, precision: str, name: str, backbone: str | None = None) -> dict:
    """{"max_abs_diff", "rel_rms", "tolerance", "criterion"}; raises ParityError above tolerance
    (rms_tolerance(precision, backbone) for float16/uint8)."""
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
        tolerance, value, criterion = rms_tolerance(precision, backbone), rel_rms, "rel_rms"
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
    folder = root / item.name
    if folder.exists():
        shutil.rmtree(folder)
    if item.format == "graph-model":
        _, notes = save_graph_model(item.keras3, folder, quantize)
        item.meta["bridge_notes"] = [*item.meta.get("bridge_notes", []), *notes]  # a new list: never shared
        got = _graph_outputs_in_node(root, item)
    else:
        save_layers_model(item.model, folder, quantize, rule=item.meta.get("quantization"))  # quantize.py
        loaded = load_layers_model(folder)
        if loaded_models is not None:
            loaded_models[item.name] = loaded
        got = predict_list(loaded, item.probe)
    precision = written_precision(folder, quantize)  # float32 when no tensor was big enough to quantise
    if quantize != "none" and precision == "float32":
        item.meta["bridge_notes"] = [*item.meta.get("bridge_notes", []), unquantised_note(quantize)]
    check = parity(item.reference(item.probe), got, precision, item.name, item.meta.get("backbone"))
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
    tolerance = score_tolerance(precision, feats.meta.get("backbone"))
    for name in ("beauty_features", "beauty_head"):
        entries[name]["parity"]["score_change_points"] = change
        entries[name]["parity"]["score_tolerance_points"] = tolerance
    _log(log, f"  beauty score (exported features -> head vs Keras): max change {change:.3g} points")
    if not np.isfinite(change) or change > tolerance:
        raise ParityError(f"beauty model ({precision}): the exported expected score differs from the Keras model "
                          f"by {change:.3g} points, above the tolerance {tolerance} points")


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


# --- atomic replacement ------------------------------------------------------------------
# Every writer of a folder (build_bundle, export_model, the npm package) holds an exclusive
# lock on ``.<name>.lock`` next to it, writes ``.<name>.tmp-<PID>`` and swaps it in with ONE
# rename: renameat2(RENAME_EXCHANGE) (Linux; renamex_np(RENAME_SWAP) on macOS) exchanges the two
# folders, so ``out`` always names a complete bundle, old or new; the old one, now at the temp
# name, is deleted afterwards. A kill at any point leaves ``out`` complete plus at most one
# temp folder, which the next writer removes (its PID is dead). Where no exchange exists the
# swap is two renames (out -> .<name>.backup-<PID>, temp -> out); a backup left by a kill
# between them (or by facepack before this change) is restored by the next writer.

PAUSE_ENV = "FACEPACK_EXPORT_PAUSE_AT"  # test hook: comma-separated pause points (pause_point)
NO_EXCHANGE_ENV = "FACEPACK_EXPORT_NO_EXCHANGE"  # test hook: "1" forces the two-rename swap
PAUSE_POINTS = ("after-model", "before-swap", "after-backup", "after-swap")
_HELD_LOCKS: dict = {}  # realpath of a locked folder -> [fd, depth] (re-entrant within a process)


class ExportBusy(RuntimeError):
    """Another process is writing the same folder (it holds the folder's lock)."""


def pause_point(name: str) -> None:
    """Test hook: when ``name`` is listed in $FACEPACK_EXPORT_PAUSE_AT, say so on stderr and
    sleep (the kill tests send SIGKILL here). Points: PAUSE_POINTS."""
    if name in os.environ.get(PAUSE_ENV, "").split(","):
        print(f"facepack-export: paused at {name} (pid {os.getpid()})", file=sys.stderr, flush=True)
        time.sleep(3600)


def _sibling(out: Path, tag: str, pid: int | None = None) -> Path:
    return out.parent / f".{out.name}.{tag}-{os.getpid() if pid is None else pid}"


def lock_path(out_dir: str | Path) -> Path:
    out = Path(out_dir).resolve()
    return out.parent / f".{out.name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(fd: int) -> str:
    """'PID n (command), since time' as the lock holder wrote it, or a generic phrase."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"PID {info['pid']} ({info['command']}), since {info['started']}"
    except (ValueError, KeyError, OSError):
        return "another process (it has not written its PID yet)"


def _command_line(limit: int = 300) -> str:
    """This process's command line (/proc/self/cmdline where there is one), at most ``limit`` chars."""
    try:
        words = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        text = " ".join(w.decode(errors="replace") for w in words)
        text = " ".join(text.split())  # one line, even for `python -c` scripts
    except OSError:
        text = " ".join([sys.executable, *sys.argv])
    return text if len(text) <= limit else text[:limit - 3] + "..."


@contextmanager
def export_lock(out_dir: str | Path, wait_s: float = 0.0, log=None):
    """Hold the exclusive writer lock of ``out_dir`` (fcntl.flock on ``.<name>.lock`` beside it).

    Re-entrant within a process. When another process holds it: wait up to ``wait_s`` seconds
    (saying so through ``log``), then raise ExportBusy naming that process (PID, command, start).
    On first acquiring, leftovers of killed writers are cleaned up (``recover``).
    """
    import fcntl

    out = Path(out_dir).resolve()
    held = _HELD_LOCKS.get(out)
    if held is not None:
        held[1] += 1
        try:
            yield out
        finally:
            held[1] -= 1
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, said = time.monotonic() + max(0.0, wait_s), False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = _holder(fd)
                if time.monotonic() >= deadline:
                    waited = f" (waited {wait_s:g} s)" if wait_s > 0 else ""
                    raise ExportBusy(f"{out} is being written by another export: {who}{waited}; wait for it "
                                     f"to finish (or pass --lock-wait SECONDS), or stop that process") from None
                if not said:
                    _log(log, f"waiting up to {wait_s:g} s for {who}, which is writing {out}")
                    said = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": _command_line(),
                                  "started": manifest_mod.now_iso()}).encode(), 0)
        _HELD_LOCKS[out] = [fd, 1]
        try:
            recover(out, log)
            yield out
        finally:
            del _HELD_LOCKS[out]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def recover(out_dir: str | Path, log=None) -> list[str]:
    """Clean up after killed writers of ``out_dir`` (call with its lock held): a backup
    (``.<name>.backup-PID``, PID dead) is moved back when ``out_dir`` is missing, else deleted;
    temp folders (``.<name>.tmp-PID``, PID dead) are deleted. Returns what was done."""
    out = Path(out_dir).resolve()
    done = []
    for tag in ("backup", "tmp"):
        for path in sorted(out.parent.glob(f".{out.name}.{tag}-*")):
            pid = path.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
                continue
            if tag == "backup" and not os.path.lexists(out):
                os.rename(path, out)
                done.append(f"restored {out} from {path.name} (left by a killed export, PID {pid})")
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"removed {path.name} (left by a killed export, PID {pid})")
            else:
                path.unlink(missing_ok=True)
    for line in done:
        _log(log, line)
    return done


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two existing paths; False when this system/filesystem cannot."""
    if os.environ.get(NO_EXCHANGE_ENV) == "1":
        return False
    import ctypes
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "renameat2"):  # Linux, glibc >= 2.28
        result = libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2)  # AT_FDCWD, RENAME_EXCHANGE
    elif hasattr(libc, "renamex_np"):  # macOS
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), 2)  # RENAME_SWAP
    else:
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), f"{a} <-> {b}")


def swap_in(tmp: Path, out: Path) -> None:
    """Make the complete folder ``tmp`` become ``out`` in one step (see the section comment)."""
    pause_point("before-swap")
    if not os.path.lexists(out):
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):
        pause_point("after-swap")
        shutil.rmtree(tmp, ignore_errors=True)  # the old folder, now at the temp name
        return
    backup = _sibling(out, "backup")
    os.rename(out, backup)
    try:
        pause_point("after-backup")
        os.rename(tmp, out)
    except BaseException:
        os.rename(backup, out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


@contextmanager
def atomic_replace(out_dir: str | Path, lock_wait_s: float = 0.0, log=None):
    """Yield a fresh temp folder next to ``out_dir``; on success it becomes ``out_dir`` in one step.

    Holds the folder's writer lock throughout (``export_lock``; ExportBusy when another process
    writes it). On any exception (or KeyboardInterrupt) the temp folder is removed and
    ``out_dir`` is untouched; a SIGKILL leaves ``out_dir`` complete (old or new).
    """
    out = Path(out_dir).resolve()
    with export_lock(out, lock_wait_s, log):
        tmp = _sibling(out, "tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            yield tmp
            swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


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


# --- the build key: skip an export whose sources, options and versions are unchanged ---------

BUILD_KEY_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent.parent
# The code whose change changes a bundle: the exporter, the spec, the model builders, and the
# JS library's own layers/ops (the graph path converts against them); hashed file by file into
# every set's key. The rest of the JS library is in the npm package's key (NPM_KEY_SOURCES), so
# editing the page or the library does not re-export the models.
KEY_SOURCES = ("facepack/__init__.py", "facepack/spec.py", "facepack/runs.py", "facepack/export",
               "facepack/models", "static/facepack/layers")
# ... less what the face bundle never runs: packaging, the user-model exporter and its CLI, the zoo
KEY_EXCLUDE = ("facepack/export/npm.py", "facepack/export/cli.py", "facepack/export/keras_export.py",
               "facepack/export/zoo", "facepack/export/attributes.py", "facepack/models/attributes.py")
KEY_SUFFIXES = (".py", ".json", ".js", ".mjs")
SET_OF_MODEL = {"mtcnn_pnet": "mtcnn", "mtcnn_rnet": "mtcnn", "mtcnn_onet": "mtcnn",
                "beauty_features": "beauty", "beauty_head": "beauty", "keypoints": "keypoints"}


def _tree_digest(paths, root: Path = ROOT, exclude=()) -> str:
    """sha256 over (relative path, sha256) of every source file under ``paths`` (sorted), less
    those under ``exclude`` (paths relative to ``root``)."""
    from facepack.export.tfjs_io import sha256

    digest = hashlib.sha256()
    for rel in paths:
        base = root / rel
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()
                                                     and p.suffix in KEY_SUFFIXES and "__pycache__" not in p.parts)
        for f in files:
            rel_f = f.relative_to(root).as_posix()
            if any(rel_f == x or rel_f.startswith(x + "/") for x in exclude):
                continue
            digest.update(f"{f.relative_to(root).as_posix()}\0{sha256(f)}\n".encode())
    return digest.hexdigest()


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def tool_versions() -> dict:
    """Versions of everything that converts or checks (manifest.versions + numpy, Python, mtcnn, TF.js in node_modules)."""
    from importlib.metadata import PackageNotFoundError, version

    out = dict(manifest_mod.versions())
    for dist in ("numpy", "mtcnn"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    out["python"] = ".".join(map(str, sys.version_info[:3]))
    for pkg in ("tfjs", "tfjs-backend-wasm"):
        path = ROOT / "node_modules" / "@tensorflow" / pkg / "package.json"
        out[f"@tensorflow/{pkg}"] = json.loads(path.read_text())["version"] if path.is_file() else "not installed"
    return out


def _mtcnn_weights_digest() -> str:
    import importlib.util

    spec_ = importlib.util.find_spec("mtcnn")
    if spec_ is None or not spec_.submodule_search_locations:
        return "mtcnn not installed"
    base = Path(list(spec_.submodule_search_locations)[0])
    return _tree_digest([p.relative_to(base).as_posix() for p in sorted((base / "assets" / "weights").glob("*"))], base)


def _run_digest(run_dir: Path) -> dict:
    """{"path", <model file name>: sha256 per facepack.runs.model_files (model.keras, or the sharded
    layout's config, index and shards), "run.json", "cv.json"?, "quantization_plan.json"? (the uint8
    rule's float16 choice, facepack/export/quantize.py)}: a model.keras run's digest is the one
    earlier versions wrote, so its key is unchanged."""
    from facepack.export.tfjs_io import sha256
    from facepack.runs import model_files

    cv = run_dir / "cv.json"  # its headline goes into the manifest (sources.run_meta)
    return {"path": sources._public_run_path(run_dir), **{f.name: sha256(f) for f in model_files(run_dir)},
            "run.json": sha256(run_dir / "run.json"), **({"cv.json": sha256(cv)} if cv.is_file() else {}),
            **({"quantization_plan.json": sha256(plan)} if (plan := run_dir / "quantization_plan.json").is_file() else {})}


def _calibration_digest(run_dir: Path) -> str:
    """sha256 of the uint8 rule's calibration crops at the run's input size
    (quantize.fixture_calibration: the fixture photos through facepack/crop.py and
    facepack/data/images.py, none of them in KEY_SOURCES), so a crop-code or fixture change
    re-exports a uint8 beauty pair. ~0.1 s."""
    from facepack.export.quantize import CALIBRATION_IMAGES, fixture_calibration

    size = int(json.loads((run_dir / "run.json").read_text())["input_size"])
    return hashlib.sha256(np.ascontiguousarray(fixture_calibration(size, CALIBRATION_IMAGES)).tobytes()).hexdigest()


def build_key(runs: dict, quantize: str, node_check: bool) -> dict:
    """{"version", "key", "sets": {set: key}, "inputs": {...}} for the model sets in ``runs``
    ({"mtcnn": None, "beauty": run_dir, "keypoints": run_dir}); recorded as manifest["build"].

    Each set's key covers its own source (the run's model files + run.json and public path; the
    mtcnn package's weight files) and what all sets share: the exporter/spec/model/JS sources
    (KEY_SOURCES), tool versions, quantize and node_check. With quantize "uint8" the beauty set's
    key also covers the uint8 rule's calibration crops (_calibration_digest).
    """
    common = {"build_key_version": BUILD_KEY_VERSION, "format_version": manifest_mod.FORMAT_VERSION,
              "code": _tree_digest(KEY_SOURCES, exclude=KEY_EXCLUDE), "versions": tool_versions(),
              "options": {"quantize": quantize, "node_check": bool(node_check)}}
    inputs = {name: (_run_digest(Path(run)) if run is not None else {"weights": _mtcnn_weights_digest()})
              for name, run in runs.items()}
    if quantize == "uint8" and runs.get("beauty") is not None:
        inputs["beauty"]["uint8_calibration"] = _calibration_digest(Path(runs["beauty"]))
    sets = {name: _digest([common, name, inputs[name]]) for name in runs}
    return {"version": BUILD_KEY_VERSION, "key": _digest(sets), "sets": sets, "inputs": {"common": common, **inputs}}


def _reusable_sets(out: Path, old: dict | None, key: dict) -> set:
    """Model sets whose key matches the bundle at ``out`` and whose files are intact."""
    if old is None:
        return set()
    old_sets = (old.get("build") or {}).get("sets") or {}
    same = {name for name, k in key["sets"].items() if old_sets.get(name) == k}
    have = {}
    for model, entry in old.get("models", {}).items():
        have.setdefault(SET_OF_MODEL.get(model), set()).add(model)
    same = {name for name in same if {m for m, s in SET_OF_MODEL.items() if s == name} <= have.get(name, set())}
    intact = set()
    for name in same:
        try:
            manifest_mod.verify_files(out, {"models": {m: e for m, e in old["models"].items()
                                                       if SET_OF_MODEL.get(m) == name}})
            intact.add(name)
        except (ValueError, KeyError, OSError):
            pass  # a file missing or changed: this set is rebuilt
    return intact


NPM_KEY_FILE = ".facepack-build.json"  # in the npm package folder, written after `npm pack`
NPM_KEY_SOURCES = ("static/facepack", "npm", "facepack/export/npm.py")


def npm_key(bundle_dir: str | Path, name: str, version: str, pack: bool) -> str:
    """sha256 over what the npm package is made of: the bundle's manifest.json (which lists every
    model file's sha256), the JS library, the package templates and npm.py, name, version, pack."""
    from facepack.export.tfjs_io import sha256

    return _digest({"manifest": sha256(Path(bundle_dir) / manifest_mod.MANIFEST_FILE),
                    "code": _tree_digest(NPM_KEY_SOURCES), "name": name, "version": version, "pack": bool(pack)})


def npm_up_to_date(npm_dir: str | Path, key: str) -> bool:
    """True when ``npm_dir`` was built with ``key`` (its NPM_KEY_FILE) and its tarball still exists."""
    try:
        info = json.loads((Path(npm_dir) / NPM_KEY_FILE).read_text())
    except (OSError, ValueError):
        return False
    tarball = info.get("tarball")
    return info.get("key") == key and (tarball is None or (Path(npm_dir).parent / tarball).is_file())


def record_npm_key(npm_dir: str | Path, key: str, tarball: Path | None) -> None:
    """Write NPM_KEY_FILE into the finished package folder (atomically: temp file + rename)."""
    path = Path(npm_dir) / NPM_KEY_FILE
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "tarball": tarball.name if tarball else None}) + "\n")
    os.replace(tmp, path)


# --- the bundle ---------------------------------------------------------------------------

def _runs_for(models, beauty_run, keypoints_run, runs_root, log) -> dict:
    """{set: run folder (None for mtcnn)} for the requested model sets, saying which run and why."""
    from facepack.runs import describe_run

    unknown = [m for m in models if m not in MODEL_SETS]
    if unknown:
        raise ValueError(f"--only must name models among {list(MODEL_SETS)}, got {unknown}")
    runs = {}
    for name in MODEL_SETS:
        if name not in models:
            continue
        if name == "mtcnn":
            runs[name] = None
            continue
        choice = describe_run(name, beauty_run if name == "beauty" else keypoints_run, runs_root)
        _log(log, choice.message())
        runs[name] = choice.path
    return runs


def _collect(runs: dict, user_model, user_name) -> list:
    """The Export list for the model sets in ``runs`` (or the user's model)."""
    if user_model is not None:
        if not user_name:
            raise ValueError("--name: a model name is required with --model, got none")
        return sources.user_model_exports(Path(user_model), user_name)
    items = []
    if "mtcnn" in runs:
        items += sources.mtcnn_exports()
    if "beauty" in runs:
        items += sources.beauty_exports(runs["beauty"])
    if "keypoints" in runs:
        items += sources.keypoints_exports(runs["keypoints"])
    return items


def build_bundle(out_dir, beauty_run=None, keypoints_run=None, quantize: str = "none",
                 include_mtcnn: bool = True, *, models=None, runs_root=None, user_model=None,
                 user_name: str | None = None, keep_others: bool = False, node_check: bool = False,
                 skip_unchanged: bool = False, lock_wait_s: float = 0.0, log=print, _after_model=None) -> dict:
    """Convert the models and write the bundle at ``out_dir`` atomically; returns the manifest.

    beauty_run / keypoints_run: runs as facepack.runs.resolve_run takes them (None: the run
      facepack.runs.choose_run picks; which one and why is logged).
    quantize: "none" | "float16" | "uint8" (MTCNN nets always stay float32).
    models: which of MODEL_SETS to convert (default all; include_mtcnn=False drops "mtcnn").
    keep_others: keep the models of an existing bundle at ``out_dir`` that are not rebuilt
      (``--only``); their manifest entries and files are carried over unchanged.
    user_model, user_name: export a user's own Keras 3 .keras file instead, as ``user_name``.
    node_check: also run every converted model in TF.js (Node, WASM backend) and hold it to the
      same tolerance (node_check.py); recorded as parity.tfjs in the manifest.
    skip_unchanged: reuse the models of the bundle at ``out_dir`` whose build key (``build_key``:
      sources, options, versions; manifest["build"]) is unchanged and whose files are intact;
      when every requested set is reusable nothing is written and the old manifest is returned.
    lock_wait_s: how long to wait for another export writing ``out_dir`` (then ExportBusy).
    _after_model: test hook called with the model name after each model is written.
    """
    check_quantize(quantize)
    t0 = time.perf_counter()
    if models is None:
        models = [m for m in MODEL_SETS if include_mtcnn or m != "mtcnn"]
    out = Path(out_dir)
    with export_lock(out, lock_wait_s, log):
        old = None
        if (keep_others or skip_unchanged) and (out / manifest_mod.MANIFEST_FILE).is_file():
            old = manifest_mod.read_manifest(out)
        key, reuse = None, set()
        if user_model is None:
            runs = _runs_for(list(models), beauty_run, keypoints_run, runs_root, log)
            key = build_key(runs, quantize, node_check)
            if skip_unchanged:
                reuse = _reusable_sets(out, old, key)
            if reuse and reuse == set(runs) and (keep_others or {SET_OF_MODEL.get(m) for m in old["models"]} <= reuse):
                _log(log, f"{out} is up to date (build key {key['key'][:12]}: same models, options, code and "
                          f"versions); export skipped (pass --force to rebuild)")
                return old
            if reuse:
                _log(log, f"reusing {', '.join(sorted(reuse))} from {out} (unchanged build key)")
            runs = {name: run for name, run in runs.items() if name not in reuse}
        else:
            runs = {}
        items = _collect(runs, user_model, user_name)
        if quantize == "uint8":  # the beauty pair's own rounding rule (issue 13; facepack/export/quantize.py)
            from facepack.export.quantize import prepare_uint8

            prepare_uint8(items, log, beauty_run=runs.get("beauty"))  # its quantization_plan.json, if any
        entries = {}
        with atomic_replace(out, lock_wait_s, log) as tmp:
            if old is not None and (keep_others or reuse):
                keep = (lambda m: True) if keep_others else (lambda m: SET_OF_MODEL.get(m) in reuse)
                kept = {m: e for m, e in old["models"].items() if keep(m)}
                entries.update(carry_over(out, tmp, {"models": kept}, {item.name for item in items}))
            loaded = {}
            for item in items:
                _log(log, f"converting {item.name} ...")
                entries[item.name] = export_one(item, tmp, quantize, log, loaded)
                if _after_model is not None:
                    _after_model(item.name)
                pause_point("after-model")
            beauty_score_check({item.name: item for item in items}, loaded, entries, log)
            manifest = manifest_mod.build_manifest(entries)
            if key is not None:
                old_sets = ((old or {}).get("build") or {}).get("sets") or {}
                sets = {s: k for s, k in old_sets.items() if keep_others and s not in key["sets"]}
                sets.update(key["sets"])
                manifest["build"] = {"key": _digest(sets), "sets": sets, "inputs": key["inputs"]}
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
