"""The layer editor's spec table without widgets: editing, validation, shapes, memory figures."""

import subprocess
import sys

import pytest

from ai8x_nb.check import check_model
from ai8x_nb.models import seed_spec
from ai8x_nb.spec import spec_to_model
from ai8x_nb.spec_table import SpecTable
from ai8x_nb.widgets import editor_view


@pytest.fixture
def table():
    return SpecTable(seed_spec("mnist"), (28, 28, 1), 10)


def test_shapes_params_and_memory_figures(table):
    assert table.ok and len(table) == 6 and table.parameters == 71_158
    assert table.results[0] == (True, "", (28, 28, 60), 540)
    expected = check_model(spec_to_model(seed_spec("mnist"), (28, 28, 1), 10), "MAX78000")
    assert table.report.totals == expected.totals
    budget = {label: (used, limit) for label, used, limit, _ in table.budget()}
    assert budget["layers"] == (5, 32)
    assert budget["weight memory"] == (expected.totals["weight_bytes"], 442_368)


def test_columns_edit_the_spec_and_errors_name_the_row(table):
    table.set_column(1, "kernel_size", 5)
    ok, message, shape, _ = table.results[1]
    assert not ok and "kernel_size=5" in message and shape is None
    assert table.bad_rows == [1] and table.report is None and not table.budget()
    table.set_column(1, "kernel_size", 3)
    table.set_column(0, "pooling", "max")
    assert table.row(0)["pool_size"] == 2 and table.column_enabled(0, "pool_size")
    assert table.results[0][2] == (14, 14, 60)
    table.set_column(0, "pooling", "None")
    assert not table.column_enabled(0, "pool_size")
    table.set_column(5, "size", 12)
    assert table.row(5)["units"] == 12 and "outputs shape (12,)" in table.results[5][1]
    table.set_column(5, "size", 10)
    assert table.spec == seed_spec("mnist") and table.ok


def test_rows_insert_move_delete_and_other_column(table):
    table.insert_row(4, "dropout")
    table.set_column(4, "other", "0.5")
    assert table.row(4) == {"type": "dropout", "rate": 0.5}
    assert table.column_values(4)["other"] == "0.5" and not table.column_enabled(4, "size")
    assert table.move_row(4, 1) and table.row(5)["type"] == "dropout"
    assert not table.move_row(0, -1)
    table.delete_row(5)
    assert table.spec == seed_spec("mnist")


def test_device_changes_the_limits(table):
    table.set_column(2, "size", 900)
    assert table.results[2][0] and table.report is not None and not table.report.ok
    table.set_device("max78002")
    assert table.device == "MAX78002" and table.report.ok


def test_text_rendering_without_widgets(table):
    text = editor_view.text_table(table)
    assert text.splitlines()[0].endswith("device MAX78000: OK")
    assert "maxpool 2/2 + 60 k3 p2 relu no-bias" in text
    assert "ai8x-row-error" in editor_view.status_html((False, "a < b", None, 0))
    assert "a &lt; b" in editor_view.status_html((False, "a < b", None, 0))


def test_the_table_does_not_import_ipywidgets():
    code = ("import sys\n"
            "from ai8x_nb.models import seed_spec\n"
            "from ai8x_nb.spec_table import SpecTable\n"
            "SpecTable(seed_spec('rock'), (64, 64, 3), 3)\n"
            "print('ipywidgets' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_max78002_columns_only_where_the_device_has_them():
    """`dilation` (conv1d rows, both devices), `groups` and `pool_dilation` (MAX78002): the
    editor offers each only where the device and the row allow it; they round-trip the spec."""
    spec = [{"type": "conv2d", "filters": 8, "kernel_size": 1, "padding": 0},
            {"type": "conv2d", "filters": 8, "pooling": "max", "pool_size": 2},
            {"type": "flatten"}, {"type": "dense", "units": 10, "wide": True}]
    table = SpecTable(spec, (12, 12, 3), 10, device="MAX78000")
    assert not table.column_enabled(1, "groups") and not table.column_enabled(1, "pool_dilation")
    assert not table.column_enabled(1, "dilation")
    table.set_device("MAX78002")
    assert table.column_enabled(1, "groups") and table.column_enabled(1, "pool_dilation")
    assert not table.column_enabled(0, "pool_dilation")  # no pooling in that row
    table.set_column(1, "groups", "8")
    table.set_column(1, "pool_dilation", "3")
    assert table.ok, table.results
    assert table.row(1)["groups"] == 8 and table.row(1)["pool_dilation"] == 3
    model = table.to_model()
    assert model.layers[2].groups == 8 and model.layers[2].pool_dilation == (3, 3)
    from ai8x_nb.spec import model_to_spec
    assert model_to_spec(model)[1] == table.row(1)
    table.set_column(1, "groups", "4")
    assert not table.ok and "groups=4" in table.results[1][1]
    table.set_device("MAX78000")
    table.set_column(1, "groups", "1")
    assert not table.ok and "pool_dilation=3 is not supported by MAX78000" in table.results[1][1]

    one_d = SpecTable([{"type": "conv1d", "filters": 8, "kernel_size": 3, "dilation": 4},
                       {"type": "flatten"}, {"type": "dense", "units": 4, "wide": True}],
                      (40, 2), 4)
    assert one_d.ok and one_d.column_enabled(0, "dilation")
    assert one_d.column_values(0)["dilation"] == 4
    one_d.set_column(0, "dilation", "5")
    assert not one_d.ok and "Use dilation <= 4 with kernel_size=3" in one_d.results[0][1]
