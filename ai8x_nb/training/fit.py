"""The epochs of a run: `model.fit` with the run's callbacks, then the test-split results."""

import importlib.util
import logging
import os

import keras

from ai8x_nb import datasets
from ai8x_nb.datasets.augment import augmentation_for
from ai8x_nb.datasets.pipeline import make_epoch_dataset, steps_per_epoch
from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.runs import HISTORY, TENSORBOARD
from ai8x_nb.training import callbacks as cb
from ai8x_nb.training.distribute import scope
from ai8x_nb.training.progress import progress_setup
from ai8x_nb.training.results import TrainResult, evaluate_split, read_history

__all__ = ["fit_run", "finish_run"]

logger = logging.getLogger(__name__)


def fit_run(run, model, ds, plan, schedule, *, initial_epoch, state, verbose, callbacks,
            distribution=None):
    """Train a compiled model from `initial_epoch` to `plan.epochs` into `run`.

    Epoch `e` sees the training split in `epoch_order(seed, e)` (augmented, when the run's
    recipe says so, with draws seeded by (seed, e, batch)), and the dropout generators'
    state is saved with every epoch's checkpoint, so the epochs after a resume are the same
    as those of an uninterrupted run.

    Args:
        run: the locked `RunDir`.
        model: the compiled model (fresh, or `last.keras` of the run).
        ds: the `Dataset`.
        plan: the run's `ai8x_nb.training.plan.RunPlan` (epochs, batch size, seed, QAT
            policy, the recipe's augmentation).
        schedule: the LR-schedule callback or None (`RunPlan.make_schedule`, or the
            caller's callback).
        initial_epoch: first epoch to train.
        state: the run's state.json content when resuming, else None.
        verbose: see `ai8x_nb.training.train`.
        callbacks: the caller's extra callbacks.
        distribution: the run's `ai8x_nb.training.distribute.Distribution`, or None. `fit`
            runs under its scope (variables made by callbacks, such as the optimizer the QAT
            switch rebuilds, belong to the strategy); the test evaluation does not.

    Returns:
        The `TrainResult` of `finish_run`.
    """
    epochs, batch_size, policy = plan.epochs, int(plan.batch_size), plan.policy
    valid = ds.valid if len(ds.valid) else None
    monitor = "val_accuracy" if valid is not None else "accuracy"
    if valid is None:
        logger.warning("Dataset %r has no validation samples; checkpoints follow the training "
                       "accuracy.", ds.name)
    state = state or {}
    steps = steps_per_epoch(len(ds.train), batch_size)
    keras_verbose, progress = progress_setup(verbose, epochs, steps)
    phase = cb.PhaseCheckpoint(run, monitor, best=state.get("best"),
                               qat_best=state.get("qat_best"))
    cbs = []
    if policy is not None:
        from ai8x_nb import quantize

        cbs.append(quantize.QATCallback(policy))
    cbs.append(cb.EpochTimer())
    if schedule is not None:
        cbs.append(schedule)
    cbs += [
        phase,
        cb.HistoryLogger(run),
        cb.ResumeCheckpoint(run, phase, schedule, restore=state),
        *_tensorboard(run),
        keras.callbacks.TerminateOnNaN(),
        *progress,
        *callbacks,
    ]
    if initial_epoch < epochs:
        augmentation = augmentation_for(ds.name) if plan.training.augment else None
        train_data = make_epoch_dataset(ds.train, batch_size, seed=int(plan.seed),
                                        first_epoch=initial_epoch, epochs=epochs,
                                        augmentation=augmentation)
        valid_data = None if valid is None else datasets.make_tf_dataset(valid, batch_size)
        if distribution is not None:
            train_data = distribution.prepare_dataset(train_data)
            if valid_data is not None:
                valid_data = distribution.prepare_dataset(valid_data)
            distribution.before_fit(model, train_data)
        with scope(distribution):
            model.fit(train_data, validation_data=valid_data, epochs=epochs,
                      steps_per_epoch=steps, initial_epoch=initial_epoch, callbacks=cbs,
                      shuffle=False, verbose=keras_verbose)
    return finish_run(run, model, ds, batch_size)


def _tensorboard(run):
    """The TensorBoard callback, or nothing when the `tensorboard` package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        logger.info("TensorBoard logs skipped: the tensorboard package is not installed "
                    "(pip install tensorboard).")
        return []
    return [keras.callbacks.TensorBoard(os.fspath(run.file(TENSORBOARD)), write_graph=False)]


def finish_run(run, model, ds, batch_size):
    """Evaluate the run's best checkpoint on the test split (in batches of `batch_size`) and
    write results.json.

    Returns:
        A `TrainResult`.
    """
    try:
        path = run.model_path()
        best = run.load_model(path.name)
    except Ai8xNbError as err:
        logger.warning("Evaluating the model in memory: %s", err)
        path, best = None, model
    report = evaluate_split(best, ds.test, ds.num_classes, batch_size)
    history = read_history(run.file(HISTORY))
    results = {
        "dataset": ds.name,
        "split": "test",
        "checkpoint": None if path is None else path.name,
        "test_accuracy": report["accuracy"],
        "test_loss": report["loss"],
        "test_samples": report["count"],
        "epochs_completed": len(history.get("epoch", [])),
        "class_names": list(ds.class_names),
        "confusion_matrix": report["confusion_matrix"].tolist(),
    }
    run.write_results(results)
    logger.info("Test accuracy (%s, %d samples, test split): %.2f %%", results["checkpoint"],
                report["count"], 100 * report["accuracy"])
    return TrainResult(run, history, report["accuracy"], report["confusion_matrix"], best,
                       list(ds.class_names))
