"""The integer simulator's layers as TensorFlow computations: the fast path of `simulate`.

`ai8x_nb.simulate` defines the device arithmetic (its module docstring) and runs every layer
in NumPy. A layer whose partial sums all stay below 2^24 (`simulate._exact_dtype` says
float32) runs here instead, as one chain of TensorFlow operations on the batch: element-wise
combine + clamp, pooling, convolution / matrix product, bias, rounding shift, activation and
clamp, with the data kept as TensorFlow tensors from one such layer to the next. The batch
then crosses to NumPy once, at the model's outputs (or before a layer only NumPy runs).

Exactness, step by step (the values are the same integers as NumPy's):

- activations are int32 codes in [-128, 127], cast to float32 (exact) only for pooling and
  the convolution / matrix product, whose products of integers accumulate in float32
  exactly while every partial sum is below 2^24 (CPU kernels: oneDNN direct / Eigen GEMM,
  no Winograd or FFT), then cast back to int32;
- max pooling compares exact floats; average pooling gets the window sum as
  `rint(mean * count)` (|sum| <= 128 * 256, so the float error of the mean is far below 0.5)
  and truncates toward zero with an integer division;
- the bias (`b * 128`), the shift (`floor(0.5 + acc * 2^shift / 128)` as an add and an
  arithmetic right shift, or a limited left shift) and the clamps run on int32, as
  `simulate.round_shift` does on NumPy arrays.
"""

import dataclasses
import math

import numpy as np

from ai8x_nb.layers._ops import DATA_SCALE, WIDE_LIMIT

__all__ = ["TfLayer", "TfModel"]

DATA_MIN, DATA_MAX = -128, 127


def _tf():
    # A dependency of the package, loaded with the model under the TensorFlow backend (under
    # another backend the first simulation imports it).
    import tensorflow as tf

    return tf


@dataclasses.dataclass(frozen=True)
class TfLayer:
    """One hardware layer as a TensorFlow computation on int32 batches.

    Attributes:
        name: the layer's name (for messages).
        op: "conv" (conv2d / conv1d), "linear", "passthrough" or an element-wise operation
            ("add", "sub", "xor", "or").
        in_shape: channels-last input shape without batch (before the fused pooling).
        concat: the inputs are concatenated along channels (a `Concatenate` reader).
        eltwise: the element-wise operation combining the inputs first, or None.
        pooling: "max", "avg" or None; `pool_size`, `pool_strides`: its window and strides.
        kernel: float32 tensor in the Keras kernel layout, or None.
        bias: int32 tensor of `b * 128`, or None.
        padding: the convolution's zero padding on every side.
        shift: the device's total shift `output_shift + 8 - weight_bits`.
        activation: "relu", "abs" or None.
        wide_limit: for a wide (32-bit) output, the clamp limit of the raw accumulator; else None.
    """

    name: str
    op: str
    in_shape: tuple
    concat: bool = False
    eltwise: str = None
    pooling: str = None
    pool_size: tuple = None
    pool_strides: tuple = None
    kernel: object = None
    bias: object = None
    padding: int = 0
    shift: int = 0
    activation: str = None
    wide_limit: int = None

    @classmethod
    def from_layer(cls, ql):
        """The TensorFlow form of a `QuantizedLayer` (the caller checked float32 is exact)."""
        tf = _tf()
        hw, layer = ql.hw, ql.hw.layer
        op = {"conv2d": "conv", "conv1d": "conv"}.get(hw.op, hw.op)
        wide = bool(getattr(layer, "wide", False)) and op in ("conv", "linear")
        kernel = bias = None
        if ql.weights is not None:
            kernel = tf.constant(np.asarray(ql.weights, dtype=np.float32))
        if ql.bias is not None:
            bias = tf.constant(np.asarray(ql.bias, dtype=np.int32) * 128)
        return cls(
            name=hw.name, op=op, in_shape=tuple(hw.in_shape), concat=hw.concat_layer is not None,
            eltwise=hw.op if hw.op in _ELTWISE_OPS else hw.eltwise,
            pooling=getattr(layer, "pooling", None), pool_size=getattr(layer, "pool_size", None),
            pool_strides=getattr(layer, "pool_strides", None), kernel=kernel, bias=bias,
            padding=int(getattr(layer, "padding", 0) or 0), shift=int(ql.total_shift),
            activation=getattr(layer, "activation", None),
            wide_limit=(int(WIDE_LIMIT * DATA_SCALE) << (ql.weight_bits - 1)) if wide else None)

    def __call__(self, inputs, count=False):
        """Run the layer on a batch.

        Args:
            inputs: int32 tensors or arrays, one per hardware input, batch first.
            count: also count the values the final clamp clips.

        Returns:
            `(y, counts)`: an int32 tensor (int64 for a wide output), channels last, batch
            first; and `(below, above)` int64 scalar tensors (values below / above the clamp's
            range), or None without `count`.
        """
        tf = _tf()
        n = tf.shape(inputs[0])[0]
        if self.concat:
            spatial = [n] + [int(s) for s in self.in_shape[:-1]] + [-1]
            xs = [tf.concat([tf.reshape(x, spatial) for x in inputs], axis=-1)]
        else:
            shape = [n] + [int(s) for s in self.in_shape]
            xs = [tf.reshape(x, shape) for x in inputs]
        if self.op in _ELTWISE_OPS:
            return _clamp(self._combine(xs), DATA_MIN, DATA_MAX, count)
        x = _clamp(self._combine(xs), DATA_MIN, DATA_MAX)[0] if self.eltwise else xs[0]
        if self.pooling is not None:
            x = self._pool(tf.cast(x, tf.float32))
        if self.op == "passthrough":
            return _clamp(tf.cast(x, tf.int32), DATA_MIN, DATA_MAX, count)
        acc = tf.cast(self._multiply(tf.cast(x, tf.float32)), tf.int32)
        if self.bias is not None:
            acc = acc + self.bias
        if self.wide_limit is not None:
            return _clamp(tf.cast(acc, tf.int64), -self.wide_limit, self.wide_limit, count)
        y = _round_shift(acc, self.shift)
        if self.activation == "relu":
            y = tf.maximum(y, 0)
        elif self.activation == "abs":
            y = tf.abs(y)
        return _clamp(y, DATA_MIN, DATA_MAX, count)

    def _combine(self, xs):
        tf = _tf()
        fn = {"add": tf.add, "sub": tf.subtract, "xor": tf.bitwise.bitwise_xor,
              "or": tf.bitwise.bitwise_or}[self.eltwise]
        total = tf.cast(xs[0], tf.int32)
        for x in xs[1:]:
            # int32 sums of at most 16 codes: no overflow; xor / or on the sign-extended
            # codes keep the low 8 bits the device computes.
            total = fn(total, tf.cast(x, tf.int32))
        return total

    def _pool(self, x):
        """Max or truncating-average pooling (no padding) of exact float32 codes."""
        tf = _tf()
        size, strides = list(self.pool_size), list(self.pool_strides)
        if self.pooling == "max":
            return tf.nn.max_pool(x, size, strides, "VALID")
        count = math.prod(size)
        total = tf.cast(tf.math.rint(tf.nn.avg_pool(x, size, strides, "VALID") * count), tf.int32)
        return tf.cast(tf.truncatediv(total, count), tf.float32)

    def _multiply(self, x):
        tf = _tf()
        if self.op == "linear":
            return tf.matmul(x, self.kernel)
        rank = len(self.in_shape) - 1
        k = self.kernel.shape[:rank]
        p = self.padding
        if p and all(kk == 2 * p + 1 for kk in k):
            mode = "SAME"  # stride 1, odd kernel, symmetric pad (k - 1) / 2: the same zeros
        else:
            mode = "VALID"
            if p:
                x = tf.pad(x, [(0, 0)] + [(p, p)] * rank + [(0, 0)])
        return tf.nn.convolution(x, self.kernel, padding=mode)


_ELTWISE_OPS = ("add", "sub", "xor", "or")


def _round_shift(acc, shift):
    """`simulate.round_shift` on an int32 tensor."""
    tf = _tf()
    k = 7 - int(shift)
    if k > 0:
        return tf.bitwise.right_shift(acc + (1 << (k - 1)), k)  # arithmetic for int32
    if k == 0:
        return acc
    limit = np.iinfo(np.int32).max >> (-k + 1)
    return tf.bitwise.left_shift(tf.clip_by_value(acc, -limit, limit), -k)


def _clamp(y, low, high, count=False):
    """`(y clamped to [low, high], (count below, count above) or None)`."""
    tf = _tf()
    counts = None
    if count:
        counts = (tf.math.count_nonzero(y < low), tf.math.count_nonzero(y > high))
    return tf.clip_by_value(y, tf.cast(low, y.dtype), tf.cast(high, y.dtype)), counts


class TfModel:
    """Every hardware layer of a model as one TensorFlow graph (`tf.function`).

    The graph is traced once per instance for any batch size (about 0.1-0.3 s); TensorFlow
    then runs its kernels without Python in between, and two batches given from two threads
    run at once (their kernels share the CPU cores). The arithmetic is `TfLayer`'s, so the
    integers are the same as in eager mode. XLA (`jit_compile`) gives the same CPU time, but
    its fused loops use one core, and it compiles for each batch shape.

    Args:
        steps: `(index, input indices, TfLayer)` per hardware layer, in device order.
        inputs_index: the index standing for the model input (`graph.MODEL_INPUT`).
        input_shape: the model input's shape without batch, as the first layers read it.
        outputs: the indices of the layers whose outputs are returned.
        count: also return every layer's clamp counts.
    """

    def __init__(self, steps, inputs_index, input_shape, outputs, count=False):
        tf = _tf()
        self._steps = list(steps)
        self._input = inputs_index
        self._outputs = list(outputs)
        self._count = bool(count)
        spec = tf.TensorSpec([None] + [int(s) for s in input_shape], tf.int32)
        self._function = tf.function(self._run, input_signature=[spec])

    def _run(self, x):
        values = {self._input: x}
        counts = []
        for index, inputs, layer in self._steps:
            values[index], layer_counts = layer([values[i] for i in inputs], self._count)
            counts.append(layer_counts)
        return [values[i] for i in self._outputs], counts if self._count else []

    def __call__(self, x):
        """Run a batch (thread-safe).

        Args:
            x: int32 array of model inputs, batch first, shaped `(n,) + input_shape`.

        Returns:
            `(outputs, counts)`: a NumPy array per output index; with `count`, per step the
            `(below, above)` clamp counts as ints, else an empty list.
        """
        outputs, counts = self._function(x)
        return ([y.numpy() for y in outputs],
                [(int(low), int(high)) for low, high in counts])
