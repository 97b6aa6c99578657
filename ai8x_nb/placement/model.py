"""`place_model`: the placement of a whole traced model, and its `Placement` result."""

import dataclasses

from ai8x_nb.devices import get_device
from ai8x_nb.placement.demand import layer_demands
from ai8x_nb.placement.search import plan_layers

__all__ = ["Placement", "place_model"]


@dataclasses.dataclass
class Placement:
    """The device layout of a model.

    Attributes:
        device: the `Device`.
        layers: one `LayerPlacement` per hardware layer.
        kernel_top: per processor, one past its highest used kernel-memory column (what must
            stay within `device.weight_words`).
        kernel_words: per processor, the kernel words in use.
        bias_used: bytes of bias memory used per quadrant (None when not placed).
        bias_quadrants: the quadrants that can hold biases (the ones the network uses).
        problems: what does not fit: `(layer index, kind, message)` with kind "kernels",
            "bias", "data" or "processors"; each message names the layer, the value, the
            limit and a fix.
    """

    device: object
    layers: list
    kernel_top: list
    kernel_words: list
    bias_used: list = None
    bias_quadrants: list = None
    problems: list = dataclasses.field(default_factory=list)

    @property
    def errors(self):
        """The problem messages."""
        return [message for _, _, message in self.problems]

    @property
    def ok(self):
        """True when every layer fits."""
        return not self.problems

    @property
    def fullest_processor(self):
        """`(processor, top column)` of the processor whose kernel memory is filled highest."""
        if not self.kernel_top:
            return 0, 0
        p = max(range(len(self.kernel_top)), key=lambda q: (self.kernel_top[q], -q))
        return p, self.kernel_top[p]


def place_model(graph, device=None):
    """Place a traced model on the device as the synthesis tool will.

    Args:
        graph: a `ModelGraph` (`ai8x_nb.graph.trace_model`) with no unsupported layers and
            at least one hardware layer.
        device: a `Device` or device name.

    Returns:
        A `Placement`. What does not fit is listed in `placement.errors`, not raised.

    Example:

    >>> placement = place_model(trace_model(model), "MAX78000")  # doctest: +SKIP
    >>> placement.fullest_processor  # doctest: +SKIP
    (4, 128)
    """
    dev = get_device(device)
    demands = layer_demands(graph, dev)
    layers, memory, biases, problems = plan_layers(demands, dev)
    return Placement(
        device=dev, layers=layers, kernel_top=[int(t) for t in memory.top()],
        kernel_words=[int(w) for w in memory.words_used()],
        bias_used=None if biases is None else list(biases.used),
        bias_quadrants=None if biases is None else list(biases.quadrants), problems=problems)
