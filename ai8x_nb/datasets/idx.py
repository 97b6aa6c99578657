"""MNIST and Fashion-MNIST from their original IDX `.gz` files.

Each `.gz` is checked against the official md5, then its IDX header (magic
number, dimensions) is parsed and the payload size verified, so a truncated or
corrupt file is reported by name instead of being used.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from ai8x_nb.datasets import _files
from ai8x_nb.datasets.base import Dataset, make_dataset, pixels_to_int8, train_valid_split
from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)

_IDX_DTYPES = {0x08: np.uint8}


@dataclasses.dataclass(frozen=True)
class IdxFile:
    """One official IDX file: name, md5 and size of the `.gz`, expected shape."""

    name: str
    md5: str
    size: int
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class IdxSpec:
    """Where an IDX dataset comes from and what it must contain."""

    base_url: str
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    class_names: tuple[str, ...]

    @property
    def files(self) -> tuple[IdxFile, ...]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


MNIST = IdxSpec(
    base_url="https://storage.googleapis.com/cvdf-datasets/mnist/",
    train_images=IdxFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422, (60000, 28, 28)),
    train_labels=IdxFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881, (60000,)),
    test_images=IdxFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1648877, (10000, 28, 28)),
    test_labels=IdxFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4542, (10000,)),
    class_names=tuple(str(i) for i in range(10)),
)

FASHION_MNIST = IdxSpec(
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    train_images=IdxFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880, (60000, 28, 28)),
    train_labels=IdxFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515, (60000,)),
    test_images=IdxFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4422102, (10000, 28, 28)),
    test_labels=IdxFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5148, (10000,)),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
)  # fmt: skip


def read_idx(path: Path, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a gzip-compressed IDX file into a uint8 array.

    Args:
        path: the `.gz` file.
        expected_shape: if given, the shape the header must declare.

    Returns:
        uint8 array with the shape from the header.

    Raises:
        DatasetError: the file is not gzip, is truncated, has a bad magic
            number, declares another shape, or its payload size does not
            match its header. The message names the file.
    """
    try:
        raw = gzip.decompress(Path(path).read_bytes())
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(
            f"{path} is truncated or not a valid gzip file ({type(exc).__name__}: {exc}). "
            f"Delete it and download it again."
        ) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes: bad magic number {raw[:4].hex()}.")
    ndim = raw[3]
    wanted = len(expected_shape) if expected_shape is not None else None
    if not 1 <= ndim <= 4 or (wanted is not None and ndim != wanted):
        raise DatasetError(
            f"{path} is not an IDX file of this dataset: its magic number {raw[:4].hex()} "
            f"declares {ndim} dimensions, expected {wanted or '1 to 4'}. Delete it and download "
            f"it again.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated: the IDX header needs {header} bytes, file has {len(raw)}.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    payload = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != payload:
        raise DatasetError(
            f"{path} is truncated or corrupt: header declares shape {shape} ({payload} bytes of data), "
            f"but the file holds {len(raw) - header}."
        )
    if expected_shape is not None and shape != tuple(expected_shape):
        raise DatasetError(f"{path} has shape {shape}, expected {tuple(expected_shape)}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _ensure_files(spec: IdxSpec, root: Path, *, download: bool, allow_partial: bool) -> None:
    missing = [f for f in spec.files if not (root / f.name).is_file()]
    for f in missing:
        path, url = root / f.name, spec.base_url + f.name
        if not download:
            raise _files.missing_error([path], url)
        _files.download(url, path, md5=f.md5)
    for f in spec.files:
        try:
            _files.check_checksum(root / f.name, f.md5, expected_size=f.size)
        except DatasetError as exc:
            if not allow_partial:
                raise
            # allow_partial accepts re-compressed copies; the IDX structure is still checked.
            logger.warning("%s (allow_partial=True: checking its structure instead)", exc)


def load_idx(
    spec: IdxSpec,
    root: Path,
    *,
    name: str,
    allow_partial: bool = False,
    download: bool = True,
    seed: int = 42,
) -> Dataset:
    """Load an IDX dataset (MNIST layout) from `root`.

    Pixels are encoded as `int8 = uint8 - 128`; images get a channel axis,
    `(N, 28, 28, 1)`. The official training set is split 90/10 into train and
    valid with a permutation seeded by `seed`; the official test set is `test`.

    Args:
        spec: `MNIST` or `FASHION_MNIST`.
        root: folder holding the four `.gz` files.
        name: dataset name stored on the result.
        allow_partial: accept files whose md5 differs (e.g. re-compressed)
            if their IDX structure is valid; logs a warning.
        download: fetch missing files from the official URL.
        seed: seed of the train/valid permutation.

    Returns:
        A `Dataset`.

    Raises:
        DatasetError: a file is missing and cannot be downloaded, or is
            corrupt/truncated.
    """
    root = Path(root)
    _ensure_files(spec, root, download=download, allow_partial=allow_partial)
    x_train = read_idx(root / spec.train_images.name, spec.train_images.shape)
    y_train = read_idx(root / spec.train_labels.name, spec.train_labels.shape)
    x_test = read_idx(root / spec.test_images.name, spec.test_images.shape)
    y_test = read_idx(root / spec.test_labels.name, spec.test_labels.shape)
    n_classes = len(spec.class_names)
    for path, y in ((spec.train_labels.name, y_train), (spec.test_labels.name, y_test)):
        if y.max(initial=0) >= n_classes:
            raise DatasetError(f"{root / path} holds label {int(y.max())}, expected < {n_classes}.")
    train_idx, valid_idx = train_valid_split(len(x_train), seed=seed)
    x_train = pixels_to_int8(x_train)[..., None]
    x_test = pixels_to_int8(x_test)[..., None]
    return make_dataset(
        name,
        spec.class_names,
        (x_train[train_idx], y_train[train_idx], train_idx),
        (x_train[valid_idx], y_train[valid_idx], valid_idx),
        (x_test, y_test, np.arange(len(x_test))),
    )
