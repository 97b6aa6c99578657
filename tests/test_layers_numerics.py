"""Layer arithmetic against the independent NumPy device model (tests/numpy_device.py).

Float mode must agree within 1e-5; the QAT (fake-quantized) forward must agree EXACTLY with
the device's integer arithmetic: out * 128 (8-bit outputs) or out * 128 * 2^(bits-1) (wide)
as integers.
"""

import keras
import numpy as np
import pytest

import numpy_device as nd
from ai8x_nb import layers as L

OPS = {L.Conv2D: "conv2d", L.Conv1D: "conv1d", L.ConvTranspose2D: "convtranspose2d",
       L.Dense: "dense"}


def _grid_input(rng, shape):
    x_int = rng.integers(-128, 128, size=shape)
    return x_int, (x_int / 128.0).astype(np.float32)


def _build(cls, args, kwargs, x, rng, weight_scale, bias_scale=0.3):
    layer = cls(*args, **kwargs)
    layer(x)
    w = rng.uniform(-weight_scale, weight_scale, size=layer.kernel.shape).astype(np.float32)
    layer.kernel.assign(w)
    b = None
    if layer.bias is not None:
        b = rng.uniform(-bias_scale, bias_scale, size=layer.bias.shape).astype(np.float32)
        layer.bias.assign(b)
    return layer, w, b


def _check_float(layer, x, w, b, op):
    got = np.asarray(layer(x))
    expected = nd.layer_float(
        x, op, w, b if layer.use_bias else None, padding=getattr(layer, "padding", 0),
        pooling=layer.pooling, pool_size=layer.pool_size, pool_strides=layer.pool_strides,
        activation=layer.activation, wide=layer.wide, dilation=getattr(layer, "dilation", 1),
        pool_dilation=layer.pool_dilation)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def _check_qat(layer, x_int, x, w, b, op):
    bits = layer.weight_bits
    layer.qat = True
    got = np.asarray(layer(x), dtype=np.float64)
    # Training steps compute the output tail fused (ops.quantize_scaled_output): same values.
    np.testing.assert_array_equal(np.asarray(layer(x, training=True), dtype=np.float64), got)
    shift = nd.output_shift(w, b)
    assert float(layer.output_shift_tensor()) == shift
    w_int, b_int = nd.quantize_params(w, b, bits, shift)
    expected = nd.layer_int(
        x_int, op, w_int, b_int, bits=bits, shift=shift, padding=getattr(layer, "padding", 0),
        pooling=layer.pooling, pool_size=layer.pool_size, pool_strides=layer.pool_strides,
        activation=layer.activation, wide=layer.wide, dilation=getattr(layer, "dilation", 1),
        pool_dilation=layer.pool_dilation)
    scale = 128.0 * 2 ** (bits - 1) if layer.wide else 128.0
    scaled = got * scale
    np.testing.assert_array_equal(scaled, np.round(scaled))  # on the device grid
    np.testing.assert_array_equal(np.round(scaled).astype(np.int64), expected)
    return expected


CONV2D_CASES = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, padding=0, activation="relu"),
    dict(kernel_size=3, padding=2, activation="abs"),
    dict(kernel_size=1, padding=0, activation="relu"),
    dict(kernel_size=1, padding=0, use_bias=False),
    dict(kernel_size=3, padding=1, pooling="max", pool_size=2, activation="relu"),
    dict(kernel_size=3, padding=1, pooling="avg", pool_size=2),
    dict(kernel_size=3, padding=1, pooling="avg", pool_size=3, pool_strides=1),
    dict(kernel_size=3, padding=1, pooling="avg", pool_size=(2, 3), pool_strides=2),
    dict(kernel_size=1, padding=0, pooling="max", pool_size=(3, 1), pool_strides=1),
    dict(kernel_size=1, padding=0, pooling="max", pool_size=1, pool_strides=2),
    dict(kernel_size=3, padding=1, wide=True),
    dict(kernel_size=3, padding=0, wide=True, use_bias=False, pooling="avg", pool_size=2),
    dict(kernel_size=3, padding=1, use_bias=False, activation="abs"),
]


@pytest.mark.parametrize("case", CONV2D_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("weight_scale", [0.08, 0.7])
def test_conv2d_matches_device(case, weight_scale):
    rng = np.random.default_rng(abs(hash((str(case), weight_scale))) % 2**32)
    x_int, x = _grid_input(rng, (2, 7, 8, 5))
    layer, w, b = _build(L.Conv2D, (6,), case, x, rng, weight_scale)
    _check_float(layer, x, w, b, "conv2d")
    _check_qat(layer, x_int, x, w, b, "conv2d")


@pytest.mark.parametrize("kernel_size,padding", [(1, 0), (2, 1), (3, 1), (5, 2), (7, 0), (9, 2)])
@pytest.mark.parametrize("extra", [dict(activation="relu"),
                                   dict(pooling="avg", pool_size=3, pool_strides=2),
                                   dict(pooling="max", pool_size=2, use_bias=False)])
def test_conv1d_matches_device(kernel_size, padding, extra):
    rng = np.random.default_rng(kernel_size * 7 + padding)
    x_int, x = _grid_input(rng, (2, 19, 4))
    layer, w, b = _build(L.Conv1D, (5,), dict(kernel_size=kernel_size, padding=padding, **extra),
                         x, rng, 0.4)
    _check_float(layer, x, w, b, "conv1d")
    _check_qat(layer, x_int, x, w, b, "conv1d")


@pytest.mark.parametrize("kernel_size,dilation,padding", [(2, 8, 1), (3, 2, 0), (3, 4, 2),
                                                          (5, 2, 1), (9, 1, 2)])
@pytest.mark.parametrize("device", ["MAX78000", "MAX78002"])
def test_dilated_conv1d_matches_device(kernel_size, dilation, padding, device):
    rng = np.random.default_rng(kernel_size * 31 + dilation)
    x_int, x = _grid_input(rng, (2, 23, 4))
    extra = dict(pooling="avg", pool_size=2, pool_strides=1) if padding == 1 else {}
    layer, w, b = _build(L.Conv1D, (5,), dict(kernel_size=kernel_size, padding=padding,
                                              dilation=dilation, activation="relu",
                                              device=device, **extra), x, rng, 0.4)
    pooled = 22 if extra else 23
    assert layer.compute_output_shape(x.shape)[1] == pooled + 2 * padding - (kernel_size - 1) \
        * dilation
    _check_float(layer, x, w, b, "conv1d")
    _check_qat(layer, x_int, x, w, b, "conv1d")


@pytest.mark.parametrize("case", [dict(kernel_size=3, padding=1), dict(kernel_size=3, padding=0),
                                  dict(kernel_size=3, padding=2, activation="abs"),
                                  dict(kernel_size=1, padding=0, use_bias=False),
                                  dict(kernel_size=3, padding=1, pooling="avg", pool_size=2),
                                  dict(kernel_size=3, padding=1, wide=True),
                                  dict(kernel_size=3, padding=1, weight_bits=2)],
                         ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("weight_scale", [0.1, 0.9])
def test_depthwise_conv2d_matches_device(case, weight_scale):
    rng = np.random.default_rng(len(str(case)) * 13 + int(weight_scale * 10))
    x_int, x = _grid_input(rng, (2, 7, 8, 6))
    layer, w, b = _build(L.Conv2D, (6,), dict(groups=6, device="MAX78002", **case), x, rng,
                         weight_scale)
    assert layer.kernel.shape == (case["kernel_size"],) * 2 + (1, 6)
    _check_float(layer, x, w, b, "depthwise")
    _check_qat(layer, x_int, x, w, b, "depthwise")


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("pool_size,pool_strides,pool_dilation", [
    (2, 1, 2), (2, 2, 3), (2, 3, 15), ((2, 1), 1, (4, 1)), ((2, 2), 2, (1, 5))])
def test_dilated_pooling_matches_device(pooling, pool_size, pool_strides, pool_dilation):
    rng = np.random.default_rng(len(str((pool_size, pool_strides, pool_dilation))))
    x_int, x = _grid_input(rng, (2, 17, 18, 3))
    layer, w, b = _build(L.Conv2D, (4,), dict(kernel_size=3, padding=1, pooling=pooling,
                                              pool_size=pool_size, pool_strides=pool_strides,
                                              pool_dilation=pool_dilation, activation="relu",
                                              device="MAX78002"), x, rng, 0.4)
    _check_float(layer, x, w, b, "conv2d")
    _check_qat(layer, x_int, x, w, b, "conv2d")
    pool = {"MaxPool2D": L.MaxPool2D, "AvgPool2D": L.AvgPool2D}[
        "MaxPool2D" if pooling == "max" else "AvgPool2D"](
        pool_size, pool_strides, pool_dilation=pool_dilation, device="MAX78002")
    got = np.asarray(pool(x), dtype=np.float64)
    np.testing.assert_allclose(got, nd.pool_float(x, pooling, pool.pool_size, pool.pool_strides,
                                                  pool.pool_dilation), atol=1e-6)


@pytest.mark.parametrize("cls,shape,args,extra", [
    (L.Conv2D, (2, 6, 7, 5), (6, 3), dict(padding=1, activation="relu")),
    (L.Conv2D, (2, 6, 7, 5), (6, 1), dict(padding=0, pooling="avg", pool_size=2)),
    (L.Conv2D, (2, 6, 7, 6), (6, 3), dict(padding=1, groups=6)),
    (L.Conv1D, (2, 15, 4), (5, 3), dict(padding=1, dilation=2, activation="abs")),
    (L.Dense, (3, 40), (7,), dict(wide=True)),
])
@pytest.mark.parametrize("weight_scale", [0.05, 0.6])
def test_binary_weights_qat_matches_device(cls, shape, args, extra, weight_scale):
    """weight_bits="binary" (MAX78002): the fake-quantized forward is the device's integer
    arithmetic with +-1 weights and the 1-bit scale."""
    rng = np.random.default_rng(len(shape) * 7 + int(weight_scale * 100))
    x_int, x = _grid_input(rng, shape)
    layer, w, b = _build(cls, args, dict(weight_bits="binary", device="MAX78002", **extra), x,
                         rng, weight_scale)
    assert layer.weight_bits == 1 and layer.binary_weights
    assert layer.get_config()["weight_bits"] == "binary"
    layer.qat = True
    got = np.asarray(layer(x), dtype=np.float64)
    shift = nd.output_shift(w, b)
    w_int, b_int = nd.quantize_binary_params(w, b, shift)
    op = "depthwise" if extra.get("groups") else OPS[cls]
    expected = nd.layer_int(
        x_int, op, w_int, b_int, bits=1, shift=shift, padding=extra.get("padding", 0),
        pooling=layer.pooling, pool_size=layer.pool_size, pool_strides=layer.pool_strides,
        activation=layer.activation, wide=layer.wide, dilation=extra.get("dilation", 1))
    # 8-bit outputs are x128; a wide output x128 * 2^(bits - 1), the same 128 at one bit.
    np.testing.assert_array_equal(np.round(got * 128.0).astype(np.int64), expected)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the gradient is taken with TensorFlow's GradientTape (the same "
                           "keras.ops code runs under every backend)")
def test_binary_weights_straight_through_gradient():
    """The binary forward is +-1; the gradient passes where |w| <= 1 and stops outside."""
    import tensorflow as tf

    from ai8x_nb.layers import _ops

    w = tf.Variable([-1.5, -0.3, 0.0, 0.4, 2.0])
    with tf.GradientTape() as tape:
        q = _ops.quantize_binary(w)
        loss = tf.reduce_sum(q * tf.constant([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(q.numpy(), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(tape.gradient(loss, w).numpy(), [0, 2, 3, 4, 0])


@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("extra", [dict(), dict(activation="relu", pooling="max", pool_size=2),
                                   dict(use_bias=False, wide=True)])
def test_conv_transpose2d_matches_device(padding, extra):
    rng = np.random.default_rng(padding + 11 * len(extra))
    x_int, x = _grid_input(rng, (2, 4, 5, 3))
    layer, w, b = _build(L.ConvTranspose2D, (4,), dict(padding=padding, **extra), x, rng, 0.5)
    assert layer.compute_output_shape(x.shape)[1:3] == (
        2 * (x.shape[1] // (2 if extra.get("pooling") else 1)) + 2 - 2 * padding,
        2 * (x.shape[2] // (2 if extra.get("pooling") else 1)) + 2 - 2 * padding)
    _check_float(layer, x, w, b, "convtranspose2d")
    _check_qat(layer, x_int, x, w, b, "convtranspose2d")


@pytest.mark.parametrize("extra", [dict(), dict(activation="relu"), dict(activation="abs"),
                                   dict(wide=True), dict(wide=True, use_bias=False),
                                   dict(use_bias=False)])
@pytest.mark.parametrize("weight_scale", [0.05, 2.5])
def test_dense_matches_device(extra, weight_scale):
    rng = np.random.default_rng(len(str(extra)) + int(weight_scale * 100))
    x_int, x = _grid_input(rng, (3, 40))
    layer, w, b = _build(L.Dense, (7,), extra, x, rng, weight_scale)
    _check_float(layer, x, w, b, "dense")
    _check_qat(layer, x_int, x, w, b, "dense")


def test_output_shift_follows_largest_parameter():
    rng = np.random.default_rng(0)
    _, x = _grid_input(rng, (1, 10))
    layer, _, _ = _build(L.Dense, (4,), {}, x, rng, 0.1)
    for limit, shift in [(0.3, -1), (0.5, -1), (0.51, 0), (1.0, 0), (3.0, 2), (0.001, -9)]:
        w = np.full(layer.kernel.shape, limit / 2, np.float32)
        w[0, 0] = -limit
        layer.kernel.assign(w)
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
        assert float(layer.output_shift_tensor()) == shift == nd.output_shift(w)


@pytest.mark.parametrize("bits", [4, 2, 1])
@pytest.mark.parametrize("cls,shape,args,extra", [
    (L.Conv2D, (2, 6, 6, 4), (5,), dict(activation="relu")),
    (L.Conv2D, (2, 6, 6, 4), (5,), dict(kernel_size=1, padding=0, wide=True)),
    (L.Conv1D, (2, 12, 3), (4,), dict(kernel_size=5, padding=2)),
    (L.Dense, (2, 30), (6,), dict(activation="abs")),
    (L.Dense, (2, 30), (6,), dict(wide=True)),
])
def test_low_bit_weights_qat_matches_device(bits, cls, shape, args, extra):
    rng = np.random.default_rng(bits * 13 + len(shape))
    x_int, x = _grid_input(rng, shape)
    layer, w, b = _build(cls, args, dict(weight_bits=bits, **extra), x, rng, 0.9)
    expected = _check_qat(layer, x_int, x, w, b, OPS[cls])
    assert np.unique(expected).size > 1


@pytest.mark.parametrize("cls,shape,size,strides", [
    (L.MaxPool2D, (2, 7, 9, 3), 2, None),
    (L.MaxPool2D, (2, 7, 9, 3), (3, 2), (3, 3)),
    (L.AvgPool2D, (2, 7, 9, 3), 2, None),
    (L.AvgPool2D, (2, 7, 9, 3), (3, 2), (2, 2)),
    (L.AvgPool2D, (2, 9, 9, 3), 3, 3),
    (L.MaxPool1D, (2, 17, 4), 3, 2),
    (L.AvgPool1D, (2, 17, 4), 4, 4),
    (L.AvgPool1D, (2, 17, 4), 3, 1),
])
def test_pool_layers_match_device(cls, shape, size, strides):
    rng = np.random.default_rng(len(shape) + (size if isinstance(size, int) else sum(size)))
    x_int, x = _grid_input(rng, shape)
    layer = cls(size, strides)
    got = np.asarray(layer(x))
    np.testing.assert_allclose(
        got, nd.layer_float(x, None, pooling=layer.pooling, pool_size=layer.pool_size,
                            pool_strides=layer.pool_strides), atol=1e-5, rtol=0)
    layer.qat = True
    got = np.asarray(layer(x), dtype=np.float64) * 128
    expected = nd.layer_int(x_int, None, pooling=layer.pooling, pool_size=layer.pool_size,
                            pool_strides=layer.pool_strides)
    np.testing.assert_array_equal(got, expected)


def test_average_pool_truncates_toward_zero():
    # Window sums -5 and +5 over 4 values: -1.25 -> -1, 1.25 -> 1 (not floor, not round).
    x_int = np.array([[[[-2], [-1]], [[-1], [-1]]], [[[2], [1]], [[1], [1]]]])
    layer = L.AvgPool2D(2, qat=True)
    got = np.asarray(layer((x_int / 128).astype(np.float32))) * 128
    np.testing.assert_array_equal(got.ravel(), [-1, 1])
    np.testing.assert_array_equal(nd.pool_int(x_int, "avg", (2, 2), (2, 2)).ravel(), [-1, 1])


def test_add_clamps_sum():
    rng = np.random.default_rng(5)
    xs = [(rng.integers(-128, 128, size=(2, 4, 4, 3)) / 128).astype(np.float32) for _ in range(3)]
    got = np.asarray(L.Add()(xs))
    np.testing.assert_allclose(got, np.clip(sum(xs), -1, 127 / 128), atol=1e-6)


# ------------------------------------------------------------------------ BatchNorm
def _bn_case(rng, cls, shape, args, kwargs):
    x_int, x = _grid_input(rng, shape)
    layer, w, b = _build(cls, args, kwargs, x, rng, 0.3)
    bn = layer.bn
    n = bn.moving_mean.shape[0]
    stats = dict(mean=rng.normal(0, 0.2, n), var=rng.uniform(0.05, 2.0, n))
    bn.moving_mean.assign(stats["mean"].astype(np.float32))
    bn.moving_variance.assign(stats["var"].astype(np.float32))
    if kwargs["batch_norm"] == "affine":
        stats["gamma"] = rng.uniform(0.5, 2.0, n)
        stats["beta"] = rng.normal(0, 0.3, n)
        bn.gamma.assign(stats["gamma"].astype(np.float32))
        bn.beta.assign(stats["beta"].astype(np.float32))
    return layer, x_int, x, w, b, stats


@pytest.mark.parametrize("batch_norm", ["affine", "noaffine"])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("cls,shape,args,extra", [
    (L.Conv2D, (2, 6, 7, 4), (5,), dict(activation="relu")),
    (L.Conv1D, (2, 11, 3), (4,), dict(kernel_size=3, padding=1)),
    (L.ConvTranspose2D, (2, 3, 4, 3), (4,), dict(activation="abs")),
    (L.Dense, (2, 20), (6,), dict()),
])
def test_batch_norm_float_and_fold(batch_norm, use_bias, cls, shape, args, extra):
    rng = np.random.default_rng(len(shape) * 3 + use_bias + len(batch_norm))
    layer, x_int, x, w, b, stats = _bn_case(
        rng, cls, shape, args, dict(batch_norm=batch_norm, use_bias=use_bias, **extra))
    op = OPS[cls]
    pad = getattr(layer, "padding", 0)
    before = np.asarray(layer(x, training=False))
    expected = nd.layer_float(x, op, w, b if use_bias else None, padding=pad,
                              activation=layer.activation, bn=dict(stats, eps=1e-5))
    np.testing.assert_allclose(before, expected, atol=1e-5, rtol=0)

    layer.fold_batch_norm()
    assert layer.batch_norm_folded
    after = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(after, before, atol=1e-5, rtol=0)
    # The folded parameters follow the reference's formulas.
    r = 1 / np.sqrt(stats["var"] + 1e-5)
    factor = 0.25 * stats.get("gamma", 1.0) * r
    bias = b if use_bias else 0.0
    np.testing.assert_allclose(np.asarray(layer.kernel), w * factor, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(layer.bias),
                               (bias - stats["mean"]) * factor + 0.25 * stats.get("beta", 0.0),
                               rtol=1e-5, atol=1e-6)
    # And the folded layer quantizes exactly like the device.
    _check_qat(layer, x_int, x, np.asarray(layer.kernel), np.asarray(layer.bias), op)


def _call_with_kernel(layer, kernel, x):
    """`layer(x)` computed with `kernel` (a tensor) in place of the layer's kernel variable."""
    trainable = [kernel if v is layer.kernel else v.value for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]
    y, _ = layer.stateless_call(trainable, frozen, x)
    return y


def _kernel_gradient(layer, forward):
    """d sum(forward(kernel)) / d kernel at the layer's kernel, on the running Keras backend.

    TensorFlow records a `GradientTape`, JAX differentiates the pure function with `jax.grad`,
    torch runs autograd; `forward` must compute with the kernel tensor it is given.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        kernel = tf.convert_to_tensor(layer.kernel.value)
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            total = keras.ops.sum(forward(kernel))
        return np.asarray(tape.gradient(total, kernel))
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda k: keras.ops.sum(forward(k)))(layer.kernel.value))
    if backend == "torch":
        kernel = layer.kernel.value.detach().clone().requires_grad_(True)
        keras.ops.sum(forward(kernel)).backward()
        return kernel.grad.detach().cpu().numpy()
    pytest.skip(f"no gradient helper for the {backend!r} backend")


@pytest.mark.parametrize("cls,shape,args", [(L.Conv2D, (2, 6, 6, 3), (4, 3)),
                                            (L.Conv1D, (2, 9, 3), (4, 3)),
                                            (L.Dense, (2, 5), (4,))])
def test_relu_clamp_is_exact_at_the_top_and_its_gradient_stops_there(cls, shape, args):
    rng = np.random.default_rng(7)
    _, x = _grid_input(rng, shape)
    kwargs = {"activation": "relu", "use_bias": True}
    if cls is not L.Dense:
        kwargs["padding"] = 1
    layer, _, _ = _build(cls, args, kwargs, x, rng, weight_scale=1.5, bias_scale=0.5)
    got = np.asarray(layer(x))
    assert got.max() == np.float32(127 / 128) and got.min() == 0.0  # saturates, exactly
    assert (got == np.float32(127 / 128)).sum() > 0 and (got > 0).sum() > (got == 127 / 128).sum()
    # The gradient equals that of min(relu(y), 127/128): zero where either bound cuts.
    grad = _kernel_gradient(layer, lambda kernel: _call_with_kernel(layer, kernel, x))
    ref = _kernel_gradient(layer, lambda kernel: keras.ops.minimum(
        keras.ops.relu(layer._operate(x, kernel, layer.bias)), 127 / 128))
    assert np.count_nonzero(ref) > 0  # the clamp does not cut everything
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", None, "abs"])
@pytest.mark.parametrize("cls,shape,args,extra", [
    (L.Conv2D, (3, 8, 8, 5), (6, 3), dict(padding=1, pooling="max", pool_size=2)),
    (L.Conv2D, (3, 6, 6, 2), (4, 3), dict(padding=2)),
    (L.Conv1D, (3, 9, 3), (4, 3), dict(padding=1)),
    (L.Dense, (3, 7), (5,), {})])
def test_qat_training_tail_keeps_the_values_and_gradient_of_the_plain_form(
        activation, cls, shape, args, extra):
    """The fused training tail (one XLA kernel on TensorFlow) against the keras.ops form."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused tail exists on TensorFlow only; elsewhere both are the same code")
    import tensorflow as tf

    rng = np.random.default_rng(11)
    x_int, x = _grid_input(rng, shape)
    layer, _, _ = _build(cls, args, dict(activation=activation, use_bias=True, **extra), x, rng,
                         weight_scale=0.9, bias_scale=0.4)
    layer.qat = True

    def run(training):
        with tf.GradientTape() as tape:
            y = layer(x, training=training)
            # Weighted, so every output element has its own upstream gradient.
            total = tf.reduce_sum(y * np.linspace(-1, 1, y.shape[-1], dtype=np.float32))
        return y.numpy(), [g.numpy() for g in tape.gradient(total, [layer.kernel, layer.bias])]

    (plain, plain_grads), (fused, fused_grads) = run(False), run(True)
    np.testing.assert_array_equal(fused, plain)
    low = {"relu": 0, "abs": 0, None: -1}[activation]
    clipped = np.mean((plain == 127 / 128) | (plain == low))
    assert 0 < clipped < 1  # both clamp bounds, and the inside, are exercised
    for a, b in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
