"""The trained models shipped in models/shipped/: files, model cards and the bundle made from them."""

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facepack import runs

SHIPPED = runs.SHIPPED_ROOT
KINDS = ("beauty", "keypoints")
# issue targets, float16 bundles (beauty: issue 13, an ImageNet-pretrained EfficientNet-Lite0 at <= 8 MB)
BUNDLE_LIMIT_BYTES = {"beauty": 8_000_000, "keypoints": 1_000_000}
SHIPPED_LIMIT_BYTES = 20_000_000  # models/shipped in git: the Lite0 beauty weights are 14.6 MB (float32)
GIT_FILE_LIMIT_BYTES = 5_000_000  # every file in git; the shipped models use the sharded run layout (runs.SHARD_MB)


def _card(kind) -> str:
    return (SHIPPED / kind / "MODEL_CARD.md").read_text()


def _card_row(card: str, name: str) -> str:
    """The text of the card's ``| name | text |`` table row (AssertionError when absent)."""
    found = re.search(rf"^\| {re.escape(name)} \| (.+) \|$", card, re.M)
    assert found, f"model card has no '| {name} |' row"
    return found.group(1)


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_run_is_complete_and_real(kind):
    folder = SHIPPED / kind
    for name in ("run.json", "MODEL_CARD.md", "history.csv", "curves.png", "eval/metrics.json"):
        assert (folder / name).is_file(), f"{folder / name} is missing"
    files = runs.model_files(folder)  # raises naming a missing file
    assert [f.name for f in files[:2]] == [runs.CONFIG_FILE, runs.WEIGHTS_INDEX], "shipped models are sharded"
    info = runs.read_run_info(folder)
    assert info["model"] == kind and info["synthetic"] is False
    assert info["dataset"]["synthetic"] is False


def test_shipped_models_fit_the_size_budget():
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= SHIPPED_LIMIT_BYTES, f"models/shipped holds {total} bytes (budget {SHIPPED_LIMIT_BYTES / 1e6:g} MB)"
    big = {p.relative_to(SHIPPED).as_posix(): p.stat().st_size for p in SHIPPED.rglob("*")
           if p.is_file() and p.stat().st_size > GIT_FILE_LIMIT_BYTES}
    assert not big, f"files over {GIT_FILE_LIMIT_BYTES:,} B in models/shipped: {big}; `python -m facepack.runs --shard DIR`"


@pytest.mark.parametrize("kind", KINDS)
def test_model_card_matches_run_and_evaluation(kind):
    card = _card(kind)
    info = runs.read_run_info(SHIPPED / kind)
    evaluated = json.loads((SHIPPED / kind / "eval" / "metrics.json").read_text())["metrics"]
    if kind == "beauty":
        train_numbers = [info["metrics"][k] for k in ("pc", "mae", "rmse")]
        eval_numbers = [evaluated[k] for k in ("pc", "mae", "rmse")]
    else:
        train_numbers = [info["metrics"][k] for k in ("nme_mean", "nme_median")]
        eval_numbers = [evaluated["ground_truth_crop"][k] for k in ("nme_mean", "nme_median")]
    for value in train_numbers + eval_numbers:
        assert f"{value:.4f}" in card, f"{kind} card does not state {value:.4f}"
    for term in ("Reproduce", "non-commercial" if kind == "beauty" else "research"):
        assert term in card
    # The Initialisation row says what run.json says: pretrained weights (which, from which package,
    # under which licence) or "from scratch".
    init = _card_row(card, "Initialisation")
    weights = info.get("weights")
    if weights:
        assert "ImageNet-pretrained" in init and weights["trained_on"].startswith("ImageNet")
        assert weights["source"].split()[0] in init, f"{kind} card: Initialisation does not name {weights['source']}"
        assert weights["licence"] in init, f"{kind} card: Initialisation does not give the weights' licence"
        assert not init.startswith("from scratch")
    else:
        assert init.startswith("from scratch"), f"{kind} card: run.json has no pretrained weights, card says {init!r}"
    # Pseudo-labelled data: the card names the teacher and its licence.
    if info["dataset"].get("pseudo_labelled"):
        assert "face-api" in card and "MIT" in card and f"{info['dataset']['pseudo_labelled']:,}" in card
    epochs_done = len((SHIPPED / kind / "history.csv").read_text().strip().splitlines()) - 1
    assert f"--epochs {info['args']['epochs']}" in card
    assert f"--stop-after {epochs_done}" in card  # the reproduce line stops where the run stopped


@pytest.mark.parametrize("kind", KINDS)
def test_card_states_parameter_count_and_input(kind):
    import keras

    model, info = runs.load_run(SHIPPED / kind, keras)
    card = _card(kind)
    assert f"{model.count_params():,}" in card
    assert model.input_shape[1] == info["input_size"]
    assert re.search(rf"input {info['input_size']}×{info['input_size']}", card)


def test_latest_run_falls_back_to_shipped(tmp_path):
    assert runs.latest_run("beauty", root=tmp_path) == SHIPPED / "beauty"
    assert runs.latest_run("keypoints", root=tmp_path, shipped=False) is None


def _fake_run(root: Path, kind: str, stamp: str, metrics: dict, synthetic: bool = False) -> Path:
    """A run folder as choose_run sees it (run.json + a model.keras that is never loaded)."""
    run = root / kind / stamp
    run.mkdir(parents=True)
    with zipfile.ZipFile(run / "model.keras", "w") as archive:  # the directory runs.model_files checks; not loaded
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
    dataset = {"synthetic": synthetic, **({"val_split": "person"} if kind == "keypoints" else {})}  # the shipped protocol
    (run / "run.json").write_text(json.dumps({"model": kind, "synthetic": synthetic, "metrics": metrics,
                                              "dataset": dataset}))
    return run


def test_synthetic_or_worse_runs_never_replace_the_shipped_model(tmp_path):
    """The issue's case: a 1-epoch synthetic keypoint run (NME 0.251) is newest; then a real run
    worse than the shipped NME; neither is used, and the message says why."""
    shipped_nme = runs.read_run_info(SHIPPED / "keypoints")["metrics"]["nme_mean"]
    worse = _fake_run(tmp_path, "keypoints", "20300101-000000", {"nme_mean": shipped_nme + 0.01})
    quick = _fake_run(tmp_path, "keypoints", "20300102-000000", {"nme_mean": 0.251}, synthetic=True)
    choice = runs.choose_run("keypoints", root=tmp_path)
    assert choice.path == SHIPPED / "keypoints"
    assert choice.skipped == [(quick, "trained on synthetic data (run.json synthetic: true)"),
                              (worse, f"NME {shipped_nme + 0.01:.3f} is worse than the shipped model's {shipped_nme:.3f}")]
    message = choice.message()
    assert message.startswith(f"keypoints model: models/shipped/keypoints (the shipped model, NME {shipped_nme:.3f}; "
                              f"no newer run qualifies)")
    assert "synthetic data" in message and "worse than the shipped" in message and "--keypoints RUN" in message
    # a better real run, older than the synthetic one, is used (the synthetic one still named)
    better = _fake_run(tmp_path, "keypoints", "20300101-120000", {"nme_mean": shipped_nme - 0.005})
    choice = runs.choose_run("keypoints", root=tmp_path)
    assert choice.path == better and [p for p, _ in choice.skipped] == [quick]
    assert f"NME {shipped_nme - 0.005:.3f} vs the shipped model's {shipped_nme:.3f}" in choice.reason
    # explicit choices always win: a path, a run name, latest, shipped
    assert runs.resolve_run("keypoints", quick, root=tmp_path) == quick
    assert runs.resolve_run("keypoints", quick / "model.keras", root=tmp_path) == quick
    assert runs.resolve_run("keypoints", "20300101-000000", root=tmp_path) == worse
    assert runs.resolve_run("keypoints", "latest", root=tmp_path) == quick
    assert runs.resolve_run("keypoints", "shipped", root=tmp_path) == SHIPPED / "keypoints"
    with pytest.raises(ValueError, match=r"--keypoints: expected a run folder .* 'latest' or 'shipped'; got 'nope'"):
        runs.resolve_run("keypoints", "nope", root=tmp_path)


def test_beauty_choice_compares_pc_higher_is_better(tmp_path, capsys):
    shipped_pc = runs.read_run_info(SHIPPED / "beauty")["metrics"]["pc"]
    lower = _fake_run(tmp_path, "beauty", "20300101-000000", {"pc": shipped_pc - 0.02})
    assert runs.latest_run("beauty", root=tmp_path) == SHIPPED / "beauty"
    higher = _fake_run(tmp_path, "beauty", "20300102-000000", {"pc": shipped_pc + 0.02})
    assert runs.latest_run("beauty", root=tmp_path) == higher
    nometric = _fake_run(tmp_path, "beauty", "20300103-000000", {})
    choice = runs.choose_run("beauty", root=tmp_path)
    assert choice.path == higher and choice.skipped == [(nometric, "run.json has no pc metric to compare with the shipped model")]
    # without a shipped model the newest run is used, whatever it is, and said so
    assert runs.choose_run("beauty", root=tmp_path, shipped=False).path == nometric
    assert runs.main(["beauty", "--runs-root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"beauty model: {higher} (newest run trained on real data; PC ")
    assert runs.main(["beauty", "--runs-root", str(tmp_path), "--run", "gone", "--quiet"]) == 2  # usage: names no run
    assert lower.is_dir()


@pytest.fixture(scope="module")
def shipped_bundle(tmp_path_factory):
    """The bundle the main job builds from the shipped models (float16)."""
    from facepack.export import build_bundle

    out = tmp_path_factory.mktemp("shipped") / "models"
    build_bundle(out, beauty_run=SHIPPED / "beauty", keypoints_run=SHIPPED / "keypoints", quantize="float16")
    return out


def test_bundle_from_shipped_models_meets_size_targets_and_carries_their_metrics(shipped_bundle):
    manifest = json.loads((shipped_bundle / "manifest.json").read_text())
    assert manifest["synthetic"] is False
    models = manifest["models"]
    beauty_bytes = sum(f["bytes"] for m in ("beauty_features", "beauty_head") for f in models[m]["files"])
    keypoint_bytes = sum(f["bytes"] for f in models["keypoints"]["files"])
    assert beauty_bytes <= BUNDLE_LIMIT_BYTES["beauty"]
    assert keypoint_bytes <= BUNDLE_LIMIT_BYTES["keypoints"]
    for name, kind in (("beauty_features", "beauty"), ("keypoints", "keypoints")):
        info = runs.read_run_info(SHIPPED / kind)
        for key, value in info["metrics"].items():
            if isinstance(value, (int, float)):
                assert models[name]["run"]["metrics"][key] == pytest.approx(value)
        assert models[name]["precision"] == "float16"
        parity = models[name]["parity"]
        assert parity[parity["criterion"]] <= parity["tolerance"]
    # The page's model table shows the beauty CV headline (cv.json) and the keypoints' mirror-averaged
    # NME next to the model-alone one (facepack/export/sources.py:run_meta, static/models-panel.js).
    cv = json.loads((SHIPPED / "beauty" / "cv.json").read_text())["calibrated"]["pc"]
    assert models["beauty_features"]["run"]["cv"] == {"pc_mean": pytest.approx(cv["mean"]),
                                                      "pc_std": pytest.approx(cv["std"]), "folds": len(cv["folds"])}
    assert "cv" not in models["keypoints"]["run"]  # no cv.json in the keypoints run
    mirror = runs.read_run_info(SHIPPED / "keypoints")["metrics_mirror"]
    assert models["keypoints"]["run"]["metrics_mirror"]["nme_mean"] == pytest.approx(mirror["nme_mean"])
    assert mirror["nme_mean"] < models["keypoints"]["run"]["metrics"]["nme_mean"]  # averaging helps on held-out people


def test_shipped_models_score_the_fixture_face_sensibly(fixtures_dir):
    """Real models on a real photo: one face, landmarks on it, a score inside the dataset's range."""
    from facepack.pipeline import FacePipeline

    pipe = FacePipeline.from_runs(SHIPPED / "beauty", SHIPPED / "keypoints")
    result = pipe.analyze(str(fixtures_dir / "astronaut.png"))
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert 1.0 <= face["beauty"]["score_1to5"] <= 5.0
    box = face["box"]
    pts = np.asarray(face["keypoints"])
    inside = ((pts[:, 0] >= box["x"] - 0.25 * box["width"]) & (pts[:, 0] <= box["x"] + 1.25 * box["width"])
              & (pts[:, 1] >= box["y"] - 0.25 * box["height"]) & (pts[:, 1] <= box["y"] + 1.25 * box["height"]))
    assert inside.mean() > 0.95
    # The outer eye corners (36, 45) sit near the detector's eye landmarks.
    left_eye, right_eye = np.asarray(face["landmarks5"]["left_eye"]), np.asarray(face["landmarks5"]["right_eye"])
    iod = np.linalg.norm(right_eye - left_eye)
    assert np.linalg.norm(pts[36:42].mean(axis=0) - left_eye) < 0.35 * iod
    assert np.linalg.norm(pts[42:48].mean(axis=0) - right_eye) < 0.35 * iod


def test_js_equals_python_on_the_shipped_models(shipped_bundle, fixtures_dir, tmp_path):
    """What users run: the float16 bundle of the shipped models in Node (WASM) against the Keras
    models in the Python reference, with the parity tolerances (float16 moves the beauty score
    by ~0.003 points and keypoints by ~0.02 px, well inside them)."""
    from jsharness import assert_parity, compare_faces, node_ready, python_reference, run_node, write_raw

    from facepack.data.images import load_rgb

    ok, why = node_ready()
    if not ok:
        pytest.skip(why)
    photos = {"astronaut": load_rgb(fixtures_dir / "astronaut.png"), "einstein": load_rgb(fixtures_dir / "einstein.jpg")}
    py = python_reference({"beauty_run": SHIPPED / "beauty", "keypoints_run": SHIPPED / "keypoints"}, photos)
    images = [{**write_raw(rgb, tmp_path / f"{name}.rgb", name), "options": {"heatmaps": True}}
              for name, rgb in photos.items()]
    js = {r["name"]: r for r in run_node("analyze.mjs", {"bundle": str(shipped_bundle), "backend": "wasm",
                                                         "images": images}, timeout=600)["results"]}
    for name, result in py.items():
        assert len(result["faces"]) == 1  # the seated man in einstein.jpg; the astronaut
        err = compare_faces(result["faces"], js[name]["faces"])
        assert_parity(name, err, result["faces"], js[name]["faces"])


def test_page_model_table_states_cv_and_mirror_averaging(shipped_bundle):
    """static/models-panel.js:describeRunMetrics on the shipped bundle's manifest (one Node call): the
    beauty cell leads with the 5-fold CV PC, the keypoints cell says the NME is the model alone and
    gives the mirror-averaged NME the page applies (spec.keypoints.mirror_average)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    manifest = json.loads((shipped_bundle / "manifest.json").read_text())
    script = ("import fs from 'fs'; import { describeRunMetrics } from './static/models-panel.js';"
              "const m = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));"
              "console.log(JSON.stringify(Object.fromEntries(Object.entries(m.models).map("
              "([n, e]) => [n, describeRunMetrics(n, e.run ?? {}, m)]))));")
    out = subprocess.run(["node", "--input-type=module", "-e", script, str(shipped_bundle / "manifest.json")],
                         cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cells = json.loads(out.stdout)
    cv = manifest["models"]["beauty_features"]["run"]["cv"]
    assert cells["beauty_features"].startswith(f"CV pc {cv['pc_mean']:.4f} ± {cv['pc_std']:.4f} ({cv['folds']} folds); ")
    assert manifest["spec"]["keypoints"]["mirror_average"] is True
    mirror = manifest["models"]["keypoints"]["run"]["metrics_mirror"]["nme_mean"]
    assert cells["keypoints"].endswith(f"(model alone; the page mirror-averages: nme_mean {mirror:.4g} mirror-averaged)")
    assert "CV pc" not in cells["keypoints"] and "command" not in cells["keypoints"]


def test_run_meta_cv_headline_from_calibrated_block_and_none_for_a_probe_cv(tmp_path):
    """run_meta's "cv" (the page's 'CV pc' headline) is the calibrated PC of cv.json; a --probe CV's
    cv.json holds only a "probe" block (training/train_beauty_cached.py cv_summary): no calibrated PC,
    so no headline (it raised a bare KeyError inside run_meta, review L2)."""
    from facepack.export.sources import run_meta

    stats = {"mean": 0.81, "std": 0.02, "folds": [0.8, 0.82, 0.81]}
    (tmp_path / "cv.json").write_text(json.dumps({"folds": [1, 2, 3], "calibrated": {"pc": stats}}))
    assert run_meta(tmp_path, {})["cv"] == {"pc_mean": 0.81, "pc_std": 0.02, "folds": 3}
    (tmp_path / "cv.json").write_text(json.dumps({"folds": [1, 2, 3], "probe": {"pc": stats}}))
    meta = run_meta(tmp_path, {"metrics": {"pc": 0.7}})
    assert "cv" not in meta and meta["metrics"] == {"pc": 0.7}
