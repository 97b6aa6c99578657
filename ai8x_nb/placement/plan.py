"""Choose each layer's processors, kernel columns, bias quadrant and data offsets.

The choice that matters is the input processor mask of every layer: it fixes where the layer's
kernels go (`kernels`), which data-memory instances its input and its producer's output use
(`data`) and which quadrants can hold biases (`bias`). Rules the tool enforces:

- a layer reads `count` processors (`LayerDemand.count`); the CHW model input has one channel
  per data-memory instance (every 4th processor), every other mask is a contiguous run that
  starts on a multiple of 4 (it is also the previous layer's output mask, and the tool pads
  the kernels of outputs that start elsewhere);
- a layer without an operator (pool-only, element-wise) writes to the same processors it reads,
  packed per quadrant, so the next layer reads those; when it is the last layer, it reads
  processors 0 .. n-1;
- the FIFOs of a streaming model's input feed processors 0-3, 16-19, 32-35 and 48-51: its
  first layer reads a run of at most 4 processors starting at 0, 16, 32 or 48; the circular
  buffers of all streaming layers (`streaming`) and the last one's output stay apart wherever
  they share a data-memory instance.

`Planner` walks the layers in order. For every layer it tries each allowed mask and keeps
the one whose kernels the tool would place lowest (`KernelMemory`, which replays the tool's
allocator), whose data fits, and which is closest to the vendor's own habit (the next free
processors, else the same processors as the layer before). Layers that read all 64
processors have one choice; the tool places their kernels first, and so does the planner.
"""

import dataclasses

from ai8x_nb.placement import data as dm
from ai8x_nb.placement.kernels import KernelMemory

__all__ = ["LayerPlacement", "Planner", "packed_mask", "STRATEGIES", "label"]

_INF = float("inf")


@dataclasses.dataclass
class LayerPlacement:
    """Where one hardware layer lives on the device.

    Attributes:
        index: hardware layer index.
        name: Keras layer name.
        op: the graph op.
        processors: input processor mask (the YAML `processors`).
        output_processors: output processor mask (the next layer's `processors`).
        passes / count: input passes and processors per pass.
        out_passes: output passes.
        data_format: "CHW" (the model input, one channel per instance) or "HWC".
        kernel_offset: first kernel-memory column of its kernels (None: no kernels, or they
            did not fit).
        kernel_words: kernel words on each of its input processors.
        kernel_values: weights of one kernel (9 for 3x3, 1 for 1x1 and linear, L for a
            Conv1D of length L; 0 without weights).
        bias_bytes: bias bytes; bias_quadrant: the quadrant holding them.
        in_offset / out_offset: data-memory byte offsets of input and output (the YAML
            `out_offset`).
        in_bytes / out_bytes: bytes of input / output in each of their instances.
    """

    index: int
    name: str
    op: str
    processors: int = 0
    output_processors: int = 0
    passes: int = 1
    count: int = 0
    out_passes: int = 1
    data_format: str = "HWC"
    kernel_offset: int = None
    kernel_words: int = 0
    kernel_values: int = 0
    bias_bytes: int = 0
    bias_quadrant: int = None
    in_offset: int = 0
    out_offset: int = 0
    in_bytes: int = 0
    out_bytes: int = 0


def packed_mask(mask, device):
    """The output processors of a layer without an operator reading `mask`.

    Per quadrant, the tool wants a contiguous run of as many processors as the layer reads in
    that quadrant; this starts it on the memory instance of the first one read.
    """
    size = device.processors_per_quadrant
    out = 0
    for q in range(device.quadrants):
        bits = mask >> (q * size) & ((1 << size) - 1)
        n = bin(bits).count("1")
        if not n:
            continue
        start = ((bits & -bits).bit_length() - 1) & ~(device.processors_per_memory - 1)
        start = min(start, size - n)
        out |= ((1 << n) - 1) << (q * size + start)
    return out


def chw_masks(count, device):
    """The input masks a channel-first (CHW) input of `count` channels may use: one processor
    per memory instance, `count` instances in a row, every start processor that fits."""
    step = device.processors_per_memory
    last = device.processors - step * (count - 1)
    return [sum(1 << (s + step * k) for k in range(count)) for s in range(last)]


def _start(mask):
    return (mask & -mask).bit_length() - 1


def label(d):
    """The start of every placement message: "Layer 'name' (hardware layer i)"."""
    return f"Layer '{d.name}' (hardware layer {d.index})"


STRATEGIES = ("vendor", "high", "spread")
"""Tie-breaks between masks whose kernels end equally low: the vendor's habit (next free
processors, else the previous layer's), the highest start, the least filled processors. The
planner tries them in this order and keeps the first placement that fits."""


class Planner:
    """One pass over the layers, in order; `errors` collects what did not fit.

    Args:
        demands: the `LayerDemand` list.
        device: a `Device`.
        strategy: one of `STRATEGIES`, the tie-break between equally good masks.
        forced: `{layer index: mask}` choices to take as given (for a search over choices).
    """

    def __init__(self, demands, device, strategy="vendor", forced=None):
        self.d, self.dev, self.strategy = demands, device, strategy
        self.forced = dict(forced or {})
        n = len(demands)
        self.all = (1 << device.processors) - 1
        self.masks = [None] * n
        self.columns = [None] * n
        self.in_off = [None] * n
        self.out_off = [None] * n
        self.memory = KernelMemory(device)
        self.errors = []
        sizes = [x for d in demands for x in (d.in_bytes, d.out_bytes)]
        self.half = dm.half_offset(sizes, device)

    # ---------------------------------------------------------------- masks
    def _end_of_group(self, i):
        j = i
        while self.d[j].tied and j + 1 < len(self.d):
            j += 1
        return j

    def group_starts(self):
        """Indices of the layers whose mask is a free choice (the first of each tied run)."""
        starts, i = [], 0
        while i < len(self.d):
            starts.append(i)
            i = self._end_of_group(i) + 1
        return starts

    def candidates(self, i):
        """The masks layer i may read, best first (after layers 0 .. i-1 are placed)."""
        if i in self.forced:
            return [self.forced[i]]
        return self._candidates(i, self._end_of_group(i))

    def _candidates(self, i, j):
        d, dev = self.d[i], self.dev
        if d.chw:
            return chw_masks(d.count, dev)
        if d.count == dev.processors:
            return [self.all]
        if self.d[j].tied:  # a pool-only / element-wise last layer writes to 0 .. n-1
            return [(1 << d.count) - 1]
        run = (1 << d.count) - 1
        starts = range(0, dev.processors - d.count + 1, dev.processors_per_memory)
        masks = [run << s for s in starts]
        if i == 0 and d.streaming:
            size = dev.processors_per_quadrant
            # More than one FIFO's channels: check_model refuses it (streaming_errors).
            return [m for m in masks if _start(m) % size + d.count
                    <= dev.processors_per_memory] or masks
        if i == 0 or d.flatten_pixels is not None:
            return masks
        prev = self.masks[i - 1]
        clear = [m for m in masks if not m & prev]
        same = [m for m in masks if _start(m) == _start(prev)]
        first = clear[:1] + same
        return first + [m for m in masks if m not in first]

    def _group_masks(self, i, j, mask):
        masks = [mask]
        for k in range(i, j):
            masks.append(packed_mask(masks[-1], self.dev))
        if self.masks[j] is not None and masks[-1] != self.masks[j]:
            return None
        return masks

    # ----------------------------------------------------------------- data
    def _offset(self, k, masks, in_off, out_mask, last=False, offsets=None):
        """Output offset of layer k reading at `in_off` and writing to `out_mask`."""
        d = self.d[k]
        shared = dm.instances(masks[k], self.dev) & dm.instances(out_mask, self.dev)
        live = [(in_off, d.in_bytes)] if shared else []
        if d.streaming:
            # The streaming buffers of this and every earlier streaming layer stay intact.
            out_instances = dm.instances(out_mask, self.dev)
            live += [(offsets[p], self.d[p].in_bytes) for p in range(k)
                     if self.d[p].streaming
                     and dm.instances(masks[p], self.dev) & out_instances]
        if last:
            preferred = dm.last_offsets(in_off, d.in_bytes, d.out_bytes, self.dev)
        else:
            preferred = [self.half if in_off != self.half else 0]
        return dm.choose_offset(d.out_bytes, live, self.dev, preferred=preferred)

    def _try_offsets(self, i, group):
        """Output offsets of layers i-1 .. j-1 once layers i .. j read `group`.

        Returns:
            `(offsets, failed)`: a dict layer -> offset, and the layers whose output does not
            fit (they get the ping-pong offset, so that the rest can still be placed).
        """
        j = i + len(group) - 1
        masks = list(self.masks)
        masks[i:j + 1] = group
        in_off = list(self.in_off)
        offsets, failed = {}, []
        for k in range(max(i - 1, 0), j):
            off = self._offset(k, masks, in_off[k], masks[k + 1], offsets=in_off)
            if off is None:
                failed.append(k)
                off = self.half if in_off[k] != self.half else 0
            offsets[k] = in_off[k + 1] = off
        return offsets, failed

    # ---------------------------------------------------------------- run
    def run(self):
        d, n = self.d, len(self.d)
        for i, di in enumerate(d):
            if di.weighted and not di.chw and di.count == self.dev.processors:
                self.masks[i] = self.all
                self._allocate(i)
        self.in_off[0] = 0
        i = 0
        while i < n:
            j = self._end_of_group(i)
            best = None
            for rank, mask in enumerate(self.candidates(i)):
                group = self._group_masks(i, j, mask)
                if group is None:
                    continue
                offsets, failed = self._try_offsets(i, group)
                top = 0
                if d[j].weighted and self.columns[j] is None and d[j].words:
                    column = self.memory.find(group[-1], d[j].words)
                    fits = self.memory.fits(group[-1], column, d[j].words, d[j].written)
                    top = column + d[j].words if fits else _INF
                cost = (len(failed), top, self._tie_break(group[-1], rank))
                if best is None or cost < best[0]:
                    best = (cost, group, offsets, failed)
            if best is None:  # only when a tied run leads into a fixed all-processor layer
                self.errors.append((i, "processors", (
                    f"{label(d[i])}: no processor mask satisfies the synthesis tool's rules "
                    f"for this layer and the ones it feeds. Put a convolution between the "
                    f"pool-only or element-wise layers and the next layer.")))
                return self
            _, group, offsets, failed = best
            for k, m in zip(range(i, j + 1), group):
                self.masks[k] = m
            for k in failed:
                self._data_error(k)
            for k, off in offsets.items():
                self.out_off[k] = off
                self.in_off[k + 1] = off
            if d[j].weighted and self.columns[j] is None:
                self._allocate(j)
            i = j + 1
        last = n - 1
        off = self._offset(last, self.masks, self.in_off[last], self.final_mask, last=True,
                           offsets=self.in_off)
        if off is None:
            self._data_error(last)
        self.out_off[last] = off or 0
        return self

    def _tie_break(self, mask, rank):
        if self.strategy == "high":
            return -_start(mask)
        if self.strategy == "spread":
            top = self.memory.top()
            return (sum(int(top[p]) for p in range(self.dev.processors) if mask >> p & 1), rank)
        return rank

    @property
    def final_mask(self):
        return (1 << self.d[-1].out_count) - 1

    def _allocate(self, i):
        d = self.d[i]
        if not d.words:
            self.columns[i] = 0
            return
        column = self.memory.allocate(self.masks[i], d.words, d.written)
        if column is None:
            self._kernel_error(i)
        self.columns[i] = column

    # --------------------------------------------------------------- errors
    def _kernel_error(self, i):
        d, dev = self.d[i], self.dev
        procs = [p for p in range(dev.processors) if self.masks[i] >> p & 1]
        top = self.memory.top()
        fullest = max(procs, key=lambda p: (top[p], -p))
        width = dev.weight_words[fullest]
        if d.words > width:
            why = (f"its kernels need {d.words} words on each of its {d.count} processors; a "
                   f"{dev.name} processor holds {width} 72-bit words")
        else:
            why = (f"its kernels need {d.words} free words on each of its {d.count} processors "
                   f"at the same column, but earlier layers leave no such block (processor "
                   f"{fullest} already holds {int(top[fullest])} of {width} words; kernel "
                   f"memory exhausted)")
        self.errors.append((i, "kernels", (
            f"{label(d)}: {why}. Use weight_bits=4/2/1 or fewer channels in this layer or "
            f"the ones with the most kernels, or a MAX78002 (4096 words per processor).")))

    def _data_error(self, k):
        d, dev = self.d[k], self.dev
        size = dev.data_instance_bytes
        if d.out_bytes > size:
            why = (f"its output needs {d.out_bytes} bytes in each data-memory instance; a "
                   f"{dev.name} instance holds {size}")
        else:
            why = (f"its output ({d.out_bytes} bytes per data-memory instance) does not fit "
                   f"beside its input ({d.in_bytes} bytes) in a {size}-byte {dev.name} "
                   f"instance")
        self.errors.append((k, "data", (
            f"{label(d)}: {why}. Use a smaller input, pool earlier or use fewer channels (above "
            f"64 channels each pixel takes one word per pass; a wide output four).")))
