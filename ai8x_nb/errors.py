"""Exception types of ai8x-nb.

Every error a user can trigger is a subclass of `Ai8xNbError`; the ones about bad
values are also `ValueError`s so that generic code catching `ValueError` keeps working.
"""


class Ai8xNbError(Exception):
    """Base class of every ai8x-nb error."""


class DeviceLimitError(Ai8xNbError, ValueError):
    """A layer argument or a model is outside what the accelerator can run.

    The message names the layer, the argument, the value received, the device limit
    and how to fix it.
    """


class UnknownDeviceError(Ai8xNbError, ValueError):
    """A device name that is not MAX78000 or MAX78002."""


class ModelCheckError(Ai8xNbError, ValueError):
    """A whole model cannot run on the device; `report` holds the full check report."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


class QuantizationError(Ai8xNbError, ValueError):
    """A model or policy that cannot be quantized as asked."""


class ExportError(Ai8xNbError):
    """An export target could not be written."""


class InputShapeError(Ai8xNbError, ValueError):
    """Samples whose shape does not fit a model's input (another dataset's samples)."""


class TrainingError(Ai8xNbError, ValueError):
    """A training argument that cannot be used (bad value, model/data mismatch, ...)."""


class ParameterError(TrainingError):
    """A parameter with a value it cannot take, in a notebook, on the command line or in a
    call (`train`): the message names the parameter, the value, what is expected and the fix.
    `ai8x_nb.parameters` holds the one table of rules. (A `TrainingError`: `train` has always
    raised that for a bad argument.)"""


class DatasetError(Ai8xNbError, ValueError):
    """A dataset is missing, corrupt, truncated or cannot be downloaded.

    The message names the file, what is wrong with it and how to fix it.
    """


class SynthesisError(Ai8xNbError):
    """The vendor's synthesis tool is missing, rejected an export, or computed another answer.

    `result` holds the `SynthesisResult` when the tool ran.
    """

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class ModelFileError(Ai8xNbError, ValueError):
    """A saved model file (`.keras`) that is missing, truncated, corrupt or not a Keras model.

    The message names the file, what is wrong with it and how to fix it.
    """


class ZooImportError(Ai8xNbError, ValueError):
    """A trained checkpoint or network description that cannot be imported into the workbench.

    The message names the file, the layer and the YAML key (or the checkpoint entry) and what
    is missing.
    """


class UnsafeCheckpointError(ZooImportError):
    """A checkpoint whose pickle asks for something a state dict never needs.

    Raised before anything is called: the message names the file and the refused global or
    operation.
    """
