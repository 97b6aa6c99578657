"""`ai8x-nb train`: train a seed model (or continue a run) into a run folder.

A thin wrapper over `ai8x_nb.training.train`. It accepts the command lines of the vendor's
old TensorFlow scripts verbatim (`train_mnist.sh`: `--epochs 100 --batch_size 256
--optimizer Adam --lr 0.001 --model mnist_model --dataset mnist --save-sample 1
--save-sample-per-class`): names are case-insensitive, `--batch_size`/`--batch-size` and
`--swap-hw`/`--swap` are aliases, `<name>_model` means the seed model `<name>`, and
`--save-sample N` also writes `export/<dataset>/sampledata.npy`, where the synthesis command
of those scripts reads it.
"""

import logging
from pathlib import Path

from ai8x_nb.parameters import cli_options  # Keras-free: fast --help

logger = logging.getLogger(__name__)

SAMPLE_FILE = "sampledata.npy"


def add_parser(subparsers):
    """Register the `train` subcommand."""
    p = subparsers.add_parser(
        "train", help="train a model into a run folder (logs/<time>-<name>/)",
        description="Train a seed model on a dataset, with checkpoints, optional QAT and a "
                    "test-split evaluation. Continue a run with --run-dir. Accepts the "
                    "vendor's train_*.sh command lines as they are.")
    p.add_argument("--dataset", type=str.lower,
                   help="dataset name (mnist, fashionmnist, cifar10, cifar100, kws20, rock; "
                        "images or keywords with --data-folder); default: the model's")
    p.add_argument("--model", help="seed model name (mnist or mnist_model, ...); default: the "
                                   "dataset's seed model")
    p.add_argument("--init-from", metavar="MODEL.keras",
                   help="start from this trained model (e.g. written by `ai8x-nb import ... "
                        "--out`): its layers keep their weights, bits and output shifts; the "
                        "classifier head is replaced when the dataset has another class count")
    p.add_argument("--new-head", action="store_true",
                   help="with --init-from: a fresh classifier head even for the same class "
                        "count (other classes)")
    # The parameter table gives these flags' types, metavars and help; their values are
    # checked after parsing (check_train_args), with the texts of the notebooks and train().
    p.add_argument("--epochs", **cli_options("epochs"))
    p.add_argument("--batch_size", "--batch-size", dest="batch_size", **cli_options("batch_size"))
    p.add_argument("--optimizer", **cli_options("optimizer"))
    p.add_argument("--lr", **cli_options("lr"))
    p.add_argument("--schedule", **cli_options("schedule"))
    p.add_argument("--recipe", **cli_options("recipe"))
    p.add_argument("--warmup-epochs", metavar="E", **cli_options("warmup_epochs"))
    p.add_argument("--metrics", nargs="+", help="Keras metric names (accuracy is always "
                                                "tracked)")
    p.add_argument("--qat-policy", metavar="FILE|default",
                   help="quantization-aware training policy: 'default' or a policy YAML")
    p.add_argument("--device", **cli_options("device"))
    p.add_argument("--seed", **cli_options("seed"))
    p.add_argument("--distribute", **cli_options("distribute"))
    data = p.add_argument_group("data")
    data.add_argument("--data-dir", help="folder of the datasets (default: $AI8X_NB_DATA or "
                                         "./data)")
    data.add_argument("--dataset-folder", help="dataset folder under --data-dir (e.g. "
                                               "kws-espeak)")
    data.add_argument("--allow-partial", action="store_true",
                      help="accept an incomplete dataset copy (e.g. a CIFAR subset)")
    data.add_argument("--limit", metavar="N", **cli_options("limit"))
    data.add_argument("--data-folder", metavar="PATH",
                      help="your own data: a folder with one sub-folder of samples per class "
                           "(PATH/<class>/*.png or PATH/<word>/*.wav); the model starts from "
                           "the rock (images) or kws20 (audio) seed's layers, or --model's, "
                           "with one output per class")
    data.add_argument("--kind", choices=("images", "audio"),
                      help="with --data-folder: what it holds (default: audio when it holds "
                           "more WAV files than images)")
    data.add_argument("--image-size", metavar="HxW",
                      help="with --data-folder of images: resize them to HxW (default 64x64)")
    runs = p.add_argument_group("run folder")
    runs.add_argument("--out", default="logs", help="parent folder of run folders (default logs)")
    runs.add_argument("--run-dir", help="continue this run folder (its saved settings are used; "
                                        "flags that differ are refused)")
    samples = p.add_argument_group("sample input for the synthesis tool (test split)")
    samples.add_argument("--save-sample", type=int, metavar="INDEX",
                         help="save test sample INDEX as sample_<dataset>_<INDEX>.npy in the "
                              "run folder, and as <export-dir>/<dataset>/sampledata.npy "
                              "(int64, channel-first: what ai8xize.py reads)")
    samples.add_argument("--save-sample-per-class", action="store_true",
                         help="save the first test sample of each class into samples/")
    samples.add_argument("--channel-first", action="store_true",
                         help="save run-folder samples channel-first (C, H, W)")
    samples.add_argument("--swap", "--swap-hw", dest="swap", action="store_true",
                         help="swap the two spatial axes")
    samples.add_argument("--export-dir", default="export", metavar="DIR",
                         help="parent of the <dataset>/sampledata.npy folder (default export)")
    return p


def _existing_run(args):
    from ai8x_nb.runs import RunDir, RunDirError

    if not args.run_dir:
        return None
    run = RunDir(args.run_dir)
    if run.path.exists() and not run.path.is_dir():
        raise RunDirError(f"--run-dir {str(run.path)!r} is a file, not a run folder. Pass the "
                          f"folder that holds config.json (here {str(run.path.parent)!r}).")
    if not run.is_run:
        return None
    run.state  # noqa: B018  a damaged state.json is reported before any data is loaded
    return run


def _initial_model(args, ds, resuming=False):
    """The model to train: `--init-from` (head fitted to the dataset), else `--model`."""
    from ai8x_nb.errors import ParameterError

    if args.init_from is None:
        if args.new_head:
            raise ParameterError("--new-head needs --init-from MODEL.keras (the model whose "
                                   "head to replace).")
        if getattr(ds, "source", None) and not resuming:
            from ai8x_nb.models.adapt import starting_spec
            from ai8x_nb.spec import spec_to_model

            # A folder of your own: the seed's layers, one output per class of the folder.
            spec = starting_spec(ds.source["kind"], ds.num_classes, model_name=args.model)
            return spec_to_model(spec, ds.input_shape, ds.num_classes,
                                 args.device, name=ds.name)
        return args.model
    if args.model:
        raise ParameterError(f"--model {args.model} and --init-from {args.init_from}: pass "
                               f"one of them (--init-from starts from a trained model).")
    from ai8x_nb.zoo.finetune import load_for_fine_tuning

    if not isinstance(ds, str):
        return load_for_fine_tuning(args.init_from, ds.num_classes, new_head=args.new_head,
                                    device=args.device)
    return load_for_fine_tuning(args.init_from, new_head=args.new_head, device=args.device)


def _dataset_kwargs(args):
    kwargs = {"data_dir": args.data_dir, "folder": args.dataset_folder,
              "allow_partial": args.allow_partial or None, "limit": args.limit}
    if args.data_folder is not None:  # compared with a resumed run's own folder
        kwargs["data_folder"] = str(Path(args.data_folder).expanduser().resolve())
    return {k: v for k, v in kwargs.items() if v is not None}


def _check_folder_args(args):
    """Refuse --kind / --image-size without --data-folder, and flags that do not fit it."""
    from ai8x_nb.datasets import FOLDER_DATASETS
    from ai8x_nb.errors import ParameterError

    if args.data_folder is None:
        for flag, value in (("--kind", args.kind), ("--image-size", args.image_size)):
            if value is not None:
                raise ParameterError(f"{flag} {value} needs --data-folder PATH (the folder of "
                                       f"class sub-folders it describes).")
        return
    for flag, value in (("--dataset-folder", args.dataset_folder),
                        ("--allow-partial", args.allow_partial or None)):
        if value is not None:
            raise ParameterError(f"{flag} is for the public datasets; with --data-folder "
                                   f"{args.data_folder} drop it.")
    if args.dataset and args.dataset not in FOLDER_DATASETS:
        raise ParameterError(f"--dataset {args.dataset} and --data-folder {args.data_folder}: "
                               f"pass one of them (--data-folder trains on your folder).")
    if args.kind == "audio" and args.image_size is not None:
        raise ParameterError(f"--image-size {args.image_size} is for images; audio clips are "
                               f"always 128x128 (16,384 samples at 16 kHz). Drop it.")


def _folder_dataset(args):
    """Your folder as a Dataset (its class table printed), `--limit` applied."""
    from ai8x_nb import datasets
    from ai8x_nb.datasets.folders import DEFAULT_IMAGE_SIZE, guess_kind
    from ai8x_nb.errors import ParameterError

    kind = args.kind or {"keywords": "audio", "images": "images"}.get(args.dataset)
    if kind is None and Path(args.data_folder).is_dir():
        kind = guess_kind(args.data_folder)
    if kind == "audio" and args.image_size is not None:
        raise ParameterError(f"--image-size {args.image_size}: {args.data_folder} holds WAV "
                               f"clips (audio), always 128x128 (16,384 samples at 16 kHz). "
                               f"Drop it, or pass --kind images.")
    ds = datasets.load_folder(args.data_folder, kind, image_size=args.image_size or
                              DEFAULT_IMAGE_SIZE, seed=args.seed if args.seed is not None else 42)
    print(datasets.describe(ds))
    return ds.limited(args.limit)


def _dataset(args, run):
    """The Dataset to train on (or, for a conflicting --dataset on a run, its name)."""
    from ai8x_nb import datasets, models
    from ai8x_nb.errors import DatasetError

    if run is not None:
        saved = run.config.get("dataset")
        if args.dataset and args.dataset != saved:
            return args.dataset  # train() refuses it, naming the run's dataset
        return run.load_dataset(data_dir=args.data_dir)
    if args.data_folder is not None:
        return _folder_dataset(args)
    name = args.dataset or (models.get_info(args.model).dataset if args.model else None)
    if name is None:
        raise DatasetError("Pass --dataset (or --model with a seed model name; with "
                           "--init-from, --dataset names the data to train on).")
    return datasets.load(name, **_dataset_kwargs(args))


def _epochs(args, run):
    from ai8x_nb import models

    if args.epochs is not None:
        return args.epochs
    if run is not None:
        return int(run.config["epochs"])
    info = models.get_info(args.model) if args.model else models.model_for_dataset(args.dataset)
    return info.epochs if info else 10


def _check_sample_index(args, ds):
    from ai8x_nb.errors import ParameterError

    if args.save_sample is None or isinstance(ds, str):
        return
    count = len(ds.test)
    if not 0 <= args.save_sample < count:
        raise ParameterError(
            f"--save-sample {args.save_sample} is out of range: the test split of "
            f"{ds.name!r} has {count} samples (indices 0..{count - 1}). Pick an index in that "
            f"range.")


def _save_samples(args, ds, folder):
    from ai8x_nb import datasets

    if args.save_sample is not None:
        path = folder / f"sample_{ds.name}_{args.save_sample}.npy"
        arr = datasets.save_sample(ds, args.save_sample, path, channel_first=args.channel_first,
                                   swap=args.swap)
        print(f"sample: {path} {arr.shape} int64")
        export = Path(args.export_dir) / ds.name / SAMPLE_FILE
        arr = datasets.save_sample(ds, args.save_sample, export, channel_first=True,
                                   swap=args.swap)
        print(f"sample for ai8xize.py: {export} {arr.shape} int64")
    if args.save_sample_per_class:
        paths = datasets.save_samples_per_class(ds, folder / "samples",
                                                channel_first=args.channel_first, swap=args.swap)
        print(f"samples: {len(paths)} files in {folder / 'samples'}")


def run(args):
    """Run `ai8x-nb train`; returns the exit code."""
    _check_folder_args(args)
    from ai8x_nb.parameters import check_int, check_value
    from ai8x_nb.training import train
    from ai8x_nb.training.arguments import check_train_args

    run_dir = _existing_run(args)
    distribute = check_value("distribute", args.distribute) or (
        run_dir.config.get("distribute") if run_dir else None)
    if distribute == "multiworker":
        from ai8x_nb.training.distribute import make_distribution

        make_distribution(distribute)  # joins the cluster before TensorFlow's first operation
    epochs = _epochs(args, run_dir)
    # The values train() checks, checked before any data is loaded (same table, same texts).
    check_train_args(epochs=epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                     lr=args.lr, metrics=args.metrics, schedule=args.schedule,
                     warmup_epochs=args.warmup_epochs, seed=args.seed, device=args.device,
                     recipe=args.recipe, distribute=args.distribute)
    check_value("limit", args.limit)
    check_int("--save-sample", args.save_sample, low=0,
              fix="Pass the index of a test sample, such as 0.")
    ds = _dataset(args, run_dir)
    _check_sample_index(args, ds)
    model = _initial_model(args, ds, resuming=run_dir is not None)
    result = train(
        model, ds, epochs=epochs, batch_size=args.batch_size, optimizer=args.optimizer,
        lr=args.lr, metrics=args.metrics, qat_policy=args.qat_policy, out=args.out,
        run_dir=args.run_dir, seed=args.seed, data_dir=args.data_dir,
        dataset_kwargs=_dataset_kwargs(args), device=args.device, schedule=args.schedule,
        warmup_epochs=args.warmup_epochs, recipe=args.recipe, distribute=args.distribute,
        init_from=args.init_from)
    folder = result.run_dir.path
    _save_samples(args, ds, folder)
    print(f"run dir: {folder}")
    print(f"test accuracy: {result.test_accuracy:.4f} ({len(ds.test)} test samples)")
    return 0
