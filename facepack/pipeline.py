"""The Python reference pipeline: photo -> faces with box, 5 landmarks, keypoints, beauty, Grad-CAM.

This is THE reference the JavaScript (static/facepack/index.js createFaceAnalyzer and its stage
modules) must equal, stage by stage. Each stage is a module-level function with plain inputs and
outputs so parity tests can compare them one by one:

    decode(image)                             -> (H, W, 3) uint8 RGB         facepack.data.images
    detect(detector, rgb, options)            -> [{box, score, landmarks5}]   facepack.detect.mtcnn_detector
    crop(rgb, faces, kind, size, fmt)         -> crops (N, S, S, 3), squares  facepack.crop
    beauty(model, crops)                      -> [{score, score_1to5, distribution}]
    keypoints(model, crops, squares)          -> [[[x, y], ...], ...] in photo pixels
    gradcam(features, head, crops, squares)   -> [{grid, crop_size, square}]  facepack.gradcam

Order inside ``FacePipeline.analyze``: decode, detect, filter (``min_confidence``, ``min_box_size``:
spec.FACE_FILTER defaults), keep the ``max_faces`` most confident, crop (beauty square: spec.BEAUTY crop_margin; keypoint square: detector box mapped by the
format's detector_to_points_box, then spec.KEYPOINTS crop_margin), keypoints, beauty, Grad-CAM,
attributes (with an attributes model: its crop rule's square at its input size, then
facepack/models/attributes.py:attribute_results).

``FacePipeline`` holds the models (no module-level singletons):

    pipe = FacePipeline.from_runs()            # latest trained runs
    result = pipe.analyze("photo.jpg", heatmaps=True)
    result["faces"][0]["beauty"]["score"]      # 0..100
    result["timings_ms"]                       # decode, detect, crop, beauty, keypoints, gradcam, total

A face is ``{"box": {x, y, width, height}, "score", "landmarks5": {name: [x, y]},
"keypoints": [[x, y], ...], "beauty": {score, score_1to5, distribution}, "heatmap"?}`` in the
input photo's pixels (DESIGN.md contract 4), floats as the mtcnn package computes them (not
rounded); ``beauty``/``keypoints`` are absent when the pipeline has no such model and
``heatmap`` is present with ``heatmaps=True``; ``attributes`` ({name: {probability, on}}, the
names and thresholds of the model's run) is present with an attributes model, and timings then
have an "attributes" entry (as the JS analyze() with a bundle holding one). Everything is plain
Python floats/lists (JSON-ready).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from facepack import crop as crop_mod
from facepack import gradcam as gradcam_mod
from facepack import spec
from facepack.bigphoto import RegionPhoto
from facepack.data.images import load_rgb
from facepack.detect import haar, mtcnn_detector
from facepack.models.beauty import expected_score, score_to_1to5

# Crop rule per model: margin from the spec, and whether the detector box is first mapped to
# the ground-truth points' box (spec.KEYPOINTS["formats"][fmt]["detector_to_points_box"]; the
# keypoint trainer crops there).
CROP_RULES = {
    "beauty": {"margin": spec.BEAUTY["crop_margin"], "points_box": False},
    "keypoints": {"margin": spec.KEYPOINTS["crop_margin"], "points_box": True},
}
TIMING_KEYS = ("decode", "detect", "crop", "beauty", "keypoints", "gradcam", "total")
ATTRIBUTES_TIMING_KEY = "attributes"  # added to the timings when the pipeline has an attributes model


# --- Stages ---------------------------------------------------------------------------------
def decode(image, name: str | None = None) -> np.ndarray:
    """Path, bytes, PIL image or array -> (H, W, 3) uint8 RGB; ImageDecodeError names the file.

    A facepack.bigphoto.RegionPhoto (a large photo read by region) passes through: detect and
    crop read it with the same numbers as its full array.
    """
    if isinstance(image, RegionPhoto):
        return image
    return load_rgb(image, name=name)


def detect(detector, rgb: np.ndarray, options: dict | None = None) -> list[dict]:
    """MTCNN faces {box, score, landmarks5} in photo pixels, confidence descending."""
    if getattr(detector, "kind", None) == "haar":  # facepack/detect/haar.py (score 1.0, landmarks5 {})
        return detector.detect(rgb, options)
    if isinstance(rgb, RegionPhoto):
        image, scale_yx = rgb.detection_image()  # = resize_for_detection of the full array
        return mtcnn_detector.rows_to_faces(
            mtcnn_detector.run_detector(detector, image, mtcnn_detector.resolve_options(options)), scale_yx)
    return mtcnn_detector.detect_faces(detector, rgb, options)


def filter_faces(faces: list[dict], min_confidence: float, min_box_size: float) -> list[dict]:
    """The faces with score >= min_confidence (0..1) and max(box width, height) >= min_box_size
    (photo pixels), order kept (spec.FACE_FILTER; mirrors static/facepack/pipeline.js:filterFaces)."""
    return [f for f in faces
            if f["score"] >= min_confidence and max(f["box"]["width"], f["box"]["height"]) >= min_box_size]


def per_face_targets(faces: list[dict], limit: int | None) -> list[dict]:
    """The faces the per-face models run on: all (``limit`` None), or the ``limit`` largest by the
    box's longer side (photo pixels; equal sides: the earlier face), in the faces' order (mirrors
    static/facepack/pipeline.js:perFaceTargets)."""
    if limit is None or len(faces) <= limit:
        return faces
    side = [max(f["box"]["width"], f["box"]["height"]) for f in faces]
    keep = set(sorted(range(len(faces)), key=lambda i: (-side[i], i))[:limit])
    return [f for i, f in enumerate(faces) if i in keep]


def face_square(box: dict, kind: str, keypoint_format: str = "68") -> tuple[float, float, float]:
    """The (x0, y0, side) square that model ``kind`` ("beauty" | "keypoints") sees for a box.

    keypoint_format ("68" | "15") picks the detector-to-points mapping of a keypoint crop.
    """
    if kind not in CROP_RULES:
        raise ValueError(f"crop kind must be one of {sorted(CROP_RULES)}, got {kind!r}")
    rule = CROP_RULES[kind]
    if rule["points_box"]:
        box = crop_mod.detector_to_points_box(box, crop_mod.points_box_mapping(keypoint_format))
    return crop_mod.face_square(box, rule["margin"])


def crop(rgb: np.ndarray, faces: list[dict], kind: str, size: int,
         keypoint_format: str = "68") -> tuple[np.ndarray, list]:
    """Crops (N, size, size, 3) float32 and their squares for model ``kind``."""
    squares = [face_square(face["box"], kind, keypoint_format) for face in faces]
    if isinstance(rgb, RegionPhoto):
        return rgb.crop_squares(squares, size), squares
    return crop_mod.crop_squares(rgb, squares, size), squares


def beauty(model, crops: np.ndarray) -> list[dict]:
    """Beauty crops -> [{score (0..100), score_1to5, distribution (101 floats)}].

    model: the Keras model, or ``compile_model(model)`` (same numbers, faster).
    """
    if len(crops) == 0:
        return []
    probs = np.asarray(model(np.asarray(crops, dtype=np.float32)), dtype=np.float64)
    scores = expected_score(probs)
    return [{"score": float(s), "score_1to5": float(score_to_1to5(s)), "distribution": p.tolist()}
            for s, p in zip(scores, probs)]


def keypoints(model, crops: np.ndarray, squares: list, mirror_permutation: list | None = None) -> list[list]:
    """Keypoint crops -> per face [[x, y], ...] in photo pixels.

    The model (Keras, or ``compile_model(model)``) outputs (N, 2P) interleaved (u0, v0, u1, v1, ...)
    in crop units (0..1 across the square; facepack/data/tfdata.py:keypoint_dataset), mapped to
    pixels by spec.crop_to_image. ``mirror_permutation`` (P indices, spec.MIRROR_PERMUTATION[fmt]):
    test-time mirror averaging, the model runs once on the batch of the N crops followed by their
    horizontal mirrors (2N) and ``mirror_average`` combines the halves; None: the crops only.
    Mirrors static/facepack/keypoints.js:keypointOutputs.
    """
    if len(crops) == 0:
        return []
    x = np.asarray(crops, dtype=np.float32)
    n = len(x)
    if mirror_permutation is not None:
        x = np.concatenate([x, x[:, :, ::-1]])
    out = np.asarray(model(x), dtype=np.float64)
    points = out.reshape(len(x), -1, 2)
    if mirror_permutation is not None:
        points = mirror_average(points[:n], points[n:], mirror_permutation)
    return [crop_mod.crop_points_to_image(p, sq).tolist() for p, sq in zip(points, squares)]


def mirror_average(direct: np.ndarray, mirrored: np.ndarray, permutation) -> np.ndarray:
    """(N, P, 2) crop-unit points of the crops and (N, P, 2) of their horizontal mirrors -> their
    average in the crops' frame: the mirrored points un-mirrored (u -> 1 - u: pixel i's centre
    (i + 0.5) / S goes to S - 1 - i's) with point k taken from point ``permutation[k]`` (left and
    right swapped; spec.MIRROR_PERMUTATION). ValueError when the shapes or the permutation's
    length differ. Mirrors static/facepack/keypoints.js:mirrorAverage."""
    direct, mirrored = np.asarray(direct, np.float64), np.asarray(mirrored, np.float64)
    perm = np.asarray(permutation, dtype=np.int64)
    if direct.shape != mirrored.shape or direct.ndim != 3 or direct.shape[1] != len(perm):
        raise ValueError(f"mirror_average: expected two (N, {len(perm)}, 2) arrays, got {direct.shape} and {mirrored.shape}")
    back = np.stack([1.0 - mirrored[..., 0], mirrored[..., 1]], axis=-1)[:, perm]
    return (direct + back) / 2.0


def gradcam(features_model, head_model, crops: np.ndarray, squares: list, compiled=None) -> list[dict]:
    """Beauty crops -> per face {grid (h x w, max 1), crop_size, square} (facepack.gradcam)."""
    if len(crops) == 0:
        return []
    grids = gradcam_mod.gradcam_grid(features_model, head_model, crops, compiled)
    return [gradcam_mod.heatmap_record(g, sq, crops.shape[1]) for g, sq in zip(grids, squares)]


# --- Helpers --------------------------------------------------------------------------------
def compile_model(model):
    """``model(x, training=False)`` as one tf.function for any batch size.

    The numbers are those of the eager call (checked in tests/test_pipeline.py); on this CPU a
    ResNet50 face takes ~0.2 s instead of ~0.5-1 s eagerly. The first call traces (seconds).
    """
    import tensorflow as tf

    shape = [None, *tuple(model.input_shape)[1:]]
    return tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)])


def model_input_size(model, flag: str) -> int:
    """Square input size of a model (N, S, S, 3); ValueError naming ``flag`` otherwise."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or shape[1] is None:
        raise ValueError(f"{flag}: expected a model taking (N, S, S, 3) images, got input shape {shape}")
    return int(shape[1])


def keypoint_count(model, keypoint_format: str | None) -> int:
    """Points the keypoint model predicts, checked against spec formats and ``keypoint_format``."""
    width = int(model.output_shape[-1])
    counts = {name: f["count"] for name, f in spec.KEYPOINTS["formats"].items()}
    if width % 2 or str(width // 2) not in counts:
        raise ValueError(f"--keypoints: expected an output of 2 x {sorted(counts.values())} values, got {width}")
    if keypoint_format is not None:
        if str(keypoint_format) not in counts:
            raise ValueError(f"keypoint_format must be one of {sorted(counts)}, got {keypoint_format!r}")
        if counts[str(keypoint_format)] != width // 2:
            raise ValueError(f"keypoint_format {keypoint_format!r} expects {counts[str(keypoint_format)]} points, "
                             f"the model predicts {width // 2}")
    return width // 2


def _check_per_face_limit(per_face_limit) -> None:
    if per_face_limit is not None and (isinstance(per_face_limit, bool) or not isinstance(per_face_limit, int)
                                       or per_face_limit < 0):
        raise ValueError(f"per_face_limit must be an integer >= 0 or None, got {per_face_limit!r}")


def _resolve_mirror_keypoints(mirror_keypoints) -> bool:
    """The mirror_keypoints option: True/False as given, None -> spec.KEYPOINTS["mirror_average"]
    (mirrors static/facepack/options.js:resolveAnalyzeOptions mirrorKeypoints)."""
    if mirror_keypoints is None:
        return bool(spec.KEYPOINTS["mirror_average"])
    if not isinstance(mirror_keypoints, bool):
        raise ValueError(f"mirror_keypoints must be True, False or None, got {mirror_keypoints!r}")
    return mirror_keypoints


def _check_call_options(heatmaps, max_faces, min_face_size, min_confidence, min_box_size) -> None:
    if not isinstance(heatmaps, bool):
        raise ValueError(f"heatmaps must be True or False, got {heatmaps!r}")
    if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1):
        raise ValueError(f"max_faces must be an integer >= 1 or None, got {max_faces!r}")
    if min_face_size is not None and (isinstance(min_face_size, bool) or not isinstance(min_face_size, (int, float))
                                      or not min_face_size > 0):
        raise ValueError(f"min_face_size must be a number > 0 (pixels) or None, got {min_face_size!r}")
    if min_confidence is not None and (isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
                                       or not 0.0 <= min_confidence <= 1.0):
        raise ValueError(f"min_confidence must be a number from 0 to 1 or None, got {min_confidence!r}")
    if min_box_size is not None and (isinstance(min_box_size, bool) or not isinstance(min_box_size, (int, float))
                                     or not 0.0 <= min_box_size < float("inf")):
        raise ValueError(f"min_box_size must be a number >= 0 (pixels) or None, got {min_box_size!r}")


def _check_attributes(model, attributes) -> dict | None:
    """The attributes settings {names, thresholds, crop_rule} checked against the model's K outputs."""
    if model is None:
        if attributes is not None:
            raise ValueError("attributes: given without an attributes_model")
        return None
    if not isinstance(attributes, dict) or "names" not in attributes or "thresholds" not in attributes:
        raise ValueError("attributes: an attributes_model needs attributes={'names': [...], 'thresholds': [...]} "
                         "(its run.json \"attributes\")")
    names, thresholds = [str(n) for n in attributes["names"]], [float(t) for t in attributes["thresholds"]]
    k = int(model.output_shape[-1])
    if len(names) != k or len(thresholds) != k:
        raise ValueError(f"attributes: {len(names)} names and {len(thresholds)} thresholds for a model with {k} outputs")
    rule = attributes.get("crop_rule", "beauty")
    if rule not in CROP_RULES:
        raise ValueError(f"attributes crop_rule must be one of {sorted(CROP_RULES)}, got {rule!r}")
    return {"names": names, "thresholds": thresholds, "crop_rule": rule}


# --- Pipeline -------------------------------------------------------------------------------
class FacePipeline:
    """MTCNN + beauty + keypoint models; ``analyze(image)`` returns faces and per-stage timings.

    beauty_model / keypoint_model: Keras models (None: that stage is skipped and its key absent).
    detector_options: MTCNN options (keys of mtcnn_detector.OPTION_KEYS; defaults from spec.MTCNN).
    keypoint_format: "68" or "15" to check the keypoint model against (None: from its output).
    compiled: run the models through tf.function (default True: same numbers, faster after a
        one-off trace on first use; False calls them eagerly).
    detector: "mtcnn" (default) or "haar" (OpenCV's cascade, facepack/detect/haar.py).
    attributes_model: a face-attributes model ((N, S, S, 3) raw RGB -> (N, K) probabilities,
        training/train_attributes.py) with ``attributes``: {"names": K names, "thresholds": K
        probabilities, "crop_rule"?: a CROP_RULES key, default "beauty"} (its run.json "attributes",
        or the bundle's manifest entry "attributes"); None: no attributes.
    """

    def __init__(self, beauty_model=None, keypoint_model=None, detector_options=None, keypoint_format=None,
                 compiled: bool = True, detector: str = "mtcnn", attributes_model=None, attributes: dict | None = None):
        if detector not in ("mtcnn", "haar"):
            raise ValueError(f"detector must be 'mtcnn' or 'haar', got {detector!r}")
        self.detector_options = mtcnn_detector.resolve_options(detector_options)
        self.detector = haar.HaarDetector() if detector == "haar" else mtcnn_detector.build_detector()
        self.beauty_model = beauty_model
        self.beauty_size = model_input_size(beauty_model, "--beauty") if beauty_model is not None else None
        self.keypoint_model = keypoint_model
        self.keypoint_size = model_input_size(keypoint_model, "--keypoints") if keypoint_model is not None else None
        self.num_points = keypoint_count(keypoint_model, keypoint_format) if keypoint_model is not None else None
        self.attributes_model = attributes_model
        self.attributes = _check_attributes(attributes_model, attributes)
        self.attributes_size = model_input_size(attributes_model, "--attributes") if attributes_model is not None else None
        self.runs: dict = {}  # filled by from_runs: {"beauty": path, "keypoints": path, "attributes"?: path}
        self.compiled = bool(compiled)
        self._predictors: dict = {}  # lazily compiled: "beauty", "keypoints", "gradcam"
        self._gradcam_models = None

    @classmethod
    def from_runs(cls, beauty_run=None, keypoints_run=None, detector_options=None, runs_root=None, detector="mtcnn",
                  attributes_run=None):
        """Load run folders (None: the latest under runs/, else the shipped models; attributes_run:
        a train_attributes.py run folder, None: no attributes model)."""
        from facepack.runs import is_model_file_name, load_run, model_files, resolve_run

        paths = {"beauty": resolve_run("beauty", beauty_run, root=runs_root),
                 "keypoints": resolve_run("keypoints", keypoints_run, root=runs_root)}
        beauty_model, _ = load_run(paths["beauty"])
        keypoint_model, info = load_run(paths["keypoints"])
        fmt = info.get("format") or (info.get("dataset") or {}).get("format") or \
            (str(info["num_points"]) if info.get("num_points") else None)  # None: from the model's output
        attributes_model = attributes = None
        if attributes_run is not None:
            run = Path(attributes_run)
            paths["attributes"] = run.parent if run.is_file() and is_model_file_name(run.name) else run
            if not (paths["attributes"] / "run.json").is_file():
                raise ValueError(f"--attributes {attributes_run}: expected a train_attributes.py run folder with run.json "
                                 "and its model files (model.keras, or the sharded layout: facepack/runs.py)")
            try:
                model_files(paths["attributes"])  # one line naming the run and the missing or cut-short file
            except ValueError as err:
                raise ValueError(f"--attributes: {err}") from None
            attributes_model, a_info = load_run(paths["attributes"])
            if not isinstance(a_info.get("attributes"), dict):
                raise ValueError(f"--attributes {paths['attributes']}: run.json has no \"attributes\" "
                                 "(names, thresholds); expected a train_attributes.py run")
            attributes = a_info["attributes"]
        pipe = cls(beauty_model, keypoint_model, detector_options, keypoint_format=fmt, detector=detector,
                   attributes_model=attributes_model, attributes=attributes)
        pipe.runs = {k: str(v) for k, v in paths.items()}
        return pipe

    def predictor(self, kind: str):
        """The callable that runs model ``kind`` ("beauty", "keypoints", "attributes"): compiled once, or the model."""
        model = {"beauty": self.beauty_model, "keypoints": self.keypoint_model, "attributes": self.attributes_model}[kind]
        if not self.compiled:
            return model
        if kind not in self._predictors:
            self._predictors[kind] = compile_model(model)
        return self._predictors[kind]

    def gradcam_compiled(self):
        """compile_relu_cam of the beauty model's split (None when not compiled)."""
        if not self.compiled:
            return None
        if "gradcam" not in self._predictors:
            self._predictors["gradcam"] = gradcam_mod.compile_relu_cam(*self.gradcam_models())
        return self._predictors["gradcam"]

    def gradcam_models(self):
        """(features_model, head_model) of the beauty model, built once on first use."""
        if self.beauty_model is None:
            raise ValueError("heatmaps=True needs a beauty model; this pipeline has none")
        if self._gradcam_models is None:
            import keras

            from facepack.models.beauty import split_for_gradcam

            self._gradcam_models = split_for_gradcam(keras, self.beauty_model)
        return self._gradcam_models

    def describe(self, rgb: np.ndarray, faces: list[dict], heatmaps: bool = False, lap=None,
                 per_face_limit: int | None = None, mirror_keypoints: bool | None = None) -> list[dict]:
        """Steps 3-4 of ``analyze`` on given faces: crop, keypoints, beauty, Grad-CAM (when ``heatmaps``),
        attributes (mirrors static/facepack/pipeline.js:describeFaces).

        rgb: (H, W, 3) uint8, the decoded photo; faces: dicts with "box" (photo pixels), filled in place
        with "keypoints", "beauty", "heatmap" and "attributes" where those models are loaded (on the
        ``per_face_limit`` largest only, when given: per_face_targets); returns ``faces``. Each model
        runs once on the batch of all those faces' crops.
        ``mirror_keypoints``: test-time mirror averaging of the keypoint model (``keypoints``; None:
        spec.KEYPOINTS["mirror_average"]).
        ``lap(key)`` is called after each stage (analyze's timings). The parity checks call it on the
        other side's boxes to separate detector from crop/model differences (bench/bench_parity.py).
        """
        lap = lap or (lambda key: None)
        _check_per_face_limit(per_face_limit)
        mirror_keypoints = _resolve_mirror_keypoints(mirror_keypoints)
        all_faces, faces = faces, per_face_targets(faces, per_face_limit)
        run_beauty = self.beauty_model is not None and bool(faces)
        run_keypoints = self.keypoint_model is not None and bool(faces)
        # 3. crop
        if run_beauty:
            beauty_crops, beauty_squares = crop(rgb, faces, "beauty", self.beauty_size)
        if run_keypoints:
            kp_crops, kp_squares = crop(rgb, faces, "keypoints", self.keypoint_size, str(self.num_points))
        lap("crop")
        # 4. models (a stage that does not run reports 0 ms)
        if run_keypoints:
            perm = spec.MIRROR_PERMUTATION[str(self.num_points)] if mirror_keypoints else None
            for face, points in zip(faces, keypoints(self.predictor("keypoints"), kp_crops, kp_squares, perm)):
                face["keypoints"] = points
            lap("keypoints")
        if run_beauty:
            for face, result in zip(faces, beauty(self.predictor("beauty"), beauty_crops)):
                face["beauty"] = result
            lap("beauty")
        if heatmaps and run_beauty:
            features_model, head_model = self.gradcam_models()
            records = gradcam(features_model, head_model, beauty_crops, beauty_squares, self.gradcam_compiled())
            for face, record in zip(faces, records):
                face["heatmap"] = record
            lap("gradcam")
        if self.attributes_model is not None:
            if faces:
                from facepack.models.attributes import attribute_results

                a_crops, _ = crop(rgb, faces, self.attributes["crop_rule"], self.attributes_size)
                probs = np.asarray(self.predictor("attributes")(np.asarray(a_crops, np.float32)), dtype=np.float64)
                for face, result in zip(faces, attribute_results(probs, self.attributes["names"],
                                                                 self.attributes["thresholds"])):
                    face["attributes"] = result
            lap(ATTRIBUTES_TIMING_KEY)
        return all_faces

    def analyze(self, image, heatmaps: bool = False, max_faces: int | None = None,
                min_face_size: float | None = None, name: str | None = None, min_confidence: float | None = None,
                min_box_size: float | None = None, per_face_limit: int | None = None,
                mirror_keypoints: bool | None = None) -> dict:
        """Photo (path, bytes, array) -> {"faces", "timings_ms", "image": {width, height}}.

        min_confidence (0..1) and min_box_size (photo pixels, the box's longer side) drop detected
        faces below them (filter_faces; None: spec.FACE_FILTER's min_confidence / min_box_size_px);
        then max_faces keeps the most confident faces; min_face_size (pixels of the detection
        image) overrides the detector option for this call; per_face_limit (None: every face) runs
        keypoints, beauty and Grad-CAM on that many of the kept faces, the largest (the others keep
        box, score and landmarks5; JS analyze option perFaceLimit); mirror_keypoints (None:
        spec.KEYPOINTS["mirror_average"]) also runs the keypoint model on each crop's mirror and
        averages (``keypoints``; JS analyze option mirrorKeypoints). No face -> "faces": [].
        """
        _check_call_options(heatmaps, max_faces, min_face_size, min_confidence, min_box_size)
        _check_per_face_limit(per_face_limit)
        mirror_keypoints = _resolve_mirror_keypoints(mirror_keypoints)
        min_confidence = spec.FACE_FILTER["min_confidence"] if min_confidence is None else float(min_confidence)
        min_box_size = spec.FACE_FILTER["min_box_size_px"] if min_box_size is None else float(min_box_size)
        if heatmaps:
            self.gradcam_models()
        ms = dict.fromkeys(TIMING_KEYS, 0.0)
        if self.attributes_model is not None:
            ms[ATTRIBUTES_TIMING_KEY] = 0.0
        t_start = t = time.perf_counter()

        def lap(key):
            nonlocal t
            now = time.perf_counter()
            ms[key] += (now - t) * 1000.0
            t = now

        # 1. decode
        rgb = decode(image, name)
        lap("decode")
        # 2. detect
        options = dict(self.detector_options)
        if min_face_size is not None:
            options["min_face_size"] = min_face_size
        faces = filter_faces(detect(self.detector, rgb, options), min_confidence, min_box_size)[:max_faces]
        lap("detect")
        # 3-4. crop and models
        self.describe(rgb, faces, heatmaps, lap, per_face_limit, mirror_keypoints)
        ms["total"] = (time.perf_counter() - t_start) * 1000.0
        return {"faces": faces, "timings_ms": ms,
                "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])}}
