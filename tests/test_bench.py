"""Fast checks of the benchmark helpers (bench/): statistics, tables, NME wiring, bytes, CLIs.

No benchmark runs here: no Node, no browser, no network, no bench/peer, no datasets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402


# --- Statistics ---------------------------------------------------------------------------------
def test_median_and_summary_by_hand():
    assert common.median([5, 1, 3]) == 3
    assert common.median([4, 1, 3, 2]) == 2.5
    assert common.median([None, 7.0]) == 7.0
    assert common.median([]) is None
    assert common.summary([2, 9, 4]) == {"n": 3, "median": 4.0, "min": 2.0, "max": 9.0}
    assert common.summary([]) == {"n": 0, "median": None, "min": None, "max": None}


def test_cold_warm_first_call_is_cold_rest_median():
    runs = [{"total": 100.0, "detect": 60.0}, {"total": 20.0, "detect": 9.0},
            {"total": 30.0, "detect": 11.0}, {"total": 10.0, "detect": 10.0}]
    assert common.cold_warm(runs, ("total", "detect")) == {
        "total": {"cold": 100.0, "warm": 20.0}, "detect": {"cold": 60.0, "warm": 10.0}}
    assert common.cold_warm(runs[:1], ("total",)) == {"total": {"cold": 100.0, "warm": None}}
    with pytest.raises(ValueError, match="at least one run"):
        common.cold_warm([], ("total",))


def test_speed_combine_takes_medians_over_runs():
    import bench_speed

    def run(cold, warm, load):
        timings = [dict.fromkeys(bench_speed.STAGES, cold)] + [dict.fromkeys(bench_speed.STAGES, w) for w in warm]
        return {"load_ms": load, "backend": "wasm", "env": {},
                "results": [{"name": "a", "runs": timings, "faces": [{}]}]}

    out = bench_speed.combine([run(100, [10, 30, 20], 5), run(300, [50, 40], 7), run(200, [1, 2, 3], 9)])
    photo = out["photos"]["a"]
    assert out["load_ms"] == 7
    assert photo["faces"] == 1 and photo["runs"] == 3
    assert photo["cold"]["total"] == 200  # median of 100, 300, 200
    assert photo["warm"]["detect"] == 20  # median of the per-run warm medians 20, 45, 2


# --- Tables -------------------------------------------------------------------------------------
def test_fmt_cells():
    assert common.fmt(None) == "-"
    assert common.fmt(3) == "3"
    assert common.fmt(2.345, 2) == "2.35"
    assert common.fmt(float("nan")) == "nan"
    assert common.fmt("missed") == "missed"
    assert common.fmt(True) == "True"


def test_format_table_exact_text():
    text = common.format_table(["name", "ms"], [["node", 12.345], ["python", None]])
    assert text == ("| name   |   ms |\n"
                    "| ------ | ---: |\n"
                    "| node   | 12.3 |\n"
                    "| python |    - |")


def test_format_table_rejects_a_short_row():
    with pytest.raises(ValueError, match="has 1 cells, expected 2"):
        common.format_table(["a", "b"], [[1]])


# --- NME wiring ---------------------------------------------------------------------------------
def _face68(eye_gap: float = 10.0) -> np.ndarray:
    """68 points; the outer eye corners (36, 45) are eye_gap apart."""
    pts = np.tile([[50.0, 50.0]], (68, 1))
    pts[36], pts[45] = [40.0, 50.0], [40.0 + eye_gap, 50.0]
    return pts


def test_nme_by_hand():
    truth = _face68(10.0)
    pred = truth + [3.0, 4.0]  # every point 5 px off, eyes 10 px apart
    assert common.nme(pred, truth) == pytest.approx(0.5)
    assert common.nme(truth, truth) == 0.0
    assert common.nme(None, truth) == float("inf")


def test_nme_summary_counts_misses_as_failures():
    s = common.nme_summary([0.05, float("inf"), 0.2])
    assert s["n"] == 3 and s["found"] == 2
    assert s["nme_mean_found"] == pytest.approx(0.125)
    assert s["nme_median_all"] == pytest.approx(0.2)
    assert s["failure_rate"] == pytest.approx(2 / 3)
    assert common.nme_summary([])["nme_median_all"] is None


def test_match_face_needs_the_box_centre_inside_the_points():
    truth = np.array([[100.0, 100.0], [140.0, 150.0]])  # points' box x 100..140, y 100..150
    inside = {"box": {"x": 95.0, "y": 95.0, "width": 50.0, "height": 50.0}}  # centre (120, 120)
    elsewhere = {"box": {"x": 0.0, "y": 600.0, "width": 40.0, "height": 40.0}}
    assert common.match_face([elsewhere, inside], truth) is inside
    assert common.match_face([elsewhere], truth) is None  # nearest, but another face
    assert common.match_face([], truth) is None


def test_read_pts_einstein():
    pts = common.read_pts(common.FIXTURES / "einstein.pts")
    assert pts.shape == (68, 2)
    np.testing.assert_allclose(pts[0], [357.417253, 308.455774])


def test_peer_crop_points_map_back_to_the_square():
    import bench_peer

    out = bench_peer.crop_to_photo([[0, 0], [112, 112], [56, 28]], (10.0, 20.0, 56.0), 112)
    np.testing.assert_allclose(out, [[10, 20], [66, 76], [38, 34]])


# --- Bytes --------------------------------------------------------------------------------------
def test_model_and_group_bytes(tmp_path):
    import bench_size

    sizes = {"mtcnn_pnet": 10, "mtcnn_rnet": 20, "mtcnn_onet": 30, "beauty_features": 400, "beauty_head": 5,
             "keypoints": 600}
    for name, n in sizes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_bytes(b"{}")
        (tmp_path / name / "group1-shard1of1.bin").write_bytes(bytes(n))
    (tmp_path / "manifest.json").write_text("{}")  # not a model
    models = bench_size.model_bytes(tmp_path)
    assert models["keypoints"]["raw"] == 602
    assert 0 < models["keypoints"]["gzip"] < 602
    groups = bench_size.group_bytes(models)
    assert groups == {"mtcnn": 66, "beauty": 409, "keypoints": 602, "total": 1077}
    del models["beauty_head"]
    with pytest.raises(KeyError, match="beauty_head"):
        bench_size.group_bytes(models)


def test_machine_line_names_cpu_cores_and_versions():
    info = {"cpu": "Some CPU", "cores": 2, "load_avg_1min": 1.25, "node": "v20", "tfjs": "4.22.0",
            "chromium": "150.0"}
    assert common.machine_line(info) == ("Machine: CPU Some CPU x 2 cores (load 1.2 at start), Node v20, "
                                          "TF.js 4.22.0, Chromium 150.0")
    assert common.cpu_model()


# --- CLIs ---------------------------------------------------------------------------------------
SCRIPTS = ["bench_speed.py", "bench_size.py", "bench_peer.py", "bench_input.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "bench/results/" in proc.stdout


def test_quick_and_bad_flags():
    import bench_input
    import bench_peer
    import bench_speed

    assert (bench_speed.parse_args(["--quick"]).runs, bench_speed.parse_args(["--quick"]).repeat) == (1, 2)
    assert bench_speed.parse_args([]).runs == 3
    assert bench_peer.parse_args(["--quick"]).faces == 30
    assert bench_peer.parse_args(["--faces", "0"]).faces == 0
    assert bench_input.parse_args(["--quick"]).steps == 3
    for parse, bad in ((bench_speed.parse_args, ["--runs", "0"]), (bench_peer.parse_args, ["--repeat", "1"]),
                       (bench_input.parse_args, ["--images", "8"])):
        with pytest.raises(SystemExit):
            parse(bad)


def test_peer_missing_names_the_install_command(monkeypatch, tmp_path):
    import bench_peer

    monkeypatch.setattr(bench_peer, "PEER_PACKAGE", tmp_path / "nothing")
    with pytest.raises(SystemExit, match="npm install --prefix bench/peer @vladmandic/face-api"):
        bench_peer.main(["--quick"])


def test_ensure_bundle_rejects_an_unknown_precision():
    with pytest.raises(ValueError, match="--quantize must be one of"):
        common.ensure_bundle("int4")


def test_ensure_bundle_asks_the_exporter_even_when_a_bundle_exists(monkeypatch, tmp_path):
    """A bundle left from older shipped models must not be reused as is: ensure_bundle runs
    convert/to_tfjs.py every time (it skips in ~1 s when its build key is unchanged) and logs a
    rebuild; an export failure is a RuntimeError naming the command."""
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    (tmp_path / "bundle-none").mkdir()
    (tmp_path / "bundle-none" / "manifest.json").write_text("{}")  # an existing (stale) bundle
    calls, logged = [], []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = "wrote bundle-none (6 models) in 55 s" if len(calls) == 1 else "bundle-none is up to date (build key x)"
        return subprocess.CompletedProcess(cmd, 0, stdout=out + "\n", stderr="")

    monkeypatch.setattr(common.subprocess, "run", fake_run)
    assert common.ensure_bundle("none", logged.append) == tmp_path / "bundle-none"
    assert common.ensure_bundle("none", logged.append) == tmp_path / "bundle-none"
    assert len(calls) == 2 and all("to_tfjs.py" in c[1] and c[c.index("--quantize") + 1] == "none" for c in calls)
    assert logged == ["float32 bundle of the shipped models: wrote bundle-none (6 models) in 55 s"]
    monkeypatch.setattr(common.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, stdout="", stderr="boom"))
    with pytest.raises(RuntimeError, match="to_tfjs.py.*failed:\n.*boom"):
        common.ensure_bundle("none")


def test_parity_summary_counts_an_exact_landmark_match_within_the_cascade_floor():
    """bench_parity.summarize: landmarks off target in px but 0.0 of the face side apart (the same
    landmarks on a slightly different box) count as within the cascade floor; not measured does not."""
    import bench_parity as bp

    errs = [{"landmark_px": 0.5, "landmark_rel": 0.0}, {"landmark_px": 0.5, "landmark_rel": None},
            {"landmark_px": 0.05}, {"landmark_px": 0.5, "landmark_rel": 2 * bp.BOX_CASCADE_REL_TOL}]
    recs = [{"errors": {"node-wasm": e}, "big": False,
             "desc": {"index": i, "width": 640, "height": 480, "faces_pasted": 1}} for i, e in enumerate(errs)]
    row = bp.summarize(recs, "node-wasm")["all"]["rows"]["landmark_px"]
    assert (row["n"], row["within"], row["within_or_same_box"]) == (4, 1, 2)
