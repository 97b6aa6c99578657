"""The seed models of the MAX78000 workbench and their training defaults.

Each seed model lives in its own module: its `SPEC` (the layers, as `ai8x_nb.spec` rows) and
an `INFO` (`ModelInfo`) holding how the seed trained it: dataset, batch size, learning rate,
optimizer, epochs and LR schedule. The model is `spec_to_model(SPEC)` wherever it is built
(`get_model`, `ai8x-nb train`, the notebooks' `model_spec = seed_spec(name)`), so the layer
names are the same everywhere. A network a spec cannot express (branches) has a `build`
function instead.

Example:

>>> from ai8x_nb.models import get_model, MODELS
>>> model = get_model("mnist")
>>> MODELS["mnist"].batch_size
256
"""

import copy
import types

from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.models import cifar10, cifar100, fashionmnist, kws20, mnist, rock
from ai8x_nb.models import ressimplenet  # residual (Add) network: a builder, not a spec
from ai8x_nb.models import kws20_dilated  # the kws20 seed with a dilated Conv1D front end
from ai8x_nb.models import mobilenetv2_cifar10  # depthwise (MAX78002 only): a builder
from ai8x_nb.models.base import ModelInfo

__all__ = ["MODELS", "SEED_SPECS", "ModelInfo", "UnknownModelError", "get_info", "get_model",
           "get_model_for",
           "model_for_dataset", "model_names", "seed_spec", "seed_input_shape"]


class UnknownModelError(Ai8xNbError, ValueError):
    """A model name that is not a registered seed model."""


MODELS = types.MappingProxyType({
    module.INFO.name: module.INFO
    for module in (mnist, fashionmnist, cifar10, cifar100, kws20, rock, ressimplenet,
                   kws20_dilated, mobilenetv2_cifar10)
})
"""Registry of the seed models: name -> `ModelInfo` (read-only)."""

SEED_SPECS = tuple(name for name, info in MODELS.items() if info.spec is not None)
"""Names of the seed models defined by a spec (the six dataset models and kws20_dilated)."""


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


def get_model(name, *, device=None):
    """Build a seed model.

    Args:
        name: one of `model_names()` (case-insensitive; the vendor's script names such as
            "mnist_model" are accepted too).
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.

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


def get_model_for(name, dataset_name, *, device=None):
    """Build the registry model `name` for a notebook of `dataset_name`.

    Args:
        name: a registry name (see `get_model`).
        dataset_name: the dataset the model will train on.
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.

    Returns:
        A built, uncompiled `keras.Model`.

    Raises:
        UnknownModelError: `name` is not registered, or it is made for another dataset (the
            message lists the models of `dataset_name`).

    Example:

    >>> get_model_for("ressimplenet", "cifar100").name
    'ressimplenet'
    """
    info = _info(name)
    dataset = str(dataset_name).lower()
    if info.dataset != dataset:
        fitting = [n for n, i in MODELS.items() if i.dataset == dataset]
        raise UnknownModelError(
            f"Model {info.name!r} is made for the {info.dataset} dataset, not {dataset}. "
            f"Set model_name to one of {', '.join(map(repr, fitting)) or 'nothing'} or None "
            f"(the model of model_spec).")
    return info.build(device)


def model_for_dataset(dataset_name):
    """Return the `ModelInfo` of the seed model trained on `dataset_name`, or None."""
    for info in MODELS.values():
        if info.dataset == str(dataset_name).lower():
            return info
    return None


def _spec_info(name):
    info = MODELS.get(str(name))
    if info is None or info.spec is None:
        from ai8x_nb.spec import SpecError

        raise SpecError(f"No seed spec {name!r}; choose one of {', '.join(SEED_SPECS)}.")
    return info


def seed_spec(name):
    """Return the spec of a seed model (a new canonical list each call).

    A model whose input is laid out otherwise than its first layer reads (mnist's (28, 28),
    read as (28, 28, 1)) gets that Reshape from `get_model`; the spec itself starts at the
    first layer and reads `seed_input_shape(name)`, the shape the datasets deliver.

    Args:
        name: a name of `SEED_SPECS` ("mnist", "fashionmnist", "cifar10", "cifar100",
            "kws20" or "rock").

    Returns:
        The canonical spec.

    Raises:
        ai8x_nb.spec.SpecError: not a seed model with a spec.

    Example:

    >>> seed_spec("mnist")[0]["filters"]
    60
    """
    from ai8x_nb.spec import normalize_spec

    return normalize_spec(copy.deepcopy(list(_spec_info(name).spec)))


def seed_input_shape(name):
    """The input shape (no batch axis) a seed spec reads, e.g. (28, 28, 1) for mnist."""
    return _spec_info(name).spec_input_shape
