"""`check_model`: can a Keras model run on the accelerator, and what does it use?

Two kinds of rules: the ones a layer breaks on its own (`ai8x_nb.check.rules`), and the ones
about how the layers share the device's memories, which `ai8x_nb.placement` decides exactly as
the synthesis YAML will be written. The report shows that placement: per layer its processor
mask, its kernel words and column, and its data offsets.
"""

import logging

from ai8x_nb.placement.processors import allocate_processors, uses_chw
from ai8x_nb.check.cost import STARTUP_CYCLES, layer_costs
from ai8x_nb.check.report import CheckReport, LayerRow
from ai8x_nb.check.rules import layer_errors
from ai8x_nb.check.streaming import streaming_errors
from ai8x_nb.devices import get_device
from ai8x_nb.errors import DeviceLimitError, ModelCheckError
from ai8x_nb.graph import MODEL_INPUT, is_subclassed, shape_size, trace_model
from ai8x_nb.placement import layer_demands, place_model

__all__ = ["check_model"]

logger = logging.getLogger(__name__)

_WEIGHT_OPS = ("conv2d", "conv1d", "convtranspose2d", "linear")
_WORD_BYTES = 9


def _pool_text(layer):
    if getattr(layer, "pooling", None) is None:
        return ""
    size = "x".join(str(k) for k in layer.pool_size)
    strides = set(layer.pool_strides)
    stride = str(layer.pool_strides[0]) if len(strides) == 1 else "x".join(
        str(s) for s in layer.pool_strides)
    dilation = getattr(layer, "pool_dilation", None)
    dilated = f" d{'x'.join(str(d) for d in dilation)}" if dilation else ""
    return f"{layer.pooling} {size}/{stride}{dilated}"


def _kernel_text(hw):
    layer = hw.layer
    if hw.op in ("conv2d", "convtranspose2d"):
        return f"{layer.kernel_size}x{layer.kernel_size}"
    if hw.op == "conv1d":
        dilation = getattr(layer, "dilation", 1)
        return f"k{layer.kernel_size}" + (f" d{dilation}" if dilation > 1 else "")
    if hw.op == "linear":
        return "1x1"
    return ""


def _bias_in_use(layer):
    return getattr(layer, "bias", None) is not None and getattr(layer, "_bias_in_use", True)


def _binary_errors(graph):
    """The tool switches binary weights on for the whole accelerator (a control-register bit):
    "Cannot combine binary quantization with 1-bit quantization"."""
    weighted = [hw.layer for hw in graph.layers
                if hw.is_hardware and getattr(hw.layer, "has_operator", False)]
    binary = [layer.name for layer in weighted if getattr(layer, "binary_weights", False)]
    one_bit = [layer.name for layer in weighted
               if not getattr(layer, "binary_weights", False) and layer.weight_bits == 1]
    if binary and one_bit:
        yield (f"Layers {', '.join(repr(n) for n in binary)} have binary (+-1) weights and "
               f"{', '.join(repr(n) for n in one_bit)} 1-bit weights; the synthesis tool "
               f"cannot combine them in one network (binary mode is one switch for the whole "
               f"accelerator). Use weight_bits=2 (or 'binary') for the 1-bit layers.")


class _Checker:
    """Checks the layers one by one, then places the whole model."""

    def __init__(self, model, dev):
        self.model, self.dev = model, dev
        self.errors, self.warnings, self.rows = [], [], []
        self.data_failed = set()
        self.words_failed = set()
        self.placement = None

    def run(self, graph):
        self.errors.extend(graph.problems)
        self.errors.extend(streaming_errors(graph, self.dev))
        self.errors.extend(_binary_errors(graph))
        for hw in graph.layers:
            self.errors.extend(hw.problems)
            if hw.is_hardware:
                self.rows.append(self._row(hw, graph))
            else:
                self.rows.append(LayerRow(
                    hw.index, hw.name, hw.op, tuple(hw.in_shape), tuple(hw.out_shape),
                    hw.in_shape[-1] if hw.in_shape else 0,
                    hw.out_shape[-1] if hw.out_shape else 0, data_format="", passes=0,
                    counted=False, notes=f"Keras {type(hw.layer).__name__}"))
        if self._placeable(graph):
            self._place(graph)

    def _row(self, hw, graph):
        dev, layer = self.dev, hw.layer
        if getattr(layer, "device", dev) != dev:
            self.warnings.append(
                f"Layer '{hw.name}' was built for {layer.device.name}; it is checked against "
                f"{dev.name}. Rebuild the model with device='{dev.name}'.")
        in_ch, out_ch = int(hw.in_channels), int(hw.out_channels)
        row = LayerRow(hw.index, hw.name, hw.op, tuple(hw.in_shape), tuple(hw.out_shape),
                       in_ch, out_ch, pooling=_pool_text(layer), kernel=_kernel_text(hw))
        row.weight_bits = int(getattr(layer, "weight_bits", 8))
        row.eltwise, row.write_gap = hw.eltwise or "", int(hw.write_gap)
        if hw.add_layer is not None:
            row.notes = (f"{hw.eltwise} of {list(hw.inputs)} first ("
                         f"{type(hw.add_layer).__name__} '{hw.add_layer.name}')")
        elif hw.concat_layer is not None:
            row.notes = (f"reads {list(hw.inputs)} concatenated (Concatenate "
                         f"'{hw.concat_layer.name}')")
        elif hw.copy_of is not None:
            row.notes = f"copies layer {hw.copy_of} into an interleaved buffer"
        if hw.streaming:
            row.notes = "; ".join(n for n in (row.notes, "streams (circular input buffer)") if n)
        if getattr(layer, "binary_weights", False):
            row.notes = "; ".join(n for n in (row.notes, "binary (+-1) weights") if n)
        if hw.op in _WEIGHT_OPS:
            row.weights = shape_size(layer.kernel.shape)
            row.bias_bytes = out_ch if _bias_in_use(layer) else 0
        wide = bool(getattr(layer, "wide", False))
        row.in_bytes = shape_size(hw.flatten_from or hw.in_shape)
        row.out_bytes = shape_size(hw.out_shape) * (4 if wide else 1)
        first = hw.index == 0 and tuple(hw.inputs) == (MODEL_INPUT,)
        first = first and not hw.streaming  # the FIFOs feed a streaming input in HWC
        chw = uses_chw(in_ch, dev, first_layer=first)
        row.data_format = "CHW" if chw else "HWC"
        if 1 <= in_ch <= dev.max_channels:
            row.processor_mask, row.passes, row.processors = allocate_processors(
                in_ch, dev, first_layer=first)
        for kind, message in layer_errors(hw, dev, chw=chw, last=hw.index == graph.output_index):
            self.errors.append(message)
            if kind == "data":
                self.data_failed.add(hw.index)
        return row

    def _placeable(self, graph):
        """Placement needs a traced chain of supported layers with legal channel counts."""
        if graph.problems or not graph.layers:
            return False
        return all(hw.is_hardware and not hw.problems
                   and 1 <= int(hw.in_channels) <= self.dev.max_channels
                   and 1 <= int(hw.out_channels) <= self.dev.max_channels
                   for hw in graph.layers)

    def _place(self, graph):
        dev = self.dev
        try:
            demands = layer_demands(graph, dev)
            placement = place_model(graph, dev)
        except DeviceLimitError as err:
            self.errors.append(str(err))
            return
        self.placement = placement
        for row, cost in zip(self.rows, layer_costs(graph, placement)):
            row.cost = cost
        for row, d, lp in zip(self.rows, demands, placement.layers):
            row.processor_mask, row.passes, row.processors = lp.processors, lp.passes, lp.count
            row.output_mask = lp.output_processors
            row.in_offset, row.out_offset = lp.in_offset, lp.out_offset
            row.in_instance_bytes, row.out_instance_bytes = lp.in_bytes, lp.out_bytes
            row.bias_quadrant = lp.bias_quadrant
            if d.weighted:
                row.weight_words_per_processor = d.words
                row.weight_words = d.words * d.count
                row.weight_bytes = row.weight_words * _WORD_BYTES
                row.kernel_offset = lp.kernel_offset
                width = max(dev.weight_words)
                if d.words > width:
                    self.words_failed.add(d.index)
                    self.errors.append(
                        f"Layer '{d.name}' needs {d.words} weight words on one processor; a "
                        f"{dev.name} processor holds {width} 72-bit words (weight memory over "
                        f"budget). Use fewer output channels, weight_bits=4/2/1, or split the "
                        f"layer.")
        for index, kind, message in placement.problems:
            if kind == "data" and index in self.data_failed:
                continue
            if kind == "kernels" and index in self.words_failed:
                continue
            self.errors.append(message)

    def finish(self, model, folded, clock_mhz=None):
        dev = self.dev
        layers = sum(1 for r in self.rows if r.counted and r.op != "unsupported")
        if dev.avg_pool_reset_after_eltwise:
            # The tool inserts a layer that resets the average pool after an element-wise one.
            layers += sum(1 for r, prev in zip(self.rows[1:], self.rows)
                          if prev.eltwise and r.pooling.startswith("avg"))
        weight_bytes = sum(r.weight_bytes for r in self.rows)
        bias_bytes = sum(r.bias_bytes for r in self.rows)
        if layers > dev.max_layers:
            more = " or use MAX78002 (128 layers)" if dev.max_layers < 128 else ""
            self.error(f"Model has {layers} hardware layers; {dev.name} runs at most "
                       f"{dev.max_layers} layers (every pool-only and element-wise layer "
                       f"counts). Use fewer layers, fuse pooling into the convolutions{more}.")
        if self.rows and not any(r.op in _WEIGHT_OPS for r in self.rows):
            self.error("Model has no layer with weights; the synthesis tool needs at least one "
                       "convolution or linear layer. Add one (e.g. a 1x1 Conv2D).")
        if weight_bytes > dev.weight_memory_bytes:
            self.error(f"Weights need {weight_bytes} bytes; {dev.name} weight memory holds "
                       f"{dev.weight_memory_bytes} bytes (weight memory over budget). Use fewer "
                       f"channels, 1x1 kernels or weight_bits=4/2/1.")
        if bias_bytes > dev.bias_memory_bytes:
            self.error(f"Biases need {bias_bytes} bytes; {dev.name} bias memory holds "
                       f"{dev.bias_memory_bytes} bytes (bias memory over budget). Use "
                       f"use_bias=False on some layers.")
        data_max = max((r.in_instance_bytes + r.out_instance_bytes for r in self.rows), default=0)
        try:
            params = int(model.count_params())
        except ValueError:
            params = 0
        placement = self.placement
        fullest, top = placement.fullest_processor if placement else (0, 0)
        return {
            "layers": layers, "max_layers": dev.max_layers,
            "weight_bytes": weight_bytes, "weight_memory_bytes": dev.weight_memory_bytes,
            "weight_words_max_processor": int(top),
            "weight_words_per_processor": int(dev.weight_words[fullest]),
            "fullest_processor": int(fullest),
            "bias_bytes": bias_bytes, "bias_memory_bytes": dev.bias_memory_bytes,
            "bias_bytes_per_quadrant": placement.bias_used if placement else None,
            "bias_quadrants": placement.bias_quadrants if placement else None,
            "data_instance_bytes_max": data_max, "data_instance_bytes": dev.data_instance_bytes,
            "parameters": params, "folded_layers": list(folded),
            "placed": placement is not None,
            **_latency_totals(self.rows, dev, placement is not None, clock_mhz),
        }

    def error(self, text):
        self.errors.append(text)


_OPS = ("macc", "comp", "add", "mul", "bitwise")


def _latency_totals(rows, dev, placed, clock_mhz):
    """The network's latency and operation totals (None without a placement)."""
    clock = float(dev.cnn_clock_mhz if clock_mhz is None else clock_mhz)
    ops = {k: sum(getattr(r, k) for r in rows) for k in _OPS}
    ops["total"] = sum(ops.values())
    cycles = STARTUP_CYCLES + sum(r.cycles for r in rows) if placed else None
    return {"latency_cycles": cycles, "clock_mhz": clock,
            "latency_us": None if cycles is None else round(cycles / clock, 2),
            "latency_estimate": not dev.latency_model,
            "ops": ops if placed else None}


def check_model(model, device=None, *, clock_mhz=None):
    """Check that a Keras model can run on the accelerator and report what it uses.

    Walks the hardware layers (`ai8x_nb.graph.trace_model`), checks each against the device's
    rules (`ai8x_nb.check.rules`), then places the model on the device the way the synthesis
    YAML will (`ai8x_nb.placement`): processor masks, kernel memory as the synthesis tool
    allocates it, bias quadrants and data-memory offsets. The report shows that placement, so
    what it accepts is what the tool accepts.

    Args:
        model: a built `keras.Sequential` or functional `keras.Model`.
        device: a `Device` or device name, "MAX78000" (default) or "MAX78002".
        clock_mhz: the accelerator clock for the latency in microseconds; default the
            device's `cnn_clock_mhz` (50 MHz).

    Returns:
        A `CheckReport`: `ok`, `errors`, `warnings`, `rows`, `totals`; `str(report)` is a table.
        Each row has the layer's `cycles` and operations (`macc`, `comp`, `add`, `mul`,
        `bitwise`) as the synthesis tool counts them (`ai8x_nb.check.cost`); the totals have
        `latency_cycles`, `latency_us` at `clock_mhz` and `ops` (MAX78002: the MAX78000
        formula, `latency_estimate` True: the tool has no MAX78002 latency model).
        Problems are collected, not raised; call `report.raise_if_errors()` to raise.

    Raises:
        UnknownDeviceError: for an unknown device name.
        ModelCheckError: `clock_mhz` is not a positive number.

    Example:

    >>> report = check_model(model, "MAX78000")
    >>> print(report)
    >>> report.raise_if_errors()
    """
    dev = get_device(device)
    if clock_mhz is not None and not (isinstance(clock_mhz, (int, float)) and clock_mhz > 0):
        raise ModelCheckError(f"clock_mhz={clock_mhz!r}: the accelerator clock must be a "
                              f"positive number of MHz ({dev.name} default: "
                              f"{dev.cnn_clock_mhz:g}). Pass e.g. clock_mhz=50.")
    checker = _Checker(model, dev)
    name = getattr(model, "name", type(model).__name__)
    if not is_subclassed(model) and not model.built:
        checker.error(f"Model '{name}' is not built: give it an input shape "
                      f"(keras.Input(shape=...) as its first layer) before checking it.")
        return CheckReport(dev, [], _empty_totals(dev), checker.errors, [], name)
    graph = trace_model(model)
    checker.run(graph)
    totals = checker.finish(model, graph.folded, clock_mhz)
    logger.debug("checked %s on %s: %d error(s)", name, dev.name, len(checker.errors))
    return CheckReport(dev, checker.rows, totals, checker.errors, checker.warnings, name,
                       placement=checker.placement)


def _empty_totals(dev):
    return {
        "layers": 0, "max_layers": dev.max_layers, "weight_bytes": 0,
        "weight_memory_bytes": dev.weight_memory_bytes, "weight_words_max_processor": 0,
        "weight_words_per_processor": max(dev.weight_words), "fullest_processor": 0,
        "bias_bytes": 0, "bias_memory_bytes": dev.bias_memory_bytes,
        "bias_bytes_per_quadrant": None, "bias_quadrants": None,
        "data_instance_bytes_max": 0, "data_instance_bytes": dev.data_instance_bytes,
        "parameters": 0, "folded_layers": [], "placed": False,
        **_latency_totals([], dev, False, None),
    }
