"""Element-wise operations of the accelerator: add, sub, xor, or.

The device combines 2..16 tensors of one shape element by element, left to right in the order
given (`sub`: `x0 - x1 - x2 - ...`), in a wide accumulator, and clamps the result once to
[-128, 127] (the synthesis tool's `izer/compute.py` `eltwise` and the clip of
`izer/simulate.py` `eltwise_layer`). `xor` and `or` work on the 8-bit two's-complement codes,
so their result is always in range.
"""

import keras
from keras import ops

from ai8x_nb.devices import get_device
from ai8x_nb.layers import _ops
from ai8x_nb.layers import _validate as v
from ai8x_nb.layers.base import PACKAGE

__all__ = ["Eltwise", "Add", "Sub", "Xor", "Or", "ELTWISE_OPS"]

ELTWISE_OPS = ("add", "sub", "xor", "or")
"""The element-wise operations the synthesis tool runs (`eltwise:` / `operation:` values)."""


def _codes(x):
    """The device codes of data-unit values: round half up, clamp to [-128, 127], int32."""
    rounded = _ops.round_half_up(ops.clip(x * _ops.DATA_SCALE, -128.0, 127.0))
    return ops.cast(rounded, "int32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class Eltwise(keras.layers.Layer):
    """Element-wise `op` of 2..16 tensors of the same shape, as the device computes it.

    - "add": `x0 + x1 + ...`, clamped to [-1, 127/128].
    - "sub": `x0 - x1 - x2 - ...` (the first operand minus all the others), clamped.
    - "xor", "or": bitwise on the operands' 8-bit codes (each rounded half up to the 1/128
      grid and clamped to [-128, 127]), result divided by 128.

    Add and Sub are plain arithmetic: inputs on the 1/128 grid give an output on the grid,
    so the float and quantized behaviour are the same, and the gradient is the usual one.
    Xor and Or have no useful derivative: in training the layer computes the device result
    in the forward pass and passes the upstream gradient unchanged to every operand
    (straight-through, as if it were an add), so the layers before it keep training.

    Args:
        op: "add", "sub", "xor" or "or".
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.
        **kwargs: Keras layer arguments (`name`, ...).

    Raises:
        DeviceLimitError: an unknown `op`; fewer than 2 or more than 16 operands, or
            operands of different shapes (in `build`).

    Example:

    >>> y = Eltwise("sub")([a, b])   # a - b; the same as Sub()([a, b])
    """

    def __init__(self, op="add", device=None, **kwargs):
        super().__init__(**kwargs)
        self.device = get_device(device)
        self.op = v.normalize_choice(self, "op", op, ELTWISE_OPS,
                                     "Use one of the element-wise operations the device runs.")

    def build(self, input_shape):
        count = len(input_shape) if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)) else 1
        limit = self.device.max_eltwise_operands
        if not 2 <= count <= limit:
            v.fail(self, "inputs", count, f"2..{limit} operands",
                   f"Combine between 2 and {limit} tensors.")
        shapes = {tuple(s[1:]) for s in input_shape}
        if len(shapes) != 1:
            v.fail(self, "input shapes", sorted(shapes), "operands of one shape",
                   "Make every operand the same shape.")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def call(self, inputs):
        if self.op in ("add", "sub"):
            total = inputs[0]
            for x in inputs[1:]:
                total = total + x if self.op == "add" else total - x
            return _ops.clamp_output(total)
        bitwise = ops.bitwise_xor if self.op == "xor" else ops.bitwise_or
        codes = _codes(inputs[0])
        for x in inputs[1:]:
            codes = bitwise(codes, _codes(x))
        result = ops.cast(codes, inputs[0].dtype) / _ops.DATA_SCALE
        # Straight-through: the forward value is exactly `result` (s - s == 0), the gradient
        # reaches every operand unchanged.
        surrogate = inputs[0]
        for x in inputs[1:]:
            surrogate = surrogate + x
        return result + (surrogate - ops.stop_gradient(surrogate))

    def get_config(self):
        config = super().get_config()
        config["op"] = self.op
        config["device"] = self.device.name
        return config


class _FixedOp(Eltwise):
    """An `Eltwise` with its operation fixed by the class (`OP`)."""

    OP = None

    def __init__(self, device=None, **kwargs):
        kwargs.pop("op", None)
        super().__init__(op=self.OP, device=device, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["op"]
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class Add(_FixedOp):
    """Element-wise sum of 2..16 tensors of the same shape, clamped to [-1, 127/128].

    `Eltwise(op="add")`. Inputs on the 1/128 grid give an output on the grid, so the
    quantized and float behaviour are the same.

    Example:

    >>> y = Add()([a, b])
    """

    OP = "add"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sub(_FixedOp):
    """`x0 - x1 - x2 - ...` of 2..16 tensors of one shape, clamped to [-1, 127/128].

    `Eltwise(op="sub")`: the first operand minus all the others, in the order given.

    Example:

    >>> y = Sub()([a, b])   # a - b
    """

    OP = "sub"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Xor(_FixedOp):
    """Bitwise xor of the 8-bit codes of 2..16 tensors of one shape (`Eltwise(op="xor")`).

    Each operand is rounded to the 1/128 grid and clamped to [-1, 127/128] first; the gradient
    is straight-through (see `Eltwise`).

    Example:

    >>> y = Xor()([a, b])
    """

    OP = "xor"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Or(_FixedOp):
    """Bitwise or of the 8-bit codes of 2..16 tensors of one shape (`Eltwise(op="or")`).

    Each operand is rounded to the 1/128 grid and clamped to [-1, 127/128] first; the gradient
    is straight-through (see `Eltwise`).

    Example:

    >>> y = Or()([a, b])
    """

    OP = "or"
