"""Memory model of the accelerator used by the model check: weights, biases and data.

Weight memory (ai8x reference, section 4): every processor has its own memory of 72-bit
words (768 per processor on the MAX78000). A layer stores, on each processor that reads one
of its input channels, the kernels from that channel to every output channel. This module
counts words as if the kernels of one layer were packed densely on each processor:

    words(processor) = ceil(channels_on_processor * out_channels * weights_per_kernel * bits / 72)

so a 3x3 8-bit kernel is exactly one word, nine 1x1 8-bit kernels share a word, and 4/2/1-bit
weights pack 2/4/8 times denser. `weights_per_kernel` is 9 for 3x3 (also the transposed
convolution), 1 for 1x1, k for a Conv1D kernel of size k, and for a linear layer after a
Flatten the number of pixels flattened per channel (a linear layer is a 1x1 "kernel" per input
feature; its C*H*W inputs sit on the C processors of the flattened channels). The synthesis
tool may round a single short kernel up to a whole word, so for Conv1D kernels that are not
9 long and for 1x1 kernels the figure is a lower bound.

Placement: the synthesis tool puts kernels on the processors of the layer's `processors`
mask, which the exporter can shift. The check therefore places layers greedily (largest
first, each processor's kernels on the processor with most free words), which is what a good
allocation achieves, and reports the fullest processor.

Bias memory: one byte per output channel of a layer with a bias; a layer's biases live in one
quadrant's bias memory (512 bytes on the MAX78000), placed first-fit decreasing.

Data memory: 16 instances of 32 KiB, one per group of 4 processors. In HWC a pixel of the 4
channels of one instance takes one 32-bit word; a multi-pass layer keeps `passes` such words
per pixel. In CHW (first layer) each channel is alone on its instance, 4 pixels per word.
"""

import math

from ai8x_nb.check.processors import channels_per_processor

__all__ = ["WORD_BITS", "weight_words", "place_weights", "pack_biases", "instance_bytes"]

WORD_BITS = 72


def weight_words(in_channels, out_channels, weights_per_kernel, bits, count):
    """72-bit words needed on each of `count` processors holding `in_channels` channels.

    Args:
        in_channels: input channels (spread over the processors, channel c on c % count).
        out_channels: output channels: one kernel per (input, output) pair.
        weights_per_kernel: weights of one kernel (9 for 3x3, k for Conv1D k, 1 for 1x1).
        bits: weight bits, 8/4/2/1.
        count: processors used.

    Returns:
        List of `count` word counts.
    """
    return [math.ceil(ch * out_channels * weights_per_kernel * bits / WORD_BITS)
            for ch in channels_per_processor(in_channels, count)]


def place_weights(layer_words, capacities, *, one_per_group=frozenset(), group_size=4):
    """Place every layer's per-processor words on the processors, greedily.

    Args:
        layer_words: dict `key -> list of word counts` (one entry per processor the layer needs).
        capacities: words available on each physical processor.
        one_per_group: keys of layers whose processors must be on distinct memory groups
            (the CHW first layer).
        group_size: processors per memory group.

    Returns:
        List of words used on each physical processor.
    """
    used = [0] * len(capacities)
    order = sorted(layer_words, key=lambda k: (-max(layer_words[k], default=0), str(k)))
    for key in order:
        taken = set()
        for words in sorted(layer_words[key], reverse=True):
            free = [p for p in range(len(capacities)) if p not in taken and not (
                key in one_per_group and any(t // group_size == p // group_size for t in taken))]
            best = max(free, key=lambda p: (capacities[p] - used[p], -p))
            used[best] += words
            taken.add(best)
    return used


def pack_biases(bias_bytes, quadrant_bytes, quadrants):
    """First-fit decreasing of per-layer bias bytes into the quadrants' bias memories.

    Returns:
        The bytes used per quadrant, or None when the biases do not fit.
    """
    used = [0] * quadrants
    for size in sorted((b for b in bias_bytes if b), reverse=True):
        for q in range(quadrants):
            if used[q] + size <= quadrant_bytes:
                used[q] += size
                break
        else:
            return None
    return used


def instance_bytes(pixels, channels, *, chw=False, wide=False, processors=64):
    """Bytes one data-memory instance holds for a tensor of `channels` x `pixels`.

    Args:
        pixels: pixels per channel (H*W, or L; 1 for a flat vector).
        channels: channels of the tensor.
        chw: channels-first layout (one channel per instance, bytes packed).
        wide: 32-bit values (a wide output).
        processors: processors of the device.
    """
    if chw:
        return pixels * (4 if wide else 1)
    passes = math.ceil(channels / processors)
    return 4 * pixels * passes * (4 if wide else 1)
