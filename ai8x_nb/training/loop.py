"""`train`: one call from a model and a dataset to a run folder with checkpoints and results.

The parts live beside this module: argument checks (`arguments`), the model, optimizer and
schedule (`components`), the run's settings (`settings`), the epochs (`fit`) and resuming a
run (`resume`).
"""

import contextlib
import logging

import keras

from ai8x_nb import models
from ai8x_nb.parameters import DEFAULT_SEED
from ai8x_nb.runs import RunDir, new_run_dir
from ai8x_nb.training.arguments import TrainingError, check_metrics, check_train_args
from ai8x_nb.training.components import (build_model, check_shapes, compile_model,
                                         load_dataset, make_optimizer, make_schedule,
                                         resolve_policy)
from ai8x_nb.training.distribute import (check_distribute, make_distribution,
                                         resume_distribute, scope, worker_run)
from ai8x_nb.training.fit import fit_run
from ai8x_nb.training.progress import auto_verbose
from ai8x_nb.training.recipes import get_recipe, with_batch_norm
from ai8x_nb.training.resume import continue_run
from ai8x_nb.training.settings import RunSettings

__all__ = ["TrainingError", "auto_verbose", "make_optimizer",
           "make_schedule", "resolve_policy", "train"]

logger = logging.getLogger(__name__)


def train(model_or_name=None, dataset_or_name=None, *, epochs, batch_size=None,
          optimizer=None, lr=None, metrics=None, qat_policy=None, out="logs",
          run_dir=None, seed=None, data_dir=None, dataset_kwargs=None, verbose="auto",
          callbacks=(), device=None, schedule=None, warmup_epochs=None, name=None,
          distribute=None, recipe=None):
    """Train a model, with checkpoints, resume, optional QAT and a test-split evaluation.

    Every argument is checked before anything is loaded or written: a bad value raises and
    leaves no run folder behind. None means "the default" (for a resume: the run's saved
    value); 0 is a value like any other.

    Args:
        model_or_name: a `keras.Model`, a seed model name (`ai8x_nb.models.model_names()`),
            a model spec list (`ai8x_nb.spec`), or None for the dataset's seed model.
        dataset_or_name: an `ai8x_nb.datasets.Dataset` or a dataset name; None with a seed
            model name uses that model's dataset.
        epochs: total number of epochs (on resume: the new total).
        batch_size: default: the seed model's (else 64).
        optimizer: "adam", "sgd" (momentum 0.9; any case) or a `keras.optimizers.Optimizer`;
            default: the seed's ("adam").
        lr: initial learning rate, > 0; default: the seed's (else 1e-3).
        metrics: Keras metric names; "accuracy" is always tracked. Default ("accuracy",).
        qat_policy: None (no QAT), "default", a policy YAML path, a dict or a
            `ai8x_nb.quantize.QATPolicy`. A start epoch that does not fit in `epochs` is
            moved to `epochs // 2` (logged).
        out: parent folder of new run folders.
        run_dir: a run folder. A new folder gets a new run. A run's folder continues that
            run with its saved settings: from `last.keras` + `state.json` after the last
            completed epoch, or from the start when it was stopped in its first epoch.
            Arguments that differ from the saved settings are refused (`epochs` and
            `data_dir` may change). The folder is locked while training.
        seed: random seed (weights init, dropout; epoch `e` sees the training samples in an
            order derived from `(seed, e)` only, so a resumed run ends bit-identical to an
            uninterrupted one). Default 42.
        data_dir: folder of the datasets (default: `AI8X_NB_DATA`, else ./data).
        dataset_kwargs: more `ai8x_nb.datasets.load` arguments (folder, allow_partial,
            limit, ...). With a `Dataset` object they are only recorded in config.json.
        verbose: "auto" (a bar in a terminal; an updating display in a notebook that a
            headless run saves as one line per epoch; one line per epoch otherwise), or a
            Keras verbosity 0, 1, 2.
        callbacks: extra Keras callbacks, run after the built-in ones.
        device: "MAX78000" (default) or "MAX78002" (seed models and specs are built for it).
        schedule: "seed" (default: the seed model's LR schedule, else ReduceLROnPlateau;
            alias "auto"), "cosine" (per-step cosine decay from `lr` to 0 over the run: the
            choice for short runs, where the seeds' 100-epoch schedules never act),
            "constant", or a Keras callback. Names are saved in config.json and used on
            resume.
        warmup_epochs: linear warm-up before the cosine decay, in epochs (fractions allowed;
            default 0.3: a short ramp keeps Adam's first steps at the peak rate from pushing
            the clamped activations into saturation; used by "cosine" only).
        name: run folder name suffix (default: the model name).
        distribute: None (one device), "mirrored" (the GPUs, else the logical CPUs, of this
            machine: `tf.distribute.MirroredStrategy`, or `keras.distribution.DataParallel`
            under JAX) or "multiworker" (TensorFlow's `MultiWorkerMirroredStrategy`, the
            cluster read from `TF_CONFIG`; worker 0 writes the run folder). `batch_size` stays
            the global batch, split over the replicas. Saved in config.json; a resume uses
            the run's. See `ai8x_nb.training.distribute`.
        recipe: "seed" (default: as the seed models were trained) or "fast" (for runs of
            10-20 epochs: augmentation, cosine schedule with warm-up, weight decay, label
            smoothing, QAT for the last fifth of the run with the "default" policy); see
            `ai8x_nb.training.recipes`. Explicit arguments win over the recipe's defaults.
            Saved in config.json and used on resume.

    Returns:
        A `TrainResult`; `model` is the run's best checkpoint (`qat_best.keras` when QAT ran,
        else `best.keras`), and `test_accuracy` is measured on the TEST split.

    Raises:
        TrainingError: bad arguments (each named with its value and the fix), shapes that
            do not match, or resume arguments that differ from the run's.
        ai8x_nb.runs.RunDirError: the run folder is in use by another process, or its
            files are unreadable.
        ai8x_nb.errors.ModelFileError: a checkpoint to resume from is truncated or corrupt.
        Dataset, model and QAT errors come from their modules.

    Example:

    >>> result = train("mnist", epochs=3)  # doctest: +SKIP
    >>> result.test_accuracy  # doctest: +SKIP
    0.9912
    """
    args = check_train_args(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                            metrics=metrics, schedule=schedule, warmup_epochs=warmup_epochs,
                            seed=seed, device=device)
    recipe = None if recipe is None else get_recipe(recipe)
    if dataset_kwargs is not None and not isinstance(dataset_kwargs, dict):
        raise TrainingError(f"dataset_kwargs={dataset_kwargs!r} is invalid: expected a dict of "
                            f"ai8x_nb.datasets.load arguments, e.g. {{'limit': 1000}}.")
    distribute = check_distribute(distribute)
    run = RunDir(run_dir) if run_dir is not None else None
    if run is not None and run.is_run:
        distribute = resume_distribute(run.config, distribute)
    distribution = make_distribution(distribute)
    run, out = worker_run(distribution, run, out)
    options = dict(verbose=verbose, callbacks=list(callbacks or ()), distribution=distribution)
    if run is not None and run.exists:
        with run.lock():
            if run.is_run:
                return continue_run(run, model_or_name, dataset_or_name, args, qat_policy,
                                    data_dir, dataset_kwargs, options, recipe=recipe)
            return _new_run(run, model_or_name, dataset_or_name, args, qat_policy, out, name,
                            data_dir, dataset_kwargs, options, recipe, locked=True)
    return _new_run(run, model_or_name, dataset_or_name, args, qat_policy, out, name,
                    data_dir, dataset_kwargs, options, recipe)


def _new_run(run, model_or_name, dataset_or_name, args, qat_policy, out, name, data_dir,
             dataset_kwargs, options, recipe, locked=False):
    if dataset_or_name is None and isinstance(model_or_name, str):
        dataset_or_name = models.get_info(model_or_name).dataset
    ds, ds_kwargs = load_dataset(dataset_or_name, data_dir, dataset_kwargs)
    keras.utils.set_random_seed(DEFAULT_SEED if args.seed is None else args.seed)
    distribution = options["distribution"]
    with scope(distribution):  # the model's variables are made by the strategy
        model, model_ref, info = build_model(model_or_name, ds, args.device)
    if distribution is not None and model is model_or_name:
        model = distribution.adopt(model)
    recipe = get_recipe(recipe)
    used = recipe.for_dataset(ds.name)
    batch_norm = used.batch_norm
    if batch_norm and not isinstance(model_or_name, keras.Model):
        with scope(distribution):
            model = with_batch_norm(model, batch_norm)
    check_shapes(model, ds)
    settings = RunSettings.from_args(args, info, qat_policy, recipe, ds.name)
    check_metrics(settings.metrics, ds.num_classes)
    if settings.policy is not None:  # an override naming no layer: refused before any folder
        from ai8x_nb.quantize import hardware_layers

        settings.policy.check_layer_names(
            [layer.name for layer in hardware_layers(model) if layer.has_operator])
    schedule = make_schedule(settings.schedule, info, settings.lr, settings.epochs,
                             settings.warmup_epochs)
    if distribution is not None:
        distribution.check_batches(settings.batch_size, {"train": len(ds.train),
                                                         "validation": len(ds.valid)})
        distribution.prepare_model(model)
    with scope(distribution):
        compile_model(model, make_optimizer(settings.optimizer, settings.lr,
                                            used.weight_decay),
                      settings.metrics, used.label_smoothing)

    # Every check passed: only now does a folder appear.
    if run is None:
        run = new_run_dir(out, name or (model_ref if isinstance(model_ref, str) else model.name))
    else:
        run.path.mkdir(parents=True, exist_ok=True)
    with contextlib.nullcontext() if locked else run.lock():
        config = settings.to_config(ds, ds_kwargs, model, model_ref, info)
        config["distribute"] = None if distribution is None else distribution.name
        run.write_config(config)
        logger.info("Run folder: %s", run.path)
        return fit_run(run, model, ds, config, settings.policy, schedule, initial_epoch=0,
                       state=None, **options)
