"""Plain helpers shared by tests, subprocess scripts and benchmarks (not fixtures).

`SHARED_DATA` is the one definition of the offline real-data folder; the fixtures in
`conftest.py` (`shared_data`, `mnist_data`, `kws_data`) are built on it. The functions here are
called with arguments inside tests and by scripts that run outside pytest
(`test_backends.EXPORT_SCRIPT`, `benchmarks/*.py`), so they stay importable as a module.
"""

import os
from pathlib import Path

import numpy as np

SHARED_DATA = Path(os.environ.get("AI8X_NB_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")
"""The offline real-data folder: `AI8X_NB_DATA`, else `<repo>/../shared/data`."""

SCALES = (0.004, 0.03, 0.2, 0.9, 2.5, 11.0)
"""Weight magnitudes spanning negative and positive output shifts."""


def set_deterministic_weights(model, seed=0, scale=0.4):
    """Give every weight of `model` seeded uniform values in [-scale, scale] (a BatchNorm's
    moving variance in [0.5, 0.5 + scale]: it must stay positive)."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        shape = tuple(var.shape)
        values = rng.uniform(-scale, scale, size=shape).astype("float32")
        if "moving_variance" in var.path:
            values = np.abs(values) + 0.5
        var.assign(values)
    return model


def random_dataset(name, input_shape, num_classes, *, n_train=40, n_test=24, seed=0):
    """A tiny `Dataset` of random int8 samples (layout of the real one)."""
    from ai8x_nb.datasets import Dataset, Split

    rng = np.random.default_rng(seed)

    def split(split_name, n):
        x = rng.integers(-128, 128, size=(n,) + tuple(input_shape)).astype(np.int8)
        y = rng.integers(0, num_classes, size=n).astype(np.int64)
        return Split(split_name, x, y)

    return Dataset(name, split("train", n_train), split("valid", 8), split("test", n_test),
                   [str(i) for i in range(num_classes)])


def randomize(model, seed=0, scales=SCALES):
    """Give every hardware layer random weights of a random magnitude (and BatchNorm stats)."""
    from ai8x_nb.layers import HardwareLayer

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, HardwareLayer) or not layer.has_operator:
            continue
        scale = float(rng.choice(scales))
        fan_in = int(np.prod(layer.kernel.shape[:-1]))
        layer.kernel.assign(rng.normal(size=layer.kernel.shape) * scale / np.sqrt(fan_in) * 4)
        if layer.bias is not None:
            layer.bias.assign(rng.normal(size=layer.bias.shape) * scale * 0.5)
        if layer.bn is not None:
            units = layer.bn.moving_mean.shape[0]
            layer.bn.moving_mean.assign(rng.normal(size=units) * 0.3)
            layer.bn.moving_variance.assign(rng.uniform(0.2, 3.0, size=units))
            if layer.bn.scale:
                layer.bn.gamma.assign(rng.uniform(0.5, 2.0, size=units))
            if layer.bn.center:
                layer.bn.beta.assign(rng.normal(size=units) * 0.2)
    return model


def random_input(model, n=16, seed=1):
    """`n` random int8-range samples shaped like the model input (int64)."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).integers(-128, 128, size=(n,) + shape)


def output_scale(qmodel):
    """The factor from the float model output to the integer simulation's output."""
    last = qmodel.layers[qmodel.graph.output_index]
    layer = last.hw.layer
    if getattr(layer, "wide", False) and layer.has_operator:
        return 128.0 * 2.0 ** (last.weight_bits - 1)
    return 128.0


def assert_exact(model, x_int):
    """QAT forward of `model` and the integer simulation of `convert(model)` agree exactly.

    Returns the QuantizedModel (for further checks).
    """
    from ai8x_nb.quantize import convert, enable_qat
    from ai8x_nb.simulate import simulate

    enable_qat(model)
    fake = np.asarray(model(x_int.astype("float32") / 128.0, training=False), dtype=np.float64)
    qmodel = convert(model)
    sim = simulate(qmodel, x_int, batch_size=7)
    scaled = fake * output_scale(qmodel)
    assert np.array_equal(scaled, np.round(scaled)), "fake-quant output is off the integer grid"
    expected = np.round(scaled).astype(np.int64)
    assert sim.dtype == np.int64
    assert sim.shape == expected.shape
    mismatch = np.count_nonzero(sim != expected)
    assert mismatch == 0, (
        f"{mismatch}/{sim.size} values differ; max |diff| {np.abs(sim - expected).max()}")
    return qmodel


def keras_file_weights(path):
    """Every weight array stored in a `.keras` file, by its HDF5 path (read without Keras)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    found = {}
    with h5py.File(io.BytesIO(data)) as h5:
        h5.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
    return found


def registry_device(name):
    """The device a registry model is built for in tests: its own (`ModelInfo.device`, e.g.
    MAX78002 for the depthwise model), else the MAX78000."""
    from ai8x_nb.models import get_info

    return get_info(name).device or "MAX78000"
