"""Exporter conformance: every zoo model (facepack/export/zoo) exported with export_model and run
in TF.js on the cpu AND wasm backends (Node), against Keras predict on the same inputs.

Each model must end as its zoo row says: "match" (max |keras - tfjs| / max |keras| < REL_TOL on
both backends) or "refuse" (an ExportError of one line naming the reason). Never "crashed" (any
other exception) nor "wrong" (a bundle written that TF.js cannot run or that differs). Issue 11's
cases allow at most MAX_ISSUE_REFUSALS refusals.

Batched: all models of a set are exported first, then all bundles run in ONE node process per
backend. The fast set is the default run (budget: 4 minutes of CI); the slow set (keras.applications
at small sizes, one model per activation name) is marked `conformance_slow` and runs when
selected (`-m conformance_slow`) or with FACEPACK_CONFORMANCE_SLOW=1. Each set prints its table
(`-s`) and writes it to test-artifacts/export_conformance[_slow].json.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from facepack.export import zoo
from facepack.export.zoo import harness

pytestmark = [pytest.mark.node, pytest.mark.slow]

FAST = zoo.select(slow=False)
SLOW = zoo.select(slow=True)
MAX_ISSUE_REFUSALS = 2  # issue 11: "at most 2 refusals, each justified in the README"
SLOW_ENV = "FACEPACK_CONFORMANCE_SLOW"


def _node_ok():
    from facepack.export.node_check import node_available

    return node_available()


def _run_set(rows, tmp_path_factory, artifacts_dir, tag):
    ok, why = _node_ok()
    if not ok:
        pytest.skip(f"TF.js in Node is not available here ({why})")
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import keras

    t0 = time.perf_counter()
    work = tmp_path_factory.mktemp(f"conformance-{tag}")
    preps = [harness.prepare(e, keras, work) for e in rows]
    results = harness.conformance(preps, work)
    results["_timing"]["total_s"] = time.perf_counter() - t0
    results["_timing"]["models"] = len(rows)
    counts = {k: sum(1 for n, r in results.items() if not n.startswith("_") and r["outcome"] == k)
              for k in ("match", "refused", "crashed", "wrong")}
    results["_counts"] = counts
    table = harness.format_rows(harness.summary_rows(results))
    timing = results["_timing"]
    print(f"\n\nExporter conformance ({tag}, {len(rows)} models, {timing['exporter']}): {counts}; "
          f"{timing['total_s']:.0f} s (export {timing['export_s']:.0f} s, TF.js {timing['node_s']:.0f} s)\n{table}")
    name = "export_conformance" if tag == "fast" else f"export_conformance_{tag}"
    (artifacts_dir / f"{name}.json").write_text(json.dumps(results, indent=1, default=str))
    return results


def _selected(request, rows):
    """The rows whose tests are selected (-k ...); all of them when a whole-set test is selected."""
    names, whole = set(), False
    for item in request.session.items:
        if item.module is not request.module:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "name" in params:
            names.add(params["name"])
        elif "fast_results" in getattr(item, "fixturenames", ()):
            whole = True
    return rows if whole else [e for e in rows if e.name in names]


@pytest.fixture(scope="module")
def fast_results(request, tmp_path_factory, artifacts_dir):
    return _run_set(_selected(request, FAST), tmp_path_factory, artifacts_dir, "fast")


@pytest.fixture(scope="module")
def slow_results(request, tmp_path_factory, artifacts_dir):
    selected = "conformance_slow" in (request.config.getoption("-m") or "")
    if not (selected or os.environ.get(SLOW_ENV) == "1"):
        pytest.skip(f"slow conformance set: run with -m conformance_slow or {SLOW_ENV}=1")
    return _run_set(_selected(request, SLOW), tmp_path_factory, artifacts_dir, "slow")


def _check(result: dict, entry: zoo.ZooModel) -> None:
    export, outcome = result["export"], result["outcome"]
    detail = export["message"] or {b: v.get("error") or v.get("rel") for b, v in result["backends"].items()}
    if entry.expect == "refuse" and outcome == "match":
        print(f"\n{entry.name}: a known refusal now matches ({entry.reason}): make the zoo row expect 'match'")
    elif entry.expect == "refuse":
        assert outcome == "refused", f"{entry.name}: expected a refusal ({entry.reason}), got {outcome}: {detail}"
        assert export["one_line"], f"{entry.name}: the refusal is not one line: {export['message']!r}"
        for word in entry.refuse_words:
            assert word.lower() in export["message"].lower(), f"{entry.name}: refusal lacks {word!r}: {export['message']}"
    if entry.expect == "refuse":
        return
    assert outcome == "match", f"{entry.name}: {outcome}: {detail}"
    assert set(result["backends"]) == set(harness.BACKENDS)
    for backend, verdict in result["backends"].items():
        assert verdict["rel"] < harness.REL_TOL, f"{entry.name} on {backend}: rel {verdict['rel']}"


@pytest.mark.parametrize("name", [e.name for e in FAST])
def test_fast_model(name, fast_results):
    _check(fast_results[name], zoo.get(name))


@pytest.mark.conformance_slow
@pytest.mark.parametrize("name", [e.name for e in SLOW])
def test_slow_model(name, slow_results):
    _check(slow_results[name], zoo.get(name))


def test_issue_cases_all_present_and_refusals_at_most_two(fast_results):
    cases = {e.case: e.name for e in FAST if e.case is not None}
    assert sorted(cases) == list(zoo.ISSUE_CASES), f"issue 11 cases without a fast zoo model: " \
        f"{sorted(set(zoo.ISSUE_CASES) - set(cases))}"
    refused = [n for n in cases.values() if fast_results[n]["outcome"] == "refused"]
    assert len(refused) <= MAX_ISSUE_REFUSALS, f"issue 11 cases refused: {refused}"
    expected_refusals = [e.name for e in FAST if e.case is not None and e.expect == "refuse"]
    assert len(expected_refusals) <= MAX_ISSUE_REFUSALS


def test_harness_comparison_catches_wrong_outputs():
    """The comparison itself: equal passes, a 1e-3 relative change or a shape change fails."""
    import numpy as np

    ref = [np.linspace(-2.0, 3.0, 12, dtype=np.float32).reshape(3, 4)]
    assert harness.compare(ref, [ref[0].copy()])["ok"]
    nudged = ref[0].copy()
    nudged[1, 2] += 3.0 * 1e-3  # max |ref| = 3: rel 1e-3
    verdict = harness.compare(ref, [nudged])
    assert not verdict["ok"] and verdict["rel"] == pytest.approx(1e-3, rel=1e-3)
    assert not harness.compare(ref, [ref[0].T])["ok"]
    assert not harness.compare(ref, "TypeError: cannot run")["ok"]
    two = [ref[0], ref[0] * 2]
    assert not harness.compare(two, two[::-1])["ok"]
    assert harness.compare(two, two[::-1], any_order=True)["ok"]
