"""tf.data pipelines over in-memory splits."""

from __future__ import annotations

from ai8x_nb.datasets.augment import augment_batch, augment_seed
from ai8x_nb.datasets.base import Split
from ai8x_nb.errors import DatasetError


def make_tf_dataset(split: Split, batch_size: int, *, shuffle: bool = False, seed: int = 42, repeat: bool = False):
    """Build a `tf.data.Dataset` of `(float32 x / 128, int64 y)` batches.

    The int8 arrays stay int8 until batching; the conversion to the training
    view is one vectorised map per batch. Batches are prefetched (AUTOTUNE).

    Args:
        split: a `Split` (int8 x, int64 y).
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: reshuffle the whole split each epoch with `seed`.
        seed: shuffle seed.
        repeat: repeat forever (for `steps_per_epoch` training).

    Returns:
        A `tf.data.Dataset`.

    Raises:
        DatasetError: `batch_size` is not a positive int.

    Example:
        >>> train = make_tf_dataset(ds.train, 256, shuffle=True)  # doctest: +SKIP
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive int, got {batch_size!r}.")
    import tensorflow as tf  # heavy: imported only when a pipeline is built

    data = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if shuffle:
        data = data.shuffle(max(len(split), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size)
    data = data.map(
        lambda x, y: (tf.cast(x, tf.float32) / 128.0, tf.cast(y, tf.int64)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return data.prefetch(tf.data.AUTOTUNE)


def epoch_order(seed: int, epoch: int, count: int):
    """The order in which training sees the `count` samples in epoch `epoch`.

    A pure function of `(seed, epoch)`: a run stopped after any epoch and resumed sees the
    same order in every later epoch as a run that was never stopped.

    Args:
        seed: the run's seed.
        epoch: the 0-based epoch.
        count: number of samples.

    Returns:
        An int64 permutation of `range(count)`.

    Example:
        >>> epoch_order(42, 3, 5).tolist() == epoch_order(42, 3, 5).tolist()
        True
    """
    import numpy as np

    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(count)).astype(np.int64)


def make_epoch_dataset(split: Split, batch_size: int, *, seed: int, first_epoch: int, epochs: int,
                       augmentation=None):
    """Training batches for epochs `first_epoch..epochs-1`, each in its `epoch_order`.

    One `tf.data.Dataset` spans all the epochs: pass `steps_per_epoch=steps_per_epoch(...)`
    to `model.fit`. Samples are gathered from the in-memory arrays batch by batch (nothing
    is copied into the TensorFlow graph) and converted to `(float32 x / 128, int64 y)`.

    Args:
        split: the training `Split`.
        batch_size: samples per batch (the last batch of an epoch may be smaller).
        seed: the run's seed.
        first_epoch: the first epoch to produce (the resumed epoch).
        epochs: one past the last epoch.
        augmentation: an `ai8x_nb.datasets.augment.Augmentation` applied to every training
            batch, seeded by `(seed, epoch, batch)` (so resumed runs see the same batches),
            or None.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        DatasetError: `batch_size` is not a positive int, or the split is empty.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive int, got {batch_size!r}.")
    if len(split) == 0:
        raise DatasetError(f"Split {split.name!r} is empty: nothing to train on.")
    import tensorflow as tf

    x, y, count = split.x, split.y, len(split)
    sample_shape = tuple(x.shape[1:])

    def order(epoch):
        return epoch_order(seed, int(epoch), count)

    def gather(index):
        return x[index], y[index]

    def epoch_batches(epoch):
        index = tf.numpy_function(order, [epoch], tf.int64, stateful=False)
        batches = tf.data.Dataset.from_tensor_slices(tf.ensure_shape(index, (count,))).batch(batch_size)
        # Each batch carries (epoch, batch number): the stateless augmentation seed.
        return batches.enumerate().map(lambda number, index: (epoch, number, index))

    def load(epoch, number, index):
        xb, yb = tf.numpy_function(gather, [index], (tf.int8, tf.int64), stateful=False)
        xb = tf.ensure_shape(xb, (None,) + sample_shape)
        yb = tf.ensure_shape(yb, (None,))
        xb = tf.cast(xb, tf.float32) / 128.0
        if augmentation is not None and augmentation.active:
            xb = augment_batch(xb, augmentation, augment_seed(seed, epoch, number))
        return xb, yb

    data = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches per epoch of `count` samples (the last one may be smaller)."""
    return -(-int(count) // int(batch_size))
