"""Placement: which processors, kernel memory, bias memory and data memory each layer uses.

This is the single source of the device layout: `check_model` reports it, the synthesis YAML
writer writes its masks and offsets, and the layer editor's memory bars show its totals. It
follows the synthesis tool's own allocators (ai8x reference section 6), so a model it places
is one the tool accepts.

Example:

>>> from ai8x_nb.graph import trace_model
>>> from ai8x_nb.placement import place_model
>>> placement = place_model(trace_model(model), "MAX78000")  # doctest: +SKIP
>>> placement.ok, hex(placement.layers[1].processors)  # doctest: +SKIP
(True, '0xfffffffffffffff0')
"""

from ai8x_nb.placement.demand import LayerDemand, kernel_words, layer_demands
from ai8x_nb.placement.model import Placement, place_model
from ai8x_nb.placement.plan import LayerPlacement, packed_mask

__all__ = ["place_model", "Placement", "LayerPlacement", "LayerDemand", "layer_demands",
           "kernel_words", "packed_mask"]
