"""Shared helpers of the benchmark scripts (bench/bench_*.py): machine, statistics, tables, photos.

Every script prints ONE table (format_table) and writes its numbers as JSON to bench/results/
(write_json). Nothing here loads TensorFlow or starts Node at import time, so `--help` is instant; when
a bench script imports it, TensorFlow's start-up noise is filtered (facepack/tfquiet.py, as the CLIs do).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PEER_DIR = ROOT / "bench" / "peer"
FIXTURES = ROOT / "tests" / "fixtures"
PHOTOS = {"astronaut": FIXTURES / "astronaut.png", "einstein": FIXTURES / "einstein.jpg"}
SHIPPED = {"beauty": ROOT / "models" / "shipped" / "beauty", "keypoints": ROOT / "models" / "shipped" / "keypoints"}
KEYPOINT_DATA = Path(os.environ.get("FACEPACK_KEYPOINT_DATA",
                                    ROOT.parent / "shared" / "datasets" / "youtube-faces-keypoints-train"))
# --quantize value of convert/to_tfjs.py -> the name the tables use.
PRECISIONS = {"none": "float32", "float16": "float16", "uint8": "uint8"}

for _p in (str(ROOT), str(ROOT / "tests")):  # facepack and tests/jsharness (server, Node runner)
    if _p not in sys.path:
        sys.path.insert(0, _p)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if Path(sys.argv[0]).resolve().parent == ROOT / "bench":  # a bench script, not a test importing this module
    from facepack import tfquiet  # TensorFlow's cuDNN/cuBLAS "factory" lines at import are dropped, as in the CLIs

    tfquiet.install()


# --- Statistics -----------------------------------------------------------------------------
def median(values) -> float | None:
    """Median of the numbers (None for none)."""
    values = [float(v) for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(values) -> dict:
    """{n, median, min, max} of the numbers (median/min/max None when empty)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


def cold_warm(runs: list[dict], keys) -> dict:
    """Per key: cold (the first run) and warm (median of the others) from a list of timing dicts."""
    if not runs:
        raise ValueError("cold_warm: expected at least one run, got none")
    return {key: {"cold": runs[0].get(key), "warm": median(r.get(key) for r in runs[1:]) if len(runs) > 1 else None}
            for key in keys}


# --- Output ---------------------------------------------------------------------------------
def fmt(value, digits: int = 1) -> str:
    """A table cell: numbers with ``digits`` decimals (large ones without), None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "nan"
    return f"{value:.{digits}f}" if abs(value) < 10 ** 6 else f"{value:.0f}"


def format_table(headers: list[str], rows: list[list], digits: int = 1) -> str:
    """A Markdown table with columns padded to their widest cell (numbers right-aligned)."""
    cells = [[fmt(c, digits) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"format_table: a row has {len(row)} cells, expected {len(headers)} ({headers})")
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
               for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric)) + " |"
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def write_json(name: str, data: dict) -> Path:
    """Write bench/results/<name>.json (indented); returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=float))
    return path


# --- Machine --------------------------------------------------------------------------------
def _command_output(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(package_json: Path) -> str | None:
    try:
        return json.loads(Path(package_json).read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def machine_info(chromium: bool = False) -> dict:
    """CPU model, cores, load, Node and TF.js versions (and Chromium's with chromium=True)."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
            "python": platform.python_version(), "node": _command_output(["node", "--version"]),
            "tfjs": package_version(ROOT / "node_modules" / "@tensorflow" / "tfjs" / "package.json"),
            "tfjs_backend_wasm": package_version(ROOT / "node_modules" / "@tensorflow" / "tfjs-backend-wasm"
                                                 / "package.json")}
    if chromium:
        out = _command_output(["/usr/bin/chromium", "--version"]) or ""
        info["chromium"] = next((w for w in out.split() if w[:1].isdigit() and "." in w), out or None)
    return info


def machine_line(info: dict) -> str:
    """One line naming the machine, for the top of every table."""
    parts = [f"CPU {info['cpu']} x {info['cores']} cores (load {info['load_avg_1min']:.1f} at start)",
             f"Node {info['node']}", f"TF.js {info['tfjs']}"]
    for key, label in (("chromium", "Chromium"), ("tensorflow", "TensorFlow")):
        if info.get(key):
            parts.append(f"{label} {info[key]}")
    return "Machine: " + ", ".join(parts)


# --- Models, photos, metrics ----------------------------------------------------------------
def bundle_dir(quantize: str) -> Path:
    return RESULTS_DIR / f"bundle-{quantize}"


# How long a bench waits for another process that is writing the same bundle (convert/to_tfjs.py
# --lock-wait): parallel sweep chunks then queue behind the first one's export instead of dying on
# its lock (ExportBusy). Measured 2026-12-01 on 2 busy cores: the three MTCNN nets alone 39 s
# without the Node check; the face models take about a minute each; 20 minutes leaves room.
BUNDLE_LOCK_WAIT_S = 1200.0


def ensure_bundle(quantize: str, log=print, lock_wait: float = BUNDLE_LOCK_WAIT_S) -> Path:
    """bench/results/bundle-<quantize>/ of the shipped models, kept current by convert/to_tfjs.py.

    The exporter is run every time: it skips the conversion in about a second when the bundle's
    build key (models, options, code, tool versions) is unchanged, and rebuilds what changed (about
    a minute per model) - a bundle left from older shipped models would otherwise time or compare
    other models than the Python side loads. Logs one line before it starts (a rebuild is minutes
    of silence otherwise) and one after: "up to date (build key ...)" or what was rebuilt. The
    exporter logs to STDERR (facepack/export/bundle.py main_log); both streams are read.

    Another process writing the same bundle (a parallel bench or sweep chunk) is waited for up to
    ``lock_wait`` seconds (--lock-wait), then RuntimeError.

    Which code the key covers: the WORKING TREE's exporter/spec/model sources (bundle.KEY_SOURCES),
    the exporter's own build key, deliberately not the last commit. Keying on committed code would
    mean exporting from a `git archive HEAD` copy, i.e. a bundle of other code than the Python
    reference the same bench imports from this tree (and without untracked files the export needs).
    So edits to those sources rebuild the bundle; a bench that must not see that (a long sweep) runs
    from a clean clone. What a results JSON should record is ``bundle_record``: the key and which
    of its sources differ from HEAD; bench_parity --merge refuses chunks whose keys differ.
    Raises ValueError for an unknown precision, RuntimeError when the export fails."""
    if quantize not in PRECISIONS:
        raise ValueError(f"--quantize must be one of {sorted(PRECISIONS)}, got {quantize!r}")
    out = bundle_dir(quantize)
    name = PRECISIONS[quantize]
    cmd = [sys.executable, str(ROOT / "convert" / "to_tfjs.py"), "--beauty", str(SHIPPED["beauty"]),
           "--keypoints", str(SHIPPED["keypoints"]), "--quantize", quantize, "--out", str(out),
           "--lock-wait", f"{lock_wait:g}"]
    log(f"{name} bundle of the shipped models: checking {_show(out)} with convert/to_tfjs.py "
        "(rebuilt when models, code or tool versions changed: that may take a minute or more)")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    log(f"{name} bundle: {export_outcome(proc.stderr + chr(10) + proc.stdout)}")
    return out


def _show(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def export_outcome(text: str) -> str:
    """One line saying what convert/to_tfjs.py did, from its log (bundle.build_bundle's messages):
    "up to date (build key K)", "rebuilt M1, M2 (reusing S): wrote ... in N s", plus the wait for
    another export when there was one; else its last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    waited = next((ln for ln in lines if ln.startswith("waiting up to ")), None)
    tail = f" (after {waited})" if waited else ""
    same = next((ln for ln in lines if " is up to date (build key " in ln), None)
    if same is not None:
        return f"up to date (build key {same.split('(build key ', 1)[1].split(':', 1)[0].strip()}){tail}"
    wrote = next((ln for ln in reversed(lines) if ln.startswith("wrote ")), None)
    if wrote is not None:
        converted = [ln[len("converting "):].rstrip(" .") for ln in lines if ln.startswith("converting ")]
        reused = next((ln[len("reusing "):].split(" from ", 1)[0] for ln in lines if ln.startswith("reusing ")), None)
        what = ", ".join(converted) or "?"
        return f"rebuilt {what}{f' (reusing {reused})' if reused else ''}: {wrote}{tail}"
    return (lines[-1] if lines else "convert/to_tfjs.py said nothing") + tail


def bundle_record(out: Path) -> dict:
    """What a results JSON records about the bundle it ran: {"dir", "build_key" (its manifest's
    build key, None when absent), "sets" (the key per model set), "code_modified": the paths of the
    key's sources (bundle.KEY_SOURCES) and of models/shipped that differ from HEAD (untracked
    included; None outside a git checkout)}. Two results with the same build_key ran the same
    converted models built from the same sources."""
    from facepack.export.bundle import KEY_SOURCES

    try:
        build = json.loads((Path(out) / "manifest.json").read_text()).get("build") or {}
    except (OSError, ValueError):
        build = {}
    proc = None
    try:
        proc = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *KEY_SOURCES, "models/shipped"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pass
    modified = ([ln[3:] for ln in proc.stdout.splitlines() if ln.strip()]
                if proc is not None and proc.returncode == 0 else None)
    return {"dir": _show(out), "build_key": build.get("key"), "sets": build.get("sets"), "code_modified": modified}


def bundle_key(out: Path) -> str | None:
    """The build key in the bundle's manifest now (None when absent or unreadable)."""
    try:
        return (json.loads((Path(out) / "manifest.json").read_text()).get("build") or {}).get("key")
    except (OSError, ValueError):
        return None


def load_photo(name: str):
    """(H, W, 3) uint8 RGB of a fixture photo, decoded like the pipeline (facepack.data.images.load_rgb)."""
    from facepack.data.images import load_rgb

    return load_rgb(PHOTOS[name])


def read_pts(path: Path):
    """(P, 2) float64 points of an iBUG .pts file (version/n_points header, { x y ... })."""
    import numpy as np

    lines = Path(path).read_text().split("{", 1)[1].split("}", 1)[0].split()
    return np.asarray(lines, dtype=np.float64).reshape(-1, 2)


def nme(pred, true, fmt: str = "68") -> float:
    """Inter-ocular NME of one face (facepack.metrics.nme_per_face); inf when there is no prediction."""
    import numpy as np

    from facepack.metrics import nme_per_face

    if pred is None:
        return float("inf")
    pred = np.asarray(pred, dtype=np.float64)[None]
    true = np.asarray(true, dtype=np.float64)[None]
    return float(nme_per_face(pred, true, fmt)[0])


def match_face(faces: list[dict], truth):
    """The detection that is the labelled face, or None (a miss).

    The nearest box centre to the ground-truth points' centre (as training/evaluate.py:_end_to_end),
    counted only when that centre lies inside the points' bounding box: on Einstein a detection
    of the seated man is not a detection of Einstein.
    """
    import numpy as np

    pts = np.asarray(truth, dtype=np.float64)
    (x0, y0), (x1, y1) = np.nanmin(pts, axis=0), np.nanmax(pts, axis=0)
    cx, cy = np.nanmean(pts, axis=0)
    best, best_d = None, float("inf")
    for f in faces:
        bx, by = f["box"]["x"] + f["box"]["width"] / 2, f["box"]["y"] + f["box"]["height"] / 2
        d = float(np.hypot(bx - cx, by - cy))
        if d < best_d:
            best, best_d = f, d
    if best is None:
        return None
    bx, by = best["box"]["x"] + best["box"]["width"] / 2, best["box"]["y"] + best["box"]["height"] / 2
    return best if (x0 <= bx <= x1 and y0 <= by <= y1) else None


def nme_summary(values) -> dict:
    """Per-face NMEs (inf = missed) -> {n, found, nme_mean_found, nme_median_all, failure_rate}.

    failure: NME > spec failure_nme (0.10) or missed, over all faces.
    """
    import numpy as np

    from facepack import spec

    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "found": 0, "nme_mean_found": None, "nme_median_all": None, "failure_rate": None}
    found = np.isfinite(v)
    return {"n": int(v.size), "found": int(found.sum()),
            "nme_mean_found": float(v[found].mean()) if found.any() else None,
            "nme_median_all": float(np.median(v)),
            "failure_rate": float(np.mean(~(v <= spec.KEYPOINTS["failure_nme"])))}


def heldout_keypoint_indices(data, info: dict):
    """Sorted row indices of ``data`` (facepack.data.keypoints.KeypointData) that the run of
    run.json ``info`` held out: split_indices with its args' val_fraction and seed on its own
    validation protocol (facepack.runs.validation_protocol: the shipped model's person split,
    whole people never trained on; "frame" only for runs that recorded none)."""
    from facepack.data.keypoints import split_indices
    from facepack.runs import validation_protocol

    args = info["args"]
    by, _ = validation_protocol("keypoints", info)
    return split_indices(data, args["val_fraction"], args["seed"], by)[1]


def heldout_keypoint_faces(limit: int):
    """Up to ``limit`` of the shipped keypoint model's held-out faces: [(path, (68, 2) points)].

    Same split as its training (heldout_keypoint_indices: the run's val split, val_fraction and
    seed; the shipped model: a person split, so the faces show people it never saw). [] when the
    dataset is not on this machine.
    """
    import numpy as np

    if not (KEYPOINT_DATA / "training_frames_keypoints.csv").is_file():
        return []
    from facepack.data.keypoints import load_keypoints

    info = json.loads((SHIPPED["keypoints"] / "run.json").read_text())
    data = load_keypoints(KEYPOINT_DATA)
    val = heldout_keypoint_indices(data, info)
    return [(data.images[i], np.asarray(data.points[i], dtype=np.float64)) for i in val[:limit]]


class Stopwatch:
    """ms since creation (or the last ``lap``)."""

    def __init__(self):
        self.t = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        ms, self.t = (now - self.t) * 1000.0, now
        return ms
