"""Training progress output: an updating bar where someone watches, one line per epoch where not.

- Terminal: Keras' own progress bar (`verbose=1`).
- Jupyter kernel (JupyterLab, papermill, nbconvert): `NotebookProgress`, one text output
  updated in place through an IPython display handle. JupyterLab shows a bar that moves; a
  saved notebook keeps only the last update: one line per finished epoch.
- Anything else (CI, output redirected to a file): one line per epoch (`verbose=2`).
"""

import os
import sys
import time

import keras

__all__ = ["NotebookProgress", "auto_verbose", "progress_setup"]

BAR_WIDTH = 24
UPDATE_SECONDS = 0.5


def _jupyter_kernel():
    """True inside a Jupyter kernel (not a terminal IPython)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def auto_verbose():
    """Keras verbosity: a progress bar (1) in a terminal, one line per epoch (2) otherwise.

    Inside a Jupyter kernel `train` shows `NotebookProgress` instead (see `progress_setup`).
    """
    if os.environ.get("CI"):
        return 2
    return 1 if sys.stdout.isatty() else 2


def progress_setup(verbose, epochs, steps):
    """The Keras `verbose` value and the progress callbacks for a `fit`.

    Args:
        verbose: "auto", or a Keras verbosity 0, 1, 2 (used as given).
        epochs: total epochs of the run.
        steps: batches per epoch.

    Returns:
        `(keras_verbose, callbacks)`.
    """
    if verbose != "auto":
        return verbose, []
    if _jupyter_kernel():
        return 0, [NotebookProgress(epochs, steps)]
    return auto_verbose(), []


def _metrics_text(logs):
    parts = []
    for key, value in (logs or {}).items():
        if key in ("epoch_time", "learning_rate"):
            continue
        try:
            parts.append(f"{key} {float(value):.4f}")
        except (TypeError, ValueError):
            continue
    return " - ".join(parts)


class NotebookProgress(keras.callbacks.Callback):
    """A training progress display for notebooks: one output, updated in place.

    While an epoch runs the last line is a bar (`Epoch 2/5 [=====>    ] 31/64 loss ...`);
    when it ends the bar becomes that epoch's summary line. A headless run saves the final
    state only: one line per epoch, no control characters.

    Args:
        epochs: total epochs (for the "Epoch i/N" label).
        steps: batches per epoch.
        interval: minimum seconds between two updates of the bar.

    Example:

    >>> model.fit(data, epochs=3, verbose=0,
    ...           callbacks=[NotebookProgress(3, 64)])  # doctest: +SKIP
    """

    def __init__(self, epochs, steps, interval=UPDATE_SECONDS):
        super().__init__()
        self.epochs = int(epochs)
        self.steps = int(steps)
        self.interval = float(interval)
        self.lines = []
        self._handle = None
        self._epoch = 0
        self._start = 0.0
        self._shown = 0.0

    def _show(self, current=None):
        text = "\n".join(self.lines + ([current] if current else []))
        if self._handle is None:
            from IPython.display import display

            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": text}, raw=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = self._shown = time.monotonic()
        self._show(f"Epoch {epoch + 1}/{self.epochs} starting")

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self._shown < self.interval and batch + 1 < self.steps:
            return
        self._shown = now
        done = min(batch + 1, self.steps)
        filled = int(BAR_WIDTH * done / max(self.steps, 1))
        bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + " " * (BAR_WIDTH - filled - 1)
        self._show(f"Epoch {self._epoch + 1}/{self.epochs} [{bar[:BAR_WIDTH]}] {done}/{self.steps}"
                   f" {now - self._start:.0f}s - {_metrics_text(logs)}")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self._start
        self.lines.append(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.0f}s - "
                          f"{_metrics_text(logs)}")
        self._show()
