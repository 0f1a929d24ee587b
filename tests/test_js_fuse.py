"""static/facepack/ops/fuse_layers.js: conv -> batch norm [-> ReLU] chains folded into one fused
conv at load (issue 14) give the unfused model's outputs and gradients up to float32 rounding, fold
exactly the chains that may fold, and free their tensors with the model. Node, WASM (tests/js/fuse.mjs;
the end-to-end numbers against Python are tests/test_parity_node.py's)."""

from __future__ import annotations

import pytest

from jsharness import node_ready, run_node

# The test model of tests/js/fuse.mjs: 5 chains that fold (conv / depthwise x2, with and without
# bias, ReLU6 / ReLU / nothing after the batch norm), 1 that must not (its conv feeds two layers).
FOLDABLE_CHAINS = 5
# Relative to the largest output: float32 rounding of a different summation order (measured 1.1e-6).
OUTPUT_REL_TOL = 1e-5
# The input gradient goes back through 6 convs (measured 1.0e-5 of the largest).
GRAD_REL_TOL = 1e-4
TENSORS_PER_CHAIN = 2  # folded kernel and bias


@pytest.fixture(scope="module")
def fuse_run():
    ok, why = node_ready()
    if not ok:
        pytest.fail(f"Node is needed for the JS fusion test: {why}")
    return run_node("fuse.mjs", {"backend": "wasm", "seed": 14}, timeout=300)


def test_fuses_the_foldable_chains_only(fuse_run):
    assert fuse_run["backend"] == "wasm"
    assert fuse_run["fused"] == FOLDABLE_CHAINS


def test_fused_outputs_equal_unfused(fuse_run):
    assert fuse_run["maxRef"] > 1.0, "degenerate test model: outputs near zero"
    assert fuse_run["maxAbs"] <= OUTPUT_REL_TOL * fuse_run["maxRef"]


def test_fused_gradient_equals_unfused(fuse_run):
    assert fuse_run["gradMaxRef"] > 1.0
    assert fuse_run["gradMaxAbs"] <= GRAD_REL_TOL * fuse_run["gradMaxRef"]


def test_folded_weights_are_freed_with_the_model(fuse_run):
    assert fuse_run["added"] == TENSORS_PER_CHAIN * FOLDABLE_CHAINS
    assert fuse_run["releasedFused"] == fuse_run["releasedPlain"] + fuse_run["added"]


def test_folded_layers_copy_nothing(fuse_run):
    """A folded batch norm / ReLU hands its input on without a copy under model.predict (tfjs-layers'
    Layer.apply clones a layer's output when it is the layer's input: an Identity kernel per folded
    layer, 93 copies in a beauty-model predict before the pass-through became a same-shape reshape;
    model.apply, which the library uses, never cloned)."""
    assert fuse_run["copiesFused"] == fuse_run["copiesPlain"], fuse_run
