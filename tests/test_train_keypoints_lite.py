"""training/train_keypoints_lite.py and the Lite0 keypoint model (issue 19): the cached-feature
split is exact, the model fits the 1 MB float16 budget, augmented copies are reproducible, the
pseudo-label filter refuses what it cannot filter, and flag errors are one line (exit 2). No test
runs train() itself (a run needs the ImageNet weights and minutes): the shipped model's card and
run.json are checked in tests/test_shipped_models.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training"))

BUNDLE_PARAMS_MAX = 500_000  # float16 bundle <= 1 MB (tests/test_shipped_models.py BUNDLE_LIMIT_BYTES)
SPLIT_TOL = 1e-4  # crop units: full model vs frozen part -> top (float32 rounding only)
SIZE = 96


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.fixture(scope="module")
def lite(keras):
    from facepack.models.keypoints import build_lite_keypoint_model

    return build_lite_keypoint_model(keras, 68, SIZE, last_block=8, head_filters=32)


def test_lite_model_fits_the_bundle_budget(lite):
    assert lite.output_shape == (None, 136)
    assert lite.count_params() == 421_684
    assert lite.count_params() <= BUNDLE_PARAMS_MAX
    assert lite.get_layer("block7_project_bn").output.shape[1:] == (6, 6, 80)  # stride 16


@pytest.mark.parametrize("start", [3, 5])
def test_frozen_part_then_top_equals_the_full_model(keras, lite, start):
    """What training sees (cached maps of the frozen part -> top) is what the shipped model computes."""
    import train_keypoints_lite as T
    from facepack.models.keypoints import build_lite_keypoint_model

    rng = np.random.default_rng(0)
    for layer in lite.layers:  # non-trivial BN statistics, so a mis-wired copy cannot pass
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                               rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 1.5, v.shape)])
    cut = f"block{start}_expand_conv"
    extractor = keras.Model(lite.input, lite.get_layer(cut).input)
    top = build_lite_keypoint_model(keras, 68, SIZE, 8, 32, start_block=start)
    from facepack.models.common import copy_weights_by_name

    with pytest.raises(ValueError, match="layer 'input_norm' of the source model has no twin in the target"):
        copy_weights_by_name(lite, top)
    assert copy_weights_by_name(lite, top, skip_missing=True) == sum(1 for layer in top.layers if layer.get_weights())
    x = rng.uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    want = np.asarray(lite.predict(x, verbose=0))
    got = np.asarray(top.predict(np.asarray(extractor.predict(x, verbose=0)), verbose=0))
    np.testing.assert_allclose(got, want, atol=SPLIT_TOL)


def test_augmented_copies_are_reproducible_and_copy_zero_is_only_mirrored():
    import train_keypoints_lite as T
    from facepack import spec

    rng = np.random.default_rng(1)
    ctx = rng.integers(0, 256, (2, 2 * SIZE, 2 * SIZE, 3), dtype=np.uint8)
    uv = rng.uniform(0.2, 0.8, (2, 68, 2)).astype(np.float32)
    runs = [list(T.augmented_copies(ctx, uv, SIZE, 2, T.AUGMENT["mild"], 0, "68")) for _ in range(2)]
    for (c1, r1, x1, y1), (c2, r2, x2, y2) in zip(*runs):
        assert c1 == c2 and np.array_equal(r1, r2)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    _, _, x0, y0 = runs[0][0]  # copy 0: the centre crop, maybe mirrored
    perm = spec.MIRROR_PERMUTATION["68"]
    for k in range(2):
        centre = ctx[k, SIZE // 2: SIZE // 2 + SIZE, SIZE // 2: SIZE // 2 + SIZE].astype(np.float32)
        mirrored = not np.allclose(x0[k], centre, atol=1e-3)
        if mirrored:
            np.testing.assert_allclose(x0[k], centre[:, ::-1], atol=1e-3)
            want = np.stack([1 - uv[k, :, 0], uv[k, :, 1]], 1)[perm]
        else:
            want = uv[k]
        np.testing.assert_allclose(y0[k], want, atol=1e-5)


def test_pseudo_data_keeps_faces_whose_teachers_agree(tmp_path):
    import train_keypoints_lite as T

    path = tmp_path / "pl.npz"
    np.savez(path, root=str(tmp_path), names=np.array(["a.jpg", "b.jpg", "c.jpg"]),
             points=np.zeros((3, 68, 2), np.float32), disagreement=np.array([0.03, 0.2, 0.1], np.float32),
             teachers=np.array(["faceapi", "model"]), model="runs/x", command="pseudo_labels.py label --faceapi")
    data, keep, info = T.pseudo_data(path, 0.10)
    assert keep.tolist() == [0, 2]
    assert data.images[1] == tmp_path / "Images" / "b.jpg" and data.format == "68"
    assert info == {"file": str(path), "teachers": ["faceapi", "model"], "model": "runs/x",
                    "command": "pseudo_labels.py label --faceapi", "kept": 2, "faces": 3, "max_disagreement": 0.1}
    with pytest.raises(ValueError, match="--pseudo: no face .* within --pseudo-max-disagreement 0.01"):
        T.pseudo_data(path, 0.01)


@pytest.mark.parametrize("spread", [np.nan, 0.0])  # NaN: pseudo_labels.py now; 0: files written before
def test_pseudo_data_of_one_teacher_cannot_be_filtered(tmp_path, spread):
    import train_keypoints_lite as T

    path = tmp_path / "pl.npz"
    np.savez(path, root=str(tmp_path), names=np.array(["a.jpg", "b.jpg"]), points=np.zeros((2, 68, 2), np.float32),
             disagreement=np.full(2, spread, np.float32), teachers=np.array(["model"]))
    with pytest.raises(ValueError, match=r"was labelled by one teacher \(model\), so its faces cannot be filtered "
                                         r"by --pseudo-max-disagreement 0.1: give --pseudo-max-disagreement inf"):
        T.pseudo_data(path, 0.1)
    _, keep, info = T.pseudo_data(path, float(T.parse_args(["--data", "x", "--pseudo-max-disagreement", "inf"])
                                              ["pseudo_max_disagreement"]))
    assert keep.tolist() == [0, 1] and info["max_disagreement"] is None and info["teachers"] == ["model"]


def test_config_errors_name_the_flag():
    import train_keypoints_lite as T

    with pytest.raises(ValueError, match="--freeze-until must be in 1..--last-block"):
        T.check_config(T.parse_args(["--data", "x", "--freeze-until", "9"]))
    with pytest.raises(ValueError, match="--copies and --epochs must be >= 1"):
        T.check_config(T.parse_args(["--data", "x", "--copies", "0"]))
    for bad in ("0", "-1"):
        with pytest.raises(ValueError, match=f"--stop-after must be >= 1 \\(epochs\\), got {bad}"):
            T.check_config(T.parse_args(["--data", "x", "--stop-after", bad]))
    assert T.check_config(T.parse_args(["--data", "x", "--stop-after", "1"]))["stop_after"] == 1


def test_the_command_line_reports_a_flag_error_in_one_line():
    """Through facepack.cli.run_cli: `error: ...` on one line, exit status 2, no traceback."""
    proc = subprocess.run([sys.executable, str(ROOT / "training" / "train_keypoints_lite.py"), "--data", "x",
                           "--stop-after", "0"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == "error: --stop-after must be >= 1 (epochs), got 0"
    assert "Traceback" not in proc.stderr
