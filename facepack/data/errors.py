"""Errors and the bad-row bookkeeping shared by the dataset loaders.

Every loader reports a bad row as ``"<file>:<line>: <what is wrong>"``. With ``skip_bad=False``
(the default) the first such problem raises :class:`DatasetError` before any training starts;
with ``skip_bad=True`` the row is skipped and the message is kept in ``problems`` so the CLI can
print a summary.
"""

from __future__ import annotations

import os
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

    def add(self, message: str) -> None:
        if not self.skip_bad:
            raise DatasetError(f"{message}\n{SKIP_HINT}")
        self.messages.append(message)


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
            return f"image {path.name} is not readable: {exc}"
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
