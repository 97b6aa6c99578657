"""Streaming layers (`streaming=True`, the tool's `streaming: true` and `--fifo`).

The layer argument, `check_model`'s streaming rules (pinned messages), the circular buffer
length against the values the tool wrote into the vendor cats-dogs network's cnn.c (its
"Rollover" registers), the YAML and the synthesis command. The tool's verdicts on random
streaming models are in tests/test_synthesis_parity.py; the vendor's cats-dogs and facedet in
tests/test_zoo.py.
"""

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.check import check_model
from ai8x_nb.errors import DeviceLimitError
from ai8x_nb.export.synthesis_yaml import network_description
from ai8x_nb.graph import trace_model
from ai8x_nb.placement.streaming import rollover_words
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate

DEVICES = ("MAX78000", "MAX78002")


def _cats_dogs(device="MAX78000", streams=2, first_pad=1, channels=3, size=128):
    """The vendor's cats-dogs layer shapes (networks/cats-dogs-hwc.yaml), random weights."""
    x = keras.Input((size, size, channels))
    relu = dict(activation="relu", device=device)
    pool = dict(pooling="max", pool_size=2, pool_strides=2)
    y = L.Conv2D(16, 3, padding=first_pad, streaming=streams >= 1, name="conv1", **relu)(x)
    y = L.Conv2D(32, 3, padding=1, streaming=streams >= 2, name="conv2", **pool, **relu)(y)
    for i, filters in enumerate((64, 32, 32)):
        y = L.Conv2D(filters, 3, padding=1, name=f"conv{i + 3}", **pool, **relu)(y)
    y = L.Conv2D(16, 3, padding=1, name="conv6", **relu)(y)
    y = keras.layers.Flatten()(y)
    y = L.Dense(2, wide=True, device=device, name="fc")(y)
    return keras.Model(x, y, name="catsdogs")


def test_streaming_argument_round_trips_and_is_checked(tmp_path):
    layer = L.Conv2D(8, 3, streaming=True)
    assert layer.get_config()["streaming"] is True
    assert L.Conv2D.from_config(layer.get_config()).streaming is True
    with pytest.raises(DeviceLimitError, match=r"Conv2D 'bad': streaming='yes' is not supported "
                                               r"by MAX78000 \(True or False\)"):
        L.Conv2D(8, 3, streaming="yes", name="bad")
    model = _cats_dogs()
    path = tmp_path / "m.keras"
    model.save(path)
    assert keras.models.load_model(path).get_layer("conv2").streaming is True


@pytest.mark.parametrize("device, expected", [("MAX78000", [2, 526]), ("MAX78002", [2, 401])])
def test_buffer_length_is_the_tools(device, expected):
    """The tool wrote these rollovers for the vendor's cats-dogs (cnn.c, "// Rollover")."""
    graph = trace_model(_cats_dogs(device))
    layers = graph.layers
    got = [rollover_words(hw, layers, _device(device), last_streaming=hw.index == 1)
           for hw in layers[:2]]
    assert got == expected


def _device(name):
    from ai8x_nb.devices import get_device

    return get_device(name)


@pytest.mark.parametrize("device", DEVICES)
def test_streaming_model_is_accepted_and_streams_in_the_yaml(device):
    model = _cats_dogs(device)
    report = check_model(model, device)
    assert report.ok, report.errors
    rows = {row.name: row for row in report.rows}
    assert "streams" in rows["conv1"].notes and rows["conv1"].data_format == "HWC"
    desc, warnings = network_description(convert(model), arch="cd", dataset="CD", device=device)
    assert not warnings
    assert [e.get("streaming", False) for e in desc["layers"]] == [True, True] + [False] * 5
    assert desc["layers"][0]["data_format"] == "HWC"
    assert str(desc["layers"][0]["processors"]) == "0x0000000000000007"  # FIFO 0


@pytest.mark.parametrize("device", DEVICES)
def test_the_same_model_without_streaming_does_not_fit(device):
    report = check_model(_cats_dogs(device, streams=0), device)
    if device == "MAX78000":
        assert any("holds at most 8192 pixels per channel without streaming" in e
                   and "stream the first layers (streaming=True)" in e for e in report.errors)
    else:
        assert report.ok  # 16,384 pixels fit the MAX78002's 20,480


def test_streaming_rules_are_pinned():
    gap = _cats_dogs()
    gap.get_layer("conv1").streaming = False
    assert any(e.startswith("Layer 'conv2' (hardware layer 1) streams but the layer before it, "
                            "'conv1', does not") for e in check_model(gap).errors)
    wide = _cats_dogs(channels=8, size=64)
    assert any("Layer 'conv1' streams 8 input channels; the workbench feeds the FIFOs at most 4"
               in e for e in check_model(wide).errors)
    x = keras.Input((64, 64, 3))
    y = L.MaxPool2D(2, 2, streaming=True, name="pool")(x)
    y = L.Conv2D(4, 3, padding=1, name="c")(y)
    assert any("Layer 'pool' (hardware layer 0) is a pool-only layer with streaming=True; the "
               "workbench streams Conv2D layers only" in e
               for e in check_model(keras.Model(x, y)).errors)
    x = keras.Input((16, 16, 3))
    y = x
    for i in range(9):
        y = L.Conv2D(4, 3, padding=1, streaming=True, name=f"s{i}")(y)
    assert "9 layers have streaming=True; MAX78000 streams at most 8." in " ".join(
        check_model(keras.Model(x, y)).errors)


@pytest.mark.parametrize("device, refused", [("MAX78000", True), ("MAX78002", False)])
def test_final_streaming_padding(device, refused):
    """The tool: "Padding for the final streaming layer must not be zero" (MAX78000 only)."""
    model = _cats_dogs(device, streams=1, first_pad=0, size=96)
    errors = check_model(model, device).errors
    message = "Layer 'conv1' is the last streaming layer and has padding=0"
    assert any(message in e for e in errors) == refused, errors


def test_streaming_arithmetic_is_unchanged():
    model = _cats_dogs(size=64)
    plain = _cats_dogs(streams=0, size=64)
    plain.set_weights(model.get_weights())
    x = np.random.default_rng(0).integers(-128, 128, size=(2, 64, 64, 3))
    np.testing.assert_array_equal(simulate(convert(model), x), simulate(convert(plain), x))


def test_export_asks_for_the_fifo(tmp_path):
    from ai8x_nb.export import export_model

    model = _cats_dogs(size=96)
    x = np.random.default_rng(1).integers(-128, 128, size=(96, 96, 3))
    manifest = export_model(model, tmp_path / "e", targets=("synthesis",), sample=x)
    command = (tmp_path / "e" / "ai8xize_command.txt").read_text()
    assert " --fifo " in command
    assert "streaming: true" in manifest.path("synthesis_yaml").read_text()
