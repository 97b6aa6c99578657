"""Training-time data augmentation on the tf.data pipeline, reproducible per (seed, epoch, batch).

Every random draw is a stateless TensorFlow op seeded from `(seed, epoch, batch)`, like the
epoch order of `ai8x_nb.datasets.pipeline.epoch_order`: a run resumed after any epoch sees
the same augmented batches as a run that was never stopped. Augmented samples stay on the
device's input grid (multiples of 1/128 in [-1, 127/128]), so training sees only inputs the
accelerator can receive.

Which transforms suit a dataset is data (`AUGMENTATIONS`): mirror images only where the
classes allow it (clothes and CIFAR objects yes, digits no), time shift and noise for audio.

Example:

>>> aug = augmentation_for("fashionmnist")
>>> aug.flip, aug.shift
(True, 2)
"""

import dataclasses

from ai8x_nb.errors import DatasetError

__all__ = ["Augmentation", "AUGMENTATIONS", "augmentation_for", "augment_seed", "augment_batch"]

_SEED_MIX = 1_000_003
"""Spreads the batch index away from the epoch in the stateless seed pair."""


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """One dataset's training augmentation.

    Attributes:
        shift: random translation of images by up to +-`shift` pixels per axis (a random crop
            of the input padded by its own edge pixels), 0 for none.
        flip: random left-right mirror (only where a mirrored sample keeps its class).
        time_shift: random shift of an audio clip by up to +-`time_shift` samples (of the
            flattened clip; silence fills), 0 for none.
        noise: standard deviation of added white noise, in data units (1.0 = full scale),
            rounded back to the input grid; 0 for none.
    """

    shift: int = 0
    flip: bool = False
    time_shift: int = 0
    noise: float = 0.0

    @property
    def active(self):
        return bool(self.shift or self.flip or self.time_shift or self.noise)


AUGMENTATIONS = {
    "mnist": Augmentation(shift=2),
    "fashionmnist": Augmentation(shift=2, flip=True),
    "cifar10": Augmentation(shift=4, flip=True),
    "cifar100": Augmentation(shift=4, flip=True),
    "rock": Augmentation(shift=8, flip=True),
    # 0.1 s of a 16 kHz clip; noise of ~1 % full scale (the vendor's KWS20 augmentation
    # uses time shift and white noise, section 4 of the ai8x reference).
    "kws20": Augmentation(time_shift=1600, noise=0.01),
    # Folders of your own: shifts only (a flip may change a class, e.g. left/right arrows).
    "images": Augmentation(shift=4),
    "keywords": Augmentation(time_shift=1600, noise=0.01),
}
"""Augmentation per dataset name (datasets not listed train without augmentation)."""


def augmentation_for(dataset_name):
    """The `Augmentation` of a dataset name (an inactive one for unlisted datasets)."""
    return AUGMENTATIONS.get(str(dataset_name).lower(), Augmentation())


def augment_seed(seed, epoch, batch):
    """The stateless seed pair of one training batch: a function of (seed, epoch, batch) only."""
    import tensorflow as tf

    epoch, batch = tf.cast(epoch, tf.int64), tf.cast(batch, tf.int64)
    return tf.stack([tf.constant(int(seed), tf.int64), epoch * _SEED_MIX + batch])


def _crop_indices(tf, seeds, count, size, shift):
    """Per-sample source indices of a +-shift translation, edge pixels repeated."""
    offsets = tf.random.stateless_uniform((count,), seeds, minval=-shift, maxval=shift + 1,
                                          dtype=tf.int32)
    index = tf.range(size, dtype=tf.int32)[None, :] + offsets[:, None]
    return tf.clip_by_value(index, 0, size - 1)


def augment_batch(x, augmentation, seed):
    """Augment one batch of float inputs (data units) with a stateless seed.

    Args:
        x: float32 batch, (N, H, W) or (N, H, W, C) images, or (N, rows, cols) audio
            (flattened for the time shift).
        augmentation: an `Augmentation`.
        seed: int64 tensor of shape (2,), from `augment_seed`.

    Returns:
        The augmented batch, same shape and dtype, on the 1/128 grid in [-1, 127/128].

    Raises:
        DatasetError: an image augmentation on an input of rank < 3.
    """
    import tensorflow as tf

    if not augmentation.active:
        return x
    x = tf.convert_to_tensor(x, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    count = tf.shape(x)[0]
    if augmentation.shift or augmentation.flip:
        if x.shape.rank not in (3, 4):
            raise DatasetError(f"Image augmentation needs (N, H, W[, C]) inputs; got rank "
                               f"{x.shape.rank}. Use an Augmentation without shift/flip.")
        rows, cols = x.shape[1], x.shape[2]
        if augmentation.shift:
            s = int(augmentation.shift)
            x = tf.gather(x, _crop_indices(tf, seeds[0], count, rows, s), axis=1, batch_dims=1)
            x = tf.gather(x, _crop_indices(tf, seeds[1], count, cols, s), axis=2, batch_dims=1)
        if augmentation.flip:
            mirror = tf.random.stateless_uniform((count,), seeds[2]) < 0.5
            mirror = tf.reshape(mirror, [-1] + [1] * (x.shape.rank - 1))
            x = tf.where(mirror, tf.reverse(x, axis=[2]), x)
    if augmentation.time_shift or augmentation.noise:
        shape = tf.shape(x)
        flat = tf.reshape(x, (count, -1))
        length = tf.shape(flat)[1]  # a tensor: the batch size is unknown inside tf.data
        if augmentation.time_shift:
            s = int(augmentation.time_shift)
            offsets = tf.random.stateless_uniform((count,), seeds[0], minval=-s, maxval=s + 1,
                                                  dtype=tf.int32)
            index = tf.range(length, dtype=tf.int32)[None, :] + offsets[:, None]
            inside = (index >= 0) & (index < length)
            flat = tf.where(inside, tf.gather(flat, tf.clip_by_value(index, 0, length - 1),
                                              axis=1, batch_dims=1), 0.0)
        if augmentation.noise:
            flat = flat + tf.random.stateless_normal(tf.shape(flat), seeds[3],
                                                     stddev=float(augmentation.noise))
            flat = tf.clip_by_value(tf.floor(flat * 128.0 + 0.5), -128.0, 127.0) / 128.0
        x = tf.reshape(flat, shape)
    return x
