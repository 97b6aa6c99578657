"""The six seed models of the ai8x reference (section 5), written with the vendor's `ai8xTF`
names as an old model file would be, plus their published parameter counts.

cifar100 follows the vendor's ai85simplenet: "(maxpool)" marks a max pool 2/2 fused into THAT
convolution (pool before the conv). Pooling before the next conv instead gives the same
parameter count and also valid shapes; the fused-in-that-layer reading matches the vendor's
`FusedMaxPoolConv2d...` layer names and ends on a 1x1 map before the wide 1x1 conv.
"""

import keras

import ai8x_nb.ai8xTF as ai8xTF

SEED_PARAMS = {
    "mnist": 71158,
    "fashionmnist": 71346,
    "cifar10": 72228,
    "cifar100": 381792,
    "kws20": 126490,
    "rock": 54693,
}


def _mnist_stack(x, use_bias, first_pad2=True):
    x = ai8xTF.FusedConv2DReLU(filters=60, kernel_size=3, strides=1, padding_size=1,
                               use_bias=use_bias)(x)
    x = ai8xTF.FusedMaxPoolConv2DReLU(filters=60, kernel_size=3, strides=1,
                                      padding_size=2 if first_pad2 else 1, pool_size=2,
                                      pool_strides=2, use_bias=use_bias)(x)
    x = ai8xTF.FusedMaxPoolConv2DReLU(filters=56, kernel_size=3, strides=1, padding_size=1,
                                      pool_size=2, pool_strides=2, use_bias=use_bias)(x)
    x = ai8xTF.FusedAvgPoolConv2DReLU(filters=12, kernel_size=3, strides=1, padding_size=1,
                                      pool_size=2, pool_strides=2, use_bias=use_bias)(x)
    return keras.layers.Flatten()(x)


def mnist():
    """Sequential, as the vendor's MNIST script: no conv biases, wide dense with bias."""
    return keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Reshape((28, 28, 1)),
        ai8xTF.FusedConv2DReLU(filters=60, kernel_size=3, strides=1, padding_size=1,
                               use_bias=False),
        ai8xTF.FusedMaxPoolConv2DReLU(filters=60, kernel_size=3, strides=1, padding_size=2,
                                      pool_size=2, pool_strides=2, use_bias=False),
        ai8xTF.FusedMaxPoolConv2DReLU(filters=56, kernel_size=3, strides=1, padding_size=1,
                                      pool_size=2, pool_strides=2, use_bias=False),
        ai8xTF.FusedAvgPoolConv2DReLU(filters=12, kernel_size=3, strides=1, padding_size=1,
                                      pool_size=2, pool_strides=2, use_bias=False),
        keras.layers.Flatten(),
        ai8xTF.FusedDense(10, wide=True),
    ], name="mnist")


def fashionmnist():
    """Functional API, biases on."""
    inputs = keras.Input((28, 28))
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = _mnist_stack(x, use_bias=True)
    outputs = ai8xTF.FusedDense(10, wide=True)(x)
    return keras.Model(inputs, outputs, name="fashionmnist")


def cifar10():
    """The MNIST stack on 32x32x3, all paddings 1, no bias anywhere."""
    inputs = keras.Input((32, 32, 3))
    x = _mnist_stack(inputs, use_bias=False, first_pad2=False)
    outputs = ai8xTF.FusedDense(10, wide=True, use_bias=False)(x)
    return keras.Model(inputs, outputs, name="cifar10")


def cifar100():
    """13 ReLU convolutions + a wide 1x1 convolution (ai85simplenet), no bias."""
    plan = [(16, 3, False), (20, 3, False), (20, 3, False), (20, 3, False), (20, 3, True),
            (20, 3, False), (44, 3, False), (48, 3, True), (48, 3, False), (96, 3, True),
            (512, 1, True), (128, 1, False), (128, 3, True)]
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for filters, kernel, pool in plan:
        pad = 1 if kernel == 3 else 0
        if pool:
            x = ai8xTF.FusedMaxPoolConv2DReLU(filters=filters, kernel_size=kernel, strides=1,
                                              padding_size=pad, pool_size=2, pool_strides=2,
                                              use_bias=False)(x)
        else:
            x = ai8xTF.FusedConv2DReLU(filters=filters, kernel_size=kernel, strides=1,
                                       padding_size=pad, use_bias=False)(x)
    x = ai8xTF.FusedConv2D(filters=100, kernel_size=1, strides=1, padding_size=0,
                           use_bias=False, wide=True)(x)
    outputs = keras.layers.Flatten()(x)
    return keras.Model(inputs, outputs, name="cifar100")


def kws20():
    """4 Conv1D k1 + Reshape + 5 Conv2D + wide Dense; no bias, l2 1e-4."""
    def reg():
        return keras.regularizers.l2(1e-4)

    inputs = keras.Input((128, 128))
    x = inputs
    for filters in (100, 100, 50, 16):
        x = ai8xTF.FusedConv1DReLU(filters=filters, kernel_size=1, strides=1, padding_size=0,
                                   use_bias=False, kernel_regularizer=reg())(x)
    x = keras.layers.Reshape((8, 16, 16))(x)
    for filters in (32, 64, 64, 30, 7):
        x = ai8xTF.FusedConv2DReLU(filters=filters, kernel_size=3, strides=1, padding_size=1,
                                   use_bias=False, kernel_regularizer=reg())(x)
    x = keras.layers.Flatten()(x)
    outputs = ai8xTF.FusedDense(21, wide=True, use_bias=False, kernel_regularizer=reg())(x)
    return keras.Model(inputs, outputs, name="kws20")


def rock():
    """Rock-paper-scissors: 6 convolutions with bias, two Dropouts, wide Dense."""
    inputs = keras.Input((64, 64, 3))
    x = ai8xTF.FusedConv2DReLU(filters=15, kernel_size=3, strides=1, padding_size=1)(inputs)
    x = ai8xTF.FusedMaxPoolConv2DReLU(filters=30, kernel_size=3, strides=1, padding_size=1,
                                      pool_size=2, pool_strides=2)(x)
    x = keras.layers.Dropout(0.2)(x)
    for filters in (60, 30, 30):
        x = ai8xTF.FusedMaxPoolConv2DReLU(filters=filters, kernel_size=3, strides=1,
                                          padding_size=1, pool_size=2, pool_strides=2)(x)
    x = ai8xTF.FusedConv2DReLU(filters=30, kernel_size=3, strides=1, padding_size=1)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = ai8xTF.FusedDense(3, wide=True)(x)
    return keras.Model(inputs, outputs, name="rock")


SEED_BUILDERS = {
    "mnist": mnist,
    "fashionmnist": fashionmnist,
    "cifar10": cifar10,
    "cifar100": cifar100,
    "kws20": kws20,
    "rock": rock,
}
