"""Data-parallel training on the backend's own engine: `train(..., distribute=...)`.

* TensorFlow, "mirrored": `tf.distribute.MirroredStrategy` over the local GPUs (else the
  logical CPUs) of this machine.
* TensorFlow, "multiworker": `tf.distribute.MultiWorkerMirroredStrategy`, the cluster and this
  process's place in it read from the `TF_CONFIG` environment variable (`cluster`). Worker 0
  (or the "chief") writes the run folder; the other workers write theirs into a scratch folder.
* JAX, "mirrored": `keras.distribution.DataParallel` over the local devices (one program,
  every batch sharded over the devices; XLA inserts the reductions).

The global batch stays the run's `batch_size`; each replica computes `batch_size / replicas`
of it and the gradients are summed, so a step is the step of one device with the whole batch
(up to float rounding: the loss curve and the exported integers of a run equal the
one-device run's, see tests/test_distribute.py). BatchNorm statistics are those of the global
batch too: on TensorFlow every BatchNormalization layer is switched to `synchronized=True`
(under JAX the program is global already). Keras computes the synchronized variance as
E[x^2] - E[x]^2, which on some activations loses about three digits against the one-device
formula (its first gradients differ by ~1e-3 relative), so a TensorFlow model with BatchNorm
drifts from the one-device run, by a few percent of the loss within three epochs in the
test. Dropout layers draw their own masks per replica, so a model with Dropout follows
another random path than on one device.

The model, its optimizer and every variable made later (the QAT switch rebuilds the
optimizer) are created under the strategy's scope: `train` builds, compiles or reloads the
model and runs `fit` inside `Distribution.scope()`. The test-split evaluation and the
returned model are outside it, on one device.

Example:

>>> from ai8x_nb.training import train
>>> result = train("mnist", epochs=10, distribute="mirrored")  # doctest: +SKIP
"""

import contextlib
import dataclasses
import json
import logging
import os

from ai8x_nb.parameters import DISTRIBUTE, check_value
from ai8x_nb.training.cluster import TF_CONFIG, DistributeError, parse_tf_config, worker_run
from ai8x_nb.training.keras_private import (batch_norm_layers, build_on_local_batch,
                                           multiworker_log_reduction)

__all__ = ["DISTRIBUTE", "Distribution", "DistributeError", "check_distribute",
           "make_distribution", "resume_distribute", "worker_run", "scope"]

logger = logging.getLogger(__name__)

_BACKENDS = ("tensorflow", "jax")


def check_distribute(value):
    """Check a `distribute` argument; return it lower-cased ("mirrored", "multiworker") or None.

    Args:
        value: None (one device), "mirrored" or "multiworker", any case.

    Raises:
        ai8x_nb.errors.ParameterError: another value (the parameter table's rule).

    Example:

    >>> check_distribute("Mirrored")
    'mirrored'
    >>> check_distribute("horovod")
    Traceback (most recent call last):
    ...
    ai8x_nb.errors.ParameterError: distribute='horovod' is invalid: ...
    """
    return check_value("distribute", value)


@dataclasses.dataclass
class Distribution:
    """How a run spreads its batches over devices.

    Attributes:
        name: "mirrored" or "multiworker".
        backend: the Keras backend ("tensorflow" or "jax").
        engine: the `tf.distribute.Strategy` or `keras.distribution.DataParallel`.
        replicas: number of replicas sharing each batch (over all workers).
        chief: True when this process writes the run folder (always, except on the
            non-chief workers of a multi-worker cluster).
        worker: this process's `task_type:task_index` in a cluster, else None.
    """

    name: str
    backend: str
    engine: object
    replicas: int
    chief: bool = True
    worker: str = None

    def scope(self):
        """The context under which variables are made and `fit` runs."""
        if self.name == "multiworker":
            return _multiworker_scope(self.engine)
        return self.engine.scope()

    def adopt(self, model):
        """A copy of a model built outside `scope()`, with its weights, made under it.

        The caller's `keras.Model` keeps its own variables; the run trains the copy (the
        strategy must own every variable it trains).
        """
        import keras

        with self.scope():
            copy = keras.models.clone_model(model)
            copy.set_weights(model.get_weights())
        logger.info("distribute=%r: training a copy of model '%s' made under the strategy.",
                    self.name, model.name)
        return copy

    def prepare_model(self, model):
        """Make BatchNorm use global-batch statistics (TensorFlow; JAX computes them anyway).

        Returns:
            The number of BatchNormalization layers switched.
        """
        if self.backend != "tensorflow" or self.replicas < 2:
            return 0
        switched = 0
        for layer in batch_norm_layers(model):
            if not layer.synchronized:
                layer.synchronized = True
                switched += 1
        if switched:
            logger.info("distribute=%r: %d BatchNormalization layer(s) use the statistics of "
                        "the global batch (synchronized over %d replicas).", self.name,
                        switched, self.replicas)
        return switched

    def check_batches(self, batch_size, splits):
        """Check that `batch_size` (and, under JAX, every batch of `splits`) splits evenly.

        Args:
            batch_size: the global batch size.
            splits: {name: number of samples} of the splits `fit` batches (train, valid).

        Raises:
            DistributeError: a batch that the replicas cannot share evenly.
        """
        n = self.replicas
        if batch_size % n:
            raise DistributeError(
                f"batch_size={batch_size} is invalid with distribute={self.name!r}: the "
                f"global batch is split over {n} replicas, so it must be a multiple of {n}. "
                f"Pass batch_size={max(n, batch_size - batch_size % n)} or "
                f"{batch_size + n - batch_size % n}.")
        if self.backend != "jax":
            return  # tf.distribute splits a smaller last batch itself
        for split, count in splits.items():
            last = count % batch_size
            if count % n:
                raise DistributeError(
                    f"The {split} split has {count} samples: under JAX, distribute={self.name!r} "
                    f"shards every batch evenly over {n} devices, and its last batch of "
                    f"{last or batch_size} samples cannot be. Use a sample limit that is a "
                    f"multiple of {n} (e.g. limit={count - count % n}), or the TensorFlow "
                    f"backend, which splits an uneven last batch.")

    def before_fit(self, model, train_data):
        """Build the model's metrics and optimizer from one local batch before `fit`.

        Keras 3 learns the input shapes of a strategy's first `fit` by reducing a distributed
        batch over the replicas, which MultiWorkerMirroredStrategy cannot do
        (keras-team/keras#20585). Here the same build runs on a local batch, and the model's
        own attempt is skipped; mirrored strategies keep Keras' path.
        """
        if self.name != "multiworker":
            return
        batch = next(iter(train_data))
        with self.scope():
            build_on_local_batch(model, batch)

    def prepare_dataset(self, data):
        """Shard a multi-worker `tf.data.Dataset` by batches (our pipelines read no files)."""
        if self.name != "multiworker":
            return data
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        return data.with_options(options)


@contextlib.contextmanager
def _multiworker_scope(strategy):
    """The strategy's scope, with Keras' per-step log reduction fixed for several workers
    (`ai8x_nb.training.keras_private.multiworker_log_reduction`, keras-team/keras#20585)."""
    with strategy.scope(), multiworker_log_reduction(strategy):
        yield


def scope(distribution):
    """`distribution.scope()`, or a no-op context when training on one device."""
    return contextlib.nullcontext() if distribution is None else distribution.scope()


def _backend():
    import keras

    return keras.backend.backend()


def make_distribution(name, *, environ=None):
    """Create the distribution engine for a checked `distribute` value.

    Args:
        name: None, "mirrored" or "multiworker" (see `check_distribute`).
        environ: the environment to read `TF_CONFIG` from (default `os.environ`).

    Returns:
        A `Distribution`, or None for None.

    Raises:
        DistributeError: the backend cannot do it, `TF_CONFIG` is missing or wrong, or
            TensorFlow started before the multi-worker strategy could be made.
    """
    name = check_distribute(name)
    if name is None:
        return None
    backend = _backend()
    if backend not in _BACKENDS:
        raise DistributeError(
            f"distribute={name!r} is not available on the Keras backend {backend!r}: data-"
            f"parallel training runs on TensorFlow (tf.distribute) or JAX "
            f"(keras.distribution.DataParallel). Set KERAS_BACKEND=tensorflow or jax before "
            f"Keras is imported, or train without distribute.")
    if backend == "jax":
        if name == "multiworker":
            raise DistributeError(
                "distribute='multiworker' is not available under KERAS_BACKEND=jax: it "
                "builds on TensorFlow's MultiWorkerMirroredStrategy and TF_CONFIG. Use "
                "KERAS_BACKEND=tensorflow for several machines, or distribute='mirrored' "
                "(DataParallel over this machine's devices) under JAX.")
        return _jax_data_parallel()
    if name == "mirrored":
        return _tf_mirrored()
    return _tf_multiworker(parse_tf_config((environ or os.environ).get(TF_CONFIG)))


def _jax_data_parallel():
    import keras

    devices = keras.distribution.list_devices()
    engine = keras.distribution.DataParallel(devices=devices)
    _log_devices("mirrored", "keras.distribution.DataParallel", devices)
    return Distribution("mirrored", "jax", engine, len(devices))


def _tf_mirrored():
    import tensorflow as tf

    # MirroredStrategy() alone uses the GPUs, else only the first CPU: name the devices so
    # that logical CPUs (tf.config.set_logical_device_configuration) count too.
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")]
    key = ("mirrored", tuple(devices))
    engine = _STRATEGIES.get(key)
    if engine is None:
        engine = _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices=devices)
    _log_devices("mirrored", "tf.distribute.MirroredStrategy", devices)
    return Distribution("mirrored", "tensorflow", engine, int(engine.num_replicas_in_sync))


# One strategy per process and device set: TensorFlow configures collective ops once per
# process (the multi-worker strategy can be made only once), and the collectives of two
# strategies over the same devices (synchronized BatchNorm) would share instance keys.
_STRATEGIES = {}


def _tf_multiworker(cluster):
    import tensorflow as tf

    key = ("multiworker", json.dumps(cluster, sort_keys=True))
    engine = _STRATEGIES.get(key)
    if engine is None:
        if any(name == "multiworker" for name, _ in _STRATEGIES):
            raise DistributeError(
                f"{TF_CONFIG} changed within this process; TensorFlow joins one cluster per "
                f"process. Start a new process for the new cluster.")
        try:
            engine = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as err:
            raise DistributeError(
                f"distribute='multiworker' could not start: {err}. TensorFlow must join the "
                f"cluster before it runs any operation, so train in a fresh process (e.g. "
                f"`ai8x-nb train --distribute multiworker`, or call train() first thing in a "
                f"script), with the same {TF_CONFIG} cluster on every worker.") from None
        _STRATEGIES[key] = engine
    worker = f"{cluster['task_type']}:{cluster['task_index']}"
    logger.info("distribute='multiworker': %s of %d workers (%s), %d replicas in all%s.",
                worker, cluster["num_workers"], ", ".join(cluster["workers"]),
                engine.num_replicas_in_sync, "; this one writes the run folder"
                if cluster["chief"] else "")
    return Distribution("multiworker", "tensorflow", engine, int(engine.num_replicas_in_sync),
                        chief=cluster["chief"], worker=worker)


def _log_devices(name, engine, devices):
    logger.info("distribute=%r: %s over %d device(s): %s.", name, engine, len(devices),
                ", ".join(str(d) for d in devices))
    if len(devices) < 2:
        logger.warning("distribute=%r found one device only; training runs as without "
                       "distribute. (More GPUs, or on CPU: several logical devices.)", name)


def resume_distribute(config, given):
    """The `distribute` of a resumed run: its saved value; a different one is refused.

    Args:
        config: the run's config.json.
        given: the checked `distribute` argument (None: not given).

    Raises:
        DistributeError: `given` differs from the run's.
    """
    saved = config.get("distribute")
    if given is not None and given != saved:
        raise DistributeError(
            f"distribute={given!r} differs from the run's distribute={saved!r}; a run "
            f"continues the way it started. Drop distribute (--distribute) to continue with "
            f"the run's, or start a new run.")
    return saved
