"""Training runs on disk: ``runs/<model>/<timestamp>/`` with the model's files and ``run.json``.

A run's model is in one of two layouts (``model_files`` lists them, ``load_run`` loads either; a
folder holding part of a layout, or both, or a model file cut short or empty (a half-finished copy), is refused
with one line naming the run and the file, and the automatic choice passes it over):
  model.keras   Keras's single-file archive: what training writes (training.save_model).
  sharded       model.config.json (the archive's config.json, verbatim: the architecture) +
                model.weights.json (Keras's index of the weight shards, ``weight_map``) +
                model_00000.weights.h5, model_00001.weights.h5, ... (float32, <= SHARD_MB MiB of
                weights each): the same float32 weights in files small enough for git (the shipped
                models).  ``python -m facepack.runs --shard DIR`` converts a model.keras run (the
                reloaded weights are checked bit-identical before model.keras is removed)
                + model.shards.sha256 (``sha256sum`` format: one ``<sha256>  model_NNNNN.weights.h5`` line per
                shard, written by --shard): model_files (so load_run, the choice, the bundle key) checks every
                shard against it, so a shard changed inside (a flipped bit: right size, HDF5 structure intact)
                is refused by name instead of loading silently; ``sha256sum -c model.shards.sha256`` in the
                folder checks the same. Only the shards (binary) are listed: git may rewrite the two JSON
                files' line ends (core.autocrlf), and they are checked by parsing. A sharded run without
                the file (written before it existed) loads as before, without a warning (every --shard
                writes one; ``--shard DIR`` on such a run adds it, recording the shards as they are).

``run.json`` keys (written by training/, read by convert/, predict.py and the page):
  model ("beauty" | "keypoints"), backbone, input_size, num_points (keypoints), synthetic (bool),
  dataset {name, layout, path, terms, fingerprint, split}, metrics {...}, args {...},
  versions {...}, created (ISO time), seconds_per_epoch.

Which model is used when none is named (``choose_run``; convert/to_tfjs.py, scripts/main.sh,
the Python pipeline): the newest run under ``runs/<model>/`` that was trained on real data and
is not worse than the model shipped in ``models/shipped/<model>/`` on the model's own metric
(``SELECTION_METRIC``: beauty PC, higher is better; keypoints NME, lower is better), else the
shipped model. Keypoint NMEs are compared only between runs validated on the same protocol
(``validation_protocol``: the val split, person or frame, on the same dataset); a run validated
otherwise is passed over and the shipped model kept, with the reason.
Runs passed over are named with the reason. Without a shipped model the newest
run is used, whatever it is. A run is named explicitly with ``resolve_run`` (``--beauty RUN``):
a run folder or one of its model files, a folder name under ``runs/<model>/``, ``latest`` (the
newest run, unchecked) or ``shipped``. Keypoint runs are looked for in ``runs/keypoints/``
(training/train_keypoints.py) and ``runs/keypoints_lite/`` (training/train_keypoints_lite.py, whose
run.json keeps its metrics per split: ``metrics.person_split.nme_mean``; the entry of the run's own
validation split is the one compared).

    python -m facepack.runs beauty [--run RUN] [--quiet]    # prints the choice; exit 1 if none
    python -m facepack.runs --shard DIR [--shard-mb 4]      # model.keras -> the sharded layout

Exit status: 0 done; 2 a usage error (bad arguments; --run or --shard naming no run: RunUsageError), one
line; 1 a failure (no run to choose, a run whose files are broken or changed, a conversion that failed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNS_ROOT = Path(os.environ.get("FACEPACK_RUNS", PROJECT_ROOT / "runs"))
SHIPPED_ROOT = PROJECT_ROOT / "models" / "shipped"
MODEL_KINDS = ("beauty", "keypoints")
# model kind -> (run.json metrics key, name shown, True when higher is better)
SELECTION_METRIC = {"beauty": ("pc", "PC", True), "keypoints": ("nme_mean", "NME", False)}
RUN_WORDS = ("latest", "shipped")  # the named choices resolve_run accepts besides paths
# model kind -> folders under runs/ that hold its runs (train_keypoints_lite.py writes runs/keypoints_lite/)
RUN_FOLDERS = {"beauty": ("beauty",), "keypoints": ("keypoints", "keypoints_lite")}

# A run's model files (module docstring): the single-file layout, or the sharded one.
KERAS_FILE = "model.keras"
CONFIG_FILE = "model.config.json"  # the architecture: the .keras archive's config.json, verbatim
WEIGHTS_INDEX = "model.weights.json"  # Keras's sharded-weights index; shards model_NNNNN.weights.h5 beside it
SHARD_GLOB = "model_*.weights.h5"
SHARD_MB = 4.0  # weights per shard, MiB (float32 bytes; h5 adds ~1-2 %): every file stays < 5 MB for git
MODEL_FILE_NAMES = (KERAS_FILE, CONFIG_FILE, WEIGHTS_INDEX)
# The shards' SHA-256s in sha256sum format, written by --shard and checked by model_files (module docstring).
# Not one of MODEL_FILE_NAMES (it alone does not make a run) nor of model_files (it is derived from the shards,
# which model_files lists: the bundle key, which hashes those, is unchanged by it).
DIGESTS_FILE = "model.shards.sha256"


class RunUsageError(ValueError):
    """A run named on the command line that is no run at all, or a bad --shard argument: the CLIs' exit 2."""


@dataclass
class RunChoice:
    """The run folder chosen for a model kind, why, and the newer runs passed over (path, why)."""

    kind: str
    path: Path | None
    reason: str
    skipped: list = field(default_factory=list)

    def message(self) -> str:
        """One line (plus one per run passed over) for the user."""
        if self.path is None:
            return f"{self.kind} model: none ({self.reason})"
        lines = [f"{self.kind} model: {_shown(self.path)} ({self.reason})"]
        lines += [f"  not used: {_shown(p)}: {why}" for p, why in self.skipped]
        if self.skipped:
            lines.append(f"  (pass --{self.kind} RUN to use one of them anyway)")
        return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return os.fspath(path)


def _is_run(path: Path) -> bool:
    """run.json plus any model file (a half-present layout counts, so model_files can name what is missing)."""
    path = Path(path)
    return (path / "run.json").is_file() and any((path / name).is_file() for name in MODEL_FILE_NAMES)


def is_run(path: str | os.PathLike) -> bool:
    """True when ``path`` is a run folder whose model files are complete (model_files would not raise)."""
    try:
        model_files(path)
    except ValueError:
        return False
    return (Path(path) / "run.json").is_file()


def model_files(run_dir: str | os.PathLike) -> list[Path]:
    """The files that make a run's model, in a fixed order (hash them for keys; load them with load_run):
    [model.keras], or [model.config.json, model.weights.json, model_00000.weights.h5, ...] (the shards the
    index names, sorted). Raises ValueError (one line naming the run and the file) when neither layout is
    complete, when both are present, or when a file is cut short or empty (checked cheaply, no weights read:
    model.keras's zip directory; model.config.json parses; each shard opens as HDF5 and holds the groups
    model.weights.json puts in it), and when a shard's SHA-256 differs from the one model.shards.sha256
    records (each shard is read and hashed; a run without that file is not checked for it)."""
    run_dir = Path(run_dir)
    keras_file, config, index = (run_dir / n for n in MODEL_FILE_NAMES)
    sharded = [p.name for p in (config, index) if p.is_file()]
    if keras_file.is_file():
        if sharded:
            raise ValueError(f"run {run_dir}: has both {KERAS_FILE} and {sharded[0]} (an interrupted --shard?): "
                             f"run `python -m facepack.runs --shard {run_dir}` again, or delete one layout")
        _check_keras_archive(run_dir, keras_file)
        return [keras_file]
    if not sharded:
        raise ValueError(f"run {run_dir}: no model: expected {KERAS_FILE}, or {CONFIG_FILE} + {WEIGHTS_INDEX} "
                         f"+ its shards")
    if len(sharded) == 1:
        missing = CONFIG_FILE if sharded[0] == WEIGHTS_INDEX else WEIGHTS_INDEX
        raise ValueError(f"run {run_dir}: {sharded[0]} without {missing}: the sharded layout needs {CONFIG_FILE}, "
                         f"{WEIGHTS_INDEX} and the shards it names")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted({n for v in weight_map.values() for n in ([v] if isinstance(v, str) else v)})
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"run {run_dir}: {WEIGHTS_INDEX} is not a Keras sharded-weights index ({err})") from None
    if not names or any(Path(n).name != n for n in names):
        raise ValueError(f"run {run_dir}: {WEIGHTS_INDEX} names no shard files in its folder ({names[:3]})")
    absent = [n for n in names if not (run_dir / n).is_file()]
    if absent:
        raise ValueError(f"run {run_dir}: {WEIGHTS_INDEX} names {absent[0]}, which is missing "
                         f"({len(absent)} of {len(names)} shards missing)")
    _check_config(run_dir, config)
    _check_shards(run_dir, weight_map)
    _check_digests(run_dir, names)
    return [config, index] + [run_dir / n for n in names]


COPY_AGAIN = "cut short or empty? copy the run again"  # the fix named by every broken-file error


def _check_keras_archive(run_dir: Path, keras_file: Path) -> None:
    """Raise ValueError (one line naming the run and the file) unless ``keras_file`` is a whole zip archive
    holding config.json and model.weights.h5 (what keras.saving writes): reads the zip's central directory
    at the file's end (a cut-short copy has none), not the members (milliseconds)."""
    import zipfile

    try:
        with zipfile.ZipFile(keras_file) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ValueError(f"run {run_dir}: {KERAS_FILE} is not a whole Keras archive "
                         f"({err}; {keras_file.stat().st_size:,} B): "
                         f"{COPY_AGAIN}") from None
    absent = [n for n in ("config.json", "model.weights.h5") if n not in names]
    if absent:
        raise ValueError(f"run {run_dir}: {KERAS_FILE} is a zip without {absent[0]}: not a Keras 3 archive")


def _check_config(run_dir: Path, config: Path) -> dict:
    """The parsed model.config.json (a dict); ValueError naming the run and the file when it is not."""
    try:
        parsed = json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"run {run_dir}: {CONFIG_FILE} is not valid JSON ({err}; {config.stat().st_size:,} B): "
                         f"{COPY_AGAIN}") from None
    if not isinstance(parsed, dict) or "class_name" not in parsed:
        raise ValueError(f"run {run_dir}: {CONFIG_FILE} is not a Keras model config (no class_name)")
    return parsed


def _check_shards(run_dir: Path, weight_map: dict) -> None:
    """Raise ValueError (one line naming the run and the shard) unless every shard opens as HDF5 (h5py checks
    the superblock's stored end of file against the file's size: a cut-short or empty copy fails) and holds
    the variable groups the index assigns to it (~5 ms per shard; no weights are read)."""
    import h5py

    expected: dict[str, list[str]] = {}
    for key, value in weight_map.items():
        files = [value] if isinstance(value, str) else list(value)
        for name in files:  # a layer's variables split over several shards: its group is in each of them
            expected.setdefault(name, []).append(key)
    for name in sorted(expected):
        shard = run_dir / name
        try:
            with h5py.File(shard, "r") as f:
                missing = [k for k in expected[name] if k not in f]
        except OSError as err:
            why = str(err).replace("Unable to synchronously open file", "").replace("Unable to open file", "")
            why = why.strip(" ()")  # h5py's "(truncated file: eof = ...)" / "(file signature not found)"
            raise ValueError(f"run {run_dir}: {name} is not a whole HDF5 shard ({why}; {shard.stat().st_size:,} B): "
                             f"{COPY_AGAIN}") from None
        if missing:
            raise ValueError(f"run {run_dir}: {name} lacks {missing[0]}, which {WEIGHTS_INDEX} puts there "
                             f"({len(missing)} of {len(expected[name])} groups missing): another run's shard? "
                             f"copy the run again")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_digests(run_dir: str | os.PathLike) -> dict[str, str] | None:
    """{shard name: sha256 hex} from the run's model.shards.sha256, None when the run has none. ValueError
    (one line naming the run and the file) when it is not sha256sum lines naming files in the folder."""
    path = Path(run_dir) / DIGESTS_FILE
    if not path.is_file():
        return None
    digests: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        lines = ["(not UTF-8 text)"]
    for number, line in enumerate(lines, 1):
        found = re.fullmatch(r"([0-9a-fA-F]{64}) [ *]([^/\\]+)", line.rstrip("\r"))
        if not found and line.strip():
            raise ValueError(f"run {run_dir}: {DIGESTS_FILE} line {number} is not '<sha256>  <shard file>' "
                             f"({line[:40]!r}): {COPY_AGAIN}, or delete it and run "
                             f"`python -m facepack.runs --shard {run_dir}` to record the shards as they are")
        if found:
            digests[found.group(2)] = found.group(1).lower()
    return digests


def _write_digests(run_dir: Path, names: list[str]) -> Path:
    """Write model.shards.sha256 for the shards ``names`` in ``run_dir`` (through a temporary file)."""
    text = "".join(f"{_file_sha256(run_dir / n)}  {n}\n" for n in names)
    tmp = run_dir / f".{DIGESTS_FILE}.{os.getpid()}"
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, run_dir / DIGESTS_FILE)
    return run_dir / DIGESTS_FILE


def _check_digests(run_dir: Path, names: list[str]) -> None:
    """Raise ValueError (one line naming the run, the shard, both digests and the fix) unless every shard in
    ``names`` has the SHA-256 model.shards.sha256 records and it lists no other; nothing when it is absent."""
    digests = read_digests(run_dir)
    if digests is None:
        return
    fix = (f"restore it (from git for a shipped model, or copy the run again), or re-run "
           f"`python -m facepack.runs --shard {run_dir}` on the run's model.keras")
    unlisted = [n for n in names if n not in digests]
    extra = sorted(set(digests) - set(names))
    if unlisted or extra:
        what = (f"has no digest for {unlisted[0]}" if unlisted else
                f"lists {extra[0]}, which {WEIGHTS_INDEX} does not name")
        raise ValueError(f"run {run_dir}: {DIGESTS_FILE} {what}: the shards and their digests come from "
                         f"different --shard runs; {fix}")
    for name in names:
        actual = _file_sha256(run_dir / name)
        if actual != digests[name]:
            raise ValueError(f"run {run_dir}: {name} has changed since --shard wrote it (sha256 {actual}, "
                             f"{DIGESTS_FILE} expects {digests[name]}): {fix}")


def is_model_file_name(name: str) -> bool:
    """True for the name of a run's model file in either layout (model.keras, model.config.json,
    model.weights.json, model_NNNNN.weights.h5) or of its model.shards.sha256: a path with such a name stands
    for its folder."""
    return (name in MODEL_FILE_NAMES or name == DIGESTS_FILE
            or re.fullmatch(r"model_\d+\.weights\.h5", name) is not None)


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")


def _age_key(path: Path) -> tuple:
    """Newest-first sort key: the folder name's YYYYMMDD-HHMMSS stamp (run folders are named by it, a
    hand-named copy such as ``candidate-<stamp>`` keeps it), then the name."""
    stamp = re.search(r"\d{8}-\d{6}", path.name)
    return (stamp.group(0) if stamp else "", path.name)


def run_candidates(kind: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Runs of ``kind`` (run.json + any model file; hidden folders are not) in ``root``'s RUN_FOLDERS[kind]
    (default runs/), newest first. choose_run checks each one's files (model_files) before using it."""
    _check_kind(kind)
    base = Path(root) if root is not None else RUNS_ROOT
    found = [p for folder in RUN_FOLDERS[kind] for p in (base / folder).glob("*")
             if not p.name.startswith(".") and _is_run(p)]  # hidden: rsync partials, --shard temporaries
    return sorted(found, key=_age_key, reverse=True)


def is_synthetic(info: dict) -> bool:
    """True when run.json says the run was trained on synthetic data (or is untrained)."""
    dataset = info.get("dataset") or {}
    return bool(info.get("synthetic") or dataset.get("synthetic") or info.get("untrained"))


def run_metric(kind: str, info: dict) -> float | None:
    """The kind's selection metric from run.json (None when absent or not a finite number): metrics[key],
    else metrics["<split>_split"][key] for the run's own validation split (train_keypoints_lite.py
    records each split; only its own split's faces were never trained on)."""
    metrics = info.get("metrics") or {}
    value = metrics.get(SELECTION_METRIC[kind][0])
    protocol = validation_protocol(kind, info)
    if value is None and protocol is not None and isinstance(metrics.get(f"{protocol[0]}_split"), dict):
        value = metrics[f"{protocol[0]}_split"].get(SELECTION_METRIC[kind][0])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def validation_protocol(kind: str, info: dict) -> tuple[str, str | None] | None:
    """(val split, dataset name or None) a run's metrics were measured on; None for kinds whose
    runs all share one protocol (beauty).

    Keypoints: run.json's dataset.val_split, else args.val_split (train_keypoints.py records the
    resolved "auto" there), else "frame": runs made before --val-split held out random frames
    (training/train_keypoints.py). "person" holds out whole people; the shipped model's card
    number is on that split, a frame split's faces come from people trained on.
    """
    if kind != "keypoints":
        return None
    dataset = info.get("dataset") or {}
    split = dataset.get("val_split") or (info.get("args") or {}).get("val_split") or "frame"
    return str(split), dataset.get("name")


def _protocol_text(protocol) -> str:
    split, name = protocol
    held = "held-out people" if split == "person" else "held-out frames" if split == "frame" else "its own split"
    return f"a {split} split ({held}" + (f" of {name})" if name else ")")


def _why_not(kind: str, info: dict, shipped_value: float | None, shipped_protocol=None) -> str | None:
    """Why a run must not replace the shipped model silently (None: it may). ``shipped_protocol``:
    validation_protocol of the shipped run.json (None: not checked)."""
    key, name, higher = SELECTION_METRIC[kind]
    if is_synthetic(info):
        return "trained on synthetic data (run.json synthetic: true)"
    protocol = validation_protocol(kind, info)
    if shipped_protocol is not None and protocol is not None:
        same_split = protocol[0] == shipped_protocol[0]
        same_data = None in (protocol[1], shipped_protocol[1]) or protocol[1] == shipped_protocol[1]
        if not (same_split and same_data):
            return (f"validated on {_protocol_text(protocol)}, the shipped model on {_protocol_text(shipped_protocol)}: "
                    f"their {name}s are not comparable, the shipped model is kept")
    value = run_metric(kind, info)
    if value is None:
        return f"run.json has no {key} metric to compare with the shipped model"
    if shipped_value is not None and (value < shipped_value if higher else value > shipped_value):
        shown, shipped_shown = _two_numbers(value, shipped_value)
        return f"{name} {shown} is worse than the shipped model's {shipped_shown}"
    return None


def _two_numbers(a: float, b: float) -> tuple[str, str]:
    """a and b with 3 decimals, or as many more (up to 6) as it takes to show that they differ."""
    for digits in range(3, 7):
        if f"{a:.{digits}f}" != f"{b:.{digits}f}":
            break
    return f"{a:.{digits}f}", f"{b:.{digits}f}"


def choose_run(kind: str, root: str | os.PathLike | None = None, shipped: bool = True) -> RunChoice:
    """The run to use for ``kind`` when none is named (rules in the module docstring)."""
    runs = run_candidates(kind, root)
    shipped_dir = SHIPPED_ROOT / kind
    has_shipped = shipped and _is_run(shipped_dir)
    key, name, _ = SELECTION_METRIC[kind]
    if not has_shipped:
        if not runs:
            return RunChoice(kind, None, f"no run under {_shown(Path(root or RUNS_ROOT) / kind)} and no shipped model")
        info = read_run_info(runs[0])
        note = "; trained on synthetic data: its outputs are placeholders" if is_synthetic(info) else ""
        return RunChoice(kind, runs[0], f"newest run, no shipped model to compare with{note}")
    shipped_info = read_run_info(shipped_dir)
    shipped_value = run_metric(kind, shipped_info)
    shipped_protocol = validation_protocol(kind, shipped_info)
    skipped = []
    for run in runs:
        try:
            info = read_run_info(run)
        except ValueError as err:
            skipped.append((run, f"run.json is not valid JSON ({err})"))
            continue
        try:
            model_files(run)
        except ValueError as err:  # a half-present model layout: named, never loaded
            skipped.append((run, str(err).split(": ", 1)[-1]))
            continue
        why = _why_not(kind, info, shipped_value, shipped_protocol)
        if why is None:
            value = run_metric(kind, info)
            return RunChoice(kind, run, f"newest run trained on real data; {name} {value:.3f} vs the shipped "
                                        f"model's {shipped_value:.3f}" if shipped_value is not None else
                             "newest run trained on real data", skipped)
        skipped.append((run, why))
    shown = f"{name} {shipped_value:.3f}" if shipped_value is not None else f"no {key} recorded"
    reason = f"the shipped model, {shown}" + ("; no newer run qualifies" if skipped else "; no runs under runs/")
    return RunChoice(kind, shipped_dir, reason, skipped)


def latest_run(kind: str, root: str | os.PathLike | None = None, shipped: bool = True) -> Path | None:
    """The run used for ``kind`` when none is named (``choose_run(...).path``): the newest real run
    not worse than the shipped model, else the shipped model; None when there is neither."""
    return choose_run(kind, root, shipped).path


def resolve_run(kind: str, run: str | os.PathLike | None, root=None, flag: str | None = None) -> Path:
    """A run named on the command line (or None for ``choose_run``); clear error if absent.

    ``run``: a run folder or one of its model files (model.keras, model.config.json, model.weights.json or a
    shard model_NNNNN.weights.h5: is_model_file_name),
    a folder name under ``<root>/<folder>/`` for RUN_FOLDERS[kind], ``latest`` (the newest run, even a
    synthetic or worse one) or ``shipped``. A run whose model layout is incomplete raises (model_files).
    """
    return describe_run(kind, run, root, flag).path


def describe_run(kind: str, run: str | os.PathLike | None, root=None, flag: str | None = None) -> RunChoice:
    """``resolve_run`` with the reason, as a RunChoice (raises ValueError naming ``flag``)."""
    _check_kind(kind)
    flag = flag or f"--{kind}"
    base = Path(root) if root is not None else RUNS_ROOT
    if run is None:
        found = choose_run(kind, root)
        if found.path is None:
            raise ValueError(f"{flag}: no trained {kind} run found under {base / kind}; "
                             f"train one with `python training/train_{kind}.py` or pass {flag} RUN")
        return found
    text = os.fspath(run)
    if text == "shipped":
        if not _is_run(SHIPPED_ROOT / kind):
            raise ValueError(f"{flag} shipped: no shipped {kind} model in {_shown(SHIPPED_ROOT / kind)}")
        return RunChoice(kind, SHIPPED_ROOT / kind, f"chosen with {flag} shipped")
    if text == "latest":
        runs = run_candidates(kind, root)
        if not runs:
            raise ValueError(f"{flag} latest: no complete {kind} run under {base / kind}")
        return RunChoice(kind, runs[0], f"chosen with {flag} latest (newest run, not compared)")
    path = Path(run)
    if path.is_file() and is_model_file_name(path.name):
        path = path.parent
    if not _is_run(path) and not path.is_absolute() and len(path.parts) == 1:
        path = next((base / f / path for f in RUN_FOLDERS[kind] if _is_run(base / f / path)), path)
    if not _is_run(path):
        raise RunUsageError(f"{flag}: expected a run folder with run.json and {KERAS_FILE} (or {CONFIG_FILE} + "
                         f"{WEIGHTS_INDEX} + shards), one of those model files, a run name under {base / kind}, "
                         f"'latest' or 'shipped'; got {text!r}")
    try:
        model_files(path)
    except ValueError as err:
        raise ValueError(f"{flag}: {err}") from None
    return RunChoice(kind, path, f"chosen with {flag}")


def read_run_info(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def load_run(run_dir: str | os.PathLike, keras_module=None):
    """(Keras 3 model, run info) of a run folder, in either model layout (model_files; uncompiled).

    The one loader of run folders (pipeline, exporter, evaluate.py, benches, tests). Raises ValueError, one
    line naming the run and the file, when its model layout is incomplete or a file is cut short (model_files),
    and when Keras cannot read the files anyway (the error's first line)."""
    if keras_module is None:
        import keras as keras_module
    run_dir = Path(run_dir)
    files = model_files(run_dir)
    try:
        model = _load_model(files, keras_module)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as err:  # zipfile.BadZipFile is a ValueError
        shown = files[0].name if len(files) == 1 else f"{CONFIG_FILE} + {WEIGHTS_INDEX} + {len(files) - 2} shards"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"run {run_dir}: Keras could not load {shown} ({type(err).__name__}: {first}): "
                         f"{COPY_AGAIN}") from None
    return model, read_run_info(run_dir)


def _load_model(files: list[Path], keras_module):
    """The uncompiled model of ``files`` (model_files: [model.keras] or [config, index, shards...])."""
    from facepack.models.keypoints import masked_keypoint_loss

    custom_objects = {"masked_smooth_l1": masked_keypoint_loss(keras_module)}  # named by compile_config
    if files[0].name == KERAS_FILE:
        return keras_module.models.load_model(files[0], compile=False, custom_objects=custom_objects)
    return _load_sharded(files[0], files[1], keras_module, custom_objects)


def _load_sharded(config_file: Path, index_file: Path, keras_module, custom_objects):
    """The model of the sharded layout: built from the config as keras.models.load_model(compile=False)
    builds it from a .keras archive's config.json (saving_lib._model_from_config), then
    load_weights(model.weights.json) (saving_lib.load_weights_only: ShardedH5IOStore follows weight_map)."""
    from keras.src.saving.serialization_lib import ObjectSharingScope

    config = json.loads(config_file.read_text())
    config["compile_config"] = None  # compile=False
    with ObjectSharingScope():
        model = keras_module.saving.deserialize_keras_object(config, custom_objects=custom_objects, safe_mode=True)
    model.load_weights(index_file)
    return model


def _keras_config_json(keras_file: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(keras_file) as archive:
        return archive.read("config.json")


SHARD_TMP_PREFIX = ".shard-tmp-"  # + the pid of the shard_run writing it; nothing else reads these folders


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove_stale_tmp(run_dir: Path, log=print) -> None:
    """Delete ``.shard-tmp-<pid>`` folders in ``run_dir`` left by a shard_run that was killed (its pid is gone);
    ValueError when a live process (another --shard) is writing one."""
    import shutil

    live = []
    for tmp in sorted(run_dir.glob(f"{SHARD_TMP_PREFIX}*")):
        pid = tmp.name[len(SHARD_TMP_PREFIX):]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            live.append(tmp)
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        if log:
            log(f"{_shown(run_dir)}: removed {tmp.name}, left by an interrupted --shard")
    if live:
        raise ValueError(f"run {run_dir}: process {live[0].name[len(SHARD_TMP_PREFIX):]} is converting it "
                         f"({live[0].name}); wait for it, or delete {live[0]} if that process is not a --shard")


def shard_run(run_dir: str | os.PathLike, shard_mb: float = SHARD_MB, keras_module=None, log=print) -> list[Path]:
    """Rewrite a run's model.keras in the sharded layout (module docstring) and delete the model.keras.

    ``shard_mb``: MiB of weights per shard (> 0). The new files are written to a temporary folder in the
    run, reloaded and checked: every weight (variable path, dtype, shape, bytes) must equal model.keras's,
    else ValueError and the run is unchanged. Then they are moved in (shards, model.shards.sha256, config,
    index last) and model.keras is deleted: an interruption leaves model.keras plus part of the new files,
    which model_files refuses by name and a second shard_run redoes; a killed one's ``.shard-tmp-<pid>``
    folder is removed by the next shard_run (no other reader looks into it). A run already in the sharded
    layout is left as it is (its shards checked against model.shards.sha256), except that one without that
    file gets it, recording its shards as they are. RunUsageError when ``run_dir`` is no folder or holds
    none of model.keras, model.config.json, model.weights.json, or ``shard_mb`` is not > 0; ValueError when
    the run's files are broken. Returns the run's model files (model_files order)."""
    import shutil

    import numpy as np

    if not shard_mb > 0:
        raise RunUsageError(f"--shard-mb must be > 0 (MiB per shard), got {shard_mb}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunUsageError(f"--shard {run_dir}: " + ("is a file; name its run folder" if run_dir.exists()
                                                      else "no such folder"))
    if not any((run_dir / name).is_file() for name in MODEL_FILE_NAMES):
        raise RunUsageError(f"--shard {run_dir}: not a run folder (no {KERAS_FILE}, {CONFIG_FILE} or "
                            f"{WEIGHTS_INDEX} in it)")
    _remove_stale_tmp(run_dir, log)
    keras_file = run_dir / KERAS_FILE
    if not keras_file.is_file():
        files = model_files(run_dir)  # raises unless the sharded layout is complete (and matches its digests)
        if read_digests(run_dir) is None:
            _write_digests(run_dir, [f.name for f in files[2:]])
            if log:
                log(f"{_shown(run_dir)}: already in the sharded layout ({len(files) - 2} shards); recorded their "
                    f"sha256 in {DIGESTS_FILE} (the shards as they are now)")
        elif log:
            log(f"{_shown(run_dir)}: already in the sharded layout ({len(files) - 2} shards, matching "
                f"{DIGESTS_FILE}); left as it is")
        return files
    if keras_module is None:
        import keras as keras_module
    source = _load_model([keras_file], keras_module)
    config = _keras_config_json(keras_file)
    tmp = run_dir / f"{SHARD_TMP_PREFIX}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / CONFIG_FILE).write_bytes(config)
        source.save_weights(tmp / WEIGHTS_INDEX, max_shard_size=shard_mb / 1024)  # GB, as Keras takes it
        _write_digests(tmp, sorted(p.name for p in tmp.glob(SHARD_GLOB)))
        new = model_files(tmp)  # checks the digests too
        reloaded = _load_model(new, keras_module)
        a, b = source.weights, reloaded.weights
        if [w.path for w in a] != [w.path for w in b]:
            raise ValueError(f"run {run_dir}: the sharded copy's weights are not the same variables; run unchanged")
        for wa, wb in zip(a, b):
            va, vb = np.asarray(wa), np.asarray(wb)
            if va.dtype != vb.dtype or va.shape != vb.shape or va.tobytes() != vb.tobytes():
                raise ValueError(f"run {run_dir}: weight {wa.path} differs after sharding; run unchanged")
        names = [p.name for p in new]
        for stale in run_dir.glob(SHARD_GLOB):
            if stale.name not in names:
                stale.unlink()
        for name in names[2:] + [DIGESTS_FILE] + names[:2]:
            os.replace(tmp / name, run_dir / name)
        keras_file.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = model_files(run_dir)
    if log:
        log(f"{_shown(run_dir)}: {len(a)} weights bit-identical, written as " +
            ", ".join(f"{p.name} ({p.stat().st_size:,} B)" for p in files) + f" + {DIGESTS_FILE}")
    return files


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's exit status 2, in one line (no usage block)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv=None) -> int:
    """Print which KIND model would be used and why (exit 1 when there is none), or with --shard DIR
    rewrite a run's model.keras in the sharded layout (files < 5 MB for git; weights bit-identical; the
    shards' sha256 in model.shards.sha256). Exit 2 for a usage error, 1 for a failure."""
    p = _Parser(prog="python -m facepack.runs", description=main.__doc__)
    p.add_argument("kind", nargs="?", choices=MODEL_KINDS, help="the model kind to choose a run for")
    p.add_argument("--run", default=None, help="RUN as convert/to_tfjs.py --KIND takes it (default: choose)")
    p.add_argument("--runs-root", type=Path, default=None, help="where the runs are (default runs/)")
    p.add_argument("--quiet", action="store_true", help="print nothing, only the exit status")
    p.add_argument("--shard", type=Path, metavar="DIR", default=None,
                   help=f"convert run folder DIR from {KERAS_FILE} to {CONFIG_FILE} + {WEIGHTS_INDEX} + shards")
    p.add_argument("--shard-mb", type=float, default=SHARD_MB,
                   help=f"with --shard: MiB of weights per shard (default {SHARD_MB:g})")
    args = p.parse_args(argv)
    if args.shard is None and args.kind is None:
        p.error("give KIND (beauty or keypoints) or --shard DIR")
    if args.shard is not None and (args.kind is not None or args.run is not None):
        p.error("--shard DIR takes no KIND or --run")
    try:
        if args.shard is not None:
            from facepack import tfquiet

            tfquiet.install()  # TensorFlow's import-time factory lines are dropped (facepack/tfquiet.py)
            shard_run(args.shard, args.shard_mb, log=None if args.quiet else print)
            return 0
        choice = describe_run(args.kind, args.run, args.runs_root)
    except (ValueError, OSError) as err:  # RunUsageError is a ValueError: the argument names no run
        if not args.quiet:
            print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, RunUsageError) else 1
    if not args.quiet:
        print(choice.message())
    return 0


if __name__ == "__main__":
    sys.exit(main())
