"""TFLite exports: float and full-int8 (builtin int8 ops only, for TFLite Micro / ESP32-S3).

Both are converted from the SavedModel of the model's portable form (`export.portable`: the
same weights in plain Keras layers, batch 1, no device emulation ops) with
`tf.lite.TFLiteConverter.from_saved_model` (`from_keras_model` is broken on Keras 3, ai8x
reference section 7). The int8 model uses a representative set of training samples in the
float training view (x / 128), int8 input and output, and only `TFLITE_BUILTINS_INT8` ops.
Its input is calibrated to the device's data format (scale 1/128, zero point 0), so the same
int8 sample feeds the MAX78000 and the microcontroller.

Evaluation runs LiteRT without its XNNPACK delegate, whose float requantization differs from
the microcontroller's integer kernels in most outputs (`export.tflite_micro` says where
LiteRT's own kernels and TFLite Micro's differ).
"""

import logging
from pathlib import Path

import numpy as np

from ai8x_nb.modelio.inputs import top1_accuracy
from ai8x_nb.console import tf_quiet
from ai8x_nb.errors import ExportError

__all__ = ["export_portable_savedmodel", "convert_float", "convert_int8", "evaluate_tflite",
           "tflite_io_details", "litert_interpreter", "predict_tflite"]

logger = logging.getLogger(__name__)


def export_portable_savedmodel(model, path, portable=None):
    """Write the SavedModel of `model`'s portable form with a fixed batch of one.

    A microcontroller runs one sample at a time, and a static batch keeps dynamic-shape ops
    (SHAPE, STRIDED_SLICE, PACK) out of the TFLite graph.

    Args:
        model: the `keras.Model` of ai8x_nb layers.
        path: the SavedModel folder to write.
        portable: its portable form when already made (`portable.portable_model(model)`).

    Returns:
        The folder `Path`.

    Raises:
        ExportError: a layer has no portable form, or Keras could not write the SavedModel.
    """
    import keras

    from ai8x_nb.export.portable import portable_model

    plain = portable if portable is not None else portable_model(model)
    shape = (1,) + tuple(int(s) for s in model.inputs[0].shape[1:])
    try:
        with tf_quiet():
            plain.export(str(path), format="tf_saved_model", verbose=False,
                         input_signature=[keras.InputSpec(shape=shape, dtype="float32")])
    except Exception as err:  # TF raises many unrelated types while tracing
        raise ExportError(f"Cannot write the portable SavedModel of '{model.name}' to "
                          f"{str(path)!r}: {type(err).__name__}: {err}") from err
    return Path(path)


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
    representative = np.array(representative, dtype=np.float32)
    if len(representative) == 0:
        raise ExportError("Full-int8 TFLite needs representative samples; got none. Pass a "
                          "dataset to export_model (its training split is used).")
    # The device's full data range in one sample pins the input scale to 1/128, zero point
    # 0 (the converter calibrates the input from the samples' min and max).
    flat = representative[0].reshape(-1)
    if flat.size >= 2:
        flat[0], flat[1] = -1.0, 127.0 / 128.0

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


def litert_interpreter(model, *, reference=False):
    """A LiteRT interpreter without the XNNPACK delegate (allocated).

    Args:
        model: a `.tflite` path or the model bytes.
        reference: LiteRT's reference kernels instead of its optimized ones (same results
            here, slower; tests compare both with TFLite Micro).

    Uses `ai_edge_litert` when installed, else TensorFlow's `tf.lite.Interpreter`.
    """
    try:
        from ai_edge_litert import interpreter as lite
    except ImportError:
        import tensorflow as tf

        lite = tf.lite
        resolvers = tf.lite.experimental.OpResolverType
    else:
        resolvers = lite.OpResolverType
    kind = (resolvers.BUILTIN_REF if reference
            else resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    source = ({"model_content": bytes(model)} if isinstance(model, (bytes, bytearray))
              else {"model_path": str(model)})
    with tf_quiet():  # TF's deprecation warning
        interpreter = lite.Interpreter(**source, experimental_op_resolver_type=kind)
        interpreter.allocate_tensors()
    return interpreter


def tflite_io_details(path):
    """Input/output dtype and quantization (scale, zero point) of a `.tflite` file."""
    interp = litert_interpreter(path)
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


def quantize_input(x, io):
    """Quantize float inputs with an int8 model's input details (`tflite_io_details`)."""
    return np.clip(np.round(np.asarray(x, np.float32) / io["scale"]) + io["zero_point"],
                   -128, 127).astype(np.int8)


def predict_tflite(path, x, *, reference=False):
    """Run a `.tflite` model on float inputs `x` (batch first); returns the raw outputs.

    Integer models get their input quantized with the file's own scale / zero point. The
    exported models have a batch of one (as on a microcontroller): one invoke per sample.
    """
    interp = litert_interpreter(path, reference=reference)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = np.asarray(x, dtype=np.float32)
    if np.issubdtype(inp["dtype"], np.integer):
        x = _quantize(x, inp)
    outputs = []
    for sample in x:
        interp.set_tensor(inp["index"], sample[None].astype(inp["dtype"]))
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"])[0].copy())
    return np.stack(outputs) if outputs else np.zeros((0,))


def evaluate_tflite(path, x, y):
    """Top-1 accuracy of a `.tflite` classifier on float inputs `x` and labels `y`."""
    if len(x) == 0:
        return None
    return top1_accuracy(predict_tflite(path, x), y)
