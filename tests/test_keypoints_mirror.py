"""Test-time mirror averaging of the keypoint model: the pipeline's mirror_keypoints (Python,
facepack/pipeline.py:keypoints / mirror_average) and analyze option mirrorKeypoints (JS,
static/facepack/keypoints.js:keypointOutputs / mirrorAverage), with the left/right permutation
defined once in facepack/spec.py:MIRROR_PERMUTATION and read by the JS from the manifest.
"""

from __future__ import annotations

import numpy as np
import pytest

from facepack import spec
from facepack.pipeline import FacePipeline, keypoints, mirror_average
from jsharness import (STAGE_KEYPOINT_TOL_PX, build_parity_bundle, detections_only, node_ready, parity_photos,
                       run_node, write_raw)

# The parity model's points move by more than this between the plain and the mirrored result on
# the fixture faces (measured 8.5 px on astronaut, 4.8 px on einstein; JS vs Python 4-9e-5 px either
# way), so a side that ignored the option could not pass the parity check at STAGE_KEYPOINT_TOL_PX.
MIRROR_CHANGES_POINTS_PX = 1.0


@pytest.mark.parametrize("fmt", sorted(spec.MIRROR_PERMUTATION))
def test_permutation_is_an_involution_swapping_the_eyes(fmt):
    perm = np.asarray(spec.MIRROR_PERMUTATION[fmt])
    f = spec.KEYPOINTS["formats"][fmt]
    assert sorted(perm) == list(range(f["count"]))
    np.testing.assert_array_equal(perm[perm], np.arange(f["count"]))
    assert perm[f["left_eye_outer"]] == f["right_eye_outer"] and perm[f["right_eye_outer"]] == f["left_eye_outer"]
    if fmt == "68":  # whole eyes map onto each other (the iBUG eye contours run in opposite directions)
        (a0, a1), (b0, b1) = spec.IBUG68_GROUPS["right_eye"], spec.IBUG68_GROUPS["left_eye"]
        assert sorted(perm[a0:a1]) == list(range(b0, b1)) and sorted(perm[b0:b1]) == list(range(a0, a1))
    # the manifest carries this very table (the JS repeats no constant)
    assert spec.spec_dict()["mirror_permutation"][fmt] == list(perm)


def test_mirror_average_known_answers():
    rng = np.random.default_rng(0)
    perm = spec.MIRROR_PERMUTATION["68"]
    p = rng.uniform(0.1, 0.9, (3, 68, 2))
    exact_mirror = np.stack([1.0 - p[..., 0], p[..., 1]], -1)[:, perm]  # what a mirror-equivariant model gives
    np.testing.assert_allclose(mirror_average(p, exact_mirror, perm), p, atol=1e-15)
    q = rng.uniform(0.1, 0.9, (3, 68, 2))
    out = mirror_average(p, q, perm)
    # point 36 (the subject's right outer eye corner) averages with the mirror's point 45, x flipped
    np.testing.assert_allclose(out[:, 36], (p[:, 36] + np.stack([1 - q[:, 45, 0], q[:, 45, 1]], -1)) / 2, atol=1e-15)
    with pytest.raises(ValueError, match=r"mirror_average: expected two \(N, 68, 2\) arrays"):
        mirror_average(p, q[:2], perm)


def test_keypoints_runs_one_batch_of_crops_and_mirrors():
    rng = np.random.default_rng(1)
    crops = rng.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    calls = []

    def model(x):  # points depend on the pixels, not mirror-symmetric
        calls.append(np.array(x))
        return np.tile(x.mean(axis=(1, 3))[:, :, None] / 255.0, (1, 1, 2 * 68 // 8)).reshape(len(x), -1)[:, :136]

    squares = [(10.0, 20.0, 50.0), (0.0, 0.0, 8.0)]
    perm = spec.MIRROR_PERMUTATION["68"]
    got = np.asarray(keypoints(model, crops, squares, perm))
    assert len(calls) == 1 and calls[0].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(calls[0][2:], crops[:, :, ::-1])
    direct, mirrored = (np.asarray(model(x)).reshape(2, 68, 2) for x in (crops, crops[:, :, ::-1]))
    want = mirror_average(direct, mirrored, perm)
    for k, (x0, y0, side) in enumerate(squares):
        np.testing.assert_allclose(got[k], want[k] * side + [x0, y0], atol=1e-9)
    plain = np.asarray(keypoints(model, crops, squares))
    assert calls[-1].shape == (2, 8, 8, 3) and not np.allclose(plain, got)


@pytest.fixture(scope="session")
def parity_models(tmp_path_factory, fixtures_dir):
    return build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)


@pytest.fixture(scope="module")
def mirror_runs(parity_models, fixtures_dir, tmp_path_factory):
    """Python describe (keypoint model only) on its own detections of two fixture photos, with and
    without mirror_keypoints, and the JS keypoint stage on the same faces (one Node process)."""
    ok, why = node_ready()
    if not ok:
        pytest.fail(f"Node is needed for the mirrorKeypoints parity test: {why}")
    from facepack.runs import load_run

    model, info = load_run(parity_models["keypoints_run"])
    pipe = FacePipeline(None, model, keypoint_format=str(info.get("format", "68")))
    photos = {k: v for k, v in parity_photos(fixtures_dir, large=False).items() if k in ("astronaut", "einstein")}
    tmp = tmp_path_factory.mktemp("kp_mirror")
    py, images = {}, []
    for name, rgb in photos.items():
        faces = detections_only(pipe.analyze(rgb)["faces"])
        assert faces, f"{name}: no face detected"
        py[name] = {key: pipe.describe(rgb, [dict(f) for f in faces], mirror_keypoints=flag)
                    for key, flag in (("mirror", True), ("plain", False))}
        images.append({**write_raw(rgb, tmp / f"{name}.rgb", name), "faces": faces})
    js = run_node("keypoints_mirror.mjs", {"bundle": str(parity_models["bundle"]), "images": images}, timeout=300)
    return py, js, pipe


def _max_px(a_faces, b_faces) -> float:
    assert len(a_faces) == len(b_faces)
    return max(float(np.abs(np.asarray(a["keypoints"]) - np.asarray(b["keypoints"])).max())
               for a, b in zip(a_faces, b_faces))


def test_js_mirror_keypoints_equal_python(mirror_runs):
    py, js, _ = mirror_runs
    assert js["backend"] == "wasm" and js["tensors_left"] == 0
    for result in js["results"]:
        name = result["name"]
        for key in ("mirror", "plain"):
            err = _max_px(py[name][key], result[key])
            assert err <= STAGE_KEYPOINT_TOL_PX, f"{name} {key}: JS keypoints off by {err:.2e} px"
        moved = _max_px(py[name]["mirror"], py[name]["plain"])
        assert moved > MIRROR_CHANGES_POINTS_PX, f"{name}: mirroring moved the points by only {moved:.3f} px"


def test_option_default_comes_from_the_spec_on_both_sides(mirror_runs):
    _, js, pipe = mirror_runs
    default = spec.KEYPOINTS["mirror_average"]
    assert js["defaults"] == {"spec": default, "flipped": not default, "given": not default}
    assert js["permutation"] == spec.MIRROR_PERMUTATION["68"]
    assert all(e and "mirrorKeypoints" in e for e in js["errors"]), js["errors"]
    with pytest.raises(ValueError, match="mirror_keypoints must be True, False or None, got 'yes'"):
        pipe.analyze(np.zeros((32, 32, 3), np.uint8), mirror_keypoints="yes")
    faces = [{"box": {"x": 4.0, "y": 4.0, "width": 20.0, "height": 20.0}}]
    rgb = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    unset = pipe.describe(rgb, [dict(f) for f in faces])[0]["keypoints"]
    assert unset == pipe.describe(rgb, [dict(f) for f in faces], mirror_keypoints=default)[0]["keypoints"]
