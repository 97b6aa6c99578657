"""Read the synthesis tool's network description (`networks/*.yaml`) into plain layer records.

Only what decides the arithmetic is kept: the operator, kernel size, padding, pooling,
activation, flatten, wide output, weight bits and output_shift, `in_dim`, and the layers a
layer reads (`in_sequences`: one earlier layer is a branch; several, on a convolution, are
concatenated channel-wise in the listed order). Keys that only place data on the device
(processors, offsets, data format, the `write_gap` that interleaves a concatenation's inputs,
...) are the exporter's job and are skipped. Keys the workbench cannot express yet
(element-wise operations, groups, dilation, ...) are collected
and refused together, each naming the layer, the key and what is missing. Defaults
are the tool's (`izer/yamlcfg.py`): pad 1, kernel 3x3 (Conv2d) or 9 (Conv1d), pool stride 1.
"""

import dataclasses
import re
from pathlib import Path

import yaml

from ai8x_nb.errors import ZooImportError

__all__ = ["NetworkLayer", "Network", "read_network", "sample_file"]

OPERATIONS = {"conv2d": "conv2d", "conv1d": "conv1d", "convtranspose2d": "convtranspose2d",
              "linear": "linear", "fc": "linear", "mlp": "linear", "none": "passthrough",
              "passthrough": "passthrough"}
ACTIVATIONS = {"relu": "relu", "abs": "abs", "none": None}
PLACEMENT_KEYS = frozenset({
    "processors", "output_processors", "out_offset", "in_offset", "data_format", "name",
    "calcx4", "readahead", "tcalc", "bias_group", "bias_quadrant", "simulated_sequence",
    "snoop_sequence"})
"""Keys about where data and weights live on the device: they do not change the arithmetic."""
MISSING = {
    "in_sequences": "inputs other than earlier layers' outputs (by index or `name`) or the "
                    "network input",
    "eltwise": "element-wise operations fused into a convolution",
    "operands": "element-wise operations",
    "pool_first": "element-wise operations fused into a convolution",
    "write_gap": "interleaved outputs (for element-wise operations and concatenation)",
    "read_gap": "interleaved inputs", "in_skip": "interleaved inputs",
    "groups": "grouped (depthwise) convolutions", "conv_groups": "grouped (depthwise) convolutions",
    "dilation": "dilated convolutions", "stride": "strided convolutions",
    "pool_dilation": "dilated pooling", "output_pad": "a transposed convolution's output padding",
    "in_channels": "reading a subset of the input channels",
    "out_channels": "writing a subset of the output channels",
    "in_channel_skip": "skipped input channels", "in_crop": "cropped inputs",
    "bypass": "bypassed layers", "weight_source": "shared weights",
    "buffer_shift": "data buffers", "buffer_insert": "data buffers",
    "sequence": "layer sequences out of order", "next_sequence": "layer sequences out of order",
}
"""Keys the importer refuses (when they change something), with what the workbench lacks."""
TOP_LEVEL = {"arch", "dataset", "layers"}


@dataclasses.dataclass
class NetworkLayer:
    """One YAML layer, as it decides the arithmetic.

    Attributes:
        index: the layer's position (the tool's `layer_str`).
        op: "conv2d", "conv1d", "convtranspose2d", "linear" or "passthrough".
        kernel_size: int (square / 1D) for convolutions, else None.
        padding: zero padding per side.
        activation: None, "relu" or "abs".
        pooling: None, "max" or "avg"; `pool_size` / `pool_strides` as tuples.
        flatten: the linear layer flattens a convolution's output (channel-first).
        wide: 32-bit output.
        weight_bits: the YAML's `quantization`, or None (then the checkpoint's).
        output_shift: the YAML's `output_shift`, or None (then the checkpoint's).
        in_dim: the YAML's `in_dim` (the input relabelled to these spatial dims), or None.
        inputs: the layers it reads (`in_sequences`; -1 is the network input), or None for
            the previous layer.
        write_gap: the YAML's `write_gap` (only placement: allowed on a concatenation input).
        streaming: the YAML's `streaming` (the layer reads a circular buffer; the tool runs
            with `--fifo`).
        output: the YAML's `output` (one of several network outputs).
    """

    index: int
    op: str
    kernel_size: int = None
    padding: int = 0
    activation: str = None
    pooling: str = None
    pool_size: tuple = None
    pool_strides: tuple = None
    flatten: bool = False
    wide: bool = False
    weight_bits: int = None
    output_shift: int = None
    in_dim: tuple = None
    inputs: tuple = None
    write_gap: int = 0
    streaming: bool = False
    output: bool = False

    @property
    def has_weights(self):
        return self.op != "passthrough"


@dataclasses.dataclass
class Network:
    """A network description: `arch`, `dataset`, the layers and the file it came from."""

    arch: str
    dataset: str
    layers: list
    path: Path


def _pair(value):
    return tuple(value) if isinstance(value, list) else (value, value)


def _changes_something(key, value, layer):
    """False for keys set to their no-op value (`streaming: false`, `in_sequences: [i-1]`)."""
    if key in ("streaming", "bypass", "output", "pool_dilation", "stride", "dilation",
               "groups", "conv_groups"):
        neutral = {"stride": 1, "dilation": 1, "groups": 1, "conv_groups": 1,
                   "pool_dilation": 1}.get(key, False)
        return any(v != neutral for v in (value if isinstance(value, list) else [value]))
    if key == "in_sequences":
        seq = value if isinstance(value, list) else [value]
        return seq != [layer - 1] and not (layer == 0 and seq in ([-1], ["input"]))
    if key in ("read_gap", "in_skip", "in_channel_skip"):
        return value != 0
    if key == "output_pad":
        return value != 1
    return True


def _layer(index, entry, source, problems, names):
    def refuse(key, what):
        problems.append((key, what, f"{index}: {entry[key]}"))

    for key in entry:
        if key in PLACEMENT_KEYS or key in MISSING and not _changes_something(
                key, entry[key], index):
            continue
        if key == "in_sequences":
            continue  # read below; element-wise operands are refused under their own key
        if key == "write_gap":
            continue  # checked in read_network: it must interleave a concatenation's input
        if key in MISSING:
            refuse(key, MISSING[key])
    op_keys = [k for k in ("op", "operation", "operator", "convolution") if k in entry]
    word = str(entry[op_keys[0]]).lower() if op_keys else "conv2d"
    if word not in OPERATIONS:
        refuse(op_keys[0], f"`{entry[op_keys[0]]}` layer (element-wise and other operations)")
        word = "none"
    op = OPERATIONS[word]
    layer = NetworkLayer(index=index, op=op)
    if op in ("conv2d", "conv1d", "convtranspose2d"):
        size = entry.get("kernel_size", 9 if op == "conv1d" else "3x3")
        text = str(size).lower()
        match = re.fullmatch(r"(\d)x(\d)", text) if op != "conv1d" else re.fullmatch(r"\d", text)
        if match is None or (op != "conv1d" and match.group(1) != match.group(2)):
            raise ZooImportError(f"{source}: layer {index} has kernel_size {size!r}; expected "
                                 f"1x1 or 3x3 (Conv2d), 3x3 (ConvTranspose2d) or 1..9 (Conv1d).")
        layer.kernel_size = int(text[0])
        layer.padding = int(entry.get("pad", 1))
    elif op == "linear":
        layer.padding = 0
    act_key = "activate" if "activate" in entry else "activation"
    if act_key in entry:
        word = str(entry[act_key]).lower()
        if word not in ACTIVATIONS:
            raise ZooImportError(f"{source}: layer {index} has {act_key}: {entry[act_key]!r}; "
                                 f"expected ReLU, Abs or None.")
        layer.activation = ACTIVATIONS[word]
    for mode in ("max", "avg"):
        if f"{mode}_pool" in entry:
            layer.pooling = mode
            layer.pool_size = _pair(entry[f"{mode}_pool"])
            layer.pool_strides = _pair(entry.get("pool_stride", 1))
            if op == "conv1d":
                layer.pool_size, layer.pool_strides = layer.pool_size[:1], layer.pool_strides[:1]
    layer.flatten = bool(entry.get("flatten", False))
    layer.wide = int(entry.get("output_width", 8)) == 32
    if layer.wide and layer.activation is not None:
        refuse(act_key, "activation on a wide (`output_width: 32`) output")
    if "quantization" in entry:
        bits = entry["quantization"]
        if bits not in (1, 2, 4, 8):
            refuse("quantization", "binary (+-1) weights")
        else:
            layer.weight_bits = int(bits)
    if "output_shift" in entry:
        layer.output_shift = int(entry["output_shift"])
    if "in_dim" in entry:
        dims = entry["in_dim"]
        layer.in_dim = tuple(dims) if isinstance(dims, list) else (int(dims),)
    if "in_sequences" in entry and _changes_something("in_sequences", entry["in_sequences"],
                                                        index):
        seq = entry["in_sequences"] if isinstance(entry["in_sequences"], list) \
            else [entry["in_sequences"]]
        seq = [-1 if e == "input" else names.get(e, e) for e in seq]
        if not all(isinstance(e, int) and -1 <= e < index for e in seq):
            refuse("in_sequences", MISSING["in_sequences"])
        elif len(seq) > 1 and op not in ("conv2d", "conv1d", "convtranspose2d"):
            refuse("in_sequences", "concatenated inputs on a layer other than a convolution")
        else:
            layer.inputs = tuple(seq)
    if "write_gap" in entry:
        layer.write_gap = int(entry["write_gap"])
    if "streaming" in entry:
        if not isinstance(entry["streaming"], bool):
            raise ZooImportError(f"{source}: layer {index} has streaming: "
                                 f"{entry['streaming']!r}; expected true or false.")
        layer.streaming = entry["streaming"]
    if "output" in entry:
        if not isinstance(entry["output"], bool):
            raise ZooImportError(f"{source}: layer {index} has output: {entry['output']!r}; "
                                 f"expected true or false.")
        layer.output = entry["output"]
    if op == "passthrough" and layer.pooling is None:
        refuse(op_keys[0], "plain copy layer (a passthrough without pooling)")
    return layer


def _grouped(problems):
    """One clause per YAML key: the layers using it (with their values) and what is missing."""
    groups = {}
    for key, what, where in problems:
        groups.setdefault((key, what), []).append(where)
    clauses = []
    for (key, what), places in groups.items():
        shown = ", ".join(places[:4]) + (f", ... ({len(places)} layers)" if len(places) > 4
                                         else "")
        clauses.append(f"`{key}` (layer {shown}): the workbench has no {what}")
    return "; ".join(clauses)


def read_network(path):
    """Read a network YAML of the synthesis tool.

    Args:
        path: the YAML file (e.g. `networks/mnist-chw-ai85.yaml`).

    Returns:
        A `Network`.

    Raises:
        ZooImportError: the file is missing or malformed, or it uses something the workbench
            cannot represent yet; the message lists every such layer with its YAML key and
            what is missing.
    """
    path = Path(path)
    source = str(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ZooImportError(f"{source}: cannot read the network description: {err}.") from err
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list) \
            or not config["layers"] or "arch" not in config or "dataset" not in config:
        raise ZooImportError(f"{source}: a network description has `arch`, `dataset` and a "
                             f"non-empty `layers` list.")
    problems = [(key, f"top-level `{key}` settings", "top level")
                for key in config if key not in TOP_LEVEL]
    layers, names = [], {}
    for index, entry in enumerate(config["layers"]):
        if not isinstance(entry, dict):
            raise ZooImportError(f"{source}: layer {index} is not a mapping of keys.")
        layers.append(_layer(index, entry, source, problems, names))
        if "name" in entry:
            names[entry["name"]] = index
    concatenated = {i for layer in layers if layer.inputs and len(layer.inputs) > 1
                    for i in layer.inputs}
    for layer in layers:
        if layer.write_gap and layer.index not in concatenated:
            problems.append(("write_gap", "interleaved outputs other than a concatenation's "
                             "inputs", f"{layer.index}: {layer.write_gap}"))
    if problems:
        raise ZooImportError(f"{source} (arch {config['arch']}) cannot be imported yet: "
                             + _grouped(problems) + ".")
    return Network(arch=str(config["arch"]), dataset=str(config["dataset"]), layers=layers,
                   path=path)


def sample_file(network, folders=None):
    """The vendor's sample input for a network, found as the tool finds it.

    The tool reads `tests/sample_<dataset lower-case>.npy` (`izer/izer.py`). When that file
    does not exist, a single file whose name matches after dropping everything but letters and
    digits is taken (the vendor ships `sample_cifar-10.npy` for `dataset: CIFAR10`).

    Args:
        network: a `Network`.
        folders: folders to look in; default: `tests/` next to the YAML's folder (the tool's
            layout, `networks/` beside `tests/`).

    Returns:
        The `Path` of the sample.

    Raises:
        ZooImportError: no such sample.
    """
    folders = [Path(f) for f in folders] if folders else [network.path.parent.parent / "tests"]
    name = f"sample_{network.dataset.lower()}.npy"
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    key = re.sub(r"[^0-9a-z]", "", network.dataset.lower())
    for folder in folders:
        found = [p for p in sorted(folder.glob("sample_*.npy"))
                 if re.sub(r"[^0-9a-z]", "", p.stem[len("sample_"):].lower()) == key]
        if len(found) == 1:
            return found[0]
    raise ZooImportError(f"No sample input {name} for dataset {network.dataset!r} in "
                         f"{', '.join(str(f) for f in folders)}; pass input_shape= (channels "
                         f"first, as the tool's samples: (C, H, W) or (C, L)).")
