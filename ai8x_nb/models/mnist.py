"""The seed MNIST model: four fused convolutions and a wide linear layer (71,158 parameters).

Input (28, 28) int8/128, read by the first convolution as (28, 28, 1) -> Conv 60 p1 ->
MaxPool 2 + Conv 60 p2 -> MaxPool 2 + Conv 56 p1 -> AvgPool 2 + Conv 12 p1 -> Flatten ->
Dense 10 wide. The convolutions have no bias; the linear layer has one. Trained with Adam,
batch 256, lr 1e-3.

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
71158
"""

from ai8x_nb.models.base import ModelInfo

SPEC = (
    {"type": "conv2d", "filters": 60, "use_bias": False},
    {"type": "conv2d", "filters": 60, "padding": 2, "pooling": "max", "use_bias": False},
    {"type": "conv2d", "filters": 56, "pooling": "max", "use_bias": False},
    {"type": "conv2d", "filters": 12, "pooling": "avg", "use_bias": False},
    {"type": "flatten"},
    {"type": "dense", "units": 10, "wide": True},
)
"""The layers (`ai8x_nb.spec` rows; fields not given have the spec's defaults)."""

INFO = ModelInfo(
    name="mnist", spec=SPEC, dataset="mnist", num_classes=10, input_shape=(28, 28),
    spec_input_shape=(28, 28, 1), batch_size=256, lr=1e-3, params=71_158,
    description="MNIST: 4 convs (no bias) + wide linear, 99.00 % after 100 epochs in the seed")
