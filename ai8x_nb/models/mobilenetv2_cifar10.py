"""A MobileNetV2-style depthwise-separable CIFAR-10 model for the MAX78002.

The shape of the vendor's ai87 MobileNetV2 / EfficientNetV2 networks, cut down to CIFAR-10:
a 3x3 stem, then inverted-residual blocks: a pointwise (1x1) expansion, a depthwise 3x3
convolution (`Conv2D(groups=channels)`, MAX78002 only) that also downsamples with a fused
2x2 max pool where the block halves the size, and a pointwise projection without activation;
blocks of the same width and size add their input (`Add`, which the device runs inside the
next convolution). The head pools 8x8 to 1x1 (average) and ends in a wide 1x1 convolution.
BatchNorm after every convolution but the last (folded at QAT), no bias otherwise.

Layers (channels; "pool" = 2x2 max pool fused before the depthwise convolution):

    stem 32 3x3
    b1: expand 64, dw 64, project 24
    b2: expand 96, dw 96 pool, project 32
    b3: expand 128, dw 128, project 32, + b2
    b4: expand 128, dw 128 pool, project 64
    b5: expand 192, dw 192, project 64, + b4
    head: 1x1 128, avg pool 8x8, 1x1 10 wide, flatten

Example:

>>> build().count_params()  # doctest: +SKIP
77794
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo

NAME = "mobilenetv2_cifar10"
DEVICE = "MAX78002"
"""The device it is made for: depthwise convolution is the MAX78002's."""

BLOCKS = ((64, 24, False, False), (96, 32, True, False), (128, 32, False, True),
          (128, 64, True, False), (192, 64, False, True))
"""(expansion channels, output channels, pool in the depthwise layer, add the input)."""


def _conv(x, filters, kernel, name, device, *, groups=1, activation="relu", pool=False,
          batch_norm="affine", **kwargs):
    pooling = {"pooling": "max", "pool_size": 2} if pool else {}
    return layers.Conv2D(filters, kernel, padding=kernel // 2, groups=groups,
                         activation=activation, use_bias=False, batch_norm=batch_norm,
                         device=device, name=name, **pooling, **kwargs)(x)


def build(device=DEVICE):
    """Build the MobileNetV2-style CIFAR-10 model.

    Args:
        device: "MAX78002" (the MAX78000 has no depthwise convolution: its layers refuse
            `groups`, naming the device).

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 32, 32, 3) to (N, 10) logits.
    """
    inputs = keras.Input((32, 32, 3), name="input")
    x = _conv(inputs, 32, 3, "stem", device)
    for i, (expand, out, pool, residual) in enumerate(BLOCKS, start=1):
        y = _conv(x, expand, 1, f"b{i}_expand", device)
        y = _conv(y, expand, 3, f"b{i}_dw", device, groups=expand, pool=pool)
        y = _conv(y, out, 1, f"b{i}_project", device, activation=None)
        x = layers.Add(device=device, name=f"b{i}_add")([y, x]) if residual else y
    x = _conv(x, 128, 1, "head", device)
    x = layers.Conv2D(10, 1, padding=0, pooling="avg", pool_size=8, wide=True,
                      use_bias=True, device=device, name="classifier")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, x, name=NAME)


INFO = ModelInfo(
    name=NAME, dataset="cifar10", num_classes=10, input_shape=(32, 32, 3), batch_size=64,
    lr=1e-3, params=77_794, build=build,
    description="MobileNetV2-style depthwise-separable CIFAR-10 net (MAX78002 only)",
    device=DEVICE)
