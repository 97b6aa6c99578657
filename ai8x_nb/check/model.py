"""`check_model`: can a Keras model run on the accelerator, and what does it use?"""

import logging
import math

from ai8x_nb.check import memory
from ai8x_nb.check.processors import allocate_processors, uses_chw
from ai8x_nb.check.report import CheckReport, LayerRow
from ai8x_nb.devices import get_device
from ai8x_nb.errors import DeviceLimitError
from ai8x_nb.graph import MODEL_INPUT, is_subclassed, trace_model

__all__ = ["check_model"]

_log = logging.getLogger(__name__)

_WEIGHT_OPS = ("conv2d", "conv1d", "convtranspose2d", "linear")


def _prod(values):
    return int(math.prod(int(v) for v in values))


def _pool_text(layer):
    if getattr(layer, "pooling", None) is None:
        return ""
    size = "x".join(str(k) for k in layer.pool_size)
    strides = set(layer.pool_strides)
    stride = str(layer.pool_strides[0]) if len(strides) == 1 else "x".join(
        str(s) for s in layer.pool_strides)
    return f"{layer.pooling} {size}/{stride}"


def _weights_per_kernel(hw):
    """Weights of one (input channel, output channel) kernel; see `memory`."""
    layer = hw.layer
    if hw.op in ("conv2d", "convtranspose2d"):
        return layer.kernel_size ** 2, f"{layer.kernel_size}x{layer.kernel_size}"
    if hw.op == "conv1d":
        return layer.kernel_size, f"k{layer.kernel_size}"
    if hw.op == "linear":
        pixels = _prod(hw.flatten_from[:-1]) if hw.flatten_from is not None else 1
        return pixels, "1x1"
    return 0, ""


class _Checker:
    """Walks the hardware layers once, filling rows, errors and warnings."""

    def __init__(self, model, dev):
        self.model, self.dev = model, dev
        self.errors, self.warnings, self.rows = [], [], []
        self.words = {}          # row index -> words per processor
        self.chw_rows = set()

    def error(self, text):
        self.errors.append(text)

    def run(self, graph):
        self.errors.extend(graph.problems)
        consumers = {}
        for hw in graph.layers:
            for i in hw.inputs:
                consumers.setdefault(i, []).append(hw)
        for hw in graph.layers:
            self.errors.extend(hw.problems)
            if hw.is_hardware:
                self.rows.append(self._row(hw, graph, consumers.get(hw.index, [])))
            else:
                self.rows.append(LayerRow(
                    hw.index, hw.name, hw.op, tuple(hw.in_shape), tuple(hw.out_shape),
                    hw.in_shape[-1] if hw.in_shape else 0,
                    hw.out_shape[-1] if hw.out_shape else 0, data_format="", passes=0,
                    counted=False,
                    notes=f"Keras {type(hw.layer).__name__}"))

    def _row(self, hw, graph, consumers):
        dev, layer = self.dev, hw.layer
        label = f"Layer '{hw.name}'"
        if getattr(layer, "device", dev) != dev:
            self.warnings.append(
                f"{label} was built for {layer.device.name}; it is checked against {dev.name}. "
                f"Rebuild the model with device='{dev.name}'.")
        first = hw.index == 0 and tuple(hw.inputs) == (MODEL_INPUT,)
        in_ch, out_ch = int(hw.in_channels), int(hw.out_channels)
        spatial_in = hw.flatten_from[:-1] if hw.flatten_from is not None else hw.in_shape[:-1]
        pixels_in, pixels_out = _prod(spatial_in), _prod(hw.out_shape[:-1])
        wide = bool(getattr(layer, "wide", False))
        row = LayerRow(hw.index, hw.name, hw.op, tuple(hw.in_shape), tuple(hw.out_shape),
                       in_ch, out_ch, pooling=_pool_text(layer))
        row.weight_bits = int(getattr(layer, "weight_bits", 8))
        for what, channels in (("input", in_ch), ("output", out_ch)):
            if channels > dev.max_channels:
                self.error(f"{label} has {channels} {what} channels; {dev.name} supports at most "
                           f"{dev.max_channels}. Use fewer channels or split the layer.")
        try:
            row.processor_mask, row.passes, row.processors = allocate_processors(
                min(in_ch, dev.max_channels), dev, first_layer=first)
        except DeviceLimitError as err:
            self.error(f"{label}: {err}")
        chw = uses_chw(in_ch, dev, first_layer=first)
        row.data_format = "CHW" if chw else "HWC"

        if hw.op in _WEIGHT_OPS:
            self._weights(hw, row)
        if hw.op == "add" and len(consumers) == 1 and consumers[0].op in _WEIGHT_OPS[:3]:
            # The device runs an element-wise operation together with the convolution after it.
            row.counted = False
            row.notes = f"fused into '{consumers[0].name}'"
        if hw.op == "passthrough" and in_ch > dev.processors and pixels_out != 1:
            self.error(
                f"{label} pools {in_ch} channels on its own; a pool-only layer handles at most "
                f"{dev.processors} channels unless it pools down to 1x1. Fuse the pooling into the "
                f"next convolution (pooling='{layer.pooling}', pool_size=...).")
        if hw.op == "linear":
            self._linear_limits(hw, label, in_ch, pixels_in, out_ch)
        if wide and hw.index != graph.output_index:
            self.error(f"{label} has wide=True but is not the last layer; only the output layer "
                       f"can be 32 bits wide. Use wide=False.")

        row.in_bytes = _prod(hw.flatten_from or hw.in_shape)
        row.out_bytes = _prod(hw.out_shape) * (4 if wide else 1)
        row.in_instance_bytes = memory.instance_bytes(
            pixels_in, in_ch, chw=chw, processors=dev.processors)
        row.out_instance_bytes = memory.instance_bytes(
            pixels_out, out_ch, wide=wide, processors=dev.processors)
        self._data_limits(hw, label, row, chw, pixels_in, pixels_out)
        return row

    def _weights(self, hw, row):
        dev, layer = self.dev, hw.layer
        per_kernel, row.kernel = _weights_per_kernel(hw)
        row.weights = _prod(layer.kernel.shape)
        if row.processors:
            words = memory.weight_words(
                min(row.in_channels, dev.max_channels), row.out_channels, per_kernel,
                row.weight_bits, row.processors)
            self.words[row.index] = words
            if row.data_format == "CHW":
                self.chw_rows.add(row.index)
            row.weight_words_per_processor = max(words)
            row.weight_words = sum(words)
            row.weight_bytes = row.weight_words * memory.WORD_BITS // 8
            capacity = max(dev.weight_words)
            if row.weight_words_per_processor > capacity:
                self.error(
                    f"Layer '{hw.name}' needs {row.weight_words_per_processor} weight words on one "
                    f"processor; a {dev.name} processor holds {capacity} 72-bit words (weight "
                    f"memory over budget). Use fewer output channels, weight_bits=4/2/1, or "
                    f"split the layer.")
        if layer.bias is not None:
            row.bias_bytes = row.out_channels
            if row.out_channels > dev.max_bias_outputs:
                self.error(
                    f"Layer '{hw.name}' has a bias for {row.out_channels} outputs; {dev.name} "
                    f"holds biases for at most {dev.max_bias_outputs} outputs per layer (bias "
                    f"memory). Use use_bias=False or fewer outputs.")

    def _linear_limits(self, hw, label, in_ch, pixels_in, out_ch):
        dev = self.dev
        features = in_ch * pixels_in
        if hw.flatten_from is not None:
            if features > dev.max_flatten_values:
                self.error(
                    f"{label} flattens {hw.flatten_from} = {features} values; {dev.name} "
                    f"flattens at most {dev.max_flatten_values} (C*H*W). Pool more or use fewer "
                    f"channels before the Flatten.")
            if pixels_in > dev.max_flatten_pixels:
                self.error(
                    f"{label} flattens {pixels_in} pixels per channel (H*W of "
                    f"{hw.flatten_from}); {dev.name} flattens at most {dev.max_flatten_pixels} "
                    f"(flatten limit, H*W <= {dev.max_flatten_pixels}). Pool further before the "
                    f"Flatten.")
        elif features > dev.max_dense_in:
            self.error(f"{label} has {features} input features; a {dev.name} linear layer takes "
                       f"at most {dev.max_dense_in}. Pool more before the Flatten.")
        if out_ch > dev.max_dense_out:
            self.error(f"{label} has {out_ch} outputs; a {dev.name} linear layer has at most "
                       f"{dev.max_dense_out}. Use fewer units.")

    def _data_limits(self, hw, label, row, chw, pixels_in, pixels_out):
        dev = self.dev
        spatial = list(hw.in_shape[:-1]) + list(hw.out_shape[:-1])
        if hw.op != "linear" and any(s > dev.max_rows for s in spatial):
            self.error(f"{label} has rows/columns {spatial}; {dev.name} supports at most "
                       f"{dev.max_rows}. Downsample the input.")
        if chw and pixels_in > dev.max_pixels_chw:
            self.error(f"{label} reads {pixels_in} pixels per channel (CHW); {dev.name} holds at "
                       f"most {dev.max_pixels_chw} without streaming. Use a smaller input.")
        for what, pixels, channels in (("reads", pixels_in, 0 if chw else row.in_channels),
                                       ("writes", pixels_out, row.out_channels)):
            passes = math.ceil(channels / dev.processors)
            if channels and pixels * passes > dev.max_pixels_hwc:
                self.error(
                    f"{label} {what} {pixels} pixels x {passes} pass(es) per processor (HWC); "
                    f"{dev.name} holds at most {dev.max_pixels_hwc} pixels per channel without "
                    f"streaming (data memory). Pool earlier or use a smaller input.")
        both = row.in_instance_bytes + row.out_instance_bytes
        if both > dev.data_instance_bytes and row.in_instance_bytes <= dev.data_instance_bytes:
            self.warnings.append(
                f"{label}: input ({row.in_instance_bytes} B) and output "
                f"({row.out_instance_bytes} B) per data-memory instance exceed its "
                f"{dev.data_instance_bytes} bytes together; the synthesis tool must overlap them "
                f"(check out_offset) or the layer needs streaming.")

    def finish(self, model, folded):
        dev = self.dev
        used = memory.place_weights(self.words, dev.weight_words, one_per_group=self.chw_rows,
                                    group_size=dev.processors_per_memory)
        layers = sum(1 for r in self.rows if r.counted and r.op != "unsupported")
        weight_bytes = sum(r.weight_bytes for r in self.rows)
        bias_bytes = sum(r.bias_bytes for r in self.rows)
        quadrants = memory.pack_biases([r.bias_bytes for r in self.rows],
                                       dev.bias_bytes_per_quadrant, dev.quadrants)
        if layers > dev.max_layers:
            more = " or use MAX78002 (128 layers)" if dev.max_layers < 128 else ""
            self.error(f"Model has {layers} hardware layers; {dev.name} runs at most "
                       f"{dev.max_layers} layers. Use fewer layers, fuse pooling into the "
                       f"convolutions{more}.")
        if weight_bytes > dev.weight_memory_bytes:
            self.error(f"Weights need {weight_bytes} bytes; {dev.name} weight memory holds "
                       f"{dev.weight_memory_bytes} bytes (weight memory over budget). Use fewer "
                       f"channels, 1x1 kernels or weight_bits=4/2/1.")
        else:
            full = [p for p, (u, c) in enumerate(zip(used, dev.weight_words)) if u > c]
            if full:
                self.error(f"Weights do not fit per processor: processor {full[0]} needs "
                           f"{used[full[0]]} of {dev.weight_words[full[0]]} words (weight memory "
                           f"over budget on {len(full)} processor(s)). Use fewer channels or "
                           f"weight_bits=4/2/1.")
        if bias_bytes > dev.bias_memory_bytes:
            self.error(f"Biases need {bias_bytes} bytes; {dev.name} bias memory holds "
                       f"{dev.bias_memory_bytes} bytes (bias memory over budget). Use "
                       f"use_bias=False on some layers.")
        elif quadrants is None:
            self.error(f"Biases of {bias_bytes} bytes do not fit into {dev.quadrants} quadrants "
                       f"of {dev.bias_bytes_per_quadrant} bytes (bias memory). Use "
                       f"use_bias=False on some layers.")
        data_max = max((r.in_instance_bytes + r.out_instance_bytes for r in self.rows), default=0)
        try:
            params = int(model.count_params())
        except ValueError:
            params = 0
        return {
            "layers": layers, "max_layers": dev.max_layers,
            "weight_bytes": weight_bytes, "weight_memory_bytes": dev.weight_memory_bytes,
            "weight_words_max_processor": max(used, default=0),
            "weight_words_per_processor": max(dev.weight_words),
            "bias_bytes": bias_bytes, "bias_memory_bytes": dev.bias_memory_bytes,
            "bias_bytes_per_quadrant": quadrants,
            "data_instance_bytes_max": data_max, "data_instance_bytes": dev.data_instance_bytes,
            "parameters": params, "folded_layers": list(folded),
        }


def check_model(model, device="MAX78000"):
    """Check that a Keras model can run on the accelerator and report what it uses.

    Walks the hardware layers (`ai8x_nb.graph.trace_model`) and, per layer, allocates
    processors (`allocate_processors`), counts weight words with the device's 72-bit packing,
    bias bytes and data memory; then compares the totals with the device's budgets. The
    memory model is described in `ai8x_nb.check.memory`.

    Args:
        model: a built `keras.Sequential` or functional `keras.Model`.
        device: a `Device` or device name, "MAX78000" (default) or "MAX78002".

    Returns:
        A `CheckReport`: `ok`, `errors`, `warnings`, `rows`, `totals`; `str(report)` is a table.
        Problems are collected, not raised; call `report.raise_if_errors()` to raise.

    Raises:
        UnknownDeviceError: for an unknown device name.

    Example:

    >>> report = check_model(model, "MAX78000")
    >>> print(report)
    >>> report.raise_if_errors()
    """
    dev = get_device(device)
    checker = _Checker(model, dev)
    name = getattr(model, "name", type(model).__name__)
    if not is_subclassed(model) and not model.built:
        checker.error(f"Model '{name}' is not built: give it an input shape "
                      f"(keras.Input(shape=...) as its first layer) before checking it.")
        return CheckReport(dev, [], _empty_totals(dev), checker.errors, [], name)
    graph = trace_model(model)
    checker.run(graph)
    totals = checker.finish(model, graph.folded)
    _log.debug("checked %s on %s: %d error(s)", name, dev.name, len(checker.errors))
    return CheckReport(dev, checker.rows, totals, checker.errors, checker.warnings, name)


def _empty_totals(dev):
    return {
        "layers": 0, "max_layers": dev.max_layers, "weight_bytes": 0,
        "weight_memory_bytes": dev.weight_memory_bytes, "weight_words_max_processor": 0,
        "weight_words_per_processor": max(dev.weight_words), "bias_bytes": 0,
        "bias_memory_bytes": dev.bias_memory_bytes, "bias_bytes_per_quadrant": None,
        "data_instance_bytes_max": 0, "data_instance_bytes": dev.data_instance_bytes,
        "parameters": 0, "folded_layers": [],
    }
