"""export_model / export_run: synthesis package, float ONNX, SavedModel, TFLite, manifest."""

import json
import os

import keras
import numpy as np
import pytest

from ai8x_nb import layers
from ai8x_nb.errors import ExportError
from ai8x_nb.export import MANIFEST_NAME, TARGETS, Manifest, export_model, export_run
from ai8x_nb.export import samples as samples_module
from ai8x_nb.export.synthesis_onnx import chw_columns
from ai8x_nb.models import get_model, model_names
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate

from export_fixtures import data_dir, random_dataset, set_deterministic_weights

SAMPLE_SHAPES = {"mnist": (1, 28, 28), "fashionmnist": (1, 28, 28), "cifar10": (3, 32, 32),
                 "cifar100": (3, 32, 32), "kws20": (128, 128), "rock": (3, 64, 64)}
DATA_SHAPES = {"mnist": (28, 28, 1), "fashionmnist": (28, 28, 1), "cifar10": (32, 32, 3),
               "cifar100": (32, 32, 3), "kws20": (128, 128), "rock": (64, 64, 3)}


def leftovers(parent):
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize("name", model_names())
def test_seed_models_export_synthesis_package(tmp_path, name):
    model = set_deterministic_weights(get_model(name), seed=2)
    info_classes = int(model.outputs[0].shape[-1])
    ds = random_dataset(name, DATA_SHAPES[name], info_classes, n_test=6)
    manifest = export_model(model, tmp_path / name, dataset=ds, targets=("synthesis",),
                            sample_index=3)
    folder = tmp_path / name
    assert not manifest.skipped and leftovers(tmp_path) == []
    for role in ("synthesis_onnx", "synthesis_yaml", "sample_input", "sample_output",
                 "ai8xize_command"):
        assert (folder / manifest.artifacts[role]).is_file(), role
    x = np.load(folder / "sampledata.npy", allow_pickle=False)
    assert x.dtype == np.int64 and x.shape == SAMPLE_SHAPES[name]
    assert -128 <= x.min() and x.max() <= 127
    # The sample is test sample 3, channel-first.
    raw = ds.test.x[3].reshape(DATA_SHAPES[name])
    assert np.array_equal(x, np.moveaxis(raw, -1, 0))
    y = np.load(folder / "sampleoutput.npy", allow_pickle=False)
    want = simulate(convert(model), ds.test.x[3:4].reshape((1,) + tuple(model.inputs[0].shape[1:])))
    assert y.dtype == np.int64 and np.array_equal(y, want[0])
    assert manifest.sample["label"] == int(ds.test.y[3])
    command = (folder / "ai8xize_command.txt").read_text().strip()
    assert command == manifest.ai8xize_command
    assert f"--checkpoint-file {name}.onnx --config-file {name}.yaml" in command
    assert "--sample-input sampledata.npy --device MAX78000 --softmax" in command
    assert "integer_simulation" in manifest.accuracy and "keras_float" in manifest.accuracy


def test_synthesis_onnx_reads_back(tmp_path):
    import onnx
    from onnx import numpy_helper

    model = set_deterministic_weights(get_model("fashionmnist"), seed=4)
    export_model(model, tmp_path / "f", targets=("synthesis",), name="fm")
    proto = onnx.load(str(tmp_path / "f" / "fm.onnx"))
    onnx.checker.check_model(proto)
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Conv", "MaxPool", "Conv", "MaxPool", "Conv", "AveragePool", "Conv",
                   "Flatten", "Gemm"]
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    qmodel = convert(model)
    weighted = [n for n in proto.graph.node if n.op_type in ("Conv", "Gemm")]
    shapes = [(60, 1, 3, 3), (60, 60, 3, 3), (56, 60, 3, 3), (12, 56, 3, 3), (10, 192)]
    for node, ql, shape in zip(weighted, qmodel.layers, shapes):
        w = inits[node.input[1]]
        assert w.shape == shape
        assert np.array_equal(w, np.round(w)) and -128 <= w.min() and w.max() <= 127
        b = inits[node.input[2]]
        assert np.array_equal(b, ql.bias * 128)  # the loader divides by 128
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            assert list(attrs["kernel_shape"]) == [3, 3]
            assert np.array_equal(w, np.transpose(ql.weights, (3, 2, 0, 1)))
        else:
            assert attrs["transB"] == 1


def test_gemm_columns_are_in_device_chw_order(tmp_path):
    import onnx
    from onnx import numpy_helper

    inp = keras.Input((4, 3, 5))
    conv = layers.Conv2D(6, 3, padding=1, activation="relu", name="conv")(inp)
    out = layers.Dense(7, wide=True, name="fc")(keras.layers.Flatten()(conv))
    model = set_deterministic_weights(keras.Model(inp, out, name="chw"), seed=5)
    export_model(model, tmp_path / "c", targets=("synthesis",))
    proto = onnx.load(str(tmp_path / "c" / "chw.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    w, b = inits["fc.weight"].astype(np.int64), inits["fc.bias"].astype(np.int64)
    x = np.random.default_rng(0).integers(-128, 128, size=(3, 4, 3, 5))
    act = simulate(convert(keras.Model(inp, conv)), x)          # (N, 4, 3, 6) channels last
    full = simulate(convert(model), x)                           # wide: raw accumulators
    chw = np.moveaxis(act, -1, 1).reshape(len(x), -1)            # device flatten order
    assert np.array_equal(chw @ w.T + b, full)
    hwc = act.reshape(len(x), -1)
    assert not np.array_equal(hwc @ w.T + b, full)               # the difference is visible
    # chw_columns is a permutation of the rows.
    k = np.arange(4 * 3 * 6 * 2).reshape(4 * 3 * 6, 2)
    assert sorted(chw_columns(k, (4, 3, 6))[:, 0]) == list(k[:, 0])


def test_conv1d_and_conv_transpose_layouts(tmp_path):
    import onnx
    from onnx import numpy_helper

    inp = keras.Input((16, 8))
    x = layers.Conv1D(4, 3, padding=1, activation="relu", name="c1")(inp)
    x = keras.layers.Reshape((4, 4, 4))(x)
    x = layers.ConvTranspose2D(5, 3, padding=1, name="ct")(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="up"), seed=6)
    export_model(model, tmp_path / "u", targets=("synthesis",))
    proto = onnx.load(str(tmp_path / "u" / "up.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    qmodel = convert(model)
    assert np.array_equal(inits["c1.weight"], np.transpose(qmodel.layers[0].weights, (2, 1, 0)))
    assert inits["c1.weight"].shape == (4, 8, 3)
    # ConvTranspose: the standard ONNX/PyTorch (in, out, kh, kw) weight.
    assert inits["ct.weight"].shape == (4, 5, 3, 3)
    assert np.array_equal(inits["ct.weight"],
                          np.transpose(qmodel.layers[1].weights, (2, 3, 0, 1)))
    kinds = {n.name: n for n in proto.graph.node}
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in kinds["c1"].attribute}
    assert list(attrs["kernel_shape"]) == [3]  # the loader reads a 1D kernel as k x 1
    assert kinds["ct"].op_type == "ConvTranspose" and kinds["ct.reshape"].op_type == "Reshape"
    y = np.load(tmp_path / "u" / "sampleoutput.npy")
    assert y.shape == (5, 8, 8)  # channel-first spatial output


def test_full_export_with_tflite_and_manifest(tmp_path):
    import onnxruntime
    import tensorflow as tf

    model = set_deterministic_weights(get_model("mnist"), seed=7, scale=0.2)
    ds = random_dataset("mnist", (28, 28, 1), 10, n_train=30, n_test=40)
    manifest = export_model(model, tmp_path / "mnist", dataset=ds, representative_samples=20)
    folder = tmp_path / "mnist"
    assert set(manifest.artifacts) == {"savedmodel", "onnx", "synthesis_onnx", "synthesis_yaml",
                                       "sample_input", "sample_output", "tflite", "tflite_int8",
                                       "ai8xize_command"}
    for rel in manifest.artifacts.values():
        assert (folder / rel).exists() and not os.path.isabs(rel)
    assert (folder / "saved_model" / "saved_model.pb").is_file()
    assert (folder / "saved_model" / "variables").is_dir()
    stored = json.loads((folder / MANIFEST_NAME).read_text())
    assert stored["device"] == "MAX78000" and stored["dataset"] == "mnist"
    assert stored["artifacts"] == manifest.artifacts and stored["check"]["ok"] is True
    assert set(stored["accuracy"]) == {"keras_float", "integer_simulation", "tflite_float",
                                       "tflite_int8"}
    assert stored["started"] and stored["finished"] and stored["evaluated_samples"] == 40
    assert Manifest.load(folder).artifacts == manifest.artifacts
    # Float ONNX vs Keras, independently of the exporter's own check.
    session = onnxruntime.InferenceSession(str(folder / "saved_model.onnx"))
    x = ds.test.x[:8].reshape(8, 28, 28).astype(np.float32) / 128
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.max(np.abs(got - np.asarray(model(x)))) <= 1e-5
    # Full-int8 TFLite: int8 in/out, builtin ops only, runs in the interpreter.
    interp = tf.lite.Interpreter(model_path=str(folder / "model_int8.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert ops and not any(o.startswith("Flex") or o == "CUSTOM" for o in ops), ops
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.int8))
    interp.invoke()
    assert interp.get_tensor(out["index"]).shape == (1, 10)
    assert 0.0 <= stored["accuracy"]["tflite_int8"] <= 1.0


def test_failure_leaves_no_folder_and_keeps_the_old_export(tmp_path, monkeypatch):
    model = set_deterministic_weights(get_model("mnist"), seed=8)
    final = tmp_path / "mnist"
    export_model(model, final, targets=("synthesis",))
    before = (final / "mnist.onnx").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(samples_module, "save_npy", broken)
    set_deterministic_weights(model, seed=9)
    with pytest.raises(OSError, match="disk full"):
        export_model(model, final, targets=("synthesis",))
    assert (final / "mnist.onnx").read_bytes() == before  # old export untouched
    assert leftovers(tmp_path) == []
    with pytest.raises(OSError):
        export_model(model, tmp_path / "fresh", targets=("synthesis",))
    assert not (tmp_path / "fresh").exists() and leftovers(tmp_path) == []
    monkeypatch.undo()
    export_model(model, final, targets=("synthesis",))  # a success replaces the old one
    assert (final / "mnist.onnx").read_bytes() != before and leftovers(tmp_path) == []


def test_unknown_target_lists_valid_ones(tmp_path):
    with pytest.raises(ExportError, match="valid targets are savedmodel, onnx, synthesis"):
        export_model(get_model("mnist"), tmp_path / "x", targets=("synthesis", "tflite8"))
    assert not (tmp_path / "x").exists()
    assert TARGETS == ("savedmodel", "onnx", "synthesis", "tflite", "tflite_int8")


def test_model_failing_the_check_skips_synthesis_only(tmp_path):
    inp = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding=1, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3)(x)  # a plain Keras layer: the device cannot run it
    model = keras.Model(inp, x, name="bad")
    manifest = export_model(model, tmp_path / "bad",
                            targets=("savedmodel", "onnx", "synthesis", "tflite"))
    assert "synthesis" in manifest.skipped
    assert "cannot run" in manifest.skipped["synthesis"] and "Dense" in manifest.skipped["synthesis"]
    assert manifest.check["ok"] is False and manifest.check["errors"]
    assert set(manifest.artifacts) == {"savedmodel", "onnx", "tflite"}
    assert not (tmp_path / "bad" / "bad.yaml").exists()
    stored = json.loads((tmp_path / "bad" / MANIFEST_NAME).read_text())
    assert stored["skipped"]["synthesis"] == manifest.skipped["synthesis"]


def test_cli_exports_a_hand_made_run_dir(tmp_path, capsys):
    from ai8x_nb.cli import main

    run = tmp_path / "logs" / "20250101-120000-mnist"
    run.mkdir(parents=True)
    model = set_deterministic_weights(get_model("mnist"), seed=10, scale=0.2)
    model.save(run / "best.keras")
    config = {"dataset": "mnist", "model": "mnist", "device": "MAX78000",
              "dataset_kwargs": {"data_dir": str(data_dir()), "limit": 50, "download": False}}
    (run / "config.json").write_text(json.dumps(config))
    out = tmp_path / "export" / "mnist-run"
    code = main(["export", str(run), "--out", str(out), "--targets", "synthesis", "onnx",
                 "--sample-index", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "synthesis_yaml" in printed
    manifest = Manifest.load(out)
    assert manifest.dataset == "mnist" and manifest.sample["index"] == 2
    assert set(manifest.artifacts) >= {"onnx", "synthesis_onnx", "synthesis_yaml"}
    assert "integer_simulation" in manifest.accuracy
    # export_run's default folder is export/<run folder name>.
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        m2 = export_run(run, targets=("synthesis",))
    finally:
        os.chdir(cwd)
    assert (tmp_path / "export" / run.name / MANIFEST_NAME).is_file()
    assert m2.name == "mnist"
    assert main(["export", str(run), "--targets", "nope"]) == 2


@pytest.mark.parametrize("case", ["conv2d_maxpool", "conv1d_maxpool", "convtranspose", "dense_flat"])
def test_synthesis_onnx_runs_the_device_accumulator(tmp_path, case):
    """The loader runs the file in onnxruntime; for a wide (raw accumulator) layer its output
    equals the integer simulator's exactly, which pins layouts, pads, pools and bias x 128."""
    import onnxruntime

    rng = np.random.default_rng(11)
    if case == "conv2d_maxpool":
        inp = keras.Input((6, 5, 3))
        out = layers.Conv2D(4, 3, padding=2, pooling="max", pool_size=(2, 1), wide=True)(inp)
    elif case == "conv1d_maxpool":
        inp = keras.Input((12, 5))
        out = layers.Conv1D(4, 5, padding=2, pooling="max", pool_size=2, wide=True)(inp)
    elif case == "convtranspose":
        inp = keras.Input((3, 4, 2))
        out = layers.ConvTranspose2D(3, 3, padding=0, wide=True)(inp)
    else:
        inp = keras.Input((3, 2, 4))
        out = layers.Dense(5, wide=True)(keras.layers.Flatten()(inp))
    model = set_deterministic_weights(keras.Model(inp, out, name="acc"), seed=12)
    export_model(model, tmp_path / "a", targets=("synthesis",))
    x = rng.integers(-128, 128, size=(4,) + tuple(inp.shape[1:]))
    expected = simulate(convert(model), x)
    session = onnxruntime.InferenceSession(str(tmp_path / "a" / "acc.onnx"))
    x_cf = np.moveaxis(x, -1, 1).astype(np.float32)
    got = session.run(None, {"input": x_cf})[0]
    if expected.ndim > 2:
        expected = np.moveaxis(expected, -1, 1)
    assert got.shape == expected.shape
    assert np.array_equal(got.astype(np.int64), expected)


def test_seed_synthesis_onnx_runs_in_onnxruntime(tmp_path):
    import onnxruntime

    for name in ("mnist", "kws20", "cifar100"):
        model = set_deterministic_weights(get_model(name), seed=3)
        export_model(model, tmp_path / name, targets=("synthesis",), name=name)
        session = onnxruntime.InferenceSession(str(tmp_path / name / f"{name}.onnx"))
        meta = session.get_inputs()[0]
        shape = [1] + list(meta.shape[1:])
        out = session.run(None, {meta.name: np.zeros(shape, np.float32)})[0]
        assert out.shape[1] == {"mnist": 10, "kws20": 21, "cifar100": 100}[name]
