"""Whole-model check, processor allocation, model sources and the `ai8x-nb check` CLI."""

import json
import math
import re

import numpy as np
import pytest

import keras

from ai8x_nb import layers as L
from ai8x_nb.check import allocate_processors, check_model
from ai8x_nb.errors import DeviceLimitError, ModelCheckError
from ai8x_nb.modelio.source import (ModelSourceNotFoundError, NoModelInSourceError,
                                 load_model_source)
from seed_models_ai8xtf import SEED_BUILDERS, SEED_PARAMS


@pytest.fixture(scope="module")
def seed_reports():
    models = {name: build() for name, build in SEED_BUILDERS.items()}
    return models, {name: check_model(m) for name, m in models.items()}


def _errors(report):
    return "\n".join(report.errors)


# ------------------------------------------------------------------------ seed models
@pytest.mark.parametrize("name", list(SEED_PARAMS))
def test_seed_models_pass(seed_reports, name):
    models, reports = seed_reports
    report = reports[name]
    assert report.ok, _errors(report)
    assert report.totals["parameters"] == SEED_PARAMS[name] == models[name].count_params()
    assert report.totals["layers"] == len(report.rows) <= 32
    assert report.totals["weight_bytes"] <= report.totals["weight_memory_bytes"]
    assert report.totals["weight_words_max_processor"] <= 768
    json.dumps(report.to_dict())  # JSON-able
    report.raise_if_errors()


def test_mnist_rows_by_hand(seed_reports):
    report = seed_reports[1]["mnist"]
    rows = report.rows
    assert [r.op for r in rows] == ["conv2d"] * 4 + ["linear"]
    # The placement the YAML gets: the vendor's own networks/mnist-chw-ai85.yaml masks.
    assert [r.processor_mask for r in rows] == [
        0x1, 0xFFFFFFFFFFFFFFF0, 0xFFFFFFFFFFFFFFF0, 0x0FFFFFFFFFFFFFF0, 0xFFF]
    assert [r.out_offset for r in rows] == [0x2000, 0, 0x2000, 0, 0x1000]
    assert rows[3].output_mask == 0xFFF and rows[4].output_mask == 0x3FF
    assert rows[0].data_format == "CHW" and rows[1].data_format == "HWC"
    assert [r.pooling for r in rows] == ["", "max 2x2/2", "max 2x2/2", "avg 2x2/2", ""]
    # 3x3 8-bit kernels are one 72-bit word each: words per processor = out channels.
    assert [r.weight_words_per_processor for r in rows[:4]] == [60, 60, 56, 12]
    # The linear layer: 12 processors, each 16 pixels x 10 outputs x 8 bits / 72 -> 18 words.
    assert rows[4].processors == 12 and rows[4].weight_words_per_processor == math.ceil(160 * 8 / 72)
    words = 60 + 60 * 60 + 60 * 56 + 56 * 12 + 12 * 18
    assert report.totals["weight_bytes"] == words * 9
    assert report.totals["bias_bytes"] == 10 and rows[4].bias_bytes == 10
    assert rows[0].in_bytes == 28 * 28 and rows[0].out_bytes == 28 * 28 * 60
    assert rows[4].out_bytes == 10 * 4  # wide: 32-bit outputs
    text = str(report)
    assert "words/p" in text and "avg 2x2/2" in text and text.rstrip().endswith("OK")


def test_cifar100_multipass_rows(seed_reports):
    rows = seed_reports[1]["cifar100"].rows
    r = rows[10]  # 96 -> 512, 1x1: 2 passes on 48 processors, 2 * 512 weights each
    assert (r.in_channels, r.passes, r.processors, r.kernel) == (96, 2, 48, "1x1")
    assert r.weight_words_per_processor == math.ceil(2 * 512 * 8 / 72)
    assert rows[11].passes == 8 and rows[11].processors == 64


def test_kws20_first_layer_is_hwc_multipass(seed_reports):
    row = seed_reports[1]["kws20"].rows[0]
    assert (row.data_format, row.passes, row.processors, row.kernel) == ("HWC", 2, 64, "k1")


# ---------------------------------------------------------------- failing models
def _seq(shape, *layers, name=None):
    return keras.Sequential([keras.Input(shape), *layers], name=name)


def test_layer_over_weight_budget():
    model = _seq((4, 4, 1024), L.Conv2D(1024, 3, padding=1))
    report = check_model(model)
    assert not report.ok
    assert "weight memory over budget" in _errors(report)
    assert report.rows[0].passes == 16 and report.rows[0].weight_words_per_processor == 16 * 1024


def test_total_weight_budget_and_max78002():
    model = _seq((4, 4, 64), *[L.Conv2D(64, 3, padding=1) for _ in range(13)])
    report = check_model(model)
    assert "Weights need 479232 bytes" in _errors(report)
    assert "weight memory over budget" in _errors(report)
    assert check_model(model, "MAX78002").ok


def test_per_processor_weight_budget():
    # 17 layers of 48 words on 48 processors: 352,512 bytes fit the 442,368 in total, but every
    # 48-processor block covers processors 16..47, which would need 17 x 48 = 816 > 768 words.
    model = _seq((4, 4, 48), *[L.Conv2D(48, 3, padding=1, use_bias=False) for _ in range(17)])
    report = check_model(model)
    assert report.totals["weight_bytes"] <= report.totals["weight_memory_bytes"]
    assert "kernel memory exhausted" in _errors(report)
    assert "needs" not in _errors(report) or "free words" in _errors(report)
    assert re.search(r"Layer 'conv2d_\d+' \(hardware layer 1\d\): its kernels need 48 free words "
                     r"on each of its 48 processors", _errors(report))
    assert check_model(model, "MAX78002").ok


def test_too_many_layers_and_max78002():
    model = _seq((4, 4, 4), *[L.Conv2D(4, 1, padding=0) for _ in range(33)])
    report = check_model(model)
    assert report.totals["layers"] == 33
    assert "33 hardware layers; MAX78000 runs at most 32" in _errors(report)
    assert check_model(model, device="MAX78002").ok


def test_reused_layer_instance():
    conv = L.Conv2D(4, 3, padding=1)
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, conv(conv(inputs)))
    report = check_model(model)
    assert "used 2 times" in _errors(report) and "one layer instance per use" in _errors(report)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = L.Conv2D(4, 3, padding=1)

    def call(self, x):
        return self.conv(x)


def test_subclassed_model_gets_conversion_advice():
    model = _Subclassed()
    model(np.zeros((1, 6, 6, 2), np.float32))
    report = check_model(model)
    assert not report.ok
    assert "subclassed" in _errors(report)
    assert "functional API" in _errors(report) and "keras.Sequential" in _errors(report)
    with pytest.raises(ModelCheckError, match="subclassed") as info:
        report.raise_if_errors()
    assert info.value.report is report


def test_plain_keras_strided_conv_fails():
    model = _seq((8, 8, 3), keras.layers.Conv2D(8, 3, strides=2), keras.layers.Flatten(),
                 L.Dense(10, wide=True))
    report = check_model(model)
    assert "strides=(2, 2)" in _errors(report) and "pooling" in _errors(report)
    assert report.rows[0].op == "unsupported"


def test_plain_keras_relu_fails_but_dropout_passes():
    bad = _seq((8, 8, 3), L.Conv2D(8, 3), keras.layers.ReLU())
    assert "activation='relu'" in _errors(check_model(bad))
    good = _seq((8, 8, 3), L.Conv2D(8, 3, activation="relu"), keras.layers.Dropout(0.3),
                keras.layers.SpatialDropout2D(0.1), L.Conv2D(4, 3), keras.layers.Flatten(),
                keras.layers.Dropout(0.2), L.Dense(3, wide=True))
    report = check_model(good)
    assert report.ok, _errors(report)
    assert len(report.rows) == 3 and "dropout" in " ".join(report.totals["folded_layers"])


def test_flatten_pixel_limit():
    model = _seq((17, 17, 3), L.Conv2D(3, 3, padding=1), keras.layers.Flatten(),
                 L.Dense(10, wide=True))
    report = check_model(model)
    assert "flattens 289 pixels per channel" in _errors(report)
    assert "H*W <= 256" in _errors(report)


def test_pool_only_layer_on_many_channels():
    # The MAX78002 pools 100 channels on their own; the MAX78000 only down to 1x1.
    model = _seq((4, 4, 64), L.Conv2D(100, 1, padding=0, device="MAX78002"),
                 L.MaxPool2D(2, device="MAX78002"))
    assert check_model(model, "MAX78002").ok
    assert "pool-only layer handles at most 64 channels" in _errors(check_model(model))
    good = _seq((4, 4, 64), L.Conv2D(100, 1, padding=0), L.AvgPool2D(4))
    assert check_model(good).ok


def test_padded_conv1d_over_64_channels_on_max78002():
    model = _seq((16, 100), L.Conv1D(8, 3, padding=1), L.Conv1D(4, 1, padding=0))
    assert check_model(model).ok
    errors = _errors(check_model(model, "MAX78002"))
    assert "Conv1D with padding=1 on 100 input channels" in errors and "one pass" in errors


@pytest.mark.parametrize("make,match", [
    # Layers refuse these at construction; check_model still reports them for layers that
    # come from elsewhere (a model built for the other device, an older saved model).
    (lambda layer: setattr(layer, "padding", 1) or layer, "padding smaller than the kernel"),
    (lambda layer: setattr(layer, "pool_strides", (2, 1)) or layer, "same stride in both"),
])
def test_rules_also_checked_on_the_model(make, match):
    layer = L.Conv2D(4, 1, padding=0, pooling="max", pool_size=2)
    model = _seq((8, 8, 3), layer)
    make(layer)
    assert match in _errors(check_model(model))


def test_output_must_fit_at_its_offset():
    # 80x80x16 HWC output: 25,600 bytes per instance; with its input it needs both halves.
    model = _seq((80, 80, 3), L.Conv2D(16, 3, padding=1), L.Conv2D(16, 3, padding=1),
                 L.Conv2D(4, 3, padding=1, pooling="max", pool_size=4, pool_strides=4))
    report = check_model(model)
    assert report.ok, _errors(report)
    offsets = [r.out_offset for r in report.rows]
    rows = report.rows
    for r in rows:  # every output fits in its instance at its offset
        assert r.out_offset + r.out_instance_bytes <= 0x8000
    # layer 1 reads 25,600 bytes and writes 25,600 bytes: they cannot share an instance
    assert rows[1].processor_mask & rows[2].processor_mask == 0 or offsets[1] >= 25600
    too_big = _seq((90, 90, 3), L.Conv2D(16, 3, padding=1), L.Conv2D(16, 3, padding=1))
    assert "writes 8100 pixels" not in _errors(check_model(too_big))


def test_data_memory_pixel_limits():
    # First layer CHW: 100x100 = 10,000 pixels fit (32,768), but the HWC output does not (8,192).
    model = _seq((100, 100, 8), L.Conv2D(8, 3, padding=1))
    report = check_model(model)
    assert report.rows[0].data_format == "CHW"
    assert "writes 10000 pixels" in _errors(report) and "8192" in _errors(report)
    assert "reads" not in _errors(report)
    hwc = _seq((100, 100, 20), L.Conv2D(8, 1, padding=0, pooling="max", pool_size=4))
    assert "reads 10000 pixels" in _errors(check_model(hwc))
    assert check_model(hwc, "MAX78002").ok


def test_bias_limits():
    per_layer = _seq((2, 2, 8), L.Conv2D(600, 1, padding=0))
    assert "bias for 600 outputs" in _errors(check_model(per_layer))
    assert check_model(_seq((2, 2, 8), L.Conv2D(600, 1, padding=0, use_bias=False))).ok
    total = _seq((2, 2, 8), *[L.Conv2D(500, 1, padding=0) for _ in range(5)])
    report = check_model(total)
    assert report.totals["bias_bytes"] == 2500 and "bias memory over budget" in _errors(report)
    # 3 x 300 bytes fit in 2 KiB in total but not in 4 quadrants of 512 bytes... they do:
    # one per quadrant. Five of them do not.
    five = _seq((2, 2, 8), *[L.Conv2D(300, 1, padding=0) for _ in range(5)])
    report = check_model(five)
    assert report.totals["bias_bytes"] == 1500
    assert "300 bias bytes do not fit into one quadrant's bias memory" in _errors(report)
    # Biases go only to quadrants the network uses (reads from, or writes its output to).
    small = check_model(_seq((2, 2, 4), L.Conv2D(8, 1, padding=0)))
    assert small.totals["bias_quadrants"] == [0]
    assert small.totals["bias_bytes_per_quadrant"] == [8, 0, 0, 0]
    assert small.rows[0].bias_quadrant == 0
    wide = check_model(_seq((2, 2, 4), L.Conv2D(8, 1, padding=0), L.Conv2D(40, 1, padding=0)))
    assert wide.totals["bias_quadrants"] == [0, 1, 2]


def test_wide_layer_must_be_last():
    model = _seq((4, 4, 3), L.Conv2D(8, 3, wide=True), L.Conv2D(4, 3))
    assert "not the last layer" in _errors(check_model(model))


def _residual(device="MAX78000", use_bias=False, stem=True):
    inputs = keras.Input((4, 4, 8))
    x = L.Conv2D(8, 3, padding=1, device=device, name="stem")(inputs) if stem else inputs
    a = L.Conv2D(8, 3, padding=1, device=device, name="a")(x)
    b = L.Conv2D(8, 1, padding=0, device=device, name="b")(x)
    out = L.Conv2D(4, 3, padding=1, use_bias=use_bias, device=device,
                   name="c")(L.Add(device=device, name="add")([a, b]))
    return keras.Model(inputs, out)


def test_add_runs_inside_the_next_convolution():
    report = check_model(_residual())
    assert report.ok, _errors(report)
    assert [(r.name, r.op, r.eltwise, r.write_gap) for r in report.rows] == [
        ("stem", "conv2d", "", 0), ("a", "conv2d", "", 1), ("b", "conv2d", "", 1),
        ("c", "conv2d", "add", 0)]
    assert report.totals["layers"] == 4 and "Add 'add'" in report.rows[-1].notes
    a, b, c = report.rows[1:]
    # Both operands go to the processors the add reads, interleaved 4 bytes apart.
    assert a.output_mask == b.output_mask == c.processor_mask
    assert (a.out_offset, b.out_offset) == (c.in_offset, c.in_offset + 4)


def test_add_before_a_biased_convolution_is_a_layer_on_max78002():
    # The tool runs an element-wise convolution with a bias on the MAX78000 only.
    assert check_model(_residual("MAX78000", use_bias=True), "MAX78000").totals["layers"] == 4
    report = check_model(_residual("MAX78002", use_bias=True), "MAX78002")
    assert report.ok, _errors(report)
    assert [r.op for r in report.rows] == ["conv2d", "conv2d", "conv2d", "add", "conv2d"]
    assert report.totals["layers"] == 5


def test_model_input_read_by_two_layers():
    report = check_model(_residual(stem=False))
    assert not report.ok
    assert re.search(r"Layer 'a' \(hardware layer 0\): no processor mask .* the model input "
                     r"can feed only the first layer", _errors(report))


def test_unbuilt_model():
    report = check_model(keras.Sequential([L.Conv2D(4)]))
    assert not report.ok and "not built" in _errors(report)


# -------------------------------------------------------------- processor allocation
@pytest.mark.parametrize("channels,kwargs,expected", [
    (1, {}, (0x1, 1, 1)),
    (60, {}, (0x0FFFFFFFFFFFFFFF, 1, 60)),
    (64, {}, (2**64 - 1, 1, 64)),
    (3, dict(first_layer=True), (0x111, 1, 3)),
    (1, dict(first_layer=True), (0x1, 1, 1)),
    (16, dict(first_layer=True), (0x1111111111111111, 1, 16)),
    (20, dict(first_layer=True), (2**20 - 1, 1, 20)),   # too many for CHW: HWC
    (100, {}, (2**52 - 1, 2, 52)),
    (128, {}, (2**64 - 1, 2, 64)),
    (65, {}, (2**36 - 1, 2, 36)),
    (1024, {}, (2**64 - 1, 16, 64)),
    (60, dict(offset=4), (0xFFFFFFFFFFFFFFF0, 1, 60)),    # the vendor's MNIST layers 2-3
    (3, dict(first_layer=True, offset=1), (0x222, 1, 3)),
])
def test_allocate_processors(channels, kwargs, expected):
    assert allocate_processors(channels, "MAX78000", **kwargs) == expected


@pytest.mark.parametrize("channels,kwargs,match", [
    (0, {}, "0 input channels"),
    (1025, {}, r"1\.\.1024 channels"),
    (60, dict(offset=5), "offset of at most 4"),
    (16, dict(first_layer=True, offset=4), "need processor 64"),
])
def test_allocate_processors_errors(channels, kwargs, match):
    with pytest.raises(DeviceLimitError, match=match):
        allocate_processors(channels, **kwargs)


def test_allocate_processors_max78002_channels():
    # The tool allows 16 passes of 64 on both devices (ADI's README says 2048 for MAX78002).
    assert allocate_processors(1024, "MAX78002") == (2**64 - 1, 16, 64)
    with pytest.raises(DeviceLimitError, match=r"1\.\.1024 channels"):
        allocate_processors(2048, "MAX78002")


# ------------------------------------------------------------------ model sources
GOOD_PY = """
import keras
from ai8x_nb import layers as L

def build_model(device="MAX78000"):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding=1, activation="relu", device=device)(inputs)
    x = L.Conv2D(4, 3, padding=1, pooling="max", pool_size=2, device=device)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, L.Dense(3, wide=True)(x), name="good_net")
"""

BAD_PY = """
import keras
from ai8x_nb import layers as L

model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, strides=2),
                          keras.layers.Flatten(), L.Dense(3, wide=True)], name="bad_net")
"""


@pytest.fixture()
def model_files(tmp_path):
    (tmp_path / "good_net.py").write_text(GOOD_PY)
    (tmp_path / "bad_net.py").write_text(BAD_PY)
    (tmp_path / "empty_net.py").write_text("x = 1\n")
    return tmp_path


def test_load_model_source_kinds(model_files, monkeypatch):
    good = load_model_source(model_files / "good_net.py")
    assert good.name == "good_net"
    assert load_model_source(f"{model_files / 'bad_net.py'}:model").name == "bad_net"
    path = model_files / "saved.keras"
    good.save(path)
    assert load_model_source(str(path)).count_params() == good.count_params()
    monkeypatch.syspath_prepend(str(model_files))
    assert load_model_source("good_net").name == "good_net"
    with pytest.raises(NoModelInSourceError, match="build_model"):
        load_model_source(model_files / "empty_net.py")
    with pytest.raises(ModelSourceNotFoundError, match="does not exist"):
        load_model_source(model_files / "missing.py")
    with pytest.raises(ModelSourceNotFoundError, match="does not exist"):
        load_model_source(model_files / "missing.keras")
    with pytest.raises(ModelSourceNotFoundError, match="No model file, module or seed model"):
        load_model_source("no_such_model_xyz")


def test_load_model_source_seed_name():
    models = pytest.importorskip("ai8x_nb.models")
    model = load_model_source("mnist")
    assert model.count_params() == models.get_model("mnist").count_params() == 71158


# ----------------------------------------------------------------------------- CLI
def _cli(argv):
    """`ai8x-nb` main; while sibling subcommands are still missing, the check subcommand alone."""
    try:
        from ai8x_nb.cli import build_parser, main

        build_parser()
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("ai8x_nb.cli."):
            raise
        import argparse

        from ai8x_nb.cli import check as check_cli
        from ai8x_nb.errors import Ai8xNbError

        parser = argparse.ArgumentParser(prog="ai8x-nb")
        check_cli.add_parser(parser.add_subparsers(dest="command"))
        args = parser.parse_args(argv)
        try:
            return check_cli.run(args)
        except Ai8xNbError as exc:
            print(f"error: {exc}")
            return 2
    return main(argv)


def test_cli_check_good_and_bad(model_files, capsys):
    assert _cli(["check", str(model_files / "good_net.py")]) == 0
    out = capsys.readouterr().out
    assert "good_net" in out and "conv2d" in out and out.rstrip().endswith("OK")

    assert _cli(["check", str(model_files / "bad_net.py")]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "strides" in out and "FAILED" in out

    assert _cli(["check", str(model_files / "good_net.py"), "--json",
                 "--device", "MAX78002"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["device"] == "MAX78002" and len(data["rows"]) == 3
    assert data["rows"][0]["processor_mask"] == "0x0000000000000111"


def test_cli_check_missing_file(model_files, capsys):
    assert _cli(["check", str(model_files / "missing.py")]) == 2
    captured = capsys.readouterr()
    assert "does not exist" in captured.out + captured.err


def test_linear_input_limits_depend_on_flatten():
    # After a Flatten a linear layer takes up to C*H*W = 16,384 values (here 128 x 4 x 4 = 2048).
    flat = _seq((4, 4, 128), L.Conv2D(128, 1, padding=0), keras.layers.Flatten(),
                L.Dense(10, wide=True))
    assert check_model(flat).ok, _errors(check_model(flat))
    # On an already flat input the limit is 1024 features.
    plain = _seq((1025,), L.Dense(10, wide=True))
    assert "1025 input features" in _errors(check_model(plain))
    assert "at most 1024" in _errors(check_model(plain))


def test_row_limits_as_the_tool_counts_them():
    # ai8x-synthesis: at most 1024 rows on the MAX78000, and its row counter needs
    # rows + 2 * padding <= 1024 (1023 rows with padding 1 stop the tool; 1022 pass).
    assert check_model(_seq((1024, 4), L.Conv1D(4, 3, padding=0))).ok
    assert check_model(_seq((1022, 4), L.Conv1D(4, 3, padding=1))).ok
    errors = _errors(check_model(_seq((1023, 4), L.Conv1D(4, 3, padding=1))))
    assert "reads 1025 rows/columns including padding" in errors and "1024" in errors
    with pytest.raises(DeviceLimitError, match="at most 1024 rows"):
        _seq((1025, 4), L.Conv1D(4, 3, padding=0))
    assert check_model(_seq((2048, 4), L.Conv1D(4, 3, padding=0, device="MAX78002")),
                       "MAX78002").ok


# ------------------------------------------------------------------------ latency
def test_latency_and_operations_of_a_small_layer_by_hand():
    """The tool's latency model worked by hand for a 1x1 convolution, 4 -> 8 channels on 4x4:
    each of the 4 rows reads 4 pixels (2 cycles each: read, write TRAM) and writes 4 pixels x 8
    output channels, 160 cycles, plus 1 for start-up; ReLU compares every output."""
    inp = keras.Input((4, 4, 4))
    x = L.Conv2D(8, 1, padding=0, activation="relu", name="c")(inp)
    report = check_model(keras.Model(inp, x))
    assert report.ok, _errors(report)
    row = report.rows[0]
    assert row.cycles == 4 * (4 * 2 + 4 * 8) == 160
    assert (row.macc, row.comp, row.add, row.mul, row.bitwise) == (4 * 8 * 16, 8 * 16, 0, 0, 0)
    t = report.totals
    assert t["latency_cycles"] == 161 and t["clock_mhz"] == 50 and t["latency_us"] == 3.22
    assert not t["latency_estimate"] and t["ops"]["total"] == 512 + 128
    assert "latency             161 cycles = 3.22 us at 50 MHz (as ai8xize.py" in str(report)
    slow = check_model(keras.Model(inp, x), clock_mhz=25)
    assert slow.totals["latency_us"] == 6.44
    with pytest.raises(ModelCheckError, match="clock_mhz=0.*positive number of MHz"):
        check_model(keras.Model(inp, x), clock_mhz=0)


def test_latency_on_max78002_is_labelled_an_estimate(seed_reports):
    models, _ = seed_reports
    report = check_model(models["mnist"], "MAX78002")
    assert report.totals["latency_estimate"] and report.totals["latency_cycles"] > 0
    assert "estimate: the MAX78000 formula; ai8xize.py has no latency model for MAX78002" \
        in str(report)
    assert json.loads(json.dumps(report.to_dict()))["rows"][0]["cycles"] > 0


def test_tool_log_latency_and_ops_are_read():
    from ai8x_nb.synthesis.toollog import parse_latency, parse_ops

    log = """ESTIMATED LATENCY
Startup                   1
Layer 0              15,420
Layer 1               2,001 (est)
                 ==========
Total                17,422 cycles (est)

NOTICE: Layer 0: Use --mlator to optimize cnn_unload() for 8-bit output values.
SUMMARY OF OPS
Hardware: 6,235,200 ops (6,220,800 macc; 14,400 comp; 0 add; 0 mul; 0 bitwise)
  Layer 0: 6,235,200 ops (6,220,800 macc; 14,400 comp; 0 add; 0 mul; 0 bitwise)
  Layer 1: 7 ops (0 macc; 0 comp; 4 add; 0 mul; 3 bitwise)

RESOURCE USAGE
"""
    assert parse_latency(log) == {"startup": 1, "layers": [15420, 2001], "total": 17422,
                                  "estimated": [1]}
    assert parse_ops(log) == [
        {"ops": 6235200, "macc": 6220800, "comp": 14400, "add": 0, "mul": 0, "bitwise": 0},
        {"ops": 7, "macc": 0, "comp": 0, "add": 4, "mul": 0, "bitwise": 3}]
    assert parse_latency("no table") is None and parse_ops("") == []
