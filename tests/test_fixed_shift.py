"""A fixed `output_shift` on a hardware layer (as a trained checkpoint states it).

The layer's fake-quantized forward, `convert`, `simulate` and the synthesis writers all use the
fixed shift; checked against the independent NumPy device model (tests/numpy_device.py).
"""

import keras
import numpy as np
import pytest

import numpy_device as nd
from ai8x_nb import layers as L
from ai8x_nb.errors import DeviceLimitError
from ai8x_nb.export.synthesis_checkpoint import state_dict
from ai8x_nb.export.synthesis_yaml import network_description
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate


def _integer_layer(layer, w_int, b_int, shift, bits=8):
    """Set a built layer's float parameters so they quantize to exactly w_int, b_int at `shift`."""
    scale = 2.0 ** shift / 2 ** (bits - 1)
    layer.kernel.assign((w_int * scale).astype(np.float32))
    if b_int is not None:
        layer.bias.assign((b_int * scale).astype(np.float32))


@pytest.mark.parametrize("shift", [-3, -1, 0, 2])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv_with_fixed_shift_matches_device(shift, activation):
    rng = np.random.default_rng(shift + 10)
    x_int = rng.integers(-128, 128, size=(2, 6, 6, 3))
    w_int = rng.integers(-128, 128, size=(3, 3, 3, 5))
    b_int = rng.integers(-128, 128, size=(5,))
    layer = L.Conv2D(5, 3, padding=1, activation=activation, output_shift=shift, qat=True)
    layer.build((None, 6, 6, 3))
    _integer_layer(layer, w_int, b_int, shift)
    # The derived shift of these weights would be `shift` too only by accident: make sure the
    # fixed value wins by checking that it is the one reported.
    assert float(layer.output_shift_tensor()) == shift
    got = np.asarray(layer((x_int / 128).astype(np.float32)), np.float64) * 128
    expected = nd.layer_int(x_int, "conv2d", w_int, b_int, shift=shift, padding=1,
                            activation=activation)
    np.testing.assert_array_equal(got, expected)


def test_fixed_shift_differs_from_derived_and_survives_conversion():
    """Small weights (their derived shift would be -4), fixed at -2: conversion keeps -2 and
    the exact integers (as a checkpoint's layer whose weights do not fill the range)."""
    rng = np.random.default_rng(3)
    inputs = keras.Input((8, 8, 2))
    conv = L.Conv2D(4, 3, padding=1, activation="relu", output_shift=-2, qat=True, name="c")
    y = keras.layers.Flatten()(conv(inputs))
    dense = L.Dense(3, wide=True, output_shift=1, qat=True, name="fc")
    model = keras.Model(inputs, dense(y))
    w_int = rng.integers(-20, 21, size=(3, 3, 2, 4))
    b_int = rng.integers(-20, 21, size=(4,))
    _integer_layer(conv, w_int, b_int, -2)
    fc_w = rng.integers(-128, 128, size=(256, 3))
    fc_b = rng.integers(-128, 128, size=(3,))
    _integer_layer(dense, fc_w, fc_b, 1)
    derived = L.Conv2D(4, 3, padding=1)
    derived.build((None, 8, 8, 2))
    derived.kernel.assign(conv.kernel)
    derived.bias.assign(conv.bias)
    assert float(derived.output_shift_tensor()) == -4
    qmodel = convert(model)
    assert [ql.output_shift for ql in qmodel.layers] == [-2, 0]  # a wide layer stores 0
    np.testing.assert_array_equal(qmodel.layers[0].weights, w_int)
    np.testing.assert_array_equal(qmodel.layers[0].bias, b_int)
    np.testing.assert_array_equal(qmodel.layers[1].weights, fc_w)
    np.testing.assert_array_equal(qmodel.layers[1].bias, fc_b)
    x_int = rng.integers(-128, 128, size=(3, 8, 8, 2))
    hidden = nd.layer_int(x_int, "conv2d", w_int, b_int, shift=-2, padding=1, activation="relu")
    expected = nd.layer_int(hidden.reshape(3, -1), "dense", fc_w, fc_b, wide=True)
    np.testing.assert_array_equal(simulate(qmodel, x_int), expected)
    # The QAT forward computes the same (the wide output in accumulator units).
    got = np.asarray(model((x_int / 128).astype(np.float32)), np.float64) * 128 * 128
    np.testing.assert_array_equal(got, expected)
    sd = state_dict(qmodel)
    assert float(sd["c.output_shift"][0]) == -2
    desc, _ = network_description(qmodel, arch="t", dataset="T")
    assert desc["layers"][0]["output_shift"] == -2


def test_fixed_shift_config_round_trip(tmp_path):
    layer = L.Conv1D(6, 3, padding=1, output_shift=-4, name="k")
    config = layer.get_config()
    assert config["output_shift"] == -4
    assert L.Conv1D.from_config(config).output_shift == -4
    assert L.Dense(4).get_config()["output_shift"] is None
    assert "output_shift" not in L.MaxPool2D(2).get_config()
    inputs = keras.Input((10, 3))
    model = keras.Model(inputs, L.Conv1D(6, 3, padding=1, output_shift=-4, qat=True,
                                         name="k")(inputs))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 10, 3)).astype(np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("k").output_shift == -4
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_fixed_shift_survives_batch_norm_fold():
    layer = L.Conv2D(3, 3, padding=1, batch_norm="affine", output_shift=1)
    layer.build((None, 4, 4, 2))
    layer.fold_batch_norm()
    assert layer.output_shift == 1 and float(layer.output_shift_tensor()) == 1


@pytest.mark.parametrize("value", [16, -16, 1.5, "2", True])
def test_fixed_shift_out_of_range_is_refused(value):
    with pytest.raises(DeviceLimitError,
                       match=r"Conv2D 'c': output_shift=.* is not supported by MAX78000 "
                             r"\(None or an int in \[-15, 15\]\)\. Pass None to derive"):
        L.Conv2D(4, output_shift=value, name="c")
