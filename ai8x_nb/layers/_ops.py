"""Device arithmetic as `keras.ops` functions: rounding, clamps, pooling, fake quantization.

Every function here is pure and works on float tensors that hold values in "data units"
(device integer / 128). Rounding is the device's round-half-up, `floor(x + 0.5)`; the
quantizers pass gradients straight through (STE) so they can be used in training.
"""

import functools

import keras
from keras import ops

DATA_SCALE = 128.0
"""Integer value of 1.0 in data units (Q7)."""
OUT_MIN = -1.0
OUT_MAX = 127.0 / 128.0
WIDE_LIMIT = 32768.0
RELU6_GAIN = 768.0 / 127.0
"""`min(relu(y), OUT_MAX) == relu6(y * RELU6_GAIN) * RELU6_LOSS`: the clamped ReLU as ReLU6."""
RELU6_LOSS = 127.0 / 768.0
"""In float32, `6 * RELU6_LOSS` is exactly `OUT_MAX`, so the top of the range is exact."""
_SHIFT_STEPS = tuple(2.0**k for k in range(-15, 15))
"""Thresholds of `output_shift`: the shift is -15 plus the number of them below the limit."""


def straight_through(x, quantized):
    """Return `quantized` in the forward pass and the gradient of `x` in the backward pass."""
    return x + ops.stop_gradient(quantized - x)


def round_half_up(x):
    """The device's rounding: `floor(x + 0.5)`."""
    return ops.floor(x + 0.5)


def quantize_output(y, shift, activation):
    """The quantized tail of a non-wide layer: scale by 2^shift, round, activate, clamp.

    Computes `clamp(activate(floor(y * 2^shift * 128 + 0.5))) / 128` with a straight-through
    gradient (zero where the clamp or ReLU cuts). With no activation or ReLU the bounds are
    integers, so clamping before the rounding gives the same values in fewer element-wise
    passes; Abs keeps the device order (round, then abs), which differs at negative halves.
    """
    v = y * (DATA_SCALE * ops.power(2.0, shift))
    if activation == "abs":
        q = ops.abs(straight_through(v, round_half_up(v)))
        return ops.minimum(q, 127.0) / DATA_SCALE
    v = ops.clip(v, 0.0 if activation == "relu" else -128.0, 127.0)
    return straight_through(v, round_half_up(v)) / DATA_SCALE


def quantize_scaled_output(v, activation, fused=False):
    """`quantize_output` of an accumulator already multiplied by 128 * 2^shift.

    `v` is in device units (the integer grid is 1.0). Callers fold the power-of-two scale
    into the (small) quantized kernel and bias, which gives bit-identical `v` without a pass
    over every output element. Computes `clamp(activate(floor(v + 0.5))) / 128` with the same
    straight-through gradient as `quantize_output`.

    Args:
        v: the scaled accumulator.
        activation: None, "relu" or "abs".
        fused: on TensorFlow, run clamp, rounding, activation and scale (and their gradient)
            as one XLA-compiled kernel: the same values and gradient, one pass over the
            tensor instead of several. Used in training steps.
    """
    if fused and keras.backend.backend() == "tensorflow":
        return _fused_tail(activation)(v)
    if activation == "abs":
        q = ops.abs(straight_through(v, round_half_up(v)))
        return ops.minimum(q, 127.0) / DATA_SCALE
    v = ops.clip(v, 0.0 if activation == "relu" else -128.0, 127.0)
    return straight_through(v, round_half_up(v)) / DATA_SCALE


@functools.cache
def _fused_tail(activation):
    """The TensorFlow kernel of `quantize_scaled_output`.

    ReLU / no activation: forward `floor(clip(v, low, 127) + 0.5) / 128`; backward: the
    upstream gradient / 128 where `low <= v <= 127` (the gradient of the clip, as `ops.clip`
    has it), else 0. Abs, in the device order (round, then abs, then clamp): forward
    `min(|floor(v + 0.5)|, 127) / 128`; backward: the upstream gradient / 128 times the sign
    of the rounded value where it is within +-127, else 0 (the gradients of the straight-through
    round, `ops.abs` and `ops.minimum`). Every step is an exact float operation (clamps, +0.5
    on values below 2^23, floor, abs, a power-of-two scale), so XLA's fusion cannot change a bit.
    """
    import tensorflow as tf

    scale = 1.0 / DATA_SCALE
    if activation == "abs":
        @tf.custom_gradient
        def tail(v):
            rounded = tf.floor(v + 0.5)
            magnitude = tf.abs(rounded)
            out = tf.minimum(magnitude, 127.0) * scale

            def grad(upstream):
                slope = tf.where(magnitude <= 127.0, tf.sign(rounded) * scale,
                                 tf.zeros_like(rounded))
                return upstream * slope

            return out, grad
    else:
        low = 0.0 if activation == "relu" else -128.0

        @tf.custom_gradient
        def tail(v):
            out = tf.floor(tf.minimum(tf.maximum(v, low), 127.0) + 0.5) * scale

            def grad(upstream):
                inside = tf.logical_and(v >= low, v <= 127.0)
                return tf.where(inside, upstream * scale, tf.zeros_like(upstream))

            return out, grad

    return tf.function(tail, jit_compile=True, autograph=False)


def quantize_wide(x, weight_bits=8):
    """Round a wide (32-bit) output to its accumulator grid, 1 / (128 * 2^(bits-1)), and clamp it.

    For 8-bit weights the grid is 2^-14 (Q17.14).
    """
    scale = DATA_SCALE * 2.0 ** (weight_bits - 1)
    x = straight_through(x, round_half_up(x * scale) / scale)
    return ops.clip(x, -WIDE_LIMIT, WIDE_LIMIT)


def quantize_weight(w, bits):
    """Fake-quantize weights to `bits` bits: grid 2^-(bits-1), clamped to [-1, 1 - 2^-(bits-1)]."""
    scale = 2.0 ** (bits - 1)
    q = straight_through(w * scale, round_half_up(w * scale))
    return ops.clip(q, -scale, scale - 1.0) / scale


def quantize_binary(w):
    """Fake-quantize weights to +-1 (MAX78002 binary weights): +1 where w >= 0, else -1.

    The gradient is the straight-through estimator of BinaryConnect: it passes unchanged where
    |w| <= 1 and is zero outside (the weight cannot move further from the sign it has), so
    weights stay in [-1, 1] and can flip sign again.
    """
    q = ops.where(w >= 0, 1.0, -1.0)
    return straight_through(ops.clip(w, -1.0, 1.0), q)


def quantize_bias(b, bits):
    """Fake-quantize a bias: 8-bit integer in units of (data x weight), i.e. grid 2^-(bits-1).

    The accumulator adds `bias_int * 128`; with `bits`-bit weights one accumulator unit is
    1 / (128 * 2^(bits-1)) in data units, so the bias grid is the weight grid and its integer
    range is always [-128, 127]. For 8-bit weights this is the usual `floor(b * 128 + 0.5) / 128`
    clamped to [-1, 127/128].
    """
    scale = 2.0 ** (bits - 1)
    q = straight_through(b * scale, round_half_up(b * scale))
    return ops.clip(q, -128.0, 127.0) / scale


def clamp_output(x, wide=False):
    """Clamp a layer output: [-1, 127/128] for 8-bit outputs, +-32768 for wide outputs."""
    if wide:
        return ops.clip(x, -WIDE_LIMIT, WIDE_LIMIT)
    return ops.clip(x, OUT_MIN, OUT_MAX)


def activate(x, activation):
    """Apply the device activation: None, "relu" or "abs"."""
    if activation == "relu":
        return ops.relu(x)
    if activation == "abs":
        return ops.abs(x)
    return x


def output_shift(kernel, bias=None, shift_quantile=1.0):
    """Derive a layer's output_shift from its parameters, as ai8x-training does.

    `limit = quantile(|W, b|, shift_quantile)`, `shift = -floor(log2(1 / limit))`, clamped
    to [-15, 15]. The result is a float scalar tensor holding an integer, without gradient.

    The shift is computed exactly as `ceil(log2(limit))`: the number of powers of two
    2^-15 .. 2^14 below `limit`, minus 15. A float `log2` is off by one near powers of two,
    and differently so in eager, graph and XLA mode; counting comparisons gives the same
    integer everywhere, so training, evaluation and integer conversion always agree.
    """
    params = ops.abs(ops.reshape(kernel, (-1,)))
    if bias is not None:
        params = ops.concatenate([params, ops.abs(ops.reshape(bias, (-1,)))])
    if shift_quantile >= 1.0:
        limit = ops.max(params)
    else:
        limit = ops.quantile(params, shift_quantile)
    steps = ops.convert_to_tensor(_SHIFT_STEPS, dtype=limit.dtype)
    shift = ops.sum(ops.cast(ops.greater(limit, steps), limit.dtype)) - 15.0
    return ops.stop_gradient(shift)


def pool(x, mode, pool_size, strides, quantized=False, dilation=None):
    """Max or average pooling without padding, channels last (1D or 2D from `pool_size`).

    With `quantized=True` the average is truncated toward zero on the 1/128 grid, as the
    device does. `dilation` (per spatial axis, default 1) spaces the window's taps: a
    window of k taps spans `(k - 1) * dilation + 1` input rows / columns.
    """
    if dilation is not None and any(d > 1 for d in dilation):
        y = dilated_pool(x, mode, pool_size, strides, dilation)
        if mode == "max":
            return y
    elif mode == "max":
        return ops.max_pool(x, pool_size, strides, padding="valid")
    else:
        y = ops.average_pool(x, pool_size, strides, padding="valid")
    if not quantized:
        return y
    count = 1
    for k in pool_size:
        count *= k
    # The window sum is an exact integer on the data grid; truncate sum / count toward zero.
    # floor(|S| / n + 0.5 / n) keeps every candidate at least 0.5 / n away from an integer,
    # so float rounding in the division can never flip the result.
    total = ops.round(y * (count * DATA_SCALE))
    trunc = ops.sign(total) * ops.floor(ops.abs(total) / count + 0.5 / count)
    return straight_through(y, trunc / DATA_SCALE)


def dilated_pool(x, mode, pool_size, strides, dilation):
    """Max or mean over windows whose taps lie `dilation` apart (float; no truncation).

    One strided slice per tap of the window, combined with maximum or a sum: exactly the
    taps the device reads (`(k - 1) * dilation + 1` span, output `(n - span) // s + 1`).
    """
    spatial = tuple(x.shape[1:-1])
    out = [(n - (k - 1) * d - 1) // s + 1
           for n, k, s, d in zip(spatial, pool_size, strides, dilation)]
    result = None
    count = 0
    for taps in _window_taps(pool_size):
        index = (slice(None),) + tuple(
            slice(t * d, t * d + s * (o - 1) + 1, s)
            for t, d, s, o in zip(taps, dilation, strides, out)) + (slice(None),)
        window = x[index]
        count += 1
        if result is None:
            result = window
        elif mode == "max":
            result = ops.maximum(result, window)
        else:
            result = result + window
    return result if mode == "max" else result / float(count)


def _window_taps(pool_size):
    """Every tap (a, b, ...) of a window, row-major."""
    taps = [()]
    for k in pool_size:
        taps = [t + (i,) for t in taps for i in range(k)]
    return taps
