"""Issue 12's parity sweep (bench/bench_parity.py) run for real on a few fixture-only photos.

The bench pastes dataset faces into generated photos; the tests never read ../shared/datasets, so
here the photos are bench_parity's own (make_photo, seeded), made with ``faces="fixtures"`` (the
fixture face squares of tests/fixtures alone) and at most MAX_MP megapixels. They go through the
sweep's code path (bench_parity.run_chunk: Python FacePipeline, Node TF.js WASM on the session's
float32 parity bundle, match_faces, photo_errors, same-box re-measurement) and are judged with the
bench's own issue-12 TARGETS and summarize(). With ``js_decodes="png"`` the PNG photos (alpha, grey,
EXIF orientation in an eXIf chunk) are decoded by the npm package's readImageFile, not handed
Python's pixels; the JPEGs travel as Python's RGB, as in the bench's default.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from jsharness import NODE_MODULES, build_parity_bundle, node_ready

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench_parity as bp  # noqa: E402

ok, why = node_ready()
if ok and not (NODE_MODULES / "pngjs" / "package.json").is_file():
    ok, why = False, f"{NODE_MODULES / 'pngjs'} is missing (run npm ci)"
pytestmark = pytest.mark.skipif(not ok, reason=why)

SEED, MAX_MP, TARGET = 0, 1.0, "node-wasm"
# Photos of seed 0 with fixture faces (descriptions checked by test_the_photos_cover_the_sweeps_variants;
# faces Python finds with the parity bundle's detector in brackets): #7 428x428, 2 faces, alpha
# band, PNG (2); #11 1070x802, 3 faces, EXIF 3, JPEG q30 (2); #55 1010x757, 20 faces, grey,
# EXIF 8 (eXIf chunk), PNG (7); #65 718x538, 3 faces, grey, JPEG q31 (1). (#1, #28, #114 of the
# same kinds have no face the detector finds.)
INDICES = [7, 11, 55, 65]


@pytest.fixture(scope="module")
def sources(fixtures_dir, tmp_path_factory):
    # a datasets folder that does not exist: --faces fixtures must not need one
    return bp.face_sources(datasets=tmp_path_factory.mktemp("no_datasets") / "none", faces="fixtures",
                           fixtures=fixtures_dir)


@pytest.fixture(scope="module")
def sweep(sources, tmp_path_factory, fixtures_dir):
    """(records, work folder) of run_chunk on INDICES, Node WASM, PNGs decoded by npm."""
    from facepack.pipeline import FacePipeline

    models = build_parity_bundle(tmp_path_factory.getbasetemp() / "parity", fixtures_dir)  # shared with test_parity_*
    pipe = FacePipeline.from_runs(models["beauty_run"], models["keypoints_run"])
    work = tmp_path_factory.mktemp("parity_sweep")
    records = bp.run_chunk(INDICES, SEED, sources, MAX_MP, pipe, models["bundle"], [TARGET], {}, work,
                           keep=None, js_decodes="png")
    return records, work


def test_fixture_faces_only_leave_the_datasets_unread(fixtures_dir, tmp_path):
    """--faces fixtures: only tests/fixtures' face squares, even where a datasets folder has images."""
    folder = tmp_path / "scut-fbp5500-train" / "Images"
    folder.mkdir(parents=True)
    (folder / "face.jpg").write_bytes(b"")
    kinds = lambda faces: [s[0] for s in bp.face_sources(tmp_path, faces=faces, fixtures=fixtures_dir)]  # noqa: E731
    assert kinds("all") == ["scut"] + ["fixture"] * 3
    assert kinds("fixtures") == ["fixture"] * 3
    assert all(s[1].parent == fixtures_dir for s in bp.face_sources(tmp_path, faces="fixtures", fixtures=fixtures_dir))
    with pytest.raises(ValueError, match="faces"):
        bp.face_sources(tmp_path, faces="datasets")
    assert bp.js_decoded_formats("none") == set() and bp.js_decoded_formats("png") == {"png"}
    with pytest.raises(ValueError, match="--js-decodes"):
        bp.js_decoded_formats("jpeg")


def test_the_photos_cover_the_sweeps_variants(sources):
    """Guard: the chosen photos are what the sweep varies (deterministic in seed and index)."""
    descs = [bp.make_photo(i, SEED, sources, MAX_MP)[1] for i in INDICES]
    again = bp.make_photo(INDICES[0], SEED, sources, MAX_MP)
    assert again[1] == descs[0]
    assert all(d["width"] * d["height"] <= MAX_MP * 1e6 for d in descs)
    assert all(d["sources"] == ["fixture"] for d in descs)
    assert max(d["faces_pasted"] for d in descs) >= 5, "a group photo"
    assert any("exif_orientation" in d and "png" in d for d in descs), "EXIF orientation in a PNG (eXIf)"
    assert any("exif_orientation" in d and "jpeg_quality" in d for d in descs), "EXIF orientation in a JPEG"
    assert any("alpha_band" in d for d in descs) and any(d.get("grey") for d in descs)
    assert min(d.get("jpeg_quality", 100) for d in descs) <= 35, "a low-quality JPEG"
    assert sum("png" in d for d in descs) >= 2 and sum("jpeg_quality" in d for d in descs) >= 2


def test_js_decoded_the_png_photos_as_python(sweep):
    """npm's readImageFile (pngjs, EXIF applied; the analyzer's alpha rule) gave Python's pixels
    for every PNG photo (grey, alpha, eXIf orientation), and only PNGs were JS-decoded."""
    records, _ = sweep
    for rec in records:
        if "png" in rec["desc"]:
            assert rec.get("js_decoded") is True, bp.describe(rec["desc"])
            assert rec["npm_decode_differing"] == 0, f"{bp.describe(rec['desc'])}: npm's pixels differ from Python's"
        else:
            assert "js_decoded" not in rec and "npm_decode_differing" not in rec


def test_npm_decodes_the_sweeps_jpegs_as_python(sweep):
    """npm's JPEG decoder (libjpeg-turbo as WASM) gives PIL's pixels on the sweep's JPEGs (low
    quality, EXIF-rotated), as --js-decodes all assumes for Node."""
    from facepack import spec
    from facepack.data.images import load_rgb

    records, work = sweep
    files = {r["name"]: work / f"{r['name']}.jpg" for r in records if "jpeg_quality" in r["desc"]}
    assert len(files) >= 2
    decoded = bp.npm_decode(files, bp.npm_decoder(work))
    for name, entry in decoded.items():
        ours = load_rgb(files[name].read_bytes())
        assert (entry["height"], entry["width"], entry["channels"]) == (*ours.shape[:2], 4), name
        npm = np.fromfile(entry["path"], np.uint8).reshape(entry["height"], entry["width"], 4)
        np.testing.assert_array_equal(spec.premultiply_alpha(npm), ours, err_msg=name)


def test_js_finds_the_faces_python_finds(sweep):
    records, _ = sweep
    assert [r["name"] for r in records] == [f"p{i:05d}" for i in INDICES]
    for rec in records:
        err = rec["errors"].get(TARGET)
        assert err is not None, f"{bp.describe(rec['desc'])}: no {TARGET} result"
        assert rec["py_faces"] >= 1 and err["count_py"] == rec["py_faces"], bp.describe(rec["desc"])
        assert err["count"] == 0 and err["count_js"] == err["count_py"], \
            f"{bp.describe(rec['desc'])}: Python {err['count_py']} faces, JS {err['count_js']}, {err['count']} unmatched"
    assert max(r["py_faces"] for r in records) >= 3, "a group of faces found"


def test_within_issue_12_targets(sweep, artifacts_dir):
    """Every photo within bench_parity.TARGETS (issue 12), as the bench counts them: end to end,
    or (rows with "within_or_same_box") within on JS's boxes, the boxes within the cascade floor."""
    records, _ = sweep
    summary = bp.summarize(records, TARGET)
    (artifacts_dir / "parity_sweep.json").write_text(json.dumps({"summary": summary, "records": records}, indent=2))
    rows = summary["all"]["rows"]
    assert summary["all"]["photos"] == len(INDICES)
    for key in ("count", "box_iou_min", "score_abs", "landmark_px", "beauty_points", "keypoint_px",
                "heatmap_agreement_min", "box_rel", "landmark_rel"):
        assert rows[key]["n"] == len(INDICES), f"{key}: measured on {rows[key]['n']} photos"
    misses = []
    for key, row in rows.items():
        if row["target"] is None or row["n"] == 0:
            continue
        within = row.get("within_or_same_box", row["within"])
        if within != row["n"]:
            misses.append(f"{row['label']}: worst {row['worst']} ({row['op']} {row['target']}) on {row['photo_line']}, "
                          f"{within}/{row['n']} within")
    assert not misses, "\n" + "\n".join(misses) + "\n" + bp.table(summary, TARGET)


def test_the_bench_targets_are_the_tests_tolerances():
    """bench_parity.TARGETS and tests/jsharness.py's tolerances are both issue 12's targets, typed
    in two places: they must not drift apart (a sweep would then judge by other numbers than CI)."""
    import jsharness as jh
    import test_parity_crowd
    assert bp.BOX_CASCADE_REL_TOLS == test_parity_crowd.CASCADE_REL_TOL
    cascade = test_parity_crowd.CASCADE_REL_TOL[bp.spec.MTCNN["patch_resize"]]
    expected = {"count": 0, "box_iou_min": jh.BOX_IOU_MIN, "score_abs": jh.DETECT_SCORE_TOL,
                "landmark_px": jh.LANDMARK_TOL_PX, "beauty_points": jh.SCORE_TOL_POINTS,
                "keypoint_px": jh.KEYPOINT_TOL_PX, "heatmap_agreement_min": jh.HEATMAP_MIN_CORR,
                "box_rel": cascade, "landmark_rel": cascade,
                "same_box_beauty_points": jh.SCORE_TOL_POINTS, "same_box_keypoint_px": jh.KEYPOINT_TOL_PX,
                "same_box_heatmap_agreement_min": jh.HEATMAP_MIN_CORR}
    assert {k: bp.TARGETS[k][2] for k in expected} == expected
    assert {k for k, v in bp.TARGETS.items() if v[2] is not None} == set(expected)
