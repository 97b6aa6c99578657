"""The synthesis tool's rules for one hardware layer, in the project's error style.

Each rule names the layer, the value, the device limit and a fix. Rules about how layers share
the device's memories (kernel, bias and data placement) live in `ai8x_nb.placement`; these are
the ones a layer breaks on its own. Sources: ai8x reference sections 4 and 6, and the checks of
ai8x-synthesis (`izer/izer.py`, `izer/yamlcfg.py`, `izer/backend/max7800x.py`), both devices.
"""

import math

from ai8x_nb.graph import shape_size

__all__ = ["layer_errors"]


def _channels(hw, dev, label):
    for what, channels in (("input", int(hw.in_channels)), ("output", int(hw.out_channels))):
        if channels > dev.max_channels:
            yield (f"{label} has {channels} {what} channels; {dev.name} supports at most "
                   f"{dev.max_channels} (16 passes of 64 processors). Use fewer channels or "
                   f"split the layer.")


def _padding(hw, dev, label):
    layer = hw.layer
    if hw.op not in ("conv2d", "conv1d", "convtranspose2d"):
        return
    pad, kernel = int(layer.padding), int(layer.kernel_size)
    if pad >= kernel:
        yield (f"{label} has padding={pad} with kernel_size={kernel}; the synthesis tool needs "
               f"padding smaller than the kernel (a 1x1 kernel takes padding 0 only). Use "
               f"padding={kernel - 1} or less.")


def _pooling(hw, dev, label):
    layer = hw.layer
    if getattr(layer, "pooling", None) is None:
        return
    strides = tuple(int(s) for s in layer.pool_strides)
    if len(strides) == 2 and strides[0] != strides[1]:
        yield (f"{label} has pool_strides={strides}; {dev.name} pools 2D data with the same "
               f"stride in both dimensions. Use pool_strides={strides[0]} (pool_size may be "
               f"non-square).")
    if hw.op == "passthrough":
        passes = math.ceil(int(hw.in_channels) / dev.processors)
        pooled = shape_size(hw.out_shape[:-1])
        if (passes > dev.max_pool_only_passes and pooled != 1
                and shape_size(layer.pool_size) > 1):
            yield (f"{label} pools {int(hw.in_channels)} channels on its own; a {dev.name} "
                   f"pool-only layer handles at most {dev.processors} channels unless it pools "
                   f"down to 1x1 (MAX78002: up to 1024). Fuse the pooling into the next "
                   f"convolution (pooling='{layer.pooling}', pool_size=...).")


def _conv1d(hw, dev, label):
    if hw.op != "conv1d" or dev.padded_conv1d_multipass:
        return
    channels = int(hw.in_channels)
    if int(hw.layer.padding) > 0 and channels > dev.processors:
        yield (f"{label} is a Conv1D with padding={int(hw.layer.padding)} on {channels} input "
               f"channels; {dev.name} runs a padded Conv1D on at most {dev.processors} input "
               f"channels (one pass). Use padding=0, or at most {dev.processors} channels.")


def _linear(hw, dev, label):
    if hw.op != "linear":
        return
    in_ch, out_ch = int(hw.in_channels), int(hw.out_channels)
    if hw.flatten_from is not None:
        pixels = shape_size(hw.flatten_from[:-1])
        features = in_ch * pixels
        passes = math.ceil(in_ch / dev.processors)
        count = min(dev.processors, -(-math.ceil(in_ch / passes) // 4) * 4)
        if passes > 1 and (features % passes or features % count):
            # ai8x-synthesis regroups a multi-pass flatten's weights per processor and stops
            # with a reshape error unless C*H*W divides evenly.
            yield (f"{label} flattens {in_ch} channels x {pixels} pixels = {features} values "
                   f"read in {passes} passes of {count} processors; the synthesis tool needs "
                   f"C*H*W to be a multiple of {count} (and of {passes}). Use a channel count "
                   f"that fills every pass (e.g. {passes * count}) before the Flatten.")
        if features > dev.max_flatten_values:
            yield (f"{label} flattens {hw.flatten_from} = {features} values; {dev.name} "
                   f"flattens at most {dev.max_flatten_values} (C*H*W). Pool more or use fewer "
                   f"channels before the Flatten.")
        if pixels > dev.max_flatten_pixels:
            yield (f"{label} flattens {pixels} pixels per channel (H*W of {hw.flatten_from}); "
                   f"{dev.name} flattens at most {dev.max_flatten_pixels} "
                   f"(flatten limit, H*W <= {dev.max_flatten_pixels}). Pool further "
                   f"before the Flatten.")
    elif in_ch > dev.max_dense_in:
        yield (f"{label} has {in_ch} input features; a {dev.name} linear layer takes at most "
               f"{dev.max_dense_in}. Pool more before the Flatten.")
    if out_ch > dev.max_dense_out:
        yield (f"{label} has {out_ch} outputs; a {dev.name} linear layer has at most "
               f"{dev.max_dense_out}. Use fewer units.")


def _rows(hw, dev, label):
    if hw.op == "linear":
        return
    spatial = [int(s) for s in list(hw.in_shape[:-1]) + list(hw.out_shape[:-1])]
    if any(s > dev.max_rows for s in spatial):
        yield (f"{label} has rows/columns {spatial}; {dev.name} supports at most "
               f"{dev.max_rows}. Downsample the input.")
        return
    if not dev.max_padded_rows or hw.op not in ("conv2d", "conv1d", "convtranspose2d"):
        return
    # The row/column counters see the input before pooling plus both paddings; a transposed
    # convolution reads twice the rows with the padding flipped (kernel - 1 - padding).
    pad = int(hw.layer.padding)
    scale = 1
    if hw.op == "convtranspose2d":
        scale, pad = 2, int(hw.layer.kernel_size) - 1 - pad
    widest = max(scale * int(s) for s in hw.in_shape[:-1]) + 2 * pad
    if widest > dev.max_padded_rows:
        yield (f"{label} reads {widest} rows/columns including padding; the {dev.name} row "
               f"counter stops at {dev.max_padded_rows}. Use a smaller input or less padding.")


def _data(hw, dev, label, *, chw, last=False):
    if hw.streaming and not last:
        # A streaming layer reads a circular buffer and writes the next one's or the
        # next layer's input, which that layer checks (the tool checks neither).
        return
    wide = 4 if getattr(hw.layer, "wide", False) else 1
    spatial_in = hw.flatten_from[:-1] if hw.flatten_from is not None else hw.in_shape[:-1]
    pixels_in = shape_size(spatial_in) if len(hw.in_shape) > 1 or hw.flatten_from else 1
    pixels_out = shape_size(hw.out_shape[:-1])
    if hw.streaming:
        pixels_in = 0  # the model's last layer streams: only its output lies whole in memory
    if chw and pixels_in > dev.max_pixels_chw:
        yield (f"{label} reads {pixels_in} pixels per channel (CHW); {dev.name} holds at most "
               f"{dev.max_pixels_chw} without streaming. Use a smaller input, or stream the "
               f"first layers (streaming=True).")
    for what, pixels, channels, size in (
            ("reads", pixels_in, 0 if chw or hw.streaming else int(hw.in_channels), 1),
            ("writes", pixels_out, int(hw.out_channels), wide)):
        passes = math.ceil(channels / dev.processors)
        if channels and pixels * passes * size > dev.max_pixels_hwc:
            width = " x 4 (32-bit wide output)" if size > 1 else ""
            yield (f"{label} {what} {pixels} pixels x {passes} pass(es){width} per processor "
                   f"(HWC); {dev.name} holds at most {dev.max_pixels_hwc} pixels per channel "
                   f"without streaming (data memory). Pool earlier, use a smaller input, or "
                   f"stream the first layers (streaming=True).")


def _bias(hw, dev, label):
    layer = hw.layer
    if getattr(layer, "bias", None) is None or not getattr(layer, "_bias_in_use", True):
        return
    if int(hw.out_channels) > dev.max_bias_outputs:
        yield (f"{label} has a bias for {int(hw.out_channels)} outputs; {dev.name} holds biases "
               f"for at most {dev.max_bias_outputs} outputs per layer (bias memory). Use "
               f"use_bias=False or fewer outputs.")


def layer_errors(hw, dev, *, chw, last):
    """Every rule one hardware layer breaks on its own.

    Args:
        hw: the `HwLayer`.
        dev: the `Device`.
        chw: the layer reads the CHW model input.
        last: the layer writes the model output.

    Returns:
        `(kind, message)` pairs; kind "data" for data-memory limits, "rule" otherwise.
    """
    label = f"Layer '{hw.name}'"
    found = []
    for rule in (_channels, _padding, _pooling, _conv1d, _linear, _rows, _bias):
        found.extend(("rule", m) for m in rule(hw, dev, label))
    found.extend(("data", m) for m in _data(hw, dev, label, chw=chw, last=last))
    if getattr(hw.layer, "wide", False) and not last:
        found.append(("rule", f"{label} has wide=True but is not the last layer; only the "
                              f"output layer can be 32 bits wide. Use wide=False."))
    return found
