"""The seed Rock-Paper-Scissors model on 64x64x3 images (54,693 parameters).

Conv 15 -> MaxPool + Conv 30 -> Dropout 0.2 -> MaxPool + Conv 60 -> MaxPool + Conv 30 ->
MaxPool + Conv 30 -> Conv 30 -> Flatten -> Dropout 0.2 -> Dense 3 wide; 3x3 padding 1,
biases on, 2x2 max pools.

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
54693
"""

from ai8x_nb.models.base import ModelInfo

SPEC = (
    {"type": "conv2d", "filters": 15},
    {"type": "conv2d", "filters": 30, "pooling": "max"},
    {"type": "dropout", "rate": 0.2},
    {"type": "conv2d", "filters": 60, "pooling": "max"},
    {"type": "conv2d", "filters": 30, "pooling": "max"},
    {"type": "conv2d", "filters": 30, "pooling": "max"},
    {"type": "conv2d", "filters": 30},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 3, "wide": True},
)
"""The layers (`ai8x_nb.spec` rows; fields not given have the spec's defaults)."""

INFO = ModelInfo(
    name="rock", spec=SPEC, dataset="rock", num_classes=3, input_shape=(64, 64, 3),
    batch_size=32, lr=1e-3, params=54_693,
    description="Rock-Paper-Scissors: 6 convs + wide linear, 91.40 % in the seed")
