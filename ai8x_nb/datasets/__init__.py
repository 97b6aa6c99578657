"""Datasets for the MAX78000 workbench, read from their original files.

Every loader returns a `Dataset` whose splits hold int8 inputs in [-128, 127]
(what the device reads) and int64 labels; `to_float` gives the training view
`x / 128`. Pixels are encoded `int8 = uint8 - 128`; int16 audio as
`round(s / 256)` clipped to [-128, 127].

Example:
    >>> from ai8x_nb.datasets import load, make_tf_dataset  # doctest: +SKIP
    >>> ds = load("mnist")  # doctest: +SKIP
    >>> train = make_tf_dataset(ds.train, 256, shuffle=True)  # doctest: +SKIP
"""

from ai8x_nb.datasets._files import resolve_data_dir
from ai8x_nb.datasets.base import Dataset, Split, to_float
from ai8x_nb.datasets.folder_report import describe
from ai8x_nb.datasets.folders import FOLDER_DATASETS, load_folder
from ai8x_nb.datasets.kws import audio_folder
from ai8x_nb.datasets.pipeline import make_tf_dataset
from ai8x_nb.datasets.registry import DATASETS, DatasetInfo, load
from ai8x_nb.datasets.rock import image_folder
from ai8x_nb.datasets.samples import save_sample, save_samples_per_class

__all__ = [
    "DATASETS",
    "FOLDER_DATASETS",
    "Dataset",
    "DatasetInfo",
    "Split",
    "audio_folder",
    "describe",
    "image_folder",
    "load",
    "load_folder",
    "make_tf_dataset",
    "resolve_data_dir",
    "save_sample",
    "save_samples_per_class",
    "to_float",
]
