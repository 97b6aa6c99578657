"""Bit-exact integer simulation of a quantized model, as the accelerator computes it.

Per hardware layer (ai8x reference, section 3), on integers:

- pooling: max, or average = window sum truncated toward zero (`sign(S) * (|S| // n)`);
- zero padding, then convolution / linear: `acc = sum(x_int * w_int) + b_int * 128` (int64);
- output: `floor(0.5 + acc * 2^(output_shift + 8 - bits) / 128)`, then ReLU / Abs, then clamp to
  [-128, 127];
- wide (32-bit) output: the raw accumulator, no shift;
- element-wise add / sub / xor / or: the inputs combined left to right (`x0 - x1 - x2` for sub;
  xor and or on the two's-complement codes), clamped; pooling-only layers pass the pooled data
  through. An element-wise layer fused into a convolution (`HwLayer.eltwise`) is that clamped
  result, then the layer's pooling and convolution (the tool's `pool_first: false`);
- a convolution reading a `Concatenate` (`HwLayer.concat_layer`) reads its inputs' channels
  side by side, in order.

The functions here define that arithmetic in NumPy. The matrix products run in float32 when
every partial sum stays below 2^24 (exact there), else in float64 (exact below 2^53), so the
result is the exact integer either way. A layer of the float32 kind (and every pooling-only
and element-wise layer) runs as the same steps in TensorFlow (`ai8x_nb.simulate_tf`), the
batch staying in TensorFlow from layer to layer; when TensorFlow runs every layer and there
are at least `_COMPILE_MIN_BATCHES` batches, the whole model runs as one TensorFlow graph
(traced once per call), two batches at a time. tests/test_simulate_engines.py holds the three ways equal.
`QuantizedModel` comes from `ai8x_nb.quantize.convert`.
"""

import dataclasses
import logging
import math

import numpy as np

from ai8x_nb.errors import QuantizationError
from ai8x_nb.graph import MODEL_INPUT
from ai8x_nb.layers._ops import DATA_SCALE, WIDE_LIMIT

__all__ = ["simulate", "simulate_layers", "LayerStats", "round_shift"]

logger = logging.getLogger(__name__)

DATA_MIN, DATA_MAX = -128, 127
_FLOAT32_EXACT = 2**24
_FLOAT64_EXACT = 2**53
# Tracing the whole model into one graph (simulate_tf.TfModel) costs about a batch's time and
# saves much of each batch's: worth it from this many batches (fewer run layer by layer).
_COMPILE_MIN_BATCHES = 4
# Batches the graph runs at once (threads): TensorFlow's kernels then keep both of a small
# machine's cores busy between one batch's kernels.
_BATCHES_IN_FLIGHT = 2


@dataclasses.dataclass
class LayerStats:
    """How often one layer's outputs were clipped by the final clamp.

    Attributes:
        name: layer name.
        op: hardware op.
        outputs: number of output values seen.
        clipped_low: values that were below the range before the clamp.
        clipped_high: values that were above the range before the clamp.
    """

    name: str
    op: str
    outputs: int = 0
    clipped_low: int = 0
    clipped_high: int = 0

    @property
    def saturation(self):
        """Fraction of outputs clipped (low or high)."""
        return (self.clipped_low + self.clipped_high) / self.outputs if self.outputs else 0.0

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["saturation"] = self.saturation
        return data


def round_shift(acc, shift, out=None):
    """`floor(0.5 + acc * 2^shift / 128)` on integer arrays, with integer operations only.

    Args:
        acc: integer accumulator values (int32 or int64).
        shift: the device's total shift, `output_shift + 8 - weight_bits`.
        out: optional array to write into (may be `acc`).

    Returns:
        Integer array of `acc`'s dtype. For a left shift (shift > 7) values whose result
        would not fit the dtype are first limited to a magnitude that still saturates the
        8-bit clamp.
    """
    k = 7 - int(shift)
    if k > 0:
        result = np.add(acc, 1 << (k - 1), out=out)
        return np.right_shift(result, k, out=result)
    if k == 0:
        if out is None or out is acc:
            return acc
        np.copyto(out, acc)
        return out
    limit = np.iinfo(acc.dtype).max >> (-k + 1)
    result = np.clip(acc, -limit, limit, out=out)
    return np.left_shift(result, -k, out=result)


def _exact_dtype(x, w, terms, bias=None):
    """(matmul dtype, accumulator int dtype) exact for these operands.

    Activations are int32 codes in [-128, 127]; int64 marks a wide layer's raw output.
    """
    x_max = 128 if x.dtype == np.int32 else int(np.abs(x).max(initial=0))
    bound = terms * max(x_max, 1) * max(int(np.abs(w).max(initial=0)), 1)
    if bias is not None:
        bound += 128 * int(np.abs(bias).max(initial=0))
    if bound < _FLOAT32_EXACT:
        return np.float32, np.int32
    if bound < _FLOAT64_EXACT:
        return np.float64, np.int64
    return np.int64, np.int64


def _conv(x, w, padding, dtype):
    """Correlation of channels-last x (N, *spatial, C) with a Keras kernel (*k, C, O).

    In float32 (every partial sum below 2^24) TensorFlow's CPU convolution computes it:
    it accumulates products of integers in float32 (oneDNN's direct convolution or Eigen's
    GEMM; no Winograd or FFT), exact in any order below 2^24, and about 3x faster than the
    NumPy im2col + matmul below, which runs the float64 case.
    """
    if dtype == np.float32:
        return _conv_tf(x, w, padding)
    rank = x.ndim - 2
    k = w.shape[:rank]
    terms = int(np.prod(w.shape[:-1]))
    x = x.astype(dtype, copy=False)
    if padding:
        x = np.pad(x, [(0, 0)] + [(padding, padding)] * rank + [(0, 0)])
    out_spatial = tuple(s - kk + 1 for s, kk in zip(x.shape[1:-1], k))
    if all(kk == 1 for kk in k):
        cols = x
    else:
        axes = tuple(range(1, rank + 1))
        windows = np.lib.stride_tricks.sliding_window_view(x, k, axis=axes)
        # (N, *out, C, *k) -> (N, *out, *k, C): tap-major then channel, the order of the
        # Keras kernel reshaped to (k*k*C, O).
        order = (0,) + axes + tuple(range(rank + 2, 2 * rank + 2)) + (rank + 1,)
        cols = np.ascontiguousarray(windows.transpose(order))
    out = np.matmul(cols.reshape(-1, terms), w.reshape(terms, -1).astype(dtype))
    return out.reshape((x.shape[0],) + out_spatial + (w.shape[-1],))


def _conv_tf(x, w, padding):
    """The float32 convolution in TensorFlow; returns the exact int32 accumulator."""
    import tensorflow as tf  # the Keras backend: already loaded with the model

    rank = x.ndim - 2
    k = w.shape[:rank]
    xf = tf.cast(x, tf.float32)
    if padding and all(kk == 2 * padding + 1 for kk in k):
        mode = "SAME"  # stride 1, odd kernel, symmetric pad (k - 1) / 2: the same zeros
    else:
        mode = "VALID"
        if padding:
            xf = tf.pad(xf, [(0, 0)] + [(padding, padding)] * rank + [(0, 0)])
    out = tf.nn.convolution(xf, tf.constant(w, dtype=tf.float32), padding=mode)
    return tf.cast(out, tf.int32).numpy()


def _conv_transpose(x, w, padding, dtype):
    """Stride-2 transposed convolution: out[2i + a - p, 2j + b - p] += x[i, j] @ W[a, b]."""
    n, rows, cols_, channels = x.shape
    kh, kw = w.shape[:2]
    flat = x.reshape(-1, channels).astype(dtype, copy=False)
    full = np.zeros((n, 2 * rows + kh - 1, 2 * cols_ + kw - 1, w.shape[-1]), dtype=dtype)
    for a in range(kh):
        for b in range(kw):
            contrib = np.matmul(flat, w[a, b].astype(dtype)).reshape(n, rows, cols_, -1)
            full[:, a:a + 2 * rows:2, b:b + 2 * cols_:2, :] += contrib
    out_rows, out_cols = 2 * rows + 2 - 2 * padding, 2 * cols_ + 2 - 2 * padding
    out = np.zeros((n, out_rows, out_cols, w.shape[-1]), dtype=dtype)
    crop = full[:, padding:padding + out_rows, padding:padding + out_cols, :]
    out[:, :crop.shape[1], :crop.shape[2], :] = crop
    return out


def _linear(x, w, dtype):
    return np.matmul(x.astype(dtype, copy=False), w.astype(dtype))


def _pool(x, mode, size, strides, dilation=None):
    """Max or truncating-average pooling without padding on integer channels-last data.

    `dilation` (MAX78002 `pool_dilation`) spaces a window's taps that far apart."""
    spatial = x.shape[1:-1]
    dilation = dilation or (1,) * len(size)
    out = tuple((s - (k - 1) * d - 1) // st + 1
                for s, k, st, d in zip(spatial, size, strides, dilation))
    combine = np.maximum if mode == "max" else np.add
    windows = [x[(slice(None),) + tuple(slice(o * d, o * d + st * (n - 1) + 1, st)
                                        for o, st, n, d in zip(offset, strides, out, dilation))]
               for offset in np.ndindex(*size)]
    if len(windows) == 1:
        result = windows[0].copy()
    else:  # the first two into a new array, the others in place: one pass less than a copy
        result = combine(windows[0], windows[1])
        for window in windows[2:]:
            combine(result, window, out=result)
    if mode == "max":
        return result
    count = math.prod(size)
    return np.sign(result) * (np.abs(result) // count)


def _clamp(y, low, high, stats):
    """Clamp in place; count the clamped values only when statistics are collected."""
    if stats is not None:
        stats.outputs += y.size
        stats.clipped_low += int(np.count_nonzero(y < low))
        stats.clipped_high += int(np.count_nonzero(y > high))
    return np.clip(y, low, high, out=y)


def _dilated(w, dilation):
    """A Conv1D kernel (k, C, O) stretched as the tool stores a dilated one: zeros between
    the taps, `(k - 1) * dilation + 1` taps long."""
    if dilation == 1:
        return w
    k = w.shape[0]
    out = np.zeros(((k - 1) * dilation + 1,) + w.shape[1:], dtype=w.dtype)
    out[::dilation] = w
    return out


def _depthwise(x, w, padding, dtype):
    """Depthwise 2D correlation: channel c of x with kernel w[:, :, 0, c] (kernel (k, k, 1, C)),
    one multiply-add per tap over whole planes (exact in `dtype`)."""
    k = w.shape[0]
    x = x.astype(dtype, copy=False)
    if padding:
        x = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
    rows, cols = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = np.zeros((x.shape[0], rows, cols, w.shape[-1]), dtype=dtype)
    wd = w.astype(dtype)
    for a in range(k):
        for b in range(k):
            out += x[:, a:a + rows, b:b + cols, :] * wd[a, b, 0]
    return out


def _accumulate(ql, x):
    """The layer's integer accumulator: pooled input * weights + bias * 128."""
    hw, layer = ql.hw, ql.hw.layer
    terms = int(np.prod(ql.weights.shape[:-1]))
    if hw.op == "convtranspose2d":
        terms = ql.weights.shape[2] * 9
    dtype, int_dtype = _exact_dtype(x, ql.weights, terms, ql.bias)
    if hw.op == "conv1d":
        acc = _conv(x, _dilated(ql.weights, getattr(layer, "dilation", 1)), layer.padding,
                    dtype)
    elif hw.op == "conv2d" and getattr(layer, "groups", 1) > 1:
        acc = _depthwise(x, ql.weights, layer.padding, dtype)
    elif hw.op == "conv2d":
        acc = _conv(x, ql.weights, layer.padding, dtype)
    elif hw.op == "convtranspose2d":
        acc = _conv_transpose(x, ql.weights, layer.padding, dtype)
    elif hw.op == "linear":
        acc = _linear(x, ql.weights, dtype)
    else:
        raise QuantizationError(
            f"Layer '{hw.name}' ({hw.op}) cannot be simulated; run ai8x_nb.check.check_model.")
    acc = acc.astype(int_dtype, copy=False)  # exact: every value is an integer below the bound
    if ql.bias is not None:
        acc += (ql.bias * int(DATA_SCALE)).astype(int_dtype)
    return acc


_ELTWISE = {"add": np.add, "sub": np.subtract, "xor": np.bitwise_xor, "or": np.bitwise_or}


def _eltwise(op, xs, stats):
    """The device's element-wise `op`, left to right over the operands, clamped to [-128, 127].

    Xor and or act on the int64 two's-complement values, whose low 8 bits are the device
    codes and whose higher bits are sign copies: the result stays in [-128, 127].
    """
    fn = _ELTWISE[op]
    total = xs[0].astype(np.int64)
    for x in xs[1:]:
        total = fn(total, x, out=total)
    return _clamp(total, DATA_MIN, DATA_MAX, stats).astype(np.int32)


def _run_layer(ql, inputs, stats):
    hw = ql.hw
    layer = hw.layer
    n = inputs[0].shape[0]
    if hw.concat_layer is not None:  # `in_sequences: [a, b]`: channels side by side
        spatial = (n,) + tuple(hw.in_shape[:-1]) + (-1,)
        xs = [np.concatenate([x.reshape(spatial) for x in inputs], axis=-1)]
    else:
        xs = [x.reshape((n,) + tuple(hw.in_shape)) for x in inputs]
    if hw.op in _ELTWISE:
        return _eltwise(hw.op, xs, stats)
    # A fused element-wise layer (`eltwise: add`, `pool_first: false`): combine, clamp, then
    # pool and convolve.
    x = _eltwise(hw.eltwise, xs, None) if hw.eltwise else xs[0]
    if getattr(layer, "pooling", None) is not None:
        x = _pool(x, layer.pooling, layer.pool_size, layer.pool_strides,
                  getattr(layer, "pool_dilation", None))
    if hw.op == "passthrough":
        return _clamp(x.copy(), DATA_MIN, DATA_MAX, stats)
    acc = _accumulate(ql, x)
    if layer.wide:
        limit = int(WIDE_LIMIT * DATA_SCALE) << (ql.weight_bits - 1)
        return _clamp(acc.astype(np.int64), -limit, limit, stats)
    y = round_shift(acc, ql.total_shift, out=acc)
    if layer.activation == "relu":
        np.maximum(y, 0, out=y)
    elif layer.activation == "abs":
        np.abs(y, out=y)
    return _clamp(y, DATA_MIN, DATA_MAX, stats).astype(np.int32, copy=False)


def _last_use(qmodel):
    last = {}
    for ql in qmodel.layers:
        for src in ql.hw.inputs:
            last[src] = ql.hw.index
    return last


def _tf_layers(qmodel):
    """The layers TensorFlow runs exactly, as `{index: simulate_tf.TfLayer}` (built once per call).

    A convolution or linear layer qualifies when every partial sum stays below 2^24 (float32
    is exact) and it reads 8-bit codes; pooling-only and element-wise layers always do
    (unless they read a wide layer's raw accumulator). Transposed convolutions and any
    option the TensorFlow form does not model (dilation, pool dilation, groups) run in NumPy.
    """
    from ai8x_nb.simulate_tf import TfLayer  # imports TensorFlow, loaded with the model

    wide = {ql.hw.index for ql in qmodel.layers if getattr(ql.hw.layer, "wide", False)}
    codes = np.zeros(0, dtype=np.int32)  # 8-bit activation codes: |x| <= 128
    plan = {}
    for ql in qmodel.layers:
        hw = ql.hw
        if any(i in wide for i in hw.inputs) or not _plain_layer(hw.layer):
            continue
        if hw.op in ("conv2d", "conv1d", "linear"):
            terms = int(np.prod(ql.weights.shape[:-1]))
            if _exact_dtype(codes, ql.weights, terms, ql.bias)[0] != np.float32:
                continue
        elif hw.op != "passthrough" and hw.op not in _ELTWISE:
            continue
        plan[hw.index] = TfLayer.from_layer(ql)
    return plan


def _plain_layer(layer):
    """No dilation (convolution or pooling) and one group: what `simulate_tf.TfLayer` computes."""
    for name in ("dilation", "dilation_rate", "groups", "pool_dilation"):
        value = getattr(layer, name, 1)
        if value is not None and any(int(v) != 1 for v in np.ravel(value)):
            return False
    return True


def _run_batch(qmodel, x, stats, last_use, keep_all=False, tf_layers=None):
    """Every layer on one batch; TensorFlow tensors flow between the `tf_layers` layers and
    cross to NumPy only where a NumPy layer reads them and at the outputs."""
    tf_layers = tf_layers or {}
    values = {MODEL_INPUT: x}
    outputs = qmodel.graph.output_indices
    keep = set(outputs)
    for ql in qmodel.layers:
        idx = ql.hw.index
        inputs = [values[i] for i in ql.hw.inputs]
        if idx in tf_layers:
            values[idx], counts = tf_layers[idx](inputs, stats[idx] is not None)
            _add_counts(stats[idx], math.prod(values[idx].shape), counts)
        else:
            values[idx] = _run_layer(ql, [_to_numpy(v) for v in inputs], stats[idx])
        for src in ql.hw.inputs if not keep_all else ():
            if last_use.get(src) == idx and src not in keep:
                values.pop(src, None)
    if keep_all:
        return {i: _to_numpy(v) for i, v in values.items()}
    return [_to_numpy(values[i]) for i in outputs]


def _add_counts(stats, size, counts):
    if stats is not None:
        stats.outputs += int(size)
        stats.clipped_low += int(counts[0])
        stats.clipped_high += int(counts[1])


def _compiled(qmodel, tf_layers, stats):
    """The whole model as one TensorFlow graph, when TensorFlow runs every layer."""
    from ai8x_nb.simulate_tf import TfModel

    if len(tf_layers) != len(qmodel.layers):
        return None
    steps = [(ql.hw.index, tuple(ql.hw.inputs), tf_layers[ql.hw.index]) for ql in qmodel.layers]
    return TfModel(steps, MODEL_INPUT, qmodel.graph.input_shape, qmodel.graph.output_indices,
                   count=any(s is not None for s in stats))


def _run_graph(qmodel, program, x, batch_size, stats):
    """All batches through the graph, `_BATCHES_IN_FLIGHT` at a time; counts added in order."""
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, x.shape[0], batch_size)
    with ThreadPoolExecutor(_BATCHES_IN_FLIGHT) as pool:
        results = list(pool.map(lambda s: program(x[s:s + batch_size]), starts))
    batches = []
    for start, (outputs, counts) in zip(starts, results):
        n = min(batch_size, x.shape[0] - start)
        for ql, layer_stats, layer_counts in zip(qmodel.layers, stats, counts):
            _add_counts(layer_stats, n * math.prod(ql.hw.out_shape), layer_counts)
        batches.append(outputs)
    return batches


def _to_numpy(value):
    return value if isinstance(value, np.ndarray) else value.numpy()


def _check_input(qmodel, x_int):
    graph = qmodel.graph
    x = np.asarray(x_int)
    shapes = {tuple(graph.raw_input_shape), tuple(graph.input_shape)}
    if x.ndim < 1 or tuple(x.shape[1:]) not in shapes:
        raise QuantizationError(
            f"simulate: x_int has shape {x.shape}; expected (batch,) + {tuple(graph.raw_input_shape)} "
            f"(the model's input). Add a batch axis for a single sample: x[None].")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or not np.array_equal(x, np.round(x)):
            raise QuantizationError(
                "simulate: x_int must hold integers in [-128, 127] (device input codes); got "
                "non-integer values. Pass the dataset's int8 data, or round(x_float * 128).")
    if x.size and (x.min() < DATA_MIN or x.max() > DATA_MAX):
        raise QuantizationError(
            f"simulate: x_int values must be in [-128, 127]; got [{int(x.min())}, {int(x.max())}]. "
            f"Clip the input, or pass x_float * 128 rounded, not x_float * 256.")
    return x.astype(np.int32).reshape((x.shape[0],) + tuple(graph.input_shape))


def simulate(qmodel, x_int, batch_size=256, *, return_stats=False):
    """Run a `QuantizedModel` on integer inputs with the device's integer arithmetic.

    Args:
        qmodel: a `QuantizedModel` from `ai8x_nb.quantize.convert`.
        x_int: integers in [-128, 127], shape (batch,) + the model's input shape (channels
            last; the model's raw input layout, e.g. (N, 28, 28) for the seed MNIST model).
        batch_size: samples per vectorised step (memory vs speed).
        return_stats: also return per-layer clamp statistics.

    Returns:
        int64 array of the model output: 8-bit codes in [-128, 127], or the raw 32-bit
        accumulator of a wide last layer (its float value times 128 * 2^(bits-1)). A model
        with several outputs gives a list of such arrays, in the Keras model's output order.
        With `return_stats`, a tuple `(outputs, [LayerStats per hardware layer])`.

    Raises:
        QuantizationError: for an input of the wrong shape or out of range.

    Example:

    >>> y = simulate(convert(model), ds.test.x[:100])  # doctest: +SKIP
    >>> (y.argmax(-1) == ds.test.y[:100]).mean()  # doctest: +SKIP
    """
    if int(batch_size) < 1:
        raise QuantizationError(f"simulate: batch_size must be >= 1; got {batch_size}.")
    x = _check_input(qmodel, x_int)
    stats = [LayerStats(ql.name, ql.op) if return_stats else None for ql in qmodel.layers]
    last_use = _last_use(qmodel)
    tf_layers = _tf_layers(qmodel)
    batch_size = int(batch_size)
    count = -(-x.shape[0] // batch_size)
    program = _compiled(qmodel, tf_layers, stats) if count >= _COMPILE_MIN_BATCHES else None
    if program is not None:
        batches = _run_graph(qmodel, program, x, batch_size, stats)
    else:
        batches = [_run_batch(qmodel, x[start:start + batch_size], stats, last_use,
                              tf_layers=tf_layers)
                   for start in range(0, x.shape[0], batch_size)]
    graph = qmodel.graph
    ys = []
    for k, index in enumerate(graph.output_indices):
        if batches:
            y = np.concatenate([b[k] for b in batches]).astype(np.int64, copy=False)
        else:
            out_shape = qmodel.layers[index].hw.out_shape
            y = np.zeros((0,) + tuple(out_shape), dtype=np.int64)
        ys.append(y)
    if graph.several_outputs:
        return (ys, stats) if return_stats else ys
    y = ys[0]
    shape = qmodel.output_shape
    if shape is not None and None not in shape and math.prod(shape) == math.prod(y.shape[1:]):
        y = y.reshape((y.shape[0],) + tuple(shape))
    return (y, stats) if return_stats else y


def simulate_layers(qmodel, x_int):
    """The output of every hardware layer for a few inputs (for a layer-by-layer trace).

    Args:
        qmodel: a `QuantizedModel`.
        x_int: integers in [-128, 127], shape (batch,) + the model's input shape.

    Returns:
        A list with one int64 array per hardware layer, in device order, each of shape
        (batch,) + the layer's channels-last output shape.

    Raises:
        QuantizationError: for an input of the wrong shape or out of range.
    """
    x = _check_input(qmodel, x_int)
    stats = [None] * len(qmodel.layers)
    values = _run_batch(qmodel, x, stats, {}, keep_all=True, tf_layers=_tf_layers(qmodel))
    return [np.asarray(values[ql.hw.index], dtype=np.int64) for ql in qmodel.layers]
