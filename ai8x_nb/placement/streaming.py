"""Streaming layers: the circular input buffer each one reads, as the synthesis tool sizes it.

A streaming layer (`streaming: true`, `ai8xize.py --fifo`) does not hold its whole input in
data memory: the FIFOs (first layer) or the previous streaming layer write rows into a small
circular buffer at the layer's input offset, and the layer consumes them as it goes. The tool
computes that buffer's length (its "rollover", 32-bit words per memory instance) in
`izer/backend/max7800x.py` with one formula per register set (MAX78000; the MAX78002's
`REQUIRE_NEW_STREAMING`), from the layer's input width, pooling, padding and passes and, on
the MAX78000, the previous layer's. It then rejects a buffer that reaches its layer's output
or another streaming layer's buffer in a shared instance, and an output of the last streaming
layer that reaches any of them. `rollover_words` replays the formula; `buffer_bytes` adds the
one word of clearance the tool's `>=` comparisons ask for.

The tool runs a 1x1 convolution next to streaming as a 3x3 one with padding 1
(`EMULATE_1X1_STREAMING`: same arithmetic, nine times the kernel memory).
"""

import math

__all__ = ["streaming_prefix", "emulated_kernel", "rollover_words", "buffer_bytes"]

INCREASE_START = 2
"""The tool's default `--increase-start`."""


def streaming_prefix(layers):
    """The number of streaming layers: the tool's streaming layers are the first ones."""
    n = 0
    while n < len(layers) and layers[n].streaming:
        n += 1
    return n


def emulated_kernel(hw, graph_layers):
    """`(kernel_size, padding)` the tool runs a 2D convolution with: a 1x1 kernel that streams
    or reads a streaming layer becomes 3x3 with padding 1."""
    layer = hw.layer
    k, pad = int(getattr(layer, "kernel_size", 1)), int(getattr(layer, "padding", 0))
    prev = graph_layers[hw.index - 1] if hw.index > 0 else None
    near_stream = hw.streaming or (prev is not None and prev.streaming
                                   and tuple(hw.inputs) == (hw.index - 1,))
    if k == 1 and hw.op in ("conv2d", "convtranspose2d") and near_stream:
        return 3, 1
    return k, pad


def _pool(layer):
    if getattr(layer, "pooling", None) is None:
        return (1, 1), (1, 1)
    return tuple(int(p) for p in layer.pool_size), tuple(int(s) for s in layer.pool_strides)


def rollover_words(hw, graph_layers, device, *, last_streaming):
    """The circular buffer of one streaming 2D convolution, in 32-bit words per instance.

    Args:
        hw: the streaming `HwLayer` (an HWC input: the FIFOs feed the first layer in HWC).
        graph_layers: all hardware layers (the previous one shapes the MAX78000's buffer).
        device: a `Device`.
        last_streaming: the layer is the last streaming layer.

    Returns:
        The tool's rollover value, an int.
    """
    cols = int(hw.in_shape[1])
    (ph, pw), (sh, sw) = _pool(hw.layer)
    k, pad = emulated_kernel(hw, graph_layers)
    passes = math.ceil(int(hw.in_channels) / device.processors)
    first = hw.index == 0
    if not device.new_streaming:
        if first:
            start = ((ph - 1) * cols + pw) * ph
        else:
            prev = graph_layers[hw.index - 1]
            (pph, ppw), (psh, psw) = _pool(prev.layer)
            prev_pooled = (int(prev.in_shape[1]) - ppw) // psw + 1
            pk, ppad = emulated_kernel(prev, graph_layers)
            start = (prev_pooled + 2 * ppad) * (pk - 1 + ph - 1) + pk - 1 + pw + INCREASE_START
        val = start + (ph - 1) * cols + max(1, sw, pw)
        return val + (passes - val % passes) % passes
    row_inc, col_inc = max(ph, sh), max(pw, sw)
    padded = cols + 2 * pad
    if first:
        if sh == 1 and ph == 1:
            start = col_inc
        else:
            start = row_inc * padded + pad + 2 * col_inc
        return start + col_inc + (sw - 1) * padded
    row_prim = pad or sh
    start = row_prim * padded + row_inc * padded + pad + 2 * col_inc
    if last_streaming:
        effective = cols // col_inc
        if effective * sw + pw > cols:
            effective -= 1
        start += (0 if col_inc == 1 else cols - effective * col_inc) * sw
    val = start + (passes - 1) * (row_inc * cols + pad + col_inc) + col_inc
    return val + (passes - val % passes) % passes


def buffer_bytes(hw, graph_layers, device, *, last_streaming):
    """Bytes the layer's circular buffer keeps from other data, per instance: the rollover
    plus one word (the tool rejects a buffer that merely touches other data)."""
    return 4 * (rollover_words(hw, graph_layers, device, last_streaming=last_streaming) + 1)
