"""The network YAML for ai8xize.py: golden files, the vendor MNIST layout, layout rules."""

import re

import keras
import pytest
import yaml

from ai8x_nb import layers
from ai8x_nb.errors import ExportError
from ai8x_nb.export import synthesis_yaml
from ai8x_nb.models import get_model, model_names
from ai8x_nb.quantize import convert

from support import registry_device, set_deterministic_weights

VENDOR_MNIST_YAML = """
arch: ai85net5
dataset: MNIST
layers:
  - {pad: 1, activate: ReLU, out_offset: 0x2000, processors: 0x0000000000000001, data_format: CHW, op: conv2d}
  - {max_pool: 2, pool_stride: 2, pad: 2, activate: ReLU, out_offset: 0, processors: 0xfffffffffffffff0, op: conv2d}
  - {max_pool: 2, pool_stride: 2, pad: 1, activate: ReLU, out_offset: 0x2000, processors: 0xfffffffffffffff0, op: conv2d}
  - {avg_pool: 2, pool_stride: 2, pad: 1, activate: ReLU, out_offset: 0, processors: 0x0ffffffffffffff0, op: conv2d}
  - {op: mlp, flatten: true, out_offset: 0x1000, output_width: 32, processors: 0x0000000000000fff}
"""
"""networks/mnist-chw-ai85.yaml of ai8x-synthesis, as quoted in the ai8x reference (section 6)."""


def generate(model, dataset="TEST"):
    qmodel = convert(model)
    desc, warnings = synthesis_yaml.network_description(qmodel, arch=model.name,
                                                        dataset=dataset)
    return synthesis_yaml.to_yaml(desc), desc, warnings


@pytest.fixture(scope="module")
def seed_yaml():
    out = {}
    for name in model_names():
        model = set_deterministic_weights(get_model(name, device=registry_device(name)),
                                          seed=1)
        out[name] = generate(model, dataset=name.upper())
    return out


@pytest.mark.parametrize("name", model_names())
def test_seed_model_yaml_matches_golden(seed_yaml, name, check_golden):
    text, desc, _ = seed_yaml[name]
    check_golden(name, text)
    parsed = yaml.safe_load(text)
    assert parsed["arch"] == name
    assert len(parsed["layers"]) == len(desc["layers"])
    for layer in parsed["layers"]:
        # Every key the tool would default is written explicitly (pad: convolutions only).
        for key in ("processors", "out_offset", "operation", "activate"):
            assert key in layer
        assert ("pad" in layer) == (layer["operation"] in ("Conv1d", "Conv2d",
                                                           "ConvTranspose2d"))
    # Hex stays hex in the text (not 8192).
    for mask in re.findall(r"processors: (\S+)", text):
        assert re.fullmatch(r"0x[0-9a-f]{16}", mask)
    for offset in re.findall(r"out_offset: (\S+)", text):
        assert re.fullmatch(r"0x[0-9a-f]{4}", offset)


def test_mnist_layout_equals_vendor_yaml(seed_yaml):
    ours = yaml.safe_load(seed_yaml["mnist"][0])["layers"]
    vendor = yaml.safe_load(VENDOR_MNIST_YAML)["layers"]
    assert len(ours) == len(vendor)
    for i, (o, v) in enumerate(zip(ours, vendor)):
        assert o["processors"] == v["processors"], i
        assert o["out_offset"] == v["out_offset"], i
        assert o["operation"].lower() == v["op"].lower(), i
        assert o.get("pad", 0) == v.get("pad", 0), i
        for key in ("max_pool", "avg_pool", "pool_stride", "data_format", "flatten",
                    "output_width"):
            assert o.get(key) == v.get(key), (i, key)
    assert ours[0]["data_format"] == "CHW"
    assert [o["activate"] for o in ours] == ["ReLU"] * 4 + ["None"]


def test_kws20_yaml_switches_1d_to_2d(seed_yaml):
    parsed = yaml.safe_load(seed_yaml["kws20"][0])["layers"]
    assert [p["operation"] for p in parsed] == ["Conv1d"] * 4 + ["Conv2d"] * 5 + ["MLP"]
    assert parsed[0]["data_format"] == "HWC"
    assert parsed[0]["processors"] == 2**64 - 1          # 128 channels: 2 passes on 64
    assert parsed[1]["processors"] == 2**52 - 1          # 100 channels: 2 passes on 52
    assert [p["kernel_size"] for p in parsed[:4]] == [1, 1, 1, 1]
    assert parsed[4]["in_dim"] == [8, 16]
    assert all("in_dim" not in p for i, p in enumerate(parsed) if i != 4)
    assert parsed[-1]["flatten"] is True and parsed[-1]["output_width"] == 32
    mask = parsed[-1]["processors"]                      # 7 channels before the flatten
    assert bin(mask).count("1") == 7 and mask == 0x7f << ((mask & -mask).bit_length() - 1)
    assert parsed[-2]["processors"] & parsed[-1]["processors"] == 0


def test_large_layers_use_half_instance_offsets(seed_yaml):
    # rock: the first output is 64x64 HWC = 16 KiB per memory instance > 0x2000.
    parsed = yaml.safe_load(seed_yaml["rock"][0])["layers"]
    assert parsed[0]["data_format"] == "CHW" and parsed[0]["processors"] == 0x111
    assert [p["out_offset"] for p in parsed[:-1]] == [0x4000, 0] * 3
    # cifar100 ends in a wide 1x1 convolution.
    cifar100 = yaml.safe_load(seed_yaml["cifar100"][0])["layers"]
    assert cifar100[-1]["output_width"] == 32 and cifar100[-1]["kernel_size"] == "1x1"


def test_consecutive_layers_avoid_each_others_processors(seed_yaml):
    # Where a non-overlapping group exists it is taken (rock: 15 channels after 0x111;
    # cifar10's 60 channels after 0x111 cannot avoid processor 0..8 and keep the start).
    for name in ("mnist", "rock"):
        parsed = yaml.safe_load(seed_yaml[name][0])["layers"]
        assert parsed[1]["processors"] & parsed[0]["processors"] == 0, name
    rock = yaml.safe_load(seed_yaml["rock"][0])["layers"]
    assert rock[1]["processors"] == 0x7fff << 12


def test_shift_and_bits_come_from_the_quantized_model():
    model = set_deterministic_weights(get_model("mnist"), seed=3)
    qmodel = convert(model)
    desc, _ = synthesis_yaml.network_description(qmodel, arch="m", dataset="MNIST")
    assert [e["output_shift"] for e in desc["layers"]] == [q.output_shift for q in qmodel.layers]
    assert [e["quantization"] for e in desc["layers"]] == [8] * 5


def passthrough_model():
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding=1, activation="relu")(inp)
    x = layers.MaxPool2D(pool_size=(2, 1), pool_strides=2)(x)
    x = layers.Conv2D(8, 1, padding=0, activation="abs", pooling="avg", pool_size=2)(x)
    x = keras.layers.Flatten()(x)
    x = layers.Dense(4, wide=True)(x)
    return keras.Model(inp, x, name="pt")


def test_passthrough_and_non_square_pool():
    model = set_deterministic_weights(passthrough_model())
    text, _, _ = generate(model)
    parsed = yaml.safe_load(text)["layers"]
    pool = parsed[1]
    assert pool["operation"] == "None" and "pad" not in pool
    assert pool["max_pool"] == [2, 1] and pool["pool_stride"] == 2
    assert "output_shift" not in pool and "kernel_size" not in pool
    # The tool requires the layer after a passthrough to read the same processors.
    assert parsed[2]["processors"] == pool["processors"]
    assert parsed[2]["kernel_size"] == "1x1" and parsed[2]["activate"] == "Abs"
    assert parsed[2]["avg_pool"] == 2 and parsed[2]["pool_stride"] == 2


def test_dilated_conv1d_yaml_and_kernel_words():
    """`dilation` goes to the YAML with the layer's own kernel_size (the tool stretches it);
    kernel memory counts the stretched kernel: 3 taps 4 apart take 9 words' worth."""
    from ai8x_nb.check import check_model

    inp = keras.Input((40, 8))
    x = layers.Conv1D(16, 3, padding=1, dilation=4, activation="relu")(inp)
    x = layers.Conv1D(16, 3, padding=1, activation="relu")(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="dil"))
    parsed = yaml.safe_load(generate(model)[0])["layers"]
    assert parsed[0]["kernel_size"] == 3 and parsed[0]["dilation"] == 4
    assert parsed[0]["pad"] == 1 and "dilation" not in parsed[1]
    placed = check_model(model, "MAX78000").placement.layers
    assert [lp.kernel_values for lp in placed] == [9, 3]


def test_depthwise_and_pool_dilation_yaml_and_kernel_words():
    """`groups` and `pool_dilation` go to the YAML; a depthwise layer holds one kernel per
    input processor and pass (100 channels: 2 passes, 2 words), not one per output."""
    from ai8x_nb.check import check_model

    inp = keras.Input((8, 8, 100))
    x = layers.Conv2D(100, 3, padding=1, groups=100, pooling="avg", pool_size=(2, 1),
                      pool_strides=1, pool_dilation=(3, 1), device="MAX78002")(inp)
    x = layers.Conv2D(8, 1, padding=0, device="MAX78002")(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="dw"))
    parsed = yaml.safe_load(generate(model)[0])["layers"]
    assert parsed[0]["groups"] == 100 and parsed[0]["kernel_size"] == "3x3"
    assert parsed[0]["avg_pool"] == [2, 1] and parsed[0]["pool_dilation"] == [3, 1]
    assert "groups" not in parsed[1] and "pool_dilation" not in parsed[1]
    report = check_model(model, "MAX78002")
    assert report.ok, report.errors
    assert report.rows[0].weight_words_per_processor == 2


def test_binary_weights_yaml_checkpoint_and_the_no_mixing_rule():
    """`quantization: bin`, +-1 checkpoint weights; binary and 1-bit layers never mix."""
    from ai8x_nb.check import check_model
    from ai8x_nb.export.synthesis_checkpoint import device_weight

    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding=1, weight_bits="binary", device="MAX78002")(inp)
    x = layers.Conv2D(4, 1, padding=0, weight_bits=2, device="MAX78002")(x)
    model = set_deterministic_weights(keras.Model(inp, x, name="bin"))
    parsed = yaml.safe_load(generate(model)[0])["layers"]
    assert parsed[0]["quantization"] == "bin" and parsed[1]["quantization"] == 2
    weights = device_weight(convert(model).layers[0])
    assert set(weights.ravel().tolist()) == {-1, 1}
    assert check_model(model, "MAX78002").ok
    x = layers.Conv2D(4, 1, padding=0, weight_bits=1, device="MAX78002", name="one_bit")(x)
    report = check_model(keras.Model(inp, x), "MAX78002")
    assert not report.ok
    assert any("binary (+-1) weights and 'one_bit' 1-bit weights" in e for e in report.errors)


def test_unsupported_layer_is_refused():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inp)
    model = keras.Model(inp, x)
    from ai8x_nb.graph import trace_model

    class FakeQ:
        graph = trace_model(model)
        layers = []
        device = "MAX78000"

    with pytest.raises(ExportError, match="cannot run on the device"):
        synthesis_yaml.network_description(FakeQ(), arch="bad", dataset="X")
