"""Channel concatenation, as the device reads several layers' outputs at once."""

import keras
from keras import ops

from ai8x_nb.devices import get_device
from ai8x_nb.layers import _validate as v
from ai8x_nb.layers.base import PACKAGE

__all__ = ["Concatenate"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class Concatenate(keras.layers.Layer):
    """Concatenate 2..16 tensors along the channels (the last axis), in the order given.

    On the device there is no concatenation layer: the convolution that reads the result
    reads the producers' outputs side by side (the synthesis tool's `in_sequences: [a, b]`,
    channels in that order; the vendor's UNets use it for their skip connections). So a
    `Concatenate` must feed exactly one `Conv2D`; `check_model` says what else it needs (its
    inputs are convolutions of one channel count, a multiple of 4: up to 64 channels in all
    side by side on the processors, above that one input per pass of the reader). Values pass
    unchanged, so training and the device agree.

    Args:
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.
        **kwargs: Keras layer arguments (`name`, ...).

    Raises:
        DeviceLimitError: fewer than 2 or more than 16 inputs, or inputs whose shapes differ
            other than in the channels (in `build`).

    Example:

    >>> a = Conv2D(16, 3, padding=1)(x)
    >>> b = Conv2D(16, 3, padding=1)(a)
    >>> y = Conv2D(8, 3, padding=1)(Concatenate()([b, a]))   # 32 channels: b's, then a's
    """

    def __init__(self, device=None, **kwargs):
        super().__init__(**kwargs)
        self.device = get_device(device)

    def build(self, input_shape):
        count = len(input_shape) if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)) else 1
        limit = self.device.max_eltwise_operands
        if not 2 <= count <= limit:
            v.fail(self, "inputs", count, f"2..{limit} inputs",
                   f"Concatenate between 2 and {limit} tensors.")
        shapes = {tuple(s[1:-1]) for s in input_shape}
        if len(shapes) != 1:
            v.fail(self, "input shapes", [tuple(s[1:]) for s in input_shape],
                   "inputs that differ only in the channels (the last axis)",
                   "Pool or upsample the inputs to one size first.")

    def compute_output_shape(self, input_shape):
        channels = [s[-1] for s in input_shape]
        total = None if None in channels else sum(channels)
        return tuple(input_shape[0][:-1]) + (total,)

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=-1)

    def get_config(self):
        config = super().get_config()
        config["device"] = self.device.name
        return config
