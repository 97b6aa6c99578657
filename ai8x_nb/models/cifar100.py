"""The seed CIFAR-100 model: 13 fused convolutions and a wide 1x1 classifier (381,792 params).

32x32 input; five 2x2 max pools (before layers 5, 8, 10, 11, 13) bring it to 1x1, so the
final 1x1 convolution with 100 filters is the classifier and the Flatten only drops the
1x1. 3x3 layers use padding 1, 1x1 layers padding 0; no bias anywhere.

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
381792
"""

from ai8x_nb.models.base import ModelInfo

# (filters, kernel size, max-pool before the convolution)
STACK = (
    (16, 3, False), (20, 3, False), (20, 3, False), (20, 3, False), (20, 3, True),
    (20, 3, False), (44, 3, False), (48, 3, True), (48, 3, False), (96, 3, True),
    (512, 1, True), (128, 1, False), (128, 3, True),
)

SPEC = tuple(
    {"type": "conv2d", "filters": filters, "kernel_size": kernel, "padding": kernel // 2,
     "pooling": "max" if pool else None, "use_bias": False}
    for filters, kernel, pool in STACK
) + (
    {"type": "conv2d", "filters": 100, "kernel_size": 1, "padding": 0, "activation": None,
     "wide": True, "use_bias": False},
    {"type": "flatten"},
)
"""The layers (`ai8x_nb.spec` rows; fields not given have the spec's defaults)."""

INFO = ModelInfo(
    name="cifar100", spec=SPEC, dataset="cifar100", num_classes=100,
    input_shape=(32, 32, 3), batch_size=32, lr=3e-4, params=381_792,
    description="CIFAR-100: 13 convs + wide 1x1 classifier, no bias, 33.38 % in the seed")
