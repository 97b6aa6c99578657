"""`ModelInfo`: a seed model's definition (a spec or a builder) and its training defaults."""

import copy
import dataclasses
from collections.abc import Callable

from ai8x_nb.models.schedules import reduce_on_plateau

__all__ = ["ModelInfo", "SpecBuilder"]


@dataclasses.dataclass(frozen=True)
class SpecBuilder:
    """`build(device)` of a seed model described by a spec: `spec_to_model` of its rows.

    When the model's input (`input_shape`, as the seed defines it) differs from the shape the
    first row reads (`spec_input_shape`), a Reshape row is put in front: mnist takes (28, 28)
    and its first convolution reads (28, 28, 1).

    Attributes:
        name: the Keras model name.
        spec: the rows (see `ai8x_nb.spec`).
        input_shape: the model's input shape without batch.
        spec_input_shape: the shape the first row reads.
        num_classes: outputs of the last row.
    """

    name: str
    spec: tuple
    input_shape: tuple
    spec_input_shape: tuple
    num_classes: int

    def rows(self):
        """The spec the model is built from (with the input Reshape row, when there is one)."""
        rows = copy.deepcopy(list(self.spec))
        if tuple(self.spec_input_shape) != tuple(self.input_shape):
            rows.insert(0, {"type": "reshape", "target_shape": list(self.spec_input_shape)})
        return rows

    def __call__(self, device=None):
        from ai8x_nb.spec import spec_to_model

        return spec_to_model(self.rows(), self.input_shape, self.num_classes, device,
                             name=self.name)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """One seed model and how the seed trained it.

    A model is defined once: by `spec` (a chain of layers; the notebooks, the layer editor
    and `ai8x-nb train` all build it with `ai8x_nb.spec.spec_to_model`), or, for a network a
    spec cannot express (branches, Add), by a `build` function.

    Attributes:
        name: registry name (also the dataset it was designed for, except where `dataset` says).
        dataset: name of the `ai8x_nb.datasets` dataset it trains on.
        num_classes: number of outputs.
        input_shape: the model's input shape without batch.
        batch_size: training batch size.
        lr: initial learning rate.
        params: parameter count (as printed in the seed document).
        spec: the layer rows, or None for a `build` model.
        spec_input_shape: the shape the first spec row reads (default `input_shape`).
        build: `build(device=None) -> keras.Model` (built, uncompiled); for a spec
            model it is set to `SpecBuilder` of the spec.
        optimizer: optimizer name ("adam").
        epochs: default number of epochs.
        schedule: `schedule(lr) -> keras.callbacks.Callback`, the LR schedule.
        description: one line for listings.
        device: the device the model needs ("MAX78002" for depthwise layers), or None when
            it runs on either.

    Raises:
        ValueError: neither or both of `spec` and `build` given.
    """

    name: str
    dataset: str
    num_classes: int
    input_shape: tuple
    batch_size: int
    lr: float
    params: int
    spec: tuple = None
    spec_input_shape: tuple = None
    build: Callable = None
    optimizer: str = "adam"
    epochs: int = 100
    schedule: Callable = reduce_on_plateau
    description: str = ""
    device: str = None

    def __post_init__(self):
        if (self.spec is None) == (self.build is None):
            raise ValueError(f"ModelInfo {self.name!r} needs exactly one of spec= (a chain of "
                             f"layers) and build= (a function returning a keras.Model).")
        if self.spec is None:
            return
        # Frozen: the derived fields are set once, here.
        spec_input = tuple(self.spec_input_shape or self.input_shape)
        object.__setattr__(self, "spec_input_shape", spec_input)
        object.__setattr__(self, "build", SpecBuilder(
            self.name, tuple(self.spec), tuple(self.input_shape), spec_input, self.num_classes))

    def lr_schedule(self, lr=None):
        """Return a fresh LR-schedule callback for an initial rate `lr` (default `self.lr`)."""
        return self.schedule(self.lr if lr is None else lr)
