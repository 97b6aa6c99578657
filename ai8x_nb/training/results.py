"""What a finished run reports: per-epoch history and the test-split evaluation."""

import csv
import dataclasses
import logging
import os

import numpy as np

from ai8x_nb import _atomic

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """The outcome of `train`.

    Attributes:
        run_dir: the `ai8x_nb.runs.RunDir` of the run.
        history: per-epoch metrics over the whole run (resumes included), as lists keyed by
            name, `"epoch"` first (from history.csv).
        test_accuracy: accuracy of the run's model (`run_dir.model_path()`) on the TEST split.
        confusion_matrix: int64 (num_classes, num_classes), rows = true class, cols = predicted.
        model: that model (loaded from the checkpoint).
        class_names: the dataset's class names.
    """

    run_dir: object
    history: dict
    test_accuracy: float
    confusion_matrix: np.ndarray
    model: object
    class_names: list


def read_history(path):
    """Read a history.csv into `{column: [values]}` (`epoch` as int, the rest as float)."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    history = {}
    for row in rows:
        for key, value in row.items():
            if key is None:
                continue
            if key == "epoch":
                history.setdefault(key, []).append(int(value))
            else:
                history.setdefault(key, []).append(float(value) if value not in ("", None) else
                                                   float("nan"))
    return history


def truncate_history(path, epochs):
    """Drop history.csv rows of epochs >= `epochs` (written before a kill, to be redone)."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    column = header.index("epoch") if "epoch" in header else 0
    kept = [r for r in body if r and int(r[column]) < epochs]
    if len(kept) == len(body):
        return
    logger.info("Dropping %d history row(s) of epochs not saved in last.keras.",
                len(body) - len(kept))
    with _atomic.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([header] + kept)


def confusion_matrix(y_true, y_pred, num_classes):
    """Confusion matrix: int64 (num_classes, num_classes), rows true, columns predicted."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def evaluate_split(model, split, num_classes, batch_size):
    """Accuracy, mean loss and confusion matrix of `model` (logits) on a dataset split.

    Returns:
        dict with `accuracy`, `loss`, `confusion_matrix` (ndarray), `count`.
    """
    from ai8x_nb.datasets import make_tf_dataset

    data = make_tf_dataset(split, batch_size)
    logits = np.asarray(model.predict(data, verbose=0), dtype=np.float64)
    logits = logits.reshape(len(split), -1)
    y = np.asarray(split.y, dtype=np.int64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    pred = logits.argmax(axis=1)
    num_classes = max(int(num_classes), logits.shape[1])
    return {
        "accuracy": float(np.mean(pred == y)) if len(y) else float("nan"),
        "loss": float(-log_probs[np.arange(len(y)), y].mean()) if len(y) else float("nan"),
        "confusion_matrix": confusion_matrix(y, pred, num_classes),
        "count": int(len(y)),
    }
