"""training/pseudo_labels.py (issue 19): face-api's landmark68 net (MIT) as a teacher, run in Node on
tfjs-backend-wasm, labels a face-centred portrait like the SCUT-FBP5500 photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training"))

# face-api on the Einstein fixture's spec crop at 112 px, before any offset correction (measured:
# 0.0690; WASM float32, so the same crop gives the same points to ~1e-6 of the crop).
EINSTEIN_FACEAPI_NME = 0.0690
NME_TOL = 0.002
PSEUDO_NME_MAX = 0.09  # the pseudo label of the portrait made from the fixture, two passes


@pytest.fixture(scope="module")
def einstein():
    from facepack.data.annotations import read_pts

    return read_pts(ROOT / "tests" / "fixtures" / "einstein.pts")


def test_faceapi_teacher_on_the_einstein_crop(einstein):
    import pseudo_labels as P
    from train_keypoints_lite import clean_crops, einstein_data

    images, units, squares = clean_crops(einstein_data(), [0], P.TEACHER_SIZE)
    got = P.faceapi_units(images)
    assert got.shape == (1, 68, 2)
    assert P.nme(got, units, squares)["nme_mean"] == pytest.approx(EINSTEIN_FACEAPI_NME, abs=NME_TOL)


def test_label_a_face_centred_portrait(tmp_path, einstein):
    """label(): pass 1 from the SCUT layout's square, pass 2 from pass 1's points (face-api only)."""
    import pseudo_labels as P
    from PIL import Image

    from facepack.data.tfdata import crop_square_for_points
    from facepack.metrics import nme_per_face

    x0, y0, side = crop_square_for_points(einstein)
    w = side / 0.73  # the portrait: the face's square where SCUT's lie (pseudo_labels.label's pass 1)
    left, top = int(round(x0 - 0.14 * w)), int(round(y0 - 0.25 * w))
    photo = Image.open(ROOT / "tests" / "fixtures" / "einstein.jpg").convert("RGB")
    (tmp_path / "Images").mkdir()
    photo.crop((left, top, left + int(round(w)), top + int(round(w)))).save(tmp_path / "Images" / "e.png")
    (tmp_path / "train.txt").write_text("e.png 3.0\n")
    (tmp_path / "measure.json").write_text(json.dumps({"faceapi_offset_crop_units": [0.0, 0.0]}))
    argv = ["label", "--scut", str(tmp_path), "--out", str(tmp_path / "pl.npz"), "--faceapi",
            "--measure", str(tmp_path / "measure.json"), "--passes", "2"]
    out = P.main(argv)
    with np.load(out) as z:
        assert z["names"].tolist() == ["e.png"] and z["teachers"].tolist() == ["faceapi"]
        assert str(z["command"]) == "pseudo_labels.py " + " ".join(argv)
        assert np.isnan(z["disagreement"]).all()  # one teacher: no disagreement (not 0)
        assert Path(str(z["root"])) == tmp_path.resolve()
        points = z["points"][0].astype(np.float64)
    truth = einstein - np.array([left, top])
    assert nme_per_face(points[None], truth[None], "68")[0] < PSEUDO_NME_MAX


@pytest.mark.parametrize("args, message", [
    (["--faceapi"], "error: --faceapi needs --measure FILE (pseudo_labels.py measure --out FILE: face-api's offset)"),
    ([], "error: label: give --model RUN and/or --faceapi (with --measure FILE)"),
])
def test_label_usage_errors_are_one_line(tmp_path, args, message):
    """Through facepack.cli.run_cli, before anything is loaded: one line, exit status 2."""
    proc = subprocess.run([sys.executable, str(ROOT / "training" / "pseudo_labels.py"), "label", "--scut",
                           str(tmp_path), "--out", str(tmp_path / "pl.npz"), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [message], proc.stderr
