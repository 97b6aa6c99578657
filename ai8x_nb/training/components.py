"""The parts `train` assembles: dataset, model, optimizer, LR schedule and QAT policy."""

import dataclasses
import logging
import os

import keras

from ai8x_nb import datasets, models
from ai8x_nb.modelio.inputs import check_input_shape, model_device
from ai8x_nb.devices import get_device
from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.layers import HardwareLayer
from ai8x_nb.models.schedules import CosineSchedule, reduce_on_plateau
from ai8x_nb.parameters import OPTIMIZERS, SCHEDULES
from ai8x_nb.training.arguments import TrainingError

__all__ = ["make_optimizer", "compile_model", "resolve_policy", "policy_dict", "make_schedule",
           "schedule_name", "resume_schedule", "load_dataset", "build_model", "check_shapes",
           "try_spec"]

logger = logging.getLogger(__name__)


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


def resolve_policy(qat_policy, epochs, recipe=None):
    """Load a QAT policy and make its start epoch fit in `epochs` (None: no QAT).

    A policy that would start at or after the last epoch (e.g. the default start 30 in a
    2-epoch smoke run) starts at `epochs // 2` instead, with a warning. With the packaged
    "default" policy, a recipe with a `qat_fraction` sets the start (the policy's epoch 10 is
    written for long runs); a policy file or dict keeps its own start.
    """
    if qat_policy is None:
        return None
    from ai8x_nb import quantize  # lazy: QAT is optional
    from ai8x_nb.training.recipes import qat_start_epoch

    policy = qat_policy if isinstance(qat_policy, quantize.QATPolicy) else (
        quantize.load_policy(qat_policy))
    start = None
    if recipe is not None and isinstance(qat_policy, str) and qat_policy.lower() == "default":
        start = qat_start_epoch(recipe, epochs)
    if start is not None and start != policy.start_epoch:
        logger.info("QAT starts at epoch %d of %d (recipe %r).", start, epochs, recipe.name)
        policy = dataclasses.replace(policy, start_epoch=start)
    if policy.start_epoch >= epochs:
        start = epochs // 2
        logger.warning("QAT policy start_epoch=%d is not before the last of %d epochs; "
                       "starting QAT at epoch %d instead (half the run). Train longer or "
                       "lower start_epoch to follow the policy.", policy.start_epoch, epochs,
                       start)
        policy = dataclasses.replace(policy, start_epoch=start)
    return policy


def policy_dict(policy):
    if policy is None:
        return None
    return policy.to_dict()


def load_dataset(dataset_or_name, data_dir, dataset_kwargs):
    if dataset_or_name is None:
        raise TrainingError("No dataset: pass a dataset name or an ai8x_nb.datasets.Dataset, "
                            "or a seed model name (it brings its dataset).")
    kwargs = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
              for k, v in (dataset_kwargs or {}).items()}
    if data_dir is not None:
        kwargs["data_dir"] = os.fspath(data_dir)
    if isinstance(dataset_or_name, datasets.Dataset):
        ds = dataset_or_name  # kwargs are only recorded, for RunDir.load_dataset
    else:
        ds = datasets.load(dataset_or_name, **kwargs)
    if ds.source:  # a folder of your own: recorded by its path and content hash
        kwargs = {k: v for k, v in kwargs.items() if k in ("limit", "seed")}
        kwargs.update({k: v for k, v in ds.source.items() if k != "kind"})
    return ds, kwargs


def build_model(model_or_name, ds, device):
    """Return (model, config entry for the model, ModelInfo giving the defaults or None).

    `device` (a name, or None for MAX78000) builds a seed model or a spec; a ready
    `keras.Model` keeps the device its layers were built for, so a `device` that differs
    from it is refused (and, for a model without hardware layers, ignored with a warning).
    """
    if isinstance(model_or_name, keras.Model):
        _check_ready_model_device(model_or_name, device)
        return model_or_name, None, models.model_for_dataset(ds.name)
    if model_or_name is None:
        info = models.model_for_dataset(ds.name)
        if info is None:
            raise TrainingError(f"No seed model for dataset {ds.name!r}; pass a model (a "
                                f"keras.Model, a seed name {models.model_names()} or a spec).")
        return info.build(device), info.name, info
    if isinstance(model_or_name, str):
        info = models.get_info(model_or_name)
        return info.build(device), info.name, info
    if isinstance(model_or_name, (list, tuple)):
        from ai8x_nb.spec import spec_to_model  # lazy: separate module

        model = spec_to_model(list(model_or_name), ds.input_shape, ds.num_classes, device)
        return model, list(model_or_name), models.model_for_dataset(ds.name)
    raise TrainingError(f"model={type(model_or_name).__name__} is not a keras.Model, a seed "
                        f"model name {models.model_names()} or a model spec list.")


def check_shapes(model, ds):
    check_input_shape(model, ds.input_shape, ds.name, error=TrainingError)
    outputs = model.outputs[0].shape[-1]
    if outputs is not None and outputs < ds.num_classes:
        raise TrainingError(f"Model '{model.name}' has {outputs} outputs but dataset "
                            f"{ds.name!r} has {ds.num_classes} classes.")


def make_schedule(schedule, info, lr, epochs, warmup_epochs=0.0):
    """Return the LR-schedule callback (or None) for a schedule name or callback.

    Args:
        schedule: "seed" (alias "auto": the seed model's schedule, else ReduceLROnPlateau),
            "cosine" (per-step cosine decay to 0 over `epochs` after `warmup_epochs` of
            linear warm-up), "constant"/None (no schedule), or a Keras callback.
        info: the `ModelInfo` giving the seed schedule, or None.
        lr: the initial (peak) learning rate.
        epochs: total epochs of the run.
        warmup_epochs: warm-up length for "cosine".

    Raises:
        TrainingError: an unknown schedule name or a bad warm-up.
    """
    if schedule is None or isinstance(schedule, keras.callbacks.Callback):
        return schedule
    name = str(schedule).lower()
    if name in ("seed", "auto"):
        return info.lr_schedule(lr) if info is not None else reduce_on_plateau(lr)
    if name == "cosine":
        try:
            return CosineSchedule(lr, epochs, warmup_epochs=warmup_epochs)
        except ValueError as err:
            raise TrainingError(str(err)) from None
    if name == "constant":
        return None
    raise TrainingError(f"schedule={schedule!r} is not supported; use one of {SCHEDULES}, "
                        f"None or a keras.callbacks.Callback.")


def schedule_name(schedule):
    if schedule is None:
        return "constant"
    if isinstance(schedule, str):
        return "seed" if schedule.lower() == "auto" else schedule.lower()
    return type(schedule).__name__


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


def try_spec(model):
    """The model's spec, or None for a model a spec cannot describe (custom layers, branches)."""
    from ai8x_nb.spec import model_to_spec

    try:
        return model_to_spec(model)
    except (Ai8xNbError, ValueError, TypeError, NotImplementedError) as err:
        logger.debug("No spec for model %s: %s", model.name, err)
        return None


def resume_schedule(config, info, epochs):
    """The schedule a run was started with (a custom callback cannot be saved: the seed's)."""
    name = config.get("schedule", "seed")
    if name not in SCHEDULES:
        logger.warning("Run was trained with schedule %s, which cannot be restored; resuming "
                       "with the seed schedule.", name)
        name = "seed"
    return make_schedule(name, info, config["lr"], epochs, config.get("warmup_epochs", 0.0))
