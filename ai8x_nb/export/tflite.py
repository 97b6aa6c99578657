"""TFLite exports: float and full-int8 (builtin int8 ops only, for TFLite Micro / ESP32-S3).

Both are converted from the SavedModel with `tf.lite.TFLiteConverter.from_saved_model`
(`from_keras_model` is broken on Keras 3, ai8x reference section 7). The int8 model uses a
representative set of training samples in the float training view (x / 128), int8 input and
output, and only `TFLITE_BUILTINS_INT8` ops, so it runs without the Select-TF-ops delegate.
"""

import logging
from pathlib import Path

import numpy as np

from ai8x_nb._model_io import top1_accuracy
from ai8x_nb.console import tf_quiet
from ai8x_nb.errors import ExportError

__all__ = ["convert_float", "convert_int8", "evaluate_tflite", "tflite_io_details"]

logger = logging.getLogger(__name__)


def convert_float(saved_model_dir, path):
    """Convert a SavedModel to a float32 `.tflite` file.

    Returns:
        The file `Path`.

    Raises:
        ExportError: the converter failed.
    """
    return _convert(saved_model_dir, path, "float", lambda converter, tf: None)


def convert_int8(saved_model_dir, path, representative):
    """Convert a SavedModel to a full-int8 `.tflite` (int8 input and output, builtins only).

    Args:
        saved_model_dir: the SavedModel folder.
        path: the `.tflite` file to write.
        representative: float32 samples in the model input layout (batch first), e.g.
            ~100 training samples divided by 128.

    Returns:
        The file `Path`.

    Raises:
        ExportError: no representative samples, or the converter failed (e.g. an op without
            an int8 builtin kernel).
    """
    representative = np.asarray(representative, dtype=np.float32)
    if len(representative) == 0:
        raise ExportError("Full-int8 TFLite needs representative samples; got none. Pass a "
                          "dataset to export_model (its training split is used).")

    def samples():
        for x in representative:
            yield [x[None]]

    def configure(converter, tf):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

    return _convert(saved_model_dir, path, "int8", configure)


def _convert(saved_model_dir, path, kind, configure):
    """Run the TFLite converter on a SavedModel with `configure(converter, tf)` applied."""
    import tensorflow as tf

    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
        configure(converter, tf)
        with tf_quiet():
            data = converter.convert()
    except Exception as err:
        raise ExportError(f"TFLite {kind} conversion of {str(saved_model_dir)!r} failed: "
                          f"{type(err).__name__}: {err}") from err
    Path(path).write_bytes(data)
    return Path(path)


def _interpreter(path):
    """A TFLite interpreter: LiteRT's when `ai_edge_litert` is installed, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806 - deprecated in TF, still works
    with tf_quiet():  # TF's deprecation warning; XNNPACK's "Created delegate" line
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    return interpreter


def tflite_io_details(path):
    """Input/output dtype and quantization (scale, zero point) of a `.tflite` file."""
    interp = _interpreter(path)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def describe(d):
        scale, zero = d["quantization"]
        return {"dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
                "scale": float(scale), "zero_point": int(zero)}

    return {"input": describe(inp), "output": describe(out)}


def _quantize(x, detail):
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def predict_tflite(path, x, *, batch_size=256):
    """Run a `.tflite` model on float inputs `x` (batch first); returns the raw outputs.

    Integer models get their input quantized with the file's own scale / zero point. The
    input tensor is resized to the batch size so that one invoke runs a whole batch.
    """
    interp = _interpreter(path)
    inp = interp.get_input_details()[0]
    x = np.asarray(x, dtype=np.float32)
    outputs, size = [], None
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        if size != len(batch):
            interp.resize_tensor_input(inp["index"], (len(batch),) + batch.shape[1:])
            interp.allocate_tensors()
            size = len(batch)
            inp = interp.get_input_details()[0]
            out = interp.get_output_details()[0]
        if np.issubdtype(inp["dtype"], np.integer):
            batch = _quantize(batch, inp)
        interp.set_tensor(inp["index"], batch)
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(outputs) if outputs else np.zeros((0,))


def evaluate_tflite(path, x, y, *, batch_size=256):
    """Top-1 accuracy of a `.tflite` classifier on float inputs `x` and labels `y`."""
    if len(x) == 0:
        return None
    return top1_accuracy(predict_tflite(path, x, batch_size=batch_size), y)
