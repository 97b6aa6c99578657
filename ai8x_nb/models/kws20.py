"""The seed keyword-spotting model (KWS20): Conv1D front end, Conv2D back end (126,490 params).

Input (128, 128): 128 time steps (rows) of 128 consecutive audio samples (channels).
4 x Conv1D k1 (100, 100, 50, 16) -> Reshape (8, 16, 16) -> 5 x Conv2D 3x3 p1
(32, 64, 64, 30, 7) -> Flatten -> Dense 21 wide. No bias anywhere; L2 1e-4 on every kernel.
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo

L2 = 1e-4


def build(device="MAX78000"):
    """Build the seed KWS20 model.

    Args:
        device: "MAX78000" or "MAX78002".

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 128, 128) to (N, 21) logits.

    Example:

    >>> build().count_params()
    126490
    """
    kw = {"use_bias": False, "device": device, "kernel_regularizer": keras.regularizers.L2(L2)}
    inputs = keras.Input((128, 128), name="input")
    x = inputs
    for i, filters in enumerate((100, 100, 50, 16), start=1):
        x = layers.Conv1D(filters, 1, padding=0, activation="relu", name=f"conv1d_{i}", **kw)(x)
    x = keras.layers.Reshape((8, 16, 16), name="reshape")(x)
    for i, filters in enumerate((32, 64, 64, 30, 7), start=1):
        x = layers.Conv2D(filters, 3, padding=1, activation="relu", name=f"conv2d_{i}", **kw)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(21, wide=True, name="fc", **kw)(x)
    return keras.Model(inputs, outputs, name="kws20")


INFO = ModelInfo(
    name="kws20", build=build, dataset="kws20", num_classes=21, input_shape=(128, 128),
    batch_size=128, lr=3e-4, params=126_490,
    description="KWS20: 4 Conv1D + 5 Conv2D + wide linear, 85.14 % in the seed")
