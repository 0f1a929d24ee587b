"""facepack.pipeline: the reference result format, every input kind, stages, options, errors."""

import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

from facepack import pipeline, spec
from facepack.data.images import ImageDecodeError, load_rgb
from facepack.pipeline import FacePipeline

BOX_TOL_LOSSY_PX = 8.0  # JPEG re-encoding (CMYK, EXIF copy) moves MTCNN boxes by up to ~5 px (face ~107 px)
FACE_KEYS = ["box", "score", "landmarks5", "keypoints", "beauty"]


# The untrained beauty model's Grad-CAM on the astronaut is all zero (no positive evidence) for the box
# that area-sampled R/O-Net patches give (spec.MTCNN["patch_resize"]); these tests were written on the
# box of the package's bilinear patches, so they pin them (the detector itself: tests/test_detect.py).
BILINEAR = {"patch_resize": "bilinear"}


@pytest.fixture(scope="session")
def pipe(untrained_runs):
    return FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"], detector_options=BILINEAR)


@pytest.fixture(scope="session")
def astronaut(fixtures_dir):
    return load_rgb(fixtures_dir / "astronaut.png")


@pytest.fixture(scope="session")
def result(pipe, astronaut):
    return pipe.analyze(astronaut, heatmaps=True)


def boxes(res):
    return np.array([[f["box"][k] for k in ("x", "y", "width", "height")] for f in res["faces"]])


# --- The result -----------------------------------------------------------------------------
def test_result_format(result):
    assert set(result) == {"faces", "timings_ms", "image"}
    assert result["image"] == {"width": 512, "height": 512}
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert list(face) == FACE_KEYS + ["heatmap"]
    assert set(face["box"]) == {"x", "y", "width", "height"}
    assert list(face["landmarks5"]) == spec.LANDMARKS5
    assert len(face["keypoints"]) == 68 and all(len(p) == 2 for p in face["keypoints"])
    assert set(face["beauty"]) == {"score", "score_1to5", "distribution"}
    assert json.loads(json.dumps(result)) == result  # plain JSON types only


def test_timings(result):
    ms = result["timings_ms"]
    assert list(ms) == list(pipeline.TIMING_KEYS)
    assert all(v >= 0 for v in ms.values())
    assert ms["detect"] > 0 and ms["beauty"] > 0 and ms["gradcam"] > 0
    assert sum(v for k, v in ms.items() if k != "total") <= ms["total"] + 1e-6


def test_beauty_is_the_expected_score(result, pipe, astronaut):
    face = result["faces"][0]
    p = np.array(face["beauty"]["distribution"])
    assert p.shape == (spec.BEAUTY["bins"],) and p.sum() == pytest.approx(1.0, abs=1e-5)
    assert face["beauty"]["score"] == pytest.approx(float(p @ np.arange(101)), abs=1e-9)
    assert face["beauty"]["score_1to5"] == pytest.approx(face["beauty"]["score"] / 20)
    # the same as the stages run by hand
    crops, squares = pipeline.crop(astronaut, result["faces"], "beauty", pipe.beauty_size)
    assert squares[0] == pytest.approx(pipeline.face_square(face["box"], "beauty"))
    again = pipeline.beauty(pipe.beauty_model, crops)[0]
    assert again["score"] == pytest.approx(face["beauty"]["score"], abs=1e-4)  # float32 eager vs tf.function


def test_detection_is_the_detect_stage(result, pipe, astronaut):
    faces = pipeline.detect(pipe.detector, astronaut, pipe.detector_options)
    assert [f["box"] for f in faces] == [f["box"] for f in result["faces"]]


def test_heatmap_sits_on_the_beauty_square(result, pipe):
    face = result["faces"][0]
    heat = face["heatmap"]
    x0, y0, side = pipeline.face_square(face["box"], "beauty")
    assert heat["square"] == pytest.approx({"x": x0, "y": y0, "side": side})
    assert heat["crop_size"] == pipe.beauty_size
    grid = np.array(heat["grid"])
    fh, fw = pipe.gradcam_models()[0].output_shape[1:3]
    assert grid.shape == (fh, fw) and grid.min() >= 0 and grid.max() == pytest.approx(1.0)


@pytest.mark.parametrize("fmt", ["68", "15"])
def test_keypoints_map_back_to_known_pixels(fmt, astronaut, result):
    """A keypoint model whose output is a constant gives points at hand-computed pixels."""
    count = spec.KEYPOINTS["formats"][fmt]["count"]
    uv = np.random.default_rng(0).uniform(0, 1, (count, 2)).astype(np.float32)
    size = spec.KEYPOINTS["input_size_px"]
    inputs = keras.Input((size, size, 3), name="image")
    dense = keras.layers.Dense(2 * count, name="points")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.zeros((3, 2 * count), np.float32), uv.reshape(-1)])
    const_pipe = FacePipeline(keypoint_model=model, keypoint_format=fmt, detector_options=BILINEAR)
    const = const_pipe.analyze(astronaut, mirror_keypoints=False)
    face = const["faces"][0]
    assert "beauty" not in face and "heatmap" not in face  # no beauty model: stage skipped
    assert face["box"] == result["faces"][0]["box"]
    b = face["box"]
    side_d = max(b["width"], b["height"])
    m, margin = spec.KEYPOINTS["formats"][fmt]["detector_to_points_box"], spec.KEYPOINTS["crop_margin"]
    side = m["scale"] * side_d * (1 + 2 * margin)
    x0 = b["x"] + b["width"] / 2 + m["dx"] * side_d - side / 2
    y0 = b["y"] + b["height"] / 2 + m["dy"] * side_d - side / 2
    np.testing.assert_allclose(face["keypoints"], np.stack([x0 + uv[:, 0] * side, y0 + uv[:, 1] * side], 1),
                               atol=1e-4)
    assert const["timings_ms"]["beauty"] == 0 and const["timings_ms"]["keypoints"] > 0
    # mirror averaging (the default): the constant's mirror image, un-mirrored, averaged with it
    perm = spec.MIRROR_PERMUTATION[fmt]
    avg = (uv + np.stack([1.0 - uv[perm, 0], uv[perm, 1]], 1)) / 2
    mirrored = const_pipe.describe(astronaut, [{"box": b}], mirror_keypoints=True)[0]["keypoints"]
    np.testing.assert_allclose(mirrored, np.stack([x0 + avg[:, 0] * side, y0 + avg[:, 1] * side], 1), atol=1e-4)
    assert const_pipe.describe(astronaut, [{"box": b}])[0]["keypoints"] == (
        mirrored if spec.KEYPOINTS["mirror_average"] else face["keypoints"])


# --- Every input kind -----------------------------------------------------------------------
def _png(img, path):
    img.save(path, format="PNG")
    return path


@pytest.fixture(scope="session")
def variants(tmp_path_factory, astronaut):
    """The astronaut in every input kind; values: (input, reference array, tolerance px)."""
    d = tmp_path_factory.mktemp("inputs")
    rgb_img = Image.fromarray(astronaut)
    gray = np.asarray(rgb_img.convert("L"))
    gray_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 200, np.uint8)])
    tall = astronaut[:, :400]  # not square, so a lost rotation would show
    out = {
        "path": (_png(rgb_img, d / "photo.png"), astronaut, 0),
        "bytes": ((d / "photo.png").read_bytes(), astronaut, 0),
        "array": (astronaut.copy(), astronaut, 0),
        "jpeg_named_png": (None, astronaut, BOX_TOL_LOSSY_PX),  # decoded by content, not extension
        "grayscale": (_png(Image.fromarray(gray), d / "gray.png"), gray_rgb, 0),
        "rgba": (_png(Image.fromarray(rgba, "RGBA"), d / "rgba.png"), spec.premultiply_alpha(rgba), 0),  # onto black
        "png16": (_png(Image.fromarray(gray.astype(np.uint16) * 257), d / "gray16.png"), gray_rgb, 0),
        "cmyk_jpeg": (None, astronaut, BOX_TOL_LOSSY_PX),
        "exif_rotated": (None, tall, BOX_TOL_LOSSY_PX),
    }
    rgb_img.save(d / "really_a_jpeg.png", format="JPEG", quality=95)
    out["jpeg_named_png"] = (d / "really_a_jpeg.png", astronaut, BOX_TOL_LOSSY_PX)
    rgb_img.convert("CMYK").save(d / "cmyk.jpg", format="JPEG", quality=95)
    out["cmyk_jpeg"] = (d / "cmyk.jpg", astronaut, BOX_TOL_LOSSY_PX)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display; the stored pixels are rotated CCW
    Image.fromarray(tall).transpose(Image.Transpose.ROTATE_90).save(d / "rotated.jpg", format="JPEG",
                                                                    quality=95, exif=exif)
    out["exif_rotated"] = (d / "rotated.jpg", tall, BOX_TOL_LOSSY_PX)
    return out


@pytest.fixture(scope="session")
def plain_pipe():
    return FacePipeline()  # detector only: keeps the many input-kind runs cheap


@pytest.fixture(scope="session")
def reference_boxes(plain_pipe, variants):
    refs = {}
    for _, ref, _ in variants.values():
        key = (ref.shape, ref.tobytes()[:4096])
        if key not in refs:
            refs[key] = boxes(plain_pipe.analyze(ref))
    return refs


@pytest.mark.parametrize("kind", ["path", "bytes", "array", "jpeg_named_png", "grayscale", "rgba", "png16",
                                  "cmyk_jpeg", "exif_rotated"])
def test_every_input_kind(kind, plain_pipe, variants, reference_boxes):
    source, ref, tol = variants[kind]
    if kind == "cmyk_jpeg":
        assert Image.open(source).mode == "CMYK"
    res = plain_pipe.analyze(source)
    assert res["image"] == {"width": ref.shape[1], "height": ref.shape[0]}
    want = reference_boxes[(ref.shape, ref.tobytes()[:4096])]
    got = boxes(res)
    assert got.shape == want.shape == (1, 4)
    np.testing.assert_allclose(got, want, atol=tol if tol else 1e-9)


# --- Nothing found, errors, options ---------------------------------------------------------
def test_no_face_gives_an_empty_list(pipe):
    res = pipe.analyze(np.full((120, 160, 3), 90, np.uint8), heatmaps=True)
    assert res["faces"] == [] and res["image"] == {"width": 160, "height": 120}
    assert res["timings_ms"]["beauty"] == res["timings_ms"]["keypoints"] == res["timings_ms"]["gradcam"] == 0


def test_non_image_raises_naming_the_file(pipe, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    with pytest.raises(ImageDecodeError, match="notes.txt"):
        pipe.analyze(bad)
    with pytest.raises(ImageDecodeError, match="missing.jpg"):
        pipe.analyze(tmp_path / "missing.jpg")


def test_min_face_size_per_call(pipe, astronaut):
    assert pipe.analyze(astronaut, min_face_size=300)["faces"] == []  # the face is ~107 px


def test_max_faces_keeps_the_most_confident(pipe, astronaut, monkeypatch):
    fake = [{"box": {"x": 10.0 * i, "y": 10.0, "width": 40.0, "height": 40.0}, "score": 0.99 - 0.1 * i,
             "landmarks5": {n: [20.0, 20.0] for n in spec.LANDMARKS5}} for i in range(3)]
    monkeypatch.setattr(pipeline, "detect", lambda *a, **k: [dict(f) for f in fake])
    res = pipe.analyze(astronaut, max_faces=2, min_confidence=0.0)  # max_faces counts after the face filter
    assert [f["score"] for f in res["faces"]] == [0.99, 0.89]
    kept = [s for s in (0.99, 0.89, 0.79) if s >= spec.FACE_FILTER["min_confidence"]][:2]  # 40 px boxes: size passes
    assert [f["score"] for f in pipe.analyze(astronaut, max_faces=2)["faces"]] == kept
    assert all("beauty" in f and "keypoints" in f for f in res["faces"])


def test_per_face_limit_describes_the_largest_faces(pipe, astronaut, monkeypatch):
    sides = [40.0, 90.0, 60.0, 90.0]  # two equal sides: the earlier face wins
    fake = [{"box": {"x": 100.0 * i, "y": 10.0, "width": s, "height": s * 0.8}, "score": 0.99 - 0.01 * i,
             "landmarks5": {n: [20.0, 20.0] for n in spec.LANDMARKS5}} for i, s in enumerate(sides)]
    assert [f["score"] for f in pipeline.per_face_targets(fake, 2)] == [0.98, 0.96]
    assert [f["score"] for f in pipeline.per_face_targets(fake, 1)] == [0.98]
    assert pipeline.per_face_targets(fake, None) is fake and pipeline.per_face_targets(fake, 9) is fake
    monkeypatch.setattr(pipeline, "detect", lambda *a, **k: [dict(f) for f in fake])
    full = pipe.analyze(astronaut, heatmaps=True)["faces"]
    res = pipe.analyze(astronaut, heatmaps=True, per_face_limit=2)["faces"]
    assert [f["score"] for f in res] == [f["score"] for f in fake]  # every face returned, same order
    described = [i for i, f in enumerate(res) if "beauty" in f]
    assert described == [1, 3]
    for i, f in enumerate(res):  # the described faces get the numbers of the unlimited call
        assert ("keypoints" in f) == ("heatmap" in f) == (i in described)
        if i in described:
            assert f["beauty"]["score"] == pytest.approx(full[i]["beauty"]["score"], abs=1e-4)
            np.testing.assert_allclose(f["keypoints"], full[i]["keypoints"], atol=1e-3)
    assert all("beauty" not in f for f in pipe.analyze(astronaut, per_face_limit=0)["faces"])


@pytest.mark.parametrize("kwargs, match", [({"max_faces": 0}, "max_faces"), ({"heatmaps": "yes"}, "heatmaps"),
                                           ({"per_face_limit": -1}, "per_face_limit"),
                                           ({"per_face_limit": 1.5}, "per_face_limit"),
                                           ({"min_face_size": -5}, "min_face_size"),
                                           ({"min_confidence": 2}, "min_confidence"),
                                           ({"min_box_size": -1}, "min_box_size")])
def test_bad_call_options_name_the_option(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe.analyze(np.zeros((20, 20, 3), np.uint8), **kwargs)


def test_bad_detector_option_names_the_key():
    with pytest.raises(ValueError, match="threshold_xnet"):
        FacePipeline(detector_options={"threshold_xnet": 0.5})


def test_heatmaps_need_a_beauty_model(plain_pipe):
    with pytest.raises(ValueError, match="beauty model"):
        plain_pipe.analyze(np.zeros((20, 20, 3), np.uint8), heatmaps=True)


def test_keypoint_format_is_checked(untrained_runs):
    from facepack.runs import load_run

    model, _ = load_run(untrained_runs["keypoints"])
    with pytest.raises(ValueError, match="keypoint_format '15' expects 15 points"):
        pipeline.keypoint_count(model, "15")
    assert pipeline.keypoint_count(model, "68") == 68


def test_from_runs_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--beauty"):
        FacePipeline.from_runs(beauty_run=tmp_path / "nope")
    import facepack.runs

    monkeypatch.setattr(facepack.runs, "SHIPPED_ROOT", tmp_path / "shipped")
    with pytest.raises(ValueError, match="train_beauty.py"):
        FacePipeline.from_runs(runs_root=tmp_path / "runs")


def test_bytes_input_is_named_in_errors(pipe):
    with pytest.raises(ImageDecodeError, match="bytes"):
        pipe.analyze(io.BytesIO(b"abc").getvalue())


def test_compiled_models_give_the_eager_numbers(pipe, astronaut, result):
    crops, squares = pipeline.crop(astronaut, result["faces"], "beauty", pipe.beauty_size)
    eager = pipeline.beauty(pipe.beauty_model, crops)[0]
    compiled = pipeline.beauty(pipe.predictor("beauty"), crops)[0]
    np.testing.assert_allclose(compiled["distribution"], eager["distribution"], atol=1e-5)  # float32: graph fusions reorder sums
    kp_crops, kp_squares = pipeline.crop(astronaut, result["faces"], "keypoints", pipe.keypoint_size)
    np.testing.assert_allclose(pipeline.keypoints(pipe.predictor("keypoints"), kp_crops, kp_squares),
                               pipeline.keypoints(pipe.keypoint_model, kp_crops, kp_squares), atol=1e-4)


def test_attributes_model_needs_matching_names_and_thresholds():
    """FacePipeline's attributes settings are checked against the model's K outputs; describe()
    adds {name: {probability, on}} per face (the page test compares the values with the JS)."""
    import keras

    from facepack.models.attributes import attribute_results, build_attributes_model

    keras.utils.set_random_seed(0)
    model = build_attributes_model(keras, 3, "small_cnn", 16)
    names, thresholds = ["a", "b", "c"], [0.2, 0.5, 0.8]
    with pytest.raises(ValueError, match="2 names and 3 thresholds for a model with 3 outputs"):
        FacePipeline(attributes_model=model, attributes={"names": names[:2], "thresholds": thresholds})
    with pytest.raises(ValueError, match="needs attributes="):
        FacePipeline(attributes_model=model)
    with pytest.raises(ValueError, match="crop_rule must be one of"):
        FacePipeline(attributes_model=model, attributes={"names": names, "thresholds": thresholds, "crop_rule": "hat"})
    pipe = FacePipeline(attributes_model=model, attributes={"names": names, "thresholds": thresholds}, compiled=False)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    faces = pipe.describe(rgb, [{"box": {"x": 10.0, "y": 8.0, "width": 20.0, "height": 24.0}}])
    crops, _ = pipeline.crop(rgb, faces, "beauty", 16)
    assert faces[0]["attributes"] == attribute_results(np.asarray(model(crops)), names, thresholds)[0]
