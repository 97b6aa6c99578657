"""The run's model as its plan says: built (or adopted), seeded, checked and compiled.

`assemble_model` is the one path from a plan to a compiled model, for a new run and for a run
restarted from its config.json; a resume after an epoch reloads `last.keras` instead.
"""

import logging

import keras

from ai8x_nb import models
from ai8x_nb.devices import get_device
from ai8x_nb.errors import TrainingError
from ai8x_nb.layers import HardwareLayer
from ai8x_nb.modelio.inputs import check_input_shape, model_device
from ai8x_nb.parameters import OPTIMIZERS
from ai8x_nb.training.distribute import scope
from ai8x_nb.training.recipes import with_batch_norm

__all__ = ["assemble_model", "model_defaults", "plan_device", "build_model", "check_shapes",
           "make_optimizer", "compile_model"]

logger = logging.getLogger(__name__)


def assemble_model(plan, source, ds, distribution=None):
    """The compiled model a run trains.

    Seeds the random generators with `plan.seed`, then builds `source` for `plan.device` (with
    BatchNorm when the plan's recipe trains with it) or, for a ready `keras.Model`, adopts it
    into the distribution; checks its shapes against `ds` and compiles it with the plan's
    optimizer, learning rate, metrics, weight decay and label smoothing.

    Args:
        plan: the `ai8x_nb.training.plan.RunPlan`.
        source: a `keras.Model`, a seed model name or a model spec list (see `build_model`).
        ds: the `Dataset`.
        distribution: the run's `ai8x_nb.training.distribute.Distribution`, or None. The
            model's variables are made under its scope.

    Returns:
        The compiled `keras.Model`.

    Raises:
        TrainingError: the model does not fit the dataset.
    """
    training = plan.training
    keras.utils.set_random_seed(plan.seed)
    if isinstance(source, keras.Model):
        model = source if distribution is None else distribution.adopt(source)
    else:
        with scope(distribution):  # the model's variables are made by the strategy
            model = build_model(source, ds, plan.device)
            if training.batch_norm:
                model = with_batch_norm(model, training.batch_norm)
    check_shapes(model, ds)
    if distribution is not None:
        distribution.prepare_model(model)
    with scope(distribution):
        compile_model(model, make_optimizer(plan.optimizer, plan.lr, training.weight_decay),
                      plan.metrics, training.label_smoothing)
    return model


def model_defaults(model_or_name, ds):
    """Return (config entry for the model, seed `ModelInfo` giving the defaults or None).

    The entry is the seed model's name or the spec list, None for a ready `keras.Model`.

    Raises:
        TrainingError: no model given and no seed model for the dataset, or not a model.
        ai8x_nb.models.UnknownModelError: an unknown seed model name.
    """
    if isinstance(model_or_name, keras.Model):
        return None, models.model_for_dataset(ds.name)
    if model_or_name is None:
        info = models.model_for_dataset(ds.name)
        if info is None:
            raise TrainingError(f"No seed model for dataset {ds.name!r}; pass a model (a "
                                f"keras.Model, a seed name {models.model_names()} or a spec).")
        return info.name, info
    if isinstance(model_or_name, str):
        info = models.get_info(model_or_name)
        return info.name, info
    if isinstance(model_or_name, (list, tuple)):
        return list(model_or_name), models.model_for_dataset(ds.name)
    raise TrainingError(f"model={type(model_or_name).__name__} is not a keras.Model, a seed "
                        f"model name {models.model_names()} or a model spec list.")


def plan_device(model_or_name, device):
    """The device name a run trains for: `device` (None: the default), or a ready model's.

    A ready `keras.Model` keeps the device its layers were built for, so a `device` that
    differs from it is refused (and, for a model without hardware layers, ignored with a
    warning).

    Raises:
        TrainingError: `device` differs from a ready model's.
    """
    if not isinstance(model_or_name, keras.Model):
        return get_device(device).name
    _check_ready_model_device(model_or_name, device)
    return model_device(model_or_name, device).name


def build_model(model_or_name, ds, device):
    """Build a seed model (by name) or a spec list for `device` (a name, or None: the
    default device)."""
    if isinstance(model_or_name, str):
        return models.get_info(model_or_name).build(device)
    from ai8x_nb.spec import spec_to_model  # lazy: separate module

    return spec_to_model(list(model_or_name), ds.input_shape, ds.num_classes, device)


def check_shapes(model, ds):
    """Refuse a model whose input or output does not fit the dataset's samples and classes."""
    check_input_shape(model, ds.input_shape, ds.name, error=TrainingError)
    outputs = model.outputs[0].shape[-1]
    if outputs is not None and outputs < ds.num_classes:
        raise TrainingError(f"Model '{model.name}' has {outputs} outputs but dataset "
                            f"{ds.name!r} has {ds.num_classes} classes.")


def make_optimizer(optimizer, lr, weight_decay=0.0):
    """Return a Keras optimizer: "adam", "sgd" (momentum 0.9) or an optimizer instance.

    `weight_decay` (a recipe's) is Keras' decoupled weight decay of the named optimizers; an
    optimizer instance keeps its own.

    Raises:
        TrainingError: unknown optimizer name.
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if lr is not None:
            optimizer.learning_rate = lr
        return optimizer
    name = str(optimizer).lower()
    decay = float(weight_decay) or None
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=decay)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, weight_decay=decay)
    raise TrainingError(f"optimizer={optimizer!r} is not supported; use one of {OPTIMIZERS} "
                        f"or pass a keras.optimizers.Optimizer instance.")


def compile_model(model, optimizer, metrics, label_smoothing=0.0):
    """Compile with sparse categorical cross-entropy on logits; always tracks accuracy.

    `label_smoothing` (a recipe's) smooths the cross-entropy's targets.
    """
    from ai8x_nb.losses import make_loss

    metrics = list(metrics or ())
    if not any(isinstance(m, str) and m.lower() in ("accuracy", "acc") for m in metrics):
        metrics.append("accuracy")
    model.compile(optimizer=optimizer,
                  loss=make_loss(label_smoothing), metrics=metrics, jit_compile=False)


def _check_ready_model_device(model, device):
    if device is None:
        return
    wanted = get_device(device).name
    if not any(isinstance(layer, HardwareLayer) for layer in model.layers):
        logger.warning("train(device=%r) is ignored: model '%s' has no ai8x_nb hardware "
                       "layers, so it is built for no device.", device, model.name)
        return
    built_for = model_device(model).name
    if built_for != wanted:
        raise TrainingError(
            f"train(device={device!r}) does not match model '{model.name}', whose layers are "
            f"built for {built_for}; a ready model keeps its layers' device. Build the model "
            f"for {wanted} (e.g. spec_to_model(..., device={wanted!r})), or leave device=None.")
