"""`train`: one call from a model and a dataset to a run folder with checkpoints and results."""

import dataclasses
import importlib.util
import logging
import math
import os
import sys
import time

import keras

from ai8x_nb import datasets, models
from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.models.schedules import CosineSchedule, reduce_on_plateau
from ai8x_nb.runs import HISTORY, LAST, TENSORBOARD, RunDir, new_run_dir
from ai8x_nb.training import callbacks as cb
from ai8x_nb.training.results import TrainResult, evaluate_split, read_history, truncate_history

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 1e-3
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("seed", "cosine", "constant")


class TrainingError(Ai8xNbError, ValueError):
    """A training argument that cannot be used (unknown optimizer, model/data mismatch, ...)."""


def auto_verbose():
    """Keras verbosity: a progress bar (1) in a terminal or notebook, one line per epoch (2)
    when headless (CI, redirected logs)."""
    if os.environ.get("CI"):
        return 2
    ipython = sys.modules.get("IPython")
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None:
        return 1
    return 1 if sys.stdout.isatty() else 2


def make_optimizer(optimizer, lr):
    """Return a Keras optimizer: "adam", "sgd" (momentum 0.9) or an optimizer instance.

    Raises:
        TrainingError: unknown optimizer name.
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if lr is not None:
            optimizer.learning_rate = lr
        return optimizer
    name = str(optimizer).lower()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    raise TrainingError(f"optimizer={optimizer!r} is not supported; use one of {OPTIMIZERS} "
                        f"or pass a keras.optimizers.Optimizer instance.")


def compile_model(model, optimizer, metrics):
    """Compile with sparse categorical cross-entropy on logits; always tracks accuracy."""
    metrics = list(metrics or ())
    if "accuracy" not in metrics:
        metrics.append("accuracy")
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=metrics, jit_compile=False)


def resolve_policy(qat_policy, epochs):
    """Load a QAT policy and make its start epoch fit in `epochs` (None: no QAT).

    A policy that would start at or after the last epoch (e.g. the default start 30 in a
    2-epoch smoke run) starts at `epochs // 2` instead, with a warning.
    """
    if qat_policy is None:
        return None
    from ai8x_nb import quantize  # lazy: QAT is optional

    policy = qat_policy if isinstance(qat_policy, quantize.QATPolicy) else (
        quantize.load_policy(qat_policy))
    if policy.start_epoch >= epochs:
        start = epochs // 2
        logger.warning("QAT policy start_epoch=%d is not before the last of %d epochs; "
                       "starting QAT at epoch %d instead (half the run). Train longer or "
                       "lower start_epoch to follow the policy.", policy.start_epoch, epochs,
                       start)
        policy = dataclasses.replace(policy, start_epoch=start)
    return policy


def _policy_dict(policy):
    if policy is None:
        return None
    return policy.to_dict()


def _load_dataset(dataset_or_name, data_dir, dataset_kwargs):
    kwargs = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
              for k, v in (dataset_kwargs or {}).items()}
    if data_dir is not None:
        kwargs["data_dir"] = os.fspath(data_dir)
    if isinstance(dataset_or_name, datasets.Dataset):
        return dataset_or_name, kwargs  # kwargs are only recorded, for RunDir.load_dataset
    return datasets.load(dataset_or_name, **kwargs), kwargs


def _build_model(model_or_name, ds, device):
    """Return (model, config entry for the model, ModelInfo giving the defaults or None)."""
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
    if isinstance(model_or_name, keras.Model):
        return model_or_name, None, models.model_for_dataset(ds.name)
    raise TrainingError(f"model={type(model_or_name).__name__} is not a keras.Model, a seed "
                        f"model name {models.model_names()} or a model spec list.")


def _check_shapes(model, ds):
    want = tuple(model.inputs[0].shape[1:])
    have = ds.input_shape
    if None not in want and math.prod(want) != math.prod(have):
        raise TrainingError(f"Model '{model.name}' takes inputs of shape {want} but dataset "
                            f"{ds.name!r} has samples of shape {have}. Build the model for "
                            f"this dataset (input shape {have}).")
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


def _schedule_name(schedule):
    if schedule is None:
        return "constant"
    if isinstance(schedule, str):
        return "seed" if schedule.lower() == "auto" else schedule.lower()
    return type(schedule).__name__


def train(model_or_name=None, dataset_or_name=None, *, epochs, batch_size=None,
          optimizer=None, lr=None, metrics=("accuracy",), qat_policy=None, out="logs",
          run_dir=None, seed=42, data_dir=None, dataset_kwargs=None, verbose="auto",
          callbacks=(), device="MAX78000", schedule="seed", warmup_epochs=0.3, name=None):
    """Train a model, with checkpoints, resume, optional QAT and a test-split evaluation.

    Args:
        model_or_name: a `keras.Model`, a seed model name (`ai8x_nb.models.model_names()`),
            a model spec list (`ai8x_nb.spec`), or None for the dataset's seed model.
        dataset_or_name: an `ai8x_nb.datasets.Dataset` or a dataset name; None with a seed
            model name uses that model's dataset.
        epochs: total number of epochs (on resume: the new total).
        batch_size: default: the seed model's (else 64).
        optimizer: "adam", "sgd" (momentum 0.9) or a `keras.optimizers.Optimizer`;
            default: the seed's ("adam").
        lr: initial learning rate; default: the seed's (else 1e-3).
        metrics: Keras metrics; "accuracy" is always tracked.
        qat_policy: None (no QAT), "default", a policy YAML path, a dict or a
            `ai8x_nb.quantize.QATPolicy`. A start epoch that does not fit in `epochs` is
            moved to `epochs // 2` (logged).
        out: parent folder of new run folders.
        run_dir: a run folder; if it holds `last.keras` + `state.json` the run resumes from
            there (model, optimizer, schedule, bests) with its saved configuration.
        seed: random seed (weights init, shuffling, dropout).
        data_dir: folder of the datasets (default: `AI8X_NB_DATA`, else ./data).
        dataset_kwargs: more `ai8x_nb.datasets.load` arguments (folder, allow_partial,
            limit, ...). With a `Dataset` object they are only recorded in config.json.
        verbose: "auto" (progress bar when interactive, one line per epoch headless), 0, 1, 2.
        callbacks: extra Keras callbacks, run after the built-in ones.
        device: "MAX78000" or "MAX78002" (seed models and specs are built for it).
        schedule: "seed" (the seed model's LR schedule, else ReduceLROnPlateau; alias
            "auto"), "cosine" (per-step cosine decay from `lr` to 0 over the run: the choice
            for short runs, where the seeds' 100-epoch schedules never act), "constant" or
            None, or a Keras callback. Names are saved in config.json and used on resume.
        warmup_epochs: linear warm-up before the cosine decay, in epochs (fractions allowed;
            default 0.3: a short ramp keeps Adam's first steps at the peak rate from pushing
            the clamped activations into saturation; used by "cosine" only).
        name: run folder name suffix (default: the model name).

    Returns:
        A `TrainResult`; `model` is the run's best checkpoint (`qat_best.keras` when QAT ran,
        else `best.keras`), and `test_accuracy` is measured on the TEST split.

    Raises:
        TrainingError: bad arguments (optimizer, shapes). Dataset, model and QAT errors
            come from their modules.

    Example:

    >>> result = train("mnist", epochs=3)  # doctest: +SKIP
    >>> result.test_accuracy  # doctest: +SKIP
    0.9912
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise TrainingError(f"epochs must be a positive int, got {epochs!r}.")
    run = RunDir(run_dir) if run_dir is not None else None
    if run is not None and run.can_resume:
        return _resume(run, dataset_or_name, epochs, verbose, callbacks)

    ds, ds_kwargs = _load_dataset(
        dataset_or_name if dataset_or_name is not None else (
            models.get_info(model_or_name).dataset if isinstance(model_or_name, str) else None),
        data_dir, dataset_kwargs)
    keras.utils.set_random_seed(seed)
    model, model_ref, info = _build_model(model_or_name, ds, device)
    _check_shapes(model, ds)
    batch_size = batch_size or (info.batch_size if info else DEFAULT_BATCH_SIZE)
    lr = lr if lr is not None else (info.lr if info else DEFAULT_LR)
    optimizer = optimizer if optimizer is not None else (info.optimizer if info else "adam")
    policy = resolve_policy(qat_policy, epochs)
    lr_schedule = make_schedule(schedule, info, lr, epochs, warmup_epochs)
    compile_model(model, make_optimizer(optimizer, lr), metrics)

    if run is None:
        run = new_run_dir(out, name or (model_ref if isinstance(model_ref, str) else model.name))
    else:
        run.path.mkdir(parents=True, exist_ok=True)
    config = {
        "dataset": ds.name,
        "dataset_kwargs": ds_kwargs,
        "model": model_ref if model_ref is not None else _try_spec(model),
        "model_name": model.name,
        "defaults_from": info.name if info else None,
        "device": model_device(model, device),
        "epochs": epochs,
        "batch_size": int(batch_size),
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "lr": float(lr),
        "schedule": _schedule_name(schedule),
        "warmup_epochs": float(warmup_epochs),
        "metrics": [m if isinstance(m, str) else type(m).__name__ for m in metrics],
        "seed": seed,
        "qat_policy": _policy_dict(policy),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    run.write_config(config)
    logger.info("Run folder: %s", run.path)
    return _fit(run, model, ds, config, policy, lr_schedule, initial_epoch=0,
                state=None, verbose=verbose, callbacks=callbacks)


def model_device(model, default):
    """The device name of the model's hardware layers (else `default`)."""
    for layer in model.layers:
        device = getattr(layer, "device", None)
        if device is not None and hasattr(device, "name"):
            return device.name
    return str(default)


def _try_spec(model):
    try:
        from ai8x_nb.spec import model_to_spec
    except ImportError:
        return None
    try:
        return model_to_spec(model)
    except (Ai8xNbError, ValueError, TypeError, NotImplementedError) as err:
        logger.debug("No spec for model %s: %s", model.name, err)
        return None


def _resume(run, dataset, epochs, verbose, callbacks):
    config, state = run.config, run.state
    initial_epoch = int(state["epochs_completed"])
    logger.info("Resuming %s after epoch %d of %d.", run.path, initial_epoch, epochs)
    if isinstance(dataset, datasets.Dataset):
        ds = dataset
    else:
        ds = run.load_dataset()
    keras.utils.set_random_seed(int(config.get("seed", 42)) + initial_epoch)
    model = run.load_model(LAST, compile=True)
    config["epochs"] = epochs
    run.write_config(config)
    policy = resolve_policy(config.get("qat_policy"), epochs)
    info = models.MODELS.get(config.get("defaults_from") or "")
    truncate_history(run.file(HISTORY), initial_epoch)
    return _fit(run, model, ds, config, policy, _resume_schedule(config, info, epochs),
                initial_epoch=initial_epoch, state=state, verbose=verbose, callbacks=callbacks)


def _resume_schedule(config, info, epochs):
    """The schedule a run was started with (a custom callback cannot be saved: the seed's)."""
    name = config.get("schedule", "seed")
    if name not in SCHEDULES:
        logger.warning("Run was trained with schedule %s, which cannot be restored; resuming "
                       "with the seed schedule.", name)
        name = "seed"
    return make_schedule(name, info, config["lr"], epochs, config.get("warmup_epochs", 0.0))


def _fit(run, model, ds, config, policy, schedule, *, initial_epoch, state, verbose, callbacks):
    epochs, batch_size = config["epochs"], config["batch_size"]
    valid = ds.valid if len(ds.valid) else None
    monitor = "val_accuracy" if valid is not None else "accuracy"
    if valid is None:
        logger.warning("Dataset %r has no validation samples; checkpoints follow the training "
                       "accuracy.", ds.name)
    state = state or {}
    phase = cb.PhaseCheckpoint(run, monitor, best=state.get("best"),
                               qat_best=state.get("qat_best"))
    cbs = []
    if policy is not None:
        from ai8x_nb import quantize

        cbs.append(quantize.QATCallback(policy))
    cbs.append(cb.EpochTimer())
    if schedule is not None:
        cbs.append(schedule)
    cbs += [
        phase,
        keras.callbacks.CSVLogger(os.fspath(run.file(HISTORY)), append=True),
        cb.ResumeCheckpoint(run, phase, schedule, restore=state),
        *_tensorboard(run),
        keras.callbacks.TerminateOnNaN(),
        *callbacks,
    ]
    if initial_epoch < epochs:
        seed = int(config.get("seed", 42)) + initial_epoch
        train_data = datasets.make_tf_dataset(ds.train, batch_size, shuffle=True, seed=seed)
        valid_data = None if valid is None else datasets.make_tf_dataset(valid, batch_size)
        model.fit(train_data, validation_data=valid_data, epochs=epochs,
                  initial_epoch=initial_epoch, callbacks=cbs, shuffle=False,
                  verbose=auto_verbose() if verbose == "auto" else verbose)
    return _finish(run, model, ds, config)


def _tensorboard(run):
    """The TensorBoard callback, or nothing when the `tensorboard` package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        logger.info("TensorBoard logs skipped: the tensorboard package is not installed "
                    "(pip install tensorboard).")
        return []
    return [keras.callbacks.TensorBoard(os.fspath(run.file(TENSORBOARD)), write_graph=False)]


def _finish(run, model, ds, config):
    try:
        path = run.model_path()
        best = run.load_model(path.name)
    except Ai8xNbError:
        path, best = None, model
    report = evaluate_split(best, ds.test, ds.num_classes, config["batch_size"])
    history = read_history(run.file(HISTORY))
    results = {
        "dataset": ds.name,
        "split": "test",
        "checkpoint": None if path is None else path.name,
        "test_accuracy": report["accuracy"],
        "test_loss": report["loss"],
        "test_samples": report["count"],
        "epochs_completed": len(history.get("epoch", [])),
        "class_names": list(ds.class_names),
        "confusion_matrix": report["confusion_matrix"].tolist(),
    }
    run.write_results(results)
    logger.info("Test accuracy (%s, %d samples, test split): %.4f", results["checkpoint"],
                report["count"], report["accuracy"])
    return TrainResult(run, history, report["accuracy"], report["confusion_matrix"], best,
                       list(ds.class_names))
