"""Training: `train` runs a model on a dataset into a run folder (see `ai8x_nb.runs`).

Example:

>>> from ai8x_nb.training import train
>>> result = train("mnist", epochs=3)  # doctest: +SKIP
"""

from ai8x_nb.training.loop import (TrainingError, auto_verbose, make_optimizer, make_schedule,
                                   train)
from ai8x_nb.training.progress import NotebookProgress
from ai8x_nb.training.results import TrainResult

__all__ = ["NotebookProgress", "TrainResult", "TrainingError", "auto_verbose",
           "make_optimizer", "make_schedule", "train"]
