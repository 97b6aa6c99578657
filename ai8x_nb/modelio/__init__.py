"""Models in and out: load a saved `.keras` file, find a model from a command-line style
source, and feed a built model (its device, samples in its input layout, predictions).

- `keras_file`: `load_keras_file`, with errors that name the file and what is wrong.
- `source`: `load_model_source` (a `.keras` file, a Python file or module, a seed model name).
- `inputs`: `model_device`, `model_input_shape`, `check_input_shape`, `to_model_input`,
  `predict`, `top1_accuracy`.

Example:

>>> from ai8x_nb.modelio import load_model_source
>>> model = load_model_source("mnist", device="MAX78002")  # doctest: +SKIP
"""

from ai8x_nb.modelio.inputs import (check_input_shape, model_device, model_input_shape, predict,
                                    to_model_input, top1_accuracy)
from ai8x_nb.modelio.keras_file import load_keras_file
from ai8x_nb.modelio.source import (BUILDER_NAMES, MODEL_NAMES, ModelSourceError,
                                    ModelSourceNotFoundError, NoModelInSourceError,
                                    load_model_source)

__all__ = ["load_keras_file", "load_model_source", "ModelSourceError", "ModelSourceNotFoundError",
           "NoModelInSourceError", "MODEL_NAMES", "BUILDER_NAMES", "model_device",
           "model_input_shape", "check_input_shape", "to_model_input", "predict",
           "top1_accuracy"]
