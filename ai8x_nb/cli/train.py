"""`ai8x-nb train`: train a seed model (or resume a run) into a run folder.

A thin wrapper over `ai8x_nb.training.train`; accepts the flags of the vendor's old
`train.py` (`--epochs --batch_size --optimizer --lr --model --dataset --save-sample
--save-sample-per-class --channel-first --swap --metrics`).
"""

import logging

from ai8x_nb.runner import SCHEDULES  # Keras-free, so `ai8x-nb --help` stays fast

logger = logging.getLogger(__name__)


def add_parser(subparsers):
    """Register the `train` subcommand."""
    p = subparsers.add_parser(
        "train", help="train a model into a run folder (logs/<time>-<name>/)",
        description="Train a seed model on a dataset, with checkpoints, optional QAT and a "
                    "test-split evaluation. Resume a run with --run-dir.")
    p.add_argument("--dataset", help="dataset name (mnist, fashionmnist, cifar10, cifar100, "
                                     "kws20, rock); default: the model's")
    p.add_argument("--model", help="seed model name; default: the dataset's seed model")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the seed's)")
    p.add_argument("--batch_size", "--batch-size", dest="batch_size", type=int,
                   help="batch size (default: the seed's)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), help="default: the seed's (adam)")
    p.add_argument("--lr", type=float, help="initial learning rate (default: the seed's)")
    p.add_argument("--schedule", choices=SCHEDULES, default="seed",
                   help="LR schedule: the seed's (default; ReduceLROnPlateau or steps, made "
                        "for 100 epochs), cosine decay to 0 over the run (best for short "
                        "runs), or constant")
    p.add_argument("--warmup-epochs", type=float, default=0.3, metavar="E",
                   help="linear LR warm-up before the cosine decay, in epochs (default 0.3)")
    p.add_argument("--metrics", nargs="+", default=["accuracy"], help="Keras metric names")
    p.add_argument("--qat-policy", metavar="FILE|default",
                   help="quantization-aware training policy: 'default' or a policy YAML")
    p.add_argument("--device", default="MAX78000", help="MAX78000 (default) or MAX78002")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    data = p.add_argument_group("data")
    data.add_argument("--data-dir", help="folder of the datasets (default: $AI8X_NB_DATA or ./data)")
    data.add_argument("--dataset-folder", help="dataset folder under --data-dir (e.g. kws-espeak)")
    data.add_argument("--allow-partial", action="store_true",
                      help="accept an incomplete dataset copy (e.g. a CIFAR subset)")
    data.add_argument("--limit", type=int, metavar="N", help="at most N samples per split")
    runs = p.add_argument_group("run folder")
    runs.add_argument("--out", default="logs", help="parent folder of run folders (default logs)")
    runs.add_argument("--run-dir", help="resume this run folder")
    samples = p.add_argument_group("sample input for the synthesis tool (test split)")
    samples.add_argument("--save-sample", type=int, metavar="INDEX",
                         help="save test sample INDEX as sample_<dataset>_<INDEX>.npy")
    samples.add_argument("--save-sample-per-class", action="store_true",
                         help="save the first test sample of each class into samples/")
    samples.add_argument("--channel-first", action="store_true",
                         help="save samples channel-first (C, H, W), as the synthesis tool reads")
    samples.add_argument("--swap", action="store_true", help="swap the two spatial axes")
    return p


def _dataset(args):
    from ai8x_nb import datasets, models
    from ai8x_nb.runs import RunDir

    if args.run_dir and RunDir(args.run_dir).can_resume:
        return RunDir(args.run_dir).load_dataset(), None
    name = args.dataset or (models.get_info(args.model).dataset if args.model else None)
    if name is None:
        from ai8x_nb.errors import DatasetError

        raise DatasetError("Pass --dataset (or --model with a seed model name).")
    kwargs = {"data_dir": args.data_dir, "folder": args.dataset_folder,
              "allow_partial": args.allow_partial, "limit": args.limit}
    kwargs = {k: v for k, v in kwargs.items() if v not in (None, False)}
    return datasets.load(name, **kwargs), kwargs


def _epochs(args):
    from ai8x_nb import models
    from ai8x_nb.runs import RunDir

    if args.epochs is not None:
        return args.epochs
    if args.run_dir and RunDir(args.run_dir).can_resume:
        return int(RunDir(args.run_dir).config["epochs"])
    info = models.get_info(args.model) if args.model else models.model_for_dataset(args.dataset)
    return info.epochs if info else 10


def run(args):
    """Run `ai8x-nb train`; returns the exit code."""
    from ai8x_nb import datasets
    from ai8x_nb.training import train

    ds, ds_kwargs = _dataset(args)
    result = train(
        args.model, ds, epochs=_epochs(args), batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, metrics=tuple(args.metrics),
        qat_policy=args.qat_policy, out=args.out, run_dir=args.run_dir, seed=args.seed,
        dataset_kwargs=ds_kwargs, device=args.device, schedule=args.schedule,
        warmup_epochs=args.warmup_epochs)
    folder = result.run_dir.path
    if args.save_sample is not None:
        path = folder / f"sample_{ds.name}_{args.save_sample}.npy"
        arr = datasets.save_sample(ds, args.save_sample, path, channel_first=args.channel_first,
                                   swap=args.swap)
        print(f"sample: {path} {arr.shape} int64")
    if args.save_sample_per_class:
        paths = datasets.save_samples_per_class(ds, folder / "samples",
                                                channel_first=args.channel_first, swap=args.swap)
        print(f"samples: {len(paths)} files in {folder / 'samples'}")
    print(f"run dir: {folder}")
    print(f"test accuracy: {result.test_accuracy:.4f} ({len(ds.test)} test samples)")
    return 0
