"""The integer simulator against the fake-quantized Keras layers (bit-exact) and hand-computed cases."""

import itertools
from fractions import Fraction

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.errors import QuantizationError
from ai8x_nb.quantize import convert, enable_qat
from ai8x_nb.simulate import round_shift, simulate, simulate_layers

import numpy_device as nd
from support import assert_exact, random_input, randomize


def _model(input_shape, *layers, head=None):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    if head is not None:
        x = head(x)
    return keras.Model(inputs, x)


# ---------------------------------------------------------------- conv2d
@pytest.mark.parametrize("kernel,padding", [(1, 0), (3, 0), (3, 1), (3, 2)])
@pytest.mark.parametrize("activation", [None, "relu", "abs"])
def test_conv2d_exact(kernel, padding, activation):
    model = _model((7, 6, 5), L.Conv2D(9, kernel, padding=padding, activation=activation))
    randomize(model, seed=kernel * 10 + padding)
    assert_exact(model, random_input(model, 24))


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_conv2d_stack_shifts_vary(use_bias, seed):
    model = _model((8, 8, 3),
                   L.Conv2D(6, 3, padding=1, activation="relu", use_bias=use_bias),
                   L.Conv2D(7, 3, padding=1, activation="relu", use_bias=use_bias),
                   L.Conv2D(5, 1, padding=0, use_bias=use_bias))
    randomize(model, seed=seed)
    qmodel = assert_exact(model, random_input(model, 16, seed=seed))
    if not use_bias:
        assert all(q.bias is None for q in qmodel.layers)


def test_output_shift_takes_both_signs():
    shifts = set()
    for seed in range(6):
        model = _model((6, 6, 4), L.Conv2D(4, 3, padding=1), L.Conv2D(4, 3, padding=1),
                       L.Conv2D(4, 3, padding=1))
        randomize(model, seed=seed)
        shifts.update(q.output_shift for q in assert_exact(model, random_input(model, 4)).layers)
    assert min(shifts) < 0 < max(shifts), shifts


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size,strides", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (1, 1)),
                                          ((4, 1), (2, 2)), ((3, 2), (3, 3))])
def test_fused_pooling_exact(mode, size, strides):
    model = _model((13, 11, 4), L.Conv2D(6, 3, padding=1, activation="relu", pooling=mode,
                                         pool_size=size, pool_strides=strides))
    randomize(model, seed=3)
    assert_exact(model, random_input(model, 12))


# --------------------------------------------------------------- conv1d
@pytest.mark.parametrize("kernel", range(1, 10))
def test_conv1d_exact(kernel):
    padding = min(kernel % 3, kernel - 1)  # the tool needs padding < kernel
    model = _model((30, 6), L.Conv1D(8, kernel, padding=padding, activation="relu"),
                   L.Conv1D(5, kernel, padding=padding, pooling="avg", pool_size=2))
    randomize(model, seed=kernel)
    assert_exact(model, random_input(model, 12))


@pytest.mark.parametrize("kernel,dilation,padding", [(2, 8, 1), (3, 4, 0), (3, 2, 2), (5, 2, 1)])
def test_dilated_conv1d_exact(kernel, dilation, padding):
    """The simulator's stretched kernel (zeros between the taps, as the tool stores it) equals
    the fake-quantized layer and the NumPy device model's tap-by-tap sum."""
    model = _model((30, 6), L.Conv1D(8, kernel, padding=padding, dilation=dilation,
                                     activation="relu"),
                   L.Conv1D(5, 3, padding=1, dilation=2, pooling="max", pool_size=2))
    randomize(model, seed=kernel * dilation)
    x_int = random_input(model, 6)
    qmodel = assert_exact(model, x_int)
    first = qmodel.layers[0]
    expected = nd.layer_int(x_int, "conv1d", first.weights, first.bias,
                            bits=first.weight_bits, shift=first.output_shift, padding=padding,
                            activation="relu", dilation=dilation)
    np.testing.assert_array_equal(simulate_layers(qmodel, x_int)[0], expected)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_dilated_pooling_exact(mode):
    """MAX78002 `pool_dilation`, fused and pool-only: the simulator equals the fake-quantized
    layers and the NumPy device model's dilated windows."""
    model = _model((14, 15, 3),
                   L.Conv2D(6, 3, padding=1, pooling=mode, pool_size=2, pool_strides=1,
                            pool_dilation=3, activation="relu", device="MAX78002"),
                   {"max": L.MaxPool2D, "avg": L.AvgPool2D}[mode](
                       2, 2, pool_dilation=(2, 4), device="MAX78002"),
                   L.Conv2D(4, 1, padding=0, device="MAX78002"))
    randomize(model, seed=5)
    x_int = random_input(model, 5)
    qmodel = assert_exact(model, x_int)
    first = qmodel.layers[0]
    expected = nd.layer_int(x_int, "conv2d", first.weights, first.bias,
                            bits=first.weight_bits, shift=first.output_shift, padding=1,
                            pooling=mode, pool_size=(2, 2), pool_strides=(1, 1),
                            pool_dilation=(3, 3), activation="relu")
    got = simulate_layers(qmodel, x_int)
    np.testing.assert_array_equal(got[0], expected)
    np.testing.assert_array_equal(got[1], nd.pool_int(expected, mode, (2, 2), (2, 2), (2, 4)))


@pytest.mark.parametrize("channels,bits", [(6, 8), (100, 4), (8, 1)])
def test_depthwise_exact(channels, bits):
    """MAX78002 depthwise Conv2D (several passes at 100 channels): the simulator equals the
    fake-quantized layer and the NumPy device model's grouped convolution."""
    model = _model((9, 10, channels),
                   L.Conv2D(channels, 3, padding=1, groups=channels, weight_bits=bits,
                            activation="relu", device="MAX78002"),
                   L.Conv2D(channels, 1, padding=0, groups=channels, pooling="avg",
                            pool_size=2, device="MAX78002"))
    randomize(model, seed=channels)
    x_int = random_input(model, 4)
    qmodel = assert_exact(model, x_int)
    first = qmodel.layers[0]
    expected = nd.layer_int(x_int, "depthwise", first.weights, first.bias,
                            bits=first.weight_bits, shift=first.output_shift, padding=1,
                            activation="relu")
    np.testing.assert_array_equal(simulate_layers(qmodel, x_int)[0], expected)


# ------------------------------------------------------- convtranspose2d
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv_transpose_exact(padding, activation):
    model = _model((5, 4, 3), L.ConvTranspose2D(6, 3, padding=padding, activation=activation),
                   L.Conv2D(4, 3, padding=1))
    randomize(model, seed=padding)
    assert_exact(model, random_input(model, 10))


def test_conv_transpose_hand_computed():
    # One input pixel, one channel: the output is the (cropped) kernel, placed at 2i + a - p.
    model = _model((2, 2, 1), L.ConvTranspose2D(1, 3, padding=1, use_bias=False))
    kernel = np.arange(1, 10, dtype=np.float32).reshape(3, 3, 1, 1) / 16.0  # max 9/16 -> shift 0
    model.layers[1].kernel.assign(kernel)
    enable_qat(model)
    qmodel = convert(model)
    w_int = qmodel.layers[0].weights[..., 0, 0]
    np.testing.assert_array_equal(w_int, np.arange(1, 10).reshape(3, 3) * 8)
    x = np.zeros((1, 2, 2, 1), dtype=np.int64)
    x[0, 1, 0, 0] = 64  # row 1, column 0
    out = simulate(qmodel, x)[0, :, :, 0]
    expected = np.zeros((4, 4), dtype=np.int64)
    for a, b in itertools.product(range(3), range(3)):
        r, c = 2 * 1 + a - 1, 2 * 0 + b - 1
        if 0 <= r < 4 and 0 <= c < 4:
            expected[r, c] = (64 * int(w_int[a, b]) + 64) // 128  # round half up, shift 0
    np.testing.assert_array_equal(out, expected)


# ---------------------------------------------------------------- dense
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_after_flatten_exact(wide, use_bias):
    model = _model((4, 3, 5), L.Conv2D(6, 3, padding=1, activation="relu"),
                   keras.layers.Flatten(), L.Dense(20, activation=None if wide else "relu"),
                   L.Dense(7, wide=wide, use_bias=use_bias))
    randomize(model, seed=5)
    assert_exact(model, random_input(model, 20))


@pytest.mark.parametrize("kernel", [1, 3])
def test_wide_conv_last_layer_exact(kernel):
    model = _model((6, 6, 4), L.Conv2D(5, 3, padding=1, activation="relu"),
                   L.Conv2D(10, kernel, padding=kernel // 2, wide=True),
                   head=keras.layers.Flatten())
    randomize(model, seed=11)
    qmodel = assert_exact(model, random_input(model, 8))
    assert simulate(qmodel, random_input(model, 3)).shape == (3, 6 * 6 * 10)


def test_wide_output_is_raw_accumulator():
    # Independent check: wide output = x . w_int + b_int * 128, no shift, no 8-bit clamp.
    model = _model((5,), L.Dense(3, wide=True))
    randomize(model, seed=2)
    enable_qat(model)
    qmodel = convert(model)
    x = random_input(model, 9)
    q = qmodel.layers[0]
    expected = x @ q.weights + q.bias * 128
    np.testing.assert_array_equal(simulate(qmodel, x), expected)
    assert np.abs(expected).max() > 127


# ------------------------------------------------------- batchnorm fold
@pytest.mark.parametrize("batch_norm", ["affine", "noaffine"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_batch_norm_folded_exact(batch_norm, use_bias):
    model = _model((6, 6, 3),
                   L.Conv2D(8, 3, padding=1, activation="relu", batch_norm=batch_norm,
                            use_bias=use_bias),
                   L.Conv2D(4, 3, padding=1, batch_norm=batch_norm, use_bias=use_bias))
    randomize(model, seed=7)
    qmodel = assert_exact(model, random_input(model, 10))
    assert all(q.bias is not None for q in qmodel.layers)  # the fold lands in the bias


# ------------------------------------------------------- weight bits
@pytest.mark.parametrize("bits", [8, 4, 2, 1])
def test_weight_bits_exact(bits):
    model = _model((6, 6, 4),
                   L.Conv2D(8, 3, padding=1, activation="relu", weight_bits=bits),
                   L.Conv2D(6, 1, padding=0, activation="abs", weight_bits=bits),
                   keras.layers.Flatten(), L.Dense(5, wide=True, weight_bits=bits))
    randomize(model, seed=bits, scales=(0.01, 0.1, 0.5))
    qmodel = assert_exact(model, random_input(model, 12))
    for q in qmodel.layers:
        assert q.weight_bits == bits
        assert -(2 ** (bits - 1)) <= q.weights.min() and q.weights.max() <= 2 ** (bits - 1) - 1
        assert q.bias.min() >= -128 and q.bias.max() <= 127


# ------------------------------------------------- pooling-only layers
@pytest.mark.parametrize("pool", [L.MaxPool2D, L.AvgPool2D])
def test_pool_only_2d_exact(pool):
    model = _model((9, 8, 3), L.Conv2D(5, 3, padding=1), pool((3, 2), pool_strides=(2, 2)),
                   L.Conv2D(4, 1, padding=0))
    randomize(model, seed=4)
    qmodel = assert_exact(model, random_input(model, 10))
    assert qmodel.layers[1].weights is None and qmodel.layers[1].op == "passthrough"


@pytest.mark.parametrize("pool", [L.MaxPool1D, L.AvgPool1D])
def test_pool_only_1d_exact(pool):
    model = _model((17, 3), L.Conv1D(5, 3, padding=1), pool(3, pool_strides=2),
                   L.Conv1D(4, 1, padding=0))
    randomize(model, seed=6)
    assert_exact(model, random_input(model, 10))


def test_avg_pool_truncates_toward_zero():
    model = _model((2, 2, 1), L.AvgPool2D(2))
    enable_qat(model)
    qmodel = convert(model)
    x = np.array([[5, 1, 0, 0], [-5, -1, 0, 0], [-128, -128, -128, -127], [7, 0, 0, 0]])
    out = simulate(qmodel, x.reshape(4, 2, 2, 1)).reshape(-1)
    np.testing.assert_array_equal(out, [1, -1, -127, 1])  # 6/4, -6/4, -511/4, 7/4 truncated
    fake = np.asarray(model(x.reshape(4, 2, 2, 1).astype("float32") / 128)).reshape(-1) * 128
    np.testing.assert_array_equal(fake, out)


# ------------------------------------------------------------ add / skip
def test_add_skip_connection_exact():
    inputs = keras.Input((6, 6, 4))
    a = L.Conv2D(6, 3, padding=1, activation="relu")(inputs)
    b = L.Conv2D(6, 3, padding=1, activation="relu")(a)
    c = L.Add()([a, b])
    d = L.Conv2D(5, 3, padding=1, pooling="max", pool_size=2)(c)
    model = keras.Model(inputs, d)
    randomize(model, seed=9, scales=(0.5, 2.0, 5.0))
    qmodel = assert_exact(model, random_input(model, 12))
    # The Add runs inside the last convolution; `a` is read by `b` too, so a passthrough
    # copies it into the element-wise buffer.
    assert [q.op for q in qmodel.layers] == ["conv2d", "conv2d", "passthrough", "conv2d"]
    fused = qmodel.layers[-1].hw
    assert fused.eltwise == "add" and fused.inputs == (2, 1) and fused.add_layer is not None
    assert qmodel.layers[2].hw.copy_of == 0 and qmodel.layers[1].hw.write_gap == 1


@pytest.mark.parametrize("pooling", [None, "max", "avg"])
@pytest.mark.parametrize("activation", ["relu", None])
def test_fused_add_matches_numpy_device(pooling, activation):
    """Add -> [pool] -> conv on the integers, against tests/numpy_device.py layer by layer."""
    inputs = keras.Input((6, 6, 4))
    a = L.Conv2D(5, 3, padding=1, activation=activation, name="a")(inputs)
    b = L.Conv2D(5, 1, padding=0, activation=activation, name="b")(a)
    pool = {"pooling": pooling, "pool_size": 2, "pool_strides": 2} if pooling else {}
    out = L.Conv2D(3, 3, padding=1, name="c", **pool)(L.Add()([b, a]))
    model = keras.Model(inputs, out)
    randomize(model, seed=4, scales=(1.0, 3.0))
    x_int = random_input(model, 6)
    qmodel = convert(model)
    q = {ql.name: ql for ql in qmodel.layers}

    def run(x, ql, **kwargs):
        layer = ql.hw.layer
        return nd.layer_int(x, ql.op, ql.weights, ql.bias, bits=ql.weight_bits,
                            shift=ql.output_shift, padding=layer.padding,
                            activation=layer.activation, **kwargs)

    ya = run(x_int, q["a"])
    yb = run(ya, q["b"])
    expected = run(nd.eltwise_add_int([yb, ya]), q["c"], pooling=pooling,
                   pool_size=(2, 2) if pooling else None, pool_strides=(2, 2) if pooling else None)
    np.testing.assert_array_equal(simulate(qmodel, x_int), expected)
    # The sum saturates somewhere, so the clamp before the convolution is exercised.
    assert np.abs(yb + ya).max() > 127
    assert_exact(model, x_int)


def test_add_saturates():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Add()([inputs, inputs]))
    qmodel = convert(model)
    out, stats = simulate(qmodel, np.array([[100, -100, 60, -64]]), return_stats=True)
    np.testing.assert_array_equal(out, [[127, -128, 120, -128]])
    add = [i for i, ql in enumerate(qmodel.layers) if ql.op == "add"]
    assert len(add) == 1 and qmodel.layers[add[0]].hw.eltwise == "add"
    s = stats[add[0]]
    assert (s.clipped_high, s.clipped_low, s.outputs) == (1, 1, 4)


# --------------------------------------------------- reshape 1D -> 2D
def test_reshape_1d_to_2d_like_kws20():
    inputs = keras.Input((32, 16))
    x = L.Conv1D(12, 1, padding=0, activation="relu")(inputs)
    x = L.Conv1D(8, 1, padding=0, activation="relu")(x)
    x = keras.layers.Reshape((4, 8, 8))(x)
    x = L.Conv2D(6, 3, padding=1, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, L.Dense(5, wide=True, use_bias=False)(x))
    randomize(model, seed=12)
    qmodel = assert_exact(model, random_input(model, 10))
    assert qmodel.layers[2].hw.reshaped_from == (32, 8)


def test_model_input_reshape_like_mnist():
    inputs = keras.Input((8, 8))
    x = keras.layers.Reshape((8, 8, 1))(inputs)
    x = L.Conv2D(4, 3, padding=1, activation="relu")(x)
    model = keras.Model(inputs, L.Conv2D(3, 3, padding=1, pooling="avg", pool_size=2)(x))
    randomize(model, seed=13)
    qmodel = assert_exact(model, random_input(model, 8))
    x = random_input(model, 3)
    np.testing.assert_array_equal(simulate(qmodel, x), simulate(qmodel, x.reshape(3, 8, 8, 1)))


# ------------------------------------------------------ hand-computed
def test_round_shift_matches_exact_arithmetic():
    rng = np.random.default_rng(0)
    acc = rng.integers(-2**28, 2**28, size=300)
    acc[:6] = [64, -64, 63, -65, 192, -192]  # exact .5 ties
    for shift in range(-15, 23):
        got = round_shift(acc, shift)
        for a, g in zip(acc[::17], got[::17]):
            value = Fraction(int(a)) * Fraction(2) ** shift / 128 + Fraction(1, 2)
            assert g == value.numerator // value.denominator, (a, shift)
    np.testing.assert_array_equal(round_shift(acc[:6], 0), [1, 0, 0, -1, 2, -1])


def test_saturation_stats_independent():
    # out = round(0.75 * (x1 + x2)) clamped: count the clamps independently.
    model = _model((2,), L.Dense(1, use_bias=False))
    model.layers[1].kernel.assign(np.full((2, 1), 0.75, dtype=np.float32))
    enable_qat(model)
    qmodel = convert(model)
    assert qmodel.layers[0].output_shift == 0 and qmodel.layers[0].weights[0, 0] == 96
    x = np.random.default_rng(1).integers(-128, 128, size=(500, 2))
    out, stats = simulate(qmodel, x, return_stats=True)
    raw = np.floor(0.75 * x.sum(1) + 0.5)
    np.testing.assert_array_equal(out[:, 0], np.clip(raw, -128, 127))
    assert stats[0].clipped_high == np.count_nonzero(raw > 127)
    assert stats[0].clipped_low == np.count_nonzero(raw < -128)
    assert stats[0].clipped_high > 0 and stats[0].clipped_low > 0
    assert stats[0].saturation == pytest.approx(np.mean((raw > 127) | (raw < -128)))


def test_conv_matches_naive_loop():
    # Independent reference: a plain Python-loop convolution with the spec's integer rules.
    model = _model((5, 4, 2), L.Conv2D(3, 3, padding=1, activation="relu"))
    randomize(model, seed=21)
    enable_qat(model)
    q = convert(model).layers[0]
    x = random_input(model, 2, seed=4)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((2, 5, 4, 3), dtype=np.int64)
    for n, i, j, o in itertools.product(range(2), range(5), range(4), range(3)):
        acc = int(np.sum(xp[n, i:i + 3, j:j + 3, :] * q.weights[..., o])) + int(q.bias[o]) * 128
        value = Fraction(acc) * Fraction(2) ** q.output_shift / 128
        expected[n, i, j, o] = min(127, max(0, int(np.floor(value + Fraction(1, 2)))))
    np.testing.assert_array_equal(simulate(convert(model), x), expected)


# ---------------------------------------------------------------- errors
def test_simulate_rejects_bad_input():
    model = _model((4, 4, 1), L.Conv2D(2, 3, padding=1))
    qmodel = convert(model)
    with pytest.raises(QuantizationError, match=r"shape \(4, 4, 1\).*\(batch,\)"):
        simulate(qmodel, np.zeros((4, 4, 1)))
    with pytest.raises(QuantizationError, match=r"\[-128, 127\].*got \[0, 200\]"):
        simulate(qmodel, np.linspace(0, 200, 16).round().reshape(1, 4, 4, 1))
    with pytest.raises(QuantizationError, match="non-integer"):
        simulate(qmodel, np.full((1, 4, 4, 1), 0.5))
