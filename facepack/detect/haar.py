"""OpenCV's Haar-cascade face detector, beside MTCNN (``predict.py --detector haar``).

The cascade is the one the opencv package ships (``cv2.data.haarcascades`` +
``haarcascade_frontalface_default.xml``, Viola-Jones, 24 x 24 px window), run by
``cv2.CascadeClassifier.detectMultiScale2`` on the grey detection image
(the photo after spec.detect_size, as MTCNN sees it: ``mtcnn_detector.resize_for_detection`` or a
RegionPhoto's ``detection_image``), then mapped back to photo pixels.

Faces come out in the pipeline's format (DESIGN.md contract 4), with two differences:

- ``score`` is 1.0 for every face: a cascade accepts or rejects a window, it has no probability.
  The face filter's min_confidence therefore keeps every Haar face; ``neighbors`` (an extra key)
  is how many raw windows were merged into the box (>= HAAR["min_neighbors"]), the cascade's own
  measure of support, and faces are ordered by it (descending, then by box area), so
  ``max_faces`` keeps the best supported.
- ``landmarks5`` is ``{}``: the cascade finds no landmarks. The beauty and keypoint crops are
  made from the box alone (facepack/pipeline.py:face_square), as they are for MTCNN faces; the
  annotated photos draw no landmark circles.

Boxes: the cascade's box is a square; MTCNN's box of the same face is narrower (0.80 of the
side), taller (1.08) and starts a little higher. Since the crop rules (spec.BEAUTY crop_margin,
spec.KEYPOINTS detector_to_points_box) were fitted to MTCNN boxes, each Haar box is mapped to the
MTCNN box of the same face by HAAR_TO_MTCNN_BOX (bench/bench_haar.py: medians over 590 faces of
the shared datasets both detectors found; median IoU with MTCNN's box 0.73 raw, 0.85 mapped, on
another 200) before it is returned; ``raw_box`` keeps the cascade's own box.

Settings (HAAR) picked by bench/bench_haar.py (300 SCUT + 300 YouTube-Faces faces, 52 face-free
images): without histogram equalisation the cascade found more faces (99.3 % vs 98.5 %), made
fewer false detections (6 vs 9) and ran faster; min_neighbors 3 instead of 5 found 99.7 % with 10
false detections. MTCNN (with spec.FACE_FILTER): 99.7 %, 0 false.
"""

from __future__ import annotations

import threading

import numpy as np

from facepack import spec

CASCADE_FILE = "haarcascade_frontalface_default.xml"
HAAR = {
    "scale_factor": 1.1,  # pyramid step between window sizes (OpenCV's default)
    "min_neighbors": 5,  # raw windows needed to keep a box (OpenCV's tutorials; default 3 finds more false faces)
    "window_px": 24,  # the cascade's training window: no smaller face is found
    "equalize": False,  # cv2.equalizeHist first (OpenCV's tutorial): fewer faces, more false ones here (bench)
}
# Haar box -> MTCNN box of the same face, as fractions of the Haar box side s:
# x' = x + dx * s, y' = y + dy * s, w' = sw * s, h' = sh * s (bench/bench_haar.py, "box map").
HAAR_TO_MTCNN_BOX = {"dx": 0.089, "dy": -0.041, "sw": 0.802, "sh": 1.083}

_LOCK = threading.Lock()  # one CascadeClassifier is not documented as thread-safe


def cascade_path() -> str:
    """The frontal-face cascade file of the installed opencv package (HaarDetector checks it loads)."""
    import cv2

    return cv2.data.haarcascades + CASCADE_FILE


class HaarDetector:
    """A loaded cascade; ``detect(photo, options)`` gives faces in photo pixels.

    ``min_face_size`` (options key, pixels of the detection image, as for MTCNN) sets the
    cascade's minSize (never under its 24 px window). ``settings``: keys of HAAR to override
    (bench/bench_haar.py compares them).
    """

    kind = "haar"

    def __init__(self, path: str | None = None, settings: dict | None = None):
        import cv2

        unknown = set(settings or {}) - set(HAAR)
        if unknown:
            raise ValueError(f"HaarDetector settings: unknown {sorted(unknown)}; known: {sorted(HAAR)}")
        self.settings = {**HAAR, **(settings or {})}
        self.path = path or cascade_path()
        self.cascade = cv2.CascadeClassifier(self.path)
        if self.cascade.empty():
            raise RuntimeError(f"Haar cascade: cannot load {self.path} (reinstall opencv-python-headless)")

    def detect(self, photo, options: dict | None = None) -> list[dict]:
        """(H, W, 3) uint8 RGB array or facepack.bigphoto.RegionPhoto -> faces (may be [])."""
        from facepack.detect import mtcnn_detector

        if hasattr(photo, "detection_image"):
            image, scale_yx = photo.detection_image()
        else:
            image, scale_yx = mtcnn_detector.resize_for_detection(photo)
        return self.detect_image(image, scale_yx, options)

    def detect_image(self, image: np.ndarray, scale_yx: tuple[float, float] = (1.0, 1.0),
                     options: dict | None = None) -> list[dict]:
        """Detection image (h, w, 3) RGB, any dtype 0..255 -> faces in photo pixels (divide by scale_yx)."""
        import cv2

        min_face = (options or {}).get("min_face_size") or spec.MTCNN["min_face_size_px"]
        cfg = self.settings
        side = max(cfg["window_px"], int(round(min_face)))
        rgb = np.asarray(image)
        if rgb.dtype != np.uint8:
            rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if cfg["equalize"]:
            grey = cv2.equalizeHist(grey)
        with _LOCK:
            rects, neighbors = self.cascade.detectMultiScale2(
                grey, scaleFactor=cfg["scale_factor"], minNeighbors=cfg["min_neighbors"], minSize=(side, side))
        sy, sx = scale_yx
        faces = []
        for (x, y, w, h), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbors).reshape(-1)):
            raw = {"x": float(x / sx), "y": float(y / sy), "width": float(w / sx), "height": float(h / sy)}
            faces.append({"box": to_mtcnn_box(raw), "score": 1.0, "landmarks5": {}, "neighbors": int(n),
                          "raw_box": raw})
        faces.sort(key=lambda f: (-f["neighbors"], -f["box"]["width"] * f["box"]["height"]))
        return faces


def to_mtcnn_box(box: dict, mapping: dict | None = None) -> dict:
    """A Haar box {x, y, width, height} mapped by HAAR_TO_MTCNN_BOX (or ``mapping``)."""
    m = HAAR_TO_MTCNN_BOX if mapping is None else mapping
    s = (box["width"] + box["height"]) / 2.0
    return {"x": box["x"] + m["dx"] * s, "y": box["y"] + m["dy"] * s,
            "width": m["sw"] * s, "height": m["sh"] * s}
