"""Model specs: seed round trips, parameter counts, per-row validation and error text."""

import json

import keras
import pytest

from ai8x_nb import layers
from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.models import SEED_SPECS, get_model, seed_input_shape, seed_spec
from ai8x_nb.spec import (
    SpecError,
    model_to_spec,
    normalize_spec,
    spec_to_model,
    spec_to_python,
    validate_spec,
)

# Parameter counts printed in the seed document (reference, section 5).
SEED_PARAMS = {"mnist": 71_158, "fashionmnist": 71_346, "cifar10": 72_228,
               "cifar100": 381_792, "kws20": 126_490, "rock": 54_693, "kws20_dilated": 158_090}


@pytest.mark.parametrize("name", sorted(SEED_PARAMS))
def test_seed_spec_round_trip_and_params(name):
    spec = seed_spec(name)
    model = spec_to_model(spec, seed_input_shape(name), None)
    assert model.count_params() == SEED_PARAMS[name]
    assert model.count_params() == get_model(name).count_params()
    assert model_to_spec(model) == spec
    assert json.loads(json.dumps(spec)) == spec  # JSON-able as is


@pytest.mark.parametrize("name", sorted(SEED_PARAMS))
def test_notebook_and_cli_build_the_same_model_with_the_same_names(name):
    """The notebooks build `seed_spec(name)`; `ai8x-nb train` builds `get_model(name)`."""
    from ai8x_nb.quantize import QATPolicy

    notebook = spec_to_model(seed_spec(name), seed_input_shape(name), None)
    cli = get_model(name)
    adapters = cli.layers[1:len(cli.layers) - len(notebook.layers) + 1]
    assert all(isinstance(l, keras.layers.Reshape) for l in adapters)  # input layout only
    pairs = list(zip(notebook.layers[1:], cli.layers[1 + len(adapters):], strict=True))
    for a, b in pairs:
        assert a.name == b.name and type(a) is type(b)
        assert {**a.get_config(), "name": None} == {**b.get_config(), "name": None}
    weighted = [l.name for l in cli.layers if getattr(l, "has_operator", False)]
    policy = QATPolicy(start_epoch=0, weight_bits=8, overrides={weighted[0]: {"weight_bits": 4}})
    for model in (notebook, cli):  # a policy written for one fits the other
        policy.check_layer_names([l.name for l in model.layers
                                  if getattr(l, "has_operator", False)])


def test_layer_names_follow_one_rule():
    assert [l.name for l in get_model("kws20").layers[1:]] == (
        [f"conv{i}" for i in range(1, 5)] + ["reshape"] + [f"conv{i}" for i in range(5, 10)]
        + ["flatten", "fc"])
    assert [l.name for l in get_model("rock").layers if "dropout" in l.name] == [
        "dropout1", "dropout2"]


def test_seed_names_cover_the_six_datasets():
    assert set(SEED_SPECS) == set(SEED_PARAMS)
    with pytest.raises(SpecError, match="No seed spec 'lenet'"):
        seed_spec("lenet")


def test_model_to_spec_of_the_seed_models_rebuilds_them():
    for name in ("mnist", "kws20"):
        model = get_model(name)
        spec = model_to_spec(model)
        rebuilt = spec_to_model(spec, tuple(model.inputs[0].shape[1:]))
        assert rebuilt.count_params() == model.count_params()
        assert [type(l) for l in rebuilt.layers[1:]] == [type(l) for l in model.layers[1:]]
    # mnist keeps its input Reshape((28, 28, 1)) as a first row.
    assert model_to_spec(get_model("mnist"))[0] == {"type": "reshape",
                                                    "target_shape": [28, 28, 1]}


def test_layer_options_survive_the_round_trip():
    spec = [
        {"type": "conv1d", "filters": 8, "kernel_size": 5, "padding": 2, "pooling": "avg",
         "pool_size": 2, "pool_strides": 1, "activation": "abs", "batch_norm": "affine",
         "weight_bits": 4, "l2": 0.001},
        {"type": "maxpool", "pool_size": 2},
        {"type": "reshape", "target_shape": [4, 3, 8]},
        {"type": "convtranspose2d", "filters": 4, "padding": 1, "activation": None},
        {"type": "avgpool", "pool_size": [2, 3], "pool_strides": [2, 2]},
        {"type": "flatten"},
        {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 5, "wide": True, "use_bias": False},
    ]
    model = spec_to_model(spec, (26, 16), 5)
    conv = model.layers[1]
    assert isinstance(conv, layers.Conv1D) and conv.weight_bits == 4
    assert conv.batch_norm == "affine" and conv.pool_strides == (1,)
    assert isinstance(model.layers[2], layers.MaxPool1D)
    assert isinstance(model.layers[5], layers.AvgPool2D)
    assert model.layers[5].pool_size == (2, 3)
    assert model_to_spec(model) == normalize_spec(spec)
    assert model.output_shape == (None, 5)


def test_bad_kernel_names_the_row_and_keeps_the_layer_text():
    spec = seed_spec("mnist")
    spec[1]["kernel_size"] = 5
    with pytest.raises(SpecError, match=r"row 1 \(conv2d\).*kernel_size=5.*MAX78000.*Use 3") as err:
        spec_to_model(spec, (28, 28, 1), 10)
    assert err.value.row == 1
    assert isinstance(err.value, Ai8xNbError) and isinstance(err.value, ValueError)


def test_device_decides_the_channel_limit():
    # Both devices take 1024 channels (the MAX78002's 2048 of ADI's README is not what its
    # synthesis tool accepts); the device still decides, e.g. the pool-only channel limit.
    spec = [{"type": "conv2d", "filters": 1500, "kernel_size": 1, "padding": 0},
            {"type": "flatten"}]
    for device in ("MAX78000", "MAX78002"):
        with pytest.raises(SpecError, match=rf"row 0.*filters=1500.*{device}.*1\.\.1024"):
            spec_to_model(spec, (2, 2, 3), device=device)
    spec = [{"type": "conv2d", "filters": 100, "kernel_size": 1, "padding": 0},
            {"type": "maxpool", "pool_size": 2}, {"type": "flatten"}]
    with pytest.raises(SpecError, match=r"row 1.*pool-only layer pools at most 64"):
        spec_to_model(spec, (4, 4, 3), device="MAX78000")
    model = spec_to_model(spec, (4, 4, 3), device="MAX78002")
    assert model.output_shape == (None, 400)


def test_malformed_rows():
    with pytest.raises(SpecError, match="row 0: unknown type 'lstm'"):
        spec_to_model([{"type": "lstm"}], (4, 4, 1))
    with pytest.raises(SpecError, match=r"row 1 \(dense\): unknown field\(s\) filters"):
        spec_to_model([{"type": "flatten"}, {"type": "dense", "filters": 3}], (4, 4, 1))
    with pytest.raises(SpecError, match="list of dicts"):
        spec_to_model({"type": "flatten"}, (4, 4, 1))
    with pytest.raises(SpecError, match="empty"):
        spec_to_model([], (4, 4, 1))


def test_wrong_number_of_classes():
    with pytest.raises(SpecError, match=r"row 5: the model outputs shape \(10,\) but the dataset "
                                        r"has 21 classes"):
        spec_to_model(seed_spec("mnist"), (28, 28, 1), 21)


def test_validate_spec_reports_every_row():
    spec = seed_spec("mnist")
    spec[1]["kernel_size"] = 5
    spec[2]["filters"] = 2000
    spec[5]["units"] = 1500
    results = validate_spec(spec, (28, 28, 1), "MAX78000", num_classes=10)
    assert [r[0] for r in results] == [True, False, False, True, True, False]
    assert "kernel_size=5" in results[1][1] and "filters=2000" in results[2][1]
    # Failed rows are skipped: row 3 sees row 0's 28x28x60 output, avg-pooled to 14x14.
    assert results[3][2] == (14, 14, 12) and results[3][3] == 9 * 60 * 12
    assert results[4][2] == (14 * 14 * 12,)
    assert "units=1500" in results[5][1] and "1..1024 outputs" in results[5][1]
    # A valid last row with the wrong output size fails the class check.
    spec[5]["units"] = 12
    assert "has 10 classes" in validate_spec(spec, (28, 28, 1), num_classes=10)[5][1]

    good = validate_spec(seed_spec("mnist"), (28, 28, 1), "MAX78000", num_classes=10)
    assert all(ok for ok, *_ in good)
    assert [r[2] for r in good] == [(28, 28, 60), (16, 16, 60), (8, 8, 56), (4, 4, 12),
                                    (192,), (10,)]
    assert sum(r[3] for r in good) == SEED_PARAMS["mnist"]


def test_model_to_spec_refuses_what_a_spec_cannot_hold():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    with pytest.raises(SpecError, match="Conv2D.*no model-spec form"):
        model_to_spec(keras.Model(inputs, x))
    a = layers.Conv2D(4, 3, padding=1)(inputs)
    b = layers.Conv2D(4, 3, padding=1)(inputs)
    with pytest.raises(SpecError, match="single chain"):
        model_to_spec(keras.Model(inputs, layers.Add()([a, b])))


def test_spec_to_python_is_a_literal_that_evaluates_to_the_spec():
    spec = seed_spec("kws20")
    text = spec_to_python(spec)
    assert text.startswith("model_spec = [\n") and text.count("\n") == len(spec) + 1
    namespace = {}
    exec(text, {}, namespace)  # noqa: S102 - our own generated literal
    assert namespace["model_spec"] == spec
