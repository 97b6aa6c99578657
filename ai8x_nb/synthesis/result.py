"""What one run of the synthesis tool gave: verdict, known answers, memory use, diagnosis."""

import dataclasses
import re
from pathlib import Path

import numpy as np

__all__ = ["SynthesisResult", "compare_answers", "parse_resources", "diagnose", "tool_errors"]


@dataclasses.dataclass
class SynthesisResult:
    """The outcome of `ai8x_nb.synthesize`.

    Attributes:
        ok: the tool succeeded and its known answer equals `sampleoutput.npy`, value by value.
        export_dir: the export folder.
        project_dir: the C project the tool wrote (`<out>/<name>/`), or None.
        returncode: the tool's exit status.
        mismatches: number of known-answer values that differ (None when not compared).
        values: number of values compared.
        first_mismatch: `(index, ours, tool's)` of the first difference, or None.
        resources: the tool's memory figures, e.g. {"weight_bytes": 71148,
            "weight_total": 442368, "bias_bytes": 10, "bias_total": 2048}.
        check: `check_model`'s figures from the manifest, for comparison.
        error: the tool's own error lines (empty when it succeeded).
        diagnosis: a one-line explanation of a known failure, or None.
        files: the generated files (relative to `project_dir`).
        seconds: wall time of the tool.
        command: the command that ran (list of arguments, from the tool's folder).
        tool_dir: the tool's folder.
        firmware: the `FirmwareResult` of the C project's build (`synthesize(build=True)`
            after a PASS), or None.
        latency: the tool's latency table (`ai8x_nb.synthesis.toollog.parse_latency`:
            `startup`, `layers`, `total` cycles), or None (MAX78002: the tool has no model).
        ops: the tool's operation count per layer (`toollog.parse_ops`).
        trace: the layer-by-layer comparison (`synthesize(trace=True)`, a `LayerTrace`), or
            None.
    """

    ok: bool
    export_dir: Path
    project_dir: Path = None
    returncode: int = None
    mismatches: int = None
    values: int = 0
    first_mismatch: tuple = None
    resources: dict = dataclasses.field(default_factory=dict)
    check: dict = dataclasses.field(default_factory=dict)
    error: str = ""
    diagnosis: str = None
    files: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    command: list = dataclasses.field(default_factory=list)
    tool_dir: Path = None
    firmware: object = None
    latency: dict = None
    ops: list = dataclasses.field(default_factory=list)
    trace: object = None

    @property
    def verdict(self):
        """"PASS" or "FAIL"."""
        return "PASS" if self.ok else "FAIL"

    def to_dict(self):
        """JSON-able summary (stored in `manifest.json` under `synthesis`, the firmware under
        `firmware`)."""
        return {"verdict": self.verdict, "ok": bool(self.ok),
                "project_dir": str(self.project_dir) if self.project_dir else None,
                "returncode": self.returncode, "mismatches": self.mismatches,
                "values": int(self.values),
                "first_mismatch": list(self.first_mismatch) if self.first_mismatch else None,
                "resources": dict(self.resources), "error": self.error,
                "diagnosis": self.diagnosis, "files": list(self.files),
                "seconds": round(float(self.seconds), 2), "tool_dir": str(self.tool_dir),
                "command": [str(a) for a in self.command],
                "latency": self.latency, "ops": list(self.ops),
                "trace": self.trace.to_dict() if self.trace is not None else None,
                "firmware": self.firmware.to_dict() if self.firmware is not None else None}

    def summary(self):
        """A few lines for a person: verdict, where the C code is, memory, error."""
        lines = []
        if self.ok:
            lines.append(f"PASS: ai8xize.py accepted the export and its known answer equals "
                         f"sampleoutput.npy ({self.values} values) [{self.seconds:.1f} s]")
        elif self.returncode not in (0, None):
            lines.append(f"FAIL: ai8xize.py rejected the export (exit {self.returncode})")
        elif self.mismatches:
            index, ours, tool = self.first_mismatch
            lines.append(f"FAIL: the tool's known answer differs from sampleoutput.npy in "
                         f"{self.mismatches} of {self.values} values (first at {index}: ours "
                         f"{ours}, the tool's {tool})")
        else:
            lines.append(f"FAIL: {self.error or 'the known answers could not be compared'}")
        if self.project_dir and self.returncode == 0:
            lines.append(f"C project: {self.project_dir} ({', '.join(self.files)})")
        lines.extend(self._memory_lines())
        if self.latency and self.latency.get("total") is not None:
            ours = (self.check or {}).get("latency_cycles")
            lines.append(f"latency: {self.latency['total']:,} cycles (ai8xize.py)"
                         + (f"; check_model: {ours:,} cycles" if ours is not None else ""))
        if self.trace is not None:
            lines.append(self.trace.summary())
        if self.error and not self.ok:
            lines.append("tool error: " + self.error.replace("\n", "\n            "))
        if self.diagnosis:
            lines.append(f"diagnosis: {self.diagnosis}")
        if self.firmware is not None:
            lines.append(self.firmware.summary())
        return "\n".join(lines)

    def _memory_lines(self):
        r, c = self.resources, self.check or {}
        lines = []
        if "weight_bytes" in r:
            ours = (f"; check_model: {c['weight_bytes']:,} bytes, fullest processor "
                    f"{c.get('weight_words_max_processor')} / {c.get('weight_words_per_processor')}"
                    f" words" if "weight_bytes" in c else "")
            lines.append(f"weight memory: {r['weight_bytes']:,} of {r['weight_total']:,} bytes "
                         f"(ai8xize.py){ours}")
        if "bias_bytes" in r:
            ours = f"; check_model: {c['bias_bytes']:,} bytes" if "bias_bytes" in c else ""
            lines.append(f"bias memory:   {r['bias_bytes']:,} of {r['bias_total']:,} bytes "
                         f"(ai8xize.py){ours}")
        return lines

    def __str__(self):
        return self.summary()


def compare_answers(ours, tool):
    """Compare our known answer with the tool's, value by value.

    Both are channel-first; the tool's always has (C, H, W) (a 1D or flat output gets
    trailing axes of 1), so shapes are compared without axes of length 1 at the end.

    Returns:
        `(mismatches, values, first_mismatch)`; a shape difference counts every value.
    """
    ours, tool = np.asarray(ours, dtype=np.int64), np.asarray(tool, dtype=np.int64)

    def core(shape):
        shape = list(shape)
        while len(shape) > 1 and shape[-1] == 1:
            shape.pop()
        return tuple(shape)

    if core(ours.shape) != core(tool.shape):
        return max(ours.size, tool.size), max(ours.size, tool.size), \
            ("shape", list(ours.shape), list(tool.shape))
    a, b = ours.reshape(-1), tool.reshape(-1)
    diff = np.flatnonzero(a != b)
    first = None
    if diff.size:
        i = int(diff[0])
        first = ([int(v) for v in np.unravel_index(i, ours.shape)], int(a[i]), int(b[i]))
    return int(diff.size), int(a.size), first


_RESOURCE = re.compile(r"^(Weight|Bias) memory:\s+([\d,]+) bytes out of ([\d,]+) bytes")


def parse_resources(text):
    """The tool's "RESOURCE USAGE" figures from its log."""
    found = {}
    for line in text.splitlines():
        m = _RESOURCE.match(line.strip())
        if m:
            kind = m.group(1).lower()
            found[f"{kind}_bytes"] = int(m.group(2).replace(",", ""))
            found[f"{kind}_total"] = int(m.group(3).replace(",", ""))
    return found


def tool_errors(text):
    """The tool's own error lines (`ERROR: ...`, a Python exception), at most 12 lines."""
    lines = [l.rstrip() for l in text.splitlines()]
    errors = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("ERROR"):
            message = line.strip()
            if message.rstrip(":") == "ERROR":  # the message follows on the next line
                message = next((f"ERROR: {l.strip()}" for l in lines[i + 1:] if l.strip()),
                               message)
            if message not in errors:
                errors.append(message)
    if not errors and "Traceback (most recent call last)" in text:
        tail = [l for l in lines if l.strip()]
        errors = tail[-3:]
    return "\n".join(errors[:12])


_DIAGNOSES = (
    ("Kernel memory exhausted",
     "the layers' kernels do not fit the processors the YAML assigns (kernel memory is "
     "allocated per processor across all layers); run ai8x-nb check and reduce the channels "
     "or weight bits of the largest layers."),
    ("Cannot configure `kernel_size` for fully connected",
     "the YAML gives a linear (MLP) layer a kernel_size; re-export with this version."),
    ("does not match network architecture",
     "the checkpoint's arch differs from the YAML's; re-export both together."),
    ("is overwriting input",
     "a layer's output overlaps its input in data memory (out_offset); the model needs more "
     "data memory than the layout gives it: make the largest feature maps smaller."),
    ("exceeds available data memory",
     "a feature map does not fit in data memory; make it smaller (pooling, fewer channels)."),
    ("weights_only", "the checkpoint holds something torch.load(weights_only=True) refuses; "
                     "re-export with this version."),
    ("No module named", "the tool's Python environment is incomplete; create it with the "
                        "tool's requirements.txt and point AI8X_SYNTHESIS_PYTHON at it."),
)


def diagnose(text):
    """A one-line diagnosis for a failure the project knows, or None."""
    for needle, message in _DIAGNOSES:
        if needle in text:
            return message
    return None
