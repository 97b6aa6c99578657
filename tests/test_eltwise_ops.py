"""Element-wise Sub, Xor and Or beside Add: the layer, the device arithmetic, the graph, the YAML.

Numerics against the independent NumPy device model (tests/numpy_device.py `eltwise_int`).
"""

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.check import check_model
from ai8x_nb.errors import DeviceLimitError
from ai8x_nb.export.synthesis_yaml import network_description, to_yaml
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate

import numpy_device as nd
from support import assert_exact, random_input, randomize

OPS = {"add": L.Add, "sub": L.Sub, "xor": L.Xor, "or": L.Or}


def _grid(rng, shape):
    x_int = rng.integers(-128, 128, size=shape)
    return x_int, (x_int / 128).astype(np.float32)


# ------------------------------------------------------------------ the layer
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("count", [2, 3, 16])
def test_layer_equals_numpy_device(op, count):
    rng = np.random.default_rng(count)
    ints, floats = zip(*(_grid(rng, (3, 4, 4, 5)) for _ in range(count)))
    for layer in (OPS[op](), L.Eltwise(op)):
        got = np.asarray(layer(list(floats))) * 128
        np.testing.assert_array_equal(got, nd.eltwise_int(op, ints))


def test_sub_is_first_minus_the_others():
    a, b, c = (np.full((1, 2), v / 128, np.float32) for v in (10, 3, 4))
    np.testing.assert_array_equal(np.asarray(L.Sub()([a, b, c])) * 128, [[3, 3]])
    np.testing.assert_array_equal(np.asarray(L.Sub()([c, b, a])) * 128, [[-9, -9]])


def test_xor_or_on_twos_complement_codes():
    a = np.array([[64, -32, 127, -128, -1]]) / 128
    b = np.array([[96, 64, -64, -128, 1]]) / 128
    xor = np.asarray(L.Xor()([a.astype("float32"), b.astype("float32")])) * 128
    orr = np.asarray(L.Or()([a.astype("float32"), b.astype("float32")])) * 128
    np.testing.assert_array_equal(xor, [[32, -96, -65, 0, -2]])
    np.testing.assert_array_equal(orr, [[96, -32, -1, -128, -1]])


def test_xor_rounds_operands_off_the_grid():
    # 0.3 * 128 = 38.4 -> 38; 2.0 clamps to 127; -0.5/128 rounds half up to 0.
    a = np.array([[0.3, 2.0, -0.5 / 128]], np.float32)
    b = np.zeros_like(a)
    np.testing.assert_array_equal(np.asarray(L.Xor()([a, b])) * 128, [[38, 127, 0]])


@pytest.mark.parametrize("op", ["xor", "or"])
def test_bitwise_gradient_is_straight_through(op):
    import tensorflow as tf

    a = tf.Variable(np.array([[0.25, -0.5]], np.float32))
    b = tf.Variable(np.array([[0.5, 0.125]], np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(OPS[op]()([a, b]) * tf.constant([[2.0, 3.0]]))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(ga, [[2.0, 3.0]])
    np.testing.assert_array_equal(gb, [[2.0, 3.0]])


def _model(op, operands=2):
    inputs = keras.Input((6, 6, 3))
    branches = [L.Conv2D(4, 3, padding=1, activation="relu", name=f"c{i}")(inputs)
                for i in range(operands)]
    y = OPS[op](name=f"e_{op}")(branches)
    y = L.Conv2D(3, 3, padding=1, name="head")(y)
    return keras.Model(inputs, y)


@pytest.mark.parametrize("op", ["sub", "xor", "or"])
def test_layer_save_load_and_train_step(op, tmp_path):
    model = _model(op)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).uniform(-1, 1, (4, 6, 6, 3)).astype("float32")
    before = [w.copy() for w in model.get_layer("c0").get_weights()]
    model.fit(x, np.zeros((4, 6, 6, 3), "float32"), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b)
               for a, b in zip(before, model.get_layer("c0").get_weights()))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.get_layer(f"e_{op}")) is OPS[op]
    np.testing.assert_array_equal(loaded(x), model(x))
    assert OPS[op].from_config(model.get_layer(f"e_{op}").get_config()).op == op


def test_eltwise_config_round_trip_and_add_keeps_its_name():
    layer = L.Eltwise("xor", device="MAX78002", name="x")
    config = layer.get_config()
    assert config["op"] == "xor" and config["device"] == "MAX78002"
    assert L.Eltwise.from_config(config).op == "xor"
    # An Add saved before Eltwise existed has no "op" in its config.
    old = {"name": "add", "trainable": True, "dtype": "float32", "device": "MAX78000"}
    assert L.Add.from_config(old).op == "add"
    assert "op" not in L.Add().get_config()
    assert keras.saving.get_registered_name(L.Add).endswith(">Add")


def test_unknown_op_is_refused():
    with pytest.raises(DeviceLimitError, match=r"Eltwise '.*': op='mul' is not supported by "
                                               r"MAX78000 \(one of 'add', 'sub', 'xor', 'or'\)"):
        L.Eltwise("mul")


@pytest.mark.parametrize("count", [1, 17])
def test_operand_count_is_refused(count):
    xs = [keras.Input((4, 4, 2)) for _ in range(count)]
    with pytest.raises(DeviceLimitError, match=rf"Sub '.*': inputs={count} .*2\.\.16 operands"):
        L.Sub()(xs)


# ------------------------------------------------------------- integer path
@pytest.mark.parametrize("op", ["sub", "xor", "or"])
@pytest.mark.parametrize("pooling", [None, "max"])
def test_fused_eltwise_matches_numpy_device(op, pooling):
    """op -> [pool] -> conv on the integers, against tests/numpy_device.py layer by layer."""
    inputs = keras.Input((6, 6, 4))
    a = L.Conv2D(5, 3, padding=1, name="a")(inputs)
    b = L.Conv2D(5, 1, padding=0, name="b")(a)
    pool = {"pooling": pooling, "pool_size": 2, "pool_strides": 2} if pooling else {}
    out = L.Conv2D(3, 3, padding=1, name="c", **pool)(OPS[op]()([b, a]))
    model = keras.Model(inputs, out)
    randomize(model, seed=4, scales=(1.0, 3.0))
    x_int = random_input(model, 6)
    qmodel = convert(model)
    q = {ql.name: ql for ql in qmodel.layers}
    assert q["c"].hw.eltwise == op and q["c"].hw.inputs == (1, 2)  # b, then the copy of a

    def run(x, ql, **kwargs):
        layer = ql.hw.layer
        return nd.layer_int(x, ql.op, ql.weights, ql.bias, bits=ql.weight_bits,
                            shift=ql.output_shift, padding=layer.padding,
                            activation=layer.activation, **kwargs)

    ya = run(x_int, q["a"])
    yb = run(ya, q["b"])
    expected = run(nd.eltwise_int(op, [yb, ya]), q["c"], pooling=pooling,
                   pool_size=(2, 2) if pooling else None, pool_strides=(2, 2) if pooling else None)
    np.testing.assert_array_equal(simulate(qmodel, x_int), expected)
    assert_exact(model, x_int)


@pytest.mark.parametrize("op", ["sub", "xor", "or"])
def test_stand_alone_eltwise_three_operands(op):
    inputs = keras.Input((5,))
    a = L.Dense(5, name="a")(inputs)
    b = L.Dense(5, name="b")(inputs)
    model = keras.Model(inputs, OPS[op]()([a, inputs, b]))
    randomize(model, seed=2, scales=(1.0, 4.0))
    x_int = random_input(model, 20)
    qmodel = convert(model)
    q = {ql.name: ql for ql in qmodel.layers}
    ya = nd.layer_int(x_int, "linear", q["a"].weights, q["a"].bias, bits=8,
                      shift=q["a"].output_shift)
    yb = nd.layer_int(x_int, "linear", q["b"].weights, q["b"].bias, bits=8,
                      shift=q["b"].output_shift)
    np.testing.assert_array_equal(simulate(qmodel, x_int), nd.eltwise_int(op, [ya, x_int, yb]))
    assert_exact(model, x_int)


def test_sub_saturates_both_ways():
    inputs = keras.Input((4,))
    negated = L.Sub()([L.Sub()([inputs, inputs]), inputs])  # 0 - x
    model = keras.Model(inputs, L.Sub()([inputs, negated]))  # x - (-x)
    x = np.array([[100, -100, 60, -128]])
    negated_int = nd.eltwise_int("sub", [nd.eltwise_int("sub", [x, x]), x])
    expected = nd.eltwise_int("sub", [x, negated_int])
    np.testing.assert_array_equal(expected, [[127, -128, 120, -128]])
    np.testing.assert_array_equal(simulate(convert(model), x), expected)


# --------------------------------------------------------- graph, check, YAML
@pytest.mark.parametrize("op", ["sub", "xor", "or"])
@pytest.mark.parametrize("device", ["MAX78000", "MAX78002"])
def test_yaml_and_report_name_the_operation(op, device):
    inputs = keras.Input((6, 6, 3))
    a = L.Conv2D(4, 3, padding=1, device=device, use_bias=False, name="a")(inputs)
    b = L.Conv2D(4, 3, padding=1, device=device, name="b")(a)
    fused = L.Conv2D(4, 3, padding=1, device=device, use_bias=False,
                     name="fused")(OPS[op](device=device)([b, a]))
    c = L.Conv2D(4, 1, padding=0, device=device, name="c")(fused)
    standalone = OPS[op](device=device, name="alone")([c, fused])
    head = L.Dense(2, device=device, name="h")(keras.layers.Flatten()(standalone))
    model = keras.Model(inputs, head)  # a Dense does not take the element-wise layer in
    randomize(model, seed=1)
    report = check_model(model, device)
    assert report.ok, report.errors
    rows = {r.name: r for r in report.rows}
    assert rows["fused"].eltwise == op and f"{op} of" in rows["fused"].notes
    assert rows["alone"].op == op
    desc, _ = network_description(convert(model), arch="m", dataset="d", device=device)
    text = to_yaml(desc)
    entries = dict(zip(desc["names"], desc["layers"]))
    assert entries["fused"]["eltwise"] == op and entries["fused"]["operands"] == 2
    assert entries["alone"]["operation"] == op.capitalize()
    assert "eltwise" not in entries["alone"]
    assert f"eltwise: {op}" in text
