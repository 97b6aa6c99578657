"""QAT policies, enable_qat, QATCallback, integer conversion and the MNIST end-to-end check."""

import logging

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.datasets import load
from ai8x_nb.errors import QuantizationError
from ai8x_nb.evaluate import QuantReport, evaluate_quantized
from ai8x_nb.layers import _ops
from ai8x_nb.models import get_model
from ai8x_nb.quantize import (
    QATCallback,
    QATPolicy,
    convert,
    enable_qat,
    is_qat,
    load_policy,
)
from ai8x_nb.simulate import simulate

from support import assert_exact, random_input, randomize

VENDOR_POLICY = """---
start_epoch: 240
shift_quantile: 0.985
weight_bits: 2
outlier_removal_z_score: 8.0
overrides:
  conv1:
    weight_bits: 8
  fc:
    weight_bits: 4
"""


def _small_model(batch_norm=None, use_bias=True, wide=True):
    inputs = keras.Input((8, 8, 2))
    x = L.Conv2D(6, 3, padding=1, activation="relu", batch_norm=batch_norm, use_bias=use_bias,
                 name="conv1")(inputs)
    x = L.Conv2D(8, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                 batch_norm=batch_norm, use_bias=use_bias, name="conv2")(x)
    x = L.AvgPool2D(2, name="pool")(x)
    x = keras.layers.Flatten()(x)
    outputs = L.Dense(3, wide=wide, name="fc")(x)
    return keras.Model(inputs, outputs, name="small")


def _random_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, 8, 8, 2)).astype("float32") / 128.0
    return x, rng.integers(0, 3, size=n)


# ---------------------------------------------------------------- policy
def test_policy_defaults_and_bits_for():
    policy = QATPolicy(start_epoch=3, weight_bits=4, overrides={"conv1": {"weight_bits": 8}})
    assert (policy.start_epoch, policy.weight_bits, policy.shift_quantile) == (3, 4, 1.0)
    assert policy.bits_for("conv1") == 8 and policy.bits_for("other") == 4
    with pytest.raises(Exception):
        policy.start_epoch = 5  # frozen


@pytest.mark.parametrize("kwargs,match", [
    ({"weight_bits": 3}, r"weight_bits is 3.*8, 4, 2 or 1"),
    ({"start_epoch": -1}, r"start_epoch is -1.*>= 0"),
    ({"shift_quantile": 0.0}, r"shift_quantile is 0.0.*\(0, 1\]"),
    ({"shift_quantile": 1.5}, r"shift_quantile is 1.5"),
    ({"overrides": {"conv1": {"weight_bits": 5}}}, r"override weight_bits of layer 'conv1' is 5"),
    ({"overrides": {"conv1": 8}}, r"override for layer 'conv1' must be a mapping"),
])
def test_policy_validation(kwargs, match):
    with pytest.raises(QuantizationError, match=match):
        QATPolicy(**kwargs)


def test_load_default_policy():
    policy = load_policy("default")
    assert isinstance(policy, QATPolicy)
    assert policy.weight_bits == 8 and policy.shift_quantile == 1.0 and policy.start_epoch >= 0
    assert load_policy(policy) is policy
    assert load_policy(None) is None


def test_load_vendor_yaml(tmp_path, caplog):
    path = tmp_path / "qat_policy_mnist.yaml"
    path.write_text(VENDOR_POLICY)
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.quantize.policy"):
        policy = load_policy(str(path))
    assert "outlier_removal_z_score" in caplog.text
    assert policy.start_epoch == 240 and policy.weight_bits == 2
    assert policy.shift_quantile == pytest.approx(0.985)
    assert policy.bits_for("conv1") == 8 and policy.bits_for("fc") == 4
    assert policy.bits_for("conv2") == 2


def test_policy_yaml_round_trip(tmp_path):
    policy = QATPolicy(start_epoch=7, weight_bits=4, shift_quantile=0.99,
                       overrides={"conv2": {"weight_bits": 1}})
    path = tmp_path / "p.yaml"
    policy.to_yaml(path)
    again = load_policy(path)
    assert again == policy
    assert again.to_dict() == {"start_epoch": 7, "weight_bits": 4, "shift_quantile": 0.99,
                               "overrides": {"conv2": {"weight_bits": 1}}}
    assert load_policy(policy.to_dict()) == policy


def test_load_policy_errors(tmp_path):
    with pytest.raises(QuantizationError, match=r"'nope.yaml' is neither a packaged policy"):
        load_policy("nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(QuantizationError, match="is empty"):
        load_policy(empty)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(QuantizationError, match="must be a mapping"):
        load_policy(listy)


# ------------------------------------------------------------ enable_qat
def test_enable_qat_sets_every_layer():
    model = _small_model(batch_norm="affine", use_bias=False)
    policy = QATPolicy(start_epoch=0, weight_bits=4, shift_quantile=0.99,
                       overrides={"fc": {"weight_bits": 8}})
    assert not is_qat(model)
    enable_qat(model, policy)
    assert is_qat(model)
    by_name = {layer.name: layer for layer in model.layers}
    assert by_name["conv1"].batch_norm_folded and by_name["conv2"].batch_norm_folded
    assert [by_name[n].weight_bits for n in ("conv1", "conv2", "fc")] == [4, 4, 8]
    assert all(by_name[n].qat for n in ("conv1", "conv2", "fc", "pool"))
    assert by_name["fc"].shift_quantile == pytest.approx(0.99)


def test_enable_qat_unknown_override_lists_layers():
    model = _small_model()
    policy = QATPolicy(overrides={"conv9": {"weight_bits": 4}})
    with pytest.raises(QuantizationError, match=r"'conv9'.*Layers with weights: conv1, conv2, fc"):
        enable_qat(model, policy)
    assert not is_qat(model)


def test_enable_qat_drops_stale_compiled_functions():
    model = _small_model()
    randomize(model, seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, _ = _random_data(16)
    model.predict(x, verbose=0)
    enable_qat(model)
    out = model.predict(x, verbose=0) * 128 * 128  # wide output grid 2^-14
    np.testing.assert_array_equal(out, np.round(out))


def test_output_shift_exact_at_powers_of_two():
    # A float log2 gets these wrong by one; the shift must be ceil(log2(max |W, b|)).
    for limit, expected in [(0.5, -1), (1.0, 0), (8.0, 3), (2.0**-10, -10),
                            (float(np.nextafter(np.float32(8.0), np.float32(9))), 4),
                            (float(np.nextafter(np.float32(0.25), np.float32(0))), -2),
                            (2.0**-16, -15), (1e6, 15)]:
        kernel = keras.ops.convert_to_tensor([[limit, -limit / 3.0]], dtype="float32")
        eager = float(_ops.output_shift(kernel))
        graph = float(_compiled(_ops.output_shift)(kernel))
        assert eager == graph == expected, (limit, eager, graph)


def _compiled(fn):
    """`fn` in the running backend's compiled mode: tf.function (graph), jax.jit (XLA)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn  # torch: eager is what Keras' torch trainer runs by default


# -------------------------------------------------------------- callback
def _fit(model, callbacks, epochs=3, optimizer=None):
    x, y = _random_data(64)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)


class _Probe(keras.callbacks.Callback):
    """Records optimizer state and the model's quantization at each epoch begin."""

    def __init__(self):
        super().__init__()
        self.slots, self.iterations, self.qat = {}, {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        slots = [v for v in opt.variables if v.name not in ("iteration", "learning_rate")]
        self.slots[epoch] = max((float(np.abs(np.asarray(v)).max()) for v in slots), default=0.0)
        self.iterations[epoch] = int(opt.iterations)
        self.qat[epoch] = is_qat(self.model)


def test_callback_switches_at_start_epoch_and_resets_optimizer():
    model = _small_model()
    randomize(model, seed=3, scales=(0.3, 1.0))
    qat_cb, probe = QATCallback({"start_epoch": 1, "weight_bits": 8}), _Probe()
    _fit(model, [qat_cb, probe], epochs=3)
    assert qat_cb.switched_epoch == 1
    assert probe.qat == {0: False, 1: True, 2: True}
    assert probe.slots[1] == 0.0 and probe.slots[2] > 0.0  # zeroed at the switch, then trained
    assert probe.iterations[1] == 1 and probe.iterations[2] == 2  # iterations kept
    x, _ = _random_data(8, seed=5)
    out = np.asarray(model(x)) * 128 * 128
    np.testing.assert_array_equal(out, np.round(out))


def test_callback_train_loss_after_switch_is_fake_quant_loss():
    # With lr 0 the weights never move: the epoch loss is the loss of the forward pass that
    # fit's (re-traced) train function really runs.
    model = _small_model(wide=True)
    randomize(model, seed=4, scales=(0.3, 1.0))
    x, y = _random_data(64)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    float_loss = float(loss_fn(y, model(x)))
    history = _fit(model, [QATCallback({"start_epoch": 1})], epochs=2,
                   optimizer=keras.optimizers.SGD(learning_rate=0.0))
    quant_loss = float(loss_fn(y, model(x)))
    assert abs(float_loss - quant_loss) > 1e-4
    np.testing.assert_allclose(history.history["loss"], [float_loss, quant_loss], rtol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(quant_loss, rel=1e-5)


@pytest.mark.parametrize("use_bias", [False, True])
def test_callback_with_batchnorm_rebuilds_optimizer(tmp_path, use_bias):
    model = _small_model(batch_norm="affine", use_bias=use_bias)
    randomize(model, seed=5, scales=(0.3, 1.0))
    qat_cb = QATCallback({"start_epoch": 1})
    _fit(model, [qat_cb], epochs=2)
    conv1 = model.get_layer("conv1")
    assert qat_cb.switched_epoch == 1 and conv1.batch_norm_folded
    assert any(v is conv1.bias for v in model.trainable_variables)
    assert not any(v is w for v in model.trainable_variables for w in conv1.bn.weights)
    assert int(model.optimizer.iterations) == 2
    model.save(tmp_path / "last.keras")  # a checkpoint after the optimizer was replaced
    loaded = keras.saving.load_model(tmp_path / "last.keras")
    assert is_qat(loaded) and int(loaded.optimizer.iterations) == 2
    x, _ = _random_data(4)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_callback_resume_after_start_switches_immediately():
    model = _small_model()
    randomize(model, seed=6, scales=(0.3,))
    qat_cb = QATCallback({"start_epoch": 1})
    x, y = _random_data(64)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=4, initial_epoch=3, verbose=0, callbacks=[qat_cb])
    assert qat_cb.switched_epoch == 3 and is_qat(model)


def test_callback_checks_override_names_before_training():
    model = _small_model()
    with pytest.raises(QuantizationError, match="'convX'"):
        _fit(model, [QATCallback({"start_epoch": 1, "overrides": {"convX": {"weight_bits": 4}}})],
             epochs=1)


# --------------------------------------------------------------- convert
def test_convert_matches_spec_formula():
    model = _small_model()
    randomize(model, seed=8)
    enable_qat(model)
    qmodel = convert(model)
    for q in qmodel.layers:
        layer = q.hw.layer
        if q.weights is None:
            assert q.op == "passthrough" and q.bias is None
            continue
        w = np.asarray(layer.kernel, dtype=np.float64)
        b = np.asarray(layer.bias, dtype=np.float64)
        shift = int(np.clip(np.ceil(np.log2(max(np.abs(w).max(), np.abs(b).max()))), -15, 15))
        # A wide layer keeps its raw accumulator: the scale stays in the weights, shift 0.
        assert q.output_shift == (0 if layer.wide else shift)
        expect_w = np.clip(np.floor(w * 2.0 ** -shift * 128 + 0.5), -128, 127)
        expect_b = np.clip(np.floor(b * 2.0 ** -shift * 128 + 0.5), -128, 127)
        np.testing.assert_array_equal(q.weights, expect_w)
        np.testing.assert_array_equal(q.bias, expect_b)
        assert q.weights.dtype == np.int64 and q.weights.shape == tuple(layer.kernel.shape)


def test_convert_float_batchnorm_model_leaves_it_untouched():
    model = _small_model(batch_norm="affine", use_bias=False)
    randomize(model, seed=9)
    before = [np.array(w) for w in model.get_weights()]
    x = random_input(model, 6)
    qmodel = convert(model)
    assert not is_qat(model) and not model.get_layer("conv1").batch_norm_folded
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Post-training quantization == the fake quantization of the folded model.
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    other = assert_exact(clone, x)
    np.testing.assert_array_equal(simulate(qmodel, x), simulate(other, x))
    assert qmodel.layers[0].bias is not None  # the fold's bias


def test_convert_ptq_quantile_changes_shift():
    model = _small_model()
    randomize(model, seed=10, scales=(0.3,))
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv1").kernel).copy()
    kernel.flat[0] = 40.0  # one outlier
    model.get_layer("conv1").kernel.assign(kernel)
    full, clipped = convert(model), convert(model, ptq_quantile=0.9)
    assert full.layers[0].output_shift == 6
    assert clipped.layers[0].output_shift < full.layers[0].output_shift


def test_convert_rejects_unsupported_layers():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, L.Conv2D(2, 3, padding=1)(x))
    with pytest.raises(QuantizationError, match=r"cannot be converted.*Conv2D.*check_model"):
        convert(model)


def test_convert_rejects_shift_beyond_device_range():
    model = keras.Sequential([keras.Input((4, 4, 2)), L.Conv2D(2, 3, padding=1, weight_bits=1)])
    model.layers[0].kernel.assign(np.full((3, 3, 2, 2), 1000.0, dtype=np.float32))
    with pytest.raises(QuantizationError, match=r"output_shift 10 plus 7.*\[-15, 15\]"):
        convert(model)


# ------------------------------------------------------------ evaluation
def test_evaluate_quantized_report_on_random_data():
    model = _small_model()
    randomize(model, seed=12, scales=(0.3, 1.0))
    x = random_input(model, 40)
    y = np.random.default_rng(0).integers(0, 3, size=40)
    report = evaluate_quantized(model, (x, y), batch_size=16)
    assert isinstance(report, QuantReport) and report.samples == 40
    assert report.argmax_agreement == 1.0 and report.exact_agreement == 1.0
    assert report.fake_quant_accuracy == report.integer_accuracy
    data = report.to_dict()
    assert [row["name"] for row in data["layers"]] == ["conv1", "conv2", "pool", "fc"]
    assert data["layers"][3]["wide"] is True
    text = str(report)
    assert "fake-quant" in text and "integer" in text and "conv2" in text
    assert not is_qat(model)  # evaluation works on a clone


def test_mnist_qat_integer_matches_fake_quant(mnist_data):
    keras.utils.set_random_seed(0)
    ds = load("mnist", mnist_data, download=False)
    x_train = ds.train.x[:6000].reshape(-1, 28, 28).astype("float32") / 128.0
    y_train = ds.train.y[:6000]
    model = get_model("mnist")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    qat_cb = QATCallback({"start_epoch": 1, "weight_bits": 8})
    model.fit(x_train, y_train, batch_size=128, epochs=2, verbose=0, callbacks=[qat_cb])
    assert qat_cb.switched_epoch == 1
    report = evaluate_quantized(model, ds, limit=2000)
    assert report.fake_quant_accuracy > 0.85, str(report)
    assert abs(report.integer_accuracy - report.fake_quant_accuracy) <= 0.01, str(report)
    assert report.argmax_agreement >= 0.99, str(report)
    assert [row.output_shift for row in report.layers] == [
        q.output_shift for q in convert(model).layers]


def test_cli_evaluate_run_dir(tmp_path, capsys, mnist_data):
    import argparse
    import json

    from ai8x_nb.cli import evaluate as cli_evaluate

    run = tmp_path / "20250101-000000-mnist"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({
        "dataset": "mnist",
        "dataset_kwargs": {"data_dir": str(mnist_data), "download": False}}))
    model = get_model("mnist")
    randomize(model, seed=14, scales=(0.3, 1.0))
    enable_qat(model)
    model.save(run / "qat_best.keras")
    expected = convert(model)

    parser = argparse.ArgumentParser()
    cli_evaluate.add_parser(parser.add_subparsers())
    args = parser.parse_args(["evaluate", str(run), "--limit", "300", "--batch-size", "128"])
    assert cli_evaluate.run(args) == 0
    out = capsys.readouterr().out
    assert "integer (device sim.)" in out and "conv4" in out and "quant_report.json" in out
    data = json.loads((run / "quant_report.json").read_text())
    assert data["samples"] == 300 and data["exact_agreement"] == 1.0
    assert [row["output_shift"] for row in data["layers"]] == [q.output_shift for q in expected.layers]


def test_policy_binary_weights_train_with_qat():
    """A policy may ask for "binary" (+-1) weights (MAX78002); QAT then trains them: the
    forward uses +-1, a training step moves the float weights (straight-through gradient)."""
    from ai8x_nb.quantize import enable_qat, load_policy

    policy = load_policy({"start_epoch": 0, "weight_bits": 8,
                          "overrides": {"conv": {"weight_bits": "bin"}}})
    assert policy.bits_for("conv") == "binary"
    inp = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding=1, activation="relu", device="MAX78002", name="conv")(inp)
    x = keras.layers.Flatten()(x)
    x = L.Dense(3, wide=True, device="MAX78002", name="fc")(x)
    model = keras.Model(inp, x)
    enable_qat(model, policy)
    conv = model.get_layer("conv")
    assert conv.binary_weights and model.get_layer("fc").weight_bits == 8
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = conv.kernel.numpy().copy()
    rng = np.random.default_rng(0)
    model.fit(rng.integers(-128, 128, (32, 6, 6, 2)) / 128.0, rng.integers(0, 3, 32),
              epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(before, conv.kernel.numpy())
    inp = keras.Input((4,))
    on_max78000 = keras.Model(inp, L.Dense(2, name="d")(inp))
    with pytest.raises(Exception, match="weight_bits='binary' is not supported by MAX78000"):
        enable_qat(on_max78000, {"start_epoch": 0, "weight_bits": "binary"})
