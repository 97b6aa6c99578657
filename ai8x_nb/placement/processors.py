"""Processor allocation: which of the 64 processors read a layer's input channels.

This is the single source of truth for the processor counts of the ai8x reference (sections 4
and 6); `ai8x_nb.placement` decides where on the 64 processors they go.

Rules:

- up to 64 input channels: one processor per channel, one pass;
- more than 64 channels: `passes = ceil(C / 64)` passes on `ceil4(C / passes)` processors
  (100 channels -> 2 passes on 52 processors; 128 -> 2 on 64);
- a first layer in CHW format (at most one channel per data-memory instance, i.e. at most 16
  channels): each channel on its own memory instance, every 4th processor (3 channels -> 0x111).

Processors are taken from `offset` upwards (the placement chooses the offset).
"""

import math

from ai8x_nb.devices import get_device
from ai8x_nb.errors import DeviceLimitError

__all__ = ["allocate_processors", "uses_chw", "channels_per_processor"]


def uses_chw(in_channels, device=None, *, first_layer=False):
    """Whether a layer's input is laid out channels-first (CHW) in data memory.

    Only the first layer can read CHW data, and only when each channel fits on its own
    memory instance (at most `device.data_memory_instances` channels).
    """
    dev = get_device(device)
    return bool(first_layer) and 1 <= in_channels <= dev.data_memory_instances


def allocate_processors(in_channels, device=None, *, first_layer=False, offset=0):
    """Allocate processors for a layer with `in_channels` input channels.

    Args:
        in_channels: input channels of the layer (for a linear layer after a Flatten, the
            channels before the Flatten).
        device: a `Device` or device name.
        first_layer: the layer reads the model input; with at most 16 channels the input is
            CHW and each channel gets its own data-memory instance (every 4th processor).
        offset: first processor to use (0..63); in CHW, channel i goes to processor
            `offset + 4 * i`.

    Returns:
        `(mask, passes, count)`: the 64-bit processor mask as an int, the number of passes,
        and the number of processors used.

    Raises:
        DeviceLimitError: channel count outside 1..device.max_channels, or the processors do
            not fit above `offset`.

    Example:

    >>> allocate_processors(3, first_layer=True)
    (273, 1, 3)
    >>> hex(allocate_processors(100)[0]), allocate_processors(100)[1:]
    ('0xfffffffffffff', (2, 52))
    """
    dev = get_device(device)
    if not 1 <= in_channels <= dev.max_channels:
        raise DeviceLimitError(
            f"{dev.name}: a layer with {in_channels} input channels cannot be allocated "
            f"(1..{dev.max_channels} channels). Use fewer channels.")
    if not 0 <= offset < dev.processors:
        raise DeviceLimitError(
            f"{dev.name}: processor offset {offset} is outside 0..{dev.processors - 1}.")
    if uses_chw(in_channels, dev, first_layer=first_layer):
        step = dev.processors_per_memory
        last = offset + step * (in_channels - 1)
        if last >= dev.processors:
            raise DeviceLimitError(
                f"{dev.name}: {in_channels} CHW input channels from processor {offset} need "
                f"processor {last}; the device has {dev.processors}. Use offset=0.")
        mask = sum(1 << (offset + step * i) for i in range(in_channels))
        return mask, 1, in_channels
    passes = math.ceil(in_channels / dev.processors)
    per_pass = math.ceil(in_channels / passes)
    count = min(dev.processors, -(-per_pass // 4) * 4) if passes > 1 else in_channels
    if offset + count > dev.processors:
        raise DeviceLimitError(
            f"{dev.name}: {count} processors from processor {offset} do not fit in "
            f"{dev.processors}; use an offset of at most {dev.processors - count}.")
    return ((1 << count) - 1) << offset, passes, count


def channels_per_processor(in_channels, count):
    """Input channels held by each of `count` processors (channel c on processor c % count)."""
    return [len(range(p, in_channels, count)) for p in range(count)]
