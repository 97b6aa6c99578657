"""The seed models of the MAX78000 workbench and their training defaults.

Each seed model lives in its own module with a `build(device)` function and an `INFO`
(`ModelInfo`) holding how the seed trained it: dataset, batch size, learning rate,
optimizer, epochs and LR schedule.

Example:

>>> from ai8x_nb.models import get_model, MODELS
>>> model = get_model("mnist")
>>> MODELS["mnist"].batch_size
256
"""

import types

from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.models import cifar10, cifar100, fashionmnist, kws20, mnist, rock
from ai8x_nb.models.base import ModelInfo

__all__ = ["MODELS", "ModelInfo", "UnknownModelError", "get_info", "get_model",
           "model_for_dataset", "model_names"]


class UnknownModelError(Ai8xNbError, ValueError):
    """A model name that is not a registered seed model."""


MODELS = types.MappingProxyType({
    module.INFO.name: module.INFO
    for module in (mnist, fashionmnist, cifar10, cifar100, kws20, rock)
})
"""Registry of the seed models: name -> `ModelInfo` (read-only)."""


def model_names():
    """Return the names of the seed models, in registry order."""
    return list(MODELS)


def _info(name):
    key = str(name).strip().lower()
    if key not in MODELS and key.endswith("_model"):
        key = key[:-len("_model")]  # the vendor's TensorFlow scripts say "mnist_model"
    if key not in MODELS:
        raise UnknownModelError(
            f"Unknown seed model {name!r}; expected one of {', '.join(MODELS)}. Pass a "
            f"keras.Model or a model spec to train your own.")
    return MODELS[key]


def get_model(name, *, device="MAX78000"):
    """Build a seed model.

    Args:
        name: one of `model_names()` (case-insensitive; the vendor's script names such as
            "mnist_model" are accepted too).
        device: "MAX78000" or "MAX78002".

    Returns:
        A built, uncompiled `keras.Model` (fresh weights each call).

    Raises:
        UnknownModelError: `name` is not a seed model.

    Example:

    >>> get_model("cifar10").count_params()
    72228
    """
    return _info(name).build(device)


def get_info(name):
    """Return the `ModelInfo` of a seed model (raises `UnknownModelError` if unknown)."""
    return _info(name)


def model_for_dataset(dataset_name):
    """Return the `ModelInfo` of the seed model trained on `dataset_name`, or None."""
    for info in MODELS.values():
        if info.dataset == str(dataset_name).lower():
            return info
    return None
