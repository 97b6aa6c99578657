"""Keras 3 layers that can only express what the MAX78000/MAX78002 runs.

Each layer validates its arguments against the chosen device at construction and its
input in `build`, and computes the device arithmetic (ai8x reference, section 3).
"""

from ai8x_nb.layers.base import PACKAGE, HardwareLayer
from ai8x_nb.layers.concat import Concatenate
from ai8x_nb.layers.conv import Conv1D, Conv2D, ConvTranspose2D
from ai8x_nb.layers.dense import Dense
from ai8x_nb.layers.eltwise import ELTWISE_OPS, Add, Eltwise, Or, Sub, Xor
from ai8x_nb.layers.pooling import AvgPool1D, AvgPool2D, MaxPool1D, MaxPool2D

__all__ = [
    "PACKAGE",
    "HardwareLayer",
    "Conv1D",
    "Conv2D",
    "ConvTranspose2D",
    "Dense",
    "Eltwise",
    "Add",
    "Sub",
    "Xor",
    "Or",
    "ELTWISE_OPS",
    "Concatenate",
    "MaxPool1D",
    "MaxPool2D",
    "AvgPool1D",
    "AvgPool2D",
]
