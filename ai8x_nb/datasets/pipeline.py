"""tf.data pipelines over in-memory splits."""

from __future__ import annotations

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
