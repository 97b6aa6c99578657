"""Compatibility names of the vendor's deprecated `ai8xTF` module (archive-tf branch).

Every class name and constructor signature of that module, as thin factories over
`ai8x_nb.layers`, so an old model definition runs with only

    import ai8x_nb.ai8xTF as ai8xTF

added. The objects built are the project's own layers (`ai8x_nb.layers.Conv2D`, ...), so
models saved from them reload without this module. `output_shift` is accepted and ignored:
the shift is derived from the weights during quantization.

Example:

>>> import ai8x_nb.ai8xTF as ai8xTF
>>> layer = ai8xTF.FusedMaxPoolConv2DReLU(filters=60, kernel_size=3, strides=1,
...                                       padding_size=2, pool_size=2, pool_strides=2)
"""

import logging

from ai8x_nb import layers as _layers

logger = logging.getLogger(__name__)


def _ignore_shift(output_shift):
    if output_shift:
        logger.warning("output_shift=%s ignored: ai8x-nb derives it from the weights.", output_shift)


# ----------------------------------------------------------------------------- 1D
def Conv1D(filters, kernel_size, strides=1, padding_size=0, pooling=None, pool_size=2,
           pool_strides=2, activation=None, use_bias=True, output_shift=0, wide=False,
           **kwargs):
    """1D pooling (None, 'Max', 'Avg') + 1D convolution + activation (None, 'relu')."""
    _ignore_shift(output_shift)
    return _layers.Conv1D(filters, kernel_size=kernel_size, padding=padding_size,
                          strides=strides, pooling=pooling, pool_size=pool_size,
                          pool_strides=pool_strides, activation=activation,
                          use_bias=use_bias, wide=wide, **kwargs)


def FusedConv1D(*args, **kwargs):
    """1D convolution, no activation."""
    return Conv1D(*args, activation=None, **kwargs)


def FusedConv1DReLU(*args, **kwargs):
    """1D convolution + ReLU."""
    return Conv1D(*args, activation="relu", **kwargs)


def FusedMaxPoolConv1D(*args, **kwargs):
    """1D max pool + 1D convolution."""
    return Conv1D(*args, pooling="max", **kwargs)


def FusedMaxPoolConv1DReLU(*args, **kwargs):
    """1D max pool + 1D convolution + ReLU."""
    return Conv1D(*args, pooling="max", activation="relu", **kwargs)


def FusedAvgPoolConv1D(*args, **kwargs):
    """1D average pool + 1D convolution."""
    return Conv1D(*args, pooling="avg", **kwargs)


def FusedAvgPoolConv1DReLU(*args, **kwargs):
    """1D average pool + 1D convolution + ReLU."""
    return Conv1D(*args, pooling="avg", activation="relu", **kwargs)


def MaxPool1D(pool_size, pool_strides=None, **kwargs):
    """1D max pooling layer."""
    return _layers.MaxPool1D(pool_size, pool_strides, **kwargs)


def AvgPool1D(pool_size, pool_strides=None, **kwargs):
    """1D average pooling layer."""
    return _layers.AvgPool1D(pool_size, pool_strides, **kwargs)


# ----------------------------------------------------------------------------- 2D
def Conv2D(filters, kernel_size, strides=1, padding_size=0, op="Conv2d", pooling=None,
           pool_size=2, pool_strides=2, activation=None, use_bias=True, output_shift=0,
           wide=False, **kwargs):
    """2D pooling + 2D convolution (op='Conv2d') or transposed convolution ('ConvTranspose2d')."""
    _ignore_shift(output_shift)
    common = dict(padding=padding_size, pooling=pooling, pool_size=pool_size,
                  pool_strides=pool_strides, activation=activation, use_bias=use_bias,
                  wide=wide, **kwargs)
    if str(op).lower() == "convtranspose2d":
        return _layers.ConvTranspose2D(filters, kernel_size=kernel_size, strides=strides, **common)
    return _layers.Conv2D(filters, kernel_size=kernel_size, strides=strides, **common)


def FusedConv2D(*args, **kwargs):
    """2D convolution, no activation."""
    return Conv2D(*args, activation=None, **kwargs)


def FusedConv2DReLU(*args, **kwargs):
    """2D convolution + ReLU."""
    return Conv2D(*args, activation="relu", **kwargs)


def FusedMaxPoolConv2D(*args, **kwargs):
    """2D max pool + 2D convolution."""
    return Conv2D(*args, pooling="max", **kwargs)


def FusedMaxPoolConv2DReLU(*args, **kwargs):
    """2D max pool + 2D convolution + ReLU."""
    return Conv2D(*args, pooling="max", activation="relu", **kwargs)


def FusedAvgPoolConv2D(*args, **kwargs):
    """2D average pool + 2D convolution."""
    return Conv2D(*args, pooling="avg", **kwargs)


def FusedAvgPoolConv2DReLU(*args, **kwargs):
    """2D average pool + 2D convolution + ReLU."""
    return Conv2D(*args, pooling="avg", activation="relu", **kwargs)


def MaxPool2D(pool_size, pool_strides=None, **kwargs):
    """2D max pooling layer."""
    return _layers.MaxPool2D(pool_size, pool_strides, **kwargs)


def AvgPool2D(pool_size, pool_strides=None, **kwargs):
    """2D average pooling layer."""
    return _layers.AvgPool2D(pool_size, pool_strides, **kwargs)


# ---------------------------------------------------------------- 2D transposed
def _transpose(args, kwargs, **fixed):
    kwargs.setdefault("strides", 2)
    return Conv2D(*args, op="ConvTranspose2d", **fixed, **kwargs)


def FusedConv2DTranspose(*args, **kwargs):
    """3x3 stride-2 transposed convolution, no activation."""
    return _transpose(args, kwargs, activation=None)


def FusedConv2DTransposeReLU(*args, **kwargs):
    """Transposed convolution + ReLU."""
    return _transpose(args, kwargs, activation="relu")


def FusedMaxPoolConv2DTranspose(*args, **kwargs):
    """2D max pool + transposed convolution."""
    return _transpose(args, kwargs, pooling="max")


def FusedMaxPoolConv2DTransposeReLU(*args, **kwargs):
    """2D max pool + transposed convolution + ReLU."""
    return _transpose(args, kwargs, pooling="max", activation="relu")


def FusedAvgPoolConv2DTranspose(*args, **kwargs):
    """2D average pool + transposed convolution."""
    return _transpose(args, kwargs, pooling="avg")


def FusedAvgPoolConv2DTransposeReLU(*args, **kwargs):
    """2D average pool + transposed convolution + ReLU."""
    return _transpose(args, kwargs, pooling="avg", activation="relu")


# --------------------------------------------------------------------------- Dense
def Dense(units, activation=None, use_bias=True, output_shift=0, wide=False, **kwargs):
    """Linear layer + activation (None, 'relu')."""
    _ignore_shift(output_shift)
    return _layers.Dense(units, activation=activation, use_bias=use_bias, wide=wide, **kwargs)


def FusedDense(*args, **kwargs):
    """Linear layer, no activation."""
    return Dense(*args, activation=None, **kwargs)


def FusedDenseReLU(*args, **kwargs):
    """Linear layer + ReLU."""
    return Dense(*args, activation="relu", **kwargs)
