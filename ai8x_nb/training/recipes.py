"""Training recipes by name: the seed's own, and "fast" for short runs that must reach accuracy.

A recipe is data: the defaults it gives `train` (schedule, warm-up), and what it adds to a run
(data augmentation, weight decay, label smoothing, BatchNorm in the float phase, where QAT
starts), with per-dataset settings where a dataset was measured to want others
(`Recipe.for_dataset`). Arguments given to `train` explicitly always win over the recipe's
defaults. The recipe's name is saved in config.json, so a resumed run continues with the same
recipe.

"seed" is how the seed models were trained (no augmentation, the seed's LR schedule, plain
cross-entropy). "fast" is tuned for runs of 10-20 epochs (see README, "Accuracy recipes",
for the measured effect of each piece).

Example:

>>> get_recipe("fast").augment
True
>>> get_recipe("fast").for_dataset("cifar10").batch_norm
'affine'
>>> get_recipe("Seed").name
'seed'
"""

import dataclasses
import types

from ai8x_nb.parameters import RECIPES as RECIPE_NAMES
from ai8x_nb.errors import TrainingError

__all__ = ["Recipe", "RECIPES", "RECIPE_NAMES", "DatasetSettings", "SETTING_FIELDS", "get_recipe",
           "qat_start_epoch", "recipe_config", "recipe_from_config", "with_batch_norm"]


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
        qat_fraction: with the packaged "default" QAT policy, QAT runs for this fraction of
            the epochs at the end of the run (at least one epoch) instead of starting at the
            policy's epoch 10, which is written for long runs. None: the policy's start.
        dataset_settings: `DatasetSettings` for the datasets that were measured to train
            better with other values of the fields above; `for_dataset` applies them.
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
    qat_fraction: float = None
    dataset_settings: tuple = ()

    def __post_init__(self):
        fields = SETTING_FIELDS
        for entry in self.dataset_settings:
            unknown = sorted({field for field, _ in entry.changes} - fields)
            if unknown:
                raise TrainingError(
                    f"Recipe {self.name!r}: dataset {entry.dataset!r} sets {unknown}, which "
                    f"are not recipe settings; use {', '.join(sorted(fields))}.")

    def for_dataset(self, dataset_name):
        """This recipe as it trains `dataset_name`: its dataset settings applied, none left."""
        key = str(dataset_name).lower()
        changes = {}
        for entry in self.dataset_settings:
            if entry.dataset == key:
                changes.update(entry.changes)
        return dataclasses.replace(self, dataset_settings=(), **changes)


@dataclasses.dataclass(frozen=True)
class DatasetSettings:
    """The recipe fields one dataset trains with instead of the recipe's own.

    Attributes:
        dataset: the dataset's name (lower case).
        changes: ((field, value), ...) sorted by field: fields of `Recipe` other than its
            name, description and dataset settings.

    Example:

    >>> DatasetSettings.of("Fashionmnist", augment=False).changes
    (('augment', False),)
    """

    dataset: str
    changes: tuple

    @classmethod
    def of(cls, dataset, **changes):
        return cls(str(dataset).lower(), tuple(sorted(changes.items())))


SETTING_FIELDS = frozenset(f.name for f in dataclasses.fields(Recipe)) - {
    "name", "description", "dataset_settings"}
"""The fields of `Recipe` that are training settings (a dataset or an ablation may change them)."""


RECIPES = types.MappingProxyType({
    "seed": Recipe(
        "seed", "as the seed models were trained: no augmentation, the seed's LR schedule"),
    "fast": Recipe(
        "fast", "short runs: batch 64 at lr 2e-3, augmentation, cosine LR with warm-up, "
                "weight decay, label smoothing, QAT for the last fifth of the run; BatchNorm "
                "for CIFAR; Fashion-MNIST: BatchNorm, no augmentation, QAT for the last half",
        batch_size=64, lr=2e-3, schedule="cosine", warmup_epochs=1.0, augment=True,
        weight_decay=5e-3, label_smoothing=0.1, qat_fraction=0.2,
        dataset_settings=(
            DatasetSettings.of("cifar10", batch_norm="affine"),
            DatasetSettings.of("cifar100", batch_norm="affine"),
            DatasetSettings.of("fashionmnist", batch_norm="affine", augment=False,
                               qat_fraction=0.5))),
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
    if not settings:
        return get_recipe(config.get("recipe", "seed"))
    settings = dict(settings)
    entries = [DatasetSettings(entry["dataset"], tuple((field, value) for field, value in
                                                       entry["changes"]))
               for entry in settings.pop("dataset_settings", None) or ()]
    # Variants saved before per-dataset settings: BatchNorm on the listed datasets only.
    legacy = settings.pop("batch_norm_datasets", None)
    if legacy and settings.get("batch_norm"):
        entries += [DatasetSettings.of(name, batch_norm=settings["batch_norm"])
                    for name in legacy]
        settings["batch_norm"] = None
    return Recipe(**settings, dataset_settings=tuple(entries))


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
