"""A Keras callback that draws loss, accuracy and learning rate while training.

In JupyterLab the figure is shown once and updated in place through an IPython display
handle after every epoch; a headless run (papermill, nbconvert) keeps the last update as a
normal PNG output. Outside IPython nothing is displayed and the figure is kept in
`LivePlot.figure`.
"""

import keras
import numpy as np

from ai8x_nb import plots

__all__ = ["LivePlot"]


def _ipython_shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


class LivePlot(keras.callbacks.Callback):
    """Live training curves: loss and accuracy (train and validation) and learning rate.

    Several `fit` calls (e.g. a float phase then a QAT phase) continue the same curves; the
    epoch where fake quantization switched on is marked "QAT".

    Args:
        title: figure title.
        dpi: resolution of the displayed PNG.

    Attributes:
        history: dict of per-epoch lists (`loss`, `val_loss`, `accuracy`, `val_accuracy`,
            `learning_rate`, `epoch`).
        figure: the `matplotlib.figure.Figure` (None before training starts).
        qat_epoch: first epoch (1-based) trained with fake quantization, or None.

    Example:

    >>> live = LivePlot()  # doctest: +SKIP
    >>> model.fit(x, y, epochs=3, validation_split=0.1, callbacks=[live])  # doctest: +SKIP
    >>> live.figure.savefig("curves.png")  # doctest: +SKIP
    """

    def __init__(self, title="Training", dpi=80):
        super().__init__()
        self.title = title
        self.dpi = dpi
        self.history = {}
        self.figure = None
        self.qat_epoch = None
        self._handle = None

    # ---------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        if self.figure is None:
            self.figure = plots._figure(12.0, 3.2)
            self.figure.subplots(1, 3)
        self._redraw()
        self._show()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        epochs = self.history.setdefault("epoch", [])
        # Absolute epoch numbers (resume, second fit) when they move forward; else count on.
        epochs.append(epoch if not epochs or epoch > epochs[-1] else epochs[-1] + 1)
        if "learning_rate" not in logs and "lr" not in logs:
            lr = self._learning_rate()
            if lr is not None:
                logs["learning_rate"] = lr
        for key, value in logs.items():
            try:
                value = float(np.asarray(value))
            except (TypeError, ValueError):
                continue
            key = "learning_rate" if key == "lr" else key
            series = self.history.setdefault(key, [])
            series.extend([float("nan")] * (len(epochs) - 1 - len(series)))
            series.append(value)
        if self.qat_epoch is None and self._qat_on():
            self.qat_epoch = epochs[-1] + 1
        self._redraw()
        self._show()

    def on_train_end(self, logs=None):
        self._redraw()
        self._show()

    # ------------------------------------------------------------ helpers
    def _learning_rate(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        try:
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except (TypeError, ValueError, AttributeError):
            return None

    def _qat_on(self):
        model = self.model
        return model is not None and any(getattr(layer, "qat", False) for layer in model.layers)

    def _redraw(self):
        axes = self.figure.axes
        for ax in axes:
            ax.clear()
        lr_key = "learning_rate" if self.history.get("learning_rate") else None
        plots.draw_curves(axes, self.history, lr_key, self.qat_epoch)
        if lr_key is None:
            axes[2].set_title("learning rate")
        self.figure.suptitle(self.title)

    def _bundle(self):
        epochs = len(self.history.get("epoch", []))
        return {"image/png": plots.figure_png_b64(self.figure, self.dpi),
                "text/plain": f"<LivePlot: {epochs} epoch(s)>"}

    def _show(self):
        """Show the figure, or update the shown one in place; no-op outside IPython."""
        if _ipython_shell() is None:
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self._bundle(), raw=True, display_id=True)
        else:
            self._handle.update(self._bundle(), raw=True)

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.figure is None:
            return {"text/plain": "<LivePlot: not started>"}
        return self._bundle()
