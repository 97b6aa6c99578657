"""The seed CIFAR-10 model: the MNIST stack on 32x32x3, all padding 1, no bias (72,228 params).

Trained with Adam, batch 64, and a step schedule 3e-4 -> 1e-4 (epoch 40) -> 5e-5 (80) ->
3e-5 (120).
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo
from ai8x_nb.models.schedules import step_schedule


def build(device="MAX78000"):
    """Build the seed CIFAR-10 model.

    Args:
        device: "MAX78000" or "MAX78002".

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 32, 32, 3) to (N, 10) logits.

    Example:

    >>> build().count_params()
    72228
    """
    kw = {"activation": "relu", "use_bias": False, "device": device}
    inputs = keras.Input((32, 32, 3), name="input")
    x = layers.Conv2D(60, 3, padding=1, name="conv1", **kw)(inputs)
    x = layers.Conv2D(60, 3, padding=1, pooling="max", pool_size=2, name="conv2", **kw)(x)
    x = layers.Conv2D(56, 3, padding=1, pooling="max", pool_size=2, name="conv3", **kw)(x)
    x = layers.Conv2D(12, 3, padding=1, pooling="avg", pool_size=2, name="conv4", **kw)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(10, wide=True, use_bias=False, device=device, name="fc")(x)
    return keras.Model(inputs, outputs, name="cifar10")


INFO = ModelInfo(
    name="cifar10", build=build, dataset="cifar10", num_classes=10, input_shape=(32, 32, 3),
    batch_size=64, lr=3e-4, params=72_228,
    schedule=step_schedule((40, 80, 120), (3e-4, 1e-4, 5e-5, 3e-5)),
    description="CIFAR-10: 4 convs + wide linear, no bias, 70.36 % in the seed")
