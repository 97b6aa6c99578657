"""Pooling-only layers: a hardware layer that pools and passes the data through."""

import keras

from ai8x_nb.layers.base import PACKAGE, HardwareLayer
from ai8x_nb.layers import _validate as v


class _Pool(HardwareLayer):
    has_operator = False
    mode = "max"

    def __init__(self, pool_size=2, pool_strides=None, **kwargs):
        for key in ("activation", "wide", "batch_norm"):
            if kwargs.get(key):
                raise TypeError(f"{type(self).__name__} takes no {key!r}; use a fused convolution.")
        kwargs.pop("pooling", None)
        kwargs.pop("use_bias", None)
        super().__init__(pooling=self.mode, pool_size=pool_size, pool_strides=pool_strides,
                         use_bias=False, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            v.fail(self, "input_shape", tuple(input_shape),
                   f"a {self.rank}D channels-last input", "Reshape the input first.")
        v.check_channels(self, "input channels", input_shape[-1])
        pooled = self._pooled_shape(input_shape[1:-1])
        v.check_spatial(self, pooled, "the pooled output")
        dev, channels = self.device, input_shape[-1]
        passes = -(-channels // dev.processors) if channels else 1
        if (passes > dev.max_pool_only_passes and any(k > 1 for k in self.pool_size)
                and any(s != 1 for s in pooled if s is not None)):
            v.fail(self, "input channels", channels,
                   f"a pool-only layer pools at most {dev.processors} channels unless it "
                   f"pools down to 1x1",
                   "Fuse the pooling into the next convolution (pooling=..., pool_size=...), "
                   "or use a MAX78002.")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._pooled_shape(input_shape[1:-1]) + (input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        for key in ("pooling", "activation", "wide", "use_bias", "batch_norm",
                    "kernel_initializer", "bias_initializer", "kernel_regularizer",
                    "bias_regularizer", "batch_norm_folded", "output_shift"):
            config.pop(key)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaxPool2D(_Pool):
    """2D max pooling as its own hardware layer (kernel and stride 1..16, no padding)."""

    rank = 2
    mode = "max"


@keras.saving.register_keras_serializable(package=PACKAGE)
class AvgPool2D(_Pool):
    """2D average pooling (truncating toward zero when quantized) as its own hardware layer."""

    rank = 2
    mode = "avg"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaxPool1D(_Pool):
    """1D max pooling as its own hardware layer."""

    rank = 1
    mode = "max"


@keras.saving.register_keras_serializable(package=PACKAGE)
class AvgPool1D(_Pool):
    """1D average pooling as its own hardware layer."""

    rank = 1
    mode = "avg"
