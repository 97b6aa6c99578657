"""The losses of the training recipes, registered so that run checkpoints reload compiled."""

import keras
from keras import ops

from ai8x_nb.layers.base import PACKAGE

__all__ = ["SparseCrossentropy", "make_loss"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels and logits, with optional label smoothing.

    Keras' `SparseCategoricalCrossentropy` has no label smoothing; this is the categorical
    one on one-hot labels: the target puts `1 - label_smoothing + label_smoothing / classes`
    on the label and `label_smoothing / classes` on every other class.

    Args:
        label_smoothing: in [0, 1).
        name, reduction, dtype: as for `keras.losses.Loss`.

    Example:

    >>> loss = SparseCrossentropy(label_smoothing=0.1)
    """

    def __init__(self, label_smoothing=0.0, name="sparse_crossentropy",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"SparseCrossentropy label_smoothing={label_smoothing!r} must be "
                             f"in [0, 1); use e.g. 0.1, or 0 for none.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        onehot = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            onehot, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        config = super().get_config()
        config["label_smoothing"] = self.label_smoothing
        return config


def make_loss(label_smoothing=0.0):
    """The training loss on logits: Keras' own without smoothing (the seed's), else ours."""
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return SparseCrossentropy(label_smoothing=label_smoothing)
