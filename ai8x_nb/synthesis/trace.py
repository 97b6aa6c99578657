"""A layer-by-layer trace: our simulator's output of every hardware layer against the tool's.

With `--verbose` (and without `--short-log`) `ai8xize.py` logs, per layer, a section
`LAYER <n> (<OP>)...` with its input, kernels, pooled data and outputs, each a header such as
`72x32x32 ACTIVATED OUTPUT (RELU):` or `MAX POOL 2x2 WITH STRIDE 2/2 (20, 30, 30) ->
[20, 15, 15]:` followed by the values as NumPy prints them (channel-first). The last data block
of a section is what the layer leaves in data memory: the activated (or unactivated, or 32-bit
full-resolution) convolution output, the element-wise result, the pooled data of a pool-only
layer, or the input of a plain passthrough.

The export holds our simulator's output of every layer for the same sample
(`samplelayers.npz`); `trace_layers` compares the two in layer order and names the first layer,
channel and position where they differ.
"""

import dataclasses
import re

import numpy as np

__all__ = ["LayerTrace", "parse_layer_outputs", "trace_layers"]

_SECTION = re.compile(r"^LAYER (\d+) \(")
_DIMS = re.compile(r"^(\d+(?:x\d+)*) [A-Z].*:$")
_ARROW = re.compile(r"-> \[([\d, ]+)\]")
_NUMBER = re.compile(r"-?\d+")
_SKIP = ("KERNEL", "BIAS", "WEIGHTS")


def _blocks(lines):
    """(header, value lines) of every data block in a section."""
    blocks, current = [], None
    for line in lines:
        text = line.strip()
        if text.endswith(":") and text[:1].isalnum() and not text.startswith("Channel"):
            current = (text, [])
            blocks.append(current)
        elif current is not None and text[:1] in "[-0123456789" and text:
            current[1].append(text)
    return blocks


def _shape(header):
    m = _ARROW.search(header)
    if m:
        return tuple(int(v) for v in m.group(1).split(","))
    m = _DIMS.match(header)
    return tuple(int(v) for v in m.group(1).split("x")) if m else None


def parse_layer_outputs(text):
    """Every layer's output as the tool logs it.

    Args:
        text: the tool's `log.txt` of a `--verbose` run without `--short-log`.

    Returns:
        A dict layer number -> `(header, int64 array)` (channel-first, in the shape of its
        header); layers whose last block could not be read are left out.
    """
    sections, number = {}, None
    for line in text.splitlines():
        m = _SECTION.match(line.strip())
        if m:
            number = int(m.group(1))
            sections[number] = []
        elif number is not None:
            if line.startswith("ESTIMATED LATENCY") or line.startswith("SUMMARY OF OPS"):
                number = None
            else:
                sections[number].append(line)
    outputs = {}
    for number, lines in sections.items():
        blocks = [b for b in _blocks(lines)
                  if b[1] and not any(word in b[0] for word in _SKIP)]
        if not blocks:
            continue
        header, rows = blocks[-1]
        values = np.array([int(v) for row in rows for v in _NUMBER.findall(row)],
                          dtype=np.int64)
        shape = _shape(header)
        if shape is None or int(np.prod(shape)) != values.size:
            continue
        outputs[number] = (header, values.reshape(shape))
    return outputs


@dataclasses.dataclass
class LayerTrace:
    """The outcome of a layer-by-layer comparison.

    Attributes:
        layers: hardware layers compared.
        first_difference: None when all are equal, else a dict: `layer` (number), `name`,
            `channel`, `position` (row, column / index within the channel), `ours`, `tool`,
            `differing` (values of that layer that differ), `values` (of that layer).
        missing: layers the tool's log did not show (not compared).
        note: why nothing could be compared, or "".
    """

    layers: int = 0
    first_difference: dict = None
    missing: list = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def equal(self):
        """True when every compared layer is equal and some were compared."""
        return self.first_difference is None and self.layers > 0 and not self.note

    def summary(self):
        """One line for a person."""
        if self.note:
            return f"trace: {self.note}"
        d = self.first_difference
        missed = (f" ({len(self.missing)} not in the tool's log: {self.missing})"
                  if self.missing else "")
        if d is None:
            return f"trace: all {self.layers} layers equal{missed}"
        return (f"trace: first difference at layer {d['layer']} ({d['name']}), channel "
                f"{d['channel']}, position {tuple(d['position'])}: ours {d['ours']}, the "
                f"tool's {d['tool']} ({d['differing']} of {d['values']} values of that layer "
                f"differ){missed}")

    def to_dict(self):
        return dataclasses.asdict(self)


def trace_layers(ours, tool, names=None):
    """Compare our per-layer outputs with the tool's, in layer order.

    Args:
        ours: a list of channel-first int arrays, one per hardware layer.
        tool: `parse_layer_outputs` of the tool's log.
        names: layer names for the message (default "layer <i>").

    Returns:
        A `LayerTrace`.
    """
    names = names or [f"layer {i}" for i in range(len(ours))]
    trace = LayerTrace()
    for i, mine in enumerate(ours):
        if i not in tool:
            trace.missing.append(i)
            continue
        trace.layers += 1
        theirs = tool[i][1]
        a, b = np.asarray(mine, dtype=np.int64).reshape(-1), theirs.reshape(-1)
        if a.size != b.size:
            trace.first_difference = {
                "layer": i, "name": names[i], "channel": None, "position": [],
                "ours": list(np.shape(mine)), "tool": list(theirs.shape),
                "differing": max(a.size, b.size), "values": max(a.size, b.size)}
            break
        diff = np.flatnonzero(a != b)
        if diff.size:
            index = np.unravel_index(int(diff[0]), theirs.shape)
            trace.first_difference = {
                "layer": i, "name": names[i], "channel": int(index[0]),
                "position": [int(v) for v in index[1:]], "ours": int(a[diff[0]]),
                "tool": int(b[diff[0]]), "differing": int(diff.size), "values": int(a.size)}
            break
    if not trace.layers:
        trace.note = "the tool's log shows no layer output to compare (run with --verbose)"
    return trace
