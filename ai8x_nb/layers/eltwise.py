"""Element-wise operations of the accelerator."""

import keras

from ai8x_nb.devices import get_device
from ai8x_nb.layers import _ops
from ai8x_nb.layers import _validate as v
from ai8x_nb.layers.base import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class Add(keras.layers.Layer):
    """Element-wise sum of 2..16 tensors of the same shape, clamped to [-1, 127/128].

    Inputs on the 1/128 grid give an output on the grid, so the quantized and float
    behaviour are the same.

    Example:

    >>> y = Add()([a, b])
    """

    def __init__(self, device="MAX78000", **kwargs):
        super().__init__(**kwargs)
        self.device = get_device(device)

    def build(self, input_shape):
        count = len(input_shape) if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)) else 1
        limit = self.device.max_eltwise_operands
        if not 2 <= count <= limit:
            v.fail(self, "inputs", count, f"2..{limit} operands",
                   "Add between 2 and 16 tensors.")
        shapes = {tuple(s[1:]) for s in input_shape}
        if len(shapes) != 1:
            v.fail(self, "input shapes", sorted(shapes), "operands of one shape",
                   "Make every operand the same shape.")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def call(self, inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return _ops.clamp_output(total)

    def get_config(self):
        config = super().get_config()
        config["device"] = self.device.name
        return config
