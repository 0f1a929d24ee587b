"""facepack/export/bridge.py: Keras 3 configs translated to tf_keras, rewrites, and loud refusals.

Python only (tf_keras outputs against Keras 3); the TF.js side of the same layers is
tests/test_js_layers.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

from facepack.export.bridge import BridgeError, sanitize_config, to_tf_keras  # noqa: E402

# tf_keras vs Keras 3, same float32 kernels: largest |difference| / max(1, max |Keras|).
REL_TOL = 1e-5


def _seq(shape, *layers):
    inp = keras.Input(shape)
    y = inp
    for layer in layers:
        y = layer(y)
    return keras.Model(inp, y)


def _noisy(model, seed=3):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


def _same(model3, xs):
    model2, notes = to_tf_keras(model3, tf_keras)
    want = np.asarray(model3(xs, training=False))
    got = np.asarray(model2(xs))
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want))) < REL_TOL
    return model2, notes


def test_renamed_key_reaches_tf_keras():
    clean, dropped = sanitize_config(tf_keras, "LeakyReLU", {"name": "lr", "negative_slope": 0.2, "trainable": True})
    assert clean == {"name": "lr", "alpha": 0.2, "trainable": True} and dropped == []


def test_leaky_relu_slope_survives():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 6)
    model2, _ = _same(_seq((6,), keras.layers.LeakyReLU(negative_slope=0.2)), x)
    assert model2.layers[-1].get_config()["alpha"] == pytest.approx(0.2)


def test_dropped_option_that_changes_inference_is_refused():
    model = _seq((4, 5), keras.layers.LayerNormalization(rms_scaling=True, name="ln"))
    with pytest.raises(BridgeError, match=r"layer 'ln' \(LayerNormalization\).*rms_scaling=True"):
        to_tf_keras(model, tf_keras)


def test_string_preprocessing_is_refused_by_name():
    words = keras.Input((3,), dtype="string")
    model = keras.Model(words, keras.layers.StringLookup(vocabulary=["a", "b"], name="sl")(words))
    with pytest.raises(BridgeError, match=r"layer 'sl' \(StringLookup\): string/vocabulary preprocessing"):
        to_tf_keras(model, tf_keras)


def test_hashing_of_float_inputs_is_refused_by_name():
    """Hashing exports for int ids (static/facepack/layers/hashing.js); on floats it is refused."""
    model = _seq((3,), keras.layers.Hashing(5, name="hash"))
    with pytest.raises(BridgeError, match=r"layer 'hash' \(Hashing\): inputs of dtype float32"):
        to_tf_keras(model, tf_keras)


def test_bidirectional_with_a_different_backward_layer_is_refused():
    layer = keras.layers.Bidirectional(keras.layers.LSTM(3), backward_layer=keras.layers.GRU(3, go_backwards=True),
                                       name="bi")
    with pytest.raises(BridgeError, match=r"layer 'bi' \(Bidirectional\): a backward_layer that differs"):
        to_tf_keras(_seq((5, 2), layer), tf_keras)


def test_causal_conv1d_becomes_left_padding_and_a_valid_conv():
    model = _noisy(_seq((9, 2), keras.layers.Conv1D(3, 3, padding="causal", dilation_rate=2, name="conv")))
    x = np.random.default_rng(0).normal(size=(2, 9, 2)).astype(np.float32)
    model2, notes = _same(model, x)
    pad = model2.get_layer("conv__causal_pad")
    assert pad.get_config()["padding"] == (4, 0)  # dilation 2 * (kernel 3 - 1)
    assert model2.get_layer("conv").get_config()["padding"] == "valid"
    assert any("causal" in n for n in notes)


def test_separable_conv2d_becomes_depthwise_and_pointwise():
    model = _noisy(_seq((6, 6, 3), keras.layers.SeparableConv2D(4, 3, strides=2, depth_multiplier=2,
                                                                  activation="relu", name="sep")))
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype(np.float32)
    model2, _ = _same(model, x)
    assert [type(l).__name__ for l in model2.layers[1:]] == ["DepthwiseConv2D", "Conv2D"]


def test_wrapped_layers_are_translated_with_their_weights():
    model = _noisy(_seq((4, 5, 5, 2), keras.layers.TimeDistributed(keras.layers.Conv2D(3, 3)),
                        keras.layers.TimeDistributed(keras.layers.Flatten()),
                        keras.layers.Bidirectional(keras.layers.GRU(2))))
    x = np.random.default_rng(2).normal(size=(2, 4, 5, 5, 2)).astype(np.float32)
    _same(model, x)


def test_multi_head_attention_is_built_by_calling_it():
    q, v = keras.Input((4, 6)), keras.Input((5, 3))
    y = keras.layers.MultiHeadAttention(2, 3, value_dim=2, name="mha")(q, v, use_causal_mask=False)
    model = _noisy(keras.Model([q, v], y))
    rng = np.random.default_rng(4)
    xs = [rng.normal(size=(2, 4, 6)).astype(np.float32), rng.normal(size=(2, 5, 3)).astype(np.float32)]
    _same(model, xs)


def test_mask_only_ops_are_skipped_and_the_mask_still_applies():
    model = _noisy(_seq((6, 3), keras.layers.Masking(0.0), keras.layers.LSTM(4)))
    x = np.random.default_rng(5).normal(size=(2, 6, 3)).astype(np.float32)
    x[0, 3:] = 0.0  # masked steps: Keras skips them, so the tf_keras rebuild must too
    model2, notes = _same(model, x)
    assert not any(type(l).__name__ in ("NotEqual", "Any") for l in model2.layers)
    assert any("computes a mask only" in n for n in notes)


def test_inference_identity_layers_are_removed():
    model = _noisy(_seq((5, 5, 2), keras.layers.SpatialDropout2D(0.5), keras.layers.Identity(), keras.layers.Conv2D(2, 1)))
    x = np.random.default_rng(6).normal(size=(2, 5, 5, 2)).astype(np.float32)
    model2, _ = _same(model, x)
    assert [type(l).__name__ for l in model2.layers[1:]] == ["Conv2D"]


@pytest.mark.parametrize("layer", [
    lambda: keras.layers.DepthwiseConv1D(3, strides=2, padding="same", depth_multiplier=2, name="c"),
    lambda: keras.layers.SeparableConv1D(4, 3, dilation_rate=2, name="c"),
    lambda: keras.layers.Conv1DTranspose(4, 3, strides=2, name="c"),
], ids=["depthwise", "separable", "transpose"])
def test_1d_convs_tf_js_lacks_become_2d_convs(layer):
    model = _noisy(_seq((9, 3), layer()))
    x = np.random.default_rng(7).normal(size=(2, 9, 3)).astype(np.float32)
    model2, notes = _same(model, x)
    assert model2.layers[-1].name == "c" and any("(k, 1) kernel" in n for n in notes)


def test_option_the_js_layer_lacks_is_refused_at_export():
    model = _seq((8, 8, 3), keras.layers.Resizing(4, 4, interpolation="bicubic", name="rs"))
    with pytest.raises(BridgeError, match=r"layer 'rs' \(Resizing\): interpolation='bicubic' is not implemented"):
        to_tf_keras(model, tf_keras)


def test_masked_cross_attention_is_refused():
    """TF.js gives a layer only its first input's Keras mask at predict time."""
    ids = keras.Input((6,), dtype="int32")
    e = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    y = keras.layers.Attention(name="att")([e, keras.layers.Dense(4)(e)])
    with pytest.raises(BridgeError, match=r"layer 'att' \(Attention\): Keras masks on inputs that are not one"):
        to_tf_keras(keras.Model(ids, y), tf_keras)


def test_zero_output_for_mask_reaches_tf_keras():
    model = _seq((5, 3), keras.layers.LSTM(2, return_sequences=True, zero_output_for_mask=True, name="rnn"))
    model2, _ = to_tf_keras(model, tf_keras)
    assert model2.get_layer("rnn").get_config()["zero_output_for_mask"] is True


def test_random_augmentations_are_removed():
    """Keras' augmentation layers return their input at inference; TF.js has none of them."""
    L = keras.layers
    model = _noisy(_seq((8, 8, 3), L.RandomFlip(), L.RandomRotation(0.2), L.RandomZoom(0.2), L.RandomContrast(0.3),
                        L.RandAugment(), L.Conv2D(2, 3)))
    x = np.random.default_rng(8).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    model2, _ = _same(model, x)
    assert [type(l).__name__ for l in model2.layers[1:]] == ["Conv2D"]


def test_activation_tf_keras_lacks_is_named():
    model = _seq((4,), keras.layers.Dense(3, activation="celu", name="d"))
    with pytest.raises(BridgeError, match=r"layer 'd' \(Dense\): activation 'celu' has no tf_keras/TF.js equivalent"):
        to_tf_keras(model, tf_keras)


def test_nested_models_are_rebuilt_recursively():
    base_in = keras.Input((6, 6, 2))
    base = keras.Model(base_in, keras.layers.Conv2D(3, 3)(base_in), name="base")
    head = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2)], name="head")
    inp = keras.Input((6, 6, 2))
    model = _noisy(keras.Model(inp, head(base(inp))))
    for inner in (base, head):
        _noisy(inner, seed=9)
    x = np.random.default_rng(10).normal(size=(2, 6, 6, 2)).astype(np.float32)
    model2, notes = _same(model, x)
    assert [type(l).__name__ for l in model2.layers[1:]] == ["Functional", "Functional"]
    assert any(n.startswith("head/") for n in notes)


def test_einsum_equation_the_js_layer_lacks_is_refused():
    model = _seq((3, 4), keras.layers.EinsumDense("...b,bc->...c", output_shape=5, name="ein"))
    with pytest.raises(BridgeError, match=r"layer 'ein' \(EinsumDense\): equation '...b,bc->...c' is not implemented"):
        to_tf_keras(model, tf_keras)


def test_keras3_op_or_merge_on_masked_inputs_is_refused():
    """Keras 3 ops drop masks and its merges OR them; tf_keras/TF.js layers do neither."""
    ids = keras.Input((6,), dtype="int32")
    e = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    for y, pattern in ((e + e, r"\(Add\): a Keras 3 op on inputs carrying a Keras mask"),
                       (keras.layers.Maximum(name="mx")([e, e]), r"layer 'mx' \(Maximum\): a merge layer on inputs")):
        with pytest.raises(BridgeError, match=pattern):
            to_tf_keras(keras.Model(ids, y), tf_keras)


@pytest.mark.parametrize("layer", [
    lambda: keras.layers.DepthwiseConv1D(3, strides=2, dilation_rate=2, name="c"),
    lambda: keras.layers.SeparableConv1D(4, 3, strides=2, dilation_rate=2, name="c"),
], ids=["depthwise", "separable"])
def test_1d_conv_with_stride_and_dilation_is_refused_with_the_users_values(layer):
    """Keras 3 computes strides 2 with dilation 2; tf_keras' DepthwiseConv2D refuses the pair. The
    refusal names the layer and the user's values, not the 2-D rewrite's (strides=(2, 2), dilation_rate=(2, 1))."""
    model = _seq((20, 4), layer())
    with pytest.raises(BridgeError) as err:
        to_tf_keras(model, tf_keras)
    text = str(err.value)
    assert text.startswith(f"layer 'c' ({model.layers[-1].__class__.__name__}): strides=2 with dilation_rate=2 ")
    assert text.endswith("the exporter tries the graph path (model.export) next") and "(2, 2)" not in text


@pytest.mark.parametrize("cls", ["DepthwiseConv1D", "SeparableConv1D"])
def test_channels_first_1d_conv_is_refused_with_the_permute_that_fixes_it(cls):
    """The advice is concrete, and right: Permute((2, 1)) + the channels_last layer with the same
    weights computes the channels_first layer, and the bridge rebuilds it."""
    args = (3,) if cls == "DepthwiseConv1D" else (5, 3)
    first = _noisy(_seq((4, 19), getattr(keras.layers, cls)(*args, data_format="channels_first", name="c")))
    with pytest.raises(BridgeError) as err:
        to_tf_keras(first, tf_keras)
    text = str(err.value)
    assert text.startswith(f"layer 'c' ({cls}): data_format='channels_first' is not supported")
    assert "use data_format='channels_last', or a Permute((2, 1)) before and after the layer" in text
    assert text.endswith("the exporter tries the graph path (model.export) next")
    last = _seq((4, 19), keras.layers.Permute((2, 1)), getattr(keras.layers, cls)(*args, name="c"),
                keras.layers.Permute((2, 1)))
    last.get_layer("c").set_weights(first.get_layer("c").get_weights())
    x = np.random.default_rng(9).normal(size=(2, 4, 19)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(last(x)), np.asarray(first(x)), rtol=0, atol=1e-5)
    _same(last, x)
