"""The int8 `.tflite` judged by TensorFlow Lite for Microcontrollers, and its firmware files.

TFLite Micro is the runtime of the ESP32-S3 (Espressif's `esp-tflite-micro` component, with
the ESP-NN kernels). It has fewer kernels than LiteRT's Python interpreter, so a model that
LiteRT runs may not load on the microcontroller; `micro_report` loads the file in TFLite
Micro's own interpreter (PyPI `tflite-micro`), runs samples and reads the arena it allocates.

What the two runtimes compute (measured on the seed models): with LiteRT's reference or
optimized kernels (no XNNPACK delegate), every CONV_2D, pooling, PAD, RESHAPE and ADD output
equals TFLite Micro's bit for bit. FULLY_CONNECTED differs in its requantization: LiteRT
rounds the 32-bit accumulator times the output multiplier once, TFLite Micro rounds twice
(the high 32 bits of the doubled product, then the right shift, as gemmlowp does), so a
value lying at a rounding tie of the second step comes out one code higher or lower. XNNPACK
(LiteRT's default delegate) requantizes in float and differs in most outputs by one code.

`write_firmware_files` writes what an ESP-IDF project needs: the model as an aligned C array
(`model_data.cc` / `.h`) and the `MicroMutableOpResolver` with exactly the model's ops.
"""

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ai8x_nb.errors import ExportError

__all__ = ["micro_available", "model_ops", "micro_report", "micro_predict",
           "resolver_methods", "write_firmware_files", "FIRMWARE_FOLDER"]

logger = logging.getLogger(__name__)

FIRMWARE_FOLDER = "esp32s3"
"""The export's sub-folder of files for an ESP-IDF project."""

ARENA_MARGIN = 1.1
"""The arena size written into the header: TFLite Micro's figure plus 10 % (ESP-NN's kernels
ask for scratch buffers of their own), rounded up to 1 KiB."""

ARENA_LIMIT = 64 * 1024 * 1024
"""The arena the check offers (TFLite Micro's default, 10x the model, is too small for models
with few weights and large activations); the arena it records is what the model used."""

_ARENA_LINE = re.compile(r"Arena allocation total (\d+) bytes")
_INSTALL = "pip install tflite-micro (or pip install -e \".[dev]\")"


def micro_available():
    """Whether TFLite Micro's Python interpreter (`tflite-micro`) is installed."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def _runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as err:
        raise ExportError(f"TFLite Micro's interpreter is not installed; {_INSTALL}.") from err
    return runtime


def _graph(data):
    """The builtin op names in execution order and the float32 tensors between ops."""
    from ai8x_nb.export.tflite import litert_interpreter

    interp = litert_interpreter(data)
    details = interp._get_ops_details()  # noqa: SLF001 - LiteRT has no public op list
    used = {i for op in details for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0}
    floats = [d["name"] for d in interp.get_tensor_details()
              if d["index"] in used and np.dtype(d["dtype"]) == np.float32]
    return [op["op_name"] for op in details], floats


def model_ops(data):
    """The builtin op names of a `.tflite` model, in execution order (e.g. ["CONV_2D", ...]).

    Args:
        data: the model bytes.
    """
    return _graph(data)[0]


@contextlib.contextmanager
def _captured_stderr():
    """Capture what C++ code writes to file descriptor 2 (TFLite Micro's allocation log)."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        text = []
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def _interpreter(data):
    runtime = _runtime()
    with _captured_stderr() as log:
        try:
            interp = runtime.Interpreter.from_bytes(bytes(data), arena_size=ARENA_LIMIT)
        except Exception as err:  # the binding raises RuntimeError with the reason in the log
            interp, error = None, err
    if interp is None:
        reason = " ".join(line.strip() for line in log[0].splitlines() if line.strip())
        return None, f"{type(error).__name__}: {error}" + (f" ({reason})" if reason else "")
    return interp, None


def micro_predict(data, x_int8):
    """Run int8 samples (batch first, the model's input layout) through TFLite Micro.

    Returns:
        The int8 outputs, batch first.

    Raises:
        ExportError: TFLite Micro is not installed or cannot load the model.
    """
    interp, error = _interpreter(data)
    if interp is None:
        raise ExportError(f"TFLite Micro cannot load the model: {error}")
    outputs = []
    for sample in np.asarray(x_int8, dtype=np.int8):
        interp.set_input(sample[None], 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0))[0])
    return np.stack(outputs) if outputs else np.zeros((0,), np.int8)


def micro_report(path, x_int8=None):
    """Load an int8 `.tflite` in TFLite Micro: whether it runs, its arena, ops and size.

    Args:
        path: the `.tflite` file.
        x_int8: optional int8 samples (batch first) to run; their outputs are returned too.
            Without them one sample of zeros runs (a float model's input is float).

    Returns:
        A dict: `loads` (bool), `error` (why not, or None), `ops` (op name -> count),
        `model_bytes`, `arena_bytes` (TFLite Micro's recorded arena, None when it does not
        load), `float_tensors` (float32 tensors inside the graph: none in a clean int8
        model), and `outputs` (int8 array, when `x_int8` was given and it loads).

    Raises:
        ExportError: TFLite Micro is not installed.
    """
    data = Path(path).read_bytes()
    names, floats = _graph(data)
    ops = {}
    for name in names:
        ops[name] = ops.get(name, 0) + 1
    report = {"loads": False, "error": None, "ops": ops, "model_bytes": len(data),
              "arena_bytes": None, "float_tensors": floats}
    interp, error = _interpreter(data)
    if interp is None:
        report["error"] = error
        return report
    outputs = []
    detail = interp.get_input_details(0)
    samples = np.zeros((1,) + tuple(detail["shape"][1:]), detail["dtype"]) \
        if x_int8 is None or len(x_int8) == 0 else np.asarray(x_int8, dtype=np.int8)
    with _captured_stderr() as log:
        for sample in samples:
            interp.set_input(sample[None], 0)
            interp.invoke()
            outputs.append(np.array(interp.get_output(0))[0])
        interp.print_allocations()
    found = _ARENA_LINE.search(log[0])
    report["loads"] = True
    report["arena_bytes"] = int(found.group(1)) if found else None
    if x_int8 is not None:
        report["outputs"] = np.stack(outputs)
    return report


def resolver_methods(ops):
    """`MicroMutableOpResolver` method names for TFLite op names (CONV_2D -> AddConv2D)."""
    methods = []
    for name in ops:
        parts = name.split("_")
        method = "Add" + "".join(p if re.fullmatch(r"\d+D", p) else p.capitalize()
                                 for p in parts)
        if method not in methods:
            methods.append(method)
    return methods


def _c_array(data, per_line=12):
    rows = []
    for start in range(0, len(data), per_line):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in data[start:start + per_line]) + ",")
    return "\n".join(rows)


def write_firmware_files(tflite_path, folder, *, name, arena_bytes, input_details=None):
    """Write the model as a C array and its op resolver for an ESP-IDF / TFLite Micro project.

    Files: `model_data.h` / `model_data.cc` (`g_model_data`, 16-byte aligned, and
    `g_model_data_len`), `model_ops.h` (`kTensorArenaSize` and `AddModelOps(resolver)`
    registering exactly the model's ops on a `tflite::MicroMutableOpResolver<kModelOpCount>`).

    Args:
        tflite_path: the int8 `.tflite` file.
        folder: the folder to create.
        name: the model name (in comments).
        arena_bytes: TFLite Micro's recorded arena (see `micro_report`).
        input_details: optional {"scale", "zero_point", "shape"} to document the input.

    Returns:
        A dict: the file names, the resolver line, the op methods and the arena size written.
    """
    data = Path(tflite_path).read_bytes()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ops = list(dict.fromkeys(model_ops(data)))
    methods = resolver_methods(ops)
    arena = int(-(-int(arena_bytes * ARENA_MARGIN) // 1024) * 1024) if arena_bytes else None
    (folder / "model_data.h").write_text(
        f"// {name}: int8 TFLite model for TensorFlow Lite Micro (written by ai8x-nb).\n"
        "#pragma once\n\n"
        "extern const unsigned char g_model_data[];\n"
        "extern const unsigned int g_model_data_len;\n")
    (folder / "model_data.cc").write_text(
        '#include "model_data.h"\n\n'
        f"// {len(data)} bytes; TFLite Micro reads the flatbuffer in place: keep it aligned.\n"
        f"alignas(16) const unsigned char g_model_data[] = {{\n{_c_array(data)}\n}};\n"
        f"const unsigned int g_model_data_len = {len(data)};\n")
    io = ""
    if input_details:
        io = (f"// Input {list(input_details['shape'])} int8, scale {input_details['scale']:.8g}, "
              f"zero point {input_details['zero_point']}.\n")
    resolver = f"tflite::MicroMutableOpResolver<{len(methods)}>"
    adds = "\n".join(f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;" for m in methods)
    arena_line = (f"constexpr int kTensorArenaSize = {arena};  // TFLite Micro allocated "
                  f"{arena_bytes} bytes; +10 % for ESP-NN scratch buffers\n" if arena else "")
    (folder / "model_ops.h").write_text(
        f"// {name}: the ops of the int8 model, for TensorFlow Lite Micro (written by ai8x-nb).\n"
        "#pragma once\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        + io + arena_line +
        f"constexpr int kModelOpCount = {len(methods)};\n"
        f"using ModelOpResolver = {resolver};\n\n"
        "// Registers exactly the ops the model uses: " + ", ".join(ops) + ".\n"
        "inline TfLiteStatus AddModelOps(ModelOpResolver& resolver) {\n"
        f"{adds}\n  return kTfLiteOk;\n}}\n")
    return {"files": ["model_data.h", "model_data.cc", "model_ops.h"],
            "op_resolver": f"{resolver} resolver;", "resolver_methods": methods,
            "tensor_arena_size": arena}
