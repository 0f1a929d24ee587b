"""bench/common.py heldout_keypoint_indices: the bench's "held-out" keypoint faces follow the
shipped run's own validation protocol (a person split: people never trained on)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import common  # noqa: E402

PEOPLE, FRAMES = 20, 5  # 100 rows; val_fraction 0.1 -> 10 rows = 2 whole people on a person split


def fake_data():
    return SimpleNamespace(images=[f"/d/Person_{p:02d}_{f}.jpg" for p in range(PEOPLE) for f in range(FRAMES)])


def people_of(data, idx):
    return {Path(data.images[i]).name.rsplit("_", 1)[0] for i in idx}


def test_the_shipped_run_json_gives_a_person_split():
    info = json.loads((common.SHIPPED["keypoints"] / "run.json").read_text())
    data = fake_data()
    val = common.heldout_keypoint_indices(data, info)
    rest = np.setdiff1d(np.arange(len(data.images)), val)
    assert len(val) == 2 * FRAMES
    assert not people_of(data, val) & people_of(data, rest)  # no held-out person in training


def test_a_run_without_val_split_keeps_the_old_frame_split():
    info = {"args": {"seed": 0, "val_fraction": 0.1}, "dataset": {}}
    data = fake_data()
    val = common.heldout_keypoint_indices(data, info)
    want = np.sort(np.random.default_rng(0).permutation(len(data.images))[:10])  # the frame split's formula
    np.testing.assert_array_equal(val, want)
