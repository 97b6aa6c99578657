"""The checks of `train`'s arguments: the parameter table's rules (`ai8x_nb.parameters`, the
same for the CLI and the notebooks) applied to a call, plus what only a call can pass.

Every value is checked before anything is loaded or created (no run folder for a bad
argument), and 0 is a value, never "not given": only None means "use the default".
`resume_conflicts` compares the arguments given for a resume with the run's saved settings.
"""

import dataclasses
import math

from ai8x_nb.errors import ParameterError, TrainingError
from ai8x_nb.parameters import check_value, get_parameter

__all__ = ["TrainArgs", "check_train_args",
           "check_metrics", "resume_conflicts"]

DEFAULT_WARMUP_EPOCHS = 0.3
DEFAULT_METRICS = ("accuracy",)
_METRIC_ALIASES = ("accuracy", "acc", "crossentropy", "ce")  # Keras' compile() shorthands


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """`train` arguments after the checks; None still means "not given".

    Attributes:
        epochs, batch_size, optimizer, lr, metrics, schedule, warmup_epochs, seed, device:
            as passed to `train`, names lower-cased, `metrics` a tuple (or None).
        qat_policy: as passed to `train` (loaded when the run's plan is resolved).
        recipe: the `ai8x_nb.training.recipes.Recipe` given, or None.
        distribute: "mirrored", "multiworker" or None.
        data_dir, dataset_kwargs: as passed to `train` (`dataset_kwargs` a dict or None).
        init_from: the trained model file the run fine-tunes, or None.
    """

    epochs: int
    batch_size: int = None
    optimizer: object = None
    lr: float = None
    metrics: tuple = None
    schedule: object = None
    warmup_epochs: float = None
    seed: int = None
    device: str = None
    qat_policy: object = None
    recipe: object = None
    distribute: str = None
    data_dir: object = None
    dataset_kwargs: dict = None
    init_from: str = None


def _fail(name, value, expected, fix):
    raise ParameterError(f"{name}={value!r} is invalid: expected {expected}. {fix}")


def check_train_args(*, epochs, batch_size=None, optimizer=None, lr=None, metrics=None,
                     schedule=None, warmup_epochs=None, seed=None, device=None, qat_policy=None,
                     recipe=None, distribute=None, data_dir=None, dataset_kwargs=None,
                     init_from=None):
    """Check `train`'s arguments against the parameter table; return them as a `TrainArgs`.

    The rules are `ai8x_nb.parameters`' (the notebooks and the CLI check the same values
    with the same texts); `train` also takes a Keras optimizer, schedule callback or
    `QATPolicy` object where the table has names.

    Args:
        epochs: total epochs, an int >= 1.
        batch_size: None or an int >= 1.
        optimizer: None, "adam"/"sgd" (any case) or a `keras.optimizers.Optimizer`.
        lr: None or a finite learning rate > 0.
        metrics: None, a metric name, or a list of names / `keras.metrics.Metric`s.
        schedule: None, "seed"/"auto"/"cosine"/"constant" (any case) or a Keras callback.
        warmup_epochs: None or a finite number >= 0.
        seed: None or an int >= 0.
        device: None or a device name ("MAX78000", "MAX78002", ...).
        qat_policy: None, "default", a policy YAML path, a dict or a `QATPolicy` (loaded
            when the run's plan is resolved).
        recipe: None or a recipe name (any case) or `Recipe`.
        distribute: None, "mirrored" or "multiworker" (any case).
        data_dir: None or a folder.
        dataset_kwargs: None or a dict of `ai8x_nb.datasets.load` arguments.
        init_from: None or a trained model file (a path) to fine-tune.

    Returns:
        A `TrainArgs`.

    Raises:
        ai8x_nb.errors.ParameterError: the first bad argument, named with its value, what is
            expected and how to fix it.

    Example:

    >>> check_train_args(epochs=2, optimizer="Adam", lr=1e-3).optimizer
    'adam'
    >>> check_train_args(epochs=2, batch_size=0)
    Traceback (most recent call last):
    ...
    ai8x_nb.errors.ParameterError: batch_size=0 is invalid: expected an int >= 1 or None. ...
    """
    import keras

    from ai8x_nb.training.recipes import Recipe, get_recipe

    if epochs is None:
        _fail("epochs", epochs, "an int >= 1", get_parameter("epochs").fix)
    epochs = check_value("epochs", epochs)
    batch_size = check_value("batch_size", batch_size)
    seed = check_value("seed", seed)
    lr = check_value("lr", lr)
    warmup_epochs = check_value("warmup_epochs", warmup_epochs)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = check_value("optimizer", optimizer)
    if not isinstance(schedule, keras.callbacks.Callback):
        schedule = check_value("schedule", schedule)
    device = None if device is None else check_value("device", device)
    metrics = _metric_names(metrics)
    if not isinstance(recipe, Recipe):
        recipe = check_value("recipe", recipe)
    if qat_policy is None or isinstance(qat_policy, (str, dict)) or not _is_policy(qat_policy):
        check_value("qat_policy", qat_policy)
    check_value("data_dir", data_dir)
    if dataset_kwargs is not None and not isinstance(dataset_kwargs, dict):
        _fail("dataset_kwargs", dataset_kwargs, "a dict of ai8x_nb.datasets.load arguments",
              "Pass e.g. {'limit': 1000}.")
    return TrainArgs(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                     lr=None if lr is None else float(lr), metrics=metrics, schedule=schedule,
                     warmup_epochs=None if warmup_epochs is None else float(warmup_epochs),
                     seed=seed, device=device, qat_policy=qat_policy,
                     recipe=None if recipe is None else get_recipe(recipe),
                     distribute=check_value("distribute", distribute), data_dir=data_dir,
                     dataset_kwargs=dataset_kwargs,
                     init_from=None if init_from is None else str(check_value("init_from",
                                                                              init_from)))


def _is_policy(value):
    from ai8x_nb.quantize import QATPolicy  # lazy: QAT is optional

    return isinstance(value, QATPolicy)


def _metric_names(metrics):
    import keras

    if metrics is None:
        return None
    if isinstance(metrics, (str, keras.metrics.Metric)):
        metrics = (metrics,)
    try:
        metrics = tuple(metrics)
    except TypeError:
        _fail("metrics", metrics, "a metric name or a list of them",
              "Pass e.g. ['accuracy'].")
    for metric in metrics:
        if isinstance(metric, keras.metrics.Metric) or callable(metric):
            continue
        if not isinstance(metric, str):
            _fail("metrics", metric, "a metric name or a keras.metrics.Metric",
                  "Pass e.g. ['accuracy'].")
        if metric.lower() in _METRIC_ALIASES:
            continue
        try:
            keras.metrics.get(metric)
        except ValueError:
            _fail("metrics", metric, "a Keras metric name such as 'accuracy' or "
                  "'sparse_top_k_categorical_accuracy'", "Fix the name, or drop it: "
                  "accuracy is always tracked.")
    return metrics


def check_metrics(metrics, num_classes):
    """Compute each named metric once on dummy labels and logits, before training starts.

    A metric that Keras knows but that does not fit integer labels and `num_classes` logits
    (e.g. "mse") fails here with its name, not in the middle of the first epoch.

    Raises:
        TrainingError: a metric that cannot be computed on this task.
    """
    import keras
    import numpy as np

    y_true = np.zeros((2,), dtype="int64")
    y_pred = np.zeros((2, int(num_classes)), dtype="float32")
    for metric in metrics:
        if not isinstance(metric, str) or metric.lower() in _METRIC_ALIASES:
            continue
        try:
            keras.metrics.get(metric).update_state(y_true, y_pred)
        except Exception as err:  # noqa: BLE001 - backend errors (shape, dtype) of any kind
            err = str(err).strip().splitlines() or [type(err).__name__]
            raise TrainingError(
                f"metrics={metric!r} cannot be computed on class labels and {num_classes} "
                f"logits ({err[-1][:200]}). Use a classification metric such "
                f"as 'accuracy' or 'sparse_top_k_categorical_accuracy'.") from None


def _same(given, saved):
    if isinstance(given, float) or isinstance(saved, float):
        try:
            return math.isclose(float(given), float(saved), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    if isinstance(given, str) and isinstance(saved, str):
        return given.lower() == saved.lower()
    if isinstance(given, (list, tuple)) and isinstance(saved, (list, tuple)):
        return len(given) == len(saved) and all(_same(a, b) for a, b in zip(given, saved))
    return given == saved


def resume_conflicts(given, saved):
    """The arguments given for a resume that differ from the run's saved settings.

    Args:
        given: {name: value} of the arguments passed (None = not given, skipped).
        saved: the run's config.json.

    Returns:
        A list of "name=value (the run has saved)" strings, empty when nothing conflicts.

    Example:

    >>> resume_conflicts({"lr": 0.5, "dataset": "MNIST"}, {"lr": 0.001, "dataset": "mnist"})
    ['lr=0.5 (the run has 0.001)']
    """
    conflicts = []
    for name, value in given.items():
        if value is None or name not in saved:
            continue
        if not _same(value, saved[name]):
            conflicts.append(f"{name}={value!r} (the run has {saved[name]!r})")
    return conflicts
