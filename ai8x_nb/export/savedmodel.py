"""Float exports of the Keras model: TensorFlow SavedModel and ONNX.

Both go through Keras' own `Model.export` (the tf2onnx `from_keras` route is broken on
Keras 3, ai8x reference section 8). The ONNX file is checked against Keras with onnxruntime
before it is accepted.
"""

import logging
from pathlib import Path

import numpy as np

from ai8x_nb.console import tf_quiet
from ai8x_nb.errors import ExportError

__all__ = ["export_savedmodel", "export_float_onnx", "compare_onnx", "ONNX_TOLERANCE"]

log = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-5
"""Largest accepted |ONNX - Keras| difference on the check inputs (float units)."""


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
        ExportError: the export failed, or ONNX and Keras differ by more than `tolerance`.
    """
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
    log.info("float ONNX matches Keras within %.3g", diff)
    return diff


def compare_onnx(model, path, inputs):
    """Largest |onnxruntime - Keras| difference of the ONNX file `path` on `inputs`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    inputs = np.asarray(inputs, dtype=np.float32)
    got = session.run(None, {feed_name: inputs})[0]
    want = np.asarray(model(inputs, training=False))
    if got.shape != want.shape:
        raise ExportError(f"The float ONNX of '{model.name}' outputs shape {got.shape}, "
                          f"Keras {want.shape}.")
    return float(np.max(np.abs(got - want))) if got.size else 0.0
