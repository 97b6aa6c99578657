"""Learning-rate schedule callbacks of the seed models.

A schedule is described as data on each `ModelInfo` (a factory `schedule(lr) -> Callback`),
so the training loop needs no per-model code.
"""

import bisect

import keras

__all__ = ["reduce_on_plateau", "step_schedule", "StepSchedule"]


def reduce_on_plateau(lr=None):
    """The seeds' default schedule: ReduceLROnPlateau on validation accuracy.

    Args:
        lr: the initial learning rate (unused; kept so every schedule factory has the same
            signature).

    Returns:
        `keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.2,
        patience=3, min_lr=1e-5)`.
    """
    del lr
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy", mode="max", factor=0.2, patience=3, min_lr=1e-5)


class StepSchedule:
    """A piecewise-constant learning rate: `values[i]` from epoch `boundaries[i-1]` on.

    A plain picklable object (not a lambda) so the callback can be inspected and logged.

    Args:
        boundaries: increasing epochs at which the rate changes.
        values: `len(boundaries) + 1` learning rates.

    Example:

    >>> StepSchedule((40, 80), (3e-4, 1e-4, 5e-5))(45)
    0.0001
    """

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"StepSchedule needs len(boundaries) + 1 values; got "
                             f"{len(boundaries)} boundaries and {len(values)} values.")
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"StepSchedule boundaries must increase; got {list(boundaries)}.")
        self.boundaries = tuple(int(b) for b in boundaries)
        self.values = tuple(float(v) for v in values)

    def __call__(self, epoch, lr=None):
        return self.values[bisect.bisect_right(self.boundaries, epoch)]

    def __repr__(self):
        return f"StepSchedule(boundaries={self.boundaries}, values={self.values})"


def step_schedule(boundaries, values, base_lr=None):
    """Return a factory `f(lr) -> LearningRateScheduler` for a step schedule.

    Args:
        boundaries: epochs at which the rate changes.
        values: the learning rates, one more than `boundaries`.
        base_lr: the rate `values` were written for (default `values[0]`). When training
            uses another initial rate, every value is scaled by `lr / base_lr`.

    Returns:
        A schedule factory for `ModelInfo.schedule`.

    Example:

    >>> factory = step_schedule((40, 80, 120), (3e-4, 1e-4, 5e-5, 3e-5))
    >>> callback = factory(3e-4)
    """
    base = float(values[0] if base_lr is None else base_lr)

    def factory(lr=None):
        scale = 1.0 if lr is None else float(lr) / base
        schedule = StepSchedule(boundaries, [v * scale for v in values])
        return keras.callbacks.LearningRateScheduler(schedule)

    return factory
