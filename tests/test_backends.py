"""The other Keras backends, run from the normal (TensorFlow) test session in subprocesses.

Keras fixes its backend at import, so each backend gets its own `python -m pytest` process
with `KERAS_BACKEND` set; the parent asserts that it passes and prints how long it took.

* `test_suite_under_backend[jax]`: the layer, QAT, conversion, simulator and export tests
  (`SUITE`) with `-m "not slow"`, minus `SUITE_DESELECT`: the ai8xTF seed-model parameter
  counts (shapes only), the 2-epoch real-MNIST QAT run (~110 s under JAX; training and the QAT
  switch stay covered by the QATCallback tests) and six of the nine Conv1D kernel sizes of
  test_simulate.py (each compiles its own XLA programs). About 4-5 minutes on 2 CPU cores.
* `test_suite_under_backend[torch]`: the same under PyTorch, where torch is installed in
  this environment (the project does not install it).
* `test_saved_model_crosses_backends[...]`: a small model trained a few steps on TensorFlow
  (float, then QAT) and saved as `.keras` loads under the other backend with the same
  outputs (QAT outputs exactly; float outputs within `FLOAT_TOLERANCE`), and the synthesis
  package it writes there is identical byte for byte to TensorFlow's: checkpoint, YAML,
  `sampledata.npy`, `sampleoutput.npy` (`manifest.json` and `ai8xize_command.txt` hold
  timestamps and paths).

A backend that is not importable skips with the reason and the install command. All are
marked `slow`: they run in CI (README's test command) and stay out of `-m "not slow"`.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

SUITE = ("tests/test_layers.py", "tests/test_layers_numerics.py", "tests/test_quantize.py",
         "tests/test_simulate.py", "tests/test_export.py")
"""Layer, QAT, conversion, simulator and export tests."""

SUITE_DESELECT = (
    # Parameter counts of every ai8xTF seed model: shapes only (~35 s of model building).
    "tests/test_layers.py::test_ai8xtf_seed_models_have_the_seed_parameter_counts",
    "tests/test_layers.py::test_cifar100_ends_on_one_pixel",
    # Two epochs on 6000 MNIST samples (~110 s under JAX on CPU); training and the QAT switch
    # stay covered by the QATCallback tests, integer = fake-quant by test_simulate.py.
    "tests/test_quantize.py::test_mnist_qat_integer_matches_fake_quant",
    # Conv1D kernels 1, 3 and 9 stay; each size in between compiles its own XLA programs
    # (~8 s apiece) and adds nothing backend specific.
    *(f"tests/test_simulate.py::test_conv1d_exact[{k}]" for k in (2, 4, 5, 6, 7, 8)),
)
"""Tests left out of the other backends' run: expensive there, and not about the backend."""

SUITE_TIMEOUT = 20 * 60
"""Seconds before a backend's suite counts as hung."""

FLOAT_TOLERANCE = 1e-5
"""Largest accepted |other backend - TensorFlow| difference of the float outputs."""

INSTALL = {"jax": 'pip install -e ".[jax]"', "torch": "pip install torch"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="runs the other backends from the TensorFlow session"),
]


def _require(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed in this environment, so the tests do not run "
                    f"under KERAS_BACKEND={backend}; install it with `{INSTALL[backend]}`")


def _run(backend, args, timeout):
    """Run `python args...` from the repository with `KERAS_BACKEND=backend`."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(TESTS), os.environ.get("PYTHONPATH")) if p)
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"KERAS_BACKEND={backend} {' '.join(args)} did not finish in {timeout} s:\n"
                    f"{(err.stdout or '')[-3000:]}")
    return proc, time.monotonic() - start


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_suite_under_backend(backend, capsys):
    _require(backend)
    args = ["-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", *SUITE,
            *(f"--deselect={test}" for test in SUITE_DESELECT)]
    proc, seconds = _run(backend, args, SUITE_TIMEOUT)
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else "(no output)"
    with capsys.disabled():
        print(f"\n[test_backends] KERAS_BACKEND={backend}: {summary.strip('= ')} "
              f"({seconds:.0f} s added)")
    assert proc.returncode == 0, (
        f"the tests fail under KERAS_BACKEND={backend} (exit {proc.returncode}); rerun with\n"
        f"  KERAS_BACKEND={backend} python {' '.join(args)}\n"
        f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    assert re.search(r"\d+ passed", summary), summary


# ------------------------------------------------------------------- one model, two backends
PACKAGE_FILES = ("cross-q.pth.tar", "cross.yaml", "sampledata.npy", "sampleoutput.npy")
"""The synthesis package files that must be equal byte for byte."""

EXPORT_SCRIPT = """
import json, sys
import keras, numpy as np
from ai8x_nb.export import export_model
from ai8x_nb.quantize import set_fake_quant
from support import random_dataset

args = json.loads(sys.argv[1])
assert keras.backend.backend() == args["backend"], keras.backend.backend()
model = keras.saving.load_model(args["model"], compile=False)
ds = random_dataset(**args["dataset"])
export_model(model, args["out"], dataset=ds, targets=("synthesis",), epoch=2)
x = np.load(args["inputs"])
qat = np.asarray(model(x, training=False))
set_fake_quant(model, False)
np.savez(args["outputs"], qat=qat, float=np.asarray(model(x, training=False)))
"""
"""Loads the `.keras` file, writes the synthesis package and the outputs on `inputs`."""

DATASET = {"name": "cross", "input_shape": (16, 16, 3), "num_classes": 5, "n_train": 64,
           "n_test": 16, "seed": 4}


def _train_on_tensorflow(path):
    """Train a small model 2 epochs (float, then QAT) on TensorFlow; save it to `path`."""
    from ai8x_nb import layers as L
    from ai8x_nb.quantize import QATCallback, is_qat

    from support import random_dataset

    keras.utils.set_random_seed(5)
    inputs = keras.Input(DATASET["input_shape"])
    x = L.Conv2D(8, 3, padding=1, activation="relu", batch_norm="affine", name="conv1")(inputs)
    x = L.Conv2D(12, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                 name="conv2")(x)
    x = L.Conv2D(8, 3, padding=1, activation="relu", pooling="avg", pool_size=2,
                 name="conv3")(x)
    x = keras.layers.Flatten()(x)
    outputs = L.Dense(DATASET["num_classes"], wide=True, name="fc")(x)
    model = keras.Model(inputs, outputs, name="cross")
    train = random_dataset(**DATASET).train
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train.x.astype("float32") / 128.0, train.y, batch_size=16, epochs=2, verbose=0,
              shuffle=False, callbacks=[QATCallback({"start_epoch": 1, "weight_bits": 8})])
    assert is_qat(model)
    model.save(path)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_saved_model_crosses_backends(backend, tmp_path):
    _require(backend)
    model_file = tmp_path / "cross.keras"
    _train_on_tensorflow(model_file)
    inputs = np.random.default_rng(6).integers(-128, 128, size=(32,) + DATASET["input_shape"])
    np.save(tmp_path / "inputs.npy", (inputs / 128.0).astype("float32"))
    runs = {}
    for name in ("tensorflow", backend):
        args = {"backend": name, "model": str(model_file), "dataset": DATASET,
                "inputs": str(tmp_path / "inputs.npy"), "out": str(tmp_path / name),
                "outputs": str(tmp_path / f"{name}.npz")}
        proc, _ = _run(name, ["-c", EXPORT_SCRIPT, json.dumps(args)], timeout=600)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        runs[name] = np.load(tmp_path / f"{name}.npz")
    tf_out, other = runs["tensorflow"], runs[backend]
    # Fake-quantized outputs sit on the device grid: equal exactly. Float ones within tolerance.
    np.testing.assert_array_equal(other["qat"], tf_out["qat"])
    np.testing.assert_allclose(other["float"], tf_out["float"], atol=FLOAT_TOLERANCE, rtol=0)
    assert np.ptp(tf_out["qat"]) > 0  # a trained model, not a constant
    for file in PACKAGE_FILES:
        a, b = (tmp_path / "tensorflow" / file), (tmp_path / backend / file)
        assert a.read_bytes() == b.read_bytes(), (
            f"{file} written under {backend} differs from TensorFlow's ({a.stat().st_size} vs "
            f"{b.stat().st_size} bytes)")
    manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in runs]
    for key in ("accuracy", "sample", "check", "artifacts"):
        assert manifests[0][key] == manifests[1][key], key
    assert [m["versions"]["keras_backend"] for m in manifests] == ["tensorflow", backend]
