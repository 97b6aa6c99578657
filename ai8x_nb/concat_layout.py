"""Channel concatenation in the synthesis tool's form: a convolution reading several outputs.

The device has no concatenation layer. A convolution lists the layers it reads in
`in_sequences: [a, b]` and reads their outputs side by side, channels in that order (the tool's
known answer concatenates them so, `izer/backend/max7800x.py`; the vendor's UNets,
`networks/camvid-unet-large.yaml`, use it for their skip connections). On the processors,
input a's channels come first and b's on the processors right after them, all at one data
offset, and the convolution reads the union.

`concat_layout` moves every `Concatenate` into the one `Conv2D` that reads it (`HwLayer.inputs`
become the concatenated layers, `HwLayer.concat_layer` the Keras layer). What the placement
replays (`ai8x_nb.placement.branches`) needs, and a `Concatenate` that lacks it is reported
(op "unsupported", with the reason and the fix):

- it feeds exactly one `Conv2D` and is not the model output;
- its inputs are distinct `Conv2D` / `ConvTranspose2D` layers with 8-bit output (not the
  model input), each feeding no other concatenation;
- its inputs have one channel count (the tool's rule, `izer/izer.py`), a multiple of 4, so
  each input's processors start on a data-memory instance (the tool then needs no kernel
  padding and no instance is shared by two producers);
- together at most `device.processors` channels (side by side, one pass), or more: then each
  input is one pass of the reader (`HwLayer.interleaves`), so k inputs need k passes. The
  inputs then write to the same processors, interleaved pixel by pixel in one buffer
  (`write_gap: k - 1`, input j at `4 * j`), as the element-wise operands do and as the UNet's
  112-channel layer reads two 56-channel outputs; `eltwise_layout` gives them their gaps and
  copies an input that other layers read too.
"""

import dataclasses

__all__ = ["concat_layout", "CONCAT_INPUT_OPS"]

MODEL_INPUT = -1
CONCAT_INPUT_OPS = ("conv2d", "convtranspose2d")
"""The layers whose outputs a concatenation may read."""


def _consumers(layers):
    found = {}
    for hw in layers:
        for src in hw.inputs:
            found.setdefault(src, []).append(hw.index)
    return found


def _problems(cat, by_index, consumers, output_index, fed):
    """Why `cat` cannot run inside the layer that reads it (empty: it can)."""
    device = cat.layer.device
    name = f"Concatenate '{cat.name}'"
    readers = consumers.get(cat.index, [])
    found = []
    if cat.index == output_index or len(readers) != 1 or by_index[readers[0]].op != "conv2d":
        what = ("is the model output" if cat.index == output_index else
                f"feeds {[by_index[r].name for r in readers]}")
        found.append(f"{name} {what}; on {device.name} a concatenation is read by the one "
                     f"Conv2D it feeds (the tool's in_sequences). Feed it to exactly one Conv2D.")
    for src in cat.inputs:
        if src == MODEL_INPUT:
            found.append(f"{name} reads the model input; on {device.name} its inputs must be "
                         f"convolution outputs. Put a Conv2D between the input and the "
                         f"Concatenate.")
            continue
        producer = by_index[src]
        if producer.op not in CONCAT_INPUT_OPS or getattr(producer.layer, "wide", False):
            found.append(f"{name} reads '{producer.name}' ({producer.op}); on {device.name} "
                         f"its inputs must be Conv2D or ConvTranspose2D layers with 8-bit "
                         f"output. Put a Conv2D before the Concatenate.")
        elif fed.get(src, cat.index) != cat.index:
            found.append(f"{name} reads '{producer.name}', which feeds another Concatenate; "
                         f"on {device.name} a layer's output can be concatenated once. Copy it "
                         f"with a 1x1 Conv2D for the second one.")
    if len(set(cat.inputs)) != len(cat.inputs):
        found.append(f"{name} reads one tensor twice; on {device.name} every input is a "
                     f"different layer's output. Copy it with a 1x1 Conv2D.")
    channels = [int(by_index[s].out_channels) for s in cat.inputs if s != MODEL_INPUT]
    if len(set(channels)) > 1:
        found.append(f"{name}: inputs with {channels} channels are not supported by "
                     f"{device.name} (the synthesis tool concatenates inputs of one channel "
                     f"count). Give the concatenated layers the same number of filters.")
    elif channels and channels[0] % device.processors_per_memory:
        found.append(f"{name}: inputs with {channels[0]} channels are not supported here "
                     f"(a multiple of {device.processors_per_memory}: each input's processors "
                     f"start on a data-memory instance). Round their filters up to a multiple "
                     f"of {device.processors_per_memory}.")
    total, count, limit = sum(channels), len(channels), device.processors
    if total > limit and -(-total // limit) != count:
        low = limit * (count - 1) // count + 1
        found.append(f"{name}: channels={total} ({count} inputs of {channels[0]}) is not "
                     f"supported by {device.name}: above {limit} concatenated channels each "
                     f"input is one pass of the reader, so each needs {low}..{limit} channels. "
                     f"Use {low}..{limit} filters in the concatenated layers, or at most "
                     f"{limit // count} (side by side on the processors).")
    return found


def concat_layout(layers, output_index):
    """Move every `Concatenate` into the convolution that reads it.

    Args:
        layers: the traced `HwLayer`s, in device order.
        output_index: index of the layer producing the model output.

    Returns:
        `(layers, output_index)`: re-indexed `HwLayer`s; a reader of a concatenation has the
        concatenated layers as `inputs` and the Keras layer as `concat_layer`; a `Concatenate`
        that cannot run so stays, op "unsupported", with its problems.
    """
    consumers = _consumers(layers)
    by_index = {hw.index: hw for hw in layers}
    fed = {}
    for hw in layers:
        if hw.op == "concat":
            for src in hw.inputs:
                fed.setdefault(src, hw.index)
    fused = {}
    for hw in layers:
        if hw.op != "concat":
            continue
        problems = _problems(hw, by_index, consumers, output_index, fed)
        if problems:
            hw.op = "unsupported"
            hw.problems.extend(problems)
        else:
            fused[consumers[hw.index][0]] = hw
    out, new_index = [], {MODEL_INPUT: MODEL_INPUT}
    gone = {cat.index for cat in fused.values()}
    for hw in layers:
        if hw.index in gone:
            continue
        cat = fused.get(hw.index)
        inputs = cat.inputs if cat is not None else hw.inputs
        new_index[hw.index] = len(out)
        out.append(dataclasses.replace(
            hw, index=len(out), inputs=tuple(new_index[s] for s in inputs),
            concat_layer=cat.layer if cat is not None else hw.concat_layer))
    return out, new_index[output_index]
