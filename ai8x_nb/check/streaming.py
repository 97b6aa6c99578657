"""The synthesis tool's rules for streaming layers (`streaming: true`, `ai8xize.py --fifo`).

Sources: `izer/izer.py` (a streaming layer's previous layer streams too), `izer/backend/
max7800x.py` (FIFO processors and channels, the final streaming layer's padding on the
MAX78000, no passthrough streaming on the MAX78002, no `flatten`, `next_sequence` in order,
the frame size) and the vendor README (at most 8 streaming layers, convolutions only).
The tool itself does not count the streaming layers: it accepted 9 on the MAX78002 (measured);
the limit of 8 is the hardware's, in the vendor README ("streaming is only supported in the
first 8 layers"), so `check_model` refuses more, knowingly stricter than the tool. The
workbench streams what it places exactly as the tool does, and says so where it is narrower
than the tool: Conv2D layers in a plain chain from the model input, fed by at
most 4 input channels (the tool's FIFOs take up to 16 HWC channels on spread processors).
"""

import math

__all__ = ["streaming_errors", "streams"]


def streams(graph):
    """True when a layer of the traced model streams (the tool then needs `--fifo`)."""
    return any(hw.streaming for hw in graph.layers)


def _readers(graph):
    readers = {}
    for hw in graph.layers:
        for src in hw.inputs:
            readers.setdefault(src, []).append(hw.index)
    return readers


def streaming_errors(graph, dev):
    """Every streaming rule the traced model breaks.

    Args:
        graph: a `ModelGraph`.
        dev: the `Device`.

    Returns:
        A list of messages, each naming the layer, the value, the limit and a fix.
    """
    layers = graph.layers
    if not streams(graph):
        return []
    errors = []
    readers = _readers(graph)
    fix_off = "Use streaming=False on it"
    for hw in layers:
        if not hw.streaming:
            continue
        label = f"Layer '{hw.name}' (hardware layer {hw.index})"
        if hw.op != "conv2d":
            kind = type(hw.layer).__name__ if hw.op != "passthrough" else "pool-only layer"
            errors.append(f"{label} is a {kind} with streaming=True; the workbench streams "
                          f"Conv2D layers only (the tool streams convolutions; "
                          f"{dev.name}). {fix_off}, or fuse its pooling into a streaming "
                          f"Conv2D.")
            continue
        expected = (hw.index - 1,) if hw.index else (-1,)
        prev = layers[hw.index - 1] if hw.index else None
        if tuple(hw.inputs) != expected or hw.eltwise or hw.concat_layer is not None:
            errors.append(f"{label} streams but reads {list(hw.inputs)} (an element-wise "
                          f"or concatenated input, or not the layer before it); streaming "
                          f"layers form a plain chain from the model input (the tool's "
                          f"`next_sequence` of a streaming layer is the next layer). "
                          f"{fix_off}.")
        elif prev is not None and not prev.streaming:
            errors.append(f"{label} streams but the layer before it, '{prev.name}', does not; "
                          f"the synthesis tool streams only the first layers of a model, in a "
                          f"row. Set streaming=True on '{prev.name}' and every layer before "
                          f"it, or streaming=False here.")
        if hw.index + 1 < len(layers) and layers[hw.index + 1].streaming \
                and len(readers.get(hw.index, [])) > 1:
            errors.append(f"{label} streams into the next layer but {len(readers[hw.index])} "
                          f"layers read its output; a streaming layer feeds one layer only. "
                          f"Stop streaming before the branch.")
        rows, cols = (int(s) for s in hw.in_shape[:2])
        passes = math.ceil(int(hw.in_channels) / dev.processors)
        if rows * cols * passes >= dev.stream_frame_max:
            errors.append(f"{label} reads {rows}x{cols} pixels x {passes} pass(es) = "
                          f"{rows * cols * passes}; {dev.name} streams frames below "
                          f"{dev.stream_frame_max} (width x height x passes). Use a smaller "
                          f"input or fewer channels.")
    count = sum(hw.streaming for hw in layers)
    if count > dev.max_stream_layers:
        errors.append(f"{count} layers have streaming=True; {dev.name} streams at most "
                      f"{dev.max_stream_layers}. Pool earlier so that the data fits in memory "
                      f"after {dev.max_stream_layers} layers, and stream only those.")
    first = layers[0]
    if first.streaming and int(first.in_channels) > dev.processors_per_memory:
        errors.append(f"Layer '{first.name}' streams {int(first.in_channels)} input channels; "
                      f"the workbench feeds the FIFOs at most {dev.processors_per_memory} "
                      f"(one FIFO, processors 0-3; {dev.name}). Use at most "
                      f"{dev.processors_per_memory} input channels, or streaming=False.")
    n = 0
    while n < len(layers) and layers[n].streaming:
        n += 1
    last = layers[n - 1] if n else None
    if last is not None and last.op == "conv2d" and not dev.stream_nonpad_final:
        kernel, pad = int(last.layer.kernel_size), int(last.layer.padding)
        if pad == 0 and kernel != 1:  # a 1x1 kernel streams as 3x3 with padding 1
            errors.append(f"Layer '{last.name}' is the last streaming layer and has "
                          f"padding=0; {dev.name} needs padding in the final streaming layer "
                          f"(the tool: \"Padding for the final streaming layer must not be "
                          f"zero\"). Use padding=1, or stream one layer more or less.")
    return errors
