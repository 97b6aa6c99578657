"""CIFAR-10 and CIFAR-100 from the official python pickle batches.

Layout (`cifar-10-batches-py/`): `data_batch_1`..`data_batch_5` (10,000 rows
each), `test_batch` (10,000), `batches.meta` (`label_names`).
Layout (`cifar-100-python/`): `train` (50,000), `test` (10,000), `meta`
(`fine_label_names`); the fine labels are used.

Every pickle is read with a restricted unpickler (only the numpy array
reconstruction it needs) and checked: a dict with `data` uint8 of shape
`(n, 3072)` and `n` labels in range. Rows are stored as 1024 R, 1024 G, 1024 B
bytes; they become `(n, 32, 32, 3)` int8 with `int8 = uint8 - 128`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pickle
from pathlib import Path

import numpy as np

from ai8x_nb.datasets import _files
from ai8x_nb.datasets.base import Dataset, make_dataset, pixels_to_int8, train_valid_split
from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CifarSpec:
    """Where a CIFAR variant comes from and what its files must hold."""

    url: str
    archive: str
    archive_md5: str
    train_files: tuple[tuple[str, int], ...]  # (file name, rows)
    test_file: tuple[str, int]
    meta_file: str
    names_key: bytes
    labels_key: bytes
    num_classes: int


CIFAR10 = CifarSpec(
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    archive="cifar-10-python.tar.gz",
    archive_md5="c58f30108f718f92721af3b95e74349a",
    train_files=tuple((f"data_batch_{i}", 10000) for i in range(1, 6)),
    test_file=("test_batch", 10000),
    meta_file="batches.meta",
    names_key=b"label_names",
    labels_key=b"labels",
    num_classes=10,
)

CIFAR100 = CifarSpec(
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    archive="cifar-100-python.tar.gz",
    archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
    train_files=(("train", 50000),),
    test_file=("test", 10000),
    meta_file="meta",
    names_key=b"fine_label_names",
    labels_key=b"fine_labels",
    num_classes=100,
)


def _multiarray():
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 2
        return importlib.import_module("numpy.core.multiarray")


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, bytes, lists and dicts.

    The CIFAR batches are pickles; refusing every other global means a
    tampered file cannot run code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")
        if name == "_reconstruct":
            return _multiarray()._reconstruct
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict:
    """Read one CIFAR pickle (bytes keys) with the restricted unpickler.

    Raises:
        DatasetError: the file is truncated, not a pickle, uses a forbidden
            global, or does not hold a dict.
    """
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DatasetError(
            f"{path} is truncated or corrupt: cannot unpickle it ({type(exc).__name__}: {exc}). "
            f"Delete it and download it again."
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{path} is not a CIFAR batch: expected a dict, got {type(obj).__name__}.")
    return obj


def read_batch(
    path: Path, *, labels_key: bytes, num_classes: int, expected_rows: int, allow_partial: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one batch file.

    Args:
        path: batch file.
        labels_key: `b"labels"` (CIFAR-10) or `b"fine_labels"` (CIFAR-100).
        num_classes: labels must be below this.
        expected_rows: official row count.
        allow_partial: accept fewer rows than `expected_rows` (logs a warning).

    Returns:
        `(pixels, labels)`: uint8 `(n, 32, 32, 3)` and int64 `(n,)`.

    Raises:
        DatasetError: wrong keys, dtype, shape, label range, or row count.
    """
    d = read_pickle(path)
    if b"data" not in d or labels_key not in d:
        raise DatasetError(
            f"{path} is not a CIFAR batch: keys {sorted(d)}, expected b'data' and {labels_key!r}."
        )
    data = np.asarray(d[b"data"])
    labels = np.asarray(d[labels_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{path}: data must be uint8 of shape (n, 3072), got {data.dtype} {data.shape}.")
    n = data.shape[0]
    if labels.shape != (n,):
        raise DatasetError(f"{path}: {n} images but {labels.size} labels.")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels must be in [0, {num_classes}), got [{labels.min()}, {labels.max()}].")
    if n > expected_rows or (n < expected_rows and not allow_partial):
        raise DatasetError(
            f"{path} is truncated or corrupt: {n} rows, expected {expected_rows}. "
            f"Delete it and download it again, or pass allow_partial=True to use it anyway."
        )
    if n < expected_rows:
        logger.warning("%s has %d rows, expected %d (allow_partial=True: using it).", path, n, expected_rows)
    pixels = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
    return pixels, labels


def _fetch_archive(spec: CifarSpec, root: Path, missing: list[Path]) -> None:
    archive = root.parent / spec.archive
    if not archive.is_file():
        try:
            _files.download(spec.url, archive, md5=spec.archive_md5)
        except DatasetError as exc:
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            raise _files.missing_error([*missing, archive], spec.url, reason) from exc
    else:
        _files.check_checksum(archive, spec.archive_md5)
    _files.extract(archive, root, strip_top=True)


def load_cifar(
    spec: CifarSpec,
    root: Path,
    *,
    name: str,
    allow_partial: bool = False,
    download: bool = True,
    seed: int = 42,
) -> Dataset:
    """Load CIFAR-10 or CIFAR-100 from the official pickle folder `root`.

    The official training rows (all train batches, in file order) are split
    90/10 into train/valid by a permutation seeded with `seed`; the official
    test batch is `test`.

    Args:
        spec: `CIFAR10` or `CIFAR100`.
        root: the extracted folder (`cifar-10-batches-py` or `cifar-100-python`).
        name: dataset name stored on the result.
        allow_partial: load whichever official train batches are present,
            accepting short ones (still validated); logs a warning naming
            what is missing or short. Never downloads.
        download: in strict mode, fetch and extract the official archive
            (md5-checked) into `root` when files are missing. An archive
            already next to `root` is used instead of downloading.
        seed: seed of the train/valid permutation.

    Returns:
        A `Dataset` of `(n, 32, 32, 3)` int8 images.

    Raises:
        DatasetError: files missing (strict mode, or the test/meta file in
            partial mode), or a file is corrupt/truncated.
    """
    root = Path(root)
    names = [f for f, _ in spec.train_files] + [spec.test_file[0], spec.meta_file]
    missing = [root / f for f in names if not (root / f).is_file()]
    if missing and allow_partial:
        required = [root / spec.test_file[0], root / spec.meta_file]
        present_train = [f for f, _ in spec.train_files if (root / f).is_file()]
        hard_missing = [p for p in required if p in missing] + ([] if present_train else [root / spec.train_files[0][0]])
        if hard_missing:
            raise _files.missing_error(hard_missing, None)
        logger.warning(
            "%s: missing %s (allow_partial=True: loading the batches that are present).",
            name, ", ".join(p.name for p in missing),
        )
    elif missing:
        if not download:
            raise _files.missing_error(missing, spec.url)
        _fetch_archive(spec, root, missing)

    meta = read_pickle(root / spec.meta_file)
    if spec.names_key not in meta or len(meta[spec.names_key]) != spec.num_classes:
        raise DatasetError(f"{root / spec.meta_file}: expected {spec.num_classes} names under {spec.names_key!r}.")
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec.names_key]]

    def batch(fname: str, rows: int):
        return read_batch(
            root / fname, labels_key=spec.labels_key, num_classes=spec.num_classes,
            expected_rows=rows, allow_partial=allow_partial,
        )

    parts = [batch(f, rows) for f, rows in spec.train_files if (root / f).is_file()]
    x_all = np.concatenate([p[0] for p in parts])
    y_all = np.concatenate([p[1] for p in parts])
    x_test, y_test = batch(*spec.test_file)
    train_idx, valid_idx = train_valid_split(len(x_all), seed=seed)
    x_all = pixels_to_int8(x_all)
    return make_dataset(
        name,
        class_names,
        (x_all[train_idx], y_all[train_idx], train_idx),
        (x_all[valid_idx], y_all[valid_idx], valid_idx),
        (pixels_to_int8(x_test), y_test, np.arange(len(x_test))),
    )
