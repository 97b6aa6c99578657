"""What a dataset of your own holds: classes, counts per split, and warnings about them.

`describe(dataset)` is the table the folder notebooks and `ai8x-nb train --data-folder` print:
one row per class with its train / valid / test counts, then a WARNING line for classes with
fewer than `FEW_SAMPLES` samples and for an imbalance above `IMBALANCE_RATIO`.
"""

import numpy as np

__all__ = ["FEW_SAMPLES", "IMBALANCE_RATIO", "class_counts", "folder_warnings", "describe"]

FEW_SAMPLES = 20
"""A class with fewer samples than this gets a warning (its accuracy is noisy)."""
IMBALANCE_RATIO = 3.0
"""Largest / smallest class count above which the folder gets an imbalance warning."""


def class_counts(dataset):
    """Samples per class in each split: `{"train": [...], "valid": [...], "test": [...]}`."""
    n = dataset.num_classes
    return {s.name: np.bincount(s.y, minlength=n).tolist() for s in dataset.splits}


def folder_warnings(dataset, *, few=FEW_SAMPLES, ratio=IMBALANCE_RATIO):
    """Warnings about a dataset's classes: too few samples, and class imbalance.

    Args:
        dataset: a `Dataset` (counted over its three splits).
        few: a class with fewer samples in all is "too small".
        ratio: largest / smallest class count above which the classes are "imbalanced".

    Returns:
        A list of sentences (empty when nothing is wrong).
    """
    totals = np.sum([c for c in class_counts(dataset).values()], axis=0)
    names = dataset.class_names
    out = []
    small = [f"{names[i]!r} ({totals[i]})" for i in range(len(names)) if totals[i] < few]
    if small:
        out.append(f"Too few samples: {', '.join(small)} have fewer than {few}; their test "
                   f"accuracy rests on a handful of samples. Add samples to them.")
    hi, lo = int(np.argmax(totals)), int(np.argmin(totals))
    if totals[lo] and totals[hi] / totals[lo] > ratio:
        out.append(f"Class imbalance: {names[hi]!r} has {totals[hi]} samples, {names[lo]!r} "
                   f"only {totals[lo]} ({totals[hi] / totals[lo]:.1f}x, above {ratio:g}x); "
                   f"the model may favour the large classes. Balance them, or read the "
                   f"per-class accuracy below rather than the overall one.")
    return out


def describe(dataset):
    """A text table of the classes and their counts per split, then the warnings."""
    counts = class_counts(dataset)
    width = max(len("class"), *(len(n) for n in dataset.class_names))
    lines = [f"{'class':<{width}}  {'train':>6} {'valid':>6} {'test':>6}"]
    for i, name in enumerate(dataset.class_names):
        lines.append(f"{name:<{width}}  {counts['train'][i]:>6} {counts['valid'][i]:>6} "
                     f"{counts['test'][i]:>6}")
    lines.append(f"{'all':<{width}}  {len(dataset.train):>6} {len(dataset.valid):>6} "
                 f"{len(dataset.test):>6}")
    lines += [f"WARNING: {w}" for w in folder_warnings(dataset)]
    return "\n".join(lines)
