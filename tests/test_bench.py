"""Fast checks of the benchmark helpers (bench/): statistics, tables, NME wiring, bytes, CLIs.

No benchmark runs here: no Node, no browser, no network, no bench/peer, no datasets.
"""

from __future__ import annotations

import json
import os
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


def _exporter_says(*messages: str) -> tuple[str, str]:
    """(stdout, stderr) of a process that logs ``messages`` with the exporter's own logging
    function (facepack/export/bundle.py main_log, what convert/to_tfjs.py passes as log=)."""
    import contextlib
    import io

    from facepack.export import bundle

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for message in messages:
            bundle.main_log(message)
    return out.getvalue(), err.getvalue()


def test_ensure_bundle_asks_the_exporter_even_when_a_bundle_exists(monkeypatch, tmp_path):
    """A bundle left from older shipped models must not be reused as is: ensure_bundle runs
    convert/to_tfjs.py every time (it skips in ~1 s when its build key is unchanged, with a
    --lock-wait so parallel benches queue), says so BEFORE it starts, and reports a rebuild from
    what the exporter logs where it logs it (stderr, bundle.main_log); an export failure is a
    RuntimeError naming the command."""
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    (tmp_path / "bundle-none").mkdir()
    (tmp_path / "bundle-none" / "manifest.json").write_text("{}")  # an existing (stale) bundle
    out = tmp_path / "bundle-none"
    says = [_exporter_says(f"chosen with --beauty {common.SHIPPED['beauty']}", "converting mtcnn_pnet ...",
                           "converting beauty_features ...", f"wrote {out} (6 models, 14.70 MB) in 55.2 s"),
            _exporter_says(f"{out} is up to date (build key 0123456789ab: same models, options, code and versions); "
                           "export skipped (pass --force to rebuild)")]
    assert says[0][0] == "" and "wrote" in says[0][1]  # the real exporter's messages are on stderr only
    calls, logged = [], []

    def fake_run(cmd, **kwargs):
        logged.append("<run>")
        calls.append(cmd)
        stdout, stderr = says[len(calls) - 1]
        return subprocess.CompletedProcess(cmd, 0, stdout=stdout, stderr=stderr)

    monkeypatch.setattr(common.subprocess, "run", fake_run)
    assert common.ensure_bundle("none", logged.append) == out
    assert common.ensure_bundle("none", logged.append) == out
    assert len(calls) == 2 and all("to_tfjs.py" in c[1] and c[c.index("--quantize") + 1] == "none" for c in calls)
    assert all(float(c[c.index("--lock-wait") + 1]) == common.BUNDLE_LOCK_WAIT_S > 0 for c in calls)
    assert logged[0].startswith("float32 bundle of the shipped models: checking ") and "may take a minute" in logged[0]
    assert logged[1] == "<run>" and logged[3:5] == [logged[0], "<run>"]  # told before the exporter starts
    assert logged[2] == (f"float32 bundle: rebuilt mtcnn_pnet, beauty_features: wrote {out} (6 models, 14.70 MB) "
                         "in 55.2 s")
    assert logged[5] == "float32 bundle: up to date (build key 0123456789ab)"
    monkeypatch.setattr(common.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, stdout="", stderr="boom"))
    with pytest.raises(RuntimeError, match="to_tfjs.py.*failed:\n.*boom"):
        common.ensure_bundle("none")


def test_export_outcome_reads_the_messages_build_bundle_writes():
    """export_outcome looks for build_bundle's own wording; if the exporter's messages change, this fails."""
    import inspect

    from facepack.export import bundle

    source = inspect.getsource(bundle.build_bundle) + inspect.getsource(bundle.export_lock)
    for marker in ('f"wrote {out} (', 'f"converting {item.name} ...")', 'f"reusing {', " is up to date (build key ",
                   'f"waiting up to {'):
        assert marker in source, marker
    text = "\n".join(["waiting up to 1200 s for PID 7 (x), which is writing /b",
                      "reusing mtcnn from /b (unchanged build key)", "converting keypoints ...",
                      "wrote /b (6 models, 1.00 MB) in 9.0 s"])
    assert common.export_outcome(text) == ("rebuilt keypoints (reusing mtcnn): wrote /b (6 models, 1.00 MB) in 9.0 s "
                                           "(after waiting up to 1200 s for PID 7 (x), which is writing /b)")
    assert common.export_outcome("") == "convert/to_tfjs.py said nothing"


def test_ensure_bundle_with_the_real_exporter_up_to_date(monkeypatch, tmp_path):
    """One real convert/to_tfjs.py run (~1 s): a bundle whose manifest carries the build key the
    exporter computes for the shipped models is reported up to date with that key, from the
    exporter's real output streams; bundle_record reads the same key."""
    from facepack.export import bundle

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    out = tmp_path / "bundle-none"
    out.mkdir()
    runs = bundle._runs_for(list(bundle.MODEL_SETS), str(common.SHIPPED["beauty"]), str(common.SHIPPED["keypoints"]),
                            None, None)
    key = bundle.build_key(runs, "none", True)  # ensure_bundle passes no --no-node-check
    (out / "manifest.json").write_text(json.dumps({  # model entries without files: nothing to verify
        "models": {m: {"path": m, "files": []} for m in bundle.SET_OF_MODEL},
        "build": {"key": key["key"], "sets": key["sets"], "inputs": key["inputs"]}}))
    real_run, logged = subprocess.run, []
    # a working-tree edit between the key above and the exporter's would start a real rebuild: cap it
    monkeypatch.setattr(common.subprocess, "run", lambda cmd, **kw: real_run(cmd, **{"timeout": 120, **kw}))
    assert common.ensure_bundle("none", logged.append) == out
    assert len(logged) == 2 and logged[0].startswith("float32 bundle of the shipped models: checking"), logged
    assert logged[1] == f"float32 bundle: up to date (build key {key['key'][:12]})", (
        f"{logged} (a source under bundle.KEY_SOURCES edited during the test rebuilds: run it again)")
    record = common.bundle_record(out)
    assert record["build_key"] == key["key"] and record["sets"] == key["sets"]
    assert record["dir"] == str(out) and (record["code_modified"] is None or isinstance(record["code_modified"], list))


def test_ensure_bundle_waits_for_another_export_with_the_real_exporter(monkeypatch, tmp_path):
    """Another process writing the bundle (here: this test holding the export lock) is waited for
    (--lock-wait), then the failure names it; without --lock-wait the exporter fails at once and
    never says it waits."""
    from facepack.export import bundle

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    logged = []
    with bundle.export_lock(tmp_path / "bundle-none"):
        with pytest.raises(RuntimeError, match=r"--lock-wait 1 failed:\n(.|\n)*waiting up to 1 s for PID "
                                               rf"{os.getpid()} (.|\n)*\(waited 1 s\)"):
            common.ensure_bundle("none", logged.append, lock_wait=1)
    assert len(logged) == 1 and "checking" in logged[0]


# --- bench_parity: results record the bundle's build key; --merge checks it ----------------------
def _parity_json(path: Path, names, key, changed=None) -> None:
    records = [{"name": n, "errors": {"node-wasm": {"landmark_px": 0.05}}, "big": False,
                "desc": {"index": i, "width": 640, "height": 480, "faces_pasted": 1}} for i, n in enumerate(names)]
    machine = {"commit": "c0ffee", "modified": []}
    if key != "absent":  # "absent": a JSON written before the key was recorded
        machine["bundle"] = {"dir": "bench/results/bundle-none", "build_key": key, "sets": {}, "code_modified": [],
                             **({"changed_during_run": changed} if changed else {})}
    path.write_text(json.dumps({"machine": machine, "args": {"start": 0}, "photos_done": len(names),
                                "records": records}))


def test_parity_merge_refuses_chunks_of_different_bundles(monkeypatch, tmp_path, capsys):
    import bench_parity as bp

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    _parity_json(tmp_path / "a.json", ["p00000", "p00001"], "k1")
    _parity_json(tmp_path / "b.json", ["p00002"], "k1")
    _parity_json(tmp_path / "c.json", ["p00003"], "k2")
    _parity_json(tmp_path / "old.json", ["p00004"], "absent")
    _parity_json(tmp_path / "swapped.json", ["p00005"], "k1", changed={"after_photos": 1, "build_key": "k2"})

    assert bp.main(["--merge", "a,b", "--out", "ab"]) == 0
    merged = json.loads((tmp_path / "ab.json").read_text())
    assert merged["bundle_check"] == "same" and merged["photos_done"] == 3
    assert [p["bundle"]["build_key"] for p in merged["merged"]] == ["k1", "k1"]
    assert "warning" not in capsys.readouterr().err

    for bad in ("a,c", "a,swapped"):
        assert bp.main(["--merge", bad, "--out", "bad"]) == 2
        err = capsys.readouterr().err
        assert "error: --merge:" in err and "--allow-mixed-bundles" in err
        assert not (tmp_path / "bad.json").exists()
    assert "different build keys" in (bp.main(["--merge", "a,c", "--out", "bad"]), capsys.readouterr().err)[1]

    assert bp.main(["--merge", "a,c", "--out", "mixed", "--allow-mixed-bundles"]) == 0
    assert json.loads((tmp_path / "mixed.json").read_text())["bundle_check"] == "mixed"
    assert "warning: --merge: the parts ran bundles with different build keys" in capsys.readouterr().err

    assert bp.main(["--merge", "ab,old", "--out", "abo"]) == 0  # a merged JSON merges again; an old one warns
    merged = json.loads((tmp_path / "abo.json").read_text())
    assert merged["bundle_check"] == "unknown" and merged["photos_done"] == 4 and len(merged["merged"]) == 3
    assert "no bundle build key recorded in" in capsys.readouterr().err


def test_parity_results_flag_a_bundle_rebuilt_during_the_run(monkeypatch, tmp_path, capsys):
    import argparse

    import bench_parity as bp

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    (tmp_path / "bundle-none").mkdir()
    manifest = tmp_path / "bundle-none" / "manifest.json"
    manifest.write_text(json.dumps({"build": {"key": "k1"}}))
    info = {"bundle": {"dir": str(tmp_path / "bundle-none"), "build_key": "k1"}}
    args = argparse.Namespace(out="run")
    bp.write_results(args, info, [], [], 1, 1.0, 0.0)
    assert "changed_during_run" not in info["bundle"] and "WARNING" not in capsys.readouterr().out
    manifest.write_text(json.dumps({"build": {"key": "k2"}}))  # another bench's export swapped it in
    bp.write_results(args, info, [], [], 1, 1.0, 0.0)
    assert info["bundle"]["changed_during_run"] == {"after_photos": 0, "build_key": "k2"}
    assert "was rebuilt during this run" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["machine"]["bundle"]["changed_during_run"]["build_key"] == "k2"


# --- bench_quantize: the held-out faces cache is keyed by what made the faces --------------------
def _fake_run(folder: Path, size: int = 192, fold: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"input_size": size, "args": {"cv_fold": fold}}))
    return folder


def test_quantize_faces_cache_key_covers_run_fold_size_and_crop_rule(monkeypatch, tmp_path):
    import bench_quantize as bq

    from facepack import spec

    base, what = bq.faces_cache_key(_fake_run(tmp_path / "a"))
    assert what["input_size"] == 192 and what["cv_fold"] == 1 and what["crop_downscale"] == spec.CROP_DOWNSCALE
    assert bq.faces_cache_key(_fake_run(tmp_path / "a"))[0] == base  # same inputs, same key
    others = {bq.faces_cache_key(_fake_run(tmp_path / "b"))[0],  # another run (path)
              bq.faces_cache_key(_fake_run(tmp_path / "c", size=224))[0],
              bq.faces_cache_key(_fake_run(tmp_path / "d", fold=2))[0]}
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "run.json").write_text(json.dumps({"input_size": 192, "args": {"cv_fold": 1}, "seed": 3}))
    others.add(bq.faces_cache_key(tmp_path / "e")[0])  # run.json content
    monkeypatch.setattr(spec, "CROP_DOWNSCALE", "bilinear" if spec.CROP_DOWNSCALE != "bilinear" else "area")
    others.add(bq.faces_cache_key(tmp_path / "a")[0])
    assert base not in others and len(others) == 5
    assert bq.cache_file(tmp_path / "faces.npy", base) == tmp_path / f"faces-{base}.npy"


def test_quantize_held_out_faces_reuses_only_its_own_cache(monkeypatch, tmp_path):
    """An unkeyed cache (what every earlier run wrote, whatever --model, fold or crop rule) is not
    reused; the keyed one is, saying so."""
    import bench_quantize as bq

    cache = tmp_path / "beauty_heldout_faces.npy"
    np.save(cache, np.zeros((2, 8, 8, 3), np.float32))  # the old, unkeyed file
    made = []
    monkeypatch.setattr(bq, "compute_held_out_faces", lambda run_dir: made.append(run_dir) or np.ones((3, 8, 8, 3),
                                                                                                       np.float32))
    logged = []
    x = bq.held_out_faces(str(common.SHIPPED["beauty"]), cache, logged.append)
    assert x.shape == (3, 8, 8, 3) and len(made) == 1 and logged[0].startswith("wrote held-out faces cache")
    key, what = bq.faces_cache_key(made[0])
    assert json.loads(bq.cache_file(cache, key).with_suffix(".json").read_text()) == what
    x = bq.held_out_faces(str(common.SHIPPED["beauty"]), cache, logged.append)
    assert x.shape == (3, 8, 8, 3) and len(made) == 1
    assert logged[1].startswith(f"using cached held-out faces from {bq.cache_file(cache, key)} (run ")
    assert f"fold {what['cv_fold']}, {what['input_size']} px, crop downscale " in logged[1]


# --- bench_keypoints_mirror ----------------------------------------------------------------------
def test_keypoints_mirror_refuses_a_data_folder_without_the_csv(tmp_path, capsys):
    """An explicit --data that is not the keypoint dataset is a usage error (exit 2) before any model
    loads, as training/evaluate.py refuses it - not a report without the person split."""
    import bench_keypoints_mirror as km

    for data, why in ((tmp_path, "has no training_frames_keypoints.csv"), (tmp_path / "typo", "does not exist")):
        with pytest.raises(SystemExit) as exc:
            km.main(["--data", str(data)])
        assert exc.value.code == 2
        assert f"error: --data: {data} {why}" in capsys.readouterr().err


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
