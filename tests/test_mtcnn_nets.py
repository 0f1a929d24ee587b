"""The rebuilt functional MTCNN nets equal the `mtcnn` package's own nets (facepack/export/mtcnn_nets.py)."""

import numpy as np
import pytest

from facepack import spec
from facepack.export import mtcnn_nets

NET_TOL = 1e-5  # max abs difference of any output (probabilities / regression units)
PNET_SIZES = [(12, 12), (37, 29), (64, 101)]


@pytest.fixture(scope="module")
def tf_keras():
    import tf_keras

    return tf_keras


@pytest.mark.parametrize("net", mtcnn_nets.NET_NAMES)
def test_rebuilt_net_equals_package(tf_keras, net):
    ours = mtcnn_nets.build_pretrained_mtcnn_net(tf_keras, net)
    pkg = mtcnn_nets.load_package_net(net)
    sizes = PNET_SIZES if net == "pnet" else [None]
    for i, size in enumerate(sizes):
        x = mtcnn_nets.probe_inputs(net, seed=i, batch=3, size=size)
        expected = mtcnn_nets.package_forward(net, x, pkg)
        got = ours.predict(x, verbose=0)
        assert len(got) == len(expected) == len(mtcnn_nets.OUTPUT_NAMES[net])
        for name, e, g in zip(mtcnn_nets.OUTPUT_NAMES[net], expected, got):
            assert e.shape == g.shape, (net, size, name)
            assert np.abs(e - g).max() <= NET_TOL, (net, size, name, np.abs(e - g).max())


def test_pnet_keeps_variable_input(tf_keras):
    model = mtcnn_nets.build_mtcnn_net(tf_keras, "pnet")
    assert tuple(model.input_shape) == (None, None, None, 3)


def test_first_layer_is_the_spec_normalisation(tf_keras):
    model = mtcnn_nets.build_mtcnn_net(tf_keras, "rnet")
    norm = model.get_layer(mtcnn_nets.INPUT_NORM_LAYER)
    x = np.array([[[[0.0, 127.5, 255.0]]]], dtype=np.float32)
    y = tf_keras.Model(model.input, norm.output)(np.broadcast_to(x, (1, 24, 24, 3))).numpy()[0, 0, 0]
    n = spec.MTCNN["normalize"]
    np.testing.assert_allclose(y, (x[0, 0, 0] - n["offset"]) * n["scale"], atol=1e-7)


def test_weights_are_the_packages_not_random(tf_keras):
    a = mtcnn_nets.build_pretrained_mtcnn_net(tf_keras, "onet")
    b = mtcnn_nets.build_mtcnn_net(tf_keras, "onet")
    x = mtcnn_nets.probe_inputs("onet")
    assert np.abs(a.predict(x, verbose=0)[2] - b.predict(x, verbose=0)[2]).max() > 1e-3


def test_unknown_net_is_rejected(tf_keras):
    with pytest.raises(ValueError, match="qnet"):
        mtcnn_nets.build_mtcnn_net(tf_keras, "qnet")
