"""`ai8x-nb export RUN_DIR [--out DIR] [--targets ...] [--sample-index N]`."""

from ai8x_nb.export import TARGETS, export_run


def add_parser(subparsers):
    """Register the `export` subcommand."""
    parser = subparsers.add_parser(
        "export", help="export a trained run to synthesis / ONNX / SavedModel / TFLite",
        description="Export the best model of a training run folder into one folder with a "
                    "manifest.json: the ai8xize.py package (checkpoint, YAML, sample input "
                    "and output), float ONNX, SavedModel and TFLite float / full-int8.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder (logs/...)")
    parser.add_argument("--out", default=None,
                        help="export folder (default: export/<run folder name>)")
    parser.add_argument("--targets", nargs="+", default=None, metavar="TARGET",
                        help=f"targets to write: {', '.join(TARGETS)} (default: every target the "
                             f"Keras backend can write; the others are listed as skipped)")
    parser.add_argument("--sample-index", type=int, default=0,
                        help="test sample used for sampledata.npy (default 0)")
    parser.add_argument("--eval-limit", type=int, default=None,
                        help="measure accuracies on at most this many test samples")
    parser.add_argument("--data-dir", help="folder of the datasets (default: $AI8X_NB_DATA, "
                                           "else the folder the run was trained with)")
    return parser


def run(args):
    """Run `export`; prints the folder, artifacts and accuracies; returns 0."""
    from ai8x_nb.export.targets import targets_text
    from ai8x_nb.parameters import check_int
    from ai8x_nb.runs import RunDir

    check_int("--eval-limit", args.eval_limit, fix="Omit the flag for all test samples.")
    check_int("--sample-index", args.sample_index, low=0,
              fix="Pass the index of a test sample, such as 0.")
    targets = (None if args.targets is None else
               [t for item in args.targets for t in item.replace(",", " ").split()])
    run_dir = RunDir(args.run_dir)
    run_dir.require_run()
    # A folder of your own that changed since training: a warning, not a refusal.
    dataset = run_dir.load_dataset(data_dir=args.data_dir, on_folder_change="warn")
    manifest = export_run(run_dir.path, args.out, targets=targets, dataset=dataset,
                          sample_index=args.sample_index, eval_limit=args.eval_limit)
    print(f"exported to {manifest.folder}")
    for role, path in manifest.artifacts.items():
        print(f"  {role:16s} {path}")
    for target, reason in manifest.skipped.items():
        print(f"  skipped {target}: {reason.splitlines()[0]}")
    for key, value in manifest.accuracy.items():
        print(f"  accuracy {key:20s} {value:.4f}")
    summary = targets_text(manifest)
    if summary:
        print("targets (the same trained model):")
        print(summary)
    return 0
