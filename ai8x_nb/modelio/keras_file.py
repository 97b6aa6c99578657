"""Load a saved `.keras` file, or fail with an error that names the file and what is wrong.

Keras reports a truncated file as "File not found" (it falls back to the legacy formats when
the zip archive cannot be read), and a damaged archive as a raw traceback from deep inside the
loader. `load_keras_file` checks the archive first and wraps the rest in a `ModelFileError`.
"""

import logging
import zipfile
from pathlib import Path

from ai8x_nb.errors import ModelFileError

__all__ = ["load_keras_file"]

logger = logging.getLogger(__name__)

_LOAD_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, EOFError,
                zipfile.BadZipFile)
_FIX = "Save the model again (model.save), or use another checkpoint of the run."


def _check_archive(path):
    if not path.exists():
        raise ModelFileError(f"Model file '{path}' does not exist. Pass the path of a saved "
                             f".keras model.")
    if not path.is_file():
        raise ModelFileError(f"Model file '{path}' is a folder, not a saved .keras model.")
    size = path.stat().st_size
    if not zipfile.is_zipfile(path):
        what = "is empty" if size == 0 else f"is not a zip archive ({size} bytes)"
        raise ModelFileError(f"Model file '{path}' {what}: it is truncated, corrupt or not a "
                             f".keras file. {_FIX}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ModelFileError(f"Model file '{path}' is a damaged zip archive ({err}). "
                             f"{_FIX}") from err
    if damaged is not None:
        raise ModelFileError(f"Model file '{path}' is corrupt: member {damaged!r} fails its "
                             f"checksum. {_FIX}")
    missing = sorted({"config.json", "metadata.json"} - names)
    if missing:
        raise ModelFileError(f"Model file '{path}' is a zip archive without "
                             f"{' and '.join(missing)}: not a Keras 3 .keras file. {_FIX}")


def load_keras_file(path, *, compile=False):
    """Load a `.keras` model saved by Keras 3, with the ai8x-nb layers registered.

    Loads with `safe_mode=True`: a file holding Python lambdas is refused, not executed.

    Args:
        path: the `.keras` file.
        compile: restore the compiled state (loss, metrics, optimizer and its variables).

    Returns:
        The `keras.Model`.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not a Keras archive, or Keras
            cannot rebuild the model from it (the message names the file and the cause).

    Example:

    >>> model = load_keras_file("logs/20250101-120000-mnist/best.keras")  # doctest: +SKIP
    """
    path = Path(path)
    _check_archive(path)
    import keras

    import ai8x_nb.layers  # noqa: F401  registers the hardware layers for deserialization
    import ai8x_nb.losses  # noqa: F401  registers the recipes' loss (compile=True)

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except _LOAD_ERRORS as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ModelFileError(f"Model file '{path}' cannot be loaded: {type(err).__name__}: "
                             f"{detail[:300]}. {_FIX}") from err
