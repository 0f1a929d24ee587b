"""A zoo of small Keras 3 models with non-trivial weights: what the exporter must carry to TF.js.

Shared by the conformance test (tests/test_export_conformance.py) and the comparison with the
official converter (bench/bench_export.py). ``ZOO`` is a table of ``ZooModel`` rows: one model per
layer kind of issue 11 (``case`` = its number there), one per Keras layer family, a few
``keras.applications`` built with ``weights=None`` at small sizes (``slow``), and some typical
user models. Each row says what the exporter must do with it (``expect``: "match", or "refuse"
with the reason).

    from facepack.export import zoo
    entry = zoo.get("causal_conv1d")
    model = zoo.build(entry, keras)         # seeded weights, BatchNorm statistics set
    xs = zoo.sample(entry, model)           # list of input arrays, one per model input (batch 2)

Weights: every variable is replaced by seeded random values (``randomize_weights``): kernels
N(0, 1/fan_in), so activations keep about unit scale; biases, BatchNorm/Normalization means and
offsets N(0, 0.2); scales and variances U(0.5, 1.5); never the initialisers' zeros and ones that
hide mistakes (a dropped bias, an ignored moving variance).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

SEED = 20261130
BATCH = 2
CUSTOM_LAYERS_FILE = Path(__file__).with_name("custom_layers.py")
RUNNER = Path(__file__).with_name("run_bundles.mjs")

# issue 11's list of layer kinds that failed (its numbering); 22 = mixed_float16 ("Also:")
ISSUE_CASES = tuple(range(1, 23))


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo.

    name: manifest/model name (letters, digits, _).
    family: "issue" (a case of issue 11), a Keras layer family, "applications" or "user".
    builder: keras -> keras.Model (weights are randomised afterwards by ``build``).
    expect: "match" (exported, equal to Keras on cpu and wasm) or "refuse" (a known gap: a one-line
      ExportError containing ``refuse_words``; a match is accepted too, then the row should change).
    reason: for "refuse", why (and ``refuse_words``: words the message must contain); else a note.
    case: issue 11's case number, if any.
    slow: under the `conformance_slow` marker (applications, per-activation models).
    unsafe: the model needs ``unsafe=True`` (Lambda); custom_objects: it needs the layers module.
    source: "path" (exported from the saved .keras file, as the CLI does) or "object" (from the
      model object: subclassed models, which a .keras file cannot rebuild without their class).
    policy: Keras dtype policy to build under ("mixed_float16"); the reference is then the
      float32 twin (same weights), since the exporter writes float32.
    sampler: (rng, model) -> list of input arrays; default: ``default_sample``.
    """

    name: str
    family: str
    builder: Callable
    expect: str = "match"
    reason: str = ""
    refuse_words: tuple = ()
    case: int | None = None
    slow: bool = False
    unsafe: bool = False
    custom_objects: bool = False
    source: str = "path"
    policy: str | None = None
    sampler: Callable | None = None
    tags: tuple = field(default_factory=tuple)


# --- weights ------------------------------------------------------------------------------------

_SCALE_NAMES = {"gamma", "moving_variance", "variance", "scale"}
_OFFSET_NAMES = {"beta", "bias", "moving_mean", "mean", "shift", "center", "offset"}
_SKIP_NAMES = {"count", "seed_generator_state", "iterations"}


def _fan_in(name: str, shape: tuple) -> int:
    if name == "depthwise_kernel":  # (kh, kw, cin, multiplier): each output sees kh*kw inputs
        return int(np.prod(shape[:-2]))
    if name == "recurrent_kernel" or len(shape) == 3 and name == "kernel" and shape[0] < np.prod(shape[1:]):
        return int(shape[0])  # (units, gates*units); attention projections (dim, heads, key_dim)
    return int(np.prod(shape[:-1]))


def random_value(name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """A seeded value for a variable called ``name`` (its last path part) of ``shape``."""
    shape = tuple(int(d) for d in shape)
    if name in _SCALE_NAMES:
        return rng.uniform(0.5, 1.5, shape)
    if name in _OFFSET_NAMES or len(shape) <= 1:
        return rng.normal(0.0, 0.2, shape)
    if name == "alpha":  # PReLU slopes
        return rng.uniform(0.05, 0.3, shape)
    if name == "embeddings":
        return rng.normal(0.0, 1.0, shape)
    return rng.normal(0.0, 1.0, shape) / np.sqrt(max(_fan_in(name, shape), 1))


def randomize_weights(model, seed: int = SEED) -> int:
    """Replace every float variable of ``model`` by ``random_value``; returns how many were set."""
    rng = np.random.default_rng(seed)
    done = 0
    for v in model.weights:
        name = v.name.split("/")[-1].split(":")[0]
        if name in _SKIP_NAMES or "int" in str(v.dtype) or "bool" in str(v.dtype):
            continue
        v.assign(random_value(name, tuple(v.shape), rng).astype(str(v.dtype)))
        done += 1
    return done


# --- inputs -------------------------------------------------------------------------------------

def default_sample(rng: np.random.Generator, model) -> list[np.ndarray]:
    """BATCH inputs per model input: N(0, 1) floats; ints in 0..9 (token ids, see the rows' samplers)."""
    out = []
    for t in model.inputs:
        shape = (BATCH,) + tuple(int(d) for d in t.shape[1:])
        if "int" in str(t.dtype):
            out.append(rng.integers(0, 10, shape).astype(np.int32))
        else:
            out.append(rng.normal(0.0, 1.0, shape).astype(np.float32))
    return out


def _tokens(vocab: int):
    def sampler(rng, model):
        return [rng.integers(0, vocab, (BATCH,) + tuple(int(d) for d in model.inputs[0].shape[1:])).astype(np.int32)]
    return sampler


def _padded_tokens(vocab: int):
    """Token ids with trailing 0 padding (mask_zero): sequence lengths differ across the batch."""
    def sampler(rng, model):
        n = int(model.inputs[0].shape[1])
        ids = rng.integers(1, vocab, (BATCH, n)).astype(np.int32)
        for i in range(BATCH):
            ids[i, n - 2 - 2 * i:] = 0
        return [ids]
    return sampler


def _masked_steps(rng, model):
    """N(0,1) sequences whose last steps are all zeros (what Masking(0.0) masks), differing per item."""
    x = default_sample(rng, model)[0]
    for i in range(BATCH):
        x[i, x.shape[1] - 2 - 2 * i:] = 0.0
    return [x]


def _pixels(rng, model):
    """Raw RGB 0..255 images (the applications' own preprocessing is inside the model)."""
    return [rng.uniform(0, 255, (BATCH,) + tuple(int(d) for d in t.shape[1:])).astype(np.float32)
            for t in model.inputs]


# --- builders -----------------------------------------------------------------------------------

def _chain(shape, *make_layers, dtype="float32"):
    """A builder: Input(shape) -> each layer in turn (make_layers: keras -> layer)."""
    def builder(keras):
        x = inp = keras.Input(shape, dtype=dtype)
        for make in make_layers:
            x = make(keras)(x)
        return keras.Model(inp, x)
    return builder


def _branches(shape, *make_layers, merge="concat", pre=None):
    """A builder: Input(shape) [-> pre] -> each layer on the same tensor -> flattened and concatenated."""
    def builder(keras):
        inp = keras.Input(shape)
        x = pre(keras)(inp) if pre else inp
        outs = [make(keras)(x) for make in make_layers]
        outs = [keras.layers.Flatten()(y) if len(y.shape) > 2 else y for y in outs]
        return keras.Model(inp, keras.layers.Concatenate()(outs) if len(outs) > 1 else outs[0])
    return builder


def _L(cls, *args, **kw):
    """keras -> keras.layers.<cls>(*args, **kw), deferred until the Keras module is known."""
    return lambda keras: getattr(keras.layers, cls)(*args, **kw)


def _attention(keras):
    q, v = keras.Input((5, 8)), keras.Input((7, 8))
    y = keras.layers.Attention(use_scale=True, score_mode="dot")([q, v])
    return keras.Model([q, v], y)


def _additive_attention(keras):
    q, v = keras.Input((5, 8)), keras.Input((7, 8))
    return keras.Model([q, v], keras.layers.AdditiveAttention()([q, v]))


def _mha(keras):
    x = keras.Input((6, 8))
    y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    return keras.Model(x, y)


def _mha_cross(keras):
    q, kv = keras.Input((4, 8)), keras.Input((6, 12))
    y = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, output_shape=7)(q, kv)
    return keras.Model([q, kv], y)


def _two_input_concat(keras):
    a, b = keras.Input((8,), name="a"), keras.Input((4,), name="b")
    return keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])))


def _merging(keras):
    """Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot of two projections."""
    a, b = keras.Input((6,)), keras.Input((6,))
    pa, pb = keras.layers.Dense(5)(a), keras.layers.Dense(5)(b)
    L = keras.layers
    outs = [L.Add()([pa, pb]), L.Subtract()([pa, pb]), L.Multiply()([pa, pb]), L.Average()([pa, pb]),
            L.Maximum()([pa, pb]), L.Minimum()([pa, pb]), L.Concatenate()([pa, pb]), L.Dot(axes=1)([pa, pb]),
            L.Dot(axes=1, normalize=True)([pa, pb])]
    return keras.Model([a, b], L.Concatenate()(outs))


def _dot_3d(keras):
    a, b = keras.Input((4, 6)), keras.Input((5, 6))
    return keras.Model([a, b], keras.layers.Dot(axes=(2, 2))([a, b]))


def _lstm_state(keras):
    x = keras.Input((7, 4))
    seq, h, c = keras.layers.LSTM(6, return_sequences=True, return_state=True)(x)
    out, h2 = keras.layers.GRU(5, return_state=True, reset_after=False)(seq, initial_state=None)
    return keras.Model(x, [out, h, c, h2])


def _bidirectional(keras):
    x = keras.Input((7, 4))
    y = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True))(x)
    return keras.Model(x, keras.layers.Bidirectional(keras.layers.GRU(3, reset_after=False), merge_mode="sum")(y))


def _time_distributed(keras):
    x = keras.Input((3, 8, 8, 2))
    y = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3))(x)
    return keras.Model(x, keras.layers.TimeDistributed(keras.layers.Flatten())(y))


def _lambda(keras):
    x = keras.Input((6,))
    y = keras.layers.Lambda(lambda t: t * t + 1.0)(keras.layers.Dense(4)(x))
    return keras.Model(x, y)


def _custom_layer(keras):
    from facepack.export.zoo.custom_layers import ScaledSoftsign

    x = keras.Input((6,))
    return keras.Model(x, keras.layers.Dense(3)(ScaledSoftsign()(keras.layers.Dense(5)(x))))


def _subclassed(keras):
    class TwoTower(keras.Model):
        """A subclassed model: its structure exists only in Python's ``call``."""

        def __init__(self):
            super().__init__()
            self.a = keras.layers.Dense(8, activation="relu")
            self.b = keras.layers.Dense(8, activation="tanh")
            self.out = keras.layers.Dense(3)

        def call(self, x):
            return self.out(self.a(x) * self.b(x) + x[:, :1])

    model = TwoTower()
    model(np.zeros((1, 6), np.float32))  # builds the weights
    return model


def _cumulative_ops(keras):
    """keras.ops.cumsum/cumprod on the last axis written as -1 and as its positive index, on a
    middle axis written as -2, followed by a Dense (TF.js 4.22 took a negative axis as a broken
    permutation; the Dense then failed in matMul), plus tf.math.cumsum exclusive/reverse (Lambda)."""
    exclusive_reverse = lambda t: __import__("tensorflow").math.cumsum(t, axis=-1, exclusive=True, reverse=True)  # noqa: E731

    x = keras.Input((4, 8))
    h = keras.layers.Dense(8)(x)
    ys = [keras.ops.cumsum(h, axis=-1), keras.ops.cumsum(h, axis=2), keras.ops.cumsum(h, axis=-2),
          keras.ops.cumprod(keras.ops.tanh(h) + 1.0, axis=-1), keras.layers.Lambda(exclusive_reverse)(h)]
    y = keras.layers.Dense(3)(keras.layers.Concatenate()(ys))
    flat = keras.ops.cumsum(keras.layers.Dense(8)(keras.layers.Flatten()(x)), axis=-1)  # rank 2
    return keras.Model(x, [y, flat])


def _masking_lstm(keras):
    x = keras.Input((8, 3))
    y = keras.layers.LSTM(5)(keras.layers.Masking(0.0)(x))
    return keras.Model(x, y)


def _exact_gelu(keras):
    x = keras.Input((8,))
    y = keras.layers.Dense(6, activation=keras.activations.gelu)(x)  # approximate=False by default
    y = keras.layers.Activation("gelu")(keras.layers.Dense(5)(y))
    return keras.Model(x, y)


def _fused_conv_bias(keras):
    """Conv (no bias) followed by per-channel affine layers: grappler folds them into fused
    convolutions whose biases are rank 4 when the model is a graph model (TF.js WASM wants rank 1)."""
    c = 6
    mean, var = np.linspace(-0.5, 0.5, c), np.linspace(0.5, 1.5, c)
    x = inp = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(c, 3, padding="same", use_bias=False)(x)
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=var)(x)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False)(keras.layers.ReLU()(x))
    x = keras.layers.Normalization(axis=-1, mean=mean[::-1], variance=var)(x)
    x = keras.layers.Activation("gelu")(x)
    return keras.Model(inp, keras.layers.Conv2D(4, 1)(x))


def _mixed_float16(keras):
    x = inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax", dtype="float32")(x))


def _small_cnn(keras):
    L = keras.layers
    x = inp = keras.Input((28, 28, 3))
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    for filters in (8, 16):
        x = L.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.MaxPooling2D()(x)
    x = L.Dropout(0.3)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inp, L.Dense(5, activation="softmax")(x))


def _text_classifier(keras):
    L = keras.layers
    x = inp = keras.Input((12,), dtype="int32")
    x = L.Embedding(100, 8, mask_zero=True)(x)
    x = L.GRU(8)(x)
    return keras.Model(inp, L.Dense(3, activation="softmax")(L.Dropout(0.2)(x)))


def _seq2seq(keras):
    L = keras.layers
    x = inp = keras.Input((16, 4))
    x = L.Conv1D(8, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.LSTM(8, return_sequences=True)(x)
    return keras.Model(inp, L.TimeDistributed(L.Dense(2))(x))


def _tabular(keras):
    L = keras.layers
    num, cat = keras.Input((6,), name="numeric"), keras.Input((1,), dtype="int32", name="category")
    e = L.Flatten()(L.Embedding(7, 3)(cat))
    x = L.Concatenate()([L.BatchNormalization()(num), e])
    x = L.Dense(16, activation="relu")(x)
    x = L.Dropout(0.1)(x)
    return keras.Model([num, cat], L.Dense(1, activation="sigmoid")(x))


def _tabular_sample(rng, model):
    return [rng.normal(0, 1, (BATCH, 6)).astype(np.float32), rng.integers(0, 7, (BATCH, 1)).astype(np.int32)]


def _app(fn_name: str, size: int, **kw):
    def builder(keras):
        fn = getattr(keras.applications, fn_name)
        # logits (no softmax): a random network's softmax saturates to one-hot, hiding differences
        return fn(input_shape=(size, size, 3), weights=None, classes=10, classifier_activation=None, **kw)
    return builder


def _activation(name: str):
    # glu halves the last axis: give it an even one; sparsemax/softmax/log_softmax work on the last axis
    return _chain((6,), _L("Dense", 8), _L("Activation", name))


def _activations_group(names):
    return _branches((6,), *[_L("Activation", n) for n in names], pre=_L("Dense", 8))


ACTIVATIONS = ("celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
               "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
               "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign",
               "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh", "tanh_shrink")
# (keras.activations.threshold needs its arguments: it cannot be named in Activation("..."))
# the names TF.js 4.22's layers format knows (directly or after the bridge's renames)
ACTIVATIONS_TFJS = ("elu", "exponential", "gelu", "hard_sigmoid", "linear", "log_softmax", "mish", "relu",
                    "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign", "swish", "tanh")


ZOO: tuple[ZooModel, ...] = (
    # --- issue 11's cases -------------------------------------------------------------------
    ZooModel("causal_conv1d", "issue", _chain((16, 3), _L("Conv1D", 8, 3, padding="causal", dilation_rate=2),
                                              _L("Conv1D", 4, 3, padding="causal")), case=1),
    ZooModel("separable_conv2d", "issue", _chain((16, 16, 3), _L("SeparableConv2D", 8, 3, depth_multiplier=2,
                                                                 padding="same"),
                                                 _L("SeparableConv2D", 4, 3, strides=2)), case=2),
    ZooModel("group_norm", "issue", _chain((8, 8, 3), _L("Conv2D", 8, 3), _L("GroupNormalization", groups=4)),
             case=3),
    ZooModel("unit_norm", "issue", _chain((6,), _L("Dense", 8), _L("UnitNormalization")), case=4),
    ZooModel("attention", "issue", _attention, case=5),
    ZooModel("gru_reset_after", "issue", _chain((7, 4), _L("GRU", 6, return_sequences=True), _L("GRU", 5)),
             case=6),
    ZooModel("resizing", "issue", _chain((16, 16, 3), _L("Resizing", 12, 10)), case=7),
    ZooModel("upsampling_bilinear", "issue", _chain((6, 5, 3), _L("Conv2D", 4, 1),
                                                    _L("UpSampling2D", 2, interpolation="bilinear")), case=8),
    ZooModel("embedding_ids", "issue", _chain((10,), _L("Embedding", 50, 8), _L("GlobalAveragePooling1D"),
                                              _L("Dense", 3), dtype="int32"), case=9, sampler=_tokens(50)),
    ZooModel("two_input_concat", "issue", _two_input_concat, case=10),
    ZooModel("bidirectional_lstm", "issue", _bidirectional, case=11),
    ZooModel("time_distributed_conv2d", "issue", _time_distributed, case=12),
    ZooModel("multi_head_attention", "issue", _mha, case=13),
    ZooModel("leaky_relu_0_2", "issue", _chain((6,), _L("Dense", 8), _L("LeakyReLU", negative_slope=0.2)), case=14),
    ZooModel("lambda", "issue", _lambda, case=15, unsafe=True),
    ZooModel("custom_layer", "issue", _custom_layer, case=16, custom_objects=True),
    ZooModel("subclassed", "issue", _subclassed, case=17, source="object",
             reason="no layers config: a graph model (its fused Dense+tanh is split for TF.js)",
             sampler=lambda rng, model: [rng.normal(0.0, 1.0, (BATCH, 6)).astype(np.float32)]),
    ZooModel("masking_lstm", "issue", _masking_lstm, case=18, sampler=_masked_steps),
    ZooModel("exact_gelu", "issue", _exact_gelu, case=19),
    ZooModel("fused_conv_bias", "issue", _fused_conv_bias, case=20),
    ZooModel("no_weights", "issue", _chain((4, 5), _L("Flatten")), case=21),
    ZooModel("mixed_float16", "issue", _mixed_float16, case=22, policy="mixed_float16",
             reason="compared with its float32 twin (same weights): the exporter writes float32"),
    # --- ops ----------------------------------------------------------------------------------
    ZooModel("cumulative_ops", "ops", _cumulative_ops, unsafe=True,
             reason="graph model: Keras 3 ops; static/facepack/layers/ops.js makes a negative axis positive"),
    # --- conv ---------------------------------------------------------------------------------
    ZooModel("conv1d", "conv", _chain((20, 3), _L("Conv1D", 8, 3, padding="same", activation="relu"),
                                      _L("Conv1D", 6, 3, strides=2), _L("Conv1D", 4, 3, dilation_rate=2))),
    ZooModel("conv2d", "conv", _chain((17, 15, 3), _L("Conv2D", 8, 3, strides=2, padding="same"),
                                      _L("Conv2D", 6, (3, 2), dilation_rate=2, activation="tanh"))),
    ZooModel("conv3d", "conv", _chain((6, 8, 8, 2), _L("Conv3D", 4, 3, padding="same"), _L("Conv3D", 3, 2, strides=2))),
    ZooModel("conv2d_transpose", "conv", _chain((5, 6, 3), _L("Conv2DTranspose", 6, 3, strides=2, padding="same"),
                                                _L("Conv2DTranspose", 4, 3))),
    ZooModel("conv1d_transpose", "conv", _chain((8, 3), _L("Conv1DTranspose", 5, 3, strides=2))),
    ZooModel("conv3d_transpose", "conv", _chain((3, 4, 4, 2), _L("Conv3DTranspose", 3, 2, strides=2))),
    ZooModel("depthwise_conv2d", "conv", _chain((12, 12, 4), _L("DepthwiseConv2D", 3, depth_multiplier=2, padding="same"),
                                                _L("DepthwiseConv2D", 3, strides=2))),
    ZooModel("depthwise_conv1d", "conv", _chain((12, 4), _L("DepthwiseConv1D", 3, depth_multiplier=2))),
    ZooModel("separable_conv1d", "conv", _chain((12, 4), _L("SeparableConv1D", 6, 3, padding="same"))),
    # --- pooling ------------------------------------------------------------------------------
    ZooModel("pooling1d", "pooling", _branches((12, 4), _L("MaxPooling1D", 2), _L("AveragePooling1D", 3, strides=2),
                                               _L("GlobalMaxPooling1D"), _L("GlobalAveragePooling1D"))),
    ZooModel("pooling2d", "pooling", _branches((9, 10, 3), _L("MaxPooling2D", 2), _L("AveragePooling2D", 3, padding="same"),
                                               _L("GlobalMaxPooling2D"), _L("GlobalAveragePooling2D"))),
    ZooModel("pooling3d", "pooling", _branches((4, 6, 6, 2), _L("MaxPooling3D", 2), _L("AveragePooling3D", 2),
                                               _L("GlobalMaxPooling3D"), _L("GlobalAveragePooling3D"))),
    # --- normalization ------------------------------------------------------------------------
    ZooModel("batch_norm", "normalization", _chain((8, 8, 3), _L("Conv2D", 6, 3), _L("BatchNormalization"),
                                                   _L("Flatten"), _L("Dense", 5), _L("BatchNormalization"))),
    ZooModel("layer_norm", "normalization", _chain((5, 6), _L("LayerNormalization"), _L("Dense", 4))),
    ZooModel("layer_norm_multi_axis", "normalization", _chain((4, 5, 3), _L("LayerNormalization", axis=[1, 2, 3]),
                                                              _L("LayerNormalization", axis=[2, 3]))),
    ZooModel("rms_norm", "normalization", _chain((5, 6), _L("RMSNormalization"))),
    # --- recurrent ----------------------------------------------------------------------------
    ZooModel("simple_rnn", "recurrent", _chain((7, 4), _L("SimpleRNN", 6))),
    ZooModel("lstm", "recurrent", _chain((7, 4), _L("LSTM", 6))),
    ZooModel("gru_reset_before", "recurrent", _chain((7, 4), _L("GRU", 6, reset_after=False))),
    ZooModel("stacked_lstm", "recurrent", _chain((7, 4), _L("LSTM", 6, return_sequences=True),
                                                 _L("SimpleRNN", 5, return_sequences=True), _L("LSTM", 4))),
    ZooModel("recurrent_state", "recurrent", _lstm_state),
    ZooModel("go_backwards_lstm", "recurrent", _chain((7, 4), _L("LSTM", 5, go_backwards=True))),
    ZooModel("conv_lstm2d", "recurrent", _chain((3, 6, 6, 2), _L("ConvLSTM2D", 3, 3))),
    # --- attention ----------------------------------------------------------------------------
    ZooModel("additive_attention", "attention", _additive_attention),
    ZooModel("mha_cross", "attention", _mha_cross),
    # --- merging ------------------------------------------------------------------------------
    ZooModel("merging", "merging", _merging, reason="TF.js 4.22 has no Subtract layer: static/facepack/layers/"),
    ZooModel("dot_3d", "merging", _dot_3d),
    # --- reshaping ----------------------------------------------------------------------------
    ZooModel("reshape_permute_flatten", "reshaping", _chain((4, 6), _L("Reshape", (3, 8)), _L("Permute", (2, 1)),
                                                            _L("Flatten"), _L("Dense", 4))),
    ZooModel("flatten_rank2", "reshaping", _chain((6,), _L("Dense", 4), _L("Flatten"), _L("Dense", 3)),
             reason="Keras 3's Flatten accepts a rank-2 input (identity); TF.js' wants rank >= 3, so the bridge "
                    "writes it as a Reshape((units,)) under the same name"),
    ZooModel("repeat_vector", "reshaping", _chain((5,), _L("Dense", 3), _L("RepeatVector", 4), _L("Flatten"))),
    ZooModel("crop_pad_upsample_1d", "reshaping", _chain((8, 3), _L("Cropping1D", (1, 2)), _L("ZeroPadding1D", (2, 1)),
                                                         _L("UpSampling1D", 2), _L("Conv1D", 2, 3))),
    ZooModel("crop_pad_upsample_2d", "reshaping", _chain((8, 9, 3), _L("Cropping2D", ((1, 2), (0, 3))),
                                                         _L("ZeroPadding2D", ((2, 1), (1, 0))),
                                                         _L("UpSampling2D", (2, 3)), _L("Conv2D", 2, 3))),
    ZooModel("crop_pad_upsample_3d", "reshaping", _chain((5, 6, 4, 2), _L("Cropping3D", 1), _L("ZeroPadding3D", 1),
                                                         _L("UpSampling3D", 2), _L("Conv3D", 2, 3))),
    # --- preprocessing ------------------------------------------------------------------------
    ZooModel("rescaling", "preprocessing", _chain((6, 6, 3), _L("Rescaling", 1 / 255.0, offset=-0.5),
                                                  _L("Conv2D", 3, 3))),
    ZooModel("normalization_layer", "preprocessing",
             _chain((6, 6, 3), _L("Normalization", axis=-1, mean=[120.0, 110.0, 100.0], variance=[3000.0, 2500.0, 2800.0]),
                    _L("Conv2D", 3, 3))),
    ZooModel("center_crop", "preprocessing", _chain((12, 11, 3), _L("CenterCrop", 8, 6), _L("Conv2D", 2, 3))),
    ZooModel("resizing_nearest", "preprocessing", _chain((9, 8, 3), _L("Resizing", 14, 6, interpolation="nearest"))),
    # --- activations --------------------------------------------------------------------------
    ZooModel("activations_tfjs", "activations", _activations_group(ACTIVATIONS_TFJS),
             reason="the activation names TF.js layers know, in one model"),
    ZooModel("activations_keras3", "activations",
             _activations_group(tuple(a for a in ACTIVATIONS if a not in ACTIVATIONS_TFJS + ("sparsemax",))),
             reason="the activation names only Keras 3 has, in one model (sparsemax: its own row)"),
    ZooModel("activation_layers", "activations",
             _branches((8,), _L("ReLU", max_value=1.5, negative_slope=0.1, threshold=0.2), _L("ELU", alpha=0.7),
                       _L("PReLU"), _L("Softmax"), _L("ReLU"), _L("LeakyReLU"), pre=_L("Dense", 8))),
    # --- embeddings, core, dropout ------------------------------------------------------------
    ZooModel("embedding_mask_zero", "embeddings", _chain((10,), _L("Embedding", 30, 6, mask_zero=True),
                                                         _L("LSTM", 4), dtype="int32"), sampler=_padded_tokens(30)),
    ZooModel("dense", "core", _chain((7,), _L("Dense", 9, activation="relu"), _L("Dense", 3, use_bias=False))),
    ZooModel("dense_rank3", "core", _chain((4, 7), _L("Dense", 5))),
    ZooModel("einsum_dense", "core", _chain((4, 6), _L("EinsumDense", "abc,cd->abd", output_shape=(None, 5),
                                                       bias_axes="d"))),
    ZooModel("dropout_family", "core", _chain((6, 6, 3), _L("SpatialDropout2D", 0.3), _L("Conv2D", 4, 3),
                                              _L("GaussianNoise", 0.5), _L("GaussianDropout", 0.3),
                                              _L("AlphaDropout", 0.2), _L("Dropout", 0.5),
                                              _L("ActivityRegularization", l1=0.01))),
    # --- typical user models ------------------------------------------------------------------
    ZooModel("user_cnn_classifier", "user", _small_cnn, sampler=_pixels),
    ZooModel("user_text_classifier", "user", _text_classifier, sampler=_padded_tokens(100)),
    ZooModel("user_conv1d_lstm", "user", _seq2seq),
    ZooModel("user_tabular_two_inputs", "user", _tabular, sampler=_tabular_sample),
    # --- keras.applications, weights=None, small inputs (slow) --------------------------------
    ZooModel("mobilenet_v3_small", "applications", _app("MobileNetV3Small", 64), slow=True, sampler=_pixels),
    ZooModel("mobilenet_v3_small_minimalistic", "applications", _app("MobileNetV3Small", 64, minimalistic=True),
             slow=True, sampler=_pixels),
    ZooModel("mobilenet_v2", "applications", _app("MobileNetV2", 64, alpha=0.35), slow=True, sampler=_pixels),
    ZooModel("efficientnet_b0", "applications", _app("EfficientNetB0", 64), slow=True, sampler=_pixels),
    ZooModel("efficientnet_v2_b0", "applications", _app("EfficientNetV2B0", 64), slow=True, sampler=_pixels),
    ZooModel("densenet121", "applications", _app("DenseNet121", 32), slow=True, sampler=_pixels),
    ZooModel("resnet50_v2", "applications", _app("ResNet50V2", 32), slow=True, sampler=_pixels),
    ZooModel("convnext_tiny", "applications", _app("ConvNeXtTiny", 32), slow=True, sampler=_pixels),
    ZooModel("nasnet_mobile", "applications", _app("NASNetMobile", 32), slow=True, sampler=_pixels),
) + tuple(
    # every keras.activations name on its own (the grouped rows above are the fast version)
    ZooModel(f"activation_{name}", "activations", _activation(name), slow=True,
             **({"reason": "no tf_keras/TF.js sparsemax: a graph model; its Cumsum(axis=-1) runs through "
                           "static/facepack/layers/ops.js (TF.js 4.22's kernels broke on the negative axis)"}
                if name == "sparsemax" else {}))
    for name in ACTIVATIONS
)


# Family rows that a faster row already covers in kind: checked in the slow set only, to keep the
# default test run within its CI budget (tests/test_export_conformance.py).
SLOW_FAMILY_ROWS = frozenset({"stacked_lstm", "go_backwards_lstm", "conv_lstm2d", "mha_cross", "dense_rank3",
                              "crop_pad_upsample_3d", "depthwise_conv1d", "resizing_nearest"})
ZOO = tuple(replace(e, slow=True) if e.name in SLOW_FAMILY_ROWS else e for e in ZOO)


def get(name: str) -> ZooModel:
    """The zoo row called ``name`` (KeyError naming the known rows otherwise)."""
    for entry in ZOO:
        if entry.name == name:
            return entry
    raise KeyError(f"zoo model {name!r} does not exist; known: {', '.join(e.name for e in ZOO)}")


def select(slow: bool | None = None, names=None) -> list[ZooModel]:
    """Rows by speed (slow=None: all) and/or by name."""
    rows = [e for e in ZOO if slow is None or e.slow == slow]
    if names:
        wanted = set(names)
        unknown = wanted - {e.name for e in ZOO}
        if unknown:
            raise KeyError(f"zoo models {sorted(unknown)} do not exist")
        rows = [e for e in rows if e.name in wanted]
    return rows


@contextlib.contextmanager
def dtype_policy(keras, policy: str | None):
    """Build under Keras' dtype ``policy`` (None: unchanged), restored afterwards."""
    if policy is None:
        yield
        return
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def build(entry: ZooModel, keras, policy: str | None = "entry", seed: int = SEED):
    """The row's model with seeded weights (``randomize_weights``).

    policy: "entry" builds under the row's own dtype policy; None under float32 (the float32 twin
    of a mixed-precision row: same weights, since they are drawn by shape and name).
    """
    keras.utils.set_random_seed(seed)
    with dtype_policy(keras, entry.policy if policy == "entry" else policy):
        model = entry.builder(keras)
    randomize_weights(model, seed)
    return model


def sample(entry: ZooModel, model, seed: int = SEED) -> list[np.ndarray]:
    """The row's inputs: one array per model input, batch BATCH (int32 token ids, float32 otherwise)."""
    rng = np.random.default_rng(seed + 1)
    return (entry.sampler or default_sample)(rng, model)


def reference(entry: ZooModel, keras, model, xs: list) -> list[np.ndarray]:
    """Keras' outputs for ``xs`` (list of float32 arrays); the float32 twin's for a mixed-precision row."""
    if entry.policy is not None:
        model = build(entry, keras, policy=None)
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0, batch_size=BATCH)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o, dtype=np.float32) for o in outs]
