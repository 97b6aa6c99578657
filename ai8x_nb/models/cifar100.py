"""The seed CIFAR-100 model: 13 fused convolutions and a wide 1x1 classifier (381,792 params).

32x32 input; five 2x2 max pools (before layers 5, 8, 10, 11, 13) bring it to 1x1, so the
final 1x1 convolution with 100 filters is the classifier and the Flatten only drops the
1x1. 3x3 layers use padding 1, 1x1 layers padding 0; no bias anywhere.
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo

# (filters, kernel size, max-pool before the convolution)
STACK = (
    (16, 3, False), (20, 3, False), (20, 3, False), (20, 3, False), (20, 3, True),
    (20, 3, False), (44, 3, False), (48, 3, True), (48, 3, False), (96, 3, True),
    (512, 1, True), (128, 1, False), (128, 3, True),
)


def build(device="MAX78000"):
    """Build the seed CIFAR-100 model.

    Args:
        device: "MAX78000" or "MAX78002".

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 32, 32, 3) to (N, 100) logits.

    Example:

    >>> build().count_params()
    381792
    """
    inputs = keras.Input((32, 32, 3), name="input")
    x = inputs
    for i, (filters, kernel, pool) in enumerate(STACK, start=1):
        pooling = {"pooling": "max", "pool_size": 2} if pool else {}
        x = layers.Conv2D(filters, kernel, padding=kernel // 2, activation="relu",
                          use_bias=False, device=device, name=f"conv{i}", **pooling)(x)
    x = layers.Conv2D(100, 1, padding=0, wide=True, use_bias=False, device=device,
                      name=f"conv{len(STACK) + 1}")(x)
    outputs = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, outputs, name="cifar100")


INFO = ModelInfo(
    name="cifar100", build=build, dataset="cifar100", num_classes=100,
    input_shape=(32, 32, 3), batch_size=32, lr=3e-4, params=381_792,
    description="CIFAR-100: 13 convs + wide 1x1 classifier, no bias, 33.38 % in the seed")
