"""Layer editor driven through its widgets (no browser), and the live training plot."""

import json

import keras
import numpy as np
import pytest

from ai8x_nb import layers, notebooks
from ai8x_nb.check import check_model
from ai8x_nb.models import seed_spec
from ai8x_nb.spec import spec_to_model
from ai8x_nb.widgets import CSS_CLASS, EditorRowError, LayerEditor, LivePlot
from ai8x_nb.widgets import live_plot


@pytest.fixture
def editor():
    return LayerEditor(seed_spec("mnist"), (28, 28, 1), 10)


def _filters(editor):
    return [row.get("filters", row.get("units")) for row in editor.spec]


def test_initial_state_shapes_params_and_budget(editor):
    assert CSS_CLASS in editor.widget._dom_classes
    assert editor.ok and len(editor.rows) == 6
    assert "28x28x60" in editor.rows[0]["status"].value
    assert "540 params" in editor.rows[0]["status"].value  # 3*3*1*60, no bias
    assert "1,930 params" in editor.rows[5]["status"].value  # 192*10 + 10
    expected = check_model(spec_to_model(seed_spec("mnist"), (28, 28, 1), 10), "MAX78000")
    assert editor.report.totals == expected.totals
    assert editor.report.totals["parameters"] == 71_158
    html = editor.budget.value
    assert "5 / 32" in html  # five hardware layers of 32
    assert f"{expected.totals['weight_bytes']:,} / 442,368 B" in html
    assert "71,158 parameters" in editor.summary.value


def test_bad_kernel_and_too_many_channels_show_inline(editor):
    editor.rows[1]["kernel_size"].value = "5"
    status = editor.rows[1]["status"].value
    assert "ai8x-row-error" in status and "kernel_size=5" in status and "Use 3" in status
    assert not editor.ok and editor.report is None
    assert "fix the rows in red" in editor.budget.value
    editor.rows[2]["size"].value = "2000"
    assert "filters=2000" in editor.rows[2]["status"].value
    assert "1..1024 channels" in editor.rows[2]["status"].value
    assert "errors in row(s) 1, 2" in editor.summary.value
    editor.rows[1]["kernel_size"].value = "3"
    editor.rows[2]["size"].value = "56"
    assert editor.ok and editor.spec == seed_spec("mnist")


def test_device_dropdown_changes_the_limits(editor):
    # 900 filters: a valid layer, but the model is too big for the MAX78000.
    editor.rows[2]["size"].value = "900"
    assert "needs 900 weight words" in editor.rows[2]["status"].value  # the device error's row
    assert editor.report is not None and not editor.report.ok
    editor.device_dropdown.value = "MAX78002"
    assert "ai8x-row-error" not in editor.rows[2]["status"].value
    assert editor.device == "MAX78002"
    assert editor.report.ok, editor.report.errors
    assert editor.report.totals["max_layers"] == 128
    assert "5 / 128" in editor.budget.value


def test_optional_columns_show_only_where_a_row_can_use_them(editor):
    from ai8x_nb.widgets.layer_editor import GRID, GRID_MIN_WIDTH

    def shown(box):
        return [key for (key, _, _), cell in zip(GRID, box.children)
                if cell.layout.display != "none"]

    header = editor._header
    assert not {"dilation", "groups", "pool_dilation"} & set(shown(header))  # MAX78000, 2D
    assert header.layout.min_width == GRID_MIN_WIDTH
    editor.device_dropdown.value = "MAX78002"  # depthwise and dilated pooling: conv2d rows
    assert {"groups", "pool_dilation"} <= set(shown(header)) and "dilation" not in shown(header)
    for box in [header] + [row["box"] for row in editor.rows]:
        assert shown(box) == shown(header)
        assert len(box.layout.grid_template_columns.split(" ")) == len(shown(header)) + 1
    wider = int(header.layout.min_width[:-2])
    assert wider > int(GRID_MIN_WIDTH[:-2])
    editor.device_dropdown.value = "MAX78000"
    editor.rows[0]["type"].value = "conv1d"  # Conv1D dilation, on either device
    assert "dilation" in shown(editor._header)
    assert editor.rows[0]["dilation"].disabled is False
    assert editor.rows[1]["dilation"].disabled is True  # a conv2d row: no dilation


def test_add_insert_delete_move_rows(editor):
    editor.add_type.value = "dropout"
    editor.add_button.click()  # a dropout goes before the classifier (the last row)
    assert editor.spec[5] == {"type": "dropout", "rate": 0.2} and editor.ok
    editor.rows[5]["delete"].click()
    assert _filters(editor) == [60, 60, 56, 12, None, 10]
    editor.rows[1]["insert"].click()  # a copy of the row's type, with defaults, above it
    assert len(editor.rows) == 7 and editor.spec[1]["type"] == "conv2d"
    assert editor.spec[1]["filters"] == 16
    editor.rows[1]["down"].click()
    assert _filters(editor) == [60, 60, 16, 56, 12, None, 10]
    editor.rows[2]["up"].click()
    editor.rows[0]["up"].click()  # already first: nothing moves
    assert _filters(editor) == [60, 16, 60, 56, 12, None, 10]
    editor.rows[1]["delete"].click()
    assert editor.spec == seed_spec("mnist")
    assert [r["index"] for r in editor.rows] == list(range(6))


def test_add_layer_lands_before_the_head(editor):
    editor.add_type.value = "conv2d"
    editor.add_button.click()
    assert [r["type"] for r in editor.spec][3:] == ["conv2d", "conv2d", "flatten", "dense"]
    assert editor.spec[4]["filters"] == 16 and "ai8x-row-error" not in editor.rows[4][
        "status"].value
    assert editor.add_layer("maxpool") == 5 and editor.spec[5]["type"] == "maxpool"


def test_a_row_in_error_is_one_line_naming_the_row(editor):
    editor.rows[1]["size"].value = "3.5"  # not 35, not the old value
    assert editor.spec[1]["filters"] == "3.5"
    assert "filters='3.5' is not a whole number" in editor.rows[1]["status"].value
    # Rows below an error have no known shape; the total counts the rows above it.
    assert "once row 1 is fixed" in editor.rows[2]["status"].value
    assert "540 parameters above row 1" in editor.summary.value
    with pytest.raises(EditorRowError) as info:
        editor.raise_if_invalid()
    (line,) = info.value._render_traceback_()  # IPython shows this one line, no traceback
    assert "Layer editor row 1 (conv2d): filters='3.5'" in line
    editor.rows[1]["size"].value = ""
    assert "filters='' is not a whole number" in editor.rows[1]["status"].value
    editor.rows[1]["size"].value = "0"
    assert "Use at least 1 channel" in editor.rows[1]["status"].value
    editor.rows[1]["size"].value = "60"
    editor.raise_if_invalid()  # nothing wrong: no error


def test_device_errors_are_shown_in_their_row(editor):
    editor.rows[2]["size"].value = "700"  # valid alone, but its kernels do not fit
    assert "ai8x-row-error" in editor.rows[2]["status"].value
    assert "conv3" in editor.rows[2]["status"].value
    assert "row 2: Layer 'conv3'" in editor.summary.value
    assert "bars count the layers that were placed" in editor.budget.value
    with pytest.raises(EditorRowError, match="row 2 does not fit MAX78000"):
        editor.raise_if_invalid()


def test_switching_type_and_back_keeps_shared_fields(editor):
    editor.rows[1]["kernel_size"].value = "1"
    editor.rows[1]["type"].value = "conv1d"
    editor.rows[1]["type"].value = "conv2d"
    assert editor.spec[1]["kernel_size"] == 1 and editor.spec[1]["pooling"] == "max"


def test_live_display_keeps_a_static_image_up_to_date(editor, monkeypatch):
    import IPython.display

    shown = []

    class Handle:
        def update(self, bundle, raw):
            shown.append(("update", bundle))

    def fake_display(bundle, raw=False, metadata=None, display_id=None):
        shown.append(("display", bundle, metadata))
        return Handle() if display_id else None

    monkeypatch.setattr(IPython.display, "display", fake_display)
    editor._ipython_display_()
    widget, snapshot = shown[0], shown[1]
    assert "application/vnd.jupyter.widget-view+json" in widget[1]
    assert widget[2] == {notebooks.STATIC_FORM_BELOW: True}
    assert "ai8x-editor-snapshot" in snapshot[1]["text/html"]
    editor.rows[0]["size"].value = "20"
    assert shown[-1][0] == "update" and "20 k3" in shown[-1][1]["text/plain"]


def test_changing_type_and_pooling_fields(editor):
    editor.rows[0]["pooling"].value = "max"
    assert editor.spec[0]["pool_size"] == 2 and editor.spec[0]["pool_strides"] == 2
    assert not editor.rows[0]["pool_size"].disabled
    assert "14x14x60" in editor.rows[0]["status"].value
    editor.rows[0]["pool_strides"].value = "1"
    assert "27x27x60" in editor.rows[0]["status"].value
    editor.rows[0]["pooling"].value = "None"
    assert editor.spec[0]["pool_size"] is None and editor.rows[0]["pool_size"].disabled
    editor.rows[5]["type"].value = "conv2d"
    assert editor.spec[5]["type"] == "conv2d" and editor.spec[5]["filters"] == 10
    assert "ai8x-row-error" in editor.rows[5]["status"].value  # conv after flatten
    editor.rows[5]["type"].value = "dense"
    assert editor.spec[5]["units"] == 10


def test_text_exports_rebuild_the_same_model(editor):
    editor.rows[3]["size"].value = "16"
    namespace = {}
    exec(editor.to_python(), {}, namespace)  # noqa: S102 - generated literal
    assert namespace["model_spec"] == editor.spec == json.loads(editor.to_json())
    model = editor.to_model()
    assert model.count_params() == 71_158 - 9 * 56 * 12 + 9 * 56 * 16 - 1920 + 2560
    assert "model_spec = [" in editor.code.value


def test_static_fallback_in_the_mimebundle(editor):
    bundle = editor._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"][:8] == "iVBORw0K"  # base64 of the PNG signature
    assert "71,158 parameters" in bundle["text/plain"]
    fig = editor.figure()
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 5  # table + five budget bars
    editor.rows[1]["kernel_size"].value = "5"
    fig = editor.figure()
    assert len(fig.axes) == 1  # no budget while a row is wrong
    assert "errors in row(s) 1" in editor._repr_mimebundle_()["text/plain"]


# ------------------------------------------------------------------ LivePlot
def _tiny_fit(callback, epochs=1):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 4, 1))
    x = layers.Conv2D(4, 3, padding=1, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, layers.Dense(3, wide=True)(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x_data = np.random.default_rng(0).uniform(-1, 0.99, (32, 4, 4, 1)).astype("float32")
    y_data = np.arange(32) % 3
    model.fit(x_data, y_data, epochs=epochs, batch_size=16, validation_split=0.25,
              callbacks=[callback], verbose=0)
    return model


def test_live_plot_outside_ipython_keeps_the_figure():
    live = LivePlot(title="tiny")
    _tiny_fit(live)
    assert live._handle is None
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"):
        assert len(live.history[key]) == 1, key
    assert live.history["learning_rate"] == [pytest.approx(1e-3)]
    loss_ax, acc_ax, lr_ax = live.figure.axes
    assert [line.get_label() for line in loss_ax.lines] == ["loss", "val loss"]
    assert len(acc_ax.lines) == 2 and len(lr_ax.lines) == 1
    assert live._repr_mimebundle_()["image/png"].startswith("iVBORw0K")


def test_live_plot_updates_one_display_in_place(monkeypatch):
    calls = []

    class Handle:
        def update(self, obj, **kwargs):
            calls.append(("update", obj, kwargs))

    def fake_display(obj, **kwargs):
        calls.append(("display", obj, kwargs))
        return Handle()

    import IPython.display

    monkeypatch.setattr(live_plot, "_ipython_shell", lambda: object())
    monkeypatch.setattr(IPython.display, "display", fake_display)
    live = LivePlot()
    _tiny_fit(live, epochs=2)
    kinds = [c[0] for c in calls]
    assert kinds == ["display", "update", "update", "update"]  # begin, 2 epochs, end
    assert calls[0][2] == {"raw": True, "display_id": True}
    assert all("image/png" in c[1] for c in calls)
    assert live.history["epoch"] == [0, 1]


def test_save_spec_reaches_a_batch_run(editor, tmp_path):
    """Edits saved with the editor's button come back as the notebook's model_spec."""
    from ai8x_nb import parameters, spec as specs

    editor.set_field(0, "filters", 24)
    path = tmp_path / "mnist.spec.json"
    saving = LayerEditor(editor.spec, (28, 28, 1), 10, save_path=str(path))
    assert not saving.save_button.disabled and editor.save_button.disabled
    saving.save_button.click()
    assert "saved to" in saving.save_status.value and path.is_file()
    assert specs.load_spec(path) == editor.spec and editor.spec[0]["filters"] == 24
    params = parameters.defaults(epochs=1, batch_size=32, lr=0.001, qat_policy=None,
                                 model_spec=str(path), seed=1)  # the contract's other defaults
    assert parameters.check_parameters(params)["model_spec"] == editor.spec
    params["model_spec"] = str(tmp_path / "missing.spec.json")
    with pytest.raises(parameters.ParameterError, match="Cannot read the model spec file"):
        parameters.check_parameters(params)
    (tmp_path / "bad.spec.json").write_text("[{")
    with pytest.raises(specs.SpecError, match="is not valid JSON"):
        specs.load_spec(tmp_path / "bad.spec.json")
    with pytest.raises(specs.SpecError, match="needs a path"):
        editor.save()


def test_latency_column_updates_with_each_edit(editor):
    """Each row shows its cycles (check_model, as the synthesis tool estimates them) with a
    bar of its share; the budget area shows the model's latency; an edit updates both."""
    cycles = [r.cycles for r in editor.report.rows]
    assert f">{cycles[0]:,}</span>" in editor.rows[0]["cycles"].value
    assert editor.rows[4]["cycles"].value == ""  # the Flatten row: no layer of its own
    total = editor.report.totals["latency_cycles"]
    assert total == 1 + sum(cycles)
    assert f"latency {total:,} cycles" in editor.budget.value
    assert f"latency {total:,} cycles" in editor._repr_mimebundle_()["text/plain"]
    editor.rows[0]["size"].value = "30"  # fewer output channels: the first layer gets faster
    assert editor.report.rows[0].cycles < cycles[0]
    assert f">{editor.report.rows[0].cycles:,}</span>" in editor.rows[0]["cycles"].value
    assert f"latency {editor.report.totals['latency_cycles']:,} cycles" in editor.budget.value
    editor.rows[1]["kernel_size"].value = "5"  # a bad row: no check, no cycles
    assert editor.rows[0]["cycles"].value == "" and "latency" not in editor.budget.value
