"""The simulator's three ways of running a layer give the same integers and clamp counts.

`ai8x_nb/simulate.py` defines the device arithmetic in NumPy; `ai8x_nb/simulate_tf.py` runs the
layers whose partial sums stay below 2^24 in TensorFlow, eagerly layer by layer (few batches)
or, when it runs every layer, as one TensorFlow graph (from `_COMPILE_MIN_BATCHES` batches, two
at a time). Each model here is run all three ways on the same inputs, and against the
fake-quantized Keras forward pass (`support.assert_exact`, independent of both).
"""

import importlib

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.quantize import convert, enable_qat
from ai8x_nb.simulate import round_shift, simulate

from support import assert_exact, random_input, randomize

sim = importlib.import_module("ai8x_nb.simulate")  # the module (the package exports the function)


def _chain_2d():
    inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding=1)(inputs)
    x = L.Conv2D(8, 3, padding=2, activation="abs", pooling="max", pool_size=2, pool_strides=2)(x)
    x = L.Conv2D(6, 3, padding=1, pooling="avg", pool_size=3, pool_strides=1)(x)
    x = L.AvgPool2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, L.Dense(7, wide=True)(x))


def _chain_1d():
    inputs = keras.Input((30, 4))
    x = L.Conv1D(8, 3, padding=1, activation="relu")(inputs)
    x = L.Conv1D(5, 5, padding=2, pooling="avg", pool_size=3, pool_strides=2)(x)
    return keras.Model(inputs, L.MaxPool1D(2)(x))


def _eltwise():
    inputs = keras.Input((6, 6, 4))
    a = L.Conv2D(6, 3, padding=1)(inputs)
    b = L.Conv2D(6, 1, padding=0, activation="relu")(a)
    c = L.Conv2D(5, 3, padding=1, pooling="max", pool_size=2, pool_strides=2)(L.Sub()([a, b]))
    d = L.Conv2D(5, 1, padding=0)(c)
    return keras.Model(inputs, L.Xor()([c, d]))


def _concat(unet=False):
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(8, 3, padding=1, activation="relu")(inputs)
    if unet:  # a transposed convolution: a NumPy layer between TensorFlow layers
        down = L.Conv2D(8, 3, padding=1, pooling="max", pool_size=2, pool_strides=2)(a)
        b = L.ConvTranspose2D(8, 3, padding=1)(down)
    else:
        b = L.Conv2D(8, 3, padding=1)(a)
    y = L.Conv2D(6, 3, padding=1)(L.Concatenate()([b, a]))
    return keras.Model(inputs, y)


def _avg_pool_16():
    # |window sum| up to 128 * 256: the TensorFlow average must still give the exact sum.
    inputs = keras.Input((16, 16, 4))
    x = L.AvgPool2D(16)(inputs)
    return keras.Model(inputs, L.Conv2D(3, 1, padding=0)(x))


def _float64_layer():
    # 3x3 x 128 channels x |w| ~ 127 x 128 > 2^24: that layer runs in NumPy (float64).
    inputs = keras.Input((4, 4, 16))
    x = L.Conv2D(128, 1, padding=0, activation="relu")(inputs)
    x = L.Conv2D(8, 3, padding=1, name="wide_sum")(x)
    return keras.Model(inputs, L.Conv2D(4, 1, padding=0)(x))


def _dilated_1d():
    inputs = keras.Input((24, 4))
    x = L.Conv1D(8, 3, padding=2, dilation=2, activation="relu")(inputs)
    return keras.Model(inputs, L.Conv1D(6, 3, padding=1)(x))


def _max78002_forms():
    # Depthwise (groups) and dilated pooling (fused and pool-only): MAX78002 layers.
    inputs = keras.Input((12, 12, 6))
    x = L.Conv2D(6, 3, padding=1, groups=6, device="MAX78002")(inputs)
    x = L.Conv2D(6, 3, padding=1, pooling="max", pool_size=2, pool_strides=1,
                 pool_dilation=2, device="MAX78002")(x)
    x = L.AvgPool2D(2, pool_strides=1, pool_dilation=2, device="MAX78002")(x)
    return keras.Model(inputs, L.Conv2D(4, 1, padding=0, device="MAX78002")(x))


def _randomize(model, seed):
    randomize(model, seed=seed, scales=(1.0, 3.0))
    if "wide_sum" in [layer.name for layer in model.layers]:
        layer = model.get_layer("wide_sum")
        rng = np.random.default_rng(seed)
        values = rng.normal(size=layer.kernel.shape) * 0.05
        values[0, 0, 0, 0] = 0.99  # w_int 127: the bound 9 * 128 * 128 * 127 passes 2^24
        layer.kernel.assign(values)
        layer.bias.assign(rng.normal(size=layer.bias.shape) * 0.05)


MODELS = {"chain_2d": _chain_2d, "chain_1d": _chain_1d, "eltwise": _eltwise, "concat": _concat,
          "concat_transpose": lambda: _concat(unet=True), "avg_pool_16": _avg_pool_16,
          "float64_layer": _float64_layer, "dilated_1d": _dilated_1d,
          "max78002_forms": _max78002_forms}
NUMPY_LAYERS = {"concat_transpose": ["convtranspose2d"], "float64_layer": ["conv2d"],
                "dilated_1d": ["conv1d"]}
"""The layers each model runs in NumPy (the others run in TensorFlow; a layer with an option
`simulate_tf.TfLayer` does not model must be among them, or the three engines would differ)."""
BATCH = 4
N = BATCH * sim._COMPILE_MIN_BATCHES + 3  # batches of 4, the last one shorter


def _inputs(model):
    x = random_input(model, N, seed=3)
    x[0], x[1] = -128, 127  # the extremes, whole samples
    return x


def _run(qmodel, x, monkeypatch, engine):
    from ai8x_nb.simulate_tf import TfModel

    graph_batches = []
    run_graph = TfModel.__call__
    with monkeypatch.context() as patch:
        patch.setattr(TfModel, "__call__",
                      lambda self, xb: graph_batches.append(len(xb)) or run_graph(self, xb))
        if engine == "eager":
            patch.setattr(sim, "_COMPILE_MIN_BATCHES", N + 1)
        elif engine == "numpy":
            patch.setattr(sim, "_tf_layers", lambda qmodel: {})
        y, stats = simulate(qmodel, x, batch_size=BATCH, return_stats=True)
    return y, [s.to_dict() for s in stats], sorted(graph_batches)


@pytest.mark.parametrize("name", list(MODELS))
def test_numpy_eager_and_graph_agree(name, monkeypatch):
    model = MODELS[name]()
    _randomize(model, seed=len(name))
    enable_qat(model)
    qmodel = convert(model)
    x = _inputs(model)
    tf_layers = sim._tf_layers(qmodel)
    numpy_layers = [ql.op for ql in qmodel.layers if ql.hw.index not in tf_layers]
    if name == "max78002_forms":
        assert numpy_layers[:2] == ["conv2d", "conv2d"] and len(numpy_layers) == 3, numpy_layers
    else:
        assert numpy_layers == NUMPY_LAYERS.get(name, []), numpy_layers

    y_numpy, stats_numpy, _ = _run(qmodel, x, monkeypatch, "numpy")
    y_eager, stats_eager, eager_graph = _run(qmodel, x, monkeypatch, "eager")
    y, stats, graph = _run(qmodel, x, monkeypatch, "graph")
    assert eager_graph == []
    assert graph == ([] if numpy_layers else [N % BATCH] + [BATCH] * (N // BATCH))
    np.testing.assert_array_equal(y_eager, y_numpy)
    np.testing.assert_array_equal(y, y_numpy)
    assert stats == stats_eager == stats_numpy
    assert y.dtype == np.int64
    if name != "avg_pool_16":  # the clamps are exercised (pooling alone never clips)
        assert sum(s["clipped_low"] + s["clipped_high"] for s in stats) > 0, stats
    assert_exact(model, x)


def test_tf_round_shift_matches_numpy_eager_and_in_a_graph():
    import tensorflow as tf

    from ai8x_nb.simulate_tf import _round_shift

    rng = np.random.default_rng(0)
    acc = rng.integers(-2**24, 2**24, size=500).astype(np.int32)
    acc[:8] = [64, -64, 63, -65, 192, -192, 2**24 - 1, -2**24]  # .5 ties and the bounds
    shifts = range(-15, 23)

    def all_shifts(a):
        return tf.stack([_round_shift(a, s) for s in shifts])

    # NumPy's round_shift on int32 (checked against exact fractions in test_simulate.py),
    # including the limit a left shift puts on |acc| first.
    expected = np.stack([round_shift(acc, s) for s in shifts])
    for run in (all_shifts, tf.function(all_shifts)):
        np.testing.assert_array_equal(run(tf.constant(acc)).numpy(), expected)
