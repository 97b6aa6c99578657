"""Callbacks of the training loop: checkpoints that survive a kill, and epoch timing.

Every file is written to a temporary name in the run folder and moved into place with
`os.replace`, so a run killed at any moment leaves either the previous or the new file.
"""

import logging
import os
import time

import keras

from ai8x_nb import _atomic, _faults
from ai8x_nb.quantize import is_qat

from ai8x_nb.runs import BEST, HISTORY, QAT_BEST
from ai8x_nb.training import checkpoint

logger = logging.getLogger(__name__)


def atomic_save_model(model, path):
    """Save a model (with its optimizer) to `path` atomically."""
    with _atomic.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


class HistoryLogger(keras.callbacks.CSVLogger):
    """Keras' `CSVLogger` appending to the run's history.csv, never through a symbolic link."""

    def __init__(self, run_dir):
        super().__init__(str(run_dir.file(HISTORY)), append=True)

    def on_train_begin(self, logs=None):
        path = self.filename
        self.append_header = not (os.path.isfile(path) and os.path.getsize(path) > 0)
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = _atomic.open_append(path, point="history")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        _faults.point("history:append")


class EpochTimer(keras.callbacks.Callback):
    """Add `epoch_time` (seconds of training + validation) to each epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time"] = time.perf_counter() - self._start


class PhaseCheckpoint(keras.callbacks.Callback):
    """Keep the best model of each phase: `best.keras` (float) and `qat_best.keras` (QAT).

    The float phase and the QAT phase have separate bests: the first QAT epochs are usually
    worse than the float optimum, and the model to quantize must come from the QAT phase.

    Args:
        run_dir: the `RunDir`.
        monitor: metric to maximize (default "val_accuracy").
        best: best float value reached so far (for resuming).
        qat_best: best QAT value reached so far (for resuming).
    """

    def __init__(self, run_dir, monitor="val_accuracy", best=None, qat_best=None):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.best = best
        self.qat_best = qat_best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            logger.warning("Checkpoint: metric %r missing from the logs (%s); not saving.",
                           self.monitor, sorted(logs or {}))
            return
        value = float(value)
        if is_qat(self.model):
            if self.qat_best is None or value > self.qat_best:
                self.qat_best = value
                atomic_save_model(self.model, self.run_dir.file(QAT_BEST))
                logger.debug("Epoch %d: %s %.4f, saved %s", epoch, self.monitor, value, QAT_BEST)
        elif self.best is None or value > self.best:
            self.best = value
            atomic_save_model(self.model, self.run_dir.file(BEST))
            logger.debug("Epoch %d: %s %.4f, saved %s", epoch, self.monitor, value, BEST)


class ResumeCheckpoint(keras.callbacks.Callback):
    """Save `last.keras` and `state.json` after every epoch, and restore schedule state.

    `state.json` records the number of completed epochs, the checkpoint bests, the state
    of a ReduceLROnPlateau schedule and of the random generators of Dropout-like layers,
    which Keras does not save with the model. The model and the state are one commit
    (`ai8x_nb.training.checkpoint`): a resume never pairs the model of one epoch with the
    state of another.

    Args:
        run_dir: the `RunDir`.
        phase_checkpoint: the `PhaseCheckpoint` whose bests to record.
        schedule: the LR-schedule callback (its plateau state is saved and restored).
        restore: a previous `state.json` dict to restore the schedule from, or None.
    """

    PLATEAU_FIELDS = ("wait", "best", "cooldown_counter")

    def __init__(self, run_dir, phase_checkpoint, schedule=None, restore=None):
        super().__init__()
        self.run_dir = run_dir
        self.phase_checkpoint = phase_checkpoint
        self.schedule = schedule
        self.restore = restore

    def _plateau(self):
        if isinstance(self.schedule, keras.callbacks.ReduceLROnPlateau):
            return self.schedule
        return None

    def on_train_begin(self, logs=None):
        # Runs after the schedule's own on_train_begin (which resets it): put the state back.
        plateau = self._plateau()
        saved = (self.restore or {}).get("plateau")
        if plateau is not None and saved:
            plateau.best = float(saved["best"])
            plateau.wait = int(saved["wait"])
            plateau.cooldown_counter = int(saved["cooldown_counter"])
        generators = _seed_generator_states(self.model)
        saved = (self.restore or {}).get("seed_generators")
        if saved is not None and len(saved) == len(generators):
            for variable, value in zip(generators, saved):
                variable.assign(keras.ops.convert_to_tensor(value, dtype=variable.dtype))
        elif saved is not None:
            logger.warning("state.json holds %d random generator states but the model has %d; "
                           "dropout will not repeat the interrupted run exactly.", len(saved),
                           len(generators))

    def on_epoch_end(self, epoch, logs=None):
        plateau = self._plateau()
        state = {
            "epochs_completed": epoch + 1,
            "best": self.phase_checkpoint.best,
            "qat_best": self.phase_checkpoint.qat_best,
            "qat": is_qat(self.model),
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "plateau": None if plateau is None else {
                f: float(getattr(plateau, f)) for f in self.PLATEAU_FIELDS},
            "seed_generators": [keras.ops.convert_to_numpy(v).tolist()
                                for v in _seed_generator_states(self.model)],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        checkpoint.commit(self.run_dir, self.model, state)


def _seed_generator_states(model):
    """The state variables of the model's random generators (Dropout, ...), in model order.

    Keras does not store them in `.keras` files: a reloaded model would draw other dropout
    masks than the model that kept training.
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]
