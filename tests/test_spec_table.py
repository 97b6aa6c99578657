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
