"""The tool's known answer as the C code checks it: every output layer, byte by byte.

`ai8xize.py` writes the known-answer test to `sampleoutput.h`: blocks of (address, byte-lane
mask, count, 32-bit data-memory words), ended by 0, covering every layer marked `output: true`
and the last layer (`izer/unload.py: verify`). Its `--sample-numpy-filename` keeps only the
last layer's values, so a network with several outputs is compared here, in data memory:
`expected_bytes` lays one layer's output out as the tool does (HWC; 4 channels per word on
the layer's output processors, one word per pass, 4 words per pixel for a 32-bit output,
`write_gap` words between pixels) and `compare_memory` checks it against the header.
"""

import re

import numpy as np

__all__ = ["MEMORY", "parse_sample_output", "expected_bytes", "output_layouts",
           "compare_memory"]

MEMORY = {
    "MAX78000": {"base": 0x50400000, "group": 0x400000, "instance_words": 2048},
    "MAX78002": {"base": 0x51800000, "group": 0x1000000, "instance_words": 8192},
}
"""Data-memory addresses (`tornadocnn.py`: APB_BASE + C_SRAM_BASE, C_GROUP_OFFS, INSTANCE_SIZE)."""
PROCESSORS, PER_GROUP, PER_MEMORY = 64, 16, 4


def parse_sample_output(text):
    """The bytes a `sampleoutput.h` checks: `{byte address: value}`.

    Raises:
        ValueError: no `SAMPLE_OUTPUT` array in the text.
    """
    match = re.search(r"#define\s+SAMPLE_OUTPUT\s*\{(.*?)\}", text, re.S)
    if match is None:
        raise ValueError("no SAMPLE_OUTPUT array in sampleoutput.h")
    words = [int(w, 16) for w in re.findall(r"0x[0-9a-fA-F]+", match.group(1))]
    found, i = {}, 0
    while i + 2 < len(words) and words[i]:
        addr, mask, count = words[i:i + 3]
        for k, value in enumerate(words[i + 3:i + 3 + count]):
            for lane in range(4):
                if mask >> (8 * lane) & 0xFF:
                    found[addr + 4 * k + lane] = value >> (8 * lane) & 0xFF
        i += 3 + count
    return found


def expected_bytes(values, *, device, processors, out_offset, output_width=8, write_gap=0):
    """One layer's output in data memory as the tool checks it: `{byte address: value}`.

    Args:
        values: the output, channel-first (C, H, W) or (C, L) / (C,), integers.
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.
        processors: the layer's output processor mask.
        out_offset: its `out_offset` in bytes.
        output_width: 8, or 32 for a wide output.
        write_gap: its `write_gap`.
    """
    mem = MEMORY[device]
    values = np.asarray(values, dtype=np.int64)
    channels = values.shape[0]
    flat = values.reshape(channels, -1)
    passes = -(-channels // PROCESSORS)
    per_pass = -(-channels // passes)
    if channels > PROCESSORS:
        per_pass = min(-(-per_pass // PER_MEMORY) * PER_MEMORY, PROCESSORS)
    procs = [p for p in range(PROCESSORS) if processors >> p & 1]
    size = output_width // 8
    width = passes * size
    found = {}
    for c in range(channels):
        expand, k = divmod(c, per_pass)
        p = procs[k]
        base = p & ~(PER_MEMORY - 1)
        lane = p % PER_MEMORY
        word = (base % PER_GROUP) * mem["instance_words"] | (base // PER_GROUP) * mem["group"] // 4
        for pixel in range(flat.shape[1]):
            offset = mem["base"] + out_offset + (
                word + (pixel * width + expand * size) * (write_gap + 1)) * 4
            value = int(flat[c, pixel])
            if size == 1:
                found[offset + lane] = value & 0xFF
            else:
                for b in range(4):
                    found[offset + 4 * lane + b] = (value & 0xFFFFFFFF) >> (8 * b) & 0xFF
    return found


def _mask(value):
    return int(str(value), 16) if isinstance(value, str) else int(value)


def output_layouts(layers, out_channels):
    """Where the tool writes each output layer of a network YAML.

    Args:
        layers: the YAML's `layers` list (dicts).
        out_channels: `{layer index: output channels}` of the output layers.

    Returns:
        `{layer index: dict(processors=, out_offset=, output_width=, write_gap=)}` for every
        layer marked `output: true`, and the last layer.
    """
    last = len(layers) - 1
    wanted = [i for i, entry in enumerate(layers) if entry.get("output")]
    if last not in wanted:
        wanted.append(last)
    layouts = {}
    for i in wanted:
        entry = layers[i]
        if "output_processors" in entry:
            mask = _mask(entry["output_processors"])
        elif i < last:
            mask = _mask(layers[i + 1]["processors"])
        else:  # the tool's default for the last layer: packed from processor 0
            channels = out_channels[i]
            passes = -(-channels // PROCESSORS)
            chunk = -(-channels // passes)
            if channels > PROCESSORS:
                chunk = min(-(-chunk // PER_MEMORY) * PER_MEMORY, PROCESSORS)
            mask = (1 << chunk) - 1
        layouts[i] = dict(processors=mask, out_offset=_mask(entry.get("out_offset", 0)),
                          output_width=int(entry.get("output_width", 8)),
                          write_gap=int(entry.get("write_gap", 0)))
    return layouts


def compare_memory(ours, tools):
    """`(mismatches, values, first mismatch or None)` between two byte maps: every byte the
    tool checks must be ours, and every byte of ours must be checked."""
    keys = sorted(set(ours) | set(tools))
    wrong = [k for k in keys if ours.get(k) != tools.get(k)]
    first = None
    if wrong:
        k = wrong[0]
        first = {"address": f"0x{k:08x}", "ours": ours.get(k), "tool": tools.get(k)}
    return len(wrong), len(keys), first
