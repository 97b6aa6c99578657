"""Training recipes by name: the seed's own, and "fast" for short runs that must reach accuracy.

A recipe is data: the defaults it gives `train` (schedule, warm-up), and what it adds to a run
(data augmentation, weight decay, label smoothing, BatchNorm in the float phase, where QAT
starts). Arguments given to `train` explicitly always win over the recipe's defaults. The
recipe's name is saved in config.json, so a resumed run continues with the same recipe.

"seed" is how the seed models were trained (no augmentation, the seed's LR schedule, plain
cross-entropy). "fast" is tuned for runs of 10-20 epochs (see README, "Accuracy recipes",
for the measured effect of each piece).

Example:

>>> get_recipe("fast").augment
True
>>> get_recipe("Seed").name
'seed'
"""

import dataclasses
import types

from ai8x_nb.parameters import RECIPES as RECIPE_NAMES
from ai8x_nb.training.arguments import TrainingError

__all__ = ["Recipe", "RECIPES", "RECIPE_NAMES", "get_recipe", "qat_start_epoch",
           "recipe_config", "recipe_from_config", "with_batch_norm"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a run trains beyond the model and the data.

    Attributes:
        name: the recipe's name (saved in config.json).
        description: one line for listings and help texts.
        batch_size: default batch size, or None for the seed model's.
        lr: default (peak) learning rate, or None for the seed model's.
        schedule: default LR schedule name, or None for `train`'s default ("seed").
        warmup_epochs: default warm-up of the cosine schedule, or None for `train`'s default.
        augment: augment the training batches (`ai8x_nb.datasets.augment.AUGMENTATIONS`).
        weight_decay: decoupled weight decay of the optimizer (0: none). Keras applies
            `w -= lr * weight_decay * w` every step.
        label_smoothing: label smoothing of the cross-entropy (0: none).
        batch_norm: "affine" to train the hardware layers of a seed or spec model with
            BatchNorm during the float phase (folded into weights and bias at the QAT start,
            so the deployed network keeps its layers and weights; the fold gives each layer a
            bias), or None.
        batch_norm_datasets: the datasets where `batch_norm` applies (where it was measured
            to help); empty: every dataset.
        qat_fraction: with the packaged "default" QAT policy, QAT runs for this fraction of
            the epochs at the end of the run (at least one epoch) instead of starting at the
            policy's epoch 10, which is written for long runs. None: the policy's start.
    """

    name: str
    description: str
    batch_size: int = None
    lr: float = None
    schedule: str = None
    warmup_epochs: float = None
    augment: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    batch_norm: str = None
    batch_norm_datasets: tuple = ()
    qat_fraction: float = None

    def batch_norm_for(self, dataset_name):
        """The BatchNorm mode for a model trained on `dataset_name` under this recipe, or None."""
        if not self.batch_norm:
            return None
        if self.batch_norm_datasets and str(dataset_name).lower() not in self.batch_norm_datasets:
            return None
        return self.batch_norm


RECIPES = types.MappingProxyType({
    "seed": Recipe(
        "seed", "as the seed models were trained: no augmentation, the seed's LR schedule"),
    "fast": Recipe(
        "fast", "short runs: batch 64 at lr 2e-3, augmentation, cosine LR with warm-up, "
                "weight decay, label smoothing, QAT for the last fifth of the run",
        batch_size=64, lr=2e-3, schedule="cosine", warmup_epochs=1.0, augment=True, weight_decay=5e-3,
        label_smoothing=0.1, batch_norm="affine", batch_norm_datasets=("cifar10", "cifar100"),
        qat_fraction=0.2),
})
"""The recipes by name, in the order of `ai8x_nb.parameters.RECIPES` (the names' one source)."""


def get_recipe(recipe):
    """The `Recipe` for a name (any case), a `Recipe` itself, or None ("seed").

    Raises:
        TrainingError: an unknown name, with the known ones.
    """
    if recipe is None:
        return RECIPES["seed"]
    if isinstance(recipe, Recipe):
        return recipe
    key = str(recipe).strip().lower() if isinstance(recipe, str) else None
    if key not in RECIPES:
        raise TrainingError(
            f"recipe={recipe!r} is invalid: expected one of "
            f"{', '.join(repr(n) for n in RECIPE_NAMES)}. Use 'fast' for short runs (10-20 "
            f"epochs) or 'seed' to train as the seed models were.")
    return RECIPES[key]


def recipe_config(recipe):
    """The config.json entries of a recipe: its name, and its fields when it is not the
    registered recipe of that name (a variant, e.g. for an ablation)."""
    recipe = get_recipe(recipe)
    if RECIPES.get(recipe.name) == recipe:
        return {"recipe": recipe.name}
    return {"recipe": recipe.name, "recipe_settings": dataclasses.asdict(recipe)}


def recipe_from_config(config):
    """The `Recipe` a run's config.json records ("seed" for runs made before recipes)."""
    settings = config.get("recipe_settings")
    if settings:
        return Recipe(**{**settings,
                         "batch_norm_datasets": tuple(settings.get("batch_norm_datasets") or ())})
    return get_recipe(config.get("recipe", "seed"))


def qat_start_epoch(recipe, epochs):
    """The epoch where QAT starts under `recipe` with the "default" policy, or None.

    Example:

    >>> qat_start_epoch(get_recipe("fast"), 15)
    12
    """
    if recipe.qat_fraction is None:
        return None
    qat_epochs = max(1, int(round(recipe.qat_fraction * epochs)))
    return max(0, int(epochs) - qat_epochs)


def with_batch_norm(model, batch_norm="affine"):
    """A fresh copy of `model` whose non-wide hardware operator layers train with BatchNorm.

    The copy has new (initial) weights; use it on a model that was just built.
    """
    import keras

    from ai8x_nb.layers import HardwareLayer

    def clone(layer):
        if (isinstance(layer, HardwareLayer) and layer.has_operator and not layer.wide
                and layer.batch_norm is None and not layer.qat):
            return type(layer).from_config({**layer.get_config(), "batch_norm": batch_norm})
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)
