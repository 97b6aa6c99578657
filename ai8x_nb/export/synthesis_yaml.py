"""The synthesis tool's network description (`ai8xize.py --config-file NAME.yaml`).

One YAML entry per hardware layer, every key the tool would otherwise default written out
(its defaults are pad 1, kernel 3x3, pool stride 1; ai8x reference section 6). Written by a
small emitter of our own so that processor masks and offsets stay hexadecimal and the file
reads like the vendor's `networks/*.yaml`.

Memory layout policy (the vendor writes these by hand; this reproduces its MNIST file):

- Processors: counts and passes come from `ai8x_nb.check.allocate_processors` (the single
  source of the allocation rules). The first layer reads the model input from processor 0
  (CHW: one memory instance per channel, every 4th processor). A linear layer after a
  Flatten reads from processor 0. Any other layer starts on a memory-instance boundary
  (a multiple of 4): the lowest start whose processors do not overlap the previous layer's,
  so a layer's input and output sit in different memories; when no such start exists, the
  previous layer's start if the group fits there, else 0. A layer after a pool-only
  (passthrough) layer uses that layer's processors, as the tool requires.
- Offsets: outputs ping-pong between `H` and 0, starting with `H` (the model input is at 0),
  where `H` is 0x2000 when every layer's data fits in 0x2000 bytes per memory instance and
  half an instance (`device.out_offset_half`) otherwise. The last layer's output, which the
  CPU unloads, goes to the lowest multiple of 0x1000 that does not overlap its input.
"""

import dataclasses
import logging
import math

from ai8x_nb.devices import get_device
from ai8x_nb.errors import ExportError

__all__ = ["Hex", "network_description", "to_yaml", "write_network_yaml",
           "place_processors", "place_offsets"]

log = logging.getLogger(__name__)

OPERATIONS = {"conv2d": "Conv2d", "conv1d": "Conv1d", "convtranspose2d": "ConvTranspose2d",
              "linear": "MLP", "passthrough": "None", "add": "Add"}
ACTIVATIONS = {None: "None", "relu": "ReLU", "abs": "Abs"}
SMALL_HALF = 0x2000
LAST_ALIGN = 0x1000


@dataclasses.dataclass(frozen=True)
class Hex:
    """An int written in hexadecimal with at least `digits` digits (0x0000000000000001)."""

    value: int
    digits: int = 4

    def __str__(self):
        return f"0x{self.value:0{self.digits}x}"


# ---------------------------------------------------------------- processors
def _overlaps(a, b):
    return (a & b) != 0


def place_processors(graph, device):
    """Choose each hardware layer's input processors (see the module docstring).

    Args:
        graph: the `ModelGraph`.
        device: a `Device`.

    Returns:
        A list of `(mask, passes, count, data_format)` per hardware layer.
    """
    from ai8x_nb.check import allocate_processors, uses_chw

    dev = get_device(device)
    step = dev.processors_per_memory
    placed = []
    for i, hw in enumerate(graph.layers):
        channels = hw.in_channels
        first = i == 0
        fmt = "CHW" if uses_chw(channels, dev, first_layer=first) else "HWC"
        _, passes, count = allocate_processors(channels, dev, first_layer=first)
        prev = placed[-1] if placed else None
        if first or (hw.op == "linear" and hw.flatten_from is not None
                     and graph.layers[i - 1].op != "passthrough"):
            offset = 0
        elif graph.layers[i - 1].op == "passthrough":
            offset = _lowest_bit(prev[0])
        else:
            offset = _choose_offset(prev[0], count, dev.processors, step)
        if fmt == "CHW" or offset + count <= dev.processors:
            mask = allocate_processors(channels, dev, first_layer=first, offset=offset)[0]
        else:
            mask = allocate_processors(channels, dev, first_layer=first)[0]
        placed.append((mask, passes, count, fmt))
    return placed


def _lowest_bit(mask):
    return (mask & -mask).bit_length() - 1


def _choose_offset(prev_mask, count, processors, step):
    group = (1 << count) - 1
    starts = range(0, processors - count + 1, step)
    for start in starts:
        if not _overlaps(group << start, prev_mask):
            return start
    prev_start = _lowest_bit(prev_mask)
    if prev_start + count <= processors:
        return prev_start
    return 0


# ------------------------------------------------------------------- offsets
def _pixels(shape):
    return int(math.prod(shape[:-1])) if len(shape) > 1 else 1


def _input_bytes(hw, placement):
    """Bytes per data-memory instance that a layer's input occupies."""
    _, passes, _, fmt = placement
    shape = hw.flatten_from if hw.flatten_from is not None else hw.in_shape
    pixels = _pixels(shape)
    if fmt == "CHW":
        return -(-pixels // 4) * 4  # four pixels of one channel per 32-bit word
    return pixels * passes * 4


def _output_bytes(hw, device):
    pixels = _pixels(hw.out_shape)
    groups = -(-hw.out_channels // device.processors)
    wide = 4 if getattr(hw.layer, "wide", False) else 1
    return pixels * groups * 4 * wide


def place_offsets(graph, placements, device):
    """Choose each layer's `out_offset` (see the module docstring).

    Returns:
        `(offsets, warnings)`: one int per hardware layer, and remarks about memory.
    """
    dev = get_device(device)
    layers = graph.layers
    n = len(layers)
    in_bytes = [_input_bytes(hw, p) for hw, p in zip(layers, placements)]
    out_bytes = [in_bytes[i + 1] if i + 1 < n else _output_bytes(layers[i], dev)
                 for i in range(n)]
    need = max(in_bytes + out_bytes)
    half = SMALL_HALF if need <= SMALL_HALF else dev.out_offset_half
    warnings = []
    if need > half:
        warnings.append(
            f"A layer needs {need} bytes per data-memory instance, more than half an instance "
            f"(0x{half:x}); the ping-pong offsets overlap. Reduce the data size or check the "
            f"layout with ai8xize.py (streaming may be needed).")
    offsets = []
    for i in range(n):
        if i == n - 1:
            in_off = offsets[-1] if offsets else 0
            offsets.append(_last_offset(in_off, in_bytes[i], out_bytes[i],
                                        dev.data_instance_bytes))
        else:
            offsets.append(half if not offsets or offsets[-1] != half else 0)
    return offsets, warnings


def _last_offset(in_off, in_size, out_size, limit):
    for off in range(0, limit, LAST_ALIGN):
        if off + out_size <= in_off or off >= in_off + in_size:
            if off + out_size <= limit:
                return off
    return 0


# ------------------------------------------------------------ description
def _pool_value(values):
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _layer_entry(hw, ql, placement, out_offset, index, graph):
    layer = hw.layer
    mask, _, _, fmt = placement
    entry = {"processors": Hex(mask, 16), "out_offset": Hex(out_offset)}
    expected_input = (index - 1,) if index > 0 else (-1,)
    if tuple(hw.inputs) != expected_input:
        entry["in_sequences"] = list(hw.inputs) if len(hw.inputs) > 1 else hw.inputs[0]
    entry["operation"] = OPERATIONS[hw.op]
    if hw.op == "add":
        entry["operands"] = len(hw.inputs)
    if hw.op in ("conv2d", "convtranspose2d"):
        entry["kernel_size"] = f"{layer.kernel_size}x{layer.kernel_size}"
    elif hw.op == "conv1d":
        entry["kernel_size"] = int(layer.kernel_size)
    if hw.op in ("conv2d", "conv1d", "convtranspose2d"):
        entry["pad"] = int(layer.padding)
    entry["activate"] = ACTIVATIONS[getattr(layer, "activation", None)]
    pooling = getattr(layer, "pooling", None)
    if pooling is not None:
        entry[f"{pooling}_pool"] = _pool_value(layer.pool_size)
        entry["pool_stride"] = _pool_value(layer.pool_strides)
    if ql is not None and ql.weights is not None:
        entry["output_shift"] = int(ql.output_shift)
        entry["quantization"] = int(ql.weight_bits)
    if hw.op == "linear" and hw.flatten_from is not None:
        entry["flatten"] = True
    if getattr(layer, "wide", False):
        entry["output_width"] = 32
    if index == 0:
        entry["data_format"] = fmt
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
    placements = place_processors(graph, dev)
    offsets, warnings = place_offsets(graph, placements, dev)
    by_index = {ql.hw.index: ql for ql in qmodel.layers}
    layers = [_layer_entry(hw, by_index.get(hw.index), placements[i], offsets[i], i, graph)
              for i, hw in enumerate(graph.layers)]
    if any("in_sequences" in e for e in layers):
        warnings.append(
            "The model branches (in_sequences); element-wise operands must be interleaved with "
            "write_gap and kept outputs must not be overwritten by the ping-pong offsets. "
            "Review in_offset/out_offset/write_gap in the YAML by hand.")
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
             f"# ({device_name or 'MAX78000'}; one entry per hardware layer)", "",
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
