"""What `ai8xize.py --verbose` logs about the network: its latency table and operation count.

The tool prints (`izer/backend/max7800x.py`, `izer/stats.py`)::

    ESTIMATED LATENCY
    Startup                   1
    Layer 0              15,420
                     ==========
    Total                15,421 cycles

    SUMMARY OF OPS
    Hardware: 6,235,200 ops (6,220,800 macc; 14,400 comp; 0 add; 0 mul; 0 bitwise)
      Layer 0: 6,235,200 ops (6,220,800 macc; 14,400 comp; 0 add; 0 mul; 0 bitwise)

The latency table appears only with `--verbose` and only for devices the tool has a latency
model for (MAX78000); a layer marked `(est)` is a streaming layer the tool only estimates.
"""

import re

__all__ = ["parse_latency", "parse_ops", "OPS"]

OPS = ("macc", "comp", "add", "mul", "bitwise")

_LAT_LAYER = re.compile(r"^Layer (\d+)\S*(?: \([^)]*\))?\s+([\d,]+)( \(est\))?$")
_LAT_STARTUP = re.compile(r"^Startup\s+([\d,]+)$")
_LAT_TOTAL = re.compile(r"^Total\s+([\d,]+) cycles")
_OPS_LAYER = re.compile(r"^Layer (\d+)[^:]*: ([\d,]+) ops \(([\d,]+) macc; ([\d,]+) comp; "
                        r"([\d,]+) add; ([\d,]+) mul; ([\d,]+) bitwise\)")


def _int(text):
    return int(text.replace(",", ""))


def parse_latency(text):
    """The tool's `ESTIMATED LATENCY` table.

    Args:
        text: the tool's output or `log.txt`.

    Returns:
        None when the log has no table (run without `--verbose`, or a device without a
        latency model), else a dict: `startup` cycles, `layers` (cycles per layer, in the
        tool's layer order), `total` cycles and `estimated` (the layers marked `(est)`).
    """
    lines = [line.strip() for line in text.splitlines()]
    try:
        start = lines.index("ESTIMATED LATENCY")
    except ValueError:
        return None
    found = {"startup": 0, "layers": [], "total": None, "estimated": []}
    for line in lines[start + 1:]:
        if m := _LAT_STARTUP.match(line):
            found["startup"] = _int(m.group(1))
        elif m := _LAT_LAYER.match(line):
            found["layers"].append(_int(m.group(2)))
            if m.group(3):
                found["estimated"].append(int(m.group(1)))
        elif m := _LAT_TOTAL.match(line):
            found["total"] = _int(m.group(1))
            break
        elif line and not line.startswith("="):
            break
    return found


def parse_ops(text):
    """The tool's per-layer operation count (`SUMMARY OF OPS`).

    Returns:
        A list of dicts, one per layer in the tool's order, with the keys of `OPS` and
        `ops` (their sum); empty when the log has no summary.
    """
    lines = [line.strip() for line in text.splitlines()]
    try:
        start = lines.index("SUMMARY OF OPS")
    except ValueError:
        return []
    layers = []
    for line in lines[start + 2:]:
        m = _OPS_LAYER.match(line)
        if not m:
            break
        values = [_int(v) for v in m.groups()[1:]]
        layers.append({"ops": values[0], **dict(zip(OPS, values[1:]))})
    return layers
