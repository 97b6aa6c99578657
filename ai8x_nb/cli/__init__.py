"""Command-line interface `ai8x-nb`: one subcommand per job, each a thin wrapper over one
library function. Subcommands live in their own modules (`ai8x_nb.cli.<name>`), each with
`add_parser(subparsers)` and `run(args) -> int`.
"""

import argparse
import errno
import importlib
import logging
import os
import sys

SUBCOMMANDS = ("check", "train", "evaluate", "export", "synthesize", "run", "importer")
"""Subcommand modules (`import` lives in `importer`: a keyword cannot name a module)."""
TENSORFLOW_COMMANDS = ("check", "train", "evaluate", "export", "import")
"""Subcommands that import TensorFlow: it is imported up front, without its start-up noise."""


def build_parser():
    """Return the argparse parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ai8x-nb",
        description="Design, train, quantize and export networks for the MAX78000/MAX78002.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"ai8x_nb.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    """Entry point of the `ai8x-nb` console script."""
    # TensorFlow's C++ chatter hides the tool's own output; users can still set the level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `ai8x-nb synthesize EXPORT -- --pll ...`: what follows `--` goes to the tool as it is.
    passed = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = parser.parse_args(argv)
    if passed:
        if not getattr(args, "takes_tool_args", False):
            parser.error(f"arguments after -- ({' '.join(passed)}) are only for "
                         f"`ai8x-nb synthesize` (passed to ai8xize.py)")
        args.tool_args = passed
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s")
    from ai8x_nb.errors import Ai8xNbError

    if args.command in TENSORFLOW_COMMANDS:
        from ai8x_nb.console import quiet_tensorflow

        quiet_tensorflow()

    try:
        return args._run(args)
    except Ai8xNbError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        print(f"error: {write_error_message(err)}", file=sys.stderr)
        return 2


WRITE_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM)
"""Errors of a folder that cannot take the files: reported in one line, not a traceback."""


def write_error_message(err):
    """One line for a failed write: the file, the reason, the fix (what was there stays)."""
    where = f" {err.filename!r}" if err.filename else ""
    fix = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
           errno.EROFS: "pass a writable folder (--out / --run-dir)"}.get(
        err.errno, "check the folder's permissions or pass another folder (--out)")
    return (f"cannot write{where}: {os.strerror(err.errno)}. Nothing was replaced (the files "
            f"that were there are intact); {fix} and run the command again.")


if __name__ == "__main__":
    sys.exit(main())
