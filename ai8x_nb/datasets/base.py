"""The in-memory dataset containers and the encoding shared by every loader.

Encoding (reference section 2): the device reads signed 8-bit inputs in
[-128, 127]; training divides them by 128.

- Pixels: `int8 = uint8 - 128` (the old TF scripts' convention), so 0 -> -128
  and 255 -> 127.
- Audio: an int16 sample `s` becomes `round(s / 256)` clipped to [-128, 127].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ai8x_nb.errors import DatasetError


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset.

    Args:
        name: `"train"`, `"valid"` or `"test"`.
        x: int8 array, values in [-128, 127], sample axis first.
        y: int64 class indices, shape `(N,)`.
        index: optional int64 array, for each sample its row in the source
            data it came from (augmented copies carry their source's row);
            lets callers check that splits are disjoint.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    index: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x.dtype != np.int8:
            raise DatasetError(f"Split {self.name!r}: x must be int8, got {self.x.dtype}.")
        if self.y.dtype != np.int64 or self.y.ndim != 1 or len(self.y) != len(self.x):
            raise DatasetError(
                f"Split {self.name!r}: y must be int64 of shape ({len(self.x)},), "
                f"got {self.y.dtype} {self.y.shape}."
            )

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int | None) -> Split:
        """Return the first `n` samples (all of them when `n` is None)."""
        if n is None or n >= len(self):
            return self
        index = None if self.index is None else self.index[:n]
        return Split(self.name, self.x[:n], self.y[:n], index)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset: three splits plus the class names.

    Args:
        name: registry name (`"mnist"`, ...) or the folder name for folders.
        train: training split.
        valid: validation split (held out from the official training data).
        test: official test split.
        class_names: one name per class index.
        source: for a folder of your own, the `load` arguments that read it again
            (`data_folder`, `kind`, `image_size`, `folder_hash`); None for the registry's
            datasets. Training records it in the run's config.json.
    """

    name: str
    train: Split
    valid: Split
    test: Split
    class_names: list[str]
    source: dict | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, no batch axis (e.g. `(28, 28, 1)`)."""
        return tuple(int(d) for d in self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (`len(class_names)`)."""
        return len(self.class_names)

    @property
    def splits(self) -> tuple[Split, Split, Split]:
        """`(train, valid, test)`, in that order."""
        return (self.train, self.valid, self.test)

    def limited(self, limit: int | None) -> Dataset:
        """Return a copy keeping at most `limit` samples per split (the first ones)."""
        if limit is None:
            return self
        if limit < 1:
            raise DatasetError(f"limit must be a positive int or None, got {limit!r}.")
        return dataclasses.replace(
            self, train=self.train.head(limit), valid=self.valid.head(limit), test=self.test.head(limit)
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, valid={len(self.valid)}, "
            f"test={len(self.test)}, input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


def to_float(x: np.ndarray) -> np.ndarray:
    """Return the training view of int8 inputs: `float32(x) / 128`, in [-1, 127/128].

    Args:
        x: int8 (or any integer) array.

    Returns:
        float32 array of the same shape.
    """
    return np.asarray(x, dtype=np.float32) / np.float32(128.0)


def pixels_to_int8(pixels: np.ndarray) -> np.ndarray:
    """Encode uint8 pixels as device inputs: `int8 = uint8 - 128`."""
    if pixels.dtype != np.uint8:
        raise DatasetError(f"Expected uint8 pixels, got {pixels.dtype}.")
    return (pixels.astype(np.int16) - 128).astype(np.int8)


def audio_to_int8(samples: np.ndarray) -> np.ndarray:
    """Encode int16-scaled audio as device inputs: `round(s / 256)` clipped to [-128, 127]."""
    return np.clip(np.rint(np.asarray(samples, dtype=np.float32) / 256.0), -128, 127).astype(np.int8)


def train_valid_split(
    n: int, *, valid_fraction: float = 0.1, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Split `range(n)` into train and valid row indices with a seeded permutation.

    Args:
        n: number of rows in the official training set.
        valid_fraction: share of rows held out for validation.
        seed: permutation seed.

    Returns:
        `(train_idx, valid_idx)`, int64, disjoint, covering `range(n)`.
    """
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    n_valid = int(round(n * valid_fraction))
    return perm[n_valid:], perm[:n_valid]


def check_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Raise `DatasetError` unless both fractions are in [0, 1) and sum below 1."""
    for name, v in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0:
            raise DatasetError(f"{name} must be in [0, 1), got {v!r}.")
    if valid_fraction + test_fraction >= 1.0:
        raise DatasetError(
            f"valid_fraction + test_fraction must be < 1, got {valid_fraction} + {test_fraction}."
        )


def make_dataset(
    name: str,
    class_names: Sequence[str],
    train: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    valid: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    test: tuple[np.ndarray, np.ndarray, np.ndarray | None],
) -> Dataset:
    """Build a `Dataset` from `(x, y, index)` triples, casting y to int64."""

    def split(split_name: str, triple) -> Split:
        x, y, idx = triple
        idx = None if idx is None else np.asarray(idx, dtype=np.int64)
        return Split(split_name, np.ascontiguousarray(x), np.asarray(y, dtype=np.int64), idx)

    return Dataset(name, split("train", train), split("valid", valid), split("test", test), list(class_names))
