"""The shared machinery of every hardware layer: fused pooling, activation, clamp, BatchNorm and QAT.

One hardware layer of the MAX78000 computes, in this order (ai8x reference, section 3):
pooling -> zero padding -> convolution / linear (+ bias) -> scale by 2^output_shift ->
round -> activation -> clamp. `HardwareLayer` implements everything but the operator itself,
which subclasses provide in `_operate(x, kernel, bias)`.

Quantization state (`qat`, `weight_bits`, `shift_quantile`, `output_shift`,
`batch_norm_folded`) is part of the layer config, so a model saved during or after QAT reloads in the same mode.
`ai8x_nb.quantize` decides when and how to switch it; the layer only computes.
"""

import keras
from keras import ops

from ai8x_nb.devices import get_device
from ai8x_nb.errors import QuantizationError
from ai8x_nb.layers import _ops
from ai8x_nb.layers import _validate as v

PACKAGE = "ai8x_nb"
"""Frozen registration package: saved .keras files refer to it, never change it."""

BATCH_NORMS = (None, "affine", "noaffine")
BN_SCALE = 0.25
"""ai8x trains BatchNorm as bn(x) / 4; the factor is folded into the weights later."""


class HardwareLayer(keras.layers.Layer):
    """Base class of layers that map to one accelerator layer.

    Args:
        pooling: None, "max" or "avg" (case-insensitive), applied before the operator.
        pool_size: int or tuple, 1..16.
        pool_strides: int or tuple, 1..16; defaults to `pool_size`.
        pool_dilation: int or tuple, default 1: the pooling window's taps lie this far apart
            (a window of k taps spans `(k - 1) * pool_dilation + 1` rows / columns).
            MAX78002 only, 2D pooling only, with pool_size 2 in each dilated dimension,
            1..15 (see `_validate.check_pool_dilation`).
        activation: None, "relu" or "abs".
        wide: 32-bit output (last layer only, no activation).
        use_bias: whether the operator has a bias.
        batch_norm: None, "affine" or "noaffine": BatchNorm after the operator, trained as
            bn(x) / 4 and folded into weights and bias for quantization.
        weight_bits: 8, 4, 2 or 1 (used when `qat` is on and at conversion), or "binary"
            (MAX78002): +-1 weights, trained with a straight-through estimator
            (`_ops.quantize_binary`); they take 1 bit of kernel memory each, and
            `weight_bits` then reads 1 (`binary_weights` is True).
        qat: fake quantization on (set by `ai8x_nb.quantize`, stored in the config).
        shift_quantile: quantile of |W, b| that sets output_shift, in (0, 1].
        output_shift: None (default) derives the output_shift from the weights (see
            `shift_quantile`); an int in [-15, 15] fixes it, as a trained checkpoint states
            it (`ai8x_nb.zoo`). Fake quantization, integer conversion and export use it alike.
        batch_norm_folded: BatchNorm already folded into kernel and bias.
        streaming: the layer streams (the synthesis tool's `streaming: true`): its input
            passes through a small circular buffer instead of lying whole in data memory,
            so the model input may exceed the data memory (up to 1023 x 1023 on the
            MAX78000); the input then arrives through the FIFOs (`ai8xize.py --fifo`).
            Streaming layers are the model's first Conv2D layers, in a row (at most 8);
            `check_model` states the rules. The arithmetic is unchanged.
        device: "MAX78000" (default) or "MAX78002".
    """

    rank = 2  # spatial rank of the operator; 0 for Dense, None for element-wise
    has_operator = True

    def __init__(
        self,
        *,
        pooling=None,
        pool_size=2,
        pool_strides=None,
        pool_dilation=1,
        activation=None,
        wide=False,
        use_bias=True,
        batch_norm=None,
        weight_bits=8,
        qat=False,
        shift_quantile=1.0,
        output_shift=None,
        batch_norm_folded=False,
        streaming=False,
        device=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.device = get_device(device)
        self.pooling = v.normalize_choice(
            self, "pooling", pooling, v.POOLINGS, "Use pooling=None, 'max' or 'avg'.")
        self.activation = v.normalize_choice(
            self, "activation", activation, v.ACTIVATIONS,
            "The device has ReLU and Abs only; use activation='relu', 'abs' or None.")
        if self.pooling is not None:
            self.pool_size, self.pool_strides = v.check_pooling(
                self, pool_size, pool_strides, max(self.rank, 1))
        else:
            self.pool_size, self.pool_strides = None, None
        self.pool_dilation = v.check_pool_dilation(self, pool_dilation, max(self.rank, 1))
        self.wide = bool(wide)
        if self.wide and self.activation is not None:
            v.fail(self, "wide", wide, "a wide (32-bit) output has no activation",
                   "Use activation=None on the wide last layer.")
        self.use_bias = bool(use_bias)
        self.batch_norm = v.normalize_choice(
            self, "batch_norm", batch_norm, BATCH_NORMS,
            "Use batch_norm=None, 'affine' or 'noaffine'.")
        self.weight_bits = weight_bits
        if not 0.0 < float(shift_quantile) <= 1.0:
            v.fail(self, "shift_quantile", shift_quantile, "a quantile in (0, 1]",
                   "Use 1.0 (the maximum) or e.g. 0.995.")
        self.shift_quantile = float(shift_quantile)
        self.output_shift = self._fixed_shift(output_shift)
        self.qat = bool(qat)
        self.batch_norm_folded = bool(batch_norm_folded)
        if not isinstance(streaming, bool):
            v.fail(self, "streaming", streaming, "True or False",
                   "Pass streaming=True for a layer whose input is too large for the data "
                   "memory, else False.")
        self.streaming = streaming
        if streaming and self.pool_dilation is not None:
            v.fail(self, "pool_dilation", self.pool_dilation,
                   "a streaming layer pools without dilation here",
                   "Use pool_dilation=1 on streaming layers.")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.bn = None
        if self.batch_norm is not None:
            affine = self.batch_norm == "affine"
            # PyTorch momentum 0.05 == Keras momentum 0.95; eps as in PyTorch.
            self.bn = keras.layers.BatchNormalization(
                momentum=0.95, epsilon=1e-5, center=affine, scale=affine, name="bn")

    @property
    def weight_bits(self):
        """Bits per weight: 8, 4, 2 or 1 (1 for binary weights, see `binary_weights`)."""
        return self._weight_bits

    @weight_bits.setter
    def weight_bits(self, value):
        binary = isinstance(value, str) and value.strip().lower() in ("binary", "bin")
        if binary and not self.device.binary_weights:
            v.fail(self, "weight_bits", value, "8, 4, 2 or 1 bits; the MAX78002 has +-1 "
                   "(binary) weights", "Use weight_bits=1, or device='MAX78002'.")
        if not binary and (isinstance(value, bool) or value not in self.device.weight_bits):
            allowed = "8, 4, 2, 1 or 'binary'" if self.device.binary_weights else \
                "8, 4, 2 or 1 bits"
            v.fail(self, "weight_bits", value, allowed,
                   "Use weight_bits=8 unless the weight memory is too small.")
        self.binary_weights = binary
        self._weight_bits = 1 if binary else int(value)

    def _fixed_shift(self, value):
        if value is None:
            return None
        low, high = self.device.output_shift_range
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
                or not low <= value <= high:
            v.fail(self, "output_shift", value, f"None or an int in [{low}, {high}]",
                   "Pass None to derive the shift from the weights, or the trained integer "
                   "shift.")
        return int(value)

    # ----------------------------------------------------------------- build
    @property
    def has_bias_variable(self):
        """A bias exists when asked for, and always with BatchNorm (it receives the fold)."""
        return self.use_bias or self.batch_norm is not None

    @property
    def _bias_in_use(self):
        """The bias enters the float forward: asked for, or holding a folded BatchNorm.

        Decided from the config, never from `bias.trainable`, which freezing the layer
        (`layer.trainable = False`) also clears.
        """
        return self.bias is not None and (self.use_bias or self.batch_norm_folded)

    def _add_params(self, kernel_shape, units):
        self.kernel = self.add_weight(
            name="kernel", shape=kernel_shape, initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer)
        self.bias = None
        if self.has_bias_variable:
            self.bias = self.add_weight(
                name="bias", shape=(units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer)
        if self.bn is not None:
            # BatchNormalization pins the input rank in build: batch + spatial axes + channels.
            self.bn.build((None,) * (self.rank + 1) + (units,))
            if not self.use_bias and not self.batch_norm_folded:
                # The bias only receives the BatchNorm fold; it must not train before that.
                self.bias.trainable = False
            if self.batch_norm_folded:
                # As after fold_batch_norm(): a reloaded folded layer trains no BatchNorm
                # parameters, so its trainable variables (and a checkpoint's optimizer
                # state) match the model that was saved.
                for var in self.bn.trainable_variables:
                    var.trainable = False

    def _pooled_shape(self, spatial):
        """Spatial shape after the fused pooling: (in - pool) // stride + 1."""
        if self.pooling is None:
            return tuple(spatial)
        out = []
        dilation = self.pool_dilation or (1,) * len(self.pool_size)
        for size, k, s, d in zip(spatial, self.pool_size, self.pool_strides, dilation):
            span = (k - 1) * d + 1
            if size is not None and size < span:
                v.fail(self, "pool_size" if d == 1 else "pool_dilation",
                       self.pool_size if d == 1 else self.pool_dilation,
                       f"the pool{'' if d == 1 else f' window (spanning {span})'} must "
                       f"fit in the input, which is {tuple(spatial)}",
                       "Use a smaller pool or a larger input." if d == 1 else
                       "Use a smaller pool_dilation or a larger input.")
            out.append(None if size is None else (size - span) // s + 1)
        return tuple(out)

    # ------------------------------------------------------------------ call
    def _operate(self, x, kernel, bias):
        raise NotImplementedError

    def _pool(self, x):
        if self.pooling is None:
            return x
        return _ops.pool(x, self.pooling, self.pool_size, self.pool_strides, quantized=self.qat,
                         dilation=self.pool_dilation)

    def call(self, inputs, training=None):
        x = self._pool(inputs)
        if not self.has_operator:
            return _ops.clamp_output(x)
        if self.qat:
            return self._call_quantized(x, training=bool(training))
        bias = self.bias if self._bias_in_use else None
        batch_norm = self.bn is not None and not self.batch_norm_folded
        if self.activation == "relu" and not self.wide and not batch_norm:
            return self._clamped_relu(x, bias)
        y = self._operate(x, self.kernel, bias)
        if batch_norm:
            y = self.bn(y, training=training) * BN_SCALE
        y = _ops.activate(y, self.activation)
        return _ops.clamp_output(y, self.wide)

    def _clamped_relu(self, x, bias):
        """`clamp(relu(op(x)), -1, 127/128)`, the float ReLU layer, in its cheapest form.

        ReLU output is >= 0 > -1, so only the upper clamp acts: `min(relu(y), 127/128)`.
        Written as `relu6(op(x) * 768/127) * 127/768` with the gain folded into the (small)
        kernel and bias, it is one fused ReLU6 and one multiply, forward and backward, instead
        of ReLU, minimum and the minimum's select-based gradient on every output element: the
        same values (to float rounding; 127/128 exactly at the top). For the seed MNIST model
        this took training from 0.88x to 0.93-0.97x the throughput of the same net in plain
        Keras (benchmarks/train_throughput.py); the multiply is all that is left of the clamp.
        """
        gain = _ops.RELU6_GAIN
        y = self._operate(x, self.kernel * gain, None if bias is None else bias * gain)
        return ops.relu6(y) * _ops.RELU6_LOSS

    def _call_quantized(self, x, training=False):
        if self.bn is not None and not self.batch_norm_folded:
            raise QuantizationError(
                f"{type(self).__name__} '{self.name}' has an unfolded BatchNorm; fold it before "
                f"fake quantization (ai8x_nb.quantize.enable_qat does both).")
        shift = self.output_shift_tensor()
        weight_scale = ops.power(2.0, -shift)
        kernel = self.quantized_kernel(self.kernel * weight_scale)
        bias = None
        if self.bias is not None:
            bias = _ops.quantize_bias(self.bias * weight_scale, self.weight_bits)
        if self.wide:
            # The device keeps the raw accumulator of a wide layer: no output_shift.
            return _ops.quantize_wide(self._operate(x, kernel, bias), self.weight_bits)
        # The output scale 128 * 2^shift is a power of two, so applying it to the quantized
        # kernel and bias gives the same scaled accumulator, bit for bit, as scaling every
        # output element (float rounding commutes with powers of two).
        gain = _ops.DATA_SCALE * ops.power(2.0, shift)
        y = self._operate(x, kernel * gain, None if bias is None else bias * gain)
        # Training steps run the output tail fused (one kernel on TensorFlow); inference,
        # export and tracing keep the plain keras.ops form. Both compute the same values.
        return _ops.quantize_scaled_output(y, self.activation, fused=training)

    # ---------------------------------------------------------- quantization
    def quantized_kernel(self, scaled_kernel):
        """The fake-quantized kernel (weights on the device grid) of an already shifted
        kernel: `weight_bits` bits, or +-1 for binary weights."""
        if self.binary_weights:
            return _ops.quantize_binary(scaled_kernel)
        return _ops.quantize_weight(scaled_kernel, self.weight_bits)

    def output_shift_tensor(self, shift_quantile=None):
        """The layer's output_shift (float tensor, integer value).

        The fixed `output_shift` when one is set, else derived from the current kernel and
        bias at `shift_quantile` (default: the layer's own).
        """
        if self.output_shift is not None:
            return ops.convert_to_tensor(float(self.output_shift), dtype=self.kernel.dtype)
        quantile = self.shift_quantile if shift_quantile is None else shift_quantile
        return _ops.output_shift(self.kernel, self.bias, quantile)

    def fold_batch_norm(self):
        """Fold the BatchNorm (trained as bn(x)/4) into kernel and bias, in place.

        With r = 1 / sqrt(var + eps): W' = W * 0.25 * gamma * r per output channel,
        b' = (b - mean) * r * 0.25 * gamma + 0.25 * beta. Does nothing without BatchNorm or
        when already folded.
        """
        if self.bn is None or self.batch_norm_folded:
            return
        bn = self.bn
        r = 1.0 / ops.sqrt(bn.moving_variance + bn.epsilon)
        gamma = bn.gamma if bn.scale else ops.ones_like(r)
        beta = bn.beta if bn.center else ops.zeros_like(r)
        factor = BN_SCALE * gamma * r
        # Every kernel layout here has the output channels last, so the factor broadcasts.
        self.kernel.assign(self.kernel * factor)
        bias = self.bias if self.use_bias else ops.zeros_like(r)
        self.bias.assign((bias - bn.moving_mean) * factor + BN_SCALE * beta)
        self.batch_norm_folded = True
        self.bias.trainable = True
        for var in bn.trainable_variables:
            var.trainable = False

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update({
            "pooling": self.pooling,
            "pool_size": self.pool_size,
            "pool_strides": self.pool_strides,
            "pool_dilation": 1 if self.pool_dilation is None else self.pool_dilation,
            "activation": self.activation,
            "wide": self.wide,
            "use_bias": self.use_bias,
            "batch_norm": self.batch_norm,
            "weight_bits": "binary" if self.binary_weights else self.weight_bits,
            "qat": self.qat,
            "shift_quantile": self.shift_quantile,
            "output_shift": self.output_shift,
            "batch_norm_folded": self.batch_norm_folded,
            "streaming": self.streaming,
            "device": self.device.name,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
        })
        return config
