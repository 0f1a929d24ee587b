"""training/evaluate.py on small runs and synthetic datasets in the real layouts."""

import json

import pytest

from conftest import make_untrained_run


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from facepack.data.synthetic import make_keypoints68_dataset, make_scut_dataset

    root = tmp_path_factory.mktemp("evaldata")
    return {"beauty": make_scut_dataset(root / "scut", n=40, seed=1),
            "keypoints": make_keypoints68_dataset(root / "kp", n=30, seed=1)}


def test_evaluate_beauty_writes_metrics_and_plots(tmp_path, synthetic):
    from training import evaluate

    run = make_untrained_run("beauty", tmp_path / "run", input_size=32)
    out = evaluate.main(["--model", str(run), "--data", str(synthetic["beauty"]), "--part", "all",
                         "--out", str(tmp_path / "eval")])
    report = json.loads((out / "metrics.json").read_text())
    assert report["kind"] == "beauty" and report["evaluated_on"]["n"] == 40
    assert report["evaluated_on"]["synthetic"] is True
    assert set(report["metrics"]) >= {"pc", "mae", "rmse", "n"}
    assert (out / "scatter.png").is_file() and (out / "errors.png").is_file()


def test_evaluate_keypoints_held_out_part_follows_the_run_seed(tmp_path, synthetic):
    from training import evaluate, train_keypoints

    run = make_untrained_run("keypoints", tmp_path / "run")
    out = evaluate.main(["--model", str(run), "--data", str(synthetic["keypoints"]), "--out", str(tmp_path / "e")])
    report = json.loads((out / "metrics.json").read_text())
    expected = max(1, round(30 * train_keypoints.DEFAULTS["val_fraction"]))
    assert report["evaluated_on"]["n"] == expected
    g = report["metrics"]["ground_truth_crop"]
    assert g["nme_mean"] > 0 and 0 <= g["failure_rate"] <= 1
    assert (out / "ced.png").is_file()


def test_evaluate_names_the_missing_dataset(tmp_path):
    from training import evaluate

    run = make_untrained_run("keypoints", tmp_path / "run")
    with pytest.raises(ValueError, match="--data"):
        evaluate.main(["--model", str(run), "--out", str(tmp_path / "e")])
