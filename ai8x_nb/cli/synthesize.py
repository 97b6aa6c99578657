"""`ai8x-nb synthesize EXPORT_DIR`: run the vendor's ai8xize.py and verify its known answer."""

import json

HELP = "run the vendor's synthesis tool on an export and verify its known answer"


def add_parser(subparsers):
    """Register the `synthesize` subcommand."""
    parser = subparsers.add_parser(
        "synthesize", help=HELP,
        description="Run Analog Devices' ai8xize.py (from its own folder) on the synthesis "
                    "package of an export folder, write the C project into EXPORT_DIR/sdk/ "
                    "(or --out) and compare the tool's known answer with sampleoutput.npy, "
                    "value by value. With --build, then compile and link that C project "
                    "with arm-none-eabi-gcc and the MSDK and show its flash and RAM use and "
                    "the compiler's warnings. Exit 0 only when the answers are equal (and the "
                    "firmware builds); 1 when the tool rejects the export, computes another "
                    "answer or the firmware does not build; 2 when the tool, the export, the "
                    "compiler or the MSDK is missing.",
        epilog="The tool is found with --synthesis-dir / --python, else the environment "
               "variables AI8X_SYNTHESIS_DIR / AI8X_SYNTHESIS_PYTHON; the MSDK with "
               "--maxim-path, else MAXIM_PATH; the compiler on PATH.")
    parser.add_argument("export_dir", metavar="EXPORT_DIR",
                        help="an export folder with the synthesis package (manifest.json)")
    parser.add_argument("--out", default=None,
                        help="where the tool writes the C project (default EXPORT_DIR/sdk)")
    parser.add_argument("--synthesis-dir", default=None,
                        help="the ai8x-synthesis folder (default $AI8X_SYNTHESIS_DIR)")
    parser.add_argument("--python", default=None,
                        help="the synthesis tool's Python (default $AI8X_SYNTHESIS_PYTHON)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before the tool is stopped (default 900)")
    parser.add_argument("--build", action="store_true",
                        help="after a PASS, compile and link the C project (firmware sizes, "
                             "compiler warnings)")
    parser.add_argument("--maxim-path", default=None, metavar="DIR",
                        help="the MSDK folder for --build (default $MAXIM_PATH)")
    parser.add_argument("--trace", action="store_true",
                        help="compare every layer's output with the tool's log (slower: the "
                             "tool prints every layer's data); names the first differing "
                             "layer, channel and position")
    tool = parser.add_argument_group(
        "ai8xize.py options", "passed to the tool as they are (recorded in manifest.json); "
                              "any other tool option goes after --, e.g. "
                              "`ai8x-nb synthesize EXPORT -- --pll --clock-divider 1`")
    tool.add_argument("--energy", action="store_true",
                      help="main.c measures energy and time per inference (needs the "
                           "MAX78000 EVKIT's power monitor)")
    tool.add_argument("--fifo", action="store_true",
                      help="feed the input through the FIFOs (added by itself when the "
                           "export has streaming layers)")
    tool.add_argument("--fast-fifo", action="store_true", help="use the fast FIFO (with --riscv)")
    tool.add_argument("--riscv", action="store_true", help="run the network from the RISC-V core")
    tool.add_argument("--boost", metavar="PORT.PIN", default=None,
                      help="turn on the boost circuit at this port pin, e.g. 2.5")
    parser.set_defaults(tool_args=[], takes_tool_args=True)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def tool_args(args):
    """The ai8xize.py arguments the command line passes through."""
    extra = [flag for flag, on in (("--energy", args.energy), ("--fifo", args.fifo),
                                   ("--fast-fifo", args.fast_fifo), ("--riscv", args.riscv))
             if on]
    if args.boost is not None:
        extra += ["--boost", args.boost]
    return extra + list(args.tool_args)


def run(args):
    """Run `synthesize`; returns 0 on PASS (with a firmware that builds, with --build), 1 on
    FAIL."""
    from ai8x_nb.synthesis import synthesize

    progress = None
    if args.json:
        progress = (lambda line: None)
    result = synthesize(args.export_dir, out=args.out, synthesis_dir=args.synthesis_dir,
                        python=args.python, timeout=args.timeout, progress=progress,
                        build=args.build, maxim_path=args.maxim_path,
                        extra_args=tool_args(args), trace=args.trace)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    built = result.firmware is None or result.firmware.ok
    traced = result.trace is None or result.trace.equal
    return 0 if result.ok and built and traced else 1
