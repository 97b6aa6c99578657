"""What a model costs on the chip: cycles and operations per hardware layer.

Both figures are computed as the vendor's synthesis tool computes them, so that a designer sees
them before exporting:

- Cycles: the tool's latency model (`izer/latency.py`, printed by `ai8xize.py --verbose` as
  `ESTIMATED LATENCY`): per layer, the cycles the accelerator spends reading the (padded,
  pooled) input row by row and writing the output, from the layer's shapes, its passes
  (`multipass`, 64 channels a pass), its element-wise operands and the output channels its
  kernels span; one cycle of start-up for the whole network. The tool has this model for the
  MAX78000 only (`SUPPORT_LATENCY_CALC`); for the MAX78002 the same formula is shown, labelled
  an estimate. A streaming layer's figure is the tool's estimate too: 1.5 times the regular
  layer's, rounded up (marked "(est)" in its table).
- Operations: the tool's count (`izer/stats.py`, its `SUMMARY OF OPS`): multiply-accumulates
  of the convolution over the padded input, comparisons of max pooling and of the activation,
  additions of average pooling and element-wise add/sub, bitwise operations of xor/or.

The layer parameters are the ones the synthesis YAML gives the tool (`ai8x_nb.export.
synthesis_yaml`), with the processor masks and kernel offsets of `ai8x_nb.placement`.
"""

import dataclasses
import math

from ai8x_nb.placement.streaming import emulated_kernel

__all__ = ["LayerCost", "layer_costs", "STARTUP_CYCLES", "MAX_PROC"]

STARTUP_CYCLES = 1
"""The tool's `Startup` entry of the latency table."""
MAX_PROC = 64
"""Channels a pass reads (the tool's `MAX_PROC`, both devices)."""
_GROUP = 16
"""Processors of one group (quadrant), the tool's `P_NUMPRO`."""
_SHARED = 4
"""Processors sharing one data-memory instance, the tool's `P_SHARED`."""


@dataclasses.dataclass
class LayerCost:
    """The cost of one hardware layer.

    Attributes:
        cycles: accelerator clock cycles (the tool's latency model).
        macc: multiply-accumulates; comp: comparisons (max pool, activation); add: additions
            (average pool, element-wise add/sub); mul: multiplications (element-wise mul);
            bitwise: bitwise operations (element-wise xor/or).
    """

    cycles: int = 0
    macc: int = 0
    comp: int = 0
    add: int = 0
    mul: int = 0
    bitwise: int = 0

    @property
    def ops(self):
        """All operations, as the tool sums them."""
        return self.macc + self.comp + self.add + self.mul + self.bitwise


def _ffs(mask):
    return (mask & -mask).bit_length() - 1


def _fls(mask):
    return mask.bit_length() - 1


def _pair(values, one_d):
    """A YAML pool value as the tool reads it: a scalar means both dimensions."""
    values = [int(v) for v in values]
    if one_d:
        return values[0], 1
    if len(set(values)) == 1:
        return values[0], values[0]
    return values[0], values[1]


@dataclasses.dataclass
class _Shape:
    """One layer as the tool sees it (its `hw_*` arrays)."""

    operator: bool          # False for passthrough and stand-alone element-wise layers
    in_chan: int            # per operand
    in_dim: tuple
    pool: tuple
    pooled: tuple
    out_chan: int
    out_dim: tuple
    kernel: tuple           # the kernel the operations count (the layer's own)
    padding: tuple
    operands: int
    pool_first: bool
    flatten: bool
    upsample: int = 1       # ConvTranspose2d: the tool counts its pooled input times 2
    hw_kernel: tuple = None  # the kernel the hardware runs (a dilated Conv1D's, stretched)


def _shape(hw, graph_layers):
    layer = hw.layer
    op = hw.op
    operator = op in ("conv2d", "conv1d", "convtranspose2d", "linear")
    spatial = hw.flatten_from[:-1] if hw.flatten_from is not None else hw.in_shape[:-1]
    spatial = tuple(int(s) for s in spatial) or (1,)
    one_d = len(spatial) == 1
    in_dim = (spatial[0], 1) if one_d else (spatial[0], spatial[1])
    pooling = getattr(layer, "pooling", None)
    if pooling is not None:
        pool = _pair(layer.pool_size, op == "conv1d" or one_d and len(layer.pool_size) == 1)
        stride = _pair(layer.pool_strides, op == "conv1d" or one_d and len(layer.pool_size) == 1)
    else:
        pool, stride = (1, 1), (1, 1)
    dilation = getattr(layer, "pool_dilation", None) if pooling is not None else None
    dilation = _pair(dilation, one_d) if dilation else (1, 1)
    pooled = tuple((d - (p - 1) * g - 1) // s + 1
                   for d, p, s, g in zip(in_dim, pool, stride, dilation))
    out_spatial = tuple(int(s) for s in hw.out_shape[:-1]) or (1,)
    out_dim = (out_spatial[0], 1) if len(out_spatial) == 1 else out_spatial[:2]
    if op in ("conv2d", "convtranspose2d"):
        k, p = emulated_kernel(hw, graph_layers)  # a 1x1 next to streaming runs as 3x3
        kernel, padding = (k, k), (k - 1 - p if op == "convtranspose2d" else p,) * 2
    elif op == "conv1d":
        kernel, padding = (int(layer.kernel_size), 1), (int(layer.padding), 0)
        hw_kernel = (int(layer.effective_kernel_size), 1)
    else:
        kernel, padding = (1, 1), (0, 0)
    if op != "conv1d":
        hw_kernel = kernel
    return _Shape(operator=operator, in_chan=int(hw.in_channels), in_dim=in_dim, pool=pool,
                  pooled=pooled, out_chan=int(hw.out_channels), out_dim=out_dim,
                  kernel=kernel, padding=padding, operands=int(hw.operands),
                  hw_kernel=hw_kernel,
                  pool_first=not (hw.eltwise and pooling is not None),
                  flatten=op == "linear" and hw.flatten_from is not None,
                  upsample=int(getattr(layer, "required_stride", 1) or 1)
                  if op == "convtranspose2d" else 1)


def _kernel_outputs(s, placed, in_expand, out_expand):
    """Output channels the layer's kernels span (the tool's `kern_count // in_expand`)."""
    mask = placed.output_processors
    if not mask:
        return s.out_chan
    ffs, fls = _ffs(mask), _fls(mask)
    start_col = ffs % _SHARED
    first = ffs - start_col if out_expand > 1 else ffs
    if not s.flatten:
        count = (1 + fls - first) * out_expand * in_expand + start_col * out_expand * in_expand
        return count // in_expand
    thresh = math.ceil(s.in_chan / in_expand)
    if s.in_chan > MAX_PROC:
        thresh = min((thresh + _SHARED - 1) & ~(_SHARED - 1), MAX_PROC)
    per_out = s.in_chan * s.pooled[0] * s.pooled[1] // thresh
    count = ((1 + fls - first) * out_expand + start_col * out_expand) * per_out
    count -= (out_expand * bin(mask).count("1") - s.out_chan) * per_out
    return count // (in_expand * s.pooled[0] * s.pooled[1])


def _timeslots(s, placed, wide):
    """Output time slots of a passthrough layer (the tool's `timeslots`)."""
    width = 32 if wide else 8
    most = 0
    for group in range(MAX_PROC // _GROUP):
        count = bin((placed.processors >> (group * _GROUP)) & ((1 << _GROUP) - 1)).count("1")
        if count:
            most = max(most, (count * width // 8 - 1) // 4)
    return most + 1


def _cycles(s, placed, *, wide, kernel_offset):
    """The tool's `latency.calculate` for one layer (MAX78000 hardware flags)."""
    in_expand = math.ceil(s.in_chan / MAX_PROC)
    out_expand = math.ceil(s.out_chan / MAX_PROC)
    pooling = s.pool[0] > 1 or s.pool[1] > 1
    multipass = (2 * in_expand - 1 if not s.operator and out_expand > 1 and pooling
                 else in_expand)
    out_chan = _kernel_outputs(s, placed, in_expand, out_expand) if s.operator else s.out_chan
    if s.flatten:
        out_dim = (s.out_dim[0] * s.pooled[0], s.out_dim[1] * s.pooled[1])
    else:
        out_dim = s.out_dim
    pooled_rows, pooled_cols = s.pooled[0] * s.upsample, s.pooled[1] * s.upsample
    row_pad, col_pad = s.padding
    kern_rows, kern_cols = s.hw_kernel  # the tool's latency model reads `hw_kernel_size`
    out_cols = out_dim[1]
    elements = s.operands
    flatten_adj = 1 if s.flatten and in_expand * s.pooled[0] * s.pooled[1] - 1 >= 16 else 0
    meq_one = 1 if out_chan == 1 and multipass == 1 else 0
    pre_read = 0
    if s.pool_first:
        in_pad = multipass * elements * 2
        in_dat = multipass * elements * (s.pool[0] * s.pool[1] + 1)
        mp = 1
    else:
        if multipass > 1 or elements > 1:
            pre_read = ((pooled_rows + 2 * row_pad - kern_cols + 1) * col_pad
                        + (pooled_cols + 2 * col_pad - kern_rows + 1) * row_pad
                        - row_pad * col_pad) * (kernel_offset or 0)
        in_pad = multipass * 2
        in_dat = multipass * (elements * s.pool[0] * s.pool[1] + 1)
        mp = multipass
    col = 2 * col_pad * (in_pad + 1)
    pad_row = col + mp * pooled_cols * (in_pad + 1)
    data_row_no_conv = col + mp * pooled_cols * (in_dat + 1)
    left = col_pad * (in_pad + 1)
    right = in_pad * col_pad
    data_row_conv = (left + mp * (kern_cols - 1 - col_pad) * (in_dat + 1)
                     + mp * (out_cols - col_pad) * in_dat + right)
    bottom_row = (left + mp * (kern_cols - 1 - col_pad) * (in_pad + 1)
                  + mp * (out_cols - col_pad) * in_pad + right)
    if not s.operator:
        return pooled_rows * pooled_cols * (in_dat + multipass * _timeslots(s, placed, wide))
    out_dat = multipass * out_cols * out_chan + out_chan * meq_one
    return (flatten_adj + pre_read + row_pad * pad_row
            + (kern_rows - 1 - row_pad) * data_row_no_conv
            + (data_row_conv + out_dat) * (pooled_rows - (kern_rows - 1 - row_pad))
            + row_pad * (bottom_row + out_dat))


def _operations(hw, s, cost):
    """The tool's operation count (`izer/stats.py`) for one layer."""
    op = hw.op
    eltwise = hw.eltwise
    pooling = s.pool[0] > 1 or s.pool[1] > 1
    one_d = op == "conv1d"

    def combine(values):
        kind = {"add": "add", "sub": "add", "mul": "mul", "xor": "bitwise", "or": "bitwise"}
        setattr(cost, kind[eltwise], getattr(cost, kind[eltwise]) + (s.operands - 1) * values)

    operands = s.operands
    if eltwise and not s.pool_first:
        combine(s.in_chan * s.in_dim[0] * s.in_dim[1])
        operands = 1
    if pooling:
        if one_d:
            count = s.pool[0] * s.in_chan * s.pooled[0]
        else:
            count = s.pool[0] * s.pool[1] * s.in_chan * s.pooled[0] * s.pooled[1] * operands
        if getattr(hw.layer, "pooling", None) == "avg":
            cost.add += count
        else:
            cost.comp += count
    if eltwise and s.pool_first:
        combine(s.in_chan * s.pooled[0] * s.pooled[1])
    if not s.operator:
        return
    groups = int(getattr(hw.layer, "groups", 1)) if op == "conv2d" else 1
    in_values = s.in_chan // groups * (s.pooled[0] * s.pooled[1] if s.flatten else 1)
    outputs = s.out_chan * (1 if s.flatten else s.out_dim[0] * s.out_dim[1])
    kernel = s.kernel[0] * (1 if one_d else s.kernel[1])
    cost.macc += in_values * kernel * outputs
    if getattr(hw.layer, "activation", None) is not None:
        cost.comp += outputs


def layer_costs(graph, placement):
    """Cycles and operations of every hardware layer, as the synthesis tool computes them.

    Args:
        graph: the `ModelGraph` of the model (`ai8x_nb.graph.trace_model`, after the
            element-wise layout), every layer supported.
        placement: its `Placement` (`ai8x_nb.placement.place_model`): the processor masks and
            kernel offsets the YAML gives the tool.

    Returns:
        A list of `LayerCost`, one per hardware layer. The network's latency is
        `STARTUP_CYCLES` plus the sum of their `cycles`.
    """
    costs = []
    for hw, placed in zip(graph.layers, placement.layers):
        s = _shape(hw, graph.layers)
        cycles = _cycles(s, placed, wide=bool(getattr(hw.layer, "wide", False)),
                         kernel_offset=placed.kernel_offset)
        if hw.streaming:  # the tool's estimate for a streaming layer: 1.5x, rounded up
            cycles = (15 * cycles + 9) // 10
        cost = LayerCost(cycles=cycles)
        _operations(hw, s, cost)
        costs.append(cost)
    return costs
