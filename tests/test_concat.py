"""Channel concatenation (`Concatenate`): the layer, the integer path, the placement, the YAML.

Numerics against the independent NumPy device model (tests/numpy_device.py `concatenate_int`).
"""

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.check import check_model
from ai8x_nb.errors import DeviceLimitError
from ai8x_nb.export.synthesis_yaml import network_description
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate

import numpy_device as nd
from support import assert_exact, random_input, randomize

DEVICES = ("MAX78000", "MAX78002")


def _skip_model(device="MAX78000", order="ba", channels=(16, 16), unet=False):
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(channels[0], 3, padding=1, activation="relu", device=device, name="a")(inputs)
    if unet:
        down = L.Conv2D(8, 3, padding=1, pooling="max", pool_size=2, pool_strides=2,
                        device=device, name="down")(a)
        b = L.ConvTranspose2D(channels[1], 3, padding=1, device=device, name="b")(down)
    else:
        b = L.Conv2D(channels[1], 3, padding=1, device=device, name="b")(a)
    parts = [b, a] if order == "ba" else [a, b]
    y = L.Concatenate(device=device, name="cat")(parts)
    y = L.Conv2D(10, 3, padding=1, device=device, name="c")(y)
    return keras.Model(inputs, y)


# ------------------------------------------------------------------ the layer
def test_layer_concatenates_channels_and_round_trips(tmp_path):
    a = np.arange(2 * 3 * 3 * 2, dtype="float32").reshape(2, 3, 3, 2) / 128
    b = -a[..., :1]
    np.testing.assert_array_equal(L.Concatenate()([a, b]), np.concatenate([a, b], -1))
    model = _skip_model()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    before = model.get_layer("a").get_weights()[0].copy()
    model.fit(x, np.zeros((4, 8, 8, 10), "float32"), epochs=1, verbose=0)
    assert not np.array_equal(before, model.get_layer("a").get_weights()[0])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("cat")) is L.Concatenate
    np.testing.assert_array_equal(loaded(x), model(x))
    config = L.Concatenate(device="MAX78002", name="k").get_config()
    assert L.Concatenate.from_config(config).device.name == "MAX78002"


def test_layer_refuses_one_input_and_other_sizes():
    with pytest.raises(DeviceLimitError, match=r"Concatenate '.*': inputs=1 .*2\.\.16 inputs"):
        L.Concatenate()([keras.Input((4, 4, 2))])
    with pytest.raises(DeviceLimitError, match=r"differ only in the channels.*Pool or upsample"):
        L.Concatenate()([keras.Input((4, 4, 2)), keras.Input((2, 2, 2))])


# ------------------------------------------------------------- integer path
@pytest.mark.parametrize("order", ["ba", "ab"])
@pytest.mark.parametrize("unet", [False, True])
def test_concatenation_matches_numpy_device(order, unet):
    model = _skip_model(order=order, unet=unet)
    randomize(model, seed=5, scales=(1.0, 3.0))
    x_int = random_input(model, 6)
    qmodel = convert(model)
    q = {ql.name: ql for ql in qmodel.layers}
    assert q["c"].hw.concat_layer is not None and len(qmodel.layers) == (4 if unet else 3)

    def run(x, ql, **kwargs):
        layer = ql.hw.layer
        return nd.layer_int(x, ql.op, ql.weights, ql.bias, bits=ql.weight_bits,
                            shift=ql.output_shift, padding=layer.padding,
                            activation=layer.activation, **kwargs)

    ya = run(x_int, q["a"])
    if unet:
        yd = run(ya, q["down"], pooling="max", pool_size=(2, 2), pool_strides=(2, 2))
        yb = run(yd, q["b"])
    else:
        yb = run(ya, q["b"])
    parts = [yb, ya] if order == "ba" else [ya, yb]
    expected = run(nd.concatenate_int(parts), q["c"])
    np.testing.assert_array_equal(simulate(qmodel, x_int), expected)
    assert_exact(model, x_int)


# ------------------------------------------------------------ layout and YAML
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("order", ["ba", "ab"])
def test_inputs_side_by_side_at_one_offset(device, order):
    """Like the vendor's UNets: the inputs' output processors in order, one offset."""
    model = _skip_model(device, order=order, unet=True)
    randomize(model, seed=1)
    report = check_model(model, device)
    assert report.ok, report.errors
    rows = {r.name: r for r in report.rows}
    assert "concatenated (Concatenate 'cat')" in rows["c"].notes
    desc, warnings = network_description(convert(model), arch="m", dataset="d", device=device)
    assert not warnings
    placed = {lp.name: lp for lp in report.placement.layers}
    first, second = (placed["b"], placed["a"]) if order == "ba" else (placed["a"], placed["b"])
    low, high = first.output_processors, second.output_processors
    assert low and high and not low & high and high > low
    assert low | high == placed["c"].processors == ((1 << 32) - 1) << (low & -low).bit_length() - 1
    assert first.out_offset == second.out_offset == placed["c"].in_offset
    entry = dict(zip(desc["names"], desc["layers"]))["c"]
    names = desc["names"]
    expected = [names.index("b"), names.index("a")] if order == "ba" else \
        [names.index("a"), names.index("b")]
    assert entry["in_sequences"] == expected and "operands" not in entry


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("unet", [False, True])
def test_more_than_64_channels_interleave_one_pass_each(device, unet):
    """Like the UNet's 112-channel layer: the inputs write the same processors with
    write_gap 1, input j at 4 * j; `a`, read by another layer too, is copied there."""
    model = _skip_model(device, channels=(48, 48), unet=unet)
    randomize(model, seed=2, scales=(1.0, 3.0))
    report = check_model(model, device)
    assert report.ok, report.errors
    qmodel = assert_exact(model, random_input(model, 4))
    desc, warnings = network_description(qmodel, arch="m", dataset="d", device=device)
    assert not warnings
    entries = dict(zip(desc["names"], desc["layers"]))
    placed = {lp.name: lp for lp in report.placement.layers}
    names = desc["names"]
    assert entries["c"]["in_sequences"] == [names.index("b"), names.index("a_to_c_1")]
    assert entries["b"]["write_gap"] == entries["a_to_c_1"]["write_gap"] == 1
    assert placed["a_to_c_1"].out_offset == placed["b"].out_offset + 4 == placed["c"].in_offset + 4
    assert placed["b"].output_processors == placed["a_to_c_1"].output_processors \
        == placed["c"].processors
    assert placed["c"].passes == 2 and placed["c"].count == 48


@pytest.mark.parametrize("make,match", [
    (lambda: _skip_model(channels=(16, 8)),
     r"Concatenate 'cat': inputs with \[8, 16\] channels are not supported by MAX78000 \(the "
     r"synthesis tool concatenates inputs of one channel count\)\. Give the concatenated"),
    (lambda: _skip_model(channels=(6, 6)),
     r"inputs with 6 channels are not supported here \(a multiple of 4.*Round their filters"),
    (lambda: _skip_model(channels=(72, 72)),
     r"channels=144 \(2 inputs of 72\) is not supported by MAX78000: above 64 concatenated "
     r"channels each input is one pass of the reader, so each needs 33\.\.64 channels\. Use "
     r"33\.\.64 filters in the concatenated layers, or at most 32 \(side by side"),
])
def test_refusals_are_pinned(make, match):
    report = check_model(make(), "MAX78000")
    assert not report.ok
    assert any(__import__("re").search(match, e) for e in report.errors), report.errors


def test_refuses_the_model_input_and_two_readers():
    inputs = keras.Input((8, 8, 4))
    a = L.Conv2D(4, 3, padding=1, name="a")(inputs)
    cat = L.Concatenate(name="cat")([a, inputs])
    model = keras.Model(inputs, L.Conv2D(4, 1, padding=0)(cat))
    errors = " ".join(check_model(model).errors)
    assert "Concatenate 'cat' reads the model input" in errors
    b = L.Conv2D(4, 3, padding=1, name="b")(a)
    cat = L.Concatenate(name="cat2")([b, a])
    two = L.Add()([L.Conv2D(8, 1, padding=0)(cat), L.Conv2D(8, 1, padding=0)(cat)])
    errors = " ".join(check_model(keras.Model(inputs, two)).errors)
    assert "Concatenate 'cat2' feeds [" in errors and "Feed it to exactly one Conv2D" in errors
    errors = " ".join(check_model(keras.Model(inputs, cat)).errors)
    assert "Concatenate 'cat2' is the model output" in errors
