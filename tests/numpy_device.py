"""An independent NumPy model of the MAX78000 layer arithmetic, for tests.

Written from the ai8x reference (sections 2-3), not from `ai8x_nb.layers._ops`: pooling,
zero padding, convolutions as explicit sums over integer arrays, the transposed convolution
by its scatter-add definition, output_shift, weight/bias quantization and the integer
accumulator with round-half-up, activation and clamp.

Conventions: channels-last arrays with a batch axis, (N, H, W, C) or (N, L, C) or (N, F);
kernels in the Keras layout (kh, kw, in, out), (k, in, out) or (in, out).

Integer model (what the device computes): data integers x_int in [-128, 127]; with b-bit
weights w_int in [-2^(b-1), 2^(b-1) - 1] and an 8-bit bias b_int in [-128, 127],

    acc = sum(x_int * w_int) + b_int * 128

One accumulator unit is 1 / (128 * 2^(b-1)) in data units (x / 128 times w / 2^(b-1)), so the
bias' value in data units is b_int * 128 / (128 * 2^(b-1)) = b_int / 2^(b-1): on the weight grid,
and with 8-bit weights the familiar b_int / 128. The 8-bit output is

    out_int = clamp(act(floor(0.5 + acc * 2^shift / 2^(b-1))), -128, 127)

which for 8-bit weights is the reference's floor(0.5 + acc / (128 / 2^output_shift)) (the
synthesis loader's extra `8 - b` shift makes the 2^(b-1) the same for every width). A wide
output keeps `acc` (value acc / (128 * 2^(b-1)), no shift).
"""

import math

import numpy as np

DATA_SCALE = 128


def round_half_up(x):
    """floor(x + 0.5)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


# ---------------------------------------------------------------------------- pooling
def _windows(x, size, strides, dilation=None):
    """Yield (output index tuple, window array (N, *size, C)) over the spatial axes.

    With `dilation` d the window's taps lie d apart (ai8x-synthesis `compute.pool2d`:
    `data[row:row + pool * d:d]`), spanning (k - 1) * d + 1.
    """
    spatial = x.shape[1:-1]
    dilation = dilation or (1,) * len(size)
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(spatial, size, strides, dilation)]
    for idx in np.ndindex(*out):
        sl = tuple(slice(i * s, i * s + (k - 1) * d + 1, d)
                   for i, k, s, d in zip(idx, size, strides, dilation))
        yield idx, x[(slice(None),) + sl + (slice(None),)], out


def pool_float(x, mode, size, strides, dilation=None):
    """Max or mean pooling without padding, float."""
    x = np.asarray(x, dtype=np.float64)
    result = None
    for idx, win, out in _windows(x, size, strides, dilation):
        if result is None:
            result = np.zeros((x.shape[0], *out, x.shape[-1]))
        axes = tuple(range(1, win.ndim - 1))
        value = win.max(axis=axes) if mode == "max" else win.mean(axis=axes)
        result[(slice(None),) + idx + (slice(None),)] = value
    return result


def pool_int(x_int, mode, size, strides, dilation=None):
    """The device's pooling on integers: max, or the window sum divided by the window size
    and truncated toward zero."""
    x_int = np.asarray(x_int, dtype=np.int64)
    count = int(np.prod(size))
    result = None
    for idx, win, out in _windows(x_int, size, strides, dilation):
        if result is None:
            result = np.zeros((x_int.shape[0], *out, x_int.shape[-1]), dtype=np.int64)
        axes = tuple(range(1, win.ndim - 1))
        if mode == "max":
            value = win.max(axis=axes)
        else:
            total = win.sum(axis=axes)
            value = np.sign(total) * (np.abs(total) // count)
        result[(slice(None),) + idx + (slice(None),)] = value
    return result


# ------------------------------------------------------------------------- operators
def zero_pad(x, p):
    """Zero padding of `p` on both sides of every spatial axis."""
    widths = [(0, 0)] + [(p, p)] * (x.ndim - 2) + [(0, 0)]
    return np.pad(x, widths)


def depthwise_conv(x, w, padding):
    """Depthwise 2D convolution (ai8x-synthesis `compute.conv2d` with groups == channels):
    out[n, i, j, c] = sum_{a, b} xp[n, i+a, j+b, c] w[a, b, 0, c], written as the grouped
    convolution it is: each channel's one-channel kernel placed on the diagonal of a full one."""
    k, channels = w.shape[0], w.shape[-1]
    full = np.zeros((k, k, channels, channels), dtype=w.dtype)
    for c in range(channels):
        full[:, :, c, c] = w[:, :, 0, c]
    return conv(x, full, padding)


def conv(x, w, padding, dilation=1):
    """Stride-1 convolution (cross-correlation) of 1D or 2D channels-last data.

    Works on int64 or float64 arrays: out[n, i, j, o] = sum_{a, b, c} xp[n, i+a, j+b, c] w[a, b, c, o].
    1D with `dilation` d (ai8x-synthesis `compute.conv1d`): out[n, i, o] = sum_{a, c}
    xp[n, i + a*d, c] w[a, c, o], length L + 2p - (k - 1) d.
    """
    xp = zero_pad(x, padding)
    k = w.shape[0]
    if x.ndim == 4:
        rows, cols = xp.shape[1] - k + 1, xp.shape[2] - k + 1
        out = 0
        for a in range(k):
            for b in range(k):
                out = out + np.einsum("nhwc,co->nhwo", xp[:, a:a + rows, b:b + cols, :], w[a, b])
        return out
    length = xp.shape[1] - (k - 1) * dilation
    out = 0
    for a in range(k):
        out = out + np.einsum("nlc,co->nlo", xp[:, a * dilation:a * dilation + length, :], w[a])
    return out


def conv_transpose(x, w, padding):
    """3x3 stride-2 transposed convolution by scatter-add, output padding 1.

    out[2i + a - p, 2j + b - p] += x[i, j] @ W[a, b]; output size 2 * in + 2 - 2p.
    """
    n, rows, cols, _ = x.shape
    k = w.shape[0]
    full = np.zeros((n, 2 * rows + k, 2 * cols + k, w.shape[-1]),
                    dtype=np.result_type(x, w))
    for i in range(rows):
        for j in range(cols):
            for a in range(k):
                for b in range(k):
                    full[:, 2 * i + a, 2 * j + b, :] += x[:, i, j, :] @ w[a, b]
    p = padding
    return full[:, p:p + 2 * rows + 2 - 2 * p, p:p + 2 * cols + 2 - 2 * p, :]


def dense(x, w):
    """x @ W."""
    return x @ w


def operate(op, x, w, padding=0, dilation=1):
    """Dispatch on "conv2d", "conv1d", "convtranspose2d", "depthwise" or "dense"."""
    if op == "depthwise":
        return depthwise_conv(x, w, padding)
    if op in ("conv2d", "conv1d"):
        return conv(x, w, padding, dilation)
    if op == "convtranspose2d":
        return conv_transpose(x, w, padding)
    return dense(x, w)


# ---------------------------------------------------------------------- quantization
def output_shift(w, b=None):
    """ceil(log2(max |W, b|)), i.e. -floor(log2(1 / limit)), clamped to [-15, 15].

    Computed exactly with frexp: limit = m * 2^e, m in [0.5, 1).
    """
    values = np.abs(np.asarray(w, dtype=np.float64)).ravel()
    if b is not None:
        values = np.concatenate([values, np.abs(np.asarray(b, dtype=np.float64)).ravel()])
    limit = max(float(values.max()), 2.0 ** -20)
    m, e = math.frexp(limit)
    shift = e if m > 0.5 else e - 1
    return int(min(15, max(-15, shift)))


def quantize_params(w, b, bits, shift):
    """Integer weights and bias of a layer (reference section 3, with the derived shift).

    Returns:
        (w_int, b_int or None), int64.
    """
    half = 2 ** (bits - 1)
    scale = 2.0 ** (-shift)
    w_int = np.clip(round_half_up(np.asarray(w, np.float64) * scale * half), -half, half - 1)
    b_int = None
    if b is not None:
        b_int = np.clip(round_half_up(np.asarray(b, np.float64) * scale * half), -128, 127)
    return w_int.astype(np.int64), None if b_int is None else b_int.astype(np.int64)


def quantize_binary_params(w, b, shift):
    """MAX78002 binary weights: +1 where the shifted weight is >= 0, else -1 (never 0), read
    as 1-bit weights (scale 2^0, the loader's implicit shift 7); the bias as for 1-bit.

    Returns:
        (w_int in {-1, +1}, b_int or None), int64.
    """
    scaled = np.asarray(w, np.float64) * 2.0 ** (-shift)
    w_int = np.where(scaled >= 0, 1, -1)
    _, b_int = quantize_params(w, b, 1, shift)
    return w_int.astype(np.int64), b_int


def activate(x, activation):
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "abs":
        return np.abs(x)
    return x


# ---------------------------------------------------------------------------- layers
def layer_int(x_int, op, w_int=None, b_int=None, *, bits=8, shift=0, padding=0,
              pooling=None, pool_size=None, pool_strides=None, activation=None, wide=False,
              dilation=1, pool_dilation=None):
    """The device's integer computation of one layer.

    Returns:
        int64 array: 8-bit outputs in [-128, 127], or the raw accumulator when `wide`.
    """
    x = np.asarray(x_int, dtype=np.int64)
    if pooling is not None:
        x = pool_int(x, pooling, pool_size, pool_strides, pool_dilation)
    if op is None:  # pool-only layer
        return np.clip(x, -128, 127)
    acc = operate(op, x, w_int, padding, dilation).astype(np.int64)
    if b_int is not None:
        acc = acc + b_int * DATA_SCALE
    if wide:
        return acc
    half = 2 ** (bits - 1)
    out = np.floor(0.5 + acc.astype(np.float64) * 2.0 ** shift / half).astype(np.int64)
    return np.clip(activate(out, activation), -128, 127)


def eltwise_add_int(xs):
    """The device's element-wise add of integer tensors: the sum, clamped to [-128, 127].

    A convolution that adds its inputs first (`eltwise: add`, `pool_first: false`) runs
    `layer_int(eltwise_add_int(xs), ...)`: add, clamp, then pool, convolve, shift, activate.
    """
    total = np.zeros(np.shape(xs[0]), dtype=np.int64)
    for x in xs:
        total = total + np.asarray(x, dtype=np.int64)
    return np.clip(total, -128, 127)


def eltwise_int(op, xs):
    """The device's element-wise `op` ("add", "sub", "xor", "or") of integer tensors.

    Left to right in a wide accumulator (`sub`: the first operand minus all the others), then
    one clamp to [-128, 127]. Xor and or act on the 8-bit two's-complement codes: each operand
    is taken modulo 256 and the 8-bit result read back as signed.
    """
    if op == "add":
        return eltwise_add_int(xs)
    if op == "sub":
        total = np.asarray(xs[0], dtype=np.int64).copy()
        for x in xs[1:]:
            total = total - np.asarray(x, dtype=np.int64)
        return np.clip(total, -128, 127)
    if op not in ("xor", "or"):
        raise ValueError(f"unknown element-wise op {op!r}")
    code = np.asarray(xs[0], dtype=np.int64) % 256
    for x in xs[1:]:
        other = np.asarray(x, dtype=np.int64) % 256
        code = code ^ other if op == "xor" else code | other
    return np.where(code >= 128, code - 256, code)


def concatenate_int(xs):
    """What a convolution reading `in_sequences: [a, b]` sees: the inputs' channels side by side,
    in order (channels last here; the tool concatenates its channel-first arrays on axis 0)."""
    return np.concatenate([np.asarray(x, dtype=np.int64) for x in xs], axis=-1)


def batch_norm(y, mean, var, gamma=None, beta=None, eps=1e-5):
    """Inference BatchNorm, then the ai8x /4."""
    z = (y - mean) / np.sqrt(var + eps)
    if gamma is not None:
        z = z * gamma
    if beta is not None:
        z = z + beta
    return z / 4.0


def layer_float(x, op, w=None, b=None, *, padding=0, pooling=None, pool_size=None,
                pool_strides=None, activation=None, wide=False, bn=None, dilation=1,
                pool_dilation=None):
    """The float training forward: pool -> pad -> op + bias -> [bn / 4] -> act -> clamp.

    Args:
        bn: None or a dict with mean, var and optionally gamma, beta, eps.
    """
    x = np.asarray(x, dtype=np.float64)
    if pooling is not None:
        x = pool_float(x, pooling, pool_size, pool_strides, pool_dilation)
    if op is None:
        return np.clip(x, -1.0, 127.0 / 128.0)
    y = operate(op, x, np.asarray(w, np.float64), padding, dilation)
    if b is not None:
        y = y + b
    if bn is not None:
        y = batch_norm(y, **bn)
    y = activate(y, activation)
    if wide:
        return np.clip(y, -32768.0, 32768.0)
    return np.clip(y, -1.0, 127.0 / 128.0)
