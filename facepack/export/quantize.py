"""uint8 weights that lose less: equalisation, GPTQ rounding on TF.js' own grid, float16 where it matters.

TF.js stores a uint8 weight tensor as ``min + scale * q`` with one (min, scale) per tensor, chosen
by ``tensorflowjs.quantization.quantize_weights`` from the tensor's own min/max (the range "nudged"
so that 0.0 is a grid point). Rounding each weight to the nearest grid point (what
``--quantize uint8`` does by default) moved the shipped beauty score by up to 3.7 points (0..100).
This module chooses the integers itself and writes weights that already lie on that grid, so the
converter's quantiser reproduces them exactly (``on_tfjs_grid`` checks it):

1. **equalise**: every Conv2D/DepthwiseConv2D kernel that feeds only a BatchNormalization has each
   output channel scaled to the tensor's largest |w|, and the BN compensates (gamma / s,
   moving_mean * s): the same function, but per-tensor uint8 then resolves every channel as finely
   as the widest one (Nagel et al. 2019, "Data-free quantization", folded into BN here).
2. **gptq**: each quantised Conv2D 1x1 / Dense kernel is rounded column by column (input channels,
   largest Hessian diagonal first) and the error of each column is compensated on the columns not
   yet rounded with the inverse Hessian H = XᵀX of the layer's inputs (Frantar et al. 2022, "GPTQ");
   a depthwise kernel is the same problem per channel over its k*k taps. The grid is TF.js's: the
   tensor's min and max elements are pinned to the first and last level so the written tensor has
   exactly that range.
3. **float16**: the tensors whose rounding moves the output most per element (measured one at a
   time on the calibration images) stay float16 while their extra bytes fit ``float16_budget``.

Calibration images (for H) must exist wherever the exporter runs: the export uses
``fixture_calibration`` (augmented face crops of the public-domain photos in tests/fixtures), never
a dataset. Which kernels stay float16 is a property of the trained run when its folder holds
PLAN_FILE (quantization_plan.json, written once by ``python -m facepack.export.quantize --plan RUN``
from the run's own TRAINING-part faces, which needs its dataset); without one the exporter chooses
them on the fixture crops. The manifest's quantization block says which ("float16_source").
Everything is seeded and deterministic.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

UINT8_MAX = 255
GPTQ_BLOCK = 128  # columns rounded between two updates of the rest
GPTQ_DAMP = 0.01  # added to H's diagonal, times its mean diagonal (GPTQ's default)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = PROJECT_ROOT / "tests" / "fixtures"
# Faces in the fixture photos (photo pixels): astronaut and the seated man as facepack's MTCNN
# detector finds them; Einstein (which MTCNN misses) around his 68 annotated points (einstein.pts).
FIXTURE_FACES = (
    ("astronaut.png", {"x": 181.6, "y": 61.0, "width": 84.4, "height": 112.1}),
    ("einstein.jpg", {"x": 133.7, "y": 619.6, "width": 40.6, "height": 58.4}),
    ("einstein.jpg", {"x": 348.0, "y": 262.0, "width": 96.0, "height": 122.0}),
)


# --- TF.js' grid ---------------------------------------------------------------------------------

def tfjs_uint8_grid(w: np.ndarray) -> tuple[float, float]:
    """(nudged_min, scale) that tensorflowjs.quantization.quantize_weights picks for float32 ``w``
    (mirrors its _get_affine_quantization_range: float64 arithmetic, zero nudged onto the grid
    when min <= 0 <= max). Dequantised value of level q: nudged_min + scale * q."""
    lo, hi = float(np.float32(w.min())), float(np.float32(w.max()))
    if lo == hi:
        return lo, 1.0
    scale = (hi - lo) / UINT8_MAX
    if lo <= 0 <= hi:
        return -np.round((0 - lo) / scale) * scale, scale
    return lo, scale


def tfjs_levels(w: np.ndarray) -> np.ndarray:
    """The uint8 levels TF.js' quantiser writes for float32 ``w`` (quantize_weights' rounding)."""
    lo, scale = tfjs_uint8_grid(w)
    hi = UINT8_MAX * scale + lo
    return np.round((w.astype(np.float32).clip(lo, hi) - lo) / scale).astype(np.uint8)


def on_tfjs_grid(w: np.ndarray, levels: np.ndarray) -> bool:
    """True when TF.js' quantiser, given float32 ``w``, writes exactly ``levels`` (uint8)."""
    return bool(np.array_equal(tfjs_levels(w), levels))


class Grid:
    """A per-tensor uint8 grid (lo + scale * q, q in 0..255) fixed before rounding."""

    def __init__(self, w: np.ndarray):
        self.lo, self.scale = tfjs_uint8_grid(w)

    def levels(self, v: np.ndarray) -> np.ndarray:
        return np.clip(np.round((v - self.lo) / self.scale), 0, UINT8_MAX)

    def values(self, q: np.ndarray) -> np.ndarray:
        return self.lo + self.scale * q

    def written(self, q: np.ndarray) -> np.ndarray:
        """float32 weights whose TF.js quantisation is exactly ``q`` (needs q.min() == 0 and
        q.max() == 255, which gptq_levels guarantees by pinning the extremes)."""
        return self.values(q.astype(np.float64)).astype(np.float32)


# --- 1. equalisation -----------------------------------------------------------------------------

def _kind(layer) -> str:
    return type(layer).__name__


def _source(tensor):
    """The layer whose output is ``tensor`` (Keras 3 and tf_keras KerasTensors alike)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history is not None else None


def _in_model(model, layer) -> list[int]:
    """Indices of ``layer``'s inbound nodes that belong to ``model``'s graph (a layer shared by
    two tf_keras models, e.g. the beauty head split off the full model, has one node per graph)."""
    nodes = getattr(model, "_network_nodes", None)
    if nodes is None:  # Keras 3: the models here use each layer once
        return [0]
    return [i for i in range(len(layer._inbound_nodes)) if f"{layer.name}_ib-{i}" in nodes]


def _layer_input(model, layer):
    """``layer``'s input tensor in ``model``'s graph."""
    if getattr(model, "_network_nodes", None) is None:
        return layer.input
    return layer.get_input_at(_in_model(model, layer)[0])


def _consumers(model, layer) -> int:
    """How many calls in ``model``'s graph take ``layer``'s output."""
    nodes = getattr(model, "_network_nodes", None)
    if nodes is None:
        return len(layer._outbound_nodes)
    return sum(1 for node in layer._outbound_nodes
               if f"{node.layer.name}_ib-{node.layer._inbound_nodes.index(node)}" in nodes)


def conv_bn_pairs(model) -> list[tuple]:
    """[(conv, bn, output-channel axis)]: bias-free Conv2D/DepthwiseConv2D layers whose only
    consumer is a BatchNormalization over the last axis."""
    pairs = []
    for layer in model.layers:
        if _kind(layer) != "BatchNormalization" or layer.axis not in (-1, 3, [3], [-1]):
            continue
        src = _source(_layer_input(model, layer))
        if _kind(src) not in ("Conv2D", "DepthwiseConv2D") or src.use_bias or layer.gamma is None:
            continue
        if _consumers(model, src) != 1:  # another consumer would see the scaled channels
            continue
        pairs.append((src, layer, 2 if _kind(src) == "DepthwiseConv2D" else 3))
    return pairs


def _kernel(layer):
    return layer.depthwise_kernel if _kind(layer) == "DepthwiseConv2D" and hasattr(layer, "depthwise_kernel") \
        else layer.kernel


def equalise(model) -> int:
    """Scale every conv->BN pair's output channels to the kernel's largest |w| (in place; the
    model computes the same function). Returns the number of pairs."""
    pairs = conv_bn_pairs(model)
    for conv, bn, ax in pairs:
        var = _kernel(conv)
        k = np.asarray(var.numpy(), np.float64)
        r = np.abs(k).max(axis=tuple(a for a in range(4) if a != ax))
        s = np.where(r > 0, r.max() / np.maximum(r, 1e-30), 1.0)
        var.assign((k * s.reshape([-1 if a == ax else 1 for a in range(4)])).astype(np.float32))
        bn.gamma.assign((np.asarray(bn.gamma.numpy(), np.float64) / s).astype(np.float32))
        bn.moving_mean.assign((np.asarray(bn.moving_mean.numpy(), np.float64) * s).astype(np.float32))
    return len(pairs)


# --- 2. GPTQ on the fixed grid -------------------------------------------------------------------

def quantisable_layers(model, min_elements: int) -> list:
    """Conv2D 1x1, DepthwiseConv2D and Dense layers whose kernel has >= min_elements values."""
    out = []
    for layer in model.layers:
        kind = _kind(layer)
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        k = _kernel(layer)
        if int(np.prod(k.shape)) < min_elements:
            continue
        if kind == "Conv2D" and tuple(k.shape[:2]) != (1, 1):
            continue  # k x k convs would need im2col; none is large in the models shipped
        out.append(layer)
    return out


def _model_class(model):
    """keras.Model or tf_keras.Model, whichever ``model`` is."""
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras.Model
    import keras

    return keras.Model


def input_hessians(model, layers: list, images: np.ndarray, batch: int = 16) -> dict:
    """{id(layer): H}: Σ xxᵀ over the calibration images' inputs of each layer (float64).
    Conv2D 1x1 / Dense: (Cin, Cin) over every pixel; DepthwiseConv2D: (C, k*k, k*k) over each
    channel's k x k patches (the layer's strides and padding)."""
    import tensorflow as tf

    sub = _model_class(model)(model.inputs, [_layer_input(model, layer) for layer in layers])
    hs = {id(layer): 0.0 for layer in layers}
    for start in range(0, len(images), batch):
        outs = sub(images[start:start + batch], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for layer, x in zip(layers, outs):
            if _kind(layer) == "DepthwiseConv2D":
                kh, kw = _kernel(layer).shape[:2]
                sh, sw = layer.strides
                if tuple(layer.dilation_rate) != (1, 1):
                    raise ValueError(f"layer {layer.name!r}: GPTQ handles dilation 1 only, got {layer.dilation_rate}")
                p = tf.image.extract_patches(x, [1, kh, kw, 1], [1, sh, sw, 1], [1, 1, 1, 1], layer.padding.upper())
                p = tf.transpose(tf.reshape(p, [-1, kh * kw, int(x.shape[-1])]), [2, 1, 0])  # (C, k*k, n)
                h = tf.matmul(p, p, transpose_b=True)  # (C, k*k, k*k)
            else:
                v = tf.reshape(x, [-1, int(x.shape[-1])])
                h = tf.matmul(v, v, transpose_a=True)
            hs[id(layer)] = hs[id(layer)] + np.asarray(h, np.float64)  # float32 per batch, summed in float64
    return hs


def gptq_levels(w: np.ndarray, h: np.ndarray, grid: Grid, pins: np.ndarray) -> np.ndarray:
    """Levels (rows, cols) for weights ``w`` (rows = outputs, cols = inputs) with input Hessian
    ``h`` (cols, cols), or a batch: w (C, 1, k) with h (C, k, k). ``pins``: same shape as w,
    -1 free, else the level forced (the tensor's extremes -> 0 and 255)."""
    batched = h.ndim == 3
    w = np.array(w, np.float64)
    hh = np.array(h if batched else h[None], np.float64)
    ww = w if batched else w[None]
    pp = pins if batched else pins[None]
    n = ww.shape[-1]
    if not batched:  # act order: columns with the largest input energy first
        order = np.argsort(-np.diag(hh[0]), kind="stable")
    else:
        order = np.arange(n)
    ww, pp = ww[..., order], pp[..., order]
    hh = hh[:, order][:, :, order]
    diag = np.einsum("bii->bi", hh)
    dead = diag <= 0
    hh = hh + np.eye(n)[None] * (GPTQ_DAMP * np.maximum(diag.mean(axis=1), 1e-12))[:, None, None]
    hh[:, np.arange(n), np.arange(n)] += dead  # an input that is always zero: no compensation
    hinv = np.linalg.cholesky(np.linalg.inv(hh)).transpose(0, 2, 1)  # upper Cholesky of H^-1
    q = np.zeros_like(ww)
    for b0 in range(0, n, GPTQ_BLOCK):  # GPTQ's lazy batch updates: the same result, fewer passes over w
        b1 = min(b0 + GPTQ_BLOCK, n)
        errs = np.zeros(ww.shape[:-1] + (b1 - b0,))
        for i in range(b0, b1):
            col = ww[..., i]
            qi = grid.levels(col)
            qi = np.where(pp[..., i] >= 0, pp[..., i], qi)
            q[..., i] = qi
            err = (col - grid.values(qi)) / hinv[:, i, i][:, None]
            ww[..., i + 1:b1] -= err[..., None] * hinv[:, i, None, i + 1:b1]
            errs[..., i - b0] = err
        ww[..., b1:] -= errs @ hinv[:, b0:b1, b1:]
    out = np.empty_like(q)
    out[..., order] = q
    return out if batched else out[0]


def _pins(k: np.ndarray) -> np.ndarray:
    pins = np.full(k.shape, -1.0)
    pins.flat[int(np.argmin(k))] = 0
    pins.flat[int(np.argmax(k))] = UINT8_MAX
    return pins


def gptq_kernel(layer, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 kernel on TF.js' grid, its uint8 levels) for one layer from its input Hessian."""
    k = np.asarray(_kernel(layer).numpy(), np.float32)
    grid, pins = Grid(k), _pins(k)
    kind = _kind(layer)
    if kind == "DepthwiseConv2D":  # (kh, kw, C, 1) -> per channel (C, 1, kh*kw)
        kh, kw, c, m = k.shape
        if m != 1:
            raise ValueError(f"layer {layer.name!r}: depth_multiplier {m} (GPTQ handles 1)")
        w = k.reshape(kh * kw, c).T[:, None, :]
        q = gptq_levels(w, h, grid, pins.reshape(kh * kw, c).T[:, None, :])
        levels = q[:, 0, :].T.reshape(k.shape)
    else:  # Conv2D 1x1 (1, 1, Cin, Cout) / Dense (Cin, Cout) -> (Cout, Cin)
        w = k.reshape(-1, k.shape[-1]).T
        q = gptq_levels(w, h, grid, pins.reshape(-1, k.shape[-1]).T)
        levels = q.T.reshape(k.shape)
    levels = levels.astype(np.uint8)
    return grid.written(levels), levels


# --- calibration images that exist wherever the exporter runs -----------------------------------

def fixture_calibration(size: int, count: int = 48, seed: int = 0, jitter: bool = True) -> np.ndarray:
    """(count, size, size, 3) float32 raw RGB 0..255: beauty crops (the spec's margin) of the faces
    in tests/fixtures' public-domain photos (FIXTURE_FACES), each jittered (centre +-8 % of the side,
    side x0.9..1.15), mirrored every other time and colour-jittered (gain 0.75..1.25 per channel
    0.9..1.1, contrast 0.8..1.2), seeded: the same images on every machine. ``jitter=False``: the
    plain crops, as the page makes them."""
    from facepack import crop as crop_mod
    from facepack import spec
    from facepack.data.images import load_rgb

    rng = np.random.default_rng(seed)
    photos = {name: load_rgb(str(FIXTURE_DIR / name)) for name in {n for n, _ in FIXTURE_FACES}}
    out = np.empty((count, size, size, 3), np.float32)
    for i in range(count):
        name, box = FIXTURE_FACES[i % len(FIXTURE_FACES)]
        x0, y0, side = crop_mod.face_square(box, spec.BEAUTY["crop_margin"])
        if not jitter:
            out[i] = crop_mod.crop_squares(photos[name], [(x0, y0, side)], size)[0]
            continue
        side2 = side * rng.uniform(0.9, 1.15)
        cx = x0 + side / 2 + rng.uniform(-0.08, 0.08) * side
        cy = y0 + side / 2 + rng.uniform(-0.08, 0.08) * side
        img = crop_mod.crop_squares(photos[name], [(cx - side2 / 2, cy - side2 / 2, side2)], size)[0]
        if (i // len(FIXTURE_FACES)) % 2:
            img = img[:, ::-1]
        mean = img.mean()
        img = (img - mean) * rng.uniform(0.8, 1.2) + mean
        img = img * rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, size=3)
        out[i] = np.clip(img, 0, 255)
    return out


# --- the exporter's uint8 rule --------------------------------------------------------------------

# Issue 13: the uint8 beauty model (beauty_features + beauty_head) must stay within this many bytes.
BEAUTY_UINT8_MAX_BYTES = 4_500_000
MODEL_JSON_BYTES = 120_000  # room left for the two model.json files (shipped beauty: 114,003 + 2,741 bytes)
CALIBRATION_IMAGES = 48  # fixture_calibration crops for H and the float16 choice
SENSITIVITY_IMAGES = 16  # of those, the ones the float16 choice scores
GPTQ_STAGES = 5  # sequential GPTQ over the features: layer groups rounded one after another
# float16 values kept at most this share of the quantisable values (+1 byte each; the shipped model:
# 0.48 M of 3.44 M), so a small model is not kept float16 whole just because it fits max_bytes
FLOAT16_SHARE = 0.14
RULE_NAME = "equalise+gptq+float16"


def _weight_name(variable) -> str:
    """The name the tensorflowjs converter writes for a tf_keras weight ("layer/kernel")."""
    return variable.name.split(":")[0]


def _bundle_bytes(models, min_elements: int, float16: set) -> int:
    """Weight bytes of ``models`` written uint8 (>= min_elements values), float16 (ids in
    ``float16``) or float32 (the rest)."""
    total = 0
    for model in models:
        for v in model.weights:
            n = int(np.prod(v.shape))
            total += 4 * n if n < min_elements else (2 * n if id(v) in float16 else n)
    return total


def _round_beauty(features, head, min_elements: int):
    """Steps 1-2 of RULE_NAME on the tf_keras beauty pair, in place: -> (variables, {id: float32
    values before GPTQ}, {id: GPTQ values}, equalised pairs, expected-score function)."""
    size = int(features.input_shape[1])
    calib = fixture_calibration(size, CALIBRATION_IMAGES)
    n_pairs = equalise(features)
    models = (features, head)
    layers = {id(m): quantisable_layers(m, min_elements) for m in models}
    float_k = gptq_model(features, layers[id(features)], calib, stages=GPTQ_STAGES)
    fmap = np.asarray(features(calib, training=False))  # the head calibrates on the rounded features
    float_k.update(gptq_model(head, layers[id(head)], fmap))
    variables = [_kernel(layer) for m in models for layer in layers[id(m)]]
    gptq_k = {id(var): np.asarray(var.numpy(), np.float32) for var in variables}

    def expected(xs, batch: int = 32):
        bins = np.arange(int(head.output_shape[-1]), dtype=np.float64)
        return np.concatenate([np.asarray(head(features(xs[i:i + batch], training=False), training=False),
                                          np.float64) @ bins for i in range(0, len(xs), batch)])

    return variables, float_k, gptq_k, n_pairs, expected


def _sensitivity(variables, float_k, gptq_k, expected, xs, ref) -> dict:
    """{id(variable): mean |Δ expected score| over ``xs`` (vs ``ref``) with only that kernel
    GPTQ-rounded and the other quantised kernels float16, per value}. Leaves the kernels float16."""
    for var in variables:
        var.assign(float_k[id(var)].astype(np.float16).astype(np.float32))
    sens = {}
    for var in variables:
        var.assign(gptq_k[id(var)])
        sens[id(var)] = float(np.abs(expected(xs) - ref).mean()) / float_k[id(var)].size
        var.assign(float_k[id(var)].astype(np.float16).astype(np.float32))
    return sens


def _gain_sensitivity(variables, float_k, gptq_k, expected, xs, ref, top_share: float) -> dict:
    """{id(variable): how much keeping only that kernel float16 (every other quantised kernel
    GPTQ-rounded, the bundle's operating point) lowers |Δ expected score| vs ``ref``, per face;
    the mean over the ``top_share`` faces it helps most, per value}. Leaves the kernels GPTQ-rounded."""
    for var in variables:
        var.assign(gptq_k[id(var)])
    base = np.abs(expected(xs) - ref)
    top = max(1, int(len(xs) * top_share))
    sens = {}
    for var in variables:
        var.assign(float_k[id(var)].astype(np.float16).astype(np.float32))
        gain = base - np.abs(expected(xs) - ref)
        sens[id(var)] = float(np.sort(gain)[-top:].mean()) / float_k[id(var)].size
        var.assign(gptq_k[id(var)])
    return sens


def _float16_limit(models, variables, float_k, min_elements: int, max_bytes: int) -> float:
    quantised = sum(float_k[id(v)].size for v in variables)
    return min(max_bytes - MODEL_JSON_BYTES, _bundle_bytes(models, min_elements, set()) + FLOAT16_SHARE * quantised)


def _greedy_float16(models, variables, sens: dict, limit: float, min_elements: int) -> set:
    """ids of the kernels kept float16: most sensitive per value first, while the bytes fit ``limit``."""
    keep = set()
    for var in sorted(variables, key=lambda v: -sens[id(v)]):
        if _bundle_bytes(models, min_elements, keep | {id(var)}) <= limit:
            keep.add(id(var))
    return keep


def _plan_keep(models, variables, plan: dict, limit: float, min_elements: int) -> set:
    """ids of the kernels a quantization plan keeps float16 (ValueError if it names a kernel the
    model does not have or does not fit ``limit``)."""
    by_name = {_weight_name(v): v for v in variables}
    missing = [n for n in plan["float16"] if n not in by_name]
    if missing:
        raise ValueError(f"{PLAN_FILE}: float16 kernels {missing[:3]} are not quantisable kernels of this model; "
                         f"run `python -m facepack.export.quantize --plan RUN` again for this run")
    keep = {id(by_name[n]) for n in plan["float16"]}
    if _bundle_bytes(models, min_elements, keep) > limit:
        raise ValueError(f"{PLAN_FILE}: its float16 kernels make the weights {_bundle_bytes(models, min_elements, keep)} "
                         f"bytes > {int(limit)}; run `python -m facepack.export.quantize --plan RUN` again")
    return keep


def prepare_beauty_uint8(features, head, min_elements: int, log=None,
                         max_bytes: int = BEAUTY_UINT8_MAX_BYTES, plan: dict | None = None) -> tuple[dict, dict]:
    """Apply RULE_NAME to the tf_keras beauty pair in place; returns the (features, head)
    ``rule`` dicts for tfjs_io.save_layers_model (also the manifest's "quantization" block).

    Calibration: fixture_calibration (CALIBRATION_IMAGES crops of the public-domain fixture faces).
    1. equalise ``features`` (the head has no conv->BN pair);
    2. GPTQ every quantisable kernel (quantisable_layers) of both on TF.js' grid, sequentially
       (GPTQ_STAGES groups; the head calibrates on the rounded features' output);
    3. keep float16 the kernels ``plan["float16"]`` names (the run's quantization_plan.json,
       chosen on its own training faces by make_plan); without a plan, greedily the kernels whose
       uint8 rounding alone moves the expected score (points 0..100, mean over SENSITIVITY_IMAGES
       fixture crops) most per value, while the weight bytes stay <= max_bytes - MODEL_JSON_BYTES
       and the float16 values <= FLOAT16_SHARE of the quantised ones.
    Deterministic (seeded images, fixed order); ~1 min on 2 cores.
    """
    import time

    t0 = time.perf_counter()
    models = (features, head)
    variables, float_k, gptq_k, n_pairs, expected = _round_beauty(features, head, min_elements)
    limit = _float16_limit(models, variables, float_k, min_elements, max_bytes)
    if plan is not None:
        keep = _plan_keep(models, variables, plan, limit, min_elements)
        source, chosen = PLAN_FILE, f"the run's {PLAN_FILE}: score sensitivity on {plan['chosen']['on']}"
    else:
        xs = fixture_calibration(int(features.input_shape[1]), CALIBRATION_IMAGES)[:SENSITIVITY_IMAGES]
        ref = expected(xs)  # all GPTQ-rounded (the rule as first shipped; make_plan scores against float)
        keep = _greedy_float16(models, variables, _sensitivity(variables, float_k, gptq_k, expected, xs, ref),
                               limit, min_elements)
        source, chosen = "fixtures", f"score sensitivity on {SENSITIVITY_IMAGES} of the fixture crops (the run has no plan)"
    for var in variables:
        var.assign(float_k[id(var)] if id(var) in keep else gptq_k[id(var)])
    seconds = time.perf_counter() - t0
    rules = []
    for model in models:
        names = {id(v): _weight_name(v) for v in model.weights}
        mine = [v for v in variables if id(v) in names]
        rules.append({
            "rule": RULE_NAME,
            "calibration": f"{CALIBRATION_IMAGES} augmented crops of the fixture faces (tests/fixtures, public domain)",
            "float16_source": source,  # PLAN_FILE | "fixtures"
            "float16_chosen_by": chosen,
            "equalised_pairs": n_pairs if model is features else 0,
            "float16": [names[id(v)] for v in mine if id(v) in keep],
            "on_grid": [names[id(v)] for v in mine if id(v) not in keep],
        })  # no timing here: the manifest must come out the same on every run
    if log is not None:
        log(f"  uint8 rule {RULE_NAME}: {n_pairs} conv->BN pairs equalised, {len(variables) - len(keep)} kernels "
            f"GPTQ-rounded on TF.js' grid, {len(keep)} kept float16 by {chosen} "
            f"(weights {_bundle_bytes(models, min_elements, keep) / 1e6:.2f} MB), {seconds:.1f} s")
    return rules[0], rules[1]


def read_plan(run_dir) -> dict | None:
    """The run folder's quantization plan (PLAN_FILE, written by make_plan), or None."""
    if run_dir is None or not (Path(run_dir) / PLAN_FILE).is_file():
        return None
    import json

    plan = json.loads((Path(run_dir) / PLAN_FILE).read_text())
    if plan.get("rule") != RULE_NAME or plan.get("version") != PLAN_VERSION:
        raise ValueError(f"{Path(run_dir) / PLAN_FILE}: rule {plan.get('rule')!r} version {plan.get('version')!r}, "
                         f"the exporter needs {RULE_NAME!r} version {PLAN_VERSION}; run "
                         f"`python -m facepack.export.quantize --plan {run_dir}` again")
    return plan


def prepare_uint8(items, log=None, min_elements: int | None = None, beauty_run=None) -> None:
    """The exporter's hook for ``--quantize uint8`` (facepack/export/bundle.py): the beauty pair
    (roles beauty.features + beauty.head) gets prepare_beauty_uint8 (with ``beauty_run``'s
    quantization plan when it has one), its rule stored as ``item.meta["quantization"]``; every
    other model keeps TF.js' plain min/max rounding.
    min_elements: default tfjs_io.QUANT_MIN_ELEMENTS (read at call time)."""
    if min_elements is None:
        from facepack.export import tfjs_io

        min_elements = tfjs_io.QUANT_MIN_ELEMENTS
    by_role = {item.meta.get("role"): item for item in items if item.format == "layers-model"}
    feat, head = by_role.get("beauty.features"), by_role.get("beauty.head")
    if feat is not None and head is not None and feat.quantizable and head.quantizable:
        feat.meta["quantization"], head.meta["quantization"] = prepare_beauty_uint8(
            feat.model, head.model, min_elements, log, plan=read_plan(beauty_run))


# --- the run's own float16 choice (quantization_plan.json) ---------------------------------------

PLAN_FILE = "quantization_plan.json"
PLAN_VERSION = 1
PLAN_FACES = 64  # training-part faces the float16 choice scores
PLAN_CHECK_FACES = 256  # other training-part faces the plan's Δ is measured on (simulated TF.js uint8)
PLAN_SEED = 0
# the float16 choice scores each kernel by its mean gain on this share of the faces it helps most
# (the target is the worst face, not the mean). Chosen on the shipped run's 256 training check faces:
# max 0.152 points, vs 0.174-0.202 for the fixture rule's mean change with only that kernel uint8
# on the same 64 faces (or on 128, or its rms / top 10 % / max) and 0.368 for the mean gain.
PLAN_TOP_SHARE = 0.1


def training_faces(run_dir, count: int, seed: int = PLAN_SEED, skip: int = 0) -> tuple[np.ndarray, str]:
    """((count, S, S, 3) float32 0..255, description): face crops (the page's crop, as training
    made them) of ``count`` images drawn by ``seed`` from the run's TRAINING part (never its
    held-out faces), after skipping the first ``skip`` of that draw. Needs the run's dataset
    (training/evaluate.py finds it as evaluation does)."""
    from facepack.data.tfdata import beauty_dataset
    from facepack.runs import load_run
    from training import evaluate as ev
    from training import train_beauty

    _, info = load_run(run_dir)
    source, _ = ev._data_source(Path(run_dir), info, None)
    cfg = ev._trainer_cfg(train_beauty, info, source, None, False)
    train, val, _, _ = train_beauty.load_data(cfg)
    held = {str(s.path) for s in val}
    order = np.random.default_rng(seed).permutation(len(train))[skip:skip + count]
    pick = [train[i] for i in order]
    if any(str(s.path) in held for s in pick):
        raise ValueError(f"{run_dir}: a training-part face is also held out; the run's split is not the one recorded")
    squares, _, _ = train_beauty.crop_squares(cfg, pick, [])
    ds = beauty_dataset(pick, info["input_size"], 32, training=False, cache=False, squares=squares)
    xs = np.concatenate([(b[0] if isinstance(b, tuple) else b).numpy() for b in ds]).astype(np.float32)
    what = (f"{count} faces of the run's training part ({len(train)} images; drawn by seed {seed}"
            f"{f', after the first {skip}' if skip else ''}; the page's crop)")
    return xs, what


def _simulate_tfjs(variables, float_k, keep, models, min_elements: int):
    """Assign what the bundle stores: kept kernels float16, every other tensor of >= min_elements
    values on TF.js' uint8 grid (the GPTQ kernels already are), smaller ones float32. Returns the
    values to restore."""
    saved = {}
    kernels = {id(v) for v in variables}
    for model in models:
        for v in model.weights:
            n = int(np.prod(v.shape))
            if n < min_elements or id(v) in saved:
                continue
            val = np.asarray(v.numpy(), np.float32)
            saved[id(v)] = (v, val)
            if id(v) in keep:
                v.assign(float_k[id(v)].astype(np.float16).astype(np.float32))
            elif id(v) not in kernels:
                lo, scale = tfjs_uint8_grid(val)
                v.assign((lo + scale * tfjs_levels(val).astype(np.float64)).astype(np.float32))
    return saved


def make_plan(run_dir, faces: int = PLAN_FACES, check_faces: int = PLAN_CHECK_FACES, log=print,
              max_bytes: int = BEAUTY_UINT8_MAX_BYTES, out=None) -> dict:
    """Choose the beauty run's float16 kernels on its own training faces and write PLAN_FILE into
    ``run_dir`` (or to the file ``out``): the exporter's rule (equalise + sequential GPTQ on the fixture crops), then the
    greedy float16 choice (as prepare_beauty_uint8's, same byte limit) scored by _gain_sensitivity
    on ``faces`` training-part faces against the float model; the plan records the names, how they were chosen, and the simulated TF.js
    uint8 Δ (points 0..100) on ``check_faces`` other training-part faces. Returns the plan."""
    import json
    import time

    from facepack.export import sources
    from facepack.export.tfjs_io import QUANT_MIN_ELEMENTS

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    items = {i.meta["role"]: i for i in sources.beauty_exports(run_dir)}
    features, head = items["beauty.features"].model, items["beauty.head"].model
    models = (features, head)
    xs, what = training_faces(run_dir, faces)
    check, check_what = training_faces(run_dir, check_faces, skip=faces)
    log(f"{run_dir}: {len(xs)} + {len(check)} training faces loaded ({time.perf_counter() - t0:.0f} s)")
    variables, float_k, gptq_k, n_pairs, expected = _round_beauty(features, head, QUANT_MIN_ELEMENTS)
    for var in variables:
        var.assign(float_k[id(var)])
    ref, ref_check = expected(xs), expected(check)
    sens = _gain_sensitivity(variables, float_k, gptq_k, expected, xs, ref, PLAN_TOP_SHARE)
    limit = _float16_limit(models, variables, float_k, QUANT_MIN_ELEMENTS, max_bytes)
    keep = _greedy_float16(models, variables, sens, limit, QUANT_MIN_ELEMENTS)
    for var in variables:
        var.assign(gptq_k[id(var)])
    saved = _simulate_tfjs(variables, float_k, keep, models, QUANT_MIN_ELEMENTS)
    d = np.abs(expected(check) - ref_check)
    for v, val in saved.values():
        v.assign(val)
    names = [_weight_name(v) for v in variables if id(v) in keep]
    plan = {
        "version": PLAN_VERSION,
        "rule": RULE_NAME,
        "float16": names,
        "chosen": {
            "on": what,
            "how": (f"kernels GPTQ-rounded as the exporter does ({CALIBRATION_IMAGES} fixture crops, {GPTQ_STAGES} "
                    f"stages); each one's gain = how much keeping only it float16 (all others uint8) lowers "
                    f"|Δ expected score| vs the float model, mean over the {PLAN_TOP_SHARE:.0%} of those faces it "
                    f"helps most, per value; largest first while the weights fit "
                    f"{int(limit)} bytes ({max_bytes} - {MODEL_JSON_BYTES} for model.json, float16 <= "
                    f"{FLOAT16_SHARE} of the quantised values)"),
            "seed": PLAN_SEED,
        },
        "weights_bytes": _bundle_bytes(models, QUANT_MIN_ELEMENTS, keep),
        "measured": {
            "on": check_what,
            "how": "Keras with the bundle's stored values (float16 / TF.js uint8 grid / float32) vs the float model",
            "max_points": round(float(d.max()), 4), "mean_points": round(float(d.mean()), 4),
            "p95_points": round(float(np.percentile(d, 95)), 4), "n": int(len(d)),
        },
    }
    target = Path(out) if out is not None else run_dir / PLAN_FILE
    target.write_text(json.dumps(plan, indent=1) + "\n")
    log(f"wrote {target}: {len(names)} kernels float16 ({plan['weights_bytes'] / 1e6:.2f} MB weights); "
        f"training faces not chosen on: max {d.max():.3f} mean {d.mean():.3f} p95 {np.percentile(d, 95):.3f} points "
        f"(N={len(d)}); {time.perf_counter() - t0:.0f} s")
    return plan


PLAN_RUN = "a beauty training run folder (runs/beauty/<timestamp>: run.json and its model)"


def check_plan_run(run_dir) -> Path:
    """``--plan RUN_DIR`` checked before TensorFlow is imported: a folder with run.json (valid JSON;
    a beauty run when it says which), a complete model (runs.model_files) and its dataset on this
    machine (make_plan chooses on the run's own training faces). Raises ValueError, one line."""
    import json

    from facepack.runs import model_files

    path = Path(run_dir)
    if not path.exists():
        raise ValueError(f"--plan {run_dir}: no such folder; expected {PLAN_RUN}")
    if not path.is_dir():
        raise ValueError(f"--plan {run_dir}: is a file; expected {PLAN_RUN}")
    if not (path / "run.json").is_file():
        raise ValueError(f"--plan {run_dir}: not a training run (no run.json); expected {PLAN_RUN}")
    try:
        info = json.loads((path / "run.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"--plan {run_dir}: run.json is not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise ValueError(f"--plan {run_dir}: run.json is not a JSON object")
    kind = info.get("model")
    if kind is not None and kind != "beauty":
        raise ValueError(f"--plan {run_dir}: a {kind} run; the quantization plan is for beauty runs")
    try:
        model_files(path)
    except ValueError as err:  # "run X: no model: expected ..." (one line)
        raise ValueError(f"--plan {run_dir}: " + str(err).removeprefix(f"run {path}: ")) from None
    try:
        from training.evaluate import DATA_ENV, data_candidates, recorded_data
    except ImportError:  # not run from the repository: make_plan says it
        return path
    if recorded_data(path, info) is None:
        ds = info.get("dataset") or {}
        recorded = ds.get("path_from_project") or ds.get("path")
        raise ValueError(f"--plan {run_dir}: the run's dataset (recorded as {recorded!r}) is not on this machine "
                         f"(looked in {len(data_candidates(path, info))} places); the plan is chosen on the run's "
                         f"own training faces: set {DATA_ENV} to the folder that holds "
                         f"{Path(recorded).name if recorded else 'it'!r}")
    return path


class _PlanParser(argparse.ArgumentParser):
    """argparse, with the usage errors about --plan saying what RUN_DIR is (exit 2)."""

    def error(self, message):
        if "--plan" in message:
            message = f"--plan RUN_DIR: expected {PLAN_RUN}"
        super().error(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of faces >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of faces >= 1, got {value}")
    return value


def main(argv=None) -> int:
    """python -m facepack.export.quantize --plan RUN_DIR: write RUN_DIR/quantization_plan.json
    (~3-5 min on 2 cores; needs the run's dataset).

    Exit 2 (usage: RUN_DIR missing, a face count below 1) and 1 (a RUN_DIR that is no beauty run,
    or whose model or dataset is missing: check_plan_run; a plan already there without --force or
    --out) print one error line and import no TensorFlow."""
    import sys

    prog = "python -m facepack.export.quantize"
    p = _PlanParser(prog=prog, description=" ".join(main.__doc__.split("\n\n")[0].split()),
                    usage="%(prog)s --plan RUN_DIR [--faces N] [--check-faces N] [--out FILE | --force]")
    p.add_argument("--plan", required=True, metavar="RUN_DIR", help="a beauty run folder (its dataset must be here)")
    p.add_argument("--faces", type=_positive_int, default=PLAN_FACES, metavar="N",
                   help=f"training faces the float16 choice scores (default {PLAN_FACES})")
    p.add_argument("--check-faces", type=_positive_int, default=PLAN_CHECK_FACES, metavar="N",
                   help=f"other training faces Δ is measured on (default {PLAN_CHECK_FACES})")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="FILE", help=f"write the plan here instead of RUN_DIR/{PLAN_FILE} "
                                                     "(the exporter only reads the run's own)")
    where.add_argument("--force", action="store_true",
                       help=f"replace RUN_DIR/{PLAN_FILE} when the run already has one (the uint8 export then changes)")
    args = p.parse_args(argv)
    try:
        run_dir = check_plan_run(args.plan)
    except ValueError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    if args.out is None and not args.force and (run_dir / PLAN_FILE).exists():
        print(f"{prog}: error: {run_dir / PLAN_FILE} exists (the plan the exporter uses for this run's uint8 bundle); "
              f"pass --out FILE to write the new plan elsewhere, or --force to replace it", file=sys.stderr)
        return 1
    make_plan(run_dir, args.faces, args.check_faces, out=args.out)
    return 0


def gptq_model(model, layers: list, images: np.ndarray, stages: int = 1) -> dict:
    """GPTQ-round every kernel of ``layers`` (in model order) in place; returns {id(variable):
    its float32 values before}. stages > 1: sequential, as GPTQ does it: the layers are split into
    ``stages`` consecutive groups and each group's input Hessians are measured with the groups
    before it already rounded, so later layers compensate the earlier layers' error too."""
    before = {}
    groups = [list(g) for g in np.array_split(np.arange(len(layers)), max(1, min(stages, len(layers)))) if len(g)]
    for group in groups:
        chunk = [layers[i] for i in group]
        hessians = input_hessians(model, chunk, images)
        for layer in chunk:
            var = _kernel(layer)
            before[id(var)] = np.asarray(var.numpy(), np.float32)
            var.assign(gptq_kernel(layer, hessians[id(layer)])[0])
    return before


if __name__ == "__main__":
    import os
    import sys

    from facepack.export.cli import use_tensorflow_backend

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    note = use_tensorflow_backend()  # the plan runs TensorFlow ops on the model (input_hessians)
    if note:
        print(f"python -m facepack.export.quantize: {note}", file=sys.stderr, flush=True)
    sys.exit(main())
