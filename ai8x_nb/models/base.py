"""`ModelInfo`: a seed model's builder plus its training defaults, as data."""

import dataclasses
from collections.abc import Callable

from ai8x_nb.models.schedules import reduce_on_plateau


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """One seed model and how the seed trained it.

    Attributes:
        name: registry name (also the dataset it was designed for, except where `dataset` says).
        build: `build(device="MAX78000") -> keras.Model` (built, uncompiled).
        dataset: name of the `ai8x_nb.datasets` dataset it trains on.
        num_classes: number of outputs.
        input_shape: the model's input shape without batch.
        batch_size: training batch size.
        lr: initial learning rate.
        optimizer: optimizer name ("adam").
        epochs: default number of epochs.
        schedule: `schedule(lr) -> keras.callbacks.Callback`, the LR schedule.
        params: parameter count (as printed in the seed document).
        description: one line for listings.
    """

    name: str
    build: Callable
    dataset: str
    num_classes: int
    input_shape: tuple
    batch_size: int
    lr: float
    params: int
    optimizer: str = "adam"
    epochs: int = 100
    schedule: Callable = reduce_on_plateau
    description: str = ""

    def lr_schedule(self, lr=None):
        """Return a fresh LR-schedule callback for an initial rate `lr` (default `self.lr`)."""
        return self.schedule(self.lr if lr is None else lr)
