"""Static matplotlib figures for the notebooks: data, training, evaluation, memory, quantization.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so nothing is
registered globally: a notebook shows the figure when it is a cell's last expression, a
script saves it with `fig.savefig(path)`, and a headless run keeps it as a PNG output.

Example:

>>> from ai8x_nb import plots  # doctest: +SKIP
>>> fig = plots.sample_grid(dataset.train, dataset.class_names, n=16)  # doctest: +SKIP
>>> fig.savefig("samples.png")  # doctest: +SKIP
"""

import base64
import csv
import io
import math

import numpy as np

__all__ = [
    "MISTAKE_COLOR",
    "CORRECT_COLOR",
    "figure_png",
    "figure_png_b64",
    "draw_curves",
    "sample_grid",
    "kws_waveforms",
    "kws_layout",
    "spectrogram",
    "spectrograms",
    "confusion_matrix",
    "prediction_grid",
    "training_curves",
    "memory_budget",
    "draw_budget",
    "budget_items",
    "quant_comparison",
    "quant_accuracies",
]

MISTAKE_COLOR = "#d62728"
CORRECT_COLOR = "#2ca02c"
KWS_SAMPLE_RATE = 16000


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_png(fig, dpi=80):
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_png_b64(fig, dpi=80):
    """Render a figure to a base64 PNG string (the form of an `image/png` notebook output)."""
    return base64.b64encode(figure_png(fig, dpi)).decode("ascii")


def _xy(data, y=None):
    """Accept a Split-like object (x, y attributes), an (x, y) tuple, or x plus y."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return np.asarray(data.x), np.asarray(data.y)
    if isinstance(data, tuple) and len(data) == 2 and y is None:
        return np.asarray(data[0]), np.asarray(data[1])
    return np.asarray(data), None if y is None else np.asarray(y)


def _image(sample):
    """int8 device input (H, W, C) / (H, W) -> an array imshow draws (uint8, gray for 1 channel)."""
    arr = np.asarray(sample)
    if arr.dtype.kind == "f":
        arr = np.round(arr * 128.0)
    img = (arr.astype(np.int16) + 128).clip(0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[-1] not in (3, 4):
        img = img[..., 0]
    return img


def _label(class_names, index):
    index = int(index)
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def _grid(n, cols, cell=1.3, extra_height=0.0):
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    fig = _figure(cols * cell, rows * (cell + 0.25) + extra_height)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes.ravel()


def sample_grid(data, class_names=None, *, n=16, cols=8, y=None, title=None):
    """A grid of input images, each titled with its class name.

    Args:
        data: a dataset split (`.x`, `.y`), an `(x, y)` tuple, or `x` with `y=`. Images are
            int8 device inputs (N, H, W, C) (or floats in [-1, 1)).
        class_names: names indexed by label; labels are shown as numbers when None.
        n: number of images (the first n).
        cols: images per row.
        y: labels when `data` is a bare array.
        title: figure title.

    Returns:
        A `Figure` with `n` image axes (unused grid cells are hidden).
    """
    x, labels = _xy(data, y)
    n = min(n, len(x))
    fig, axes = _grid(n, cols)
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_visible(False)
            continue
        img = _image(x[i])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        if labels is not None:
            ax.set_title(_label(class_names, labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def kws_waveforms(data, class_names=None, *, n=4, y=None):
    """Plot keyword clips as waveforms: the (128, 128) layout read row by row is the audio.

    Args:
        data: a kws20 split (x of shape (N, 128, 128), int8) or an (x, y) tuple.
        class_names: names indexed by label.
        n: number of clips.

    Returns:
        A `Figure` with one axis per clip (time in seconds at 16 kHz on x).
    """
    x, labels = _xy(data, y)
    n = min(n, len(x))
    fig = _figure(10, 1.6 * n + 0.4)
    axes = np.atleast_1d(fig.subplots(n, 1, sharex=True, squeeze=False).ravel())
    for i, ax in enumerate(axes):
        wave = np.asarray(x[i]).reshape(-1).astype(np.float32) / 128.0
        t = np.arange(len(wave)) / KWS_SAMPLE_RATE
        ax.plot(t, wave, linewidth=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("x / 128")
        if labels is not None:
            ax.set_title(_label(class_names, labels[i]), fontsize=9, loc="left")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle("Keyword clips: first 16,384 samples at 16 kHz")
    return fig


def kws_layout(sample, *, title=None):
    """Show one clip as the accelerator reads it: 128 rows (time steps) x 128 columns.

    Row r holds samples 128*r .. 128*r+127; each row is one Conv1D step and each column one
    input channel.

    Args:
        sample: one (128, 128) int8 clip.
        title: axis title.

    Returns:
        A `Figure` with one image axis.
    """
    arr = np.asarray(sample)
    fig = _figure(5, 4.6)
    ax = fig.subplots()
    im = ax.imshow(arr.astype(np.float32), cmap="coolwarm", vmin=-128, vmax=127,
                   aspect="equal", interpolation="nearest")
    ax.set_xlabel("column = Conv1D input channel (sample within the row)")
    ax.set_ylabel("row = Conv1D time step")
    ax.set_title(title or f"{arr.shape[0]}x{arr.shape[1]} layout (int8 values)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def spectrogram(sample, *, frame=256, hop=128):
    """Magnitude spectrogram (dB) of one (128, 128) keyword clip read row by row as audio.

    Args:
        sample: one clip, any shape (flattened: 16,384 samples at 16 kHz).
        frame: FFT frame length in samples (Hann window).
        hop: samples between frames.

    Returns:
        `(frequencies, frames)` float32 array in dB (0 dB = full scale).
    """
    wave = np.asarray(sample, dtype=np.float32).reshape(-1) / 128.0
    starts = range(0, max(1, len(wave) - frame + 1), hop)
    frames = np.stack([wave[s:s + frame] for s in starts]) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) / (frame / 4)
    return (20 * np.log10(np.maximum(power, 1e-5))).T.astype(np.float32)


def spectrograms(data, class_names=None, *, per_class=1, max_classes=12, y=None):
    """Spectrograms of the first `per_class` clips of each class (time on x, frequency on y).

    Args:
        data: a keyword split (x of shape (N, 128, 128), int8) or an (x, y) tuple.
        class_names: names indexed by label.
        per_class: clips shown per class.
        max_classes: classes shown at most (the first ones).

    Returns:
        A `Figure`, one row of axes per class.
    """
    x, labels = _xy(data, y)
    classes = [c for c in np.unique(labels)][:max_classes]
    fig = _figure(3.2 * per_class + 0.6, 1.9 * len(classes) + 0.6)
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for row, c in zip(axes, classes):
        picks = np.flatnonzero(labels == c)[:per_class]
        for ax, i in zip(row, picks):
            ax.imshow(spectrogram(x[i]), origin="lower", aspect="auto", cmap="magma",
                      vmin=-80, vmax=0, extent=(0, x[i].size / KWS_SAMPLE_RATE, 0,
                                                KWS_SAMPLE_RATE / 2000))
            ax.set_title(_label(class_names, c), fontsize=9, loc="left")
            ax.set_ylabel("kHz", fontsize=8)
        for ax in row[len(picks):]:
            ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle("Spectrograms (dB): one clip per class")
    return fig


def confusion_matrix(cm, class_names=None, *, normalize=True, title="Confusion matrix (test)"):
    """Heatmap of a confusion matrix (rows = true class, columns = predicted).

    Args:
        cm: square array of counts.
        class_names: tick labels (shown up to 30 classes).
        normalize: colour by row fraction (counts are still written in small matrices).
        title: axis title.

    Returns:
        A `Figure` with the heatmap axis and a colour bar.
    """
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    size = min(12.0, max(4.5, 0.45 * k + 2.5))
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    rows = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalize else cm
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(cm) / cm.sum() if cm.sum() else 0.0
    ax.set_title(f"{title}: accuracy {100 * accuracy:.2f} %")
    if k <= 30:
        names = [_label(class_names, i) for i in range(k)]
        ax.set_xticks(range(k), names, rotation=90 if k > 10 else 45, fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] > 0.5 else "black")
    return fig


def prediction_grid(x, y_true, y_pred, class_names=None, *, n=24, cols=8,
                    mistakes_first=False):
    """A grid of test inputs titled "predicted (true)"; mistakes framed and titled in red.

    Args:
        x: int8 inputs (N, H, W, C) or kws20 clips (N, 128, 128).
        y_true: true labels.
        y_pred: predicted labels (or logits/probabilities of shape (N, classes)).
        class_names: names indexed by label.
        n: number of images.
        cols: images per row.
        mistakes_first: put the mistakes first (default: the samples in order).

    Returns:
        A `Figure`; its suptitle states how many of the shown samples are wrong.
    """
    x = np.asarray(x)
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    y_pred = y_pred.astype(np.int64)
    order = np.arange(len(x))
    if mistakes_first:
        wrong = y_true != y_pred
        order = np.concatenate([order[wrong], order[~wrong]])
    order = order[:min(n, len(order))]
    fig, axes = _grid(len(order), cols, cell=1.4, extra_height=0.4)
    wrong_count = 0
    for ax, i in zip(axes, order):
        img = _image(x[i])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        mistake = y_true[i] != y_pred[i]
        wrong_count += int(mistake)
        color = MISTAKE_COLOR if mistake else CORRECT_COLOR
        ax.set_title(f"{_label(class_names, y_pred[i])} ({_label(class_names, y_true[i])})",
                     fontsize=7, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(3 if mistake else 1)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    fig.suptitle(f"predicted (true): {wrong_count} of {len(order)} shown are wrong")
    return fig


def _history_dict(history):
    """Keras History, dict of lists, or a history.csv path -> dict of float lists."""
    if hasattr(history, "history"):
        history = history.history
    if isinstance(history, dict):
        return {k: [float(v) for v in vals] for k, vals in history.items()}
    with open(history, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        for key, value in row.items():
            try:
                out.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
    return out


def training_curves(history, *, title="Training"):
    """Loss, accuracy and learning rate per epoch, train and validation.

    Args:
        history: a Keras `History`, a dict of per-epoch lists (`loss`, `val_loss`,
            `accuracy`, `val_accuracy`, `learning_rate`/`lr`), or a path to history.csv.
        title: figure title.

    Returns:
        A `Figure` with two axes (loss, accuracy), three when a learning rate is present.
    """
    h = _history_dict(history)
    lr_key = next((k for k in ("learning_rate", "lr") if h.get(k)), None)
    panels = 3 if lr_key else 2
    fig = _figure(4.0 * panels, 3.2)
    axes = fig.subplots(1, panels, squeeze=False).ravel()
    draw_curves(axes, h, lr_key)
    fig.suptitle(title)
    return fig


def draw_curves(axes, h, lr_key=None, qat_epoch=None):
    """Draw loss / accuracy (/ lr) curves of a history dict into existing axes.

    Epochs are whole numbers on every x axis (1..n, even for one epoch). The learning rate is
    on a log axis unless a value is 0 or less (a cosine schedule ends at 0), then linear, so no
    epoch is dropped. `qat_epoch` (1-based) is marked by a dotted line and a "QAT" label
    inside the top of each axis.
    """
    from matplotlib.ticker import MaxNLocator

    epochs = h.get("epoch")
    count = 1
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = h.get(key)
            if values:
                xs = [e + 1 for e in epochs] if epochs and len(epochs) == len(values) else \
                    list(range(1, len(values) + 1))
                count = max(count, max(xs))
                ax.plot(xs, values, style, markersize=3, label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8)
    if lr_key and len(axes) > 2 and h.get(lr_key):
        values = h[lr_key]
        count = max(count, len(values))
        axes[2].plot(range(1, len(values) + 1), values, "-o", markersize=3, color="tab:purple")
        if min(values) > 0:
            axes[2].set_yscale("log")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("learning rate")
        axes[2].grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(0.5, count + 0.5)
    if qat_epoch is not None:
        # Fake quantization is on from epoch `qat_epoch` (1-based): mark just before it.
        for ax in axes:
            ax.axvline(qat_epoch - 0.5, color="gray", linestyle=":", linewidth=1)
            ax.text(qat_epoch - 0.5, 0.97, " QAT", va="top", ha="left", fontsize=8,
                    color="gray", transform=ax.get_xaxis_transform())


def budget_items(report):
    """The memory/limit figures of a check report as (label, used, limit, unit) tuples.

    Args:
        report: a `CheckReport` (or anything with a `totals` dict), or the totals dict.

    Returns:
        A list of tuples, in display order; entries whose figures are missing are left out.
    """
    totals = getattr(report, "totals", report) or {}
    specs = (
        ("layers", "layers", "max_layers", ""),
        ("weight memory", "weight_bytes", "weight_memory_bytes", "B"),
        ("fullest processor", "weight_words_max_processor", "weight_words_per_processor",
         "words"),
        ("bias memory", "bias_bytes", "bias_memory_bytes", "B"),
        ("data memory / instance", "data_instance_bytes_max", "data_instance_bytes", "B"),
    )
    items = []
    for label, used, limit, unit in specs:
        if used in totals and limit in totals and totals[limit]:
            items.append((label, float(totals[used]), float(totals[limit]), unit))
    return items


def draw_budget(ax, report, title=None):
    """Draw horizontal usage bars (percent of the device limit) into an axis."""
    items = budget_items(report)
    labels = [f"{label}\n{int(used):,} / {int(limit):,} {unit}".rstrip()
              for label, used, limit, unit in items]
    percent = [100.0 * used / limit for _, used, limit, _ in items]
    colors = [MISTAKE_COLOR if p > 100 else ("#ff7f0e" if p > 85 else "#1f77b4")
              for p in percent]
    ypos = np.arange(len(items))[::-1]
    ax.barh(ypos, [min(p, 110) for p in percent], color=colors)
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.axvline(100, color="black", linewidth=1)
    ax.set_xlim(0, 115)
    ax.set_xlabel("% of the device limit")
    for y, p in zip(ypos, percent):
        ax.text(min(p, 110) + 1, y, f"{p:.1f} %", va="center", fontsize=8)
    device = getattr(getattr(report, "device", None), "name", None)
    ax.set_title(title or f"Memory budget{' on ' + device if device else ''}")
    return ax


def memory_budget(report, *, title=None):
    """Bars of layers, weight, bias and data memory used against the device limits.

    Args:
        report: a `CheckReport` from `ai8x_nb.check.check_model` (or its `totals` dict).
        title: axis title (default "Memory budget on <device>").

    Returns:
        A `Figure` with one horizontal bar per budget; bars over 100 % are red.
    """
    fig = _figure(7.5, 0.6 * max(3, len(budget_items(report))) + 1.0)
    draw_budget(fig.subplots(), report, title)
    return fig


def _get(obj, *names):
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def quant_accuracies(report):
    """Float / fake-quant / integer accuracies of a QuantReport (or dict) as an ordered dict.

    Missing entries (e.g. no integer simulation) are left out.
    """
    found = {}
    for label, names in (("float", ("float_accuracy", "float")),
                         ("fake-quant (QAT)", ("fake_quant_accuracy", "qat_accuracy",
                                               "fake_quant", "fakequant_accuracy")),
                         ("integer (device)", ("integer_accuracy", "int_accuracy",
                                               "integer", "simulated_accuracy"))):
        value = _get(report, *names)
        if value is not None:
            found[label] = float(value)
    return found


def quant_comparison(report, *, title="Accuracy after quantization (test)"):
    """Bar chart: float vs fake-quantized vs integer (device simulation) accuracy.

    Args:
        report: a `QuantReport` from `ai8x_nb.evaluate.evaluate_quantized`, or a dict with
            `float_accuracy`, `fake_quant_accuracy`, `integer_accuracy` (fractions in [0, 1]).
        title: axis title.

    Returns:
        A `Figure` with one bar per available accuracy, labelled in percent.
    """
    acc = quant_accuracies(report)
    fig = _figure(5.5, 3.2)
    ax = fig.subplots()
    names = list(acc)
    values = [100.0 * v for v in acc.values()]
    bars = ax.bar(names, values, color=["#1f77b4", "#ff7f0e", "#2ca02c"][:len(names)])
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 1, f"{value:.2f} %",
                ha="center", fontsize=9)
    ax.set_ylim(0, 110)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    return fig
