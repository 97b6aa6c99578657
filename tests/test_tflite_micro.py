"""The int8 TFLite export judged by TensorFlow Lite for Microcontrollers (PyPI `tflite-micro`).

Every exported int8 model (the seed models, the residual model, generated models) must load
in TFLite Micro's own interpreter, hold only int8 builtin kernels (no float islands, no
dynamic-shape ops), and compute what LiteRT's reference kernels compute, tensor by tensor.
The one place the two runtimes differ is FULLY_CONNECTED's requantization: TFLite Micro rounds
twice (gemmlowp's rounding doubling high multiply, then a rounding right shift), LiteRT's
reference kernel once; each is checked against an independent NumPy model of its rounding.
"""

import math
import os
import subprocess

import keras
import numpy as np
import pytest

from ai8x_nb import layers
from ai8x_nb.export import export_model
from ai8x_nb.export import tflite_micro as micro
from ai8x_nb.export.portable import effective_weights, portable_model
from ai8x_nb.models import get_model, model_names
from ai8x_nb.quantize import convert, enable_qat

from support import random_dataset, registry_device, set_deterministic_weights

pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="the TFLite targets are checked under TensorFlow"),
    pytest.mark.skipif(not micro.micro_available(),
                       reason="TFLite Micro's interpreter is not installed (pip install "
                              "tflite-micro; it is in the dev extras)"),
]

MICRO_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D",
             "AVERAGE_POOL_2D", "ADD", "RESHAPE", "PAD", "TRANSPOSE_CONV", "STRIDED_SLICE",
             "ABS", "RELU", "SUB", "CONCATENATION", "MINIMUM", "MAXIMUM"}
"""Builtin int8 kernels of TFLite Micro the portable form may use."""
SAMPLES = 12
GENERATED_MAX_INPUT = 32 * 32 * 32


# ------------------------------------------------------------------ rounding models (NumPy)
def _multiplier(real):
    """TFLite's QuantizeMultiplier: a Q31 multiplier and a power-of-two exponent."""
    mantissa, exponent = math.frexp(real)
    q = int(round(mantissa * (1 << 31)))
    if q == 1 << 31:
        q, exponent = q // 2, exponent + 1
    return q, exponent


def _requantize_twice(acc, q, exponent):
    """TFLite Micro: rounding doubling high multiply, then a rounding right shift."""
    out = []
    for a in acc:
        a = int(a) << max(exponent, 0)
        product = a * q
        nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
        high = int((product + nudge) / (1 << 31))  # truncates toward zero, as C does
        shift = -min(exponent, 0)
        mask = (1 << shift) - 1
        threshold = (mask >> 1) + (1 if high < 0 else 0)
        out.append((high >> shift) + (1 if (high & mask) > threshold else 0))
    return np.array(out, dtype=np.int64)


def _requantize_once(acc, q, exponent):
    """LiteRT's reference FULLY_CONNECTED: one rounding of acc * q / 2^(31 - exponent)."""
    total = 31 - exponent
    return np.array([(int(a) * q + (1 << (total - 1))) >> total for a in acc], dtype=np.int64)


def _fully_connected(x, w, b, details, rounding):
    """int8 FULLY_CONNECTED of one sample with per-tensor or per-channel weight scales."""
    (sx, zx), (so, zo) = details["input"], details["output"]
    scales = np.atleast_1d(details["weight_scales"])
    acc = w.astype(np.int64) @ (x.reshape(-1).astype(np.int64) - zx)
    if b is not None:
        acc = acc + b.astype(np.int64)
    out = np.empty(len(acc), dtype=np.int64)
    for c in range(len(acc)):
        real = float(np.float64(sx) * np.float64(scales[min(c, len(scales) - 1)])
                     / np.float64(so))
        out[c] = rounding(acc[c:c + 1], *_multiplier(real))[0]
    return np.clip(out + zo, -128, 127)


# ------------------------------------------------------------------ runtimes, tensor by tensor
def _runtimes(data):
    import tensorflow as tf
    from tflite_micro.python.tflite_micro import runtime

    lite = tf.lite.Interpreter(
        model_content=data, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    lite.allocate_tensors()
    tflm = runtime.Interpreter.from_bytes(
        data, arena_size=micro.ARENA_LIMIT,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    return lite, tflm


def _tflm_tensor(tflm, index, shape):
    return np.asarray(tflm.GetTensor(index, 0)["tensor_data"]).reshape(shape)


def assert_runtimes_agree(data, x_int8):
    """TFLite Micro == LiteRT (reference kernels) on every op output; FULLY_CONNECTED per
    its own rounding model. Returns (samples, fully connected outputs that differ)."""
    lite, tflm = _runtimes(data)
    inp = lite.get_input_details()[0]
    details = {d["index"]: d for d in lite.get_tensor_details()}
    ops = lite._get_ops_details()
    fc_differ = 0
    for sample in x_int8:
        lite.set_tensor(inp["index"], sample[None])
        lite.invoke()
        tflm.set_input(sample[None], 0)
        tflm.invoke()
        diverged = False  # after a FULLY_CONNECTED that differs, later tensors may differ too
        for op in ops:
            index = op["outputs"][0]
            want = lite.get_tensor(index)
            got = _tflm_tensor(tflm, index, want.shape)
            if op["op_name"] == "FULLY_CONNECTED":
                xi, wi, bi = (list(op["inputs"]) + [-1])[:3]
                x_tflm = _tflm_tensor(tflm, xi, lite.get_tensor(xi).shape)
                q = {"input": details[xi]["quantization"],
                     "output": details[index]["quantization"],
                     "weight_scales": details[wi]["quantization_parameters"]["scales"]}
                w = lite.get_tensor(wi)
                b = lite.get_tensor(bi) if bi >= 0 else None
                assert np.array_equal(got.reshape(-1), _fully_connected(
                    x_tflm, w, b, q, _requantize_twice)), "TFLite Micro's FULLY_CONNECTED"
                if not diverged:
                    assert np.array_equal(want.reshape(-1), _fully_connected(
                        lite.get_tensor(xi), w, b, q, _requantize_once)), "LiteRT's"
                if not np.array_equal(got, want):
                    fc_differ += 1
                    diverged = True
            elif not diverged:
                assert np.array_equal(got, want), f"{op['op_name']} output {index} differs"
    return len(x_int8), fc_differ


def _int8_export(model, tmp_path, name, input_shape, classes, n=SAMPLES):
    ds = random_dataset(name, input_shape, classes, n_train=24, n_test=n)
    manifest = export_model(model, tmp_path / name, dataset=ds,
                            targets=("tflite", "tflite_int8"), representative_samples=24)
    return manifest, ds


def _check_clean(manifest, folder):
    report = manifest.details["tflite_micro"]
    assert report["loads"], report["error"]
    assert set(report["ops"]) <= MICRO_OPS, report["ops"]
    assert report["float_tensors"] == []
    assert report["arena_bytes"] > 0 and report["model_bytes"] == \
        (folder / "model_int8.tflite").stat().st_size
    assert manifest.artifacts["esp32s3"] == "esp32s3"
    io = manifest.details["tflite_int8_io"]["input"]
    assert (io["scale"], io["zero_point"]) == (1 / 128, 0)  # the device's data format
    # The float model is portable too: TFLite Micro's float kernels load it.
    float_report = micro.micro_report(folder / "model_float.tflite")
    assert float_report["loads"], float_report["error"]
    return report


def _random_int8(shape, n, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, size=(n,) + tuple(shape)).astype(
        np.int8)


@pytest.mark.parametrize("name", sorted(set(model_names()) | {"ressimplenet"}))
def test_seed_models_run_in_tflite_micro_equal_to_litert(tmp_path, name):
    model = set_deterministic_weights(get_model(name, device=registry_device(name)), seed=3)
    enable_qat(model)
    shape = tuple(model.inputs[0].shape[1:])
    manifest, ds = _int8_export(model, tmp_path, name, shape, int(model.outputs[0].shape[-1]))
    folder = tmp_path / name
    _check_clean(manifest, folder)
    data = (folder / "model_int8.tflite").read_bytes()
    samples, fc_differ = assert_runtimes_agree(data, _random_int8(shape, SAMPLES))
    print(f"\n{name}: {samples} samples, TFLite Micro == LiteRT reference on every op; "
          f"FULLY_CONNECTED rounding differs in {fc_differ}")
    # The export's own comparison (LiteRT reference kernels vs TFLite Micro, test samples).
    report = manifest.details["tflite_micro"]
    assert report["checked_samples"] == SAMPLES
    assert report["max_abs_diff_litert"] <= 1
    if "FULLY_CONNECTED" not in report["ops"]:
        assert report["outputs_equal_litert"] == SAMPLES


def test_generated_models_run_in_tflite_micro(tmp_path, hardware_model_generator,
                                              residual_model_generator):
    # A sample of the parity generators' models (chains of every layer kind, residual), those
    # the device accepts and those it does not (TFLite has no such limits): the first four of
    # each generator whose input holds at most GENERATED_MAX_INPUT values (LiteRT's reference
    # kernels take half a minute on a 150x150x16 input).
    checked = {}
    for make, kind in ((hardware_model_generator, "chain"), (residual_model_generator,
                                                            "residual")):
        for seed in range(40):
            if sum(k == kind for k in checked.values()) == 4:
                break
            model = make(seed).model
            shape = tuple(model.inputs[0].shape[1:])
            if np.prod(shape) > GENERATED_MAX_INPUT:
                continue
            enable_qat(model)
            classes = int(np.prod(model.outputs[0].shape[1:]))
            ds = random_dataset(model.name, shape, classes, n_train=16, n_test=6)
            manifest = export_model(model, tmp_path / model.name, dataset=ds,
                                    targets=("tflite", "tflite_int8"),
                                    representative_samples=16)
            bitwise = [l.name for l in model.layers
                       if isinstance(l, layers.Eltwise) and l.op in ("xor", "or")]
            if bitwise:  # no int8 bitwise kernel in TFLite Micro: skipped, naming the layer
                assert f"Layer '{bitwise[0]}'" in manifest.skipped["tflite_int8"]
                continue
            _check_clean(manifest, tmp_path / model.name)
            data = (tmp_path / model.name / "model_int8.tflite").read_bytes()
            assert_runtimes_agree(data, _random_int8(shape, 4, seed))
            checked[model.name] = kind
    assert len(checked) == 8, checked


def test_portable_weights_are_the_integer_weights(tmp_path):
    # After QAT, the portable form computes with W_int / 2^(bits-1) * 2^shift: the integers
    # the synthesis checkpoint holds (quantize.convert), for every bit width.
    inp = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, padding=1, activation="relu", weight_bits=4)(inp)
    x = layers.Conv2D(6, 3, padding=2, pooling="avg", pool_size=2, weight_bits=2,
                      activation="abs")(x)
    x = keras.layers.Flatten()(x)
    x = layers.Dense(5, wide=True)(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="bits"), seed=4)
    enable_qat(model)
    qmodel = convert(model)
    by_name = {ql.name: ql for ql in qmodel.layers if ql.weights is not None}
    for layer in model.layers:
        if not isinstance(layer, layers.HardwareLayer):
            continue
        ql = by_name[layer.name]
        kernel, bias = effective_weights(layer)
        unit = 2.0 ** -(ql.weight_bits - 1) * (1.0 if layer.wide else 2.0 ** ql.output_shift)
        assert np.array_equal(kernel, (ql.weights * unit).astype(np.float32)), layer.name
        if ql.bias is not None:
            assert np.array_equal(bias, (ql.bias * unit).astype(np.float32)), layer.name


def test_portable_form_computes_the_float_network():
    # The float model and its portable form compute the same function, the device's output
    # clamps included (they bind here): padding 0/1/2, pooling, Conv1D, transposed
    # convolution, Add, Sub, Abs, a plain Keras layer, Dropout, a dilated Conv1D.
    inp = keras.Input((10, 10, 4))
    a = layers.Conv2D(6, 3, padding=2, pooling="max", pool_size=2, activation="relu")(inp)
    b = layers.Conv2D(6, 1, padding=0, activation="abs")(a)
    c = layers.Conv2D(6, 1, padding=0, activation="relu")(a)
    x = layers.Sub()([layers.Add()([a, b]), c, b])
    x = layers.ConvTranspose2D(4, 3, padding=1, activation="relu")(x)
    x = layers.ConvTranspose2D(3, 3, padding=0)(x)
    x = keras.layers.Dropout(0.3)(x)
    x = layers.Conv2D(5, 3, padding=1, pooling="avg", pool_size=3, pool_strides=3)(x)
    x = keras.layers.Reshape((-1, 5))(x)
    x = layers.Conv1D(4, 3, padding=1, activation="relu")(x)
    x = layers.Conv1D(4, 2, padding=1, dilation=3)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3)(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="mix"), seed=5, scale=0.5)
    _assert_portable_equal(model, (10, 10, 4))


def test_portable_form_of_the_max78002_layers():
    # A depthwise convolution (DEPTHWISE_CONV_2D) and dilated pooling (strided slices).
    inp = keras.Input((10, 10, 4))
    x = layers.Conv2D(4, 3, padding=1, groups=4, activation="relu", device="MAX78002")(inp)
    x = layers.Conv2D(4, 3, padding=2, groups=4, pooling="avg", pool_size=2, pool_strides=1,
                      pool_dilation=3, device="MAX78002")(x)
    x = layers.MaxPool2D(2, 2, pool_dilation=(2, 1), device="MAX78002")(x)
    x = layers.Conv2D(3, 1, padding=0, device="MAX78002")(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="m2"), seed=6, scale=0.5)
    _assert_portable_equal(model, (10, 10, 4), clamps=False)


def _assert_portable_equal(model, shape, clamps=True):
    plain = portable_model(model)
    assert not any(isinstance(l, layers.HardwareLayer) for l in plain.layers)
    x = _random_int8(shape, 6).astype(np.float32) / 128
    want = np.asarray(model(x))
    assert np.abs(want).max() > 1e-3
    assert np.allclose(np.asarray(plain(x)), want, atol=1e-5)
    if not clamps:
        return
    outputs = keras.Model(model.inputs, [l.output for l in model.layers[1:]])(x)
    bound = [l.name for l, y in zip(model.layers[1:], outputs)
             if np.max(np.asarray(y)) == np.float32(127 / 128)]
    assert bound, "no clamp binds: the test would not see a missing clamp"


def test_firmware_files_compile_and_hold_the_model(tmp_path):
    model = set_deterministic_weights(get_model("mnist"), seed=1)
    manifest, _ = _int8_export(model, tmp_path, "mnist", (28, 28, 1), 10, n=4)
    folder = tmp_path / "mnist" / "esp32s3"
    report = manifest.details["tflite_micro"]
    ops_h = (folder / "model_ops.h").read_text()
    assert report["op_resolver"] == "tflite::MicroMutableOpResolver<7> resolver;"
    assert "kModelOpCount = 7;" in ops_h and "resolver.AddFullyConnected()" in ops_h
    for method in ("AddConv2D", "AddMaxPool2D", "AddAveragePool2D", "AddPad", "AddReshape",
                   "AddMinimum"):
        assert f"resolver.{method}()" in ops_h
    assert f"kTensorArenaSize = {report['tensor_arena_size']};" in ops_h
    assert report["tensor_arena_size"] >= report["arena_bytes"] * 1.1
    data = (tmp_path / "mnist" / "model_int8.tflite").read_bytes()
    # The C array, compiled and read back, is the model, byte for byte.
    main = tmp_path / "main.cc"
    main.write_text('#include <cstdio>\n#include "model_data.h"\nint main() {\n'
                    '  fwrite(g_model_data, 1, g_model_data_len, stdout);\n'
                    '  return reinterpret_cast<unsigned long>(g_model_data) % 16;\n}\n')
    exe = tmp_path / "dump"
    subprocess.run(["g++", "-Wall", "-Werror", "-I", str(folder), str(main),
                    str(folder / "model_data.cc"), "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)], capture_output=True, check=True).stdout == data


def test_layer_without_portable_form_skips_tflite_with_the_reason(tmp_path):
    class Custom(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding=1, activation="relu")(inp)
    x = Custom(name="doubler")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, layers.Dense(3, wide=True)(x), name="custom")
    ds = random_dataset("custom", (8, 8, 2), 3, n_train=8, n_test=4)
    manifest = export_model(model, tmp_path / "c", dataset=ds,
                            targets=("savedmodel", "tflite", "tflite_int8"))
    assert set(manifest.skipped) == {"tflite", "tflite_int8"}
    assert "Layer 'doubler' (Custom" in manifest.skipped["tflite_int8"]
    assert "savedmodel" in manifest.artifacts and "tflite" not in manifest.artifacts
    assert not (tmp_path / "c" / "portable_saved_model").exists()


def test_bitwise_layers_skip_tflite_naming_the_layer(tmp_path):
    inp = keras.Input((6, 6, 4))
    a = layers.Conv2D(4, 3, padding=1, activation="relu")(inp)
    b = layers.Conv2D(4, 3, padding=1, activation="relu")(a)
    x = layers.Xor(name="mix")([a, b])
    x = keras.layers.Flatten()(x)
    model = set_deterministic_weights(keras.Model(inp, layers.Dense(3, wide=True)(x)), seed=2)
    ds = random_dataset("x", (6, 6, 4), 3, n_train=8, n_test=4)
    manifest = export_model(model, tmp_path / "x", dataset=ds,
                            targets=("synthesis", "tflite", "tflite_int8"))
    assert "Layer 'mix' (Xor, op 'xor')" in manifest.skipped["tflite"]
    assert "no int8 bitwise kernel" in manifest.skipped["tflite_int8"]
    assert "synthesis_yaml" in manifest.artifacts


def test_micro_report_says_why_a_model_does_not_load(tmp_path):
    # A graph with an op TFLite Micro has no kernel for (what the device-emulating export
    # used to be): the report names the op, the export would skip the ESP32-S3 files.
    import tensorflow as tf

    class Sign(keras.layers.Layer):
        def call(self, x):
            return keras.ops.sign(x)

    inp = keras.Input((4,), batch_size=1)
    model = keras.Model(inp, Sign()(keras.layers.Dense(3)(inp)))
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    data = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert()
    (tmp_path / "s.tflite").write_bytes(data)
    report = micro.micro_report(tmp_path / "s.tflite")
    assert report["loads"] is False and "SIGN" in report["ops"]
    assert "SIGN" in report["error"] or "allocate" in report["error"]
    assert os.path.getsize(tmp_path / "s.tflite") == report["model_bytes"]


def test_cli_export_shows_both_targets_side_by_side(tmp_path, capsys, shared_data):
    import json

    from ai8x_nb.cli import main
    from ai8x_nb.export import Manifest
    from ai8x_nb.export.targets import targets_rows

    run = tmp_path / "logs" / "20250101-120000-mnist"
    run.mkdir(parents=True)
    model = set_deterministic_weights(get_model("mnist"), seed=10, scale=0.2)
    enable_qat(model)
    model.save(run / "best.keras")
    (run / "config.json").write_text(json.dumps({
        "dataset": "mnist", "model": "mnist", "device": "MAX78000",
        "dataset_kwargs": {"data_dir": str(shared_data), "limit": 40, "download": False}}))
    out = tmp_path / "export"
    assert main(["export", str(run), "--out", str(out), "--targets", "synthesis",
                 "tflite_int8"]) == 0
    printed = capsys.readouterr().out
    manifest = Manifest.load(out)
    micro_report = manifest.details["tflite_micro"]
    integer = 100 * manifest.accuracy["integer_simulation"]
    int8 = 100 * manifest.accuracy["tflite_int8"]
    assert f"MAX78000: accuracy {integer:.2f} % (integer simulation (bit-exact))" in printed
    assert f"ESP32-S3 (int8 TFLite): accuracy {int8:.2f} %" in printed
    assert f"model {micro_report['model_bytes']:,} B" in printed
    assert f"arena {micro_report['arena_bytes']:,} B" in printed
    rows = targets_rows(manifest)
    assert [r["target"] for r in rows] == ["MAX78000", "ESP32-S3 (int8 TFLite)"]
    assert rows[0]["status"] == "not synthesized yet"
