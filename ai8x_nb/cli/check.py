"""`ai8x-nb check MODEL [--device MAX78000] [--clock-mhz 50] [--json]`: can a model run on the
device, and what does it cost (memory, cycles, operations)?"""

import json


def add_parser(subparsers):
    """Register the `check` subcommand."""
    parser = subparsers.add_parser(
        "check", help="check that a model fits the accelerator",
        description="Check a model against the device's limits and print the per-layer "
                    "report: memory, and cycles and operations as the synthesis tool counts "
                    "them, with the latency at the accelerator clock. Exit code 0 when it "
                    "fits, 1 when it does not.")
    parser.add_argument(
        "model", metavar="MODULE_OR_FILE",
        help="a .keras file, a .py file or module defining `model` / `build_model()`, or a "
             "seed model name")
    parser.add_argument("--device", default=None, help="MAX78000 (default) or MAX78002")
    parser.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                        help="accelerator clock for the latency in microseconds (default: "
                             "the device's, 50 MHz)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def run(args):
    """Run `check`; returns 0 when the model fits, 1 when it does not."""
    from ai8x_nb.check import check_model  # imports Keras: keep `ai8x-nb --help` fast
    from ai8x_nb.modelio.source import load_model_source

    model = load_model_source(args.model, device=args.device)
    report = check_model(model, device=args.device, clock_mhz=args.clock_mhz)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return 0 if report.ok else 1
