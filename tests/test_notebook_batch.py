"""papermill batch runs on tiny notebooks: success, a failing cell, summaries, the CLI."""

import json
from pathlib import Path

import pytest

from ai8x_nb import notebooks, parameters
from ai8x_nb.cli import main
from ai8x_nb.models import seed_spec

CELLS = [
    "import os\nfrom ai8x_nb.notebooks import record_summary",
    "os.makedirs('export/tiny', exist_ok=True)\nvalue = 10 / x",
    "summary = record_summary({'dataset': 'tiny', 'float_accuracy': value / 100, "
    "'export_dir': 'export/tiny'})",
]


@pytest.fixture
def notebook(tmp_path, tiny_notebook):
    return tiny_notebook(tmp_path / "tiny.ipynb", CELLS, parameters="x = 1")


def test_run_notebook_success_reads_the_summary(notebook, tmp_path):
    result = notebooks.run_notebook(notebook, {"x": 4}, out_dir=tmp_path / "runs")
    assert result.ok and result.status == "ok" and result.error is None
    assert result.name == "tiny"
    out = result.output_notebook
    assert out.parent == tmp_path / "runs" and out.name.endswith("-tiny.ipynb")
    assert result.summary == {"dataset": "tiny", "float_accuracy": 0.025,
                              "export_dir": "export/tiny"}
    # cwd defaults to out_dir: the relative export dir is resolved against it.
    assert result.export_dir == str(tmp_path / "runs" / "export" / "tiny")
    assert Path(result.export_dir).is_dir()
    assert notebooks.read_summary(out) == result.summary


def test_run_notebook_failing_cell(notebook, tmp_path):
    result = notebooks.run_notebook(notebook, {"x": 0}, out_dir=tmp_path / "runs",
                                 cwd=tmp_path)
    assert result.status == "failed" and not result.ok
    # Cells: parameters (1), injected parameters (2), import (3), division (4).
    assert result.error_cell == 4
    assert result.error.startswith("ZeroDivisionError")
    assert result.output_notebook.is_file() and result.summary == {}
    table = notebooks.summary_table([result])
    assert "failed" in table and "cell In [4]: ZeroDivisionError" in table
    assert str(result.output_notebook) in table


def test_unknown_parameter_is_refused_before_running(notebook, tmp_path):
    with pytest.raises(parameters.ParameterError, match="no parameter.*epochz.*x"):
        notebooks.run_notebook(notebook, {"epochz": 3}, out_dir=tmp_path)
    with pytest.raises(notebooks.NotebookError, match="No notebook named 'nope'"):
        notebooks.find_notebook("nope")


def test_run_all_keeps_going_after_a_failure(tmp_path, tiny_notebook):
    ok = tiny_notebook(tmp_path / "good.ipynb", CELLS, parameters="x = 2")
    bad = tiny_notebook(tmp_path / "bad.ipynb", CELLS, parameters="x = 0")
    results = notebooks.run_all([bad, ok], parallel=2, out_dir=tmp_path / "runs")
    assert [(r.name, r.status) for r in results] == [("bad", "failed"), ("good", "ok")]
    assert results[1].summary["float_accuracy"] == 0.05
    outputs = {r.output_notebook for r in results}
    assert len(outputs) == 2 and all(p.is_file() for p in outputs)


def test_cli_run_prints_table_and_exit_code(notebook, tmp_path, capsys):
    code = main(["run", str(notebook), "-p", "x", "5", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "tiny: ok in " in out and ", export in " in out
    assert "2.00" in out  # float_accuracy 0.02 in percent
    code = main(["run", str(notebook), "-p", "x", "0", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 1 and "tiny: FAILED at cell In [4] in " in out and "ZeroDivisionError" in out


def test_parse_value_like_papermill():
    assert notebooks.parse_value("3") == 3 and notebooks.parse_value("1e-3") == 0.001
    assert notebooks.parse_value("True") is True and notebooks.parse_value("None") is None
    assert notebooks.parse_value("{start_epoch: 2, weight_bits: 4}") == {"start_epoch": 2,
                                                                       "weight_bits": 4}
    assert notebooks.parse_value("[1, 2]") == [1, 2]
    assert notebooks.parse_value("kws-espeak") == "kws-espeak"


def test_dataset_notebooks_are_found_and_declare_the_parameters():
    from ai8x_nb.parameters import NAMES

    expected = set(NAMES)  # the one parameter table (ai8x_nb/parameters.py)
    assert {"epochs", "schedule", "recipe", "qat_policy", "fast", "model_spec"} <= expected
    for name in notebooks.NOTEBOOKS:
        path = notebooks.find_notebook(name)
        assert path == notebooks.notebook_dir() / f"{name}.ipynb"
        assert set(notebooks.notebook_parameters(path)) == expected


def _params(**changes):
    params = {"epochs": 2, "batch_size": 32, "lr": 0.001, "schedule": "cosine",
              "optimizer": "adam",
              "qat_policy": {"start_epoch": 1, "weight_bits": 8}, "device": "max78002",
              "data_dir": None, "dataset_folder": None, "allow_partial": False,
              "export_dir": "export", "fast": True, "limit": None,
              "model_spec": seed_spec("rock"), "seed": 42}
    params.update({"recipe": "seed", "distribute": None, "model_name": None, "init_from": None})
    params.update(changes)
    return params


def test_check_parameters_derives_values():
    derived = parameters.check_parameters(_params())
    assert derived["limit"] == parameters.FAST_LIMIT and derived["device"] == "MAX78002"
    assert derived["model_spec"] == seed_spec("rock")
    assert parameters.check_parameters(_params(fast=False))["limit"] is None
    assert parameters.check_parameters(_params(limit=50))["limit"] == 50
    assert parameters.check_parameters(_params(model_name="ResSimpleNet"))["model_name"] == \
        "ressimplenet"


@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, r"epochs=0 is invalid: expected an int >= 1"),
    ({"lr": "fast"}, r"lr='fast' is invalid"),
    ({"schedule": "onecycle"}, r"schedule='onecycle' is invalid: expected one of 'seed', "),
    ({"fast": "yes"}, r"fast='yes' is invalid: expected True or False"),
    ({"recipe": "quick"}, r"recipe='quick' is invalid: expected one of 'seed', 'fast'"),
    ({"device": "MAX99"}, r"device='MAX99'.*Unknown device"),
    ({"qat_policy": 3}, r"qat_policy=3 is invalid"),
    ({"model_spec": [{"type": "conv3d"}]}, r"model_spec: Model spec row 0: unknown type"),
    ({"model_name": "resnet50"}, r"model_name='resnet50': Unknown seed model 'resnet50'"),
    ({"model_name": 3}, r"model_name=3 is invalid: expected None \(build model_spec\)"),
    ({"init_from": 7}, r"init_from=7 is invalid: expected None or a trained model file"),
])
def test_check_parameters_names_the_bad_one(changes, message):
    with pytest.raises(parameters.ParameterError, match=message):
        parameters.check_parameters(_params(**changes))


def test_record_summary_writes_the_env_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    monkeypatch.setenv(notebooks.SUMMARY_ENV, str(path))
    import numpy as np

    clean = notebooks.record_summary({"acc": np.float32(0.5), "n": np.int64(3)})
    assert clean == {"acc": 0.5, "n": 3}
    assert json.loads(path.read_text()) == clean


def test_static_widget_views_drop_stateless_widget_views(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("editor")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={notebooks.WIDGET_VIEW: {"model_id": "x", "version_major": 2,
                                                   "version_minor": 0},
                              "image/png": "iVBORw0KGgo=", "text/plain": "table"}),
        nbformat.v4.new_output("display_data", data={notebooks.WIDGET_VIEW: {"model_id": "y"},
                                                     "text/plain": "only a widget"})]
    nb.cells.append(cell)
    path = tmp_path / "out.ipynb"
    nbformat.write(nb, str(path))
    assert notebooks.static_widget_views(path) == 1
    outs = nbformat.read(str(path), as_version=4).cells[0].outputs
    assert set(outs[0].data) == {"image/png", "text/plain"}
    assert notebooks.WIDGET_VIEW in outs[1].data  # nothing static to show instead: kept
    assert notebooks.static_widget_views(path) == 0


def test_run_progress_off_a_terminal_is_one_line_per_cell(monkeypatch):
    import io

    import tqdm

    stream = io.StringIO()
    monkeypatch.setattr(notebooks.sys, "stderr", stream)
    options = notebooks._progress_bar("mnist", True)
    bar = tqdm.tqdm(total=3, **options)
    for _ in range(3):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == [
        "mnist: cell 0/3 done", "mnist: cell 1/3 done", "mnist: cell 2/3 done",
        "mnist: cell 3/3 done"], lines
    assert notebooks._progress_bar("mnist", False) is False


def test_summary_text_reads_as_a_table():
    text = notebooks.summary_text({"dataset": "mnist", "test_accuracy": 0.940673828125,
                                "tflite_model_bytes": 82240, "synthesis": None})
    assert text.splitlines() == ["dataset             mnist", "test_accuracy       94.07 %",
                                 "tflite_model_bytes  82,240 B", "synthesis           -"]


def test_static_widget_views_drop_a_widget_whose_static_form_follows(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("editor")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={notebooks.WIDGET_VIEW: {"model_id": "x"},
                                                     "text/plain": "<LayerEditor>"},
                               metadata={notebooks.STATIC_FORM_BELOW: True}),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                     "text/plain": "table"})]
    nb.cells.append(cell)
    path = tmp_path / "out.ipynb"
    nbformat.write(nb, str(path))
    assert notebooks.static_widget_views(path) == 1
    (kept,) = nbformat.read(str(path), as_version=4).cells[0].outputs
    assert set(kept.data) == {"image/png", "text/plain"}
