"""Synthetic face datasets, generated in seconds, written in the REAL on-disk layouts.

The real loaders read them unchanged; every generated folder holds a ``SYNTHETIC`` marker (JSON:
generator, parameters) and a README.txt, and the loaders return ``synthetic=True`` for them.

* ``make_scut_dataset``: SCUT-FBP5500-like folder (release layout with All_labels.txt, the 60/40
  split and 5 CV folds, or the reduced layout). Images are drawn faces whose score is a smooth
  deterministic function of visible features (skin brightness, eye size, mouth width) plus small
  noise, so a small CNN learns it in a minute (see ``beauty_score``).
* ``make_keypoints68_dataset``: the 68-point CSV + ``training/`` folder; the face is drawn from
  its ground-truth points (jaw line, brows, nose, eyes, lips), so the points are visible. Some
  "*.jpg" files are RGBA PNGs, like the real data.
* ``make_kaggle15_csv``: Kaggle-style training.csv (96x96 grayscale in an Image column) with
  many missing keypoints.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facepack import spec
from facepack.data.errors import MARKER
from facepack.data.scut import ALL_LABELS, CV_DIR, SPLIT_60_40_DIR, TRAIN_TEST_DIR

__all__ = ["make_scut_dataset", "make_keypoints68_dataset", "make_kaggle15_csv", "default_synthetic_root",
           "ensure_synthetic", "template68", "ibug68_to_kaggle15", "beauty_score", "draw_face"]

GENERATOR_VERSION = 2  # bump when the images or labels change: cached datasets regenerate
DEFAULT_N = {"beauty": 300, "keypoints68": 300, "kaggle15": 200}
DEFAULT_SIZE = {"beauty": 128, "keypoints68": 128, "kaggle15": 96}
KINDS = tuple(DEFAULT_N)


# --- The face model: a symmetric 68-point template in face units ---------------------------------
def template68() -> np.ndarray:
    """(68, 2) iBUG-ordered mean face, symmetric about x = 0; x right in the image, y down.

    Face units: the jaw spans x in -1..1, the eyes sit at y = -0.3, the chin at y = 1.
    Index 0 (jaw) and 36 (an eye's outer corner) are on the image's left, as in iBUG.
    """
    p = np.zeros((68, 2), dtype=np.float64)
    t = np.linspace(0.0, math.pi, 17)
    p[0:17, 0] = -np.cos(t) * (1.0 - 0.12 * np.sin(t) ** 2)
    p[0:17, 1] = -0.3 + 1.3 * np.sin(t)
    brow_x = np.array([-0.85, -0.7, -0.52, -0.35, -0.2])
    brow_y = np.array([-0.55, -0.66, -0.7, -0.68, -0.62])
    p[17:22] = np.c_[brow_x, brow_y]
    p[22:27] = np.c_[-brow_x[::-1], brow_y[::-1]]
    p[27:31] = np.c_[np.zeros(4), np.linspace(-0.32, 0.12, 4)]
    p[31:36] = np.c_[[-0.22, -0.11, 0.0, 0.11, 0.22], [0.2, 0.23, 0.25, 0.23, 0.2]]
    eye_x = np.array([-0.7, -0.58, -0.37, -0.25, -0.37, -0.58])  # 36 outer, 37-38 upper, 39 inner, 40-41 lower
    eye_y = np.array([-0.3, -0.37, -0.37, -0.3, -0.24, -0.24])
    p[36:42] = np.c_[eye_x, eye_y]
    p[42:48] = np.c_[-eye_x[[3, 2, 1, 0, 5, 4]], eye_y[[3, 2, 1, 0, 5, 4]]]  # 42 inner ... 45 outer
    p[48:60] = np.c_[[-0.45, -0.3, -0.12, 0.0, 0.12, 0.3, 0.45, 0.3, 0.12, 0.0, -0.12, -0.3],
                     [0.55, 0.49, 0.46, 0.48, 0.46, 0.49, 0.55, 0.63, 0.67, 0.68, 0.67, 0.63]]
    p[60:68] = np.c_[[-0.38, -0.12, 0.0, 0.12, 0.38, 0.12, 0.0, -0.12],
                     [0.55, 0.53, 0.535, 0.53, 0.55, 0.57, 0.575, 0.57]]
    return p


def template68_depth() -> np.ndarray:
    """(68,) depth of the template points (towards the camera, face units) for pose changes."""
    z = np.zeros(68)
    t = np.linspace(0.0, math.pi, 17)
    z[0:17] = -0.7 * np.abs(np.cos(t))  # ears back, chin at the face plane
    z[17:27] = 0.05
    z[27:31] = np.linspace(0.1, 0.5, 4)  # nose bridge to tip
    z[31:36] = [0.25, 0.3, 0.35, 0.3, 0.25]
    z[36:48] = 0.0
    z[[36, 45]] = -0.15  # outer eye corners sit back
    z[48:68] = 0.15
    z[[48, 54, 60, 64]] = 0.05
    return z


def ibug68_to_kaggle15(points68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) iBUG points -> (..., 15, 2) in facepack.spec.KAGGLE15_NAMES order.

    Kaggle's "left" is the subject's left (the image's right), iBUG's 42..47 eye.
    """
    p = np.asarray(points68, dtype=np.float64)
    rows = [p[..., 42:48, :].mean(axis=-2), p[..., 36:42, :].mean(axis=-2),
            p[..., 42, :], p[..., 45, :], p[..., 39, :], p[..., 36, :],
            p[..., 22, :], p[..., 26, :], p[..., 21, :], p[..., 17, :],
            p[..., 30, :], p[..., 54, :], p[..., 48, :], p[..., 51, :], p[..., 57, :]]
    return np.stack(rows, axis=-2)


def _scale_group(p: np.ndarray, idx: slice, sx: float, sy: float) -> None:
    c = p[idx].mean(axis=0)
    p[idx] = c + (p[idx] - c) * [sx, sy]


def face_points(rng: np.random.Generator, center, half_width: float, angle_deg: float = 0.0,
                eye_scale: float = 1.0, mouth_width: float = 1.0, mouth_open: float = 0.0,
                noise: float = 0.0, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """Template -> (68, 2) image points (continuous pixels) with feature and pose changes.

    yaw/pitch turn the template in depth (orthographic projection), angle_deg rolls it in the
    image plane; eye_scale, mouth_width and mouth_open change the features.
    """
    p = template68()
    if yaw_deg or pitch_deg:
        z = template68_depth()
        ya, pa = math.radians(yaw_deg), math.radians(pitch_deg)
        x, y = p[:, 0].copy(), p[:, 1].copy()
        x, z = x * math.cos(ya) + z * math.sin(ya), -x * math.sin(ya) + z * math.cos(ya)
        y = y * math.cos(pa) - z * math.sin(pa)
        p = np.stack([x, y], axis=1)
    for eye in (slice(36, 42), slice(42, 48)):
        _scale_group(p, eye, eye_scale, eye_scale)
    _scale_group(p, slice(48, 68), mouth_width, 1.0)
    p[60:68, 1] += np.array([0, -1, -1, -1, 0, 1, 1, 1]) * 0.05 * mouth_open  # open the inner lips
    p[48:60, 1] += np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]) * 0.08 * mouth_open
    if noise:
        p = p + rng.normal(0.0, noise, p.shape)
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (p @ rot.T) * half_width + np.asarray(center, dtype=np.float64)


def _poly(points: np.ndarray) -> list[tuple[float, float]]:
    # PIL puts integer coordinates on pixel centres; our points have pixel edges at integers.
    return [(float(x) - 0.5, float(y) - 0.5) for x, y in points]


def draw_face(size: tuple[int, int], points: np.ndarray, skin, background, rng: np.random.Generator,
              hair=None, clutter: int = 3) -> Image.Image:
    """Draw a face whose features pass through the 68 points; ``size`` is (width, height)."""
    w, h = size
    img = Image.new("RGB", (w, h), tuple(int(c) for c in background))
    draw = ImageDraw.Draw(img)
    for _ in range(clutter):  # background clutter so the face is not the only edge in the picture
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.05, 0.2) * min(w, h)
        shade = tuple(int(np.clip(c + rng.uniform(-40, 40), 0, 255)) for c in background)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=shade)
    p = points
    half_width = float(np.linalg.norm(p[16] - p[0])) / 2
    line = max(1, int(round(half_width * 0.05)))
    center = (p[0] + p[16]) / 2
    up = (p[27] - p[8]) / max(float(np.linalg.norm(p[27] - p[8])), 1e-6)
    side = (p[16] - p[0]) / 2
    t = np.linspace(0.0, math.pi, 12)
    forehead = center + np.outer(np.cos(t), side) + np.outer(np.sin(t), up * half_width * 0.95)
    if hair is not None:
        crown = center + np.outer(np.cos(t), side * 1.12) + np.outer(np.sin(t), up * half_width * 1.2)
        draw.polygon(_poly(np.vstack([crown, center - side * 1.12])), fill=tuple(int(c) for c in hair))
    draw.polygon(_poly(np.vstack([p[0:17], forehead])), fill=tuple(int(c) for c in skin))
    dark = tuple(int(c * 0.55) for c in skin)
    draw.line(_poly(p[0:17]), fill=dark, width=line)  # jaw line
    brow = (60, 40, 30)
    draw.line(_poly(p[17:22]), fill=brow, width=line + 1)
    draw.line(_poly(p[22:27]), fill=brow, width=line + 1)
    draw.line(_poly(p[27:31]), fill=dark, width=line)  # nose bridge
    draw.line(_poly(p[31:36]), fill=dark, width=line)  # nostrils
    for eye in (p[36:42], p[42:48]):
        draw.polygon(_poly(eye), fill=(250, 250, 250), outline=(40, 30, 30))
        c = eye.mean(axis=0)
        r = 0.3 * float(np.linalg.norm(eye[3] - eye[0]))
        draw.ellipse([c[0] - 0.5 - r, c[1] - 0.5 - r, c[0] - 0.5 + r, c[1] - 0.5 + r], fill=(50, 35, 30))
    draw.polygon(_poly(p[48:60]), fill=(190, 60, 70))
    draw.polygon(_poly(p[60:68]), fill=(70, 20, 25))
    return img


def _skin(rng: np.random.Generator, brightness: float) -> np.ndarray:
    dark, light = np.array([105.0, 70.0, 50.0]), np.array([245.0, 210.0, 185.0])
    return np.clip(dark + (light - dark) * brightness + rng.normal(0, 6, 3), 0, 255)


def _background(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(30, 220, 3)


# --- Marker, README -----------------------------------------------------------------------------
def _write_marker(folder: Path, kind: str, name: str, **params) -> None:
    info = {"synthetic": True, "kind": kind, "name": name, "generator": "facepack.data.synthetic",
            "generator_version": GENERATOR_VERSION, **params}
    (folder / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    (folder / "README.txt").write_text(
        f"SYNTHETIC DATA - {name}\n\nGenerated by facepack.data.synthetic ({kind}, {params}).\n"
        "Drawn faces, not photographs: models trained on it only prove the pipeline works.\n"
        "The SYNTHETIC marker file makes the loaders report synthetic=True.\n")


# --- SCUT-like beauty dataset ---------------------------------------------------------------------
def beauty_score(brightness, eye_scale, mouth_width, noise=0.0):
    """The synthetic ground truth on 1..5: a smooth function of the three visible features.

    brightness 0..1 (skin tone), eye_scale 0.7..1.4, mouth_width 0.7..1.3; mostly monotone in
    each, so a CNN can read it from the image. ``noise`` is added before squashing.
    """
    fb = (np.asarray(brightness) - 0.5) / 0.5
    fe = (np.asarray(eye_scale) - 1.05) / 0.35
    fm = (np.asarray(mouth_width) - 1.0) / 0.3
    z = 1.6 * fb + 0.7 * fe + 0.4 * fm + noise
    return 3.0 + 1.6 * np.tanh(0.6 * z)


def make_scut_dataset(out_dir, n: int = 300, seed: int = 0, image_size: int = 128,
                      layout: str = "release") -> Path:
    """Write an SCUT-FBP5500-like dataset to ``out_dir`` (created) and return it.

    layout "release": Images/, train_test_files/All_labels.txt, the 60/40 split files and 5 CV
    folds. layout "reduced": Images/ + train.txt (every sample).
    """
    if layout not in ("release", "reduced"):
        raise ValueError(f"layout must be 'release' or 'reduced', got {layout!r}")
    if n < 10:
        raise ValueError(f"n must be >= 10 (5 CV folds need rows), got {n}")
    out = Path(out_dir)
    images = out / "Images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        brightness = rng.uniform(0.0, 1.0)
        eye_scale = rng.uniform(0.7, 1.4)
        mouth_width = rng.uniform(0.7, 1.3)
        score = float(np.clip(beauty_score(brightness, eye_scale, mouth_width, rng.normal(0, 0.1)), 1.0, 5.0))
        s = image_size
        center = (s / 2 + rng.uniform(-0.04, 0.04) * s, s * 0.45 + rng.uniform(-0.04, 0.04) * s)
        pts = face_points(rng, center, half_width=s * rng.uniform(0.27, 0.32), angle_deg=rng.uniform(-6, 6),
                          eye_scale=eye_scale, mouth_width=mouth_width, mouth_open=rng.uniform(0, 0.6),
                          noise=0.01)
        # SCUT-like framing: plain light background, dark hair; the face carries the signal.
        hair = rng.uniform(15, 70) * np.array([1.0, 0.85, 0.7]) if rng.random() < 0.8 else None
        background = np.clip(rng.uniform(170, 245) + rng.normal(0, 8, 3), 0, 255)
        img = draw_face((s, s), pts, _skin(rng, brightness), background, rng, hair=hair, clutter=0)
        name = f"synth_{i + 1:04d}.jpg"
        img.save(images / name, quality=92)
        lines.append(f"{name} {score:.6f}")
    if layout == "reduced":
        (out / "train.txt").write_text("\n".join(lines) + "\n")
    else:
        base = out / TRAIN_TEST_DIR
        (base / SPLIT_60_40_DIR).mkdir(parents=True, exist_ok=True)
        (base / ALL_LABELS).write_text("\n".join(lines) + "\n")
        order = rng.permutation(n)
        cut = int(round(0.6 * n))
        for fname, rows in (("train.txt", order[:cut]), ("test.txt", order[cut:])):
            (base / SPLIT_60_40_DIR / fname).write_text("\n".join(lines[j] for j in rows) + "\n")
        folds = np.array_split(rng.permutation(n), 5)
        for k in range(1, 6):
            fold = base / CV_DIR / f"cross_validation_{k}"
            fold.mkdir(parents=True, exist_ok=True)
            test = set(folds[k - 1].tolist())
            (fold / f"train_{k}.txt").write_text("\n".join(lines[j] for j in range(n) if j not in test) + "\n")
            (fold / f"test_{k}.txt").write_text("\n".join(lines[j] for j in sorted(test)) + "\n")
    _write_marker(out, "beauty", "synthetic SCUT-like faces", n=n, seed=seed, image_size=image_size,
                  layout=layout, score="facepack.data.synthetic.beauty_score(brightness, eye_scale, mouth_width)")
    return out


# --- 68-point keypoint dataset --------------------------------------------------------------------
def _random_face68(rng: np.random.Generator, w: int, h: int, noise: float = 0.015):
    """Random pose and expression, roughly as varied as the YouTube Faces keypoint data."""
    half = rng.uniform(0.26, 0.34) * min(w, h)
    center = (w / 2 + rng.uniform(-0.08, 0.08) * w, h * 0.42 + rng.uniform(-0.06, 0.06) * h)
    return face_points(rng, center, half, angle_deg=rng.uniform(-18, 18), eye_scale=rng.uniform(0.75, 1.25),
                       mouth_width=rng.uniform(0.8, 1.2), mouth_open=rng.uniform(0, 1.5), noise=noise,
                       yaw_deg=rng.uniform(-28, 28), pitch_deg=rng.uniform(-15, 15))


def make_keypoints68_dataset(out_dir, n: int = 300, seed: int = 0, image_size: int = 128,
                             rgba_every: int = 4) -> Path:
    """Write a 68-point dataset (training_frames_keypoints.csv + training/) and return its root.

    Image sizes vary around ``image_size``; every ``rgba_every``-th file is an RGBA PNG saved
    with a .jpg extension, as in the real release.
    """
    out = Path(out_dir)
    images = out / "training"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = [",".join([""] + [str(i) for i in range(136)])]
    for i in range(n):
        w = int(image_size * rng.uniform(0.8, 1.25))
        h = int(image_size * rng.uniform(0.8, 1.25))
        pts = _random_face68(rng, w, h)
        img = draw_face((w, h), pts, _skin(rng, rng.uniform(0.1, 0.9)), _background(rng), rng,
                        hair=rng.uniform(10, 120, 3) if rng.random() < 0.7 else None)
        name = f"Synthetic_Person_{i:04d}.jpg"
        if rgba_every and i % rgba_every == 0:
            img.convert("RGBA").save(images / name, format="PNG")
        else:
            img.save(images / name, format="JPEG", quality=92)
        rows.append(",".join([name] + [f"{v:.2f}" for v in pts.reshape(-1)]))
    (out / "training_frames_keypoints.csv").write_text("\n".join(rows) + "\n")
    _write_marker(out, "keypoints68", "synthetic 68-point faces", n=n, seed=seed, image_size=image_size)
    return out


# --- Kaggle 15-point CSV ---------------------------------------------------------------------------
KAGGLE_ALWAYS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")


def make_kaggle15_csv(out_path, n: int = 200, seed: int = 0, partial_fraction: float = 0.6) -> Path:
    """Write a Kaggle-style training.csv (96x96 grayscale faces) and return its path.

    ``partial_fraction`` of the rows keep only Kaggle's four always-present keypoints (the rest
    are empty cells, read back as NaN), and a few others miss one more point.
    """
    out_path = Path(out_path)
    if out_path.is_dir() or out_path.suffix.lower() != ".csv":
        out_path = out_path / "training.csv"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    side = 96
    names = spec.KAGGLE15_NAMES
    header = [f"{nm}_{a}" for nm in names for a in ("x", "y")] + ["Image"]
    rows = [",".join(header)]
    for _ in range(n):
        pts68 = _random_face68(rng, side, side, noise=0.01)
        img = draw_face((side, side), pts68, _skin(rng, rng.uniform(0.1, 0.9)), _background(rng), rng,
                        hair=rng.uniform(10, 120, 3) if rng.random() < 0.7 else None).convert("L")
        pts = ibug68_to_kaggle15(pts68)
        present = np.ones(15, dtype=bool)
        if rng.random() < partial_fraction:
            present[:] = [nm in KAGGLE_ALWAYS for nm in names]
        elif rng.random() < 0.2:
            present[rng.integers(0, 15)] = False
        cells = []
        for j in range(15):
            cells += [f"{pts[j, 0]:.4f}", f"{pts[j, 1]:.4f}"] if present[j] else ["", ""]
        pixels = " ".join(str(v) for v in np.asarray(img, dtype=np.uint8).reshape(-1))
        rows.append(",".join(cells + [pixels]))
    out_path.write_text("\n".join(rows) + "\n")
    _write_marker(out_path.parent, "kaggle15", "synthetic 15-point faces", n=n, seed=seed, image_size=side)
    return out_path


# --- On-demand cache under runs/_synthetic -------------------------------------------------------
def default_synthetic_root() -> Path:
    """$FACEPACK_SYNTHETIC, else <runs>/_synthetic (git-ignored with runs/; FACEPACK_RUNS moves it)."""
    if os.environ.get("FACEPACK_SYNTHETIC"):
        return Path(os.environ["FACEPACK_SYNTHETIC"])
    from facepack.runs import RUNS_ROOT
    return Path(RUNS_ROOT) / "_synthetic"


def _marker_matches(folder: Path, expected: dict) -> bool:
    from facepack.data.errors import synthetic_info
    info = synthetic_info(folder)
    return info is not None and all(info.get(k) == v for k, v in expected.items())


def ensure_synthetic(kind: str, root=None, n: int | None = None, seed: int = 0,
                     image_size: int | None = None, layout: str = "release") -> Path:
    """Generate (once) and return a synthetic dataset: the folder (beauty, keypoints68) or CSV (kaggle15).

    Reuses an existing folder whose SYNTHETIC marker has the same parameters; writes into a
    temporary folder and renames it, so concurrent callers never see half a dataset.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    n = DEFAULT_N[kind] if n is None else int(n)
    image_size = DEFAULT_SIZE[kind] if image_size is None else int(image_size)
    base = Path(root) if root is not None else default_synthetic_root()
    tag = f"{kind}-{layout}" if kind == "beauty" else kind
    folder = base / f"{tag}-n{n}-seed{seed}-px{image_size}"
    expected = {"kind": kind, "n": n, "seed": seed, "image_size": image_size,
                "generator_version": GENERATOR_VERSION}
    if kind == "beauty":
        expected["layout"] = layout

    def result(path: Path) -> Path:
        return path / "training.csv" if kind == "kaggle15" else path

    if _marker_matches(folder, expected):
        return result(folder)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=base))
    try:
        if kind == "beauty":
            make_scut_dataset(tmp, n=n, seed=seed, image_size=image_size, layout=layout)
        elif kind == "keypoints68":
            make_keypoints68_dataset(tmp, n=n, seed=seed, image_size=image_size)
        else:
            if image_size != 96:
                raise ValueError(f"kaggle15 images are 96x96, got image_size={image_size}")
            make_kaggle15_csv(tmp / "training.csv", n=n, seed=seed)
        if folder.exists() and not _marker_matches(folder, expected):
            shutil.rmtree(folder)  # stale generator version or parameters
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _marker_matches(folder, expected):  # someone else won the race with good data
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return result(folder)
