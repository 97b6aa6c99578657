"""Helpers shared by test_quantize.py and test_simulate.py (not a conftest, to avoid clashes)."""

import os
from pathlib import Path

import keras
import numpy as np

from ai8x_nb import layers as L
from ai8x_nb.layers import HardwareLayer
from ai8x_nb.quantize import convert, enable_qat
from ai8x_nb.simulate import simulate

SCALES = (0.004, 0.03, 0.2, 0.9, 2.5, 11.0)
"""Weight magnitudes spanning negative and positive output shifts."""


def data_dir():
    env = os.environ.get("AI8X_NB_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def randomize(model, seed=0, scales=SCALES):
    """Give every hardware layer random weights of a random magnitude (and BatchNorm stats)."""
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
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).integers(-128, 128, size=(n,) + shape)


def output_scale(qmodel):
    last = qmodel.layers[qmodel.graph.output_index]
    layer = last.hw.layer
    if getattr(layer, "wide", False) and layer.has_operator:
        return 128.0 * 2.0 ** (last.weight_bits - 1)
    return 128.0


def assert_exact(model, x_int):
    """QAT forward of `model` and the integer simulation of `convert(model)` agree exactly.

    Returns the QuantizedModel (for further checks).
    """
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


def mnist_model():
    """The seed MNIST model (reference section 5); from ai8x_nb.models when available."""
    try:
        from ai8x_nb.models import get_model

        return get_model("mnist")
    except ImportError:
        pass
    kw = {"activation": "relu", "use_bias": False}
    inputs = keras.Input((28, 28))
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = L.Conv2D(60, 3, padding=1, name="conv1", **kw)(x)
    x = L.Conv2D(60, 3, padding=2, pooling="max", pool_size=2, name="conv2", **kw)(x)
    x = L.Conv2D(56, 3, padding=1, pooling="max", pool_size=2, name="conv3", **kw)(x)
    x = L.Conv2D(12, 3, padding=1, pooling="avg", pool_size=2, name="conv4", **kw)(x)
    x = keras.layers.Flatten()(x)
    outputs = L.Dense(10, wide=True, name="fc")(x)
    return keras.Model(inputs, outputs, name="mnist")


def load_mnist():
    """MNIST via ai8x_nb.datasets (x int8 (N, 28, 28, 1), y int64)."""
    from ai8x_nb.datasets import load

    return load("mnist", data_dir(), download=False)
