"""A run's plan: every training setting resolved once, recorded in config.json, read back on resume.

Which value wins, setting by setting (`resolve_plan`): the argument given to `train` > the
recipe's setting for this dataset (`recipe_for`) > the seed model's default > the constants
below. A resumed run reads the same plan back from its config.json (`RunPlan.from_config`), so
a new run, a restart and a resume train from one object.

Example:

>>> from ai8x_nb import models
>>> from ai8x_nb.training.arguments import check_train_args
>>> plan = resolve_plan(check_train_args(epochs=15, recipe="fast"), "mnist",
...                     models.get_info("mnist"), "MAX78000")
>>> plan.batch_size, plan.lr, plan.schedule, plan.training.augment
(64, 0.002, 'cosine', True)
"""

import dataclasses
import logging
import time

from ai8x_nb import models
from ai8x_nb.devices import DEFAULT_DEVICE
from ai8x_nb.errors import Ai8xNbError, TrainingError
from ai8x_nb.models.schedules import CosineSchedule, reduce_on_plateau
from ai8x_nb.modelio.inputs import model_device
from ai8x_nb.parameters import DEFAULT_SEED, SCHEDULES
from ai8x_nb.training.arguments import DEFAULT_METRICS, DEFAULT_WARMUP_EPOCHS
from ai8x_nb.training.recipes import (RECIPES, Recipe, get_recipe, qat_start_epoch,
                                      recipe_config, recipe_from_config)

__all__ = ["RunPlan", "resolve_plan", "recipe_for", "resolve_policy", "make_schedule",
           "DEFAULT_BATCH_SIZE", "DEFAULT_LR", "DEFAULT_OPTIMIZER"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
"""Batch size when neither the argument, the recipe nor a seed model gives one."""
DEFAULT_LR = 1e-3
"""Learning rate when neither the argument, the recipe nor a seed model gives one."""
DEFAULT_OPTIMIZER = "adam"
"""Optimizer when neither the argument nor a seed model gives one."""


def recipe_for(recipe, dataset):
    """The recipe as it trains `dataset`: its per-dataset settings applied (the one place a
    recipe is resolved for a dataset).

    Args:
        recipe: a `Recipe`, a recipe name or None ("seed").
        dataset: the dataset's name (or None: the recipe's own settings).
    """
    return get_recipe(recipe).for_dataset(dataset)


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """How a run trains, every default filled in; `config.json` records it.

    Attributes:
        dataset: the dataset's name.
        epochs: total epochs.
        batch_size, optimizer, lr, metrics, schedule, warmup_epochs, seed, device: as in
            `ai8x_nb.training.train`, resolved (`optimizer` and `schedule` may be a Keras
            object a new run was given; config.json records its class name).
        policy: the `QATPolicy` (start epoch fitted to `epochs`) or None.
        recipe: the `Recipe` as given (config.json records its name, or its fields for a
            variant); `training` is the recipe for this dataset.
        distribute: "mirrored", "multiworker" or None (one device).
        defaults_from: the seed model whose defaults filled the gaps, or None.
        init_from: the trained model file the run fine-tunes (`train(init_from=...)`), or
            None (trained from its initial weights).
    """

    dataset: str
    epochs: int
    batch_size: int
    optimizer: object
    lr: float
    metrics: tuple
    schedule: object
    warmup_epochs: float
    seed: int
    device: str
    policy: object = None
    recipe: Recipe = RECIPES["seed"]
    distribute: str = None
    defaults_from: str = None
    init_from: str = None

    @property
    def training(self):
        """The recipe for this plan's dataset (augmentation, weight decay, BatchNorm, ...)."""
        return recipe_for(self.recipe, self.dataset)

    @property
    def info(self):
        """The seed `ModelInfo` of `defaults_from` (its LR schedule), or None."""
        return models.MODELS.get(self.defaults_from or "")

    @classmethod
    def from_config(cls, config, epochs):
        """The plan a run's config.json records, with `epochs` as the new total.

        A schedule saved as a callback's class name cannot be rebuilt: the seed's is used
        (logged).
        """
        schedule = config.get("schedule", "seed")
        if schedule not in SCHEDULES:
            logger.warning("Run was trained with schedule %s, which cannot be restored; "
                           "resuming with the seed schedule.", schedule)
            schedule = "seed"
        return cls(
            dataset=config.get("dataset"), epochs=int(epochs),
            batch_size=int(config["batch_size"]), optimizer=config["optimizer"],
            lr=float(config["lr"]), metrics=tuple(config.get("metrics") or DEFAULT_METRICS),
            schedule=schedule, warmup_epochs=float(config.get("warmup_epochs", 0.0)),
            seed=int(config.get("seed", DEFAULT_SEED)),
            device=config.get("device") or DEFAULT_DEVICE,
            policy=resolve_policy(config.get("qat_policy"), epochs),
            recipe=recipe_from_config(config), distribute=config.get("distribute"),
            defaults_from=config.get("defaults_from"), init_from=config.get("init_from"))

    def to_config(self, ds, ds_kwargs, model, model_ref):
        """The config.json content of a run with this plan.

        Args:
            ds: the `Dataset` (its name).
            ds_kwargs: the `ai8x_nb.datasets.load` arguments that reload it.
            model: the built model (its name; its spec when `model_ref` is None).
            model_ref: the seed model name or spec the model was built from, or None.
        """
        return {
            "dataset": ds.name,
            "dataset_kwargs": ds_kwargs,
            "model": model_ref if model_ref is not None else _try_spec(model),
            "model_name": model.name,
            "defaults_from": self.defaults_from,
            "device": model_device(model, self.device).name,
            "epochs": self.epochs,
            "batch_size": int(self.batch_size),
            "optimizer": (self.optimizer if isinstance(self.optimizer, str)
                          else type(self.optimizer).__name__),
            "lr": float(self.lr),
            "schedule": _schedule_name(self.schedule),
            "warmup_epochs": float(self.warmup_epochs),
            "metrics": [m if isinstance(m, str) else type(m).__name__ for m in self.metrics],
            "seed": self.seed,
            "qat_policy": None if self.policy is None else self.policy.to_dict(),
            **recipe_config(self.recipe),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "distribute": self.distribute,
            "init_from": self.init_from,
        }

    def make_schedule(self):
        """The LR-schedule callback of this plan, or None (see `make_schedule`)."""
        return make_schedule(self.schedule, self.info, self.lr, self.epochs, self.warmup_epochs)


def resolve_plan(args, dataset, info, device):
    """Fill the arguments' gaps (None): the recipe's for this dataset, the seed model's, else
    the constants.

    Args:
        args: the checked `ai8x_nb.training.arguments.TrainArgs`.
        dataset: the dataset's name.
        info: the seed `ModelInfo` giving the defaults, or None.
        device: the device name the model is built for.

    Returns:
        A `RunPlan`.

    Raises:
        ai8x_nb.errors.QuantizationError: a QAT policy that cannot be loaded.
    """
    recipe = get_recipe(args.recipe)
    used = recipe_for(recipe, dataset)

    def pick(*values):  # the first value given, else the last (which may be None)
        return next((v for v in values[:-1] if v is not None), values[-1])

    return RunPlan(
        dataset=dataset, epochs=args.epochs,
        batch_size=pick(args.batch_size, used.batch_size,
                        info.batch_size if info else DEFAULT_BATCH_SIZE),
        optimizer=pick(args.optimizer, info.optimizer if info else DEFAULT_OPTIMIZER),
        lr=pick(args.lr, used.lr, info.lr if info else DEFAULT_LR),
        metrics=pick(args.metrics, DEFAULT_METRICS),
        schedule=pick(args.schedule, used.schedule, "seed"),
        warmup_epochs=pick(args.warmup_epochs, used.warmup_epochs, DEFAULT_WARMUP_EPOCHS),
        seed=pick(args.seed, DEFAULT_SEED), device=device,
        policy=resolve_policy(args.qat_policy, args.epochs, used), recipe=recipe,
        distribute=args.distribute, defaults_from=info.name if info else None,
        init_from=args.init_from)


def resolve_policy(qat_policy, epochs, recipe=None):
    """Load a QAT policy and make its start epoch fit in `epochs` (None: no QAT).

    A policy that would start at or after the last epoch (e.g. the default start 30 in a
    2-epoch smoke run) starts at `epochs // 2` instead, with a warning. With the packaged
    "default" policy, a recipe with a `qat_fraction` sets the start (the policy's epoch 10 is
    written for long runs); a policy file or dict keeps its own start.

    Args:
        qat_policy: None, "default", a policy YAML path, a dict or a `QATPolicy`.
        epochs: total epochs of the run.
        recipe: the recipe for the run's dataset (`recipe_for`), or None.
    """
    if qat_policy is None:
        return None
    from ai8x_nb import quantize  # lazy: QAT is optional

    policy = qat_policy if isinstance(qat_policy, quantize.QATPolicy) else (
        quantize.load_policy(qat_policy))
    start = None
    if recipe is not None and isinstance(qat_policy, str) and qat_policy.lower() == "default":
        start = qat_start_epoch(recipe, epochs)
    if start is not None and start != policy.start_epoch:
        logger.info("QAT starts at epoch %d of %d (recipe %r).", start, epochs, recipe.name)
        policy = dataclasses.replace(policy, start_epoch=start)
    if policy.start_epoch >= epochs:
        start = epochs // 2
        logger.warning("QAT policy start_epoch=%d is not before the last of %d epochs; "
                       "starting QAT at epoch %d instead (half the run). Train longer or "
                       "lower start_epoch to follow the policy.", policy.start_epoch, epochs,
                       start)
        policy = dataclasses.replace(policy, start_epoch=start)
    return policy


def make_schedule(schedule, info, lr, epochs, warmup_epochs=0.0):
    """Return the LR-schedule callback (or None) for a schedule name or callback.

    Args:
        schedule: "seed" (alias "auto": the seed model's schedule, else ReduceLROnPlateau),
            "cosine" (per-step cosine decay to 0 over `epochs` after `warmup_epochs` of
            linear warm-up), "constant"/None (no schedule), or a Keras callback.
        info: the `ModelInfo` giving the seed schedule, or None.
        lr: the initial (peak) learning rate.
        epochs: total epochs of the run.
        warmup_epochs: warm-up length for "cosine".

    Raises:
        TrainingError: an unknown schedule name or a bad warm-up.
    """
    import keras

    if schedule is None or isinstance(schedule, keras.callbacks.Callback):
        return schedule
    name = str(schedule).lower()
    if name in ("seed", "auto"):
        return info.lr_schedule(lr) if info is not None else reduce_on_plateau(lr)
    if name == "cosine":
        try:
            return CosineSchedule(lr, epochs, warmup_epochs=warmup_epochs)
        except ValueError as err:
            raise TrainingError(str(err)) from None
    if name == "constant":
        return None
    raise TrainingError(f"schedule={schedule!r} is not supported; use one of {SCHEDULES}, "
                        f"None or a keras.callbacks.Callback.")


def _schedule_name(schedule):
    if schedule is None:
        return "constant"
    if isinstance(schedule, str):
        return "seed" if schedule.lower() == "auto" else schedule.lower()
    return type(schedule).__name__


def _try_spec(model):
    """The model's spec, or None for a model a spec cannot describe (custom layers, branches)."""
    from ai8x_nb.spec import model_to_spec

    try:
        return model_to_spec(model)
    except (Ai8xNbError, ValueError, TypeError, NotImplementedError) as err:
        logger.debug("No spec for model %s: %s", model.name, err)
        return None
