"""Seed models: exact parameter counts, shapes, device-valid structure, training defaults."""

import keras
import numpy as np
import pytest

from ai8x_nb import layers
from ai8x_nb.graph import trace_model
from ai8x_nb.models import MODELS, UnknownModelError, get_model, model_for_dataset, model_names
from support import registry_device
from ai8x_nb.models.schedules import StepSchedule

# Independent expectations: reference section 5 (seed document) and the input layouts.
EXPECTED = {
    "mnist": (71_158, (28, 28), 10),
    "fashionmnist": (71_346, (28, 28), 10),
    "cifar10": (72_228, (32, 32, 3), 10),
    "cifar100": (381_792, (32, 32, 3), 100),
    "kws20": (126_490, (128, 128), 21),
    "rock": (54_693, (64, 64, 3), 3),
    # ADI's ai85ressimplenet: the cifar100 convolutions plus three Adds (no parameters).
    "ressimplenet": (381_792, (32, 32, 3), 100),
    # The kws20 layers with three 3-tap dilated Conv1D (100*100*3 + 100*50*3 + 50*16*3 more).
    "kws20_dilated": (158_090, (128, 128), 21),
    # Stem, five inverted-residual blocks (depthwise), head, wide classifier; BatchNorm.
    "mobilenetv2_cifar10": (77_794, (32, 32, 3), 10),
}


@pytest.fixture(scope="module")
def built():
    return {name: get_model(name, device=registry_device(name)) for name in EXPECTED}


def test_registry_lists_the_seed_models():
    assert model_names() == list(EXPECTED)
    assert set(MODELS) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_param_count_shapes_and_forward(built, name):
    params, input_shape, classes = EXPECTED[name]
    model = built[name]
    assert model.count_params() == params
    assert MODELS[name].params == params
    assert tuple(model.inputs[0].shape[1:]) == input_shape
    assert tuple(model.outputs[0].shape[1:]) == (classes,)
    x = np.random.default_rng(0).integers(-128, 128, size=(2, *input_shape)) / 128.0
    y = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert y.shape == (2, classes)
    assert np.all(np.isfinite(y))
    assert np.any(y != 0)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_models_trace_onto_hardware_layers_without_problems(built, name):
    graph = trace_model(built[name])
    assert graph.problems == []
    assert all(hw.op != "unsupported" for hw in graph.layers)
    last = graph.layers[graph.output_index].layer
    assert last.wide and last.activation is None
    # MobileNetV2's projections are linear (no activation), by design; its Adds are layers
    # of their own on the MAX78002 (before a convolution with a bias).
    assert all(hw.layer.activation == "relu" for hw in graph.layers
               if hw.layer is not last and hw.op not in ("passthrough", "add")
               and not hw.name.endswith("_project"))


def test_mnist_biases_only_on_the_linear_layer(built):
    convs = [l for l in built["mnist"].layers if isinstance(l, layers.Conv2D)]
    assert [l.bias is None for l in convs] == [True] * 4
    assert built["mnist"].get_layer("fc").bias is not None
    assert [l.padding for l in convs] == [1, 2, 1, 1]
    assert [l.pooling for l in convs] == [None, "max", "max", "avg"]
    fashion = [l for l in built["fashionmnist"].layers if isinstance(l, layers.HardwareLayer)]
    assert all(l.bias is not None for l in fashion)


def test_cifar100_reaches_1x1_before_the_wide_classifier(built):
    model = built["cifar100"]
    convs = [l for l in model.layers if isinstance(l, layers.Conv2D)]
    assert len(convs) == 14
    assert all(l.bias is None for l in convs)
    assert tuple(convs[-1].input.shape[1:]) == (1, 1, 128)
    assert convs[-1].kernel_size == 1 and convs[-1].wide


def test_kws20_no_bias_and_l2_everywhere(built):
    hw = [l for l in built["kws20"].layers if isinstance(l, layers.HardwareLayer)]
    assert len(hw) == 10
    assert all(l.bias is None for l in hw)
    assert all(isinstance(l.kernel_regularizer, keras.regularizers.L2) for l in hw)
    assert all(np.isclose(l.kernel_regularizer.l2, 1e-4) for l in hw)
    assert len(built["kws20"].losses) == 10


def test_device_argument_reaches_the_layers():
    model = get_model("mnist", device="MAX78002")
    assert {l.device.name for l in model.layers if isinstance(l, layers.HardwareLayer)} == {
        "MAX78002"}


def test_unknown_model_names_the_choices():
    with pytest.raises(UnknownModelError, match=r"'lenet'.*mnist, fashionmnist"):
        get_model("lenet")


def test_training_defaults_as_data():
    table = {n: (i.batch_size, i.lr, i.optimizer, i.dataset) for n, i in MODELS.items()}
    assert table == {
        "mnist": (256, 1e-3, "adam", "mnist"),
        "fashionmnist": (256, 1e-3, "adam", "fashionmnist"),
        "cifar10": (64, 3e-4, "adam", "cifar10"),
        "cifar100": (32, 3e-4, "adam", "cifar100"),
        "kws20": (128, 3e-4, "adam", "kws20"),
        "rock": (32, 1e-3, "adam", "rock"),
        "ressimplenet": (32, 6.4e-4, "adam", "cifar100"),
        "kws20_dilated": (128, 3e-4, "adam", "kws20"),
        "mobilenetv2_cifar10": (64, 1e-3, "adam", "cifar10"),
    }
    assert model_for_dataset("cifar10") is MODELS["cifar10"]
    assert model_for_dataset("nope") is None


def test_default_schedule_is_reduce_on_plateau():
    cb = MODELS["mnist"].lr_schedule()
    assert isinstance(cb, keras.callbacks.ReduceLROnPlateau)
    assert (cb.monitor, cb.mode, cb.factor, cb.patience, cb.min_lr) == (
        "val_accuracy", "max", 0.2, 3, 1e-5)


def test_cifar10_step_schedule():
    cb = MODELS["cifar10"].lr_schedule()
    assert isinstance(cb, keras.callbacks.LearningRateScheduler)
    got = [cb.schedule(e) for e in (0, 39, 40, 79, 80, 119, 120, 300)]
    assert np.allclose(got, [3e-4, 3e-4, 1e-4, 1e-4, 5e-5, 5e-5, 3e-5, 3e-5])
    half = MODELS["cifar10"].lr_schedule(1.5e-4)  # another initial rate scales the steps
    assert np.allclose([half.schedule(0), half.schedule(40)], [1.5e-4, 0.5e-4])


def test_step_schedule_rejects_mismatched_values():
    with pytest.raises(ValueError, match="len\\(boundaries\\) \\+ 1"):
        StepSchedule((10, 20), (1e-3,))
