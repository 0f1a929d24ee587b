"""training/train_attributes.py, facepack/models/attributes.py and facepack/data/celeba.py: the
synthetic CelebA layout, the loader's errors, thresholds and metrics on hand-made numbers, and one
end-to-end synthetic run that must learn (macro F1 on the test part well above the baselines)."""

import csv
import json

import numpy as np
import pytest

pytest.importorskip("keras")

from facepack.data import celeba  # noqa: E402
from facepack.models import attributes as attr  # noqa: E402

N_SYNTHETIC = 600  # images in the end-to-end run (70 / 15 / 15 % train / val / test)
MIN_MACRO_F1 = 0.35  # test part, measured 0.55 (synthetic preset, seed 0)
MIN_MARGIN_OVER_MAJORITY = 0.25  # macro F1 points above the majority-class baseline (0.077 here)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return celeba.make_synthetic_celeba(tmp_path_factory.mktemp("celeba") / "data", n=N_SYNTHETIC, seed=0)


@pytest.fixture(scope="module")
def run_dir(synthetic_root, tmp_path_factory):
    from training import train_attributes

    return train_attributes.main(["--data", str(synthetic_root), "--runs", str(tmp_path_factory.mktemp("runs")),
                                  *_synthetic_preset_flags(train_attributes)])


def _synthetic_preset_flags(train_attributes):
    """--data points at a synthetic folder, so pass the synthetic preset explicitly (as a run without --data)."""
    s = train_attributes.SYNTHETIC
    return ["--backbone", s["backbone"], "--input-size", str(s["input_size"]), "--weights", s["weights"],
            "--head-epochs", "0", "--epochs", str(s["epochs"]), "--batch-size", str(s["batch_size"]),
            "--lr", str(s["lr"]), "--crop", s["crop"], "--no-flip"]


def test_synthetic_layout_is_the_release_layout(synthetic_root):
    lines = (synthetic_root / celeba.ATTR_FILE).read_text().splitlines()
    assert lines[0] == str(N_SYNTHETIC) and tuple(lines[1].split()) == celeba.ATTRIBUTES
    first = lines[2].split()
    assert first[0] == "000001.jpg" and set(first[1:]) <= {"-1", "1"} and len(first) == 41
    parts = [line.split()[1] for line in (synthetic_root / celeba.PARTITION_FILE).read_text().splitlines()]
    assert {p: parts.count(p) for p in "012"} == {"0": 420, "1": 90, "2": 90}
    assert "SYNTHETIC" in (synthetic_root / "README.txt").read_text()
    data = celeba.load_celeba(synthetic_root)
    assert data.synthetic and data.labels.shape == (N_SYNTHETIC, 40) and set(np.unique(data.labels)) == {0, 1}
    rates = data.labels.mean(axis=0)
    assert rates.min() >= 0.05 and rates.max() <= 0.92  # SYNTHETIC_RATE_RANGE 0.10..0.85, sampled
    assert "non-commercial" in celeba.TERMS and data.terms() == celeba.SYNTHETIC_TERMS


def test_attributes_are_drawn_where_they_are_on():
    on = np.zeros(40, np.uint8)
    on[[0, 13, 39]] = 1
    img = celeba.draw_attributes(on, np.random.default_rng(0)).astype(np.int64)
    blank = celeba.draw_attributes(np.zeros(40), np.random.default_rng(0)).astype(np.int64)  # same background
    changed = np.abs(img - blank).max(axis=2) > 0
    for i in range(40):
        x0, y0, x1, y1 = celeba.cell_box(i, 48, 48)
        assert changed[y0:y1, x0:x1].mean() > 0.25 if on[i] else not changed[y0:y1, x0:x1].any(), i
    assert changed.sum() == sum(changed[y0:y1, x0:x1].sum() for y0, x0, y1, x1 in
                                [(b[1], b[0], b[3], b[2]) for b in (celeba.cell_box(i, 48, 48) for i in (0, 13, 39))])


def test_loader_names_the_bad_line(tmp_path):
    root = celeba.make_synthetic_celeba(tmp_path / "d", n=10, seed=1)
    path = root / celeba.ATTR_FILE
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("-1", "0", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(celeba.DatasetError, match=r"list_attr_celeba.txt:5: attribute values must be -1 or 1"):
        celeba.load_celeba(root)
    with pytest.raises(celeba.DatasetError, match="img_align_celeba/ is missing"):
        celeba.load_celeba(tmp_path)


def test_thresholds_metrics_and_baselines_on_known_numbers():
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    probs = np.array([[0.9, 0.1], [0.3, 0.2], [0.2, 0.3], [0.1, 0.25]])
    # attribute 0: best F1 (1.0) for thresholds in (0.2, 0.3]; nearest 0.5 on the grid is 0.3
    # attribute 1: its positive scores 0.25, below a negative's 0.3: best F1 0.667 for t in (0.2, 0.25]
    t = attr.choose_thresholds(probs, labels)
    assert t.tolist() == [0.3, 0.24]
    m = attr.attribute_metrics(probs >= t, labels, ["a", "b"])
    assert m["per_attribute"]["a"] == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0,
                                       "positives": 2, "predicted": 2}
    assert m["per_attribute"]["b"]["precision"] == pytest.approx(0.5) and m["macro_f1"] == pytest.approx(5 / 6)
    assert attr.choose_thresholds(probs, labels, "prior", [0.5, 0.01]).tolist() == [0.5, 0.02]
    b = attr.baselines(np.array([[1, 0], [1, 0], [0, 0]]), labels, ["a", "b"])
    assert b["all_negative"]["macro_f1"] == 0.0
    assert b["majority"]["macro_f1"] == pytest.approx(2 * 0.5 / 1.5 / 2)  # "a" always on: P 0.5, R 1
    w = attr.positive_weights(np.array([[1, 0], [0, 0], [0, 0], [0, 0]]))
    assert w.tolist() == [3.0, attr.MAX_POS_WEIGHT]
    rows = attr.attribute_results(np.array([[0.31, 0.05]]), ["a", "b"], t)
    assert rows == [{"a": {"probability": 0.31, "on": True}, "b": {"probability": 0.05, "on": False}}]


def test_focal_loss_down_weights_easy_examples():
    import keras

    y = np.array([[1.0, 0.0]], np.float32)
    easy, hard = np.array([[0.9, 0.1]], np.float32), np.array([[0.4, 0.6]], np.float32)
    bce, focal = attr.make_loss(keras, "bce"), attr.make_loss(keras, "focal")
    ratio_easy = float(focal(y, easy)[0]) / float(bce(y, easy)[0])
    ratio_hard = float(focal(y, hard)[0]) / float(bce(y, hard)[0])
    assert ratio_easy == pytest.approx(0.1 ** attr.FOCAL_GAMMA, rel=1e-4) and ratio_hard > 10 * ratio_easy
    weighted = attr.make_loss(keras, "bce", pos_weight=[2.0, 2.0])
    assert float(weighted(y, easy)[0]) == pytest.approx(-np.log(0.9) * 2 / 2 - np.log(0.9) / 2, rel=1e-5)


def test_synthetic_run_learns_and_records_names_thresholds_and_terms(run_dir):
    info = json.loads((run_dir / "run.json").read_text())
    assert info["model"] == "attributes" and info["synthetic"] is True and info["dataset"]["synthetic"] is True
    assert info["dataset"]["terms"] == celeba.SYNTHETIC_TERMS
    assert info["attributes"]["names"] == list(celeba.ATTRIBUTES)
    thresholds = np.array(info["attributes"]["thresholds"])
    assert thresholds.shape == (40,) and (thresholds > 0).all() and (thresholds < 1).all()
    m, base = info["metrics"], info["baselines"]
    assert base["all_negative"]["macro_f1"] == 0.0
    assert m["macro_f1"] >= MIN_MACRO_F1, m["macro_f1"]
    assert m["macro_f1"] >= base["majority"]["macro_f1"] + MIN_MARGIN_OVER_MAJORITY, (m["macro_f1"], base)
    assert m["n"] == 90 and 0 < m["macro_precision"] <= 1 and 0 < m["macro_recall"] <= 1
    with open(run_dir / "attributes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["attribute"] for r in rows] == list(celeba.ATTRIBUTES) + ["macro"]
    assert float(rows[-1]["f1"]) == pytest.approx(m["macro_f1"], abs=1e-4)
    assert (run_dir / "attributes.png").stat().st_size > 10_000 and (run_dir / "model.keras").is_file()


def test_run_exports_with_names_thresholds_and_terms(run_dir, tmp_path):
    from facepack.export.attributes import export_attributes_run

    manifest = export_attributes_run(run_dir, tmp_path / "bundle", backends=(), log=None)  # tf_keras read-back
    entry = manifest["models"]["attributes"]
    info = json.loads((run_dir / "run.json").read_text())
    assert entry["attributes"]["names"] == info["attributes"]["names"]
    assert entry["attributes"]["thresholds"] == info["attributes"]["thresholds"]
    assert manifest["synthetic"] is True and entry["run"]["synthetic"] is True
    assert celeba.SYNTHETIC_TERMS in entry["run"]["license"] and entry["input_size"] == 48
    assert entry["parity"]["max_abs_diff"] <= 1e-5  # probabilities 0..1, tf_keras twin vs Keras 3
    with pytest.raises(ValueError, match=r"no run\.json \(a finished train_attributes\.py run"):
        export_attributes_run(tmp_path, tmp_path / "b2", backends=(), log=None)


def test_presets_and_flag_errors():
    from training import train_attributes as ta

    def cfg(argv):
        return ta.resolve_config(ta.parse_args(argv))

    synthetic, real = cfg([]), cfg(["--data", "x"])
    assert (synthetic["backbone"], synthetic["crop"], synthetic["flip"], synthetic["weights"]) == ("small_cnn", "image", False, None)
    assert (real["backbone"], real["crop"], real["flip"], real["thresholds"]) == ("mobilenet_v2", "face", True, "f1")
    assert cfg(["--data", "x", "--weights", "efficientnet-lite0"])["backbone"] == "efficientnet_lite0"
    with pytest.raises(ValueError, match="--epochs must be >= 1, got 0"):
        cfg(["--epochs", "0"])
    with pytest.raises(ValueError, match="--weights must be imagenet, none"):
        cfg(["--data", "x", "--weights", "nowhere.h5"])
    import keras

    with pytest.raises(ValueError, match="--weights for --backbone small_cnn must be none"):
        attr.build_attributes_model(keras, 40, "small_cnn", 48, weights="imagenet")
