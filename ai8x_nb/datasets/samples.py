"""Sample inputs for the synthesis tool's known-answer test (reference section 6).

The tool reads a `.npy` of dtype int64 (it rejects int32), values in
[-128, 127], channel-first, no batch axis: `(C, H, W)` for images and
`(C, L)` for 1D data. kws20 samples are stored `(rows, cols)` = `(L, C)`, so
their export is the transpose: `(128, 128)` with axis 0 = column within a row.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ai8x_nb.datasets._files import atomic_save_npy
from ai8x_nb.datasets.base import Dataset, Split
from ai8x_nb.errors import DatasetError


def sample_array(x: np.ndarray, *, channel_first: bool = True, swap: bool = False) -> np.ndarray:
    """Convert one stored sample to the synthesis layout (int64).

    Args:
        x: one sample, `(H, W, C)` (image) or `(L, C)` (1D).
        channel_first: `(C, H, W)` / `(C, L)`; False keeps the stored layout.
        swap: swap the two spatial axes (H<->W) of an image, or the two axes
            of 1D data.

    Returns:
        int64 array.

    Raises:
        DatasetError: `x` is not 2D or 3D.
    """
    x = np.asarray(x)
    if x.ndim == 3:
        out = np.transpose(x, (2, 0, 1)) if channel_first else x
        if swap:
            out = np.swapaxes(out, -2, -1) if channel_first else np.swapaxes(out, 0, 1)
    elif x.ndim == 2:
        out = x.T if channel_first else x
        if swap:
            out = out.T
    else:
        raise DatasetError(f"A sample must be (H, W, C) or (L, C); got shape {x.shape}.")
    return np.ascontiguousarray(out, dtype=np.int64)


def _as_split(ds_or_split: Dataset | Split) -> Split:
    if isinstance(ds_or_split, Dataset):
        return ds_or_split.test
    if isinstance(ds_or_split, Split):
        return ds_or_split
    raise DatasetError(f"Expected a Dataset or Split, got {type(ds_or_split).__name__}.")


def save_sample(
    ds_or_split: Dataset | Split,
    index: int,
    out_path: str | Path,
    *,
    channel_first: bool = True,
    swap: bool = False,
) -> np.ndarray:
    """Save one sample as the synthesis tool's `--sample-input` `.npy`.

    Args:
        ds_or_split: a `Split`, or a `Dataset` (its `test` split is used).
        index: sample index in the split (0 is valid).
        out_path: `.npy` file, written atomically without pickling.
        channel_first: see `sample_array`.
        swap: see `sample_array`.

    Returns:
        The saved int64 array, e.g. `(1, 28, 28)` for mnist, `(3, 32, 32)` for
        cifar10, `(128, 128)` for kws20.

    Raises:
        DatasetError: `index` out of range.

    Example:
        >>> save_sample(ds, 0, "sample_mnist.npy").shape  # doctest: +SKIP
        (1, 28, 28)
    """
    split = _as_split(ds_or_split)
    if not isinstance(index, (int, np.integer)) or not 0 <= index < len(split):
        raise DatasetError(f"index must be in [0, {len(split)}) for split {split.name!r}, got {index!r}.")
    arr = sample_array(split.x[int(index)], channel_first=channel_first, swap=swap)
    atomic_save_npy(Path(out_path), arr)
    return arr


def save_samples_per_class(
    split: Dataset | Split,
    out_dir: str | Path,
    *,
    channel_first: bool = True,
    swap: bool = False,
    class_names: list[str] | None = None,
) -> list[Path]:
    """Save the first sample of each class present as `sample_<class>.npy`.

    Args:
        split: a `Split`, or a `Dataset` (its `test` split and class names).
        out_dir: output folder (created).
        channel_first: see `sample_array`.
        swap: see `sample_array`.
        class_names: names used in the file names; default: the class index
            (or the dataset's names when a `Dataset` is passed).

    Returns:
        The written paths, in class order.
    """
    if isinstance(split, Dataset) and class_names is None:
        class_names = split.class_names
    split = _as_split(split)
    out_dir = Path(out_dir)
    paths = []
    for label in np.unique(split.y):
        first = int(np.flatnonzero(split.y == label)[0])
        tag = str(int(label)) if class_names is None else re.sub(r"[^\w.-]+", "_", class_names[int(label)])
        path = out_dir / f"sample_{tag}.npy"
        save_sample(split, first, path, channel_first=channel_first, swap=swap)
        paths.append(path)
    return paths
