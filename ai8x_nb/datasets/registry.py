"""The dataset registry and `load`, the one entry point notebooks call.

Datasets are data: each entry names its default folder under the data dir and
the function that reads it. Adding a dataset means adding one entry.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
from collections.abc import Callable
from pathlib import Path

from ai8x_nb.datasets import cifar, folders, idx, kws, rock
from ai8x_nb.datasets._files import resolve_data_dir
from ai8x_nb.datasets.base import Dataset
from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """One registry entry.

    Args:
        name: registry name.
        folder: default folder under the data dir.
        reader: `reader(root, *, name, allow_partial, download, seed, augment,
            cache_dir) -> Dataset`.
        description: one line for listings.
    """

    name: str
    folder: str
    reader: Callable[..., Dataset]
    description: str


def _idx_reader(spec: idx.IdxSpec) -> Callable[..., Dataset]:
    def read(root: Path, *, name, allow_partial, download, seed, augment, cache_dir) -> Dataset:
        del augment, cache_dir  # image augmentation belongs to the training pipeline
        return idx.load_idx(spec, root, name=name, allow_partial=allow_partial, download=download, seed=seed)

    return read


def _cifar_reader(spec: cifar.CifarSpec) -> Callable[..., Dataset]:
    def read(root: Path, *, name, allow_partial, download, seed, augment, cache_dir) -> Dataset:
        del augment, cache_dir
        return cifar.load_cifar(spec, root, name=name, allow_partial=allow_partial, download=download, seed=seed)

    return read


def _kws_reader(root: Path, *, name, allow_partial, download, seed, augment, cache_dir) -> Dataset:
    return kws.load_kws20(
        root, name=name, allow_partial=allow_partial, download=download, seed=seed, augment=augment, cache_dir=cache_dir
    )


def _rock_reader(root: Path, *, name, allow_partial, download, seed, augment, cache_dir) -> Dataset:
    del augment, cache_dir
    return rock.load_rock(root, name=name, allow_partial=allow_partial, download=download, seed=seed)


DATASETS: types.MappingProxyType[str, DatasetInfo] = types.MappingProxyType(
    {
        info.name: info
        for info in (
            DatasetInfo("mnist", "mnist", _idx_reader(idx.MNIST), "MNIST digits, 28x28x1, 10 classes"),
            DatasetInfo(
                "fashionmnist", "fashion-mnist", _idx_reader(idx.FASHION_MNIST), "Fashion-MNIST, 28x28x1, 10 classes"
            ),
            DatasetInfo("cifar10", "cifar-10-batches-py", _cifar_reader(cifar.CIFAR10), "CIFAR-10, 32x32x3, 10 classes"),
            DatasetInfo(
                "cifar100", "cifar-100-python", _cifar_reader(cifar.CIFAR100), "CIFAR-100 fine labels, 32x32x3, 100 classes"
            ),
            DatasetInfo(
                "kws20", "speech_commands_v0.02", _kws_reader, "Speech Commands keywords, 128x128, 20 + unknown"
            ),
            DatasetInfo("rock", "rps", _rock_reader, "Rock-Paper-Scissors, 64x64x3, 3 classes"),
        )
    }
)


def load(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    folder: str | None = None,
    allow_partial: bool = False,
    download: bool = True,
    seed: int = 42,
    augment: bool = True,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    data_folder: str | os.PathLike | None = None,
    image_size: str | tuple[int, int] | None = None,
    folder_hash: str | None = None,
    on_folder_change: str = "refuse",
) -> Dataset:
    """Load a registered dataset from its original files, or a folder of your own.

    Inputs are int8 in [-128, 127] (`int8 = uint8 - 128` for pixels,
    `round(s / 256)` for int16 audio); divide by 128 (`to_float`) to train.

    Args:
        name: one of `DATASETS` (`"mnist"`, `"fashionmnist"`, `"cifar10"`,
            `"cifar100"`, `"kws20"`, `"rock"`).
        data_dir: folder holding the dataset folders; default: the
            `AI8X_NB_DATA` environment variable, else `./data`.
        folder: folder name under `data_dir` instead of the default
            (e.g. `"kws-espeak"`).
        allow_partial: accept an incomplete copy (CIFAR: whichever official
            batches are present; MNIST: files with another md5 but a valid
            structure). Never downloads. Logs a warning naming what is missing.
        download: fetch missing files from the official URL.
        seed: seed of the train/valid split (and of kws20 augmentation).
        augment: kws20 only: add augmented copies of the train clips.
        limit: keep at most this many samples per split (the first ones).
        cache_dir: kws20 only: folder of the processed-data cache (default:
            `$XDG_CACHE_HOME/ai8x-nb`, else `~/.cache/ai8x-nb`; never the data
            folder).
        data_folder: `"images"` / `"keywords"` only: your folder of class sub-folders
            (`ai8x_nb.datasets.folders`); `data_dir`, `folder`, `allow_partial`,
            `download`, `augment` and `cache_dir` do not apply to it.
        image_size: `"images"` only: `(height, width)` or `"HxW"` (default 64x64).
        folder_hash: the content hash a run recorded for `data_folder`.
        on_folder_change: when the folder's hash differs from `folder_hash`: "refuse"
            (raise) or "warn" (log and use the folder as it is).

    Returns:
        A `Dataset` with `train`, `valid` (held out from the official
        training data) and `test` (the official test data) splits.

    Raises:
        DatasetError: unknown name, or files missing/corrupt (the message
            names the file, the URL and the fix).

    Example:
        >>> ds = load("mnist", limit=1000)  # doctest: +SKIP
        >>> ds.train.x.shape  # doctest: +SKIP
        (1000, 28, 28, 1)
    """
    key = name.lower()
    if key not in DATASETS and key not in folders.FOLDER_DATASETS:
        raise DatasetError(f"Unknown dataset {name!r}; expected one of {sorted(DATASETS)}, or "
                           f"{' / '.join(folders.FOLDER_DATASETS)} with data_folder=.")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DatasetError(f"limit must be a positive int or None, got {limit!r}.")
    if key in folders.FOLDER_DATASETS:
        ds = folders.load_named(key, data_folder=data_folder, image_size=image_size,
                                folder_hash=folder_hash, on_change=on_folder_change, seed=seed)
        return ds.limited(limit)
    info = DATASETS[key]
    root = resolve_data_dir(data_dir) / (folder or info.folder)
    logger.info("Loading %s from %s", key, root)
    ds = info.reader(
        root,
        name=key,
        allow_partial=allow_partial,
        download=download and not allow_partial,
        seed=seed,
        augment=augment,
        cache_dir=cache_dir,
    )
    return ds.limited(limit)
