"""The result of a model check: one row per hardware layer, totals, errors and warnings."""

import dataclasses

from ai8x_nb.check.cost import LayerCost
from ai8x_nb.errors import ModelCheckError

__all__ = ["LayerRow", "CheckReport"]


@dataclasses.dataclass
class LayerRow:
    """What one hardware layer needs from the device.

    Attributes:
        index: position in the device's layer sequence.
        name: Keras layer name.
        op: "conv2d", "conv1d", "convtranspose2d", "linear", "passthrough", "add", "sub",
            "xor", "or" or "unsupported".
        in_shape / out_shape: channels-last shapes without batch (input before pooling).
        in_channels / out_channels: channels read and written (linear after Flatten: the
            channels before the Flatten).
        pooling: "max 2x2/2"-style description or "".
        kernel: "3x3", "1x1", "k5" (Conv1D), "" for layers without weights.
        data_format: "CHW" or "HWC" layout of the input.
        passes: input passes (ceil(C / 64) above 64 channels).
        processors: processors reading the input.
        processor_mask: the 64-bit input processor mask the synthesis YAML gets
            (`ai8x_nb.placement`; offset 0 when the model could not be placed).
        output_mask: the output processor mask (the next layer's `processor_mask`).
        weight_bits: weight bits (8 unless QAT says otherwise).
        weights: number of weights.
        weight_words_per_processor: 72-bit kernel words on each of its processors, counted as
            the synthesis tool counts them.
        kernel_offset: first kernel-memory column of those words (None: not placed).
        weight_words: 72-bit words over all its processors.
        weight_bytes: `weight_words * 9`.
        bias_bytes: one byte per output channel when the layer has a bias.
        bias_quadrant: the quadrant whose bias memory holds them.
        in_bytes / out_bytes: C*H*W of input and output (4 bytes per value when wide).
        in_offset / out_offset: data-memory offsets of input and output (the YAML
            `out_offset`).
        in_instance_bytes / out_instance_bytes: bytes per data-memory instance.
        counted: counts toward the device's layer limit.
        notes: short remarks.
        eltwise: "add", "sub", "xor" or "or" when the layer first combines its inputs
            element-wise, else "".
        write_gap: it writes its output interleaved with this many other operands.
        cost: the layer's `ai8x_nb.check.cost.LayerCost` (cycles and operations as the
            synthesis tool counts them; zeros when the model could not be placed), also read
            as `row.cycles`, `row.macc`, `row.comp`, `row.add`, `row.mul`, `row.bitwise` and
            `row.ops`.
    """

    index: int
    name: str
    op: str
    in_shape: tuple
    out_shape: tuple
    in_channels: int
    out_channels: int
    pooling: str = ""
    kernel: str = ""
    data_format: str = "HWC"
    passes: int = 1
    processors: int = 0
    processor_mask: int = 0
    output_mask: int = 0
    weight_bits: int = 8
    weights: int = 0
    weight_words_per_processor: int = 0
    kernel_offset: int = None
    weight_words: int = 0
    weight_bytes: int = 0
    bias_bytes: int = 0
    bias_quadrant: int = None
    in_bytes: int = 0
    out_bytes: int = 0
    in_offset: int = 0
    out_offset: int = 0
    in_instance_bytes: int = 0
    out_instance_bytes: int = 0
    counted: bool = True
    notes: str = ""
    eltwise: str = ""
    write_gap: int = 0
    cost: LayerCost = dataclasses.field(default_factory=LayerCost)

    cycles = property(lambda self: self.cost.cycles, doc="Accelerator clock cycles.")
    macc = property(lambda self: self.cost.macc, doc="Multiply-accumulates.")
    comp = property(lambda self: self.cost.comp, doc="Comparisons.")
    add = property(lambda self: self.cost.add, doc="Additions.")
    mul = property(lambda self: self.cost.mul, doc="Multiplications.")
    bitwise = property(lambda self: self.cost.bitwise, doc="Bitwise operations.")
    ops = property(lambda self: self.cost.ops, doc="All operations of the layer (the tool's sum).")

    def to_dict(self):
        """JSON-able dict; the mask as a hex string; the cost's fields at the top level."""
        d = dataclasses.asdict(self)
        d.update(d.pop("cost"))
        d["in_shape"], d["out_shape"] = list(self.in_shape), list(self.out_shape)
        d["processor_mask"] = f"0x{self.processor_mask:016x}"
        d["output_mask"] = f"0x{self.output_mask:016x}"
        d["in_offset"], d["out_offset"] = f"0x{self.in_offset:04x}", f"0x{self.out_offset:04x}"
        return d


_COLUMNS = (
    ("#", 3, lambda r: str(r.index)),
    ("layer", 18, lambda r: r.name),
    ("op", 15, lambda r: r.op + (f"+{r.eltwise}" if r.eltwise and r.op != r.eltwise else "")),
    ("pool", 10, lambda r: r.pooling),
    ("k", 4, lambda r: r.kernel),
    ("in", 13, lambda r: "x".join(str(s) for s in r.in_shape)),
    ("out", 13, lambda r: "x".join(str(s) for s in r.out_shape)),
    ("fmt", 3, lambda r: r.data_format),
    ("pass", 4, lambda r: str(r.passes)),
    ("procs", 5, lambda r: str(r.processors)),
    ("processors", 18, lambda r: f"0x{r.processor_mask:016x}" if r.processor_mask else ""),
    ("bits", 4, lambda r: str(r.weight_bits) if r.weights else ""),
    ("words/p", 7, lambda r: str(r.weight_words_per_processor) if r.weights else ""),
    ("at", 4, lambda r: "" if r.kernel_offset is None else str(r.kernel_offset)),
    ("w.bytes", 8, lambda r: str(r.weight_bytes)),
    ("bias", 5, lambda r: str(r.bias_bytes)),
    ("out_off", 7, lambda r: f"0x{r.out_offset:04x}" if r.processor_mask else ""),
    ("in.B/mem", 8, lambda r: str(r.in_instance_bytes)),
    ("out.B/mem", 9, lambda r: str(r.out_instance_bytes)),
    ("cycles", 9, lambda r: str(r.cycles) if r.cycles else ""),
    ("ops", 11, lambda r: str(r.ops) if r.ops else ""),
)


def _cell(text, width):
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "~"


def latency_lines(totals, device):
    """The latency and operation lines of a report's totals (empty when not placed)."""
    cycles = totals.get("latency_cycles")
    if cycles is None:
        return []
    how = ("estimate: the MAX78000 formula; ai8xize.py has no latency model for "
           f"{device.name}" if totals.get("latency_estimate") else
           "as ai8xize.py estimates it")
    ops = totals["ops"]
    return [f"latency       {cycles:>9} cycles = {totals['latency_us']:,.2f} us at "
            f"{totals['clock_mhz']:g} MHz ({how})",
            f"operations    {ops['total']:>9} ({ops['macc']} macc, {ops['comp']} comp, "
            f"{ops['add']} add, {ops['mul']} mul, {ops['bitwise']} bitwise)"]


@dataclasses.dataclass
class CheckReport:
    """Result of `check_model`.

    Attributes:
        device: the `Device` checked against.
        rows: one `LayerRow` per hardware layer (Keras layers that vanish are not listed).
        totals: dict of whole-model figures and their limits.
        errors: reasons the model cannot run on the device.
        warnings: things that may need attention but do not stop synthesis.
        model_name: the Keras model's name.
        placement: the `ai8x_nb.placement.Placement` the synthesis YAML will use (None when
            the model could not be placed, e.g. with unsupported layers).
    """

    device: object
    rows: list
    totals: dict
    errors: list
    warnings: list
    model_name: str = ""
    placement: object = None

    @property
    def ok(self):
        """True when there are no errors."""
        return not self.errors

    def raise_if_errors(self):
        """Raise `ModelCheckError` (with this report as `.report`) when there are errors."""
        if self.errors:
            lines = "\n".join(f"  - {e}" for e in self.errors)
            raise ModelCheckError(
                f"Model '{self.model_name}' cannot run on {self.device.name} "
                f"({len(self.errors)} error(s)):\n{lines}", report=self)
        return self

    def to_dict(self):
        """A JSON-able dict of the whole report."""
        return {
            "model": self.model_name,
            "device": self.device.name,
            "ok": self.ok,
            "rows": [r.to_dict() for r in self.rows],
            "totals": dict(self.totals),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def __str__(self):
        head = " ".join(_cell(name, w).ljust(w) for name, w, _ in _COLUMNS)
        lines = [f"Model '{self.model_name}' on {self.device.name}", head, "-" * len(head)]
        for row in self.rows:
            lines.append(" ".join(_cell(f(row), w).ljust(w) for _, w, f in _COLUMNS).rstrip())
        t = self.totals
        lines.append("-" * len(head))
        lines.append(f"layers        {t['layers']:>9} / {t['max_layers']}")
        lines.append(f"weight memory {t['weight_bytes']:>9} / {t['weight_memory_bytes']} bytes "
                     f"(fullest processor {t.get('fullest_processor', 0)}: "
                     f"{t['weight_words_max_processor']} / {t['weight_words_per_processor']} "
                     f"words, as the synthesis tool allocates them)")
        quadrants = t.get("bias_quadrants")
        used = t.get("bias_bytes_per_quadrant")
        per = (" (" + ", ".join(f"quadrant {q}: {used[q]}" for q in quadrants) + ")"
               if quadrants and used else "")
        lines.append(f"bias memory   {t['bias_bytes']:>9} / {t['bias_memory_bytes']} bytes{per}")
        lines.append(f"data memory   {t['data_instance_bytes_max']:>9} / "
                     f"{t['data_instance_bytes']} bytes per instance (largest input + output)")
        lines.append(f"parameters    {t['parameters']:>9}")
        lines.extend(latency_lines(t, self.device))
        for e in self.errors:
            lines.append(f"ERROR: {e}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        lines.append("OK" if self.ok else f"FAILED: {len(self.errors)} error(s)")
        return "\n".join(lines)
