"""Training: `train` runs a model on a dataset into a run folder (see `ai8x_nb.runs`).

Example:

>>> from ai8x_nb.training import train
>>> result = train("mnist", epochs=3)  # doctest: +SKIP
"""

from ai8x_nb.errors import TrainingError
from ai8x_nb.training.assemble import make_optimizer
from ai8x_nb.training.plan import make_schedule
from ai8x_nb.training.progress import NotebookProgress, auto_verbose
from ai8x_nb.training.results import TrainResult
from ai8x_nb.training.trainer import train

__all__ = ["NotebookProgress", "TrainResult", "TrainingError", "auto_verbose",
           "make_optimizer", "make_schedule", "train"]
