"""`ai8x-nb run`: run dataset notebooks headless with papermill (`ai8x_nb.notebooks.run_all`)."""

import argparse

HELP = "run dataset notebooks headless (papermill) and print a summary table"


def add_parser(subparsers):
    """Register `run`; returns its parser."""
    parser = subparsers.add_parser(
        "run", help=HELP, description=HELP + ".",
        epilog="Examples: ai8x-nb run mnist -p epochs 100 -p fast False; "
               "ai8x-nb run images -p data_folder shapes; "
               "ai8x-nb run all --parallel 2 --out runs; "
               "ai8x-nb run all -p epochs 10 --out jobs --print-commands | parallel -j 4")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                        help="dataset name (mnist, fashionmnist, cifar10, cifar100, kws20, "
                             "rock), images or keywords (your own folder: -p data_folder "
                             "PATH), a path to a .ipynb, or 'all' (the six datasets)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="override a notebook parameter (VALUE parsed like papermill: "
                             "numbers, True/False/None, YAML lists/dicts)")
    parser.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="notebooks run at once (default 1)")
    parser.add_argument("--out", default="runs", help="folder for executed notebooks")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    parser.add_argument("--cwd", default=None,
                        help="working directory of the notebooks (default: --out)")
    parser.add_argument("--log-output", action="store_true",
                        help="stream notebook outputs to the log")
    parser.add_argument("--print-commands", action="store_true",
                        help="run nothing: print one command per notebook, each writing only "
                             "<out>/<notebook>/, for a job runner (Slurm array, GNU "
                             "parallel, Kubernetes Jobs)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the notebooks: one status line per notebook as it ends, then the summary table.

    Exit 0 when all ran, 1 when any failed.
    """
    import logging
    import os

    from ai8x_nb import notebooks

    # papermill announces each notebook at INFO (twice: inspection and execution); the
    # status lines below say the same once. The kernels inherit the quiet TensorFlow level.
    logging.getLogger("papermill").setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    names = None if args.notebooks == ["all"] else args.notebooks
    parameters = {name: notebooks.parse_value(value) for name, value in args.parameter}
    if args.print_commands:
        for command in notebooks.job_commands(names, parameters, out_dir=args.out,
                                           kernel_name=args.kernel):
            print(command)
        return 0
    results = notebooks.run_all(names, parameters, parallel=args.parallel, out_dir=args.out,
                             kernel_name=args.kernel, cwd=args.cwd, log_output=args.log_output,
                             progress=True,
                             on_result=lambda r: print(notebooks.status_line(r), flush=True))
    print()
    print(notebooks.summary_table(results))
    return 0 if all(r.ok for r in results) else 1
