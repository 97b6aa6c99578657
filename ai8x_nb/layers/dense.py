"""The accelerator's fully connected layer (MLP)."""

import keras
from keras import ops

from ai8x_nb.layers import _validate as v
from ai8x_nb.layers.base import PACKAGE, HardwareLayer


@keras.saving.register_keras_serializable(package=PACKAGE)
class Dense(HardwareLayer):
    """Linear layer: in and out features <= 1024, optional ReLU/Abs, optional wide output.

    The input must be flat (batch, features); put a `keras.layers.Flatten` before it. The
    device flattens channels-first (CHW); the exporter reorders the weight columns, so train
    with Keras' own Flatten.

    Args:
        units: output features, 1..1024.
        **kwargs: activation, wide, use_bias, batch_norm, weight_bits, device and the Keras
            layer arguments; see `HardwareLayer`. Dense has no fused pooling.

    Example:

    >>> layer = Dense(10, wide=True)
    """

    rank = 0

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if self.pooling is not None:
            v.fail(self, "pooling", self.pooling, "no pooling in a linear layer",
                   "Pool in the convolution before the Flatten.")
        limit = self.device.max_dense_out
        if not 1 <= units <= limit:
            v.fail(self, "units", units, f"1..{limit} outputs",
                   "Use fewer units, or split into two layers.")
        self.units = int(units)

    def build(self, input_shape):
        if len(input_shape) != 2:
            v.fail(self, "input_shape", tuple(input_shape), "a flat (batch, features) input",
                   "Put keras.layers.Flatten() before Dense.")
        # After a Flatten the device takes up to C*H*W = 16,384 inputs (check_model checks the
        # finer flatten rules); a linear layer on a flat input takes at most 1024.
        limit = self.device.max_flatten_values
        if not 1 <= input_shape[-1] <= limit:
            v.fail(self, "input features", input_shape[-1], f"1..{limit} inputs after a Flatten, "
                   f"{self.device.max_dense_in} otherwise",
                   "Reduce the features before the linear layer (more pooling, fewer channels).")
        self._add_params((input_shape[-1], self.units), self.units)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def _operate(self, x, kernel, bias):
        y = ops.matmul(x, kernel)
        if bias is not None:
            y = y + bias
        return y

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        for key in ("pooling", "pool_size", "pool_strides", "pool_dilation"):
            config.pop(key)
        return config
