"""Kernel memory, allocated the way the synthesis tool allocates it.

Every processor has its own kernel memory of 72-bit words (`device.weight_words`: 768 each on
the MAX78000; 4096, and 5120 on the first processor of each quadrant, on the MAX78002). A layer
takes the same block of columns `[offset, offset + words)` on every one of its input
processors. ai8x-synthesis (`izer/kernels.py`, greedy allocator, its default) places the layers
one after the other:

- first the layers that read all 64 processors, then all others, each group in layer order;
- each layer at the lowest column, a multiple of 4, where the block is free on all its
  processors;
- on the MAX78002, a layer whose processors all have the larger memory (only processors 0, 16,
  32, 48) is placed from the top of that memory down instead;
- the tool stops with "Kernel memory exhausted at processor P" when the block runs past the
  memory of a processor.

`KernelMemory` replays this column by column, so a placement it accepts is one the tool
accepts.
"""

import numpy as np

__all__ = ["KernelMemory"]

ALIGN = 4


def _processors(mask):
    return [p for p in range(mask.bit_length()) if mask >> p & 1]


class KernelMemory:
    """Occupied kernel-memory columns of every processor of one device.

    Args:
        device: a `Device`.

    Example:

    >>> memory = KernelMemory(MAX78000)
    >>> memory.allocate(0xF, 60)  # four processors, 60 words each
    0
    >>> memory.allocate(0x3C, 10)  # overlaps processors 2 and 3: next free multiple of 4
    60
    """

    def __init__(self, device):
        self.widths = np.asarray(device.weight_words, dtype=np.int64)
        self.large = int(self.widths.max())
        self.extended = int(self.widths.min()) < self.large
        self.used = np.zeros((len(self.widths), self.large), dtype=bool)

    def copy(self):
        """An independent copy (for trying a placement)."""
        other = KernelMemory.__new__(KernelMemory)
        other.widths, other.large, other.extended = self.widths, self.large, self.extended
        other.used = self.used.copy()
        return other

    def _free_blocks(self, procs, words):
        """Start columns c where [c, c + words) is free on all `procs` (bool per column)."""
        busy = self.used[procs].any(axis=0).astype(np.int64)
        total = np.concatenate(([0], np.cumsum(busy)))
        starts = np.arange(0, self.large - words + 1)
        return starts, total[starts + words] - total[starts] == 0

    def find(self, mask, words):
        """The column the tool would place a `words`-long block on `mask` at.

        Returns:
            The start column, or None when the tool would run out of kernel memory. A
            returned block may still end past a processor's memory: see `fits`.
        """
        procs = _processors(mask)
        if words <= 0 or not procs:
            return 0
        if words > self.large:
            return None
        if self.extended and all(self.widths[p] == self.large for p in procs):
            top = self._find_from_top(procs, words)
            if top is not None:
                return top
        starts, free = self._free_blocks(procs, words)
        ok = starts[free & (starts % ALIGN == 0)]
        return int(ok[0]) if len(ok) else None

    def _find_from_top(self, procs, words):
        """Search from the top column down, as the tool does for large-memory processors."""
        end = self.large - 1
        while end >= 0 and self.used[procs[0], end]:
            end -= ALIGN
        moved = True
        while moved:
            moved = False
            if end - words + 1 < 0:
                return None
            for p in procs:
                block = self.used[p, end - words + 1:end + 1]
                if block.any():
                    # The tool moves below the highest busy column of the first processor
                    # in the way, then checks all processors again.
                    hit = end - words + 1 + int(np.nonzero(block)[0].max())
                    end = (hit - 1) & ~(ALIGN - 1)
                    moved = True
                    break
        return (end - words + 1) & ~(ALIGN - 1)

    def fits(self, mask, column, words, written=None):
        """Whether the block, and what is written there, ends within every processor's memory.

        Args:
            mask: the processors.
            column: the block's first column (None: not found).
            words: the block length.
            written: the words written on each processor of `mask`, in order (default
                `words` each).
        """
        procs = _processors(mask)
        written = written or [words] * len(procs)
        return column is not None and all(
            column + max(words, w) <= self.widths[p] for p, w in zip(procs, written))

    def allocate(self, mask, words, written=None):
        """Place a block as the tool would; returns its column, or None when it does not fit.

        Args:
            mask: the processors.
            words: the block the tool looks for (`LayerDemand.words`).
            written: the words it then fills on each processor (`LayerDemand.written`);
                default `words` each.
        """
        column = self.find(mask, words)
        if not self.fits(mask, column, words, written):
            return None
        procs = _processors(mask)
        written = written or [words] * len(procs)
        if any(self.used[p, column:column + w].any() for p, w in zip(procs, written)):
            return None  # the tool would write over another layer's kernels and stop
        for p, w in zip(procs, written):
            self.used[p, column:column + w] = True
        return column

    def top(self):
        """Per processor: one past the highest occupied column (0 when empty)."""
        rows = self.used.any(axis=1)
        last = self.large - np.argmax(self.used[:, ::-1], axis=1)
        return np.where(rows, last, 0)

    def words_used(self):
        """Per processor: the number of occupied columns."""
        return self.used.sum(axis=1)
