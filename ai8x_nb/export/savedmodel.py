"""Float exports of the Keras model: TensorFlow SavedModel and ONNX.

Both go through Keras' own `Model.export` (the tf2onnx `from_keras` route is broken on
Keras 3, ai8x reference section 8). The ONNX file is checked against Keras with onnxruntime
before it is accepted.

What each Keras backend can write (`check_backend` refuses the rest before any work):

| target        | tensorflow | jax                                   | others (torch, ...) |
|---------------|------------|---------------------------------------|---------------------|
| synthesis     | yes        | yes (byte-identical to TensorFlow's)  | yes (untested)      |
| savedmodel    | yes        | yes (through jax2tf)                  | no                  |
| tflite        | yes        | yes (the portable form, through jax2tf) | no                |
| tflite_int8   | yes        | yes (the portable form, through jax2tf) | no                |
| onnx          | yes        | no                                    | no                  |

A `.keras` file saved under any backend loads under TensorFlow unchanged, so the refused
targets are one `KERAS_BACKEND=tensorflow` export away.
"""

import logging
from pathlib import Path

import numpy as np

from ai8x_nb.console import tf_quiet
from ai8x_nb.errors import ExportError

__all__ = ["export_savedmodel", "export_float_onnx", "compare_onnx", "check_backend",
           "backend_limits", "ONNX_TOLERANCE"]

logger = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-5
"""Largest accepted |ONNX - Keras| difference on the check inputs (float units)."""


FLOAT_TARGETS = ("savedmodel", "onnx", "tflite", "tflite_int8")
"""Targets written by Keras' own exporters, hence backend dependent (synthesis is NumPy)."""


def backend_limits(model, targets, backend=None):
    """The export targets that the Keras backend cannot write for `model`, with the reason.

    Args:
        model: a `keras.Model`.
        targets: export target names (see `ai8x_nb.export.TARGETS`).
        backend: a Keras backend name; default: the running one.

    Returns:
        A dict `{target: reason}`, empty when every target can be written.
    """
    import keras

    backend = backend or keras.backend.backend()
    if backend == "tensorflow":
        return {}
    limits = {}
    if backend == "jax":
        if "onnx" in targets:
            limits["onnx"] = (
                "Keras exports ONNX under JAX with jax2onnx, which writes max pooling as "
                "MaxPool nodes over the batch and channel axes too (onnxruntime rejects them: "
                "'Unsupported pooling size'), and tf2onnx cannot read a JAX SavedModel.")
        return limits
    for target in FLOAT_TARGETS:
        if target in targets:
            limits[target] = ("ai8x-nb writes it under the TensorFlow and JAX backends "
                              f"only; it is not supported on '{backend}'.")
    return limits


def check_backend(model, targets):
    """Refuse, before any work, the targets the running Keras backend cannot write.

    Args:
        model: a `keras.Model`.
        targets: export target names.

    Raises:
        ExportError: naming each refused target, why, and how to export it under TensorFlow.

    Example:

    >>> check_backend(model, ("synthesis", "onnx"))  # doctest: +SKIP
    """
    import keras

    limits = backend_limits(model, targets)
    if not limits:
        return
    backend = keras.backend.backend()
    lines = "\n".join(f"  - {target}: {reason}" for target, reason in limits.items())
    raise ExportError(
        f"Cannot export '{model.name}' to {', '.join(limits)} under the Keras '{backend}' "
        f"backend; for this model these targets need the TensorFlow backend:\n{lines}\n"
        f"Export them in a TensorFlow process: a .keras file saved under '{backend}' loads "
        f"there unchanged, e.g. `KERAS_BACKEND=tensorflow ai8x-nb export <run folder> "
        f"--targets {' '.join(limits)}` (or `model.save('m.keras')` here, then "
        f"`keras.saving.load_model('m.keras')` and `export_model` with "
        f"KERAS_BACKEND=tensorflow). The other targets work under '{backend}'.")


def export_savedmodel(model, path):
    """Write a TensorFlow SavedModel folder (`saved_model.pb` + `variables/`).

    Args:
        model: a built `keras.Model`.
        path: the folder to create.

    Returns:
        The folder `Path`.

    Raises:
        ExportError: Keras/TensorFlow could not trace or write the model.
    """
    path = Path(path)
    try:
        with tf_quiet():
            model.export(str(path), format="tf_saved_model", verbose=False)
    except Exception as err:  # TF raises many unrelated types while tracing
        raise ExportError(f"Cannot write the SavedModel of '{model.name}' to {str(path)!r}: "
                          f"{type(err).__name__}: {err}") from err
    return path


def export_float_onnx(model, path, check_inputs, *, tolerance=ONNX_TOLERANCE):
    """Write the float model as ONNX and verify it against Keras with onnxruntime.

    Args:
        model: a built `keras.Model`.
        path: the `.onnx` file to write.
        check_inputs: float32 inputs in the model's input layout (batch first) to compare on.
        tolerance: largest accepted absolute difference.

    Returns:
        The largest absolute difference seen (a float).

    Raises:
        ExportError: the running Keras backend cannot write this model's ONNX
            (`check_backend`), the export failed, or ONNX and Keras differ by more than
            `tolerance`.
    """
    check_backend(model, ("onnx",))
    path = Path(path)
    check_inputs = np.asarray(check_inputs, dtype=np.float32)
    model(check_inputs[:1], training=False)  # Keras' ONNX export refuses never-called models
    try:
        with tf_quiet():
            model.export(str(path), format="onnx", verbose=False)
    except Exception as err:
        raise ExportError(f"Cannot write the float ONNX of '{model.name}' to {str(path)!r}: "
                          f"{type(err).__name__}: {err}") from err
    diff = compare_onnx(model, path, check_inputs)
    if not diff <= tolerance:
        raise ExportError(
            f"The float ONNX of '{model.name}' differs from Keras by {diff:.3g} (limit "
            f"{tolerance:g}) on {len(check_inputs)} inputs; the export is wrong, please report "
            f"it with the model.")
    logger.info("float ONNX matches Keras within %.3g", diff)
    return diff


def compare_onnx(model, path, inputs):
    """Largest |onnxruntime - Keras| difference of the ONNX file `path` on `inputs`."""
    import onnxruntime

    inputs = np.asarray(inputs, dtype=np.float32)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    except Exception as err:  # onnxruntime raises its own untyped errors
        raise ExportError(f"onnxruntime cannot run the float ONNX of '{model.name}' "
                          f"({str(path)!r}): {type(err).__name__}: {err}") from err
    want = np.asarray(model(inputs, training=False))
    if got.shape != want.shape:
        raise ExportError(f"The float ONNX of '{model.name}' outputs shape {got.shape}, "
                          f"Keras {want.shape}.")
    return float(np.max(np.abs(got - want))) if got.size else 0.0
