"""What a dataset notebook trains with: its parameters, else the recipe's, else its own values.

A notebook's `batch_size`, `lr` and `schedule` default to None, so a recipe chosen with
`-p recipe fast` applies whole. What None becomes is the recipe's value for the dataset when the
recipe has one ("fast" has all three), else the notebook's short-run value (the "seed" recipe
has none: the seed models' values are made for 100 epochs and would barely move a 3-epoch demo).

Example:

>>> notebook_settings("seed", "mnist", {"batch_size": 64, "lr": 0.002, "schedule": "cosine"},
...                   lr=0.01)["lr"]
(0.01, 'parameter')
>>> notebook_settings("fast", "mnist", {"batch_size": 32, "lr": 0.002, "schedule": "cosine"})[
...     "batch_size"]
(64, 'recipe fast')
"""

from ai8x_nb.training.plan import recipe_for

__all__ = ["SHORT_RUN_KEYS", "notebook_settings", "settings_text"]

SHORT_RUN_KEYS = ("batch_size", "lr", "schedule")
"""The notebook parameters None leaves to the recipe, then to the notebook's short-run value."""


def notebook_settings(recipe, dataset, short_run, **given):
    """Resolve a notebook's `batch_size`, `lr` and `schedule`.

    Args:
        recipe: the recipe name (or `Recipe`, or None for "seed").
        dataset: the dataset's name (the recipe's per-dataset settings apply).
        short_run: the notebook's values for a short run, one per `SHORT_RUN_KEYS`.
        **given: the notebook's parameters of `SHORT_RUN_KEYS` (None: not chosen).

    Returns:
        A dict key -> (value, where it came from: "parameter", "recipe NAME" or "notebook").
    """
    used = recipe_for(recipe, dataset)
    resolved = {}
    for key in SHORT_RUN_KEYS:
        if given.get(key) is not None:
            resolved[key] = (given[key], "parameter")
        elif getattr(used, key) is not None:
            resolved[key] = (getattr(used, key), f"recipe {used.name}")
        else:
            resolved[key] = (short_run[key], "notebook")
    return resolved


def settings_text(resolved, **more):
    """One line of resolved settings, e.g. "batch_size 64 (notebook), lr 0.002 (parameter)".

    Args:
        resolved: the dict of `notebook_settings`.
        **more: other settings shown as they are (e.g. recipe="seed", epochs=3).
    """
    parts = [f"{key} {value} ({source})" for key, (value, source) in resolved.items()]
    parts += [f"{key} {value}" for key, value in more.items()]
    return ", ".join(parts)
