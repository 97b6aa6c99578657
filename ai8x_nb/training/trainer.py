"""`train`: one call from a model and a dataset to a run folder with checkpoints and results.

`train` checks its arguments (`arguments`), then starts a new run or continues one
(`resume`). A new run resolves its plan once (`plan.resolve_plan`: argument > the recipe's
setting for the dataset > the seed model's default > constant), assembles the model from it
(`assemble.assemble_model`), records the plan in config.json and trains (`fit.fit_run`).
"""

import contextlib
import logging
import os

import keras

from ai8x_nb import datasets, models
from ai8x_nb.errors import TrainingError
from ai8x_nb.runs import RunDir, new_run_dir
from ai8x_nb.training.arguments import check_metrics, check_train_args
from ai8x_nb.training.assemble import assemble_model, model_defaults, plan_device
from ai8x_nb.training.distribute import make_distribution, resume_distribute, worker_run
from ai8x_nb.training.fit import fit_run
from ai8x_nb.training.resume import continue_run
from ai8x_nb.training.plan import resolve_plan

__all__ = ["train"]

logger = logging.getLogger(__name__)


def train(model_or_name=None, dataset_or_name=None, *, epochs, batch_size=None,
          optimizer=None, lr=None, metrics=None, qat_policy=None, out="logs",
          run_dir=None, seed=None, data_dir=None, dataset_kwargs=None, verbose="auto",
          callbacks=(), device=None, schedule=None, warmup_epochs=None, name=None,
          distribute=None, recipe=None, init_from=None):
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
        device: "MAX78000" or "MAX78002" (seed models and specs are built for it); None:
            `ai8x_nb.devices.DEFAULT_DEVICE`.
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
        init_from: a trained model file to fine-tune (a `.keras` written by a run or by
            `ai8x-nb import ... --out`). With `model_or_name` None it is loaded here
            (`ai8x_nb.zoo.finetune.load_for_fine_tuning`: a new head when the dataset's class
            count differs); with a model already loaded from it, it is only recorded. Part of
            the run's plan, saved in config.json.

    Returns:
        A `TrainResult`; `model` is the run's best checkpoint (`qat_best.keras` when QAT ran,
        else `best.keras`), and `test_accuracy` is measured on the TEST split.

    Raises:
        ai8x_nb.errors.ParameterError: a bad argument (a `TrainingError`, named with its
            value and the fix, with the text the notebooks and the CLI give for it).
        TrainingError: shapes that do not match, or resume arguments that differ from the
            run's.
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
                            seed=seed, device=device, qat_policy=qat_policy, recipe=recipe,
                            distribute=distribute, data_dir=data_dir,
                            dataset_kwargs=dataset_kwargs, init_from=init_from)
    run = RunDir(run_dir) if run_dir is not None else None
    distribute = args.distribute
    if run is not None and run.is_run:
        distribute = resume_distribute(run.config, distribute)
    distribution = make_distribution(distribute)
    run, out = worker_run(distribution, run, out)
    session = dict(distribution=distribution, verbose=verbose, callbacks=list(callbacks or ()))
    if run is not None and run.exists:
        with run.lock():
            if run.is_run:
                return continue_run(run, model_or_name, dataset_or_name, args, **session)
            return _new_run(run, model_or_name, dataset_or_name, args, out=out, name=name,
                            locked=True, **session)
    return _new_run(run, model_or_name, dataset_or_name, args, out=out, name=name, **session)


def _new_run(run, model_or_name, dataset_or_name, args, *, out, name, distribution, verbose,
             callbacks, locked=False):
    """Resolve the plan, assemble the model, then (every check passed) make the folder and
    train."""
    if dataset_or_name is None and isinstance(model_or_name, str):
        dataset_or_name = models.get_info(model_or_name).dataset
    ds, ds_kwargs = _load_dataset(dataset_or_name, args.data_dir, args.dataset_kwargs)
    if model_or_name is None and args.init_from is not None:
        from ai8x_nb.zoo.finetune import load_for_fine_tuning

        model_or_name = load_for_fine_tuning(args.init_from, ds.num_classes, device=args.device)
    model_ref, info = model_defaults(model_or_name, ds)
    plan = resolve_plan(args, ds.name, info, plan_device(model_or_name, args.device))
    check_metrics(plan.metrics, ds.num_classes)
    if distribution is not None:
        distribution.check_batches(plan.batch_size, {"train": len(ds.train),
                                                     "validation": len(ds.valid)})
    source = model_or_name if isinstance(model_or_name, keras.Model) else model_ref
    model = assemble_model(plan, source, ds, distribution)
    if plan.policy is not None:  # an override naming no layer: refused before any folder
        from ai8x_nb.quantize import hardware_layers

        plan.policy.check_layer_names(
            [layer.name for layer in hardware_layers(model) if layer.has_operator])
    schedule = plan.make_schedule()

    # Every check passed: only now does a folder appear.
    if run is None:
        run = new_run_dir(out, name or (model_ref if isinstance(model_ref, str) else model.name))
    else:
        run.path.mkdir(parents=True, exist_ok=True)
    with contextlib.nullcontext() if locked else run.lock():
        run.write_config(plan.to_config(ds, ds_kwargs, model, model_ref))
        logger.info("Run folder: %s", run.path)
        return fit_run(run, model, ds, plan, schedule, initial_epoch=0, state=None,
                       verbose=verbose, callbacks=callbacks, distribution=distribution)


def _load_dataset(dataset_or_name, data_dir, dataset_kwargs):
    """The `Dataset` and the `ai8x_nb.datasets.load` arguments config.json records."""
    if dataset_or_name is None:
        raise TrainingError("No dataset: pass a dataset name or an ai8x_nb.datasets.Dataset, "
                            "or a seed model name (it brings its dataset).")
    kwargs = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
              for k, v in (dataset_kwargs or {}).items()}
    if data_dir is not None:
        kwargs["data_dir"] = os.fspath(data_dir)
    if isinstance(dataset_or_name, datasets.Dataset):
        ds = dataset_or_name  # kwargs are only recorded, for RunDir.load_dataset
    else:
        ds = datasets.load(dataset_or_name, **kwargs)
    if ds.source:  # a folder of your own: recorded by its path and content hash
        kwargs = {k: v for k, v in kwargs.items() if k in ("limit", "seed")}
        kwargs.update({k: v for k, v in ds.source.items() if k != "kind"})
    return ds, kwargs
