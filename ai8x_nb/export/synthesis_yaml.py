"""The synthesis tool's network description (`ai8xize.py --config-file NAME.yaml`).

One YAML entry per hardware layer, every key the tool would otherwise default written out
(its defaults are pad 1, kernel 3x3, pool stride 1; ai8x reference section 6). Written by a
small emitter of our own so that processor masks and offsets stay hexadecimal and the file
reads like the vendor's `networks/*.yaml`.

The processor masks and output offsets come from `ai8x_nb.placement` (the single source of
the device layout, which `check_model` reports too): masks whose kernels the tool's allocator
can place, offsets whose data fits and never overwrites a layer's own input. For the vendor's
MNIST network it reproduces the vendor's own `networks/mnist-chw-ai85.yaml` layout.

Residual networks (`ai8x_nb.eltwise_layout`) add the tool's element-wise keys: `eltwise: add`
(or `sub`, `xor`, `or`) and `operands` on a convolution that combines its inputs first
(`pool_first: false` when it pools: combine, pool, convolve), `operation: Add` (`Sub`, `Xor`,
`Or`) for a stand-alone element-wise layer, `in_sequences` wherever a layer
reads other than the layer before it, `write_gap` on the producers of interleaved operands,
and `in_offset` / `output_processors` wherever they differ from the tool's defaults (the
previous layer's output offset, the next layer's processors). Streaming layers
(`HardwareLayer(streaming=True)`) get `streaming: true`; the tool then needs `--fifo`
(`ai8x_nb.export.tool_command.tool_arguments`). Each layer producing one of a model's several
outputs gets `output: true`.
"""

import dataclasses
import logging

from ai8x_nb.devices import get_device
from ai8x_nb.errors import ExportError

__all__ = ["Hex", "network_description", "to_yaml", "write_network_yaml"]

logger = logging.getLogger(__name__)

OPERATIONS = {"conv2d": "Conv2d", "conv1d": "Conv1d", "convtranspose2d": "ConvTranspose2d",
              "linear": "MLP", "passthrough": "None", "add": "Add", "sub": "Sub",
              "xor": "Xor", "or": "Or"}
ACTIVATIONS = {None: "None", "relu": "ReLU", "abs": "Abs"}


@dataclasses.dataclass(frozen=True)
class Hex:
    """An int written in hexadecimal with at least `digits` digits (0x0000000000000001)."""

    value: int
    digits: int = 4

    def __str__(self):
        return f"0x{self.value:0{self.digits}x}"


# ------------------------------------------------------------ description
def _pool_value(values):
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _layer_entry(hw, ql, placements, index, outputs=()):
    layer = hw.layer
    placed = placements[index]
    entry = {"processors": Hex(placed.processors, 16)}
    nxt = placements[index + 1] if index + 1 < len(placements) else None
    if nxt is not None and placed.output_processors != nxt.processors:
        entry["output_processors"] = Hex(placed.output_processors, 16)
    if index > 0 and placed.in_offset != placements[index - 1].out_offset:
        entry["in_offset"] = Hex(placed.in_offset)
    entry["out_offset"] = Hex(placed.out_offset)
    expected_input = (index - 1,) if index > 0 else (-1,)
    if tuple(hw.inputs) != expected_input or hw.eltwise:
        entry["in_sequences"] = list(hw.inputs) if len(hw.inputs) > 1 else hw.inputs[0]
    entry["operation"] = OPERATIONS[hw.op]
    if hw.eltwise:
        if hw.op != hw.eltwise:
            entry["eltwise"] = hw.eltwise
        entry["operands"] = len(hw.inputs)
        if getattr(layer, "pooling", None) is not None:
            entry["pool_first"] = False  # Keras order: add, then pool, then convolve
    if hw.write_gap:
        entry["write_gap"] = int(hw.write_gap)
    if hw.op in ("conv2d", "convtranspose2d"):
        entry["kernel_size"] = f"{layer.kernel_size}x{layer.kernel_size}"
        if getattr(layer, "groups", 1) > 1:
            entry["groups"] = int(layer.groups)
    elif hw.op == "conv1d":
        entry["kernel_size"] = int(layer.kernel_size)
        if layer.dilation > 1:
            entry["dilation"] = int(layer.dilation)
    if hw.op in ("conv2d", "conv1d", "convtranspose2d"):
        entry["pad"] = int(layer.padding)
    entry["activate"] = ACTIVATIONS[getattr(layer, "activation", None)]
    pooling = getattr(layer, "pooling", None)
    if pooling is not None:
        entry[f"{pooling}_pool"] = _pool_value(layer.pool_size)
        entry["pool_stride"] = _pool_value(layer.pool_strides)
        if getattr(layer, "pool_dilation", None):
            entry["pool_dilation"] = _pool_value(layer.pool_dilation)
    if ql is not None and ql.weights is not None:
        entry["output_shift"] = int(ql.output_shift)
        entry["quantization"] = "bin" if ql.binary else int(ql.weight_bits)
    if hw.op == "linear" and hw.flatten_from is not None:
        entry["flatten"] = True
    if getattr(layer, "wide", False):
        entry["output_width"] = 32
    if index == 0:
        entry["data_format"] = placed.data_format
    if hw.streaming:
        entry["streaming"] = True
    if index in outputs:
        entry["output"] = True
    if hw.reshaped_from is not None and hw.op != "linear":
        spatial = [int(s) for s in hw.in_shape[:-1]]
        entry["in_dim"] = spatial[0] if len(spatial) == 1 else spatial
    return entry


def network_description(qmodel, *, arch, dataset, device=None):
    """Build the network description of a quantized model.

    Args:
        qmodel: a `QuantizedModel` (`ai8x_nb.quantize.convert`).
        arch: the `arch` value (the model name).
        dataset: the `dataset` value.
        device: defaults to `qmodel.device`.

    Returns:
        `(description, warnings)`: a dict with `arch`, `dataset`, `layers` (one dict per
        hardware layer, values plain or `Hex`) and a list of remarks.

    Raises:
        ExportError: the model has a layer the device cannot run.
    """
    dev = get_device(device or qmodel.device)
    graph = qmodel.graph
    bad = [hw for hw in graph.layers if hw.op not in OPERATIONS]
    if bad or graph.problems or not graph.layers:
        reasons = [p for hw in bad for p in hw.problems] + list(graph.problems)
        raise ExportError(f"Model '{arch}' cannot be described for the synthesis tool: "
                          + (" ".join(reasons) or "it has no hardware layers."))
    from ai8x_nb.placement import place_model  # imports Keras: keep the CLI start fast

    placement = place_model(graph, dev)
    warnings = [f"The synthesis tool will reject this layout: {e}" for e in placement.errors]
    by_index = {ql.hw.index: ql for ql in qmodel.layers}
    outputs = graph.output_indices if graph.several_outputs else ()
    layers = [_layer_entry(hw, by_index.get(hw.index), placement.layers, i, outputs)
              for i, hw in enumerate(graph.layers)]
    return {"arch": str(arch), "dataset": str(dataset), "layers": layers,
            "names": [hw.name for hw in graph.layers]}, warnings


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return str(value)


def to_yaml(description, *, device_name=None):
    """Render a description as YAML text in the vendor's style (hex masks stay hex)."""
    lines = ["# Network description for ai8xize.py, generated by ai8x_nb",
             f"# ({get_device(device_name).name}; one entry per hardware layer)", "",
             f"arch: {description['arch']}", f"dataset: {description['dataset']}", "",
             "layers:"]
    names = description.get("names") or [None] * len(description["layers"])
    for i, (entry, name) in enumerate(zip(description["layers"], names)):
        lines.append(f"  # Layer {i}" + (f": {name}" if name else ""))
        for j, (key, value) in enumerate(entry.items()):
            lead = "  - " if j == 0 else "    "
            lines.append(f"{lead}{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def write_network_yaml(qmodel, path, *, arch, dataset, device=None):
    """Write `NAME.yaml`; returns `(text, warnings)`."""
    desc, warnings = network_description(qmodel, arch=arch, dataset=dataset, device=device)
    text = to_yaml(desc, device_name=get_device(device or qmodel.device).name)
    with open(path, "w") as f:
        f.write(text)
    return text, warnings
