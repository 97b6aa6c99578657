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
    """Read a history.csv into `{column: [values]}` (`epoch` as int, the rest as float).

    Raises:
        ai8x_nb.runs.RunDirError: the file is not a history (binary, malformed, edited).
    """
    if not os.path.isfile(path):
        return {}
    history = {}
    for row in _rows(path, dict_rows=True):
        for key, value in row.items():
            if key is None:
                continue
            try:
                if key == "epoch":
                    history.setdefault(key, []).append(int(value))
                else:
                    history.setdefault(key, []).append(float(value) if value not in ("", None)
                                                       else float("nan"))
            except (TypeError, ValueError):
                _bad_history(path, f"{key}={value!r} is not a number")
    return history


def _rows(path, dict_rows=False):
    try:
        with open(_atomic.refuse_symlink(path), newline="") as f:
            return list(csv.DictReader(f) if dict_rows else csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        _bad_history(path, f"{type(err).__name__}: {err}")


def _bad_history(path, why):
    from ai8x_nb.runs import RunDirError

    raise RunDirError(f"{str(path)!r} is not a readable history ({why}). Restore it, or delete "
                      f"it to start the history afresh (the checkpoints are kept).")


def truncate_history(path, epochs):
    """Drop history.csv rows of epochs >= `epochs` (written before a kill, to be redone)."""
    if not os.path.isfile(path):
        return
    rows = _rows(path)
    if not rows:
        return
    header, body = rows[0], rows[1:]
    column = header.index("epoch") if "epoch" in header else 0
    try:
        kept = [r for r in body if r and int(r[column]) < epochs]
    except (ValueError, IndexError):
        _bad_history(path, f"a row without an epoch number in column {column + 1}")
    if len(kept) == len(body):
        return
    logger.info("Dropping %d history row(s) of epochs not saved in last.keras.",
                len(body) - len(kept))
    with _atomic.atomic_path(path, point="history") as tmp, open(tmp, "w", newline="") as f:
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
