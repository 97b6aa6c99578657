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
from ai8x_nb.export.savedmodel import backend_limits
from ai8x_nb.models import get_model, model_names
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate

from support import random_dataset, registry_device, set_deterministic_weights

SAMPLE_SHAPES = {"mnist": (1, 28, 28), "fashionmnist": (1, 28, 28), "cifar10": (3, 32, 32),
                 "cifar100": (3, 32, 32), "kws20": (128, 128), "rock": (3, 64, 64),
                 "ressimplenet": (3, 32, 32), "kws20_dilated": (128, 128),
                 "mobilenetv2_cifar10": (3, 32, 32)}
DATA_SHAPES = {"mnist": (28, 28, 1), "fashionmnist": (28, 28, 1), "cifar10": (32, 32, 3),
               "cifar100": (32, 32, 3), "kws20": (128, 128), "rock": (64, 64, 3),
               "ressimplenet": (32, 32, 3), "kws20_dilated": (128, 128),
               "mobilenetv2_cifar10": (32, 32, 3)}


BACKEND = keras.backend.backend()
REFUSED = {"tensorflow": set(), "jax": {"onnx"}}
"""Targets each Keras backend refuses for the seed MNIST model (the float ONNX under JAX)."""
NEEDS_TF = pytest.mark.skipif(
    BACKEND != "tensorflow", reason=f"the seed MNIST's float ONNX needs the "
    f"TensorFlow backend (running {BACKEND}); test_backend_refuses_before_any_work covers it")


def leftovers(parent):
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize("name", model_names())
def test_seed_models_export_synthesis_package(tmp_path, name):
    model = set_deterministic_weights(get_model(name, device=registry_device(name)), seed=2)
    info_classes = int(model.outputs[0].shape[-1])
    ds = random_dataset(name, DATA_SHAPES[name], info_classes, n_test=6)
    manifest = export_model(model, tmp_path / name, dataset=ds, targets=("synthesis",),
                            sample_index=3)
    folder = tmp_path / name
    assert not manifest.skipped and leftovers(tmp_path) == []
    for role in ("synthesis_weights", "synthesis_yaml", "sample_input", "sample_output",
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
    # Every seed model ends in a 1x1 map or a Dense layer: the device order is the flat order.
    assert y.dtype == np.int64 and np.array_equal(y.reshape(-1), want[0].reshape(-1))
    conv_head = {"cifar100": 100, "ressimplenet": 100, "mobilenetv2_cifar10": 10}  # conv + Flatten
    assert y.shape == ((conv_head[name], 1, 1) if name in conv_head else want[0].shape)
    assert manifest.sample["label"] == int(ds.test.y[3])
    command = (folder / "ai8xize_command.txt").read_text().strip()
    assert command == manifest.ai8xize_command
    folder_abs = folder.resolve()
    assert f"--checkpoint-file {folder_abs}/{name}-q.pth.tar" in command
    assert f"--config-file {folder_abs}/{name}.yaml" in command
    assert (f"--sample-input {folder_abs}/sampledata.npy --device {registry_device(name)}"
            in command)
    assert command.startswith('cd "${AI8X_SYNTHESIS_DIR')  # the tool runs from its folder
    assert "integer_simulation" in manifest.accuracy and "keras_float" in manifest.accuracy


class _Tensor:
    """Stand-in for torch._utils._rebuild_tensor_v2 when reading a checkpoint without torch."""

    def __init__(self, storage, offset, size, stride, requires_grad, hooks, *rest):
        dtype, data = storage
        flat = np.frombuffer(data, dtype=dtype)
        self.array = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride]).copy()


def read_checkpoint(path):
    """Read a torch-format checkpoint with the standard library and numpy only."""
    import pickle
    import zipfile

    zf = zipfile.ZipFile(path)
    names = zf.namelist()
    prefix = names[0].split("/")[0]
    assert all(n.startswith(prefix + "/") for n in names)
    assert zf.read(f"{prefix}/version") == b"3\n"
    for info in zf.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        if "/data/" in info.filename:  # tensor data is 64-byte aligned, as torch writes it
            start = info.header_offset + 30 + len(info.filename) + len(info.extra)
            assert start % 64 == 0
    dtypes = {"FloatStorage": np.float32, "LongStorage": np.int64}

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda *args: _Tensor(*args).array
            if module == "torch" and name in dtypes:
                return dtypes[name]
            if (module, name) == ("collections", "OrderedDict"):
                import collections
                return collections.OrderedDict
            raise AssertionError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            kind, dtype, key, location, numel = pid
            assert kind == "storage" and location == "cpu"
            return dtype, zf.read(f"{prefix}/data/{key}")

    import io
    return Reader(io.BytesIO(zf.read(f"{prefix}/data.pkl"))).load()


def test_synthesis_checkpoint_reads_back(tmp_path):
    model = set_deterministic_weights(get_model("fashionmnist"), seed=4)
    export_model(model, tmp_path / "f", targets=("synthesis",), name="fm", epoch=7)
    ckpt = read_checkpoint(tmp_path / "f" / "fm-q.pth.tar")
    assert ckpt["arch"] == "fm" and ckpt["epoch"] == 7
    sd = ckpt["state_dict"]
    qmodel = convert(model)
    names = [ql.name for ql in qmodel.layers]
    weights = [k for k in sd if k.endswith(".op.weight")]
    assert weights == [f"{n}.op.weight" for n in names]  # device order: the loader's order
    shapes = [(60, 1, 3, 3), (60, 60, 3, 3), (56, 60, 3, 3), (12, 56, 3, 3), (10, 192)]
    for key, ql, shape in zip(weights, qmodel.layers, shapes):
        layer = key[:-len(".op.weight")]
        w = sd[key]
        assert w.shape == shape and w.dtype == np.float32
        assert np.array_equal(w, np.round(w)) and -128 <= w.min() and w.max() <= 127
        assert np.array_equal(sd[f"{layer}.op.bias"], ql.bias * 128)  # bias_int * 2^(8-1)
        assert sd[f"{layer}.weight_bits"].tolist() == [8.0]
        assert sd[f"{layer}.output_shift"].tolist() == [float(ql.output_shift)]
        if w.ndim == 4:
            assert np.array_equal(w, np.transpose(ql.weights, (3, 2, 0, 1)))


def test_checkpoint_bias_scales_with_weight_bits(tmp_path):
    inp = keras.Input((6, 6, 3))
    x = layers.Conv2D(4, 3, padding=1, activation="relu", weight_bits=4, name="c4")(inp)
    x = layers.Conv2D(5, 1, padding=0, weight_bits=2, name="c2", wide=True)(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="bits"), seed=3)
    export_model(model, tmp_path / "b", targets=("synthesis",))
    sd = read_checkpoint(tmp_path / "b" / "bits-q.pth.tar")["state_dict"]
    qmodel = convert(model)
    for ql, bits in zip(qmodel.layers, (4, 2)):
        assert sd[f"{ql.name}.weight_bits"].tolist() == [float(bits)]
        # the loader divides the bias by 2^(bits-1)
        assert np.array_equal(sd[f"{ql.name}.op.bias"], ql.bias * 2 ** (bits - 1))
        w = sd[f"{ql.name}.op.weight"]
        assert w.min() >= -(2 ** (bits - 1)) and w.max() <= 2 ** (bits - 1) - 1


def test_checkpoint_rejects_unsupported_values(tmp_path):
    from ai8x_nb.export.torchfile import save_checkpoint

    with pytest.raises(TypeError, match="float32 or int64"):
        save_checkpoint({"w": np.zeros(3, np.int8)}, tmp_path / "x.pth.tar")
    with pytest.raises(TypeError, match="cannot write a set"):
        save_checkpoint({"w": {1, 2}}, tmp_path / "y.pth.tar")


def _conv_nchw(x, w, pad):
    """Independent reference: a Conv2d in PyTorch layout (x: C,H,W; w: out,in,kh,kw)."""
    c, h, wd = x.shape
    out, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((out, oh, ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("oc,chw->ohw", w[:, :, i, j], xp[:, i:i + oh, j:j + ow])
    return y


@pytest.mark.parametrize("case", ["conv2d", "conv1d", "dense_flat"])
def test_checkpoint_layout_computes_the_device_accumulator(tmp_path, case):
    """A wide layer keeps the raw accumulator: computed from the checkpoint's weights in
    PyTorch layout (channel-first data) it equals the simulator's, which pins the layouts,
    the pads and the bias scale."""
    rng = np.random.default_rng(11)
    if case == "conv2d":
        inp = keras.Input((6, 5, 3))
        out = layers.Conv2D(4, 3, padding=2, wide=True, name="k")(inp)
    elif case == "conv1d":
        inp = keras.Input((12, 5))
        out = layers.Conv1D(4, 5, padding=2, wide=True, name="k")(inp)
    else:
        inp = keras.Input((3, 2, 4))
        out = layers.Dense(5, wide=True, name="k")(keras.layers.Flatten()(inp))
    model = set_deterministic_weights(keras.Model(inp, out, name="acc"), seed=12)
    export_model(model, tmp_path / "a", targets=("synthesis",))
    sd = read_checkpoint(tmp_path / "a" / "acc-q.pth.tar")["state_dict"]
    w = sd["k.op.weight"].astype(np.int64)
    b = (sd["k.op.bias"] / 2 ** (sd["k.weight_bits"][0] - 1)).astype(np.int64)
    x = rng.integers(-128, 128, size=(3,) + tuple(inp.shape[1:]))
    expected = simulate(convert(model), x)
    for xi, ei in zip(x, expected):
        if case == "conv2d":
            got = _conv_nchw(np.moveaxis(xi, -1, 0), w, 2) + 128 * b[:, None, None]
            assert np.array_equal(got, np.moveaxis(ei, -1, 0))
        elif case == "conv1d":
            got = _conv_nchw(np.moveaxis(xi, -1, 0)[:, :, None], w[:, :, :, None], 0)
            # 1D padding 2 along the length only
            xp = np.pad(np.moveaxis(xi, -1, 0), ((0, 0), (2, 2)))
            got = np.stack([np.einsum("ock,ck->o", w, xp[:, t:t + 5])
                            for t in range(xp.shape[1] - 4)], axis=1) + 128 * b[:, None]
            assert np.array_equal(got, np.moveaxis(ei, -1, 0))
        else:
            chw = np.moveaxis(xi, -1, 0).reshape(-1)  # the device flattens channel-first
            assert np.array_equal(w @ chw + 128 * b, ei)


def test_samples_in_device_layout(tmp_path):
    # A model ending in Flatten: the known answer stays channel-first (the device's order).
    inp = keras.Input((4, 3, 2))
    x = layers.Conv2D(5, 3, padding=1, activation="relu", name="c")(inp)
    model = set_deterministic_weights(keras.Model(inp, keras.layers.Flatten()(x), name="fl"),
                                      seed=2)
    export_model(model, tmp_path / "f", targets=("synthesis",))
    y = np.load(tmp_path / "f" / "sampleoutput.npy")
    x_in = np.load(tmp_path / "f" / "sampledata.npy")
    sim = simulate(convert(model), np.moveaxis(x_in, 0, -1)[None])[0]  # flat HWC
    assert y.shape == (5, 4, 3)
    assert np.array_equal(y, np.moveaxis(sim.reshape(4, 3, 5), -1, 0))
    # Every hardware layer's output for the trace; the last one is the known answer.
    with np.load(tmp_path / "f" / "samplelayers.npz") as saved:
        assert saved.files == ["layer_0"] and np.array_equal(saved["layer_0"], y)
    # A model whose first layer is Dense: the sample is (N, 1, 1).
    inp = keras.Input((12,))
    model = set_deterministic_weights(
        keras.Model(inp, layers.Dense(3, wide=True)(inp), name="mlp"), seed=1)
    export_model(model, tmp_path / "m", targets=("synthesis",))
    assert np.load(tmp_path / "m" / "sampledata.npy").shape == (12, 1, 1)


@NEEDS_TF
def test_full_export_with_tflite_and_manifest(tmp_path):
    import onnxruntime
    import tensorflow as tf

    model = set_deterministic_weights(get_model("mnist"), seed=7, scale=0.2)
    ds = random_dataset("mnist", (28, 28, 1), 10, n_train=30, n_test=40)
    manifest = export_model(model, tmp_path / "mnist", dataset=ds, representative_samples=20)
    folder = tmp_path / "mnist"
    assert set(manifest.artifacts) == {"savedmodel", "onnx", "synthesis_weights", "synthesis_yaml",
                                       "sample_input", "sample_output", "sample_layers", "tflite",
                                       "tflite_int8", "ai8xize_command", "esp32s3"}
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


def test_backend_limits_name_the_target_the_layers_and_the_reason():
    # A pure function of the model and the backend name: checked under every backend.
    model = get_model("mnist")
    assert backend_limits(model, TARGETS, backend="tensorflow") == {}
    jax = backend_limits(model, TARGETS, backend="jax")
    assert set(jax) == REFUSED["jax"]
    assert "Unsupported pooling size" in jax["onnx"] and "jax2onnx" in jax["onnx"]
    # TFLite is converted from the portable form (no Dropout seed state, standard pooling).
    assert backend_limits(model, ("synthesis", "savedmodel", "tflite", "tflite_int8"),
                          backend="jax") == {}
    assert backend_limits(get_model("rock"), ("savedmodel", "tflite", "tflite_int8"),
                          "jax") == {}
    torch = backend_limits(model, TARGETS, backend="torch")
    assert set(torch) == {"savedmodel", "onnx", "tflite", "tflite_int8"}
    assert "not supported on 'torch'" in torch["onnx"]


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow writes every target")
def test_backend_refuses_before_any_work(tmp_path):
    model = set_deterministic_weights(get_model("mnist"), seed=7, scale=0.2)
    ds = random_dataset("mnist", (28, 28, 1), 10, n_train=30, n_test=40)
    refused = REFUSED.get(BACKEND, {"savedmodel", "onnx", "tflite", "tflite_int8"})
    names = ", ".join(t for t in TARGETS if t in refused)
    expected = (rf"(?s)Cannot export 'mnist' to {names} under the Keras '{BACKEND}' backend; "
                rf"for this model these targets need the TensorFlow backend:.*"
                rf"KERAS_BACKEND=tensorflow ai8x-nb export")
    with pytest.raises(ExportError, match=expected) as err:
        export_model(model, tmp_path / "mnist", dataset=ds, representative_samples=20,
                     targets=TARGETS)
    # Refused up front: no Keras error underneath, nothing written.
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert not (tmp_path / "mnist").exists() and leftovers(tmp_path) == []
    # Without explicit targets, what the backend can write is written, the rest skipped.
    default = export_model(model, tmp_path / "dflt", dataset=ds, representative_samples=20)
    assert set(default.skipped) == refused and "KERAS_BACKEND=tensorflow" in \
        default.skipped[sorted(refused)[0]]
    # Everything else is written, and agrees with Keras.
    rest = tuple(t for t in TARGETS if t not in refused)
    manifest = export_model(model, tmp_path / "mnist", dataset=ds, targets=rest,
                            representative_samples=20)
    assert manifest.versions["keras_backend"] == BACKEND
    assert "synthesis_weights" in manifest.artifacts and "integer_simulation" in manifest.accuracy
    if "tflite" in rest:  # the float TFLite computes the model's portable form
        from ai8x_nb.export.portable import portable_model
        from ai8x_nb.export.tflite import predict_tflite

        x = ds.test.x[:8].reshape(8, 28, 28).astype(np.float32) / 128
        got = predict_tflite(tmp_path / "mnist" / "model_float.tflite", x)
        assert np.allclose(got, np.asarray(portable_model(model)(x)), atol=1e-4)
    if BACKEND == "jax":  # the portable int8 model, average pooling included, runs on TFLM
        assert 0.0 <= manifest.accuracy["tflite_int8"] <= 1.0
        from ai8x_nb.export.tflite_micro import micro_available

        if micro_available():
            assert manifest.details["tflite_micro"]["loads"] is True


def test_failure_leaves_no_folder_and_keeps_the_old_export(tmp_path, monkeypatch):
    model = set_deterministic_weights(get_model("mnist"), seed=8)
    final = tmp_path / "mnist"
    export_model(model, final, targets=("synthesis",))
    before = (final / "mnist-q.pth.tar").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(samples_module, "save_npy", broken)
    set_deterministic_weights(model, seed=9)
    with pytest.raises(OSError, match="disk full"):
        export_model(model, final, targets=("synthesis",))
    assert (final / "mnist-q.pth.tar").read_bytes() == before  # old export untouched
    assert leftovers(tmp_path) == []
    with pytest.raises(OSError):
        export_model(model, tmp_path / "fresh", targets=("synthesis",))
    assert not (tmp_path / "fresh").exists() and leftovers(tmp_path) == []
    monkeypatch.undo()
    export_model(model, final, targets=("synthesis",))  # a success replaces the old one
    assert (final / "mnist-q.pth.tar").read_bytes() != before and leftovers(tmp_path) == []


def test_unknown_target_lists_valid_ones(tmp_path):
    with pytest.raises(ExportError, match="valid targets are savedmodel, onnx, synthesis"):
        export_model(get_model("mnist"), tmp_path / "x", targets=("synthesis", "tflite8"))
    assert not (tmp_path / "x").exists()
    assert TARGETS == ("savedmodel", "onnx", "synthesis", "tflite", "tflite_int8")


@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"),
                    reason=f"SavedModel / ONNX / TFLite are not written under {BACKEND}")
def test_model_failing_the_check_skips_synthesis_only(tmp_path):
    inp = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding=1, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3)(x)  # a plain Keras layer: the device cannot run it
    model = keras.Model(inp, x, name="bad")
    float_targets = {"savedmodel", "tflite"} | ({"onnx"} - REFUSED[BACKEND])
    manifest = export_model(model, tmp_path / "bad", targets=(*float_targets, "synthesis"))
    assert "synthesis" in manifest.skipped
    assert "cannot run" in manifest.skipped["synthesis"] and "Dense" in manifest.skipped["synthesis"]
    assert manifest.check["ok"] is False and manifest.check["errors"]
    assert set(manifest.artifacts) == float_targets
    assert not (tmp_path / "bad" / "bad.yaml").exists()
    stored = json.loads((tmp_path / "bad" / MANIFEST_NAME).read_text())
    assert stored["skipped"]["synthesis"] == manifest.skipped["synthesis"]


def test_cli_exports_a_hand_made_run_dir(tmp_path, capsys, shared_data):
    from ai8x_nb.cli import main

    run = tmp_path / "logs" / "20250101-120000-mnist"
    run.mkdir(parents=True)
    model = set_deterministic_weights(get_model("mnist"), seed=10, scale=0.2)
    model.save(run / "best.keras")
    config = {"dataset": "mnist", "model": "mnist", "device": "MAX78000",
              "dataset_kwargs": {"data_dir": str(shared_data), "limit": 50, "download": False}}
    (run / "config.json").write_text(json.dumps(config))
    out = tmp_path / "export" / "mnist-run"
    targets = ["synthesis", "onnx"]
    if BACKEND != "tensorflow":  # the seed MNIST's ONNX needs TensorFlow: a one-line error
        code = main(["export", str(run), "--out", str(out), "--targets", *targets])
        assert code == 2 and not out.exists()
        error = capsys.readouterr().err
        assert error.startswith("error: Cannot export 'mnist' to onnx under the Keras")
        assert "Traceback" not in error
        targets = ["synthesis"]
    code = main(["export", str(run), "--out", str(out), "--targets", *targets,
                 "--sample-index", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "synthesis_yaml" in printed
    manifest = Manifest.load(out)
    assert manifest.dataset == "mnist" and manifest.sample["index"] == 2
    assert manifest.run_dir == str(run.resolve())  # which run made this export
    assert set(manifest.artifacts) >= {"synthesis_weights", "synthesis_yaml"} | (
        {"onnx"} if BACKEND == "tensorflow" else set())
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
