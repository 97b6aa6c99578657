"""Bias memory, allocated the way the synthesis tool allocates it.

Each quadrant of 16 processors has its own bias memory (`device.bias_bytes_per_quadrant`:
512 bytes on the MAX78000, 2048 on the MAX78002). ai8x-synthesis (`izer/kbias.py`) puts all
biases of one layer in one quadrant, and only in quadrants the network uses (a quadrant is used
when some layer reads from one of its processors, or the last layer writes to one). It places
the layers largest first (on the MAX78000 the biases of a flattening linear layer go first of
all), each into the used quadrant with the fewest bytes so far.
"""

import dataclasses

__all__ = ["BiasPlacement", "place_biases", "used_quadrants"]


@dataclasses.dataclass
class BiasPlacement:
    """Where the biases went.

    Attributes:
        quadrants: the quadrants the network uses (the ones that can hold biases).
        used: bytes used per quadrant (all quadrants of the device).
        quadrant: per layer, its quadrant (None without bias).
        failed: index of the first layer whose biases did not fit, or None.
    """

    quadrants: list
    used: list
    quadrant: list
    failed: int = None


def used_quadrants(masks, final_output_mask, device):
    """Quadrants with a processor some layer reads from, or the last layer writes to."""
    union = final_output_mask
    for mask in masks:
        union |= mask
    size = device.processors_per_quadrant
    return [q for q in range(device.quadrants) if union >> (q * size) & ((1 << size) - 1)]


def place_biases(demands, masks, final_output_mask, device):
    """Place every layer's biases into the quadrants' bias memories.

    Args:
        demands: the `LayerDemand` list (bias bytes, flatten).
        masks: the input processor masks (the output processors of layer i are the input
            processors of layer i + 1; all used masks start on a multiple of 4, so no layer
            needs leading padding bytes).
        final_output_mask: the output processors of the last layer.
        device: a `Device`.

    Returns:
        A `BiasPlacement`.
    """
    quadrants = used_quadrants(masks, final_output_mask, device)
    capacity = device.bias_bytes_per_quadrant

    def order(d):
        if device.flatten_bias_first and d.flatten_pixels is not None:
            return -1
        return 0 if len(quadrants) == 1 else capacity - d.bias_bytes

    used = [0] * device.quadrants
    where = [None] * len(demands)
    for d in sorted((d for d in demands if d.bias_bytes), key=order):
        quadrant = min(quadrants, key=lambda q: used[q])
        if used[quadrant] + d.bias_bytes > capacity:
            return BiasPlacement(quadrants, used, where, failed=d.index)
        where[d.index] = quadrant
        used[quadrant] += d.bias_bytes
    return BiasPlacement(quadrants, used, where)
