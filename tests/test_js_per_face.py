"""analyze option perFaceLimit (JS) / per_face_limit (Python): the same faces are described on both
sides (static/facepack/pipeline.js:perFaceTargets == facepack/pipeline.py:per_face_targets) and bad
values are refused naming the option. Node, no models (tests/js/per_face.mjs)."""

from __future__ import annotations

import numpy as np
import pytest

from facepack import pipeline, spec
from jsharness import node_ready, run_node

LIMITS = [None, 0, 1, 2, 3, 5, 40]
BAD = [-1, 1.5, "3", True]


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(14)
    sides = [float(s) for s in rng.integers(20, 60, size=12)] + [45.0, 45.0]  # repeated sides: ties
    return [{"box": {"x": 3.0 * i, "y": 1.0, "width": s, "height": s * float(rng.uniform(0.7, 1.3))},
             "score": 0.99 - 0.001 * i} for i, s in enumerate(sides)]


@pytest.fixture(scope="module")
def js_run(faces):
    ok, why = node_ready()
    if not ok:
        pytest.fail(f"Node is needed for the perFaceLimit test: {why}")
    return run_node("per_face.mjs", {"spec": spec.spec_dict(), "faces": faces, "limits": LIMITS, "bad": BAD},
                    timeout=120)


@pytest.mark.parametrize("k", range(len(LIMITS)))
def test_same_faces_as_python(k, faces, js_run):
    py = pipeline.per_face_targets(faces, LIMITS[k])
    assert js_run["targets"][k] == [faces.index(f) for f in py]
    expected = len(faces) if LIMITS[k] is None else min(LIMITS[k], len(faces))
    assert len(py) == expected


def test_bad_values_name_the_option(js_run):
    assert all(e and "perFaceLimit" in e for e in js_run["errors"]), js_run["errors"]
