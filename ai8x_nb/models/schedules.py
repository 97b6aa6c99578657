"""Learning-rate schedule callbacks: the seed models' own, and a cosine decay for short runs.

A schedule is described as data on each `ModelInfo` (a factory `schedule(lr) -> Callback`),
so the training loop needs no per-model code.
"""

import bisect
import math

import keras

__all__ = ["reduce_on_plateau", "step_schedule", "StepSchedule", "CosineSchedule"]


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


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay of the learning rate over the whole run, per step, after a linear warm-up.

    The rate rises linearly from `lr / warmup_steps` to `lr` over the first `warmup_epochs`,
    then follows half a cosine down to `final_lr` at the last step of epoch `epochs`. The
    rate is a pure function of the global step, so a resumed run continues on the same curve.
    Seed schedules (ReduceLROnPlateau, steps at epoch 40) were written for 100+ epochs and
    never act in a short run; this one anneals whatever the budget, which is what a short run
    needs to converge.

    Args:
        lr: peak learning rate.
        epochs: total epochs of the run (the decay ends there).
        warmup_epochs: length of the linear warm-up, in epochs (fractions allowed).
        final_lr: rate at the end of the run.
        steps_per_epoch: batches per epoch; default: taken from `model.fit` when it starts.

    Example:

    >>> schedule = CosineSchedule(1e-3, epochs=2, steps_per_epoch=100)
    >>> [round(schedule.rate(step), 6) for step in (0, 199)]
    [0.001, 0.0]
    """

    def __init__(self, lr, epochs, warmup_epochs=0.0, final_lr=0.0, steps_per_epoch=None):
        super().__init__()
        if not lr > 0 or not epochs >= 1:
            raise ValueError(f"CosineSchedule needs lr > 0 and epochs >= 1; got lr={lr!r}, "
                             f"epochs={epochs!r}.")
        if not 0 <= warmup_epochs < epochs:
            raise ValueError(f"CosineSchedule warmup_epochs={warmup_epochs!r} must be in "
                             f"[0, epochs={epochs}); shorten the warm-up.")
        if not 0 <= final_lr <= lr:
            raise ValueError(f"CosineSchedule final_lr={final_lr!r} must be in [0, lr={lr}].")
        self.lr, self.epochs = float(lr), int(epochs)
        self.warmup_epochs, self.final_lr = float(warmup_epochs), float(final_lr)
        self.steps_per_epoch = steps_per_epoch
        self._epoch = 0

    def rate(self, step):
        """The learning rate at global step `step` (0-based) of the run."""
        steps = self.steps_per_epoch
        if not steps:
            raise ValueError("CosineSchedule does not know the steps per epoch; pass "
                             "steps_per_epoch or use a dataset of known length.")
        total = self.epochs * steps
        warmup = int(round(self.warmup_epochs * steps))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup - 1))
        return self.final_lr + (self.lr - self.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def on_train_begin(self, logs=None):
        if not self.steps_per_epoch:
            self.steps_per_epoch = (self.params or {}).get("steps")
        self.rate(0)  # fail now, not at the first batch, when the step count is unknown

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate(self._epoch * self.steps_per_epoch + batch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))

    def __repr__(self):
        return (f"CosineSchedule(lr={self.lr}, epochs={self.epochs}, warmup_epochs="
                f"{self.warmup_epochs}, final_lr={self.final_lr})")
