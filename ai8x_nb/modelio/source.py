"""Find a Keras model from a command-line style spec: a file, a module or a seed model name.

Accepted specs, tried in this order:

- a `keras.Model` (returned as is);
- a path to a saved `.keras` file;
- a path to a Python file, or an importable module name, that defines a `model` variable
  (a `keras.Model`) or a `build_model()` / `get_model()` function returning one; a function
  that takes a `device` argument receives the device name. `FILE.py:NAME` / `module:NAME`
  picks the variable or function `NAME`;
- the name of a seed model (`ai8x_nb.models.model_names()`), built for `device`.

Example:

>>> model = load_model_source("my_net.py")
>>> model = load_model_source("mnist", device="MAX78002")
"""

import importlib
import importlib.util
import inspect
import logging
import sys
from pathlib import Path

from ai8x_nb.errors import Ai8xNbError

__all__ = ["load_model_source", "ModelSourceError", "ModelSourceNotFoundError",
           "NoModelInSourceError", "MODEL_NAMES", "BUILDER_NAMES"]

logger = logging.getLogger(__name__)

MODEL_NAMES = ("model",)
"""Module variables holding a model."""
BUILDER_NAMES = ("build_model", "get_model")
"""Module functions returning a model."""


class ModelSourceError(Ai8xNbError, ValueError):
    """A model spec that cannot be turned into a Keras model."""


class ModelSourceNotFoundError(ModelSourceError):
    """The spec names no existing file, importable module or seed model."""


class NoModelInSourceError(ModelSourceError):
    """The file or module exists but defines no model (or its builder returned none)."""


def _is_model(obj):
    import keras

    return isinstance(obj, keras.Model)


def _seed_names():
    from ai8x_nb.models import model_names

    return list(model_names())


def _load_keras_file(path):
    from ai8x_nb.modelio.keras_file import load_keras_file

    if not path.exists():
        raise ModelSourceNotFoundError(
            f"Model file '{path}' does not exist. Pass the path of a saved .keras model.")
    return load_keras_file(path, compile=False)


def _import_file(path):
    if not path.is_file():
        raise ModelSourceNotFoundError(
            f"Model file '{path}' does not exist. Pass an existing Python file that defines "
            f"`model` or `build_model()`.")
    name = f"_ai8x_nb_model_source_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # let the file import its neighbours
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _call_builder(func, device):
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    if "device" in params:
        return func(device=device)
    return func()


def _model_from_module(module, where, attr, device):
    names = (attr,) if attr else MODEL_NAMES + BUILDER_NAMES
    for name in names:
        obj = getattr(module, name, None)
        if obj is None:
            continue
        if _is_model(obj):
            return obj
        if callable(obj):
            model = _call_builder(obj, device)
            if _is_model(model):
                return model
            raise NoModelInSourceError(
                f"{where}: {name}() returned {type(model).__name__}, not a keras.Model. "
                f"Return the built model.")
        raise NoModelInSourceError(
            f"{where}: `{name}` is a {type(obj).__name__}, not a keras.Model or a function.")
    wanted = ", ".join(f"`{n}`" for n in names)
    raise NoModelInSourceError(
        f"{where} defines none of {wanted}. Define `model = ...` (a keras.Model) or a "
        f"function `build_model()` that returns one.")


def load_model_source(spec, device=None):
    """Return the Keras model a spec refers to.

    Args:
        spec: a `keras.Model`, a `.keras` file, a Python file (optionally `FILE.py:NAME`), an
            importable module name (optionally `module:NAME`) or a seed model name.
        device: device name passed to seed models and to builders taking `device`.

    Returns:
        A `keras.Model`.

    Raises:
        ModelSourceNotFoundError: no such file, module or seed model.
        NoModelInSourceError: the file or module defines no model.
        ai8x_nb.errors.ModelFileError: a `.keras` file that is truncated, corrupt or not a
            Keras model.
    """
    if _is_model(spec):
        return spec
    text = str(spec).strip()
    base, _, attr = text.rpartition(":") if ":" in text and not Path(text).exists() else (
        text, "", "")
    if not base:
        base, attr = text, ""
    path = Path(base)
    if path.suffix == ".keras":
        return _load_keras_file(path)
    if path.suffix == ".py":
        return _model_from_module(_import_file(path), f"'{path}'", attr, device)
    if path.is_dir():
        raise ModelSourceNotFoundError(
            f"'{path}' is a folder. Pass a .keras file, a .py file or a module name.")
    seeds = _seed_names()
    if not attr and base.lower() in seeds:
        from ai8x_nb.models import get_model

        return get_model(base, device=device)
    try:
        module = importlib.import_module(base)
    except ModuleNotFoundError as err:
        if err.name and base.startswith(err.name):
            known = f" Seed models: {', '.join(seeds)}." if seeds else ""
            raise ModelSourceNotFoundError(
                f"No model file, module or seed model named {base!r}. Pass a .keras file, a .py "
                f"file defining `model` / `build_model()`, an importable module name or a seed "
                f"model name.{known}") from err
        raise ModelSourceError(f"Importing module {base!r} failed: {err}. Install the missing "
                               f"package or fix the import.") from err
    except (ImportError, ValueError, TypeError) as err:
        raise ModelSourceNotFoundError(f"Cannot import {base!r}: {err}") from err
    return _model_from_module(module, f"module '{base}'", attr, device)
