"""Data memory: where each layer writes its output (`out_offset`).

The data memory has 16 instances (`device.data_instance_bytes` each: 32 KiB on the MAX78000,
80 KiB on the MAX78002), one per group of 4 processors. A layer reads its input at `in_offset`
(the previous layer's `out_offset`; the model input is loaded at 0) from the instances of its
input processors and writes its output at `out_offset` to the instances of its output
processors. The synthesis tool rejects a layer whose input or output runs past the end of an
instance; it does not check that a layer's output leaves its own input alone, so this module
does: where the two share an instance, their byte ranges must not overlap.

Offsets follow the vendor's habit (its `networks/*.yaml`): outputs alternate between a
`half` offset and 0, and the last layer's output, which the CPU unloads, goes to the lowest
multiple of 0x1000 clear of its input. When that habit does not fit, the lowest offset that
does is used.
"""

__all__ = ["instances", "half_offset", "choose_offset", "overlaps", "last_offsets"]

SMALL_HALF = 0x2000
LAST_ALIGN = 0x1000
ALIGN = 4


def instances(mask, device):
    """Bit mask of the data-memory instances of the processors in `mask`."""
    step = device.processors_per_memory
    out = 0
    p = 0
    while mask >> p:
        if mask >> p & 1:
            out |= 1 << (p // step)
        p += 1
    return out


def half_offset(sizes, device):
    """The ping-pong offset: 0x2000 when every tensor fits below it, else half an instance."""
    return SMALL_HALF if max(sizes, default=0) <= SMALL_HALF else device.out_offset_half


def overlaps(a_start, a_size, b_start, b_size):
    """Whether the byte ranges [a, a + size) and [b, b + size) overlap."""
    return a_start < b_start + b_size and b_start < a_start + a_size


def _valid(offset, size, live, limit):
    if offset < 0 or offset % ALIGN or offset + size > limit:
        return False
    return not any(overlaps(offset, size, start, length) for start, length in live)


def choose_offset(out_bytes, live, device, *, preferred=()):
    """The output offset of one layer.

    Args:
        out_bytes: bytes of the output in each of its instances.
        live: `(offset, bytes)` ranges that must stay intact in the output's instances
            (the layer's own input where it shares an instance with the output).
        device: a `Device`.
        preferred: offsets to try first, in order.

    Returns:
        The offset, or None when the output does not fit beside the live data.
    """
    limit = device.data_instance_bytes
    for offset in preferred:
        if _valid(offset, out_bytes, live, limit):
            return offset
    candidates = [0] + [-(-(start + length) // ALIGN) * ALIGN for start, length in live]
    for offset in sorted(candidates):
        if _valid(offset, out_bytes, live, limit):
            return offset
    return None


def last_offsets(in_offset, in_bytes, out_bytes, device):
    """The vendor's choices for the last layer: multiples of 0x1000 clear of its input."""
    return [off for off in range(0, device.data_instance_bytes, LAST_ALIGN)
            if not overlaps(off, out_bytes, in_offset, in_bytes)]
