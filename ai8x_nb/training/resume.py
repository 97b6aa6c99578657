"""Continue a run from its folder: resume after the last saved epoch, or restart it.

A run stopped after its first epoch resumes from `last.keras` + `state.json`. A run stopped
during its first epoch has only config.json: it starts again from the saved settings (same
seed, same model), which gives what the uninterrupted run would have given. Either way the
arguments given must agree with the saved settings; a conflict is refused, never ignored.
"""

import logging

import keras

from ai8x_nb import datasets, models
from ai8x_nb.errors import TrainingError
from ai8x_nb.runs import HISTORY
from ai8x_nb.training import checkpoint
from ai8x_nb.training.arguments import resume_conflicts
from ai8x_nb.training.assemble import assemble_model
from ai8x_nb.training.distribute import scope
from ai8x_nb.training.fit import fit_run
from ai8x_nb.training.plan import RunPlan, recipe_for, resolve_policy
from ai8x_nb.training.recipes import recipe_from_config
from ai8x_nb.training.results import truncate_history

__all__ = ["continue_run"]

logger = logging.getLogger(__name__)


def continue_run(run, model_or_name, dataset_or_name, args, *, distribution, verbose,
                 callbacks):
    """Resume (or restart) the run in the locked folder `run` up to `args.epochs` epochs.

    The run's plan is read back from its config.json (`RunPlan.from_config`); the arguments
    given must agree with it.

    Args:
        run: the locked `RunDir`, holding config.json.
        model_or_name, dataset_or_name: as given to `train` (checked against the run's).
        args: the checked `TrainArgs` (checked against the run's settings; `epochs` and
            `data_dir` may differ).
        distribution: the run's `Distribution` or None (the model is rebuilt or reloaded
            under its scope).
        verbose, callbacks: as given to `train`.

    Returns:
        The `TrainResult`.

    Raises:
        TrainingError: arguments that differ from the run's settings, fewer epochs than the
            run completed, or a run of a custom model stopped before its first checkpoint
            without that model given again.
    """
    config, state = run.config, run.state
    _refuse_conflicts(run, config, model_or_name, dataset_or_name, args)
    epochs = args.epochs
    done = 0 if state is None else state["epochs_completed"]
    if epochs < done:
        raise TrainingError(f"epochs={epochs} is invalid for run {str(run.path)!r}: it already "
                            f"completed {done} epochs. Pass epochs >= {done}.")
    plan = RunPlan.from_config(config, epochs)
    if isinstance(dataset_or_name, datasets.Dataset):
        ds = dataset_or_name
    else:
        ds = run.load_dataset(data_dir=args.data_dir)
    if distribution is not None:
        distribution.check_batches(plan.batch_size, {"train": len(ds.train),
                                                     "validation": len(ds.valid)})
    if state is None:
        logger.info("Run %s stopped in its first epoch: starting it again with its saved "
                    "settings.", run.path)
        model = assemble_model(plan, _restart_source(run, config, model_or_name), ds,
                               distribution)
    else:
        path = run.resume_checkpoint(state)
        if isinstance(model_or_name, keras.Model):
            logger.warning("Resuming %s from %s: the model passed is not used.", run.path,
                           path.name)
        logger.info("Resuming %s after epoch %d of %d.", run.path, done, epochs)
        checkpoint.tidy(run, state)
        with scope(distribution):
            model = run.load_model(path.name, compile=True)
        if distribution is not None:
            distribution.prepare_model(model)
    config["epochs"] = epochs
    run.write_config(config)
    truncate_history(run.file(HISTORY), done)
    return fit_run(run, model, ds, plan, plan.make_schedule(), initial_epoch=done, state=state,
                   verbose=verbose, callbacks=callbacks, distribution=distribution)


def _restart_source(run, config, model_or_name):
    """What a run stopped in its first epoch is built from: its saved model entry, else the
    custom `keras.Model` given again."""
    ref = config.get("model")
    if ref is not None:
        return ref
    if not isinstance(model_or_name, keras.Model):
        raise TrainingError(
            f"Run {str(run.path)!r} trains a custom keras.Model and stopped before its "
            f"first epoch ended, so it saved no model. Pass that model again to restart "
            f"it, or start a new run.")
    return model_or_name


def _model_ref(model_or_name):
    if isinstance(model_or_name, str):
        return models.get_info(model_or_name).name
    if isinstance(model_or_name, (list, tuple)):
        from ai8x_nb.spec import normalize_spec

        return normalize_spec(list(model_or_name))
    return None


def _saved_model_ref(config):
    ref = config.get("model")
    if isinstance(ref, list):
        from ai8x_nb.spec import normalize_spec

        return normalize_spec(ref)
    return ref


def _refuse_conflicts(run, config, model_or_name, dataset_or_name, args):
    dataset = getattr(dataset_or_name, "name", dataset_or_name)
    given = {
        "dataset": dataset,
        "model": _model_ref(model_or_name),
        "batch_size": args.batch_size,
        "optimizer": args.optimizer if isinstance(args.optimizer, str) else None,
        "lr": args.lr,
        "metrics": list(args.metrics) if args.metrics is not None else None,
        "schedule": args.schedule if isinstance(args.schedule, str) else None,
        "warmup_epochs": args.warmup_epochs,
        "seed": args.seed,
        "device": args.device,
        "qat_policy": (resolve_policy(
            args.qat_policy, int(config.get("epochs", 1)),
            recipe_for(recipe_from_config(config), config.get("dataset"))).to_dict()
            if args.qat_policy is not None else None),
        "recipe": None if args.recipe is None else args.recipe.name,
    }
    saved = {**config, "model": _saved_model_ref(config),
             "recipe": config.get("recipe", "seed")}
    if given["model"] is not None and saved["model"] is None:
        given["model"] = None  # a custom keras.Model run: a name cannot be compared
    conflicts = resume_conflicts(given, saved)
    saved_kwargs = config.get("dataset_kwargs") or {}
    given_kwargs = dict(args.dataset_kwargs or {})
    source = getattr(dataset_or_name, "source", None)
    if source:  # a folder of your own, given as a Dataset: its path, size and content hash
        given_kwargs.update({k: v for k, v in source.items() if k != "kind"})
    for key, value in given_kwargs.items():
        if key == "data_dir" or value is None:
            continue
        if saved_kwargs.get(key) is None and value is False:
            continue
        conflicts += resume_conflicts({key: value}, {key: saved_kwargs.get(key)})
    if conflicts:
        raise TrainingError(
            f"Cannot continue run {str(run.path)!r} with other settings: "
            f"{', '.join(conflicts)}. Drop these arguments to continue with the run's own "
            f"settings (epochs and data_dir may change), or start a new run (without "
            f"run_dir / --run-dir).")
