"""facepack.metrics against hand-computed values."""

import math

import numpy as np
import pytest

from facepack import metrics, spec


def test_beauty_metrics_hand_computed():
    pred = [2.0, 3.0, 4.0, 5.0]
    true = [1.0, 3.0, 5.0, 5.0]
    m = metrics.beauty_metrics(pred, true)
    # errors 1, 0, -1, 0 -> MAE 0.5, RMSE sqrt(2/4)
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(math.sqrt(0.5))
    # Pearson by hand: mean p 3.5, mean t 3.5; dp=(-1.5,-.5,.5,1.5) dt=(-2.5,-.5,1.5,1.5)
    cov = 3.75 + 0.25 + 0.75 + 2.25
    sp = math.sqrt(2.25 + 0.25 + 0.25 + 2.25)
    st = math.sqrt(6.25 + 0.25 + 2.25 + 2.25)
    assert m["pc"] == pytest.approx(cov / (sp * st))
    assert m["n"] == 4


def test_beauty_metrics_errors():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.beauty_metrics([1, 2], [1])
    with pytest.raises(ValueError, match="no samples"):
        metrics.beauty_metrics([], [])
    assert math.isnan(metrics.beauty_metrics([3, 3], [2, 4])["pc"])  # constant prediction


def _face68(scale=1.0):
    pts = np.zeros((68, 2))
    pts[36] = [0.0, 0.0]
    pts[45] = [10.0 * scale, 0.0]  # inter-ocular distance 10 * scale
    return pts


def test_nme_hand_computed():
    true = np.stack([_face68(), _face68(2.0)])
    pred = true.copy()
    pred[0, :, 0] += 1.0  # every point 1 px off -> NME 1/10
    pred[1, :, 1] += 4.0  # every point 4 px off, IOD 20 -> NME 0.2
    m = metrics.keypoint_metrics(pred, true, "68")
    assert m["nme_mean"] == pytest.approx((0.1 + 0.2) / 2)
    assert m["nme_median"] == pytest.approx(0.15)
    assert m["failure_rate"] == pytest.approx(0.5)  # 0.2 > 0.10, 0.1 is not > 0.10
    assert m["mean_error_px"] == pytest.approx(2.5)


def test_nme_ignores_missing_points_and_uses_kaggle_eye_corners():
    true = np.zeros((1, 15, 2))
    info = spec.KEYPOINTS["formats"]["15"]
    true[0, info["right_eye_outer"]] = [20.0, 0.0]  # IOD 20
    true[0, 0] = np.nan  # missing point: not counted
    pred = np.nan_to_num(true.copy())
    pred[0, :, 0] += 2.0
    m = metrics.keypoint_metrics(pred, true, "15")
    assert m["nme_mean"] == pytest.approx(2.0 / 20.0)
    assert m["mean_error_px"] == pytest.approx(2.0)


def test_nme_unnormalisable_face_is_reported():
    true = np.stack([_face68(), _face68()])
    true[1, 36] = np.nan
    m = metrics.keypoint_metrics(true + 0.5, true, "68")
    assert m["n"] == 1 and m["n_unnormalised"] == 1


def test_ced_curve():
    x, y = metrics.cumulative_error_curve(np.array([0.05, 0.15, np.nan]), max_nme=0.2, steps=5)
    assert list(x) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert list(y) == pytest.approx([0.0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_mean_shape_baseline():
    train = np.array([[[0.0, 0.0]], [[1.0, 2.0]]])
    base = metrics.mean_shape_baseline(train, np.zeros((3, 1, 2)))
    assert base.shape == (3, 1, 2) and base[2, 0].tolist() == [0.5, 1.0]
