"""Convolution layers of the accelerator: Conv2D, Conv1D and ConvTranspose2D, with fused pooling."""

import keras
from keras import ops

from ai8x_nb.layers import _validate as v
from ai8x_nb.layers.base import PACKAGE, HardwareLayer


def _padding_amount(layer, padding, kernel_size):
    """Accept 0/1/2 or Keras' "valid"/"same" (same = kernel_size // 2)."""
    if isinstance(padding, str):
        word = padding.lower()
        if word not in ("valid", "same"):
            v.fail(layer, "padding", padding, "padding 0, 1 or 2 (or 'valid' / 'same')",
                   "Pass an int number of zero rows/columns.")
        return 0 if word == "valid" else kernel_size // 2
    if padding not in layer.device.paddings:
        v.fail(layer, "padding", padding, "padding 0, 1 or 2",
               "Use padding=1 for a 3x3 kernel to keep the size, 0 to shrink it.")
    return int(padding)


class _Conv(HardwareLayer):
    """Shared parts of the convolutions: filters, kernel size, padding, the single stride."""

    kernel_sizes_attr = "conv2d_kernels"
    kernel_fix = "Use 3, or stack two 3x3 layers."

    def __init__(self, filters, kernel_size=3, padding=1, strides=1, dilation=1, groups=1,
                 **kwargs):
        super().__init__(**kwargs)
        v.check_channels(self, "filters", filters)
        self.filters = int(filters)
        size = v.as_tuple(self, "kernel_size", kernel_size, self.rank)
        allowed = getattr(self.device, self.kernel_sizes_attr)
        if len(set(size)) != 1 or size[0] not in allowed:
            v.fail(self, "kernel_size", kernel_size,
                   "kernel_size " + " or ".join(str(k) for k in allowed), self.kernel_fix)
        self.kernel_size = size[0]
        self.padding = _padding_amount(self, padding, self.kernel_size)
        if self.padding >= self.kernel_size:
            v.fail(self, "padding", padding,
                   f"padding smaller than the kernel, at most {self.kernel_size - 1} for "
                   f"kernel_size={self.kernel_size}",
                   "Use padding=0 with a 1x1 kernel." if self.kernel_size == 1 else
                   f"Use padding={self.kernel_size - 1} or less.")
        stride = v.as_tuple(self, "strides", strides, self.rank)
        if set(stride) != {self.required_stride}:
            v.fail(self, "strides", strides, f"stride {self.required_stride} only",
                   "Downsample with pooling instead, e.g. pooling='max', pool_size=1, "
                   "pool_strides=2.")
        self.dilation = self._check_dilation(dilation)
        self.groups = self._check_groups(groups)

    required_stride = 1

    def _check_groups(self, groups):
        """Grouped convolution: the tool runs depthwise only (`groups == in == out channels`,
        MAX78002 `SUPPORT_DEPTHWISE`), and only as a Conv2D here."""
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            v.fail(self, "groups", groups, "an int >= 1",
                   "Use groups=1, or groups=filters for a depthwise convolution.")
        if groups == 1:
            return 1
        if not self.supports_groups:
            v.fail(self, "groups", groups, f"groups=1 for {type(self).__name__}",
                   "Use a Conv2D(groups=filters) for a depthwise convolution.")
        if not self.device.depthwise:
            v.fail(self, "groups", groups,
                   "no depthwise (grouped) convolution; the MAX78002 has it",
                   "Use device='MAX78002', or groups=1 (a full convolution).")
        if groups != self.filters:
            v.fail(self, "groups", groups,
                   f"depthwise only: groups == input channels == filters, here filters="
                   f"{self.filters}",
                   f"Use groups={self.filters} with {self.filters} input channels, or "
                   f"groups=1.")
        return int(groups)

    supports_groups = False

    @property
    def depthwise(self):
        """Each output channel convolves its own input channel (`groups` > 1)."""
        return self.groups > 1

    def _check_dilation(self, dilation):
        """The synthesis tool (ab4f4c0) dilates Conv1d only, on both devices (`MAX_DILATION`
        is 1 for every device; "`dilation` > 1 is supported for Conv1d only")."""
        values = v.as_tuple(self, "dilation", dilation, self.rank)
        if set(values) != {1}:
            v.fail(self, "dilation", dilation,
                   "dilation 1 only: the synthesis tool dilates Conv1D only, on the MAX78000 "
                   "and the MAX78002 alike",
                   "Use dilation=1; for a wider view use pooling before the layer, stack 3x3 "
                   "layers, or a Conv1D(dilation=...) on 1D data.")
        return 1

    @property
    def effective_kernel_size(self):
        """Taps the device's kernel spans: `(kernel_size - 1) * dilation + 1`."""
        return (self.kernel_size - 1) * self.dilation + 1

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            v.fail(self, "input_shape", tuple(input_shape),
                   f"a {self.rank}D channels-last input (batch, {'rows, cols, ' if self.rank == 2 else 'length, '}channels)",
                   "Reshape the input first.")
        in_channels = input_shape[-1]
        v.check_channels(self, "input channels", in_channels)
        if self.depthwise and in_channels != self.groups:
            v.fail(self, "groups", self.groups,
                   f"depthwise: groups == input channels == filters, but the input has "
                   f"{in_channels} channels",
                   f"Give it {self.groups} input channels, or use groups={in_channels} and "
                   f"filters={in_channels}.")
        self._check_passes(in_channels)
        spatial = self._pooled_shape(input_shape[1:-1])
        v.check_spatial(self, spatial, "the pooled input")
        v.check_spatial(self, self._out_spatial(spatial), "the output")
        kernel_shape = (self.kernel_size,) * self.rank + (in_channels // self.groups,
                                                           self.filters)
        self._add_params(kernel_shape, self.filters)

    def _check_passes(self, in_channels):
        """Device rules that depend on the number of input passes (none by default)."""

    def _out_spatial(self, spatial):
        k, p = self.effective_kernel_size, self.padding
        return tuple(None if s is None else s + 2 * p - k + 1 for s in spatial)

    def compute_output_shape(self, input_shape):
        spatial = self._out_spatial(self._pooled_shape(input_shape[1:-1]))
        return (input_shape[0],) + spatial + (self.filters,)

    def _pad(self, x):
        if self.padding == 0:
            return x
        p = self.padding
        return ops.pad(x, [[0, 0]] + [[p, p]] * self.rank + [[0, 0]])

    def _operate(self, x, kernel, bias):
        if self.depthwise:
            return self._operate_depthwise(x, kernel, bias)
        if self.dilation == 1 and self.kernel_size % 2 == 1 \
                and self.padding == self.kernel_size // 2:
            # Symmetric "same" padding: the convolution pads itself (bit-identical to pad +
            # valid, and cheaper: no separate Pad op and its gradient).
            y = ops.conv(x, kernel, strides=1, padding="same")
        else:
            y = ops.conv(self._pad(x), kernel, strides=1, padding="valid",
                         dilation_rate=self.dilation)
        if bias is not None:
            y = y + bias
        return y

    def _operate_depthwise(self, x, kernel, bias):
        # Kernel (k, k, 1, C) in the grouped layout; depthwise_conv takes (k, k, C, 1).
        kernel = ops.transpose(kernel, (0, 1, 3, 2))
        if self.kernel_size % 2 == 1 and self.padding == self.kernel_size // 2:
            y = ops.depthwise_conv(x, kernel, strides=1, padding="same")
        else:
            y = ops.depthwise_conv(self._pad(x), kernel, strides=1, padding="valid")
        if bias is not None:
            y = y + bias
        return y

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size,
                       "padding": self.padding, "strides": self.required_stride,
                       "dilation": self.dilation, "groups": self.groups})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class Conv2D(_Conv):
    """2D convolution of the accelerator, with optional fused pooling before it.

    Args:
        filters: output channels, 1..1024.
        kernel_size: 1 or 3.
        padding: 0, 1 or 2 zero rows/columns on each side (or "valid" / "same").
        strides: must be 1 (downsample with pooling).
        dilation: must be 1 (the synthesis tool dilates Conv1D only).
        groups: 1, or `filters` for a depthwise convolution (MAX78002): each output channel
            convolves its own input channel, so the input has `filters` channels too. The
            kernel is (k, k, 1, filters).
        **kwargs: pooling, pool_size, pool_strides, activation, wide, use_bias, batch_norm,
            weight_bits, device and the Keras layer arguments; see `HardwareLayer`.

    Example:

    >>> layer = Conv2D(60, 3, padding=1, pooling="max", pool_size=2, activation="relu")
    >>> depthwise = Conv2D(32, 3, padding=1, groups=32, device="MAX78002")
    """

    rank = 2
    supports_groups = True


@keras.saving.register_keras_serializable(package=PACKAGE)
class Conv1D(_Conv):
    """1D convolution of the accelerator (kernel 1..9), with optional fused pooling.

    Input is channels-last (batch, length, channels).

    Args:
        filters: output channels.
        kernel_size: 1..9 taps.
        padding: 0, 1 or 2 zeros on each side, smaller than `kernel_size`.
        strides: must be 1 (downsample with pooling).
        dilation: spacing of the taps, `>= 1` (both devices). A dilated kernel of k taps
            spans `(k - 1) * dilation + 1` input steps, at most 9: the synthesis tool stores
            it as that longer kernel with zeros between the taps (kernel memory counts the
            long kernel). Output length `L + 2 * padding - (k - 1) * dilation`.
        **kwargs: see `HardwareLayer`.

    Example:

    >>> layer = Conv1D(100, kernel_size=1, padding=0, activation="relu")
    >>> tcn = Conv1D(32, kernel_size=3, dilation=4, padding=0, activation="relu")
    """

    rank = 1
    kernel_sizes_attr = "conv1d_kernels"
    kernel_fix = "Use a kernel size from 1 to 9."

    def __init__(self, filters, kernel_size=9, padding=0, strides=1, dilation=1, **kwargs):
        super().__init__(filters, kernel_size=kernel_size, padding=padding, strides=strides,
                         dilation=dilation, **kwargs)

    def _check_dilation(self, dilation):
        """The tool's Conv1d dilation (`izer/backend/max7800x.py`, both devices): a kernel
        longer than one tap, stretched to `(k - 1) * dilation + 1 <= 9` taps. (The tool runs
        3-tap kernels of larger dilations on its Conv2d hardware, with other output-memory
        rules; that form is not offered here.)"""
        if isinstance(dilation, bool) or not isinstance(dilation, int):
            (dilation,) = v.as_tuple(self, "dilation", dilation, 1)
        longest = max(self.device.conv1d_kernels)
        if dilation < 1:
            v.fail(self, "dilation", dilation, "dilation 1 or more",
                   "Use dilation=1 for an undilated convolution.")
        if dilation > 1 and self.kernel_size == 1:
            v.fail(self, "dilation", dilation,
                   "dilation > 1 needs a kernel longer than 1 tap",
                   "Use dilation=1 with kernel_size=1, or kernel_size 2..9.")
        if (self.kernel_size - 1) * dilation + 1 > longest:
            most = (longest - 1) // (self.kernel_size - 1)
            v.fail(self, "dilation", dilation,
                   f"a dilated kernel spans (kernel_size - 1) * dilation + 1 <= {longest} "
                   f"steps; kernel_size={self.kernel_size} spans "
                   f"{(self.kernel_size - 1) * dilation + 1}",
                   f"Use dilation <= {most} with kernel_size={self.kernel_size}, or a "
                   f"shorter kernel (kernel_size=2 allows dilation up to {longest - 1}).")
        return int(dilation)

    def _check_passes(self, in_channels):
        dev = self.device
        if self.padding and in_channels > dev.processors and not dev.padded_conv1d_multipass:
            v.fail(self, "padding", self.padding,
                   f"a padded Conv1D reads at most {dev.processors} input channels, got "
                   f"{in_channels}", f"Use padding=0, or at most {dev.processors} input "
                   f"channels.")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvTranspose2D(_Conv):
    """3x3 transposed convolution with stride 2 (2x upsampling at padding 1).

    Output size is `2 * in + 2 - 2 * padding` (output padding 1, as the device).
    The kernel has shape (3, 3, in, out): `out[2i + a - p, 2j + b - p] += x[i, j] * W[a, b]`.

    Example:

    >>> layer = ConvTranspose2D(16, 3, padding=1, activation="relu")
    """

    rank = 2
    kernel_sizes_attr = "conv_transpose_kernels"
    kernel_fix = "The device's transposed convolution is 3x3 only; use kernel_size=3."
    required_stride = 2

    def __init__(self, filters, kernel_size=3, padding=1, strides=2, **kwargs):
        super().__init__(filters, kernel_size=kernel_size, padding=padding, strides=strides,
                         **kwargs)

    def _out_spatial(self, spatial):
        return tuple(None if s is None else 2 * s + 2 - 2 * self.padding for s in spatial)

    def _operate(self, x, kernel, bias):
        # Zero-insertion upsampling then a plain convolution with the flipped kernel.
        n_rows, n_cols, channels = x.shape[1], x.shape[2], x.shape[3]
        zeros = ops.zeros_like(x)
        x = ops.reshape(ops.stack([x, zeros], axis=3), (-1, n_rows, 2 * n_cols, channels))
        zeros = ops.zeros_like(x)
        x = ops.reshape(ops.stack([x, zeros], axis=2), (-1, 2 * n_rows, 2 * n_cols, channels))
        x = x[:, : 2 * n_rows - 1, : 2 * n_cols - 1, :]
        lead = self.kernel_size - 1 - self.padding
        x = ops.pad(x, [[0, 0], [lead, lead + 1], [lead, lead + 1], [0, 0]])
        y = ops.conv(x, ops.flip(ops.flip(kernel, axis=0), axis=1), strides=1, padding="valid")
        if bias is not None:
            y = y + bias
        return y
