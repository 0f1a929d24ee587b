"""Errors and the bad-row bookkeeping shared by the dataset loaders.

Every loader reports a bad row as ``"<file>:<line>: <what is wrong>"``. With ``skip_bad=False``
(the default) the first such problem raises :class:`DatasetError` before any training starts;
with ``skip_bad=True`` the row is skipped and the message is kept in ``problems`` (and as
``{"file", "line", "reason"}`` in ``skipped``, which the trainers write into run.json).

Images are verified by decoding them fully (facepack.data.images.load_rgb, what training
decodes), so a JPEG with an intact header but truncated data is a bad row, not a crash in
epoch 1. Verdicts are cached (:class:`DecodeVerdicts`, keyed by path, size and mtime), so only
new or changed files are decoded again. Label paths must stay inside the image folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MARKER = "SYNTHETIC"  # a file of this name in a dataset folder marks it as generated data
SKIP_HINT = "(pass skip_bad=True / --skip-bad to skip bad rows and report them instead)"


class DatasetError(ValueError):
    """Bad or missing dataset files; the message names the file (and line) at fault."""


def where(path: os.PathLike | str, line: int | None = None) -> str:
    """``file:line`` prefix of a problem message."""
    return f"{path}:{line}" if line is not None else str(path)


class Problems:
    """Collects bad-row messages; raises on the first one unless ``skip_bad``."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = bool(skip_bad)
        self.messages: list[str] = []
        self.rows: list[dict] = []  # {"file", "line", "reason"} per skipped row

    def add(self, message: str) -> None:
        if not self.skip_bad:
            raise DatasetError(f"{message}\n{SKIP_HINT}")
        self.messages.append(message)

    def add_row(self, file, line: int | None, reason: str) -> None:
        """A bad row ``line`` of ``file`` (the labels file / CSV): raise, or skip and record it."""
        self.add(f"{where(file, line)}: {reason}")
        self.rows.append({"file": str(file), "line": line, "reason": reason})


def inside(image_dir: Path, name: str) -> Path | None:
    """``image_dir / name`` when ``name`` is a relative path that stays inside ``image_dir``
    (no absolute path, drive or ``..`` climbing out, judged on the text), else None."""
    text = name.replace("\\", "/")
    if not text or text.startswith("/") or os.path.isabs(name) or (len(text) > 1 and text[1] == ":"):
        return None
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return Path(image_dir) / norm


def outside_message(image_dir: Path, name: str) -> str:
    return (f"file name {name!r} points outside the image folder {image_dir} (labels must name files "
            "inside it: no absolute paths, no '..')")


def check_image(path: Path, full: bool = False) -> str | None:
    """None if ``path`` exists and its header parses (``full``: decodes it), else the reason.

    Cheap by default: ``Image.open`` reads the header only and ``verify`` checks the structure
    (PNG chunk CRCs) without decoding pixels, so a few thousand files take well under a second.
    ``full=True`` decodes with facepack.data.images.load_rgb (catches truncated JPEG data).
    """
    if not path.is_file():
        return f"image {path.name} not found in {path.parent}"
    if full:
        from facepack.data.images import ImageDecodeError, load_rgb
        try:
            load_rgb(path)
        except ImageDecodeError as exc:
            reason = str(exc).split(": not a readable image ", 1)[-1]
            return f"image {path.name} is not a readable image {reason}" if reason.startswith("(") else \
                f"image {path.name} is not a readable image ({exc})"
        return None
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"image {path.name} is not a readable image ({exc.__class__.__name__}: {exc})"
    return None


def synthetic_info(folder: Path) -> dict | None:
    """The generator's description if ``folder`` holds a SYNTHETIC marker, else None."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    import json
    try:
        info = json.loads(marker.read_text() or "{}")
    except ValueError:
        info = {}
    return info if isinstance(info, dict) else {}


VERDICTS_VERSION = 1


def _cache_root() -> Path:
    return Path(os.environ.get("FACEPACK_CACHE") or Path.home() / ".cache" / "facepack")


class DecodeVerdicts:
    """Full-decode verdicts of the images of one folder, cached on disk.

    File: ``$FACEPACK_CACHE/decoded/<folder name>-<hash of its absolute path>.json`` (default
    ``~/.cache/facepack``); an entry per image name holds its size in bytes, mtime in ns and
    the verdict (None = decodes, else the reason), reused only while size and mtime match.
    """

    def __init__(self, image_dir: Path):
        self.image_dir = Path(image_dir)
        key = hashlib.sha256(str(self.image_dir.resolve()).encode()).hexdigest()[:16]
        self.path = _cache_root() / "decoded" / f"{self.image_dir.name}-{key}.json"
        self.entries: dict = {}
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") == VERDICTS_VERSION:
                self.entries = data["images"]
        except (OSError, ValueError, KeyError, AttributeError):
            self.entries = {}

    def check(self, paths: list[Path], workers: int = 8) -> dict[Path, str | None]:
        """{path: None (decodes) | reason} for every path; decodes (in threads) only files that
        are new or changed since their cached verdict, then saves the cache."""
        out: dict[Path, str | None] = {}
        todo = []
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                out[path] = check_image(path)  # missing: the usual message
                continue
            name = path.relative_to(self.image_dir).as_posix() if path.is_relative_to(self.image_dir) else str(path)
            hit = self.entries.get(name)
            if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                out[path] = hit[2]
            else:
                todo.append((path, name, st))
        if todo:
            with ThreadPoolExecutor(workers) as pool:
                verdicts = list(pool.map(lambda item: check_image(item[0], full=True), todo))
            for (path, name, st), verdict in zip(todo, verdicts):
                out[path] = verdict
                self.entries[name] = [st.st_size, st.st_mtime_ns, verdict]
            self._save()
        return out

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"version": VERDICTS_VERSION, "folder": str(self.image_dir.resolve()),
                                       "images": self.entries}))
            os.replace(tmp, self.path)
        except OSError:  # a read-only cache only costs a decode next time
            pass


def verify_images(image_dir: Path, paths: list[Path], verify: str) -> dict[Path, str | None]:
    """{path: None | reason}: "decode" decodes every image once (cached verdicts), "header"
    checks headers only (fast, misses truncated data)."""
    if verify not in ("header", "decode"):
        raise ValueError(f"verify must be 'header' or 'decode', got {verify!r}")
    if verify == "header":
        return {p: check_image(p) for p in paths}
    return DecodeVerdicts(image_dir).check(list(paths))
