"""Public-API tests of the hardware layers: build, call, config, save/load, training, errors."""

import numpy as np
import pytest

import keras

import ai8x_nb.ai8xTF as ai8xTF
from ai8x_nb import layers as L
from ai8x_nb.errors import DeviceLimitError
from seed_models_ai8xtf import SEED_BUILDERS, SEED_PARAMS


def _conv2d_model():
    inputs = keras.Input((8, 9, 3))
    x = L.Conv2D(6, 3, padding=1, activation="relu", name="c_relu")(inputs)
    x = L.Conv2D(5, 3, padding=2, pooling="max", pool_size=(2, 3), pool_strides=2,
                 activation="abs", use_bias=False, batch_norm="affine", name="c_bn")(x)
    x = L.Conv2D(4, 1, padding=0, pooling="avg", pool_size=2, batch_norm="noaffine",
                 name="c_avg")(x)
    x = L.Conv2D(3, 1, padding=0, wide=True, name="c_wide")(x)
    return keras.Model(inputs, x, name="conv2d_model")


def _conv1d_model():
    inputs = keras.Input((40, 4))
    x = L.Conv1D(6, 5, padding=2, activation="relu", name="k5")(inputs)
    x = L.Conv1D(6, 3, padding=1, dilation=3, activation="relu", name="k3d3")(x)
    x = L.Conv1D(5, 9, padding=0, pooling="max", pool_size=2, use_bias=False,
                 batch_norm="affine", name="k9")(x)
    x = L.MaxPool1D(2, name="mp1")(x)
    x = L.AvgPool1D(2, 1, name="ap1")(x)
    x = L.Conv1D(3, 1, padding=0, pooling="avg", pool_size=1, activation="abs", name="k1")(x)
    return keras.Model(inputs, x, name="conv1d_model")


def _transpose_pool_model():
    inputs = keras.Input((4, 5, 2))
    x = L.ConvTranspose2D(4, 3, padding=1, activation="relu", name="up")(inputs)
    x = L.ConvTranspose2D(3, 3, padding=0, pooling="max", pool_size=2, name="up0")(x)
    x = L.MaxPool2D(2, name="mp2")(x)
    x = L.AvgPool2D((2, 3), 2, name="ap2")(x)
    return keras.Model(inputs, x, name="transpose_model")


def _dense_add_model():
    inputs = keras.Input((6, 6, 2))
    a = L.Conv2D(4, 3, padding=1, activation="relu", name="a")(inputs)
    b = L.Conv2D(4, 1, padding=0, name="b")(inputs)
    x = L.Add(name="add")([a, b])
    x = keras.layers.Flatten()(x)
    x = L.Dense(12, activation="relu", batch_norm="affine", name="d_relu")(x)
    x = L.Dense(3, wide=True, name="d_wide")(x)
    return keras.Model(inputs, x, name="dense_model")


def _depthwise_model():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 1, padding=0, activation="relu", device="MAX78002", name="expand")(inputs)
    x = L.Conv2D(8, 3, padding=1, groups=8, batch_norm="affine", activation="relu",
                 pooling="max", pool_size=2, pool_dilation=2, pool_strides=1,
                 device="MAX78002", name="dw")(x)
    x = L.Conv2D(4, 1, padding=0, device="MAX78002", name="project")(x)
    return keras.Model(inputs, x, name="depthwise_model")


MODELS = {"conv2d": _conv2d_model, "conv1d": _conv1d_model, "depthwise": _depthwise_model,
          "transpose": _transpose_pool_model, "dense_add": _dense_add_model}


@pytest.fixture(scope="module", params=list(MODELS))
def built(request):
    keras.utils.set_random_seed(1)
    model = MODELS[request.param]()
    shape = (3,) + tuple(model.inputs[0].shape[1:])
    x = (np.random.default_rng(0).integers(-128, 128, size=shape) / 128).astype(np.float32)
    return model, x


def _hardware_layers(model):
    return [layer for layer in model.layers if isinstance(layer, (L.HardwareLayer, L.Add))]


def test_call_gives_the_declared_shape(built):
    model, x = built
    y = model(x)
    assert tuple(y.shape) == (len(x),) + tuple(model.outputs[0].shape[1:])
    assert np.all(np.isfinite(np.asarray(y)))


def test_config_round_trip(built):
    model, _ = built
    for layer in _hardware_layers(model):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config, layer.name


def _save_load(model, tmp_path, name):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return keras.models.load_model(path)


def test_save_load_identical_outputs_float_and_qat(built, tmp_path):
    model, x = built
    loaded = _save_load(model, tmp_path, "float")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for layer in _hardware_layers(clone):
        if isinstance(layer, L.HardwareLayer):
            layer.fold_batch_norm()
            layer.qat = True
    loaded = _save_load(clone, tmp_path, "qat")
    for layer in _hardware_layers(loaded):
        if isinstance(layer, L.HardwareLayer):
            assert layer.qat and (layer.bn is None or layer.batch_norm_folded)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(clone(x)))


def test_one_training_step_changes_weights(built):
    model, x = built
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = [keras.ops.convert_to_numpy(w).copy() for w in clone.trainable_weights]
    target = np.asarray(clone(x)) + 0.25
    loss = clone.train_on_batch(x, target)
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, clone.trainable_weights)]
    kernels = [c for c, w in zip(changed, clone.trainable_weights) if "kernel" in w.path]
    assert kernels and all(kernels)


def test_freezing_a_layer_keeps_its_output():
    layer = L.Conv2D(4, 3, bias_initializer="ones")
    x = np.zeros((1, 4, 4, 2), np.float32)
    before = np.asarray(layer(x))
    layer.trainable = False
    np.testing.assert_array_equal(np.asarray(layer(x)), before)
    assert before.max() > 0  # the bias is there


def test_unfolded_bias_does_not_train_and_qat_needs_fold():
    layer = L.Conv2D(4, 3, use_bias=False, batch_norm="affine")
    layer(np.zeros((1, 4, 4, 2), np.float32))
    assert not layer.bias.trainable
    layer.qat = True
    with pytest.raises(Exception, match="unfolded BatchNorm"):
        layer(np.zeros((1, 4, 4, 2), np.float32))


# ----------------------------------------------------------------------------- errors
def _build(layer, shape):
    layer(keras.Input(shape))


@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv2D(4, kernel_size=5), r"kernel_size=5 .*kernel_size 1 or 3"),
    (lambda: L.Conv2D(4, kernel_size=(1, 3)), r"kernel_size=\(1, 3\)"),
    (lambda: L.Conv1D(4, kernel_size=10), r"kernel_size=10 .*kernel_size 1 or 2 .* or 9"),
    (lambda: L.ConvTranspose2D(4, kernel_size=1), r"kernel_size=1 .*3x3 only"),
    (lambda: L.Conv2D(4, padding=3), r"padding=3 .*padding 0, 1 or 2"),
    (lambda: L.Conv2D(4, padding="causal"), r"padding='causal'"),
    (lambda: L.Conv2D(4, strides=2), r"strides=2 .*stride 1 only.*pool_strides=2"),
    (lambda: L.ConvTranspose2D(4, strides=1), r"strides=1 .*stride 2 only"),
    (lambda: L.Conv2D(4, pooling="max", pool_size=17), r"pool_size=17 .*1\.\.16"),
    (lambda: L.Conv2D(4, pooling="avg", pool_size=2, pool_strides=0), r"pool_strides=0 .*1\.\.16"),
    (lambda: L.MaxPool2D(2, 17), r"pool_strides=17"),
    (lambda: L.Conv2D(1025), r"filters=1025 .*1\.\.1024 channels"),
    (lambda: L.Dense(1025), r"units=1025 .*1\.\.1024 outputs"),
    (lambda: L.Dense(10, wide=True, activation="relu"), r"wide=True .*no activation"),
    (lambda: L.Conv2D(4, weight_bits=3), r"weight_bits=3 .*8, 4, 2 or 1"),
    (lambda: L.Conv2D(4, pooling="min"), r"pooling='min' .*'max', 'avg'"),
    (lambda: L.Conv2D(4, activation="sigmoid"), r"activation='sigmoid' .*ReLU and Abs"),
    (lambda: L.Conv2D(4, batch_norm="yes"), r"batch_norm='yes'"),
    (lambda: L.Dense(4, pooling="max"), r"no pooling in a linear layer"),
    (lambda: L.Conv1D(4, 3, dilation=5),
     r"dilation=5 is not supported by MAX78000 .*\(kernel_size - 1\) \* dilation \+ 1 <= 9.*"
     r"spans 11.*Use dilation <= 4 with kernel_size=3"),
    (lambda: L.Conv1D(4, 2, dilation=9, device="MAX78002"),
     r"dilation=9 is not supported by MAX78002 .*<= 9 steps.*dilation <= 8"),
    (lambda: L.Conv1D(4, 1, padding=0, dilation=2), r"dilation=2 .*kernel longer than 1 tap"),
    (lambda: L.Conv1D(4, 3, dilation=0), r"dilation=0 .*dilation 1 or more"),
    (lambda: L.Conv2D(4, 3, dilation=2, device="MAX78002"),
     r"dilation=2 is not supported by MAX78002 .*dilates Conv1D only.*Conv1D\(dilation="),
    (lambda: L.Conv2D(4, 3, dilation=(1, 2)), r"dilation=\(1, 2\) .*MAX78000"),
    (lambda: L.Conv2D(8, 3, groups=8),
     r"groups=8 is not supported by MAX78000 .*no depthwise.*device='MAX78002', or groups=1"),
    (lambda: L.Conv2D(8, 3, groups=4, device="MAX78002"),
     r"groups=4 .*depthwise only: groups == input channels == filters.*Use groups=8"),
    (lambda: L.Conv1D(8, 3, groups=8, device="MAX78002"),
     r"groups=8 .*groups=1 for Conv1D.*Conv2D\(groups=filters\)"),
    (lambda: L.Conv2D(8, 3, pooling="max", pool_size=2, pool_dilation=2),
     r"pool_dilation=2 is not supported by MAX78000 .*device='MAX78002'"),
    (lambda: L.Conv2D(8, 3, pooling="max", pool_size=3, pool_dilation=2, device="MAX78002"),
     r"pool_dilation=2 .*needs pool_size 2"),
    (lambda: L.MaxPool1D(2, pool_dilation=2, device="MAX78002"),
     r"pool_dilation=2 .*2D pooling only"),
    (lambda: L.MaxPool2D(2, pool_dilation=16, device="MAX78002"), r"pool_dilation=16 .*1\.\.15"),
    (lambda: L.Conv2D(8, 3, weight_bits="binary"),
     r"weight_bits='binary' is not supported by MAX78000 .*MAX78002 has \+-1.*device='MAX78002'"),
    (lambda: L.Conv2D(8, 3, weight_bits=3, device="MAX78002"),
     r"weight_bits=3 .*8, 4, 2, 1 or 'binary'"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_constructor_limits(make, match):
    with pytest.raises(DeviceLimitError, match=match):
        make()


@pytest.mark.parametrize("layer,shape,match", [
    (lambda: L.Conv2D(4), (4, 4, 1025), r"input channels=1025 .*1\.\.1024 channels"),
    (lambda: L.Dense(4), (16385,), r"input features=16385 .*1\.\.16384 inputs after a Flatten"),
    (lambda: L.Dense(4), (4, 4, 3), r"flat \(batch, features\).*Flatten"),
    (lambda: L.Conv2D(4, pooling="max", pool_size=8), (4, 4, 2), r"the pool must fit"),
    (lambda: L.MaxPool1D(9), (8, 2), r"the pool must fit"),
    (lambda: L.Conv2D(4), (16, 2), r"2D channels-last input"),
    (lambda: L.Conv2D(4, padding=0), (2, 2, 3), r"at least 1 pixel"),
    (lambda: L.Conv2D(8, groups=8, device="MAX78002"), (4, 4, 6),
     r"groups=8 .*input has 6 channels.*Give it 8 input channels"),
])
def test_build_limits(layer, shape, match):
    with pytest.raises(DeviceLimitError, match=match):
        _build(layer(), shape)


@pytest.mark.parametrize("count", [1, 17])
def test_add_operand_count(count):
    xs = [keras.Input((4, 4, 2)) for _ in range(count)]
    with pytest.raises(DeviceLimitError, match=rf"inputs={count} .*2\.\.16 operands"):
        L.Add()(xs)


def test_add_operand_shapes():
    with pytest.raises(DeviceLimitError, match="operands of one shape"):
        L.Add()([keras.Input((4, 4, 2)), keras.Input((4, 4, 3))])


def test_channel_limit_is_1024_on_both_devices():
    # ADI's README says 2048 for the MAX78002; its synthesis tool allows 16 passes of 64.
    layer = L.Conv2D(1024, 1, padding=0, device="MAX78002")
    _build(layer, (2, 2, 1000))
    assert layer.kernel.shape == (1, 1, 1000, 1024)
    for device in ("MAX78000", "MAX78002"):
        with pytest.raises(DeviceLimitError, match=f"filters=2048 .*{device} .*1..1024"):
            L.Conv2D(2048, 1, padding=0, device=device)


@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv2D(4, 1, padding=1), r"padding=1 .*smaller than the kernel.*padding=0"),
    (lambda: L.Conv2D(4, 1, padding="same"), None),
    (lambda: L.Conv1D(4, 2, padding=2), r"padding=2 .*at most 1 for kernel_size=2"),
    (lambda: L.Conv2D(4, 3, pooling="max", pool_size=2, pool_strides=(2, 1)),
     r"pool_strides=\(2, 1\) .*same stride in both dimensions"),
    (lambda: L.MaxPool2D(pool_size=(2, 1), pool_strides=(1, 2)), r"same stride"),
])
def test_tool_rules_refused_at_construction(make, match):
    if match is None:
        assert make().padding == 0
        return
    with pytest.raises(DeviceLimitError, match=match):
        make()


def test_device_rules_refused_at_build():
    # MAX78002: a padded Conv1D reads one pass (64 channels) at most.
    layer = L.Conv1D(8, 3, padding=1, device="MAX78002")
    with pytest.raises(DeviceLimitError, match=r"padded Conv1D reads at most 64 .*got 100"):
        _build(layer, (16, 100))
    _build(L.Conv1D(8, 3, padding=1), (16, 100))  # MAX78000 allows it
    # MAX78000: a pool-only layer pools at most 64 channels unless it pools to 1x1.
    with pytest.raises(DeviceLimitError, match=r"pool-only layer pools at most 64"):
        _build(L.MaxPool2D(2), (4, 4, 100))
    _build(L.MaxPool2D(4), (4, 4, 100))
    _build(L.MaxPool2D(2, device="MAX78002"), (4, 4, 100))


def test_pool_layer_rejects_activation():
    with pytest.raises(TypeError, match="activation"):
        L.MaxPool2D(2, activation="relu")


# ----------------------------------------------------------------- vendor ai8xTF names
@pytest.fixture(scope="module")
def seeds():
    return {name: build() for name, build in SEED_BUILDERS.items()}


@pytest.mark.parametrize("name", list(SEED_PARAMS))
def test_ai8xtf_seed_models_have_the_seed_parameter_counts(seeds, name):
    assert seeds[name].count_params() == SEED_PARAMS[name]


def test_cifar100_ends_on_one_pixel(seeds):
    model = seeds["cifar100"]
    assert tuple(model.outputs[0].shape[1:]) == (100,)
    convs = [layer for layer in model.layers if isinstance(layer, L.Conv2D)]
    assert [c.pooling for c in convs].count("max") == 5 and convs[-1].wide


def test_ai8xtf_names_build_project_layers():
    up = ai8xTF.FusedConv2DTransposeReLU(8, 3, padding_size=1)
    assert isinstance(up, L.ConvTranspose2D) and up.activation == "relu"
    conv = ai8xTF.FusedAvgPoolConv1DReLU(8, 3, padding_size=1, pool_size=2, pool_strides=2)
    assert isinstance(conv, L.Conv1D) and conv.pooling == "avg" and conv.pool_size == (2,)
    pool = ai8xTF.MaxPool2D(3, 2)
    assert isinstance(pool, L.MaxPool2D) and pool.pool_strides == (2, 2)
    with pytest.raises(DeviceLimitError, match="strides=2"):
        ai8xTF.FusedConv2DReLU(filters=8, kernel_size=3, strides=2, padding_size=1)
