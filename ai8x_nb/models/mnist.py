"""The seed MNIST model: four fused convolutions and a wide linear layer (71,158 parameters).

Input (28, 28) int8/128 -> Reshape (28, 28, 1) -> Conv 60 p1 -> MaxPool 2 + Conv 60 p2 ->
MaxPool 2 + Conv 56 p1 -> AvgPool 2 + Conv 12 p1 -> Flatten -> Dense 10 wide. The
convolutions have no bias; the linear layer has one. Trained with Adam, batch 256, lr 1e-3.
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo


def build(device="MAX78000", *, bias=False, name="mnist"):
    """Build the seed MNIST model.

    Args:
        device: "MAX78000" or "MAX78002".
        bias: give the convolutions a bias (the Fashion-MNIST variant does).
        name: model name.

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 28, 28) to (N, 10) logits.

    Example:

    >>> model = build()
    >>> model.count_params()
    71158
    """
    kw = {"activation": "relu", "use_bias": bias, "device": device}
    inputs = keras.Input((28, 28), name="input")
    x = keras.layers.Reshape((28, 28, 1), name="reshape")(inputs)
    x = layers.Conv2D(60, 3, padding=1, name="conv1", **kw)(x)
    x = layers.Conv2D(60, 3, padding=2, pooling="max", pool_size=2, name="conv2", **kw)(x)
    x = layers.Conv2D(56, 3, padding=1, pooling="max", pool_size=2, name="conv3", **kw)(x)
    x = layers.Conv2D(12, 3, padding=1, pooling="avg", pool_size=2, name="conv4", **kw)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(10, wide=True, device=device, name="fc")(x)
    return keras.Model(inputs, outputs, name=name)


INFO = ModelInfo(
    name="mnist", build=build, dataset="mnist", num_classes=10, input_shape=(28, 28),
    batch_size=256, lr=1e-3, params=71_158,
    description="MNIST: 4 convs (no bias) + wide linear, 99.00 % after 100 epochs in the seed")
