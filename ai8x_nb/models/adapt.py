"""A starting model for a folder of your own: a seed spec fitted to its classes.

The folder notebooks and `ai8x-nb train --data-folder` start from a seed model's layers (the
Rock-Paper-Scissors network for images, the kws20 network for keywords, or the seed named
by `model_name`), or from the user's `model_spec`, and give its last layer one output per
class of the folder. The input size needs no change: a spec reads whatever shape the
dataset delivers (the layer editor and the check say when an input is too small for its
pooling).
"""

import copy

from ai8x_nb.models import MODELS, seed_spec
from ai8x_nb.spec import SpecError, normalize_spec

__all__ = ["FOLDER_SEEDS", "fit_classes", "starting_spec"]

FOLDER_SEEDS = {"images": "rock", "audio": "kws20"}
"""Folder kind -> the seed model whose layers a folder run starts from by default."""


def fit_classes(spec, num_classes):
    """A copy of `spec` whose last layer has `num_classes` outputs (dense units or conv filters).

    Raises:
        SpecError: the spec is empty or ends in a layer without outputs to set.

    Example:

    >>> fit_classes([{"type": "flatten"}, {"type": "dense", "units": 3}], 5)[-1]["units"]
    5
    """
    spec = normalize_spec(copy.deepcopy(list(spec)))
    last = spec[-1] if spec else {}
    key = {"dense": "units", "conv1d": "filters", "conv2d": "filters"}.get(last.get("type"))
    if key is None:
        raise SpecError(f"The model's last layer is {last.get('type')!r}: a classifier ends in "
                        f"a dense or convolution layer with one output per class. Add one.")
    last[key] = int(num_classes)
    return spec


def starting_spec(kind, num_classes, *, model_name=None, model_spec=None):
    """The spec a folder run starts from, its last layer fitted to `num_classes`.

    Args:
        kind: "images" or "audio" (picks the default seed, see `FOLDER_SEEDS`).
        num_classes: classes of the folder.
        model_name: a seed model whose layers to start from (e.g. "cifar10").
        model_spec: a spec to start from instead (list of rows).

    Returns:
        The canonical spec.

    Raises:
        SpecError: `model_name` is a registry model without a layer spec (a branching
            network), or the spec does not end in a classifier layer.
    """
    if model_name is not None:
        info = MODELS.get(str(model_name).lower())
        if info is None or info.spec is None:
            with_spec = ", ".join(n for n, i in MODELS.items() if i.spec is not None)
            raise SpecError(f"model_name={model_name!r} has no layer spec to fit to your "
                            f"classes; choose one of {with_spec}, or fine-tune a trained "
                            f"model with init_from.")
        spec = seed_spec(info.name)
    elif model_spec:
        spec = model_spec
    else:
        spec = seed_spec(FOLDER_SEEDS[kind])
    return fit_classes(spec, num_classes)
