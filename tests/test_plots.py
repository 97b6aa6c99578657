"""Static figures: what each one draws (images, titles, highlighted mistakes, bars)."""

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from ai8x_nb import plots
from ai8x_nb.datasets import Split


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.images]


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(20, 8, 8, 1), dtype=np.int8)
    return Split("train", x, np.arange(20, dtype=np.int64) % 4)


def test_sample_grid_titles_each_image_with_its_class(split):
    fig = plots.sample_grid(split, ["cat", "dog", "cow", "emu"], n=10, cols=4)
    assert isinstance(fig, Figure)
    axes = _image_axes(fig)
    assert len(axes) == 10
    assert [ax.get_title() for ax in axes] == ["cat", "dog", "cow", "emu"] * 2 + ["cat", "dog"]
    # int8 -> uint8 display: -128 is black (0), 127 white (255).
    shown = axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), split.x[0, :, :, 0].astype(np.int16) + 128)


def test_sample_grid_rgb_and_plain_arrays():
    x = np.zeros((3, 4, 4, 3), np.int8)
    fig = plots.sample_grid(x, y=np.array([2, 0, 1]), n=5)
    axes = _image_axes(fig)
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["2", "0", "1"]
    assert np.asarray(axes[0].images[0].get_array()).shape == (4, 4, 3)


def test_kws_waveform_and_layout():
    x = np.zeros((3, 128, 128), np.int8)
    x[0, 5, 7] = 100  # sample 5 * 128 + 7 of clip 0
    split = Split("train", x, np.array([0, 20, 3], np.int64))
    names = [f"w{i}" for i in range(21)]
    fig = plots.kws_waveforms(split, names, n=2)
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["w0", "w20"]
    t, wave = fig.axes[0].lines[0].get_data()
    assert len(wave) == 128 * 128 and wave.argmax() == 5 * 128 + 7
    assert t[-1] == pytest.approx((128 * 128 - 1) / 16000)
    layout = plots.kws_layout(x[0])
    image = layout.axes[0].images[0].get_array()
    assert image.shape == (128, 128) and image[5, 7] == 100
    assert "row" in layout.axes[0].get_ylabel() and "channel" in layout.axes[0].get_xlabel()


def test_confusion_matrix_heatmap():
    cm = np.array([[5, 1, 0], [0, 4, 2], [0, 0, 8]])
    fig = plots.confusion_matrix(cm, ["a", "b", "c"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert "85.00 %" in ax.get_title()  # 17 of 20
    shown = np.asarray(ax.images[0].get_array())
    assert shown[1, 2] == pytest.approx(2 / 6)
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "4", "5", "8"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_prediction_grid_highlights_exactly_the_mistakes(split):
    y_pred = split.y.copy()
    y_pred[[1, 4, 7]] = (y_pred[[1, 4, 7]] + 1) % 4
    fig = plots.prediction_grid(split.x, split.y, y_pred, ["a", "b", "c", "d"], n=12)
    axes = _image_axes(fig)
    assert len(axes) == 12
    red = [ax for ax in axes if to_hex(ax.title.get_color()) == plots.MISTAKE_COLOR]
    assert len(red) == 3
    assert all(ax.spines["left"].get_linewidth() == 3 for ax in red)
    assert axes[1].get_title() == "c (b)"  # "predicted (true)"
    assert "3 of 12 shown are wrong" in fig._suptitle.get_text()
    # Logits work as predictions; mistakes_first puts them in front.
    logits = np.eye(4)[y_pred]
    first = plots.prediction_grid(split.x, split.y, logits, n=12, mistakes_first=True)
    colors = [to_hex(ax.title.get_color()) for ax in _image_axes(first)]
    assert colors[:3] == [plots.MISTAKE_COLOR] * 3 and plots.MISTAKE_COLOR not in colors[3:]


def test_training_curves_from_history_and_csv(tmp_path):
    history = {"loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9],
               "accuracy": [0.3, 0.6, 0.8], "val_accuracy": [0.2, 0.5, 0.7],
               "learning_rate": [1e-3, 1e-3, 2e-4]}
    fig = plots.training_curves(history)
    loss_ax, acc_ax, lr_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["loss", "val loss"]
    assert list(acc_ax.lines[1].get_ydata()) == [0.2, 0.5, 0.7]
    assert list(lr_ax.lines[0].get_xdata()) == [1, 2, 3] and lr_ax.get_yscale() == "log"
    csv = tmp_path / "history.csv"
    csv.write_text("epoch,accuracy,loss\n0,0.5,1.5\n1,0.7,1.0\n")
    fig = plots.training_curves(csv)
    assert len(fig.axes) == 2
    assert list(fig.axes[1].lines[0].get_ydata()) == [0.5, 0.7]


def test_memory_budget_bars_flag_overflows():
    totals = {"layers": 40, "max_layers": 32, "weight_bytes": 221184,
              "weight_memory_bytes": 442368, "bias_bytes": 10, "bias_memory_bytes": 2048}
    fig = plots.memory_budget(totals)
    bars = fig.axes[0].patches
    assert len(bars) == 3
    assert [round(b.get_width(), 1) for b in bars] == [110.0, 50.0, 0.5]  # 125 % drawn at 110
    assert to_hex(bars[0].get_facecolor()) == plots.MISTAKE_COLOR
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0].startswith("layers\n40 / 32")
    assert "125.0 %" in [t.get_text() for t in fig.axes[0].texts]


def test_quant_comparison_bars():
    report = {"float_accuracy": 0.91, "fake_quant_accuracy": 0.9, "integer_accuracy": 0.875}
    fig = plots.quant_comparison(report)
    ax = fig.axes[0]
    assert [round(b.get_height(), 2) for b in ax.patches] == [91.0, 90.0, 87.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["float", "fake-quant (QAT)",
                                                           "integer (device)"]
    assert plots.figure_png(fig).startswith(b"\x89PNG")


def test_curves_keep_every_epoch_and_whole_epoch_ticks():
    fig = Figure()
    axes = fig.subplots(1, 3)
    history = {"epoch": [0, 1, 2], "loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.6],
               "accuracy": [0.3, 0.6, 0.8], "learning_rate": [1e-3, 5e-4, 0.0]}
    plots.draw_curves(axes, history, "learning_rate", qat_epoch=3)
    lr_ax = axes[2]
    assert lr_ax.get_yscale() == "linear"  # a cosine ends at 0: a log axis would drop it
    assert list(lr_ax.lines[0].get_ydata()) == [1e-3, 5e-4, 0.0]
    label = [t for t in axes[0].texts if "QAT" in t.get_text()][0]
    assert label.get_position()[1] < 1  # inside the axes (y in axes coordinates)
    one = Figure().subplots(1, 3)
    plots.draw_curves(one, {"epoch": [0], "loss": [1.0], "learning_rate": [1e-3]},
                      "learning_rate")
    assert one[0].get_xlim() == (0.5, 1.5) and one[2].get_yscale() == "log"
    assert all(float(t).is_integer() for t in one[0].get_xticks())
