"""The portable form of a model: the same trained weights in plain Keras layers, for TFLite.

The MAX78000 emulation (output rounding, clamps, truncating average pooling, fake-quantized
weights) is written with `keras.ops` inside the ai8x_nb layers; converted to TFLite it becomes
SIGN / ROUND / FLOOR / MINIMUM ops between DEQUANTIZE and QUANTIZE: float islands that
TensorFlow Lite for Microcontrollers cannot run. Other targets get the network itself instead:
each hardware layer becomes its standard Keras pieces (pooling, zero padding when the
convolution cannot pad itself, the convolution or dense layer with the weights the layer
computes with, the activation), which the TFLite converter turns into builtin int8 kernels
(CONV_2D, FULLY_CONNECTED, MAX/AVERAGE_POOL_2D, ADD, RESHAPE, PAD, TRANSPOSE_CONV, ...).

The weights are the ones the layer computes with: after QAT the fake-quantized kernel and
bias with the output_shift applied (so a QAT model exports the weights the chip runs); before
QAT the float kernel and bias, with an unfolded BatchNorm folded in. The device's output
clamps ([0, 127/128] after ReLU and Abs, [-1, 127/128] otherwise, also after Add/Sub) stay: a
network trained with them computes another function without them (measured: the seed MNIST
model after 3 epochs, 94.2 % with, 87.9 % without). The ReLU fuses into the convolution, the
upper clamp is one MINIMUM. What is left out is the device's rounding of each layer's output
(and average pooling's truncation), which the int8 TFLite model replaces by its own per-tensor
quantization: the two targets agree in the weights and the clamps, not bit for bit in every
activation (the export measures both accuracies).
"""

import keras
import numpy as np
from keras import ops

from ai8x_nb import layers as hw
from ai8x_nb.errors import ExportError
from ai8x_nb.layers import _ops
from ai8x_nb.layers.base import BN_SCALE

__all__ = ["portable_model", "effective_weights"]

_DROPPED = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise")
"""Keras layers that are the identity at inference (and hold random state TFLite cannot)."""


def effective_weights(layer):
    """The float kernel and bias `layer` computes with (bias None when it has none).

    Args:
        layer: an `ai8x_nb.layers.HardwareLayer` with an operator (built).

    Returns:
        `(kernel, bias)` as float32 NumPy arrays, in the layer's own kernel layout.
    """
    kernel = np.asarray(ops.convert_to_numpy(layer.kernel), dtype=np.float32)
    bias = None
    if layer.bias is not None and (layer.use_bias or layer.batch_norm_folded):
        bias = np.asarray(ops.convert_to_numpy(layer.bias), dtype=np.float32)
    if layer.bn is not None and not layer.batch_norm_folded:
        bn = layer.bn
        r = 1.0 / np.sqrt(ops.convert_to_numpy(bn.moving_variance) + bn.epsilon)
        gamma = ops.convert_to_numpy(bn.gamma) if bn.scale else np.ones_like(r)
        beta = ops.convert_to_numpy(bn.beta) if bn.center else np.zeros_like(r)
        factor = BN_SCALE * gamma * r
        kernel = kernel * factor
        base = bias if bias is not None and layer.use_bias else np.zeros_like(r)
        bias = (base - ops.convert_to_numpy(bn.moving_mean)) * factor + BN_SCALE * beta
    if not layer.qat:
        return kernel, bias
    shift = float(ops.convert_to_numpy(layer.output_shift_tensor()))
    scale = 2.0 ** -shift
    kernel = np.asarray(ops.convert_to_numpy(
        layer.quantized_kernel(kernel * scale)), dtype=np.float32)
    if bias is not None:
        bias = np.asarray(ops.convert_to_numpy(
            _ops.quantize_bias(bias * scale, layer.weight_bits)), dtype=np.float32)
    if layer.wide:
        # The wide output is the raw accumulator: the shift is not applied (see the layer).
        return kernel, bias
    gain = 2.0 ** shift
    return kernel * gain, None if bias is None else bias * gain


class Clamp(keras.layers.Layer):
    """The device's output clamp, `clip(x, low, high)` (`abs=True`: of |x|)."""

    def __init__(self, low, high, abs=False, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.abs = float(low), float(high), bool(abs)

    def call(self, x):
        if self.abs:
            return ops.minimum(ops.abs(x), self.high)
        if self.low == 0.0:  # RELU (fused into the convolution by the converter) + MINIMUM
            return ops.minimum(ops.relu(x), self.high)
        return ops.clip(x, self.low, self.high)


class Eltwise(keras.layers.Layer):
    """`x0 + x1 + ...` or `x0 - x1 - ...` (ADD / SUB builtins), clamped as on the device."""

    def __init__(self, op, **kwargs):
        super().__init__(**kwargs)
        self.op = op

    def call(self, inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = ops.add(total, x) if self.op == "add" else ops.subtract(total, x)
        return ops.clip(total, _ops.OUT_MIN, _ops.OUT_MAX)


class DilatedPool(keras.layers.Layer):
    """Dilated max / average pooling (MAX78002 `pool_dilation`): one strided slice per window
    tap, combined with MAXIMUM or ADD and a MUL (STRIDED_SLICE, MAXIMUM, ADD, MUL builtins)."""

    def __init__(self, mode, pool_size, strides, dilation, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.pool_size = mode, tuple(pool_size)
        self.strides, self.dilation = tuple(strides), tuple(dilation)

    def call(self, x):
        return _ops.dilated_pool(x, self.mode, self.pool_size, self.strides, self.dilation)

    def compute_output_shape(self, input_shape):
        spatial = [None if n is None else (n - (k - 1) * d - 1) // s + 1
                   for n, k, s, d in zip(input_shape[1:-1], self.pool_size, self.strides,
                                         self.dilation)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, pool_size=self.pool_size, strides=self.strides,
                      dilation=self.dilation)
        return config


def _pooling(layer, name):
    if layer.pooling is None:
        return []
    if getattr(layer, "pool_dilation", None):
        return [DilatedPool(layer.pooling, layer.pool_size, layer.pool_strides,
                            layer.pool_dilation, name=f"{name}_pool")]
    rank = len(layer.pool_size)
    cls = {("max", 1): keras.layers.MaxPooling1D, ("max", 2): keras.layers.MaxPooling2D,
           ("avg", 1): keras.layers.AveragePooling1D,
           ("avg", 2): keras.layers.AveragePooling2D}[(layer.pooling, rank)]
    size = layer.pool_size if rank == 2 else layer.pool_size[0]
    strides = layer.pool_strides if rank == 2 else layer.pool_strides[0]
    return [cls(size, strides, padding="valid", name=f"{name}_pool")]


def _operator(layer, name, assign):
    """The Keras layers of one hardware operator; `assign(keras_layer, kernel, bias)` sets
    the weights once the clone is built."""
    kernel, bias = effective_weights(layer)
    use_bias = bias is not None
    pieces = []
    if isinstance(layer, hw.Dense):
        op = keras.layers.Dense(layer.units, use_bias=use_bias, name=name)
        assign(op, kernel, bias)
        return [op]
    if isinstance(layer, hw.ConvTranspose2D):
        # The device: out[2i + a - p] += x[i] W[a], 2n + 2 - 2p rows. Keras' "valid"
        # transposed convolution with output padding 1 writes out[2i + a] over 2n + 2 rows;
        # cropping p rows/columns on each side gives the device's window.
        op = keras.layers.Conv2DTranspose(
            layer.filters, layer.kernel_size, strides=2, padding="valid", output_padding=1,
            use_bias=use_bias, name=name)
        assign(op, np.transpose(kernel, (0, 1, 3, 2)), bias)
        pieces.append(op)
        if layer.padding:
            pieces.append(keras.layers.Cropping2D(layer.padding, name=f"{name}_crop"))
        return pieces
    rank = layer.rank
    k, p = layer.kernel_size, layer.padding
    dilation = getattr(layer, "dilation", 1)
    same = dilation == 1 and k % 2 == 1 and p == k // 2
    if getattr(layer, "groups", 1) > 1:  # depthwise: DEPTHWISE_CONV_2D
        if p and not same:
            pieces.append(keras.layers.ZeroPadding2D(p, name=f"{name}_pad"))
        op = keras.layers.DepthwiseConv2D(k, padding="same" if same else "valid",
                                          use_bias=use_bias, name=name)
        assign(op, np.transpose(kernel, (0, 1, 3, 2)), bias)
        pieces.append(op)
        return pieces
    if p and not same:
        pad = keras.layers.ZeroPadding2D(p) if rank == 2 else keras.layers.ZeroPadding1D(p)
        pad.name = f"{name}_pad"
        pieces.append(pad)
    cls = keras.layers.Conv2D if rank == 2 else keras.layers.Conv1D
    op = cls(layer.filters, k, padding="same" if same else "valid", use_bias=use_bias,
             dilation_rate=dilation, name=name)
    assign(op, kernel, bias)
    pieces.append(op)
    return pieces


def _activation(layer, name):
    """The activation and the device's output clamp (part of what the network computes: a
    model trained with it loses accuracy without it)."""
    if layer.wide:
        return []
    if layer.activation == "relu":
        return [Clamp(0.0, _ops.OUT_MAX, name=f"{name}_relu")]
    if layer.activation == "abs":
        return [Clamp(0.0, _ops.OUT_MAX, abs=True, name=f"{name}_abs")]
    return [Clamp(_ops.OUT_MIN, _ops.OUT_MAX, name=f"{name}_clamp")]


def _portable_layer(layer, assign):
    """The plain Keras replacement of one layer of the model (a layer or a Sequential)."""
    kind = type(layer).__name__
    if isinstance(layer, hw.Eltwise):
        if layer.op in ("add", "sub"):
            return Eltwise(layer.op, name=layer.name)
        raise ExportError(
            f"Layer '{layer.name}' ({kind}, op '{layer.op}') has no portable form for TFLite: "
            f"TFLite Micro has no int8 bitwise kernel (the device's {layer.op} works on the "
            f"8-bit codes). Export the TFLite targets from a model without it, or export "
            f"targets=('synthesis', ...) only.")
    if isinstance(layer, getattr(hw, "Concatenate", ())):
        return keras.layers.Concatenate(axis=-1, name=layer.name)
    if isinstance(layer, hw.HardwareLayer):
        name = layer.name
        pieces = _pooling(layer, name)
        if layer.has_operator:
            pieces += _operator(layer, name, assign)
            pieces += _activation(layer, name)
        return keras.Sequential(pieces, name=f"{name}_portable")
    if type(layer).__module__.startswith("keras."):
        if kind in _DROPPED:
            return keras.layers.Identity(name=layer.name)
        # Keras' own layers (Flatten, Reshape, a plain Dense, ...) are already portable.
        copy = layer.__class__.from_config(layer.get_config())
        if layer.weights:
            assign(copy, *layer.get_weights())
        return copy
    raise ExportError(
        f"Layer '{layer.name}' ({kind}, from {type(layer).__module__}) has no portable form "
        f"for TFLite: only ai8x_nb layers and Keras' own layers are converted. Build the model "
        f"from those, or export without the TFLite targets (targets=('synthesis', ...)).")


def portable_model(model):
    """The model in plain Keras layers with the weights it computes with (see module doc).

    Args:
        model: a built `keras.Model` made of `ai8x_nb.layers` (Sequential or functional).

    Returns:
        A new built `keras.Model` with the same input and output shapes.

    Raises:
        ExportError: a layer has no portable form (its name and type, and what to do).

    Example:

    >>> plain = portable_model(model)  # doctest: +SKIP
    >>> plain.export("saved_model")    # doctest: +SKIP
    """
    pending = []

    def assign(op, *weights):
        pending.append((op, [w for w in weights if w is not None]))

    clone = keras.models.clone_model(
        model, clone_function=lambda layer: _portable_layer(layer, assign))
    for op, weights in pending:
        if not op.built:
            raise ExportError(f"The portable layer '{op.name}' was not built while cloning "
                              f"'{model.name}'; please report it with the model.")
        op.set_weights(weights)
    return clone
