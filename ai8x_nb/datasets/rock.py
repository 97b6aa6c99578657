"""Rock-Paper-Scissors and generic folders of class images.

Rock-Paper-Scissors layout (as the official zips extract): `rps/{rock,paper,
scissors}/*.png` (training, 2,520 images) next to `rps-test-set/{rock,paper,
scissors}/*.png` (test, 372). Images (300x300 RGB/RGBA) are converted to RGB,
resized bilinearly to 64x64 and encoded as `int8 = uint8 - 128`. The zips have
no published checksum, so they are checked for structure only.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ai8x_nb.datasets import _files
from ai8x_nb.datasets.base import Dataset, check_fractions, make_dataset, pixels_to_int8, train_valid_split
from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)

RPS_CLASS_NAMES = ("rock", "paper", "scissors")
RPS_IMAGE_SIZE = (64, 64)
RPS_URLS = types.MappingProxyType(
    {
        "train": "https://storage.googleapis.com/download.tensorflow.org/data/rps.zip",
        "test": "https://storage.googleapis.com/download.tensorflow.org/data/rps-test-set.zip",
    }
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image(path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """Read an image as uint8 RGB `(H, W, 3)`, resized bilinearly to `image_size` (H, W).

    Raises:
        DatasetError: Pillow is missing or the file is not a readable image.
    """
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow ships with matplotlib
        raise DatasetError("Reading images needs Pillow: `pip install pillow`.") from exc
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (image_size[1], image_size[0]):
                img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path} is not a readable image ({exc}).") from exc


def scan_images(root: Path, class_names: Sequence[str] | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    """List `<root>/<class>/*.{png,jpg,jpeg}` in sorted order.

    Args:
        root: folder with one sub-folder per class.
        class_names: the class folders in label order; default: sorted
            sub-folders (hidden and `_`-prefixed ones skipped).

    Returns:
        `(paths, labels, class_names)`.

    Raises:
        DatasetError: a class folder is missing or a folder holds no images.
    """
    root = Path(root)
    if class_names is None:
        class_names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    paths, labels = [], []
    for label, cls in enumerate(class_names):
        folder = root / cls
        if not folder.is_dir():
            raise DatasetError(f"{folder} is missing: expected one sub-folder per class {list(class_names)}.")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        paths.extend(files)
        labels.extend([label] * len(files))
    if not paths:
        raise DatasetError(f"{root} holds no PNG/JPEG images in class sub-folders.")
    return paths, np.asarray(labels, dtype=np.int64), list(class_names)


def _read_all(paths: Sequence[Path], image_size: tuple[int, int]) -> np.ndarray:
    out = np.empty((len(paths), *image_size, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        out[i] = read_image(p, image_size)
    return pixels_to_int8(out)


def image_folder(
    path: str | Path,
    *,
    image_size: tuple[int, int] = (64, 64),
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> Dataset:
    """Load a folder of class images as a `Dataset`.

    `path/<class>/*.png|jpg|jpeg`; classes are the sorted sub-folder names.
    Images are converted to RGB, resized bilinearly to `image_size` and
    encoded as `int8 = uint8 - 128`. The split is stratified and
    deterministic: within each class a permutation seeded by `seed` picks the
    test and valid images; each split is then in a seeded random order.

    Args:
        path: the folder.
        image_size: `(height, width)` of the samples.
        valid_fraction: share of each class in valid.
        test_fraction: share of each class in test.
        seed: split seed.

    Returns:
        A `Dataset` of `(n, H, W, 3)` int8 images, named after the folder.

    Raises:
        DatasetError: bad fractions, no images, or an unreadable image.

    Example:
        >>> ds = image_folder("flowers", image_size=(32, 32))  # doctest: +SKIP
    """
    check_fractions(valid_fraction, test_fraction)
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} is not a folder: expected one sub-folder of images per class.")
    paths, labels, class_names = scan_images(path)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for label in range(len(class_names)):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test, n_valid = round(len(idx) * test_fraction), round(len(idx) * valid_fraction)
        parts["test"].append(idx[:n_test])
        parts["valid"].append(idx[n_test : n_test + n_valid])
        parts["train"].append(idx[n_test + n_valid :])
    x = _read_all(paths, tuple(image_size))
    triples = []
    for name in ("train", "valid", "test"):
        idx = rng.permutation(np.concatenate(parts[name]).astype(np.int64))
        triples.append((x[idx], labels[idx], idx))
    return make_dataset(path.name, class_names, *triples)


def _ensure_rps(root: Path, which: str, download: bool) -> None:
    if root.is_dir() and any(root.iterdir()):
        return
    url = RPS_URLS[which]
    if not download:
        raise _files.missing_error([root], url)
    archive = root.parent / url.rsplit("/", 1)[1]
    if not archive.is_file():
        _files.download(url, archive)
    _files.extract(archive, root, strip_top=True)


def load_rock(
    root: Path,
    *,
    name: str = "rock",
    download: bool = True,
    seed: int = 42,
    allow_partial: bool = False,
) -> Dataset:
    """Load Rock-Paper-Scissors: `root` (training) and `<root>-test-set` (test).

    The official training images are split 90/10 into train/valid by a
    permutation seeded with `seed`; the official test set is `test`.
    Classes: 0 rock, 1 paper, 2 scissors.

    Args:
        root: the training folder (`<data_dir>/rps`); the test folder is its
            sibling `<root>-test-set`.
        name: dataset name.
        download: fetch and extract the official zips when a folder is missing.
        seed: train/valid permutation seed.
        allow_partial: unused (folders are taken as they are).

    Returns:
        A `Dataset` of `(n, 64, 64, 3)` int8 images.

    Raises:
        DatasetError: a folder is missing and cannot be downloaded, a class
            folder is missing, or an image is unreadable.
    """
    del allow_partial
    root = Path(root)
    test_root = root.with_name(root.name + "-test-set")
    _ensure_rps(root, "train", download)
    _ensure_rps(test_root, "test", download)
    train_paths, train_labels, _ = scan_images(root, RPS_CLASS_NAMES)
    test_paths, test_labels, _ = scan_images(test_root, RPS_CLASS_NAMES)
    x_all = _read_all(train_paths, RPS_IMAGE_SIZE)
    x_test = _read_all(test_paths, RPS_IMAGE_SIZE)
    train_idx, valid_idx = train_valid_split(len(x_all), seed=seed)
    # The test folders are sorted by class; a seeded order lets limit= keep a mix.
    test_idx = np.random.default_rng(seed).permutation(len(x_test)).astype(np.int64)
    logger.info("%s: %d training and %d test images", name, len(x_all), len(x_test))
    return make_dataset(
        name,
        RPS_CLASS_NAMES,
        (x_all[train_idx], train_labels[train_idx], train_idx),
        (x_all[valid_idx], train_labels[valid_idx], valid_idx),
        (x_test[test_idx], test_labels[test_idx], test_idx),
    )
