"""What a user sees: TensorFlow's start-up noise quieted at its source, the package's own
messages shown as ordinary output.

TensorFlow 2.21 prints its start-up lines (oneDNN, CUDA drivers, CPU features) from C++
before its log settings apply, so `TF_CPP_MIN_LOG_LEVEL` alone does not hide them; the
TFLite converter and interpreter print more. `quiet_tensorflow` imports TensorFlow with those
known lines filtered out of the process' stderr (anything else is passed through), and
`tf_quiet` does the same around one export step. In a notebook every one of these lines is a
red stderr block.

Example (the first lines of a notebook, before `import keras`):

>>> import ai8x_nb.console
>>> ai8x_nb.console.setup_notebook()  # doctest: +SKIP
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

__all__ = ["NOISE", "filtered_stderr", "quiet_tensorflow", "setup_notebook", "show_messages",
           "tf_quiet"]

NOISE = tuple(re.compile(p) for p in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} [\d:. ]+\d+ (port|cudart_stub|cpu_feature_guard|cuda_\w+)\.cc:\d+\]",
    r"^E\d{4} [\d:. ]+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit",
    r"^To enable the following instructions: .* rebuild TensorFlow",
    r"^fully_quantize: \d+, inference_type: ",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",
))
"""Known, harmless lines TensorFlow writes to stderr (start-up, TFLite converter/interpreter)."""

_CPP_INFO = re.compile(r"^I\d{4} [\d:. ]+\d+ \w+\.cc:\d+\] ")
"""Any C++ INFO line (graph optimizer sessions, ...): dropped during an export step."""

# (category, message regex, module regex) of warnings the exports trigger inside libraries.
_WARNINGS = (
    (FutureWarning, r"In the future `np\.object` will be defined", r"keras\.src\.export"),
    (UserWarning, r"\s*Warning: tf\.lite\.Interpreter is deprecated", r"tensorflow\.lite"),
    (DeprecationWarning, r".*np\.object", r"(tf2onnx|keras|tensorflow)"),
)
_CHATTY_LOGGERS = ("tensorflow", "tf2onnx", "absl")
"""Python loggers of the libraries an export runs, which report every step at INFO."""
_HANDLER_NAME = "ai8x_nb.console"


@contextlib.contextmanager
def filtered_stderr(noise=NOISE):
    """Drop the lines matching `noise` from what the process writes to stderr (fd 2) in the block.

    The other lines are written to `sys.stderr` when the block ends. Works at the file
    descriptor level, so it also catches C++ output (and a Jupyter kernel's capture of it).

    Args:
        noise: compiled regexes of the lines to drop.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not any(p.search(line) for p in noise)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@contextlib.contextmanager
def tf_quiet():
    """Quiet TensorFlow for one step: its known stderr lines, INFO logs and library warnings.

    Used around SavedModel / ONNX / TFLite exports; restores everything afterwards.
    """
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        with warnings.catch_warnings(), filtered_stderr(NOISE + (_CPP_INFO,)):
            for category, message, module in _WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category,
                                        module=module)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def quiet_tensorflow():
    """Import TensorFlow without its start-up noise; keep its later C++ logs to real errors.

    Sets `TF_CPP_MIN_LOG_LEVEL=3` unless the user set it, imports TensorFlow with the known
    start-up lines filtered out, and keeps the Python loggers of TensorFlow, tf2onnx and absl
    at warnings. Call it
    before anything imports Keras or TensorFlow (later calls change the log levels only).

    Returns:
        True when TensorFlow was imported here, False when it had been imported before.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    imported_here = "tensorflow" not in sys.modules
    if imported_here:
        with filtered_stderr():
            import tensorflow

            # Initialises the GPU platform now, inside the filter: on a machine without a
            # GPU it logs a cuInit error at the first operation otherwise.
            tensorflow.config.list_physical_devices("GPU")
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for category, message, module in _WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    return imported_here


class _Stdout(logging.StreamHandler):
    """A handler writing to the `sys.stdout` of the moment (a notebook replaces it per cell)."""

    def __init__(self):
        super().__init__(sys.stdout)
        self.name = _HANDLER_NAME

    def emit(self, record):
        self.setStream(sys.stdout)
        super().emit(record)


def show_messages(level=logging.INFO):
    """Show the package's log messages as ordinary output (stdout), not as stderr.

    Messages of the `ai8x_nb` logger at `level` and above go to `sys.stdout`, one plain line
    each; they no longer reach the root logger's handlers (no red duplicate in a notebook).
    Calling it again only changes the level.

    Args:
        level: a `logging` level or its name ("INFO", "WARNING", ...).

    Returns:
        The `ai8x_nb` logger.
    """
    logger = logging.getLogger("ai8x_nb")
    logger.setLevel(level)
    if not any(getattr(h, "name", None) == _HANDLER_NAME for h in logger.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def setup_notebook(level=logging.INFO):
    """The first call of a notebook: quiet TensorFlow and show the package's messages.

    Call it before `import keras`: TensorFlow's start-up lines are filtered only when the
    import happens here.

    Args:
        level: level of the package messages shown.

    Example:

    >>> from ai8x_nb.console import setup_notebook
    >>> setup_notebook()  # doctest: +SKIP
    """
    quiet_tensorflow()
    show_messages(level)
