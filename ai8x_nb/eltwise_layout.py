"""Residual graphs in the synthesis tool's element-wise form.

The device adds tensors only as part of a layer: that layer reads all its operands from one
buffer where they are interleaved pixel by pixel (operand j of k at `in_offset + 4 * j`, each
producer writing with `write_gap: k - 1`), combines them left to right (add, sub, xor or or:
operand j is the j-th of `in_sequences`) and clamps the result to [-128, 127]. This is what
the tool's own simulation computes (`izer/compute.py` `eltwise`, then the clip of
`izer/simulate.py` `eltwise_layer`), and what `ai8x_nb.layers.Eltwise` computes in training.
The tool places and fuses every operation alike (only the register encoding differs), so the
rules below, written for Add, hold for Sub, Xor and Or.

`eltwise_layout` rewrites the traced hardware layers into that form:

- an `Add` read only by one 2D convolution runs inside that convolution (`eltwise: add`; with
  pooling it is `pool_first: false`, add then pool then convolve, the Keras order). The tool
  pools after an element-wise operation on at most 2 operands; on the MAX78002 it runs an
  element-wise convolution only without bias (`Device.eltwise_conv_bias`), on the MAX78000
  one over more than 64 channels only when operands * passes == operands + passes
  (`Device.eltwise_multipass_conv`); other Adds stay layers of their own (`operation: add`);
- a concatenation of more channels than processors (`HwLayer.interleaves`,
  `ai8x_nb.concat_layout`) reads its inputs interleaved in the same way, one pass each: its
  inputs get write gaps and copies as operands do;
- an operand that is the model input, the model output, a wide output, or that another layer
  reads too cannot be written into the interleaved buffer directly: a passthrough layer copies
  it there, just before the element-wise layer (the vendor's `networks/cifar100-ressimplenet.yaml`
  does the same with its "re-form data with gap" layers).
"""

import dataclasses
import math

from ai8x_nb.layers.eltwise import ELTWISE_OPS

__all__ = ["eltwise_layout", "Copy", "POOL_LAST_OPERANDS"]

MODEL_INPUT = -1
POOL_LAST_OPERANDS = 2
"""Element-wise operands the tool pools after the operation (`MAX_POOL_LAST_ELEMENTS`)."""


@dataclasses.dataclass(frozen=True)
class Copy:
    """The passthrough layer that copies an operand into an element-wise layer's buffer.

    It stands in for a Keras layer in `HwLayer.layer` (it has no Keras counterpart).

    Attributes:
        name: a name for reports and the YAML comments.
    """

    name: str
    pooling = None
    activation = None
    wide = False
    has_operator = False


def _consumers(layers):
    found = {}
    for hw in layers:
        for src in hw.inputs:
            found.setdefault(src, []).append(hw.index)
    return found


def _can_fuse(add, consumer, consumers, output_index):
    """Whether the tool runs the element-wise layer `add` inside `consumer` (any operation:
    the tool's rules do not depend on it)."""
    if add.index == output_index or consumers.get(add.index) != [consumer.index]:
        return False
    if consumer.op != "conv2d" or tuple(consumer.inputs) != (add.index,):
        return False
    operands = len(add.inputs)
    layer = consumer.layer
    if getattr(layer, "pooling", None) is not None and operands > POOL_LAST_OPERANDS:
        return False
    device = layer.device
    # An unfolded BatchNorm becomes a bias when it is folded (at QAT or conversion).
    biased = layer.bias is not None and (layer._bias_in_use or layer.batch_norm is not None)
    if not device.eltwise_conv_bias and biased:
        return False
    passes = math.ceil(int(add.out_shape[-1]) / device.processors)
    return (passes == 1 or device.eltwise_multipass_conv
            or operands * passes == operands + passes)


def _writes_directly(src, eltwise, by_index, consumers, output_index):
    """Whether the operand's producer can write into the element-wise buffer itself."""
    if src == MODEL_INPUT or src == output_index:
        return False
    if getattr(by_index[src].layer, "wide", False):
        return False
    return consumers.get(src) == [eltwise.index] and list(eltwise.inputs).count(src) == 1


def _fuse(layers, output_index):
    """The layers with every fusable Add moved into the convolution reading it (old indices)."""
    consumers = _consumers(layers)
    by_index = {hw.index: hw for hw in layers}
    fused_into = {}
    for hw in layers:
        readers = consumers.get(hw.index, [])
        if hw.op in ELTWISE_OPS and len(readers) == 1 and _can_fuse(
                hw, by_index[readers[0]], consumers, output_index):
            fused_into[readers[0]] = hw
    fused_adds = {add.index for add in fused_into.values()}
    staged = []
    for hw in layers:
        if hw.index in fused_adds:
            continue
        if hw.index in fused_into:
            add = fused_into[hw.index]
            hw = dataclasses.replace(hw, inputs=tuple(add.inputs), eltwise=add.op,
                                     add_layer=add.layer)
        elif hw.op in ELTWISE_OPS:
            hw = dataclasses.replace(hw, eltwise=hw.op)
        staged.append(hw)
    return staged


def eltwise_layout(layers, output_index):
    """Fuse Adds into the next convolution and insert the operand copies.

    Args:
        layers: the traced `HwLayer`s (all supported), in device order.
        output_index: index of the layer producing the model output.

    Returns:
        `(layers, output_index)`: new `HwLayer`s, re-indexed, element-wise layers marked
        (`eltwise`, `write_gap`, `gap_slot`, `copy_of`).
    """
    by_index = {hw.index: hw for hw in layers}
    staged = _fuse(layers, output_index)
    consumers = _consumers(staged)  # after fusion: operand producers feed the convolutions
    out, new_index = [], {MODEL_INPUT: MODEL_INPUT}
    for hw in staged:
        inputs = []
        gathers = hw.eltwise or hw.interleaves
        for slot, src in enumerate(hw.inputs if gathers else ()):
            gap = len(hw.inputs) - 1
            if _writes_directly(src, hw, by_index, consumers, output_index):
                producer = out[new_index[src]]
                producer.write_gap, producer.gap_slot = gap, slot
                inputs.append(producer.index)
                continue
            source_name = "input" if src == MODEL_INPUT else by_index[src].name
            shape = tuple(hw.in_shape) if hw.eltwise else tuple(by_index[src].out_shape)
            copy = type(hw)(
                index=len(out), layer=Copy(f"{source_name}_to_{hw.name}_{slot}"),
                op="passthrough", inputs=(new_index[src],), in_shape=shape,
                out_shape=shape, write_gap=gap, gap_slot=slot, copy_of=new_index[src])
            out.append(copy)
            inputs.append(copy.index)
        if not gathers:
            inputs = [new_index[src] for src in hw.inputs]
        new_index[hw.index] = len(out)
        out.append(dataclasses.replace(hw, index=len(out), inputs=tuple(inputs)))
    return out, new_index[output_index]
