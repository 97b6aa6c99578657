"""The seed CIFAR-10 model: the MNIST stack on 32x32x3, all padding 1, no bias (72,228 params).

Trained with Adam, batch 64, and a step schedule 3e-4 -> 1e-4 (epoch 40) -> 5e-5 (80) ->
3e-5 (120).

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
72228
"""

from ai8x_nb.models.base import ModelInfo
from ai8x_nb.models.schedules import step_schedule

SPEC = (
    {"type": "conv2d", "filters": 60, "use_bias": False},
    {"type": "conv2d", "filters": 60, "pooling": "max", "use_bias": False},
    {"type": "conv2d", "filters": 56, "pooling": "max", "use_bias": False},
    {"type": "conv2d", "filters": 12, "pooling": "avg", "use_bias": False},
    {"type": "flatten"},
    {"type": "dense", "units": 10, "wide": True, "use_bias": False},
)
"""The layers (`ai8x_nb.spec` rows; fields not given have the spec's defaults)."""

INFO = ModelInfo(
    name="cifar10", spec=SPEC, dataset="cifar10", num_classes=10, input_shape=(32, 32, 3),
    batch_size=64, lr=3e-4, params=72_228,
    schedule=step_schedule((40, 80, 120), (3e-4, 1e-4, 5e-5, 3e-5)),
    description="CIFAR-10: 4 convs + wide linear, no bias, 70.36 % in the seed")
