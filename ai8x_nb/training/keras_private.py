"""The Keras private members multi-worker training relies on, fenced in one module.

Keras 3 cannot yet run `tf.distribute.MultiWorkerMirroredStrategy` through `fit`
(keras-team/keras#20585): it reduces each step's scalar logs with `axis=0` and learns the
model's input shapes by reducing a distributed batch. `multiworker_log_reduction` and
`build_on_local_batch` work around both by swapping private Keras members; `batch_norm_layers`
walks nested models with a private iterator. Nothing else in the package touches Keras
internals. `check_keras_private` (run by the test suite) names every member used here and
fails, naming the Keras version, when one is gone or takes other arguments.
"""

import contextlib
import inspect

__all__ = ["PRIVATE_MEMBERS", "KerasPrivateError", "check_keras_private",
           "multiworker_log_reduction", "build_on_local_batch", "batch_norm_layers"]

PRIVATE_MEMBERS = (
    ("keras.src.backend.tensorflow.trainer", "reduce_per_replica",
     ("values", "strategy", "reduction")),
    ("keras.Model", "_symbolic_build", ("self", "iterator", "data_batch")),
    ("keras.Model", "_maybe_symbolic_build", ("self", "iterator", "data_batch")),
    ("keras.Model", "_flatten_layers", ("self", "include_self", "recursive")),
)
"""(where, member, its parameter names): every private Keras member this module uses."""


class KerasPrivateError(RuntimeError):
    """A Keras private member the multi-worker path relies on changed."""


def _owner(where):
    import importlib

    import keras

    if where == "keras.Model":
        return keras.Model
    return importlib.import_module(where)


def check_keras_private():
    """Check that every member of `PRIVATE_MEMBERS` exists with the parameters used here.

    Raises:
        KerasPrivateError: the members that are gone or changed, with the Keras version and
            what to do.
    """
    import keras

    problems = []
    for where, name, params in PRIVATE_MEMBERS:
        member = getattr(_owner(where), name, None)
        if member is None:
            problems.append(f"{where}.{name} is gone")
            continue
        found = tuple(inspect.signature(member).parameters)
        if found != params:
            problems.append(f"{where}.{name} takes {found}, not {params}")
    if problems:
        raise KerasPrivateError(
            f"Keras {keras.__version__} changed what ai8x_nb.training.keras_private relies on: "
            f"{'; '.join(problems)}. Adapt that module (multi-worker training), or pin the "
            f"Keras version it was written for.")


@contextlib.contextmanager
def multiworker_log_reduction(strategy):
    """Inside this context, Keras averages each step's logs over `strategy`'s replicas with
    `axis=None` (Keras' own `axis=0` fails on a scalar over several workers); the train
    step, the optimizer and the epoch metrics stay Keras' own, and other strategies keep
    Keras' reduction."""
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy_, reduction):
        if strategy_ is strategy and reduction in ("auto", "mean"):
            import tensorflow as tf

            def mean(value):
                if isinstance(value, tf.distribute.DistributedValues):
                    return strategy.reduce("MEAN", value, axis=None)
                return value

            return tf.nest.map_structure(mean, values)
        return keras_reduce(values, strategy_, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = keras_reduce


def build_on_local_batch(model, batch):
    """Build the model's metrics and optimizer from one local batch, and skip the build Keras
    would attempt in `fit` on a distributed batch (call it under the strategy's scope)."""
    model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = _built_already


def _built_already(iterator=None, data_batch=None):
    """`Model._maybe_symbolic_build` once `build_on_local_batch` has built the model."""


def batch_norm_layers(model):
    """Every `keras.layers.BatchNormalization` inside `model`, nested models included."""
    import keras

    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]
