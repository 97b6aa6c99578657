"""Switching a model to quantization-aware training (QAT), before or during `fit`.

The layers compute fake quantization themselves (`HardwareLayer.qat`); this module decides
when and for which layers: it folds BatchNorm, sets each layer's weight bits, resets the
optimizer state (the float-phase moments do not fit the folded, quantized weights) and makes
Keras re-trace its compiled train/test functions so the change takes effect mid-`fit`.
"""

import logging

import keras
import numpy as np

from ai8x_nb.layers import HardwareLayer
from ai8x_nb.quantize.policy import load_policy

__all__ = ["enable_qat", "is_qat", "hardware_layers", "reset_optimizer_state", "set_fake_quant",
           "QATCallback"]

logger = logging.getLogger(__name__)


def hardware_layers(model):
    """Every `HardwareLayer` of `model` in layer order, looking inside nested models."""
    found = []
    for layer in model.layers:
        if isinstance(layer, HardwareLayer):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(hardware_layers(layer))
    return found


def is_qat(model):
    """True when fake quantization is on in any hardware layer of `model`.

    Checkpoint callbacks use it to tell the float phase from the QAT phase (e.g. to keep
    `best.keras` and `qat_best.keras` apart).
    """
    return any(layer.qat for layer in hardware_layers(model))


def _invalidate_compiled_functions(model):
    # Keras caches traced train/test/predict functions; the layers' Python-level `qat`
    # switch only takes effect in a new trace. `None` makes the next fit/evaluate/predict
    # trace again.
    for attr in ("train_function", "test_function", "predict_function"):
        if hasattr(model, attr):
            setattr(model, attr, None)


def set_fake_quant(model, enabled, *, policy=None):
    """Fold BatchNorm and turn fake quantization on or off in every hardware layer.

    Args:
        model: a built Keras model.
        enabled: True for fake quantization, False for the float view of the same weights.
        policy: a `QATPolicy` setting weight bits and shift quantile, or None to keep each
            layer's own `weight_bits` / `shift_quantile`.

    Returns:
        The same model.
    """
    layers = hardware_layers(model)
    if policy is not None:
        policy.check_layer_names([layer.name for layer in layers if layer.has_operator])
    for layer in layers:
        if enabled:
            layer.fold_batch_norm()
        if policy is not None and layer.has_operator:
            layer.weight_bits = policy.bits_for(layer.name)
            layer.shift_quantile = policy.shift_quantile
        layer.qat = bool(enabled)
    _invalidate_compiled_functions(model)
    return model


def enable_qat(model, policy=None):
    """Switch `model` to quantization-aware training, in place.

    For every hardware layer (wide ones and pooling-only ones too): fold BatchNorm into kernel
    and bias, set `weight_bits` (the policy's override for that layer name, else its default)
    and `shift_quantile`, and turn fake quantization on. Cached compiled functions are dropped
    so the next `fit` / `evaluate` / `predict` uses the quantized forward pass. During `fit`
    use `QATCallback`, which also resets the optimizer.

    Args:
        model: a built Keras model made of `ai8x_nb.layers`.
        policy: a `QATPolicy`, "default", a YAML path or a dict (see `load_policy`), or None
            to keep each layer's own weight bits and shift quantile.

    Returns:
        The same model.

    Raises:
        QuantizationError: when an override names a layer the model does not have, or the
            policy is invalid.

    Example:

    >>> enable_qat(model, "default")  # doctest: +SKIP
    """
    policy = load_policy(policy)
    set_fake_quant(model, True, policy=policy)
    bits = sorted({layer.weight_bits for layer in hardware_layers(model) if layer.has_operator})
    logger.info("QAT on for model '%s' (weight bits %s).", model.name,
                "/".join(str(b) for b in bits) or "-")
    return model


def _slot_variables(optimizer):
    """The optimizer's per-variable state (moments, velocities, accumulators)."""
    keep = {id(getattr(optimizer, "_iterations", None)),
            id(getattr(optimizer, "_learning_rate", None))}
    for var in getattr(optimizer, "_model_variables_moving_average", None) or []:
        keep.add(id(var))
    return [var for var in optimizer.variables
            if id(var) not in keep and var.name not in ("iteration", "iterations", "learning_rate")]


def _built_for(optimizer, variables):
    """True when the optimizer was built for exactly `variables`, in this order."""
    built = getattr(optimizer, "_trainable_variables", None)
    if built is None:
        return True
    return [id(var) for var in built] == [id(var) for var in variables]


def reset_optimizer_state(model):
    """Reset the optimizer of a compiled model for the QAT phase, keeping `iterations` and the LR.

    Slot variables (momentums, velocities, ...) are set to zero in place. When folding
    BatchNorm changed the trainable variables (BatchNorm parameters frozen, a bias that only
    receives the fold now trained), a fresh optimizer of the same class and config (at the
    current learning rate) replaces `model.optimizer`: the old one cannot update new
    variables, and its state would not match a checkpoint reloaded after the fold.

    Args:
        model: a compiled Keras model.

    Returns:
        The optimizer in use afterwards.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return optimizer
    if _built_for(optimizer, model.trainable_variables):
        for var in _slot_variables(optimizer):
            var.assign(np.zeros(var.shape, dtype=var.dtype))
        return optimizer
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(model.trainable_variables)
    iterations = getattr(optimizer, "_iterations", None)
    if iterations is not None and getattr(fresh, "_iterations", None) is not None:
        fresh._iterations.assign(iterations)
    model.optimizer = fresh
    logger.info("QAT: trainable variables changed by the BatchNorm fold; optimizer rebuilt.")
    return fresh


class QATCallback(keras.callbacks.Callback):
    """Switch a model to quantization-aware training at the policy's `start_epoch`.

    At the beginning of epoch `start_epoch` (or of the first epoch of a resumed run that
    starts later and whose model is still float) it calls `enable_qat`, resets the optimizer
    state and re-traces the compiled train function, so the rest of `fit` trains with fake
    quantization. A model that is already quantized (resumed after the switch) is left alone.

    Args:
        policy: a `QATPolicy`, "default", a YAML path or a dict (see `load_policy`).

    Attributes:
        policy: the `QATPolicy`.
        switched_epoch: the epoch at which this callback switched the model, or None.

    Example:

    >>> model.fit(x, y, epochs=20, callbacks=[QATCallback("default")])  # doctest: +SKIP
    """

    def __init__(self, policy="default"):
        super().__init__()
        self.policy = load_policy(policy)
        if self.policy is None:
            self.policy = load_policy("default")
        self.switched_epoch = None

    def on_train_begin(self, logs=None):
        layers = hardware_layers(self.model)
        self.policy.check_layer_names([layer.name for layer in layers if layer.has_operator])
        if is_qat(self.model):
            logger.info("QAT: model '%s' is already quantized; training continues with QAT.",
                        self.model.name)

    def on_epoch_begin(self, epoch, logs=None):
        if self.switched_epoch is not None or epoch < self.policy.start_epoch:
            return
        if is_qat(self.model):
            return
        enable_qat(self.model, self.policy)
        reset_optimizer_state(self.model)
        # fit() calls self.train_function on every step: a forced rebuild re-traces it with
        # the quantized forward pass. evaluate() rebuilds its (dropped) test function itself.
        self.model.make_train_function(force=True)
        self.switched_epoch = epoch
        logger.info("QAT: switched model '%s' to fake quantization from epoch %d "
                    "(weight_bits %d, shift_quantile %g).", self.model.name, epoch + 1,
                    self.policy.weight_bits, self.policy.shift_quantile)
