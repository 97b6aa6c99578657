"""A residual CIFAR-100 model: Analog Devices' ai85ressimplenet, in Keras functional form.

The layers of ADI's `AI85ResidualSimpleNet` (ai8x-training `models/ai85net-res-simplenet.py`):
14 convolutions, no bias, three residual blocks. In each block a convolution's output
`x_res` is read by the next convolution and added to that convolution's output; the sum
feeds the convolution after it, so on the device each `Add` runs inside that convolution
(`eltwise: add`; the third one pools after the add). ADI trains it 8-bit (its default QAT
policy, `policies/qat_policy.yaml`: start at epoch 30, 8-bit weights) with Adam, lr 6.4e-4,
batch 32, no weight decay.

Layers (output channels, kernel, max pool before the convolution):

    conv1 16 3x3; conv2 20 3x3 (x_res); conv3 20 3x3; add; conv4 20 3x3;
    conv5 20 3x3 pool (x_res); conv6 20 3x3; add; conv7 44 3x3;
    conv8 48 3x3 pool (x_res); conv9 48 3x3; add; conv10 96 3x3 pool;
    conv11 512 1x1 pool; conv12 128 1x1; conv13 128 3x3 pool; conv14 100 1x1 wide.
"""

import keras

from ai8x_nb import layers
from ai8x_nb.models.base import ModelInfo

NAME = "ressimplenet"


def _conv(x, filters, kernel, name, device, pool=False):
    pooling = {"pooling": "max", "pool_size": 2} if pool else {}
    return layers.Conv2D(filters, kernel, padding=kernel // 2, activation="relu",
                         use_bias=False, device=device, name=name, **pooling)(x)


def _residual(x_res, filters, index, device):
    """`conv(x_res) + x_res`: the convolution and the Add of one residual block."""
    x = _conv(x_res, filters, 3, f"conv{index}", device)
    return layers.Add(device=device, name=f"resid{index}")([x, x_res])


def build(device=None):
    """Build the residual CIFAR-100 model.

    Args:
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 32, 32, 3) to (N, 100) logits.

    Example:

    >>> build().count_params()
    381792
    """
    inputs = keras.Input((32, 32, 3), name="input")
    x = _conv(inputs, 16, 3, "conv1", device)
    x_res = _conv(x, 20, 3, "conv2", device)
    x = _residual(x_res, 20, 3, device)
    x = _conv(x, 20, 3, "conv4", device)
    x_res = _conv(x, 20, 3, "conv5", device, pool=True)
    x = _residual(x_res, 20, 6, device)
    x = _conv(x, 44, 3, "conv7", device)
    x_res = _conv(x, 48, 3, "conv8", device, pool=True)
    x = _residual(x_res, 48, 9, device)
    x = _conv(x, 96, 3, "conv10", device, pool=True)
    x = _conv(x, 512, 1, "conv11", device, pool=True)
    x = _conv(x, 128, 1, "conv12", device)
    x = _conv(x, 128, 3, "conv13", device, pool=True)
    x = layers.Conv2D(100, 1, padding=0, wide=True, use_bias=False, device=device,
                      name="conv14")(x)
    outputs = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, outputs, name=NAME)


INFO = ModelInfo(
    name=NAME, build=build, dataset="cifar100", num_classes=100, input_shape=(32, 32, 3),
    batch_size=32, lr=6.4e-4, params=381_792,
    description="CIFAR-100 residual SimpleNet (ADI ai85ressimplenet): 14 convs, 3 Adds, no bias")
