"""Feeding a built Keras model: its device, samples in its input layout, batched predictions.

One helper each, shared by training, evaluation and export, so that one mistake (samples of
another dataset) gives one error wherever it is made. The float view of int8 samples is
`ai8x_nb.datasets.to_float`.
"""

import math

import numpy as np

from ai8x_nb.errors import InputShapeError

__all__ = ["model_device", "model_input_shape", "check_input_shape", "to_model_input",
           "predict", "top1_accuracy"]


def model_device(model, default=None):
    """The `Device` a model is built for: its hardware layers' device.

    Args:
        model: a Keras model.
        default: the device name (or `Device`) of a model without hardware layers; None:
            `ai8x_nb.devices.DEFAULT_DEVICE`.

    Returns:
        An `ai8x_nb.devices.Device`.
    """
    from ai8x_nb.devices import get_device

    for layer in model.layers:
        found = getattr(layer, "device", None)
        if found is not None and hasattr(found, "name"):
            return found
    return get_device(default)


def model_input_shape(model):
    """The model's input shape without the batch axis (None for an unknown dimension)."""
    return tuple(None if s is None else int(s) for s in model.inputs[0].shape[1:])


def check_input_shape(model, sample_shape, dataset_name=None, *, error=InputShapeError):
    """Check that samples of `sample_shape` fit the model's input (same number of values).

    Args:
        model: a Keras model.
        sample_shape: one sample's shape, no batch axis.
        dataset_name: named in the message when given.
        error: the exception class raised (`train` raises its `TrainingError`).

    Raises:
        InputShapeError: (or `error`) they do not fit; the message names both shapes and the
            fix.
    """
    want = model_input_shape(model)
    have = tuple(int(s) for s in sample_shape)
    if None not in want and math.prod(want) != math.prod(have):
        source = f"dataset {dataset_name!r} has samples of" if dataset_name else "the samples have"
        raise error(
            f"Model '{model.name}' takes inputs of shape {want} but {source} shape {have}. "
            f"Use the dataset the model was built for, or build the model for this dataset "
            f"(input shape {have}).")


def to_model_input(model, x):
    """Samples (batch first) laid out as the model's input: reshaped when only the layout differs.

    Raises:
        InputShapeError: the samples hold another number of values than the model reads.
    """
    x = np.asarray(x)
    want = model_input_shape(model)
    if tuple(x.shape[1:]) == want:
        return x
    check_input_shape(model, x.shape[1:])
    if None in want:
        return x
    return x.reshape((x.shape[0],) + want)


def predict(model, x, batch_size=256):
    """The model's outputs on float inputs `x` (batch first), in batches, as float64."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)


def top1_accuracy(outputs, y):
    """The fraction of samples whose largest output is their label (outputs batch first)."""
    outputs = np.asarray(outputs)
    predicted = np.argmax(outputs.reshape(len(outputs), -1), axis=1)
    return float(np.mean(predicted == np.asarray(y)))
