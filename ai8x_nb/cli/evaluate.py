"""`ai8x-nb evaluate RUN_DIR`: float vs fake-quant vs integer accuracy of a training run."""


def add_parser(subparsers):
    """Register the `evaluate` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="float / fake-quant / integer accuracy of a run (writes quant_report.json)",
        description="Evaluate a training run's model three ways on the test split: float, "
                    "fake-quantized (Keras QAT) and bit-exact integer simulation of the device. "
                    "Prints a table and writes RUN_DIR/quant_report.json.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder (logs/<time>-<name>)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use only the first N samples")
    parser.add_argument("--batch-size", type=int, default=256, metavar="B",
                        help="prediction / simulation batch size (default 256)")
    parser.add_argument("--split", default="test", type=str.lower,
                        choices=("test", "valid", "train"), help="dataset split (default test)")
    parser.add_argument("--data-dir", help="folder of the datasets (default: $AI8X_NB_DATA, "
                                           "else the folder the run was trained with)")
    return parser


def run(args):
    """Run `ai8x_nb.evaluate.evaluate_run` and print its table."""
    from ai8x_nb.evaluate import REPORT_FILE, evaluate_run
    from ai8x_nb.parameters import check_value

    check_value("limit", args.limit)
    check_value("batch_size", args.batch_size)
    report = evaluate_run(args.run_dir, split=args.split, batch_size=args.batch_size,
                          limit=args.limit, data_dir=args.data_dir)
    print(report)
    print(f"\nwrote {args.run_dir.rstrip('/')}/{REPORT_FILE}")
    return 0
