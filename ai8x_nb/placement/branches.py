"""Placement of networks that branch (residual `Add`s): masks by tensor, offsets by lifetime.

In a chain every layer reads the layer before it, and `Planner` chooses one mask per layer.
In a branching network a tensor can be read by several layers, and an element-wise layer
reads one buffer that several producers write into, interleaved. The tool's rules then are:

- every layer reading a tensor reads it on the processors its producer wrote it to (the
  producer's `output_processors`), and all producers of an element-wise layer's operands
  write to the processors that layer reads (the tool stops otherwise);
- a layer without an operator (passthrough, operand copy, stand-alone add) writes to the
  processors it reads;
- kernels go to kernel memory in layer order (`KernelMemory`), biases as in a chain.

A convolution that reads a concatenation (`in_sequences: [a, b]`, `ai8x_nb.concat_layout`)
reads the union of its inputs' output processors, and the channels come in processor order:
so input j writes to the run of processors right after input j-1's (each run starts on a
data-memory instance), all of them at one data offset, which the reader reads (the vendor's
`networks/camvid-unet-large.yaml` lays out its skip connections so).

So masks are chosen per class of tensors that must share processors, at the first layer that
reads the class, by the same cost as in a chain (lowest kernel column, then the vendor's
habit); a class that is an input of a concatenation only takes masks that leave its
neighbours their runs, and the first choice among them fixes all of them.

Data offsets follow the buffers' lifetimes: a buffer lives from its first writer to its last
reader, and two buffers that live at the same time in a shared memory instance get byte
ranges that do not overlap. An element-wise buffer holds all operands interleaved (so
does the buffer of a concatenation of more channels than processors, one input per pass);
operand j's producer writes at `offset + 4 * j` (`write_gap`).
"""

from ai8x_nb.placement import data as dm
from ai8x_nb.placement.plan import STRATEGIES, Planner, _start, chw_masks, label

__all__ = ["BranchPlanner", "is_chain"]

MODEL_INPUT = -1


def is_chain(demands):
    """True when every layer reads only the layer before it (the model input for layer 0)
    and only the last one is a model output."""
    if any(d.output for d in demands[:-1]):
        return False
    return all(tuple(d.inputs or ((i - 1,) if i else (MODEL_INPUT,))) ==
               ((i - 1,) if i else (MODEL_INPUT,)) and d.operands == 1
               for i, d in enumerate(demands))


class _Classes:
    """Union-find over tensors ("out", layer) and element-wise buffers ("buf", layer)."""

    def __init__(self):
        self.parent = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)


class BranchPlanner(Planner):
    """One pass over a branching network; `errors` collects what did not fit.

    Args:
        demands: the `LayerDemand` list.
        device: a `Device`.
        strategy: one of `STRATEGIES`, the tie-break between equally good masks.
    """

    def __init__(self, demands, device, strategy="vendor"):
        super().__init__(demands, device, strategy)
        self.out_masks = [None] * len(demands)
        self.classes = _Classes()
        for d in demands:
            for src in d.inputs:
                self.classes.find(("out", src))
            if d.tied:
                self.classes.union(("out", d.index), self.in_key(d.index))
            if d.gathers:
                for src in d.inputs:
                    self.classes.union(("out", src), ("buf", d.index))
        self.class_mask = {}
        # A concatenation: its inputs' processor offsets from the first one, and its base.
        self.cat_slots, self.cat_total, self.cat_base = {}, {}, {}
        for d in demands:
            if d.concatenates:
                offset, slots = 0, []
                for src in d.inputs:
                    slots.append((src, offset))
                    offset += demands[src].out_count
                self.cat_slots[d.index], self.cat_total[d.index] = slots, offset

    def in_key(self, i):
        d = self.d[i]
        if d.concatenates:
            return ("cat", i)
        return ("buf", i) if d.gathers else ("out", d.inputs[0])

    def in_class(self, i):
        return self.classes.find(self.in_key(i))

    def out_class(self, i):
        return self.classes.find(("out", i))

    # ---------------------------------------------------------------- masks
    def _readers(self, cls):
        return [d for d in self.d if self.in_class(d.index) == cls]

    def _class_candidates(self, i, cls):
        d, dev = self.d[i], self.dev
        readers = self._readers(cls)
        counts = {r.count for r in readers}
        if len(counts) > 1 or any(r.chw for r in readers) and len(readers) > 1:
            return []
        if self.out_class(len(self.d) - 1) == cls:
            return [self.final_mask]
        if d.chw:
            return chw_masks(d.count, dev)
        if d.count == dev.processors:
            return [self.all]
        run = (1 << d.count) - 1
        masks = [run << s for s in range(0, dev.processors - d.count + 1,
                                         dev.processors_per_memory)]
        if i == 0 and d.streaming:  # the FIFOs feed processors 0-3, 16-19, 32-35, 48-51
            size = dev.processors_per_quadrant
            # More than one FIFO's channels: check_model refuses it (streaming_errors).
            return [m for m in masks if _start(m) % size + d.count
                    <= dev.processors_per_memory] or masks
        prev = self.masks[i - 1] if i else None
        if not prev:
            return masks
        clear = [m for m in masks if not m & prev]
        same = [m for m in masks if m == prev]
        first = clear[:1] + same
        return first + [m for m in masks if m not in first]

    def _slots(self, cls):
        """`(reader, processor offset)` of every concatenation the class is an input of."""
        return [(r, offset) for r, slots in self.cat_slots.items() for src, offset in slots
                if self.out_class(src) == cls]

    def _fits_slots(self, cls, mask):
        """Whether `mask` for the class leaves every concatenation it feeds a valid layout."""
        for r, offset in self._slots(cls):
            base = _start(mask) - offset
            if (base < 0 or base % self.dev.processors_per_memory
                    or base + self.cat_total[r] > self.dev.processors
                    or self.cat_base.get(r, base) != base):
                return False
        return True

    def _set_class_mask(self, cls, mask):
        self.class_mask[cls] = mask
        for r, offset in self._slots(cls):
            self.cat_base[r] = _start(mask) - offset

    def _clash(self, i, mask):
        """1 when a producer of layer i's input cannot write it to `mask`'s instances beside
        its own input (together larger than one instance), else 0."""
        limit = self.dev.data_instance_bytes
        for src in self.d[i].inputs:
            if src < 0 or self.masks[src] is None:
                continue
            p = self.d[src]
            if p.in_bytes + p.out_bytes * (p.write_gap + 1) > limit and (
                    dm.instances(self.masks[src], self.dev) & dm.instances(mask, self.dev)):
                return 1
        d = self.d[i]
        if d.in_bytes + d.out_bytes * (d.write_gap + 1) > limit and not d.tied:
            # Its own output must then go to other instances: leave a run of them free.
            taken = dm.instances(mask, self.dev)
            step = self.dev.processors_per_memory
            need = -(-d.out_count // step)
            free = [not taken >> k & 1 for k in range(self.dev.data_memory_instances)]
            if not any(all(free[k:k + need]) for k in range(len(free) - need + 1)):
                return 1
        return 0

    def _cost(self, i, mask, rank):
        d = self.d[i]
        top = 0
        if d.weighted and d.words and self.columns[i] is None:
            column = self.memory.find(mask, d.words)
            fits = self.memory.fits(mask, column, d.words, d.written)
            top = column + d.words if fits else float("inf")
        return self._clash(i, mask), top, self._tie_break(mask, rank)

    def _choose_concat(self, i):
        """The mask of a layer reading a concatenation: its inputs' runs side by side."""
        dev, cls = self.dev, self.in_class(i)
        total, slots = self.cat_total[i], self.cat_slots[i]
        if cls in self.class_mask:
            bases = [_start(self.class_mask[cls])]
        elif i in self.cat_base:
            bases = [self.cat_base[i]]
        else:
            bases = range(0, dev.processors - total + 1, dev.processors_per_memory)
        best = None
        for rank, base in enumerate(bases):
            runs = [(self.out_class(src), ((1 << self.d[src].out_count) - 1) << (base + offset))
                    for src, offset in slots]
            if any(self.class_mask.get(c, m) != m or not self._fits_slots(c, m)
                   for c, m in runs):
                continue
            mask = ((1 << total) - 1) << base
            cost = self._cost(i, mask, rank)
            if best is None or cost < best[0]:
                best = (cost, mask, runs)
        if best is None:
            self.errors.append((i, "processors", (
                f"{label(self.d[i])}: no processor layout puts the layers it concatenates side "
                f"by side ({total} channels) where the layers that read them also need them. "
                f"Read the concatenated layers only in the concatenation, or use fewer "
                f"channels.")))
            return None
        _, mask, runs = best
        for c, m in runs:
            if c not in self.class_mask:
                self._set_class_mask(c, m)
        self.cat_base[i] = _start(mask)
        self.class_mask[cls] = mask
        return mask

    def _choose(self, i):
        if self.d[i].concatenates:
            return self._choose_concat(i)
        d, cls = self.d[i], self.in_class(i)
        if cls in self.class_mask:
            return self.class_mask[cls]
        best = None
        for rank, mask in enumerate(self._class_candidates(i, cls)):
            if not self._fits_slots(cls, mask):
                continue
            cost = self._cost(i, mask, rank)
            if best is None or cost < best[0]:
                best = (cost, mask)
        if best is None:
            self.errors.append((i, "processors", (
                f"{label(d)}: no processor mask satisfies the synthesis tool's rules for the "
                f"layers that read this tensor (they must read the same processors; the model "
                f"input can feed only the first layer). Put a convolution between the model "
                f"input or the element-wise layers and the layers that share their input.")))
            return None
        self._set_class_mask(cls, best[1])
        return best[1]

    # ----------------------------------------------------------------- data
    def _buffers(self):
        """Data buffers: key -> [size, instances, first write, last read, writers]."""
        n = len(self.d)
        buffers = {}

        def buffer(key):
            return buffers.setdefault(key, {"size": 0, "mask": 0, "first": n, "last": -1})

        first = self.d[0]
        model_input = buffer(("out", MODEL_INPUT))
        model_input.update(size=first.in_bytes, first=MODEL_INPUT)
        for d in self.d:
            b = buffer(self._out_buffer(d.index))
            b["first"] = min(b["first"], d.index)
            b["mask"] |= self.out_masks[d.index] or 0
            size = d.out_bytes * (d.write_gap + 1)
            b["size"] = max(b["size"], size)
            if d.index == n - 1 or d.output:
                b["last"] = n  # an output stays in data memory to the end
            b = buffer(self._in_buffer(d.index))
            b["last"] = max(b["last"], d.index)
            b["mask"] |= self.masks[d.index] or 0
            if d.gathers or d.concatenates:
                b["size"] = max(b["size"], d.in_bytes)
        # Every streaming layer's circular buffer stays apart from the others and from the
        # last streaming layer's output: it lives until that output is written.
        streams = [d.index for d in self.d if d.streaming]
        for i in streams:
            b = buffer(self._in_buffer(i))
            b["last"] = max(b["last"], streams[-1])
        return buffers

    def _out_buffer(self, i):
        """The buffer layer i writes to: an element-wise buffer, a concatenation's, its own."""
        if self.d[i].write_gap:
            return ("buf", self._gap_target(i))
        for r, slots in self.cat_slots.items():
            if any(src == i for src, _ in slots):
                return ("cat", r)
        return ("out", i)

    def _in_buffer(self, i):
        """The buffer layer i reads."""
        d = self.d[i]
        if d.gathers:
            return ("buf", i)
        if d.concatenates:
            return ("cat", i)
        src = d.inputs[0]
        return ("out", MODEL_INPUT) if src == MODEL_INPUT else self._out_buffer(src)

    def _gap_target(self, i):
        for d in self.d:
            if d.gathers and i in d.inputs:
                return d.index
        return None

    def _place_data(self):
        buffers = self._buffers()
        placed = {("out", MODEL_INPUT): 0}
        order = sorted((k for k in buffers if k != ("out", MODEL_INPUT)),
                       key=lambda k: buffers[k]["first"])
        for key in order:
            b = buffers[key]
            live = []
            for other, off in placed.items():
                o = buffers[other]
                if o["first"] <= b["last"] and b["first"] <= o["last"] and (
                        dm.instances(o["mask"], self.dev) & dm.instances(b["mask"], self.dev)):
                    live.append((off, o["size"]))
            in_off = placed.get(self._in_buffer(b["first"]), 0)
            preferred = [self.half, 0] if in_off != self.half else [0, self.half]
            off = dm.choose_offset(b["size"], live, self.dev, preferred=preferred)
            if off is None:
                self._data_error(b["first"])
                off = preferred[0]
            placed[key] = off
        for d in self.d:
            if d.write_gap:
                base = placed[("buf", self._gap_target(d.index))]
                self.out_off[d.index] = base + 4 * d.gap_slot
            else:
                self.out_off[d.index] = placed[self._out_buffer(d.index)]
            self.in_off[d.index] = placed[self._in_buffer(d.index)]

    # ---------------------------------------------------------------- run
    def run(self):
        d, n = self.d, len(self.d)
        for i, di in enumerate(d):
            if di.weighted and not di.chw and di.count == self.dev.processors:
                self.masks[i] = self.all
                self.class_mask.setdefault(self.in_class(i), self.all)
                self._allocate(i)
        for i in range(n):
            mask = self._choose(i)
            if mask is None:
                return self
            self.masks[i] = mask
            if d[i].weighted and self.columns[i] is None:
                self._allocate(i)
        for i in range(n):
            cls = self.out_class(i)
            if i == n - 1:
                self.out_masks[i] = self.final_mask
            elif cls in self.class_mask:
                self.out_masks[i] = self.class_mask[cls]
            elif d[i].output:  # an output no layer reads: packed from processor 0
                self.out_masks[i] = (1 << d[i].out_count) - 1
            if d[i].tied and self.out_masks[i] != self.masks[i]:
                self.errors.append((i, "processors", (
                    f"{label(d[i])}: a layer without an operator writes to the processors it "
                    f"reads, but its readers need other processors. Put a convolution after "
                    f"it.")))
                return self
        self._place_data()
        return self


def plan_branches(demands, device):
    """The first `BranchPlanner` pass (over `STRATEGIES`) that fits, else the first one."""
    first = None
    for strategy in STRATEGIES:
        planner = BranchPlanner(demands, device, strategy).run()
        if not planner.errors:
            return planner
        first = first or planner
    return first
