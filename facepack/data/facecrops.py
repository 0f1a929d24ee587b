"""Beauty training crops made the way the page makes them: MTCNN box -> the spec's square rule.

At inference the page (and facepack/pipeline.py) detects faces with MTCNN and feeds the beauty
model the square ``pipeline.face_square(box, "beauty")`` (side max(w, h) x (1 + 2 x
spec.BEAUTY["crop_margin"]), centred on the box, padded outside the image). Training on the
whole dataset image instead teaches the model another framing. ``face_squares`` runs the
project's reference detector (facepack/detect/mtcnn_detector.py, spec.MTCNN options) once per
image and caches the boxes on disk, so later runs and folds only crop.

Cache: ``$FACEPACK_CACHE/faces/<key>.json`` (default ``~/.cache/facepack``), one entry per image
keyed by file name, byte size and mtime; the key of the file covers the mtcnn package version and
the detector options. A photo with several faces uses the most confident one (SCUT-FBP5500 shows
one face per image); a photo with none falls back to the centred square over the whole image and
is counted in the returned report.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

__all__ = ["face_squares", "faces_cache_file"]

SAVE_EVERY = 200  # images between cache writes (an interrupted detection pass keeps its work)


def _cache_root() -> Path:
    root = os.environ.get("FACEPACK_CACHE") or Path.home() / ".cache" / "facepack"
    return Path(root) / "faces"


def faces_cache_file(image_dir: Path) -> Path:
    """The cache file for images in ``image_dir`` under this detector version and options."""
    from mtcnn.metadata import __version__ as mtcnn_version

    from facepack.detect.mtcnn_detector import default_options

    key = json.dumps({"dir": str(Path(image_dir).resolve()), "mtcnn": mtcnn_version,
                      "options": default_options()}, sort_keys=True)
    return _cache_root() / f"{Path(image_dir).name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _entry_key(path: Path) -> str:
    st = path.stat()
    return f"{path.name}|{st.st_size}|{int(st.st_mtime)}"


def face_squares(paths, log=print, cache_file=None) -> tuple[np.ndarray, dict]:
    """Image paths -> ((N, 3) float64 squares (x0, y0, side) in image pixels, report).

    The square is what the page crops for the beauty model (pipeline.face_square(box, "beauty")).
    cache_file: boxes cached by an earlier detector version (a ``faces_cache_file`` of then) to use
    instead of this version's; its entries match by file name and byte size (a copy of the same
    files has other mtimes); images missing from it are detected with this version and added.
    report: {"detected": n, "fallback_whole_image": [file names], "multiple_faces": n,
    "cache": path}. Raises ImageDecodeError naming a file that cannot be decoded.
    """
    from facepack.data.images import load_rgb
    from facepack.pipeline import face_square

    paths = [Path(p) for p in paths]
    groups: dict[Path, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(p.parent, []).append(i)
    squares = np.zeros((len(paths), 3), dtype=np.float64)
    report = {"detected": 0, "fallback_whole_image": [], "multiple_faces": 0, "cache": []}
    detector = None
    for image_dir, idx in groups.items():
        dir_cache = Path(cache_file) if cache_file is not None else faces_cache_file(image_dir)
        report["cache"].append(str(dir_cache))
        cache = json.loads(dir_cache.read_text()) if dir_cache.is_file() else {}
        if cache_file is not None:  # the same bytes copied elsewhere: match by name and size
            by_size = {k.rsplit("|", 1)[0]: v for k, v in cache.items()}
            for i in idx:
                key = _entry_key(paths[i])
                if key not in cache and key.rsplit("|", 1)[0] in by_size:
                    cache[key] = by_size[key.rsplit("|", 1)[0]]
        missing = [i for i in idx if _entry_key(paths[i]) not in cache]
        if missing and log:
            log(f"face crops: detecting faces in {len(missing)} images of {image_dir} (once; cached in {dir_cache})")
        for n, i in enumerate(missing, start=1):
            if detector is None:
                from facepack.detect.mtcnn_detector import build_detector

                detector = build_detector()
            rgb = load_rgb(paths[i])
            faces = _detect(detector, rgb)
            cache[_entry_key(paths[i])] = {"size": [int(rgb.shape[1]), int(rgb.shape[0])],
                                           "faces": [[*f["box"].values(), f["score"]] for f in faces]}
            if n % SAVE_EVERY == 0 or n == len(missing):
                _write(dir_cache, cache)
        for i in idx:
            entry = cache[_entry_key(paths[i])]
            faces = entry["faces"]
            if faces:
                x, y, w, h, _ = max(faces, key=lambda f: f[4])
                squares[i] = face_square({"x": x, "y": y, "width": w, "height": h}, "beauty")
                report["detected"] += 1
                report["multiple_faces"] += len(faces) > 1
            else:
                width, height = entry["size"]
                side = float(max(width, height))
                squares[i] = ((width - side) / 2, (height - side) / 2, side)
                report["fallback_whole_image"].append(paths[i].name)
    return squares, report


def _detect(detector, rgb):
    from facepack.detect.mtcnn_detector import detect_faces

    return detect_faces(detector, rgb)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
