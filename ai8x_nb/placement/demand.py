"""What one hardware layer asks of the device's memories, before any placement is chosen.

Everything here follows from the layer and its neighbours alone: processors and passes of the
input and the output, the 72-bit kernel words each input processor needs, bias bytes and the
bytes the input and the output take in each data-memory instance. `plan` then decides where
these go.

Facts used (ai8x reference sections 4 and 6, checked against ai8x-synthesis):

- A layer's output processors are the input processors of the layers reading it (in a chain,
  the next layer); the last layer writes to processors `0 .. n-1` (n = processors of one
  output pass).
- Output passes: `ceil(C_out / 64)`, on `ceil(C_out / passes)` processors, rounded up to a
  multiple of 4 above 64 channels (as for inputs).
- Kernel words per input processor: `k = out_span * out_passes * in_passes` kernels (a
  depthwise layer: `k = in_passes`, the processor's own channel in each pass) of
  `kernel_values` weights each (9 for 3x3, 1 for 1x1 and linear layers, L for a Conv1D of
  length L, `(L - 1) * dilation + 1` for a dilated one), with `q = 8 // bits` kernels of sub-8-bit weights sharing one 8-bit slot:
  `ceil((k * values * bits + (k % q) * values * (q - 1)) / 72)`. A linear layer after a
  Flatten holds `pixels` kernels per (input processor, output) pair instead of one.
- Data per instance: an HWC tensor takes one 32-bit word per pixel and pass (16 bytes for a
  32-bit wide output); the CHW model input takes one byte per pixel. A streaming layer reads a
  circular buffer instead (`streaming.buffer_bytes`), which its producer writes into; the
  model input of a streaming model arrives through the FIFOs in HWC.
"""

import dataclasses
import math

from ai8x_nb.placement.processors import allocate_processors, uses_chw
from ai8x_nb.placement.streaming import buffer_bytes, emulated_kernel, streaming_prefix
from ai8x_nb.graph import ELTWISE_OPS, MODEL_INPUT, shape_size

__all__ = ["LayerDemand", "layer_demands", "kernel_words", "written_words", "output_group"]

WORD_BITS = 72
WEIGHTED_OPS = ("conv2d", "conv1d", "convtranspose2d", "linear")
TIED_OPS = ("passthrough",) + ELTWISE_OPS
"""Layers without an operator: the device writes their output to the same processors."""


@dataclasses.dataclass
class LayerDemand:
    """The placement needs of one hardware layer.

    Attributes:
        index: hardware layer index.
        name: Keras layer name.
        op: the graph op ("conv2d", "linear", "passthrough", ...).
        in_channels / out_channels: channels read and written (a flattening linear layer:
            the channels before the Flatten).
        chw: the input is the CHW model input (one channel per data-memory instance).
        passes / count: input passes and processors per pass.
        out_passes / out_count: output passes and processors per output pass.
        kernel_values: weights of one kernel (0 for layers without weights).
        flatten_pixels: for a linear layer after a Flatten, the kernels each input processor
            holds per output (the pixels flattened per channel, times the channels per
            processor when the layer reads several passes); None otherwise.
        bits: weight bits.
        bias_bytes: bias bytes (one per output channel; 0 without bias).
        in_bytes / out_bytes: bytes of the input / output in each data-memory instance.
        first: reads the model input.
        last: writes the model output.
        words: kernel words per input processor (0 without weights): the block the tool
            looks for.
        written: per input processor (in order), the kernel words the tool then fills, at
            least `words` (`written_words`).
        inputs: the hardware layers it reads (`HwLayer.inputs`; several with one operand:
            their outputs concatenated, channels in that order).
        operands: tensors it adds element-wise before its operator (1: none); its input
            buffer holds them interleaved, so `in_bytes` counts all of them.
        write_gap / gap_slot: it writes interleaved into an element-wise layer's buffer
            (`HwLayer.write_gap`, `HwLayer.gap_slot`).
        streaming: the layer streams; `in_bytes` is then its circular buffer, and its
            `out_bytes` at least that buffer (the tool keeps the two apart).
        output: it writes one of a model's several outputs (`output: true`): its output
            stays in data memory to the end.
    """

    index: int
    name: str
    op: str
    in_channels: int
    out_channels: int
    chw: bool
    passes: int
    count: int
    out_passes: int
    out_count: int
    kernel_values: int
    flatten_pixels: int
    bits: int
    bias_bytes: int
    in_bytes: int
    out_bytes: int
    first: bool
    last: bool
    words: int = 0
    written: tuple = ()
    inputs: tuple = ()
    operands: int = 1
    write_gap: int = 0
    gap_slot: int = 0
    streaming: bool = False
    output: bool = False
    groups: int = 1

    @property
    def depthwise(self):
        """A depthwise convolution (MAX78002): one kernel per input channel and pass."""
        return self.groups > 1

    @property
    def weighted(self):
        """The layer has kernels (and so kernel memory)."""
        return self.op in WEIGHTED_OPS

    @property
    def concatenates(self):
        """The layer reads several outputs side by side on the processors (a concatenation
        of one pass)."""
        return len(self.inputs) > 1 and self.operands == 1 and self.passes == 1

    @property
    def interleaves(self):
        """The layer reads several outputs as its passes: a concatenation of more channels
        than processors, its inputs interleaved in one buffer (`write_gap`)."""
        return len(self.inputs) > 1 and self.operands == 1 and self.passes > 1

    @property
    def gathers(self):
        """The layer reads one buffer that several producers write into, interleaved."""
        return self.operands > 1 or self.interleaves

    @property
    def tied(self):
        """The layer has no operator: its output processors repeat its input processors."""
        return self.op in TIED_OPS


def output_group(channels, device):
    """`(passes, processors per pass)` of a layer writing `channels` channels."""
    passes = math.ceil(channels / device.processors)
    count = math.ceil(channels / passes)
    if channels > device.processors:
        count = min(device.processors, -(-count // 4) * 4)
    return passes, count


def kernel_words(*, kernel_values, bits, out_span, out_passes, in_passes, flatten_pixels=None,
                 out_channels=None):
    """72-bit kernel words one input processor of a layer needs.

    Args:
        kernel_values: weights of one kernel (9, 1, or the Conv1D length).
        bits: weight bits, 8/4/2/1.
        out_span: output processors from the first to the last used one.
        out_passes: output passes.
        in_passes: input passes.
        flatten_pixels: for a linear layer after a Flatten, its kernels per input processor
            and output (`LayerDemand.flatten_pixels`).
        out_channels: output channels (a flattening layer skips the unused output slots).

    Returns:
        The words, an int.

    Example:

    >>> kernel_words(kernel_values=9, bits=8, out_span=60, out_passes=1, in_passes=1)
    60
    >>> kernel_words(kernel_values=1, bits=8, out_span=64, out_passes=8, in_passes=2)
    114
    """
    if flatten_pixels is not None:
        # Only real output channels hold kernels (no slots for unused output processors).
        kernels = out_channels * flatten_pixels
    else:
        kernels = out_span * out_passes * in_passes
    per_byte = 8 // bits
    padding = (kernels % per_byte) * kernel_values * (per_byte - 1)
    return math.ceil((kernels * kernel_values * bits + padding) / WORD_BITS)


def written_words(d, out_span):
    """Kernel words the tool writes on each input processor of a layer, in processor order.

    The tool reserves `d.words` columns on every processor, then writes the kernels one
    output slot (or one group of `8 // bits` slots) at a time and pads with zeros up to the
    reserved length. Slots past the last output channel and channels a processor lacks in a
    pass still take (zero) bytes, so a layer can write more than it reserved: e.g. a
    flattening layer with unused output slots, or sub-8-bit weights over several output
    passes. The next layer's search sees those columns as taken.

    Args:
        d: the `LayerDemand` (with `words`).
        out_span: output processors from the first to the last used one.

    Returns:
        A tuple of word counts, one per input processor.
    """
    per_byte = 8 // d.bits
    size = d.kernel_values
    written = []
    if d.depthwise:
        # Per pass, the processor's own channel's kernel (or zeros where it has none).
        for ch in range(d.count):
            written_bytes = sum(size if ie * d.count + ch < d.in_channels else size // per_byte
                                for ie in range(d.passes))
            written.append(max(d.words, -(-written_bytes // 9)))
        return tuple(written)
    for ch in range(d.count):
        if d.flatten_pixels is not None:
            written_bytes = 0
            for m in range(d.out_passes * out_span):
                valid = sum(1 for n in range(per_byte)
                            if ch + (m * per_byte + n) * d.count < d.out_channels * d.count)
                if valid:
                    written_bytes += -(-d.flatten_pixels * valid // per_byte)
                else:
                    written_bytes += size // per_byte
        else:
            groups = d.out_passes * -(-out_span // per_byte)
            written_bytes = sum(
                size if (ie * d.count + ch < d.in_channels and g * per_byte < d.out_channels)
                else size // per_byte
                for g in range(groups) for ie in range(d.passes))
        written.append(max(d.words, -(-written_bytes // 9)))
    return tuple(written)


def _kernel_values(hw, layers):
    layer = hw.layer
    if hw.op in ("conv2d", "convtranspose2d"):
        return emulated_kernel(hw, layers)[0] ** 2
    if hw.op == "conv1d":  # a dilated kernel is stored stretched, zeros between the taps
        return int(layer.effective_kernel_size)
    if hw.op == "linear":
        return 1
    return 0


def layer_demands(graph, device):
    """The `LayerDemand` of every hardware layer of a traced model.

    Args:
        graph: a `ModelGraph` whose layers are all supported (no "unsupported" op).
        device: a `Device`.

    Returns:
        A list of `LayerDemand`, one per hardware layer, in device order.
    """
    layers = graph.layers
    streams = streaming_prefix(layers)
    buffers = [buffer_bytes(hw, layers, device, last_streaming=i == streams - 1)
               for i, hw in enumerate(layers[:streams])]
    demands = []
    for i, hw in enumerate(layers):
        layer = hw.layer
        first = i == 0 and tuple(hw.inputs) == (MODEL_INPUT,)
        in_ch = int(hw.in_channels)
        out_ch = int(hw.out_channels)
        # The FIFOs feed a streaming model's input in HWC.
        chw = uses_chw(in_ch, device, first_layer=first and not hw.streaming)
        _, passes, count = allocate_processors(min(in_ch, device.max_channels), device,
                                               first_layer=first and not hw.streaming)
        out_passes, out_count = output_group(out_ch, device)
        if hw.flatten_from is not None:
            spatial = hw.flatten_from[:-1]
        else:
            spatial = hw.in_shape[:-1]
        pixels_in = shape_size(spatial) if len(hw.in_shape) > 1 or hw.flatten_from else 1
        wide = bool(getattr(layer, "wide", False))
        in_bytes = pixels_in * passes * (1 if chw else 4) * hw.operands
        out_bytes = shape_size(hw.out_shape[:-1]) * out_passes * 4 * (4 if wide else 1)
        if i < streams:
            in_bytes = buffers[i]
            out_bytes = max(buffers[i + 1] if i + 1 < streams else out_bytes, buffers[i])
        flatten_pixels = None
        if hw.op == "linear" and hw.flatten_from is not None:
            flatten_pixels = pixels_in * in_ch // count
        bias = getattr(layer, "bias", None) is not None and getattr(layer, "_bias_in_use", True)
        demands.append(LayerDemand(
            index=i, name=hw.name, op=hw.op, in_channels=in_ch, out_channels=out_ch, chw=chw,
            passes=passes, count=count, out_passes=out_passes, out_count=out_count,
            kernel_values=_kernel_values(hw, layers), flatten_pixels=flatten_pixels,
            bits=int(getattr(layer, "weight_bits", 8)),
            bias_bytes=out_ch if hw.op in WEIGHTED_OPS and bias else 0,
            in_bytes=in_bytes, out_bytes=out_bytes, first=first,
            last=i == graph.output_index, inputs=tuple(hw.inputs), operands=hw.operands,
            write_gap=int(hw.write_gap), gap_slot=int(hw.gap_slot), streaming=i < streams,
            output=graph.several_outputs and i in graph.output_indices,
            groups=int(getattr(layer, "groups", 1)) if hw.op == "conv2d" else 1))
    readers = {}
    for d in demands:
        for src in d.inputs:
            readers.setdefault(src, d.index)
    for i, d in enumerate(demands):
        if d.weighted:
            reader = demands[readers[i]] if i in readers else None
            # A concatenation reads this output beside others: it spans this layer's own.
            span = reader.count if reader and not reader.concatenates else d.out_count
            if d.depthwise:  # the tool's kern_count: one kernel per pass
                span, out_passes = 1, 1
            else:
                out_passes = d.out_passes
            d.words = kernel_words(kernel_values=d.kernel_values, bits=d.bits, out_span=span,
                                   out_passes=out_passes, in_passes=d.passes,
                                   flatten_pixels=d.flatten_pixels,
                                   out_channels=d.out_channels)
            d.written = written_words(d, span)
    return demands
