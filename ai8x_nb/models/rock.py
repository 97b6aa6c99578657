"""The seed Rock-Paper-Scissors model on 64x64x3 images (54,693 parameters).

Conv 15 -> MaxPool + Conv 30 -> Dropout 0.2 -> MaxPool + Conv 60 -> MaxPool + Conv 30 ->
MaxPool + Conv 30 -> Conv 30 -> Flatten -> Dropout 0.2 -> Dense 3 wide; 3x3 padding 1,
biases on, 2x2 max pools.
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo


def build(device="MAX78000"):
    """Build the seed Rock-Paper-Scissors model.

    Args:
        device: "MAX78000" or "MAX78002".

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 64, 64, 3) to (N, 3) logits.

    Example:

    >>> build().count_params()
    54693
    """
    kw = {"activation": "relu", "device": device}
    pool = {"pooling": "max", "pool_size": 2}
    inputs = keras.Input((64, 64, 3), name="input")
    x = layers.Conv2D(15, 3, padding=1, name="conv1", **kw)(inputs)
    x = layers.Conv2D(30, 3, padding=1, name="conv2", **pool, **kw)(x)
    x = keras.layers.Dropout(0.2, name="dropout1")(x)
    x = layers.Conv2D(60, 3, padding=1, name="conv3", **pool, **kw)(x)
    x = layers.Conv2D(30, 3, padding=1, name="conv4", **pool, **kw)(x)
    x = layers.Conv2D(30, 3, padding=1, name="conv5", **pool, **kw)(x)
    x = layers.Conv2D(30, 3, padding=1, name="conv6", **kw)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.2, name="dropout2")(x)
    outputs = layers.Dense(3, wide=True, device=device, name="fc")(x)
    return keras.Model(inputs, outputs, name="rock")


INFO = ModelInfo(
    name="rock", build=build, dataset="rock", num_classes=3, input_shape=(64, 64, 3),
    batch_size=32, lr=1e-3, params=54_693,
    description="Rock-Paper-Scissors: 6 convs + wide linear, 91.40 % in the seed")
