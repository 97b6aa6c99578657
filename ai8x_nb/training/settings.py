"""A run's settings with every default filled in: from `train`'s arguments or config.json."""

import dataclasses
import time

from ai8x_nb.modelio.inputs import model_device
from ai8x_nb.devices import DEFAULT_DEVICE
from ai8x_nb.parameters import DEFAULT_SEED
from ai8x_nb.training.arguments import DEFAULT_METRICS, DEFAULT_WARMUP_EPOCHS
from ai8x_nb.training.components import policy_dict, resolve_policy, schedule_name, try_spec
from ai8x_nb.training.recipes import get_recipe, recipe_config, recipe_from_config

__all__ = ["RunSettings", "DEFAULT_BATCH_SIZE", "DEFAULT_LR"]

DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 1e-3


@dataclasses.dataclass
class RunSettings:
    """How a run trains; `config.json` records these.

    Attributes:
        epochs: total epochs.
        batch_size, optimizer, lr, metrics, schedule, warmup_epochs, seed, device: as in
            `ai8x_nb.training.train`, resolved.
        policy: the `QATPolicy` (start epoch fitted to `epochs`) or None.
        recipe: the `ai8x_nb.training.recipes.Recipe`.
    """

    epochs: int
    batch_size: int
    optimizer: object
    lr: float
    metrics: tuple
    schedule: object
    warmup_epochs: float
    seed: int
    device: str
    policy: object
    recipe: object = None

    @classmethod
    def from_args(cls, args, info, qat_policy, recipe=None, dataset=None):
        """Fill the arguments' gaps (None) with the recipe's, the seed model's, else the defaults.

        Args:
            args: the checked `TrainArgs`.
            info: the seed `ModelInfo` giving the defaults, or None.
            qat_policy: the `qat_policy` argument of `train`.
            recipe: the `Recipe` (None: "seed"); recorded as given.
            dataset: the dataset's name: the recipe's settings for it fill the gaps.
        """
        recipe = get_recipe(recipe)
        used = recipe.for_dataset(dataset)

        def pick(value, default):
            return default if value is None else value

        return cls(
            epochs=args.epochs,
            batch_size=pick(args.batch_size, pick(used.batch_size, info.batch_size if info
                                                  else DEFAULT_BATCH_SIZE)),
            optimizer=pick(args.optimizer, info.optimizer if info else "adam"),
            lr=pick(args.lr, pick(used.lr, info.lr if info else DEFAULT_LR)),
            metrics=pick(args.metrics, DEFAULT_METRICS),
            schedule=pick(args.schedule, pick(used.schedule, "seed")),
            warmup_epochs=pick(args.warmup_epochs,
                               pick(used.warmup_epochs, DEFAULT_WARMUP_EPOCHS)),
            seed=pick(args.seed, DEFAULT_SEED),
            device=pick(args.device, DEFAULT_DEVICE),
            policy=resolve_policy(qat_policy, args.epochs, used),
            recipe=recipe)

    @classmethod
    def from_config(cls, config, epochs):
        """The settings a run's config.json records, with `epochs` as the new total."""
        return cls(
            epochs=epochs, batch_size=int(config["batch_size"]), optimizer=config["optimizer"],
            lr=float(config["lr"]), metrics=tuple(config.get("metrics") or DEFAULT_METRICS),
            schedule=config.get("schedule", "seed"),
            warmup_epochs=float(config.get("warmup_epochs", 0.0)),
            seed=int(config.get("seed", DEFAULT_SEED)),
            device=config.get("device") or DEFAULT_DEVICE,
            policy=resolve_policy(config.get("qat_policy"), epochs),
            recipe=recipe_from_config(config))

    def to_config(self, ds, ds_kwargs, model, model_ref, info):
        """The config.json content of a run with these settings."""
        return {
            "dataset": ds.name,
            "dataset_kwargs": ds_kwargs,
            "model": model_ref if model_ref is not None else try_spec(model),
            "model_name": model.name,
            "defaults_from": info.name if info else None,
            "device": model_device(model, self.device).name,
            "epochs": self.epochs,
            "batch_size": int(self.batch_size),
            "optimizer": (self.optimizer if isinstance(self.optimizer, str)
                          else type(self.optimizer).__name__),
            "lr": float(self.lr),
            "schedule": schedule_name(self.schedule),
            "warmup_epochs": float(self.warmup_epochs),
            "metrics": [m if isinstance(m, str) else type(m).__name__ for m in self.metrics],
            "seed": self.seed,
            "qat_policy": policy_dict(self.policy),
            **recipe_config(self.recipe),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
