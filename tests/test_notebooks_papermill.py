"""Every dataset notebook runs end to end headless (papermill) with tiny parameters.

One `run_all` call runs the six notebooks two at a time; cifar100 and rock get fixture data
dirs in their real on-disk formats. Each run must finish, report its accuracies through
`record_summary`, and leave an export folder with a manifest and the synthesis package.
"""

import json
import os
from pathlib import Path

import nbformat
import pytest

from ai8x_nb import notebooks

pytestmark = pytest.mark.slow

TINY = {"epochs": 1, "fast": True, "limit": 128, "qat_policy": {"start_epoch": 0,
                                                                "weight_bits": 8}}


FINE_TUNED = "fashionmnist"
"""The notebook run with `init_from`: a trained model with 4 outputs, fine-tuned to 10 classes."""


def _trained_start(root):
    from ai8x_nb.models import get_model
    from ai8x_nb.quantize import enable_qat
    from ai8x_nb.zoo.finetune import replace_head

    model = replace_head(get_model(FINE_TUNED), 4)
    enable_qat(model)
    model.save(root / "start.keras")
    return str(root / "start.keras")


@pytest.fixture(scope="module")
def results(tmp_path_factory, notebook_parameters):
    root = tmp_path_factory.mktemp("nbruns")
    per_notebook = {name: notebook_parameters(name, root) for name in notebooks.NOTEBOOKS}
    per_notebook[FINE_TUNED]["init_from"] = _trained_start(root)
    return {r.name: r for r in notebooks.run_all(notebooks.NOTEBOOKS, TINY, parallel=2,
                                              per_notebook=per_notebook,
                                              out_dir=root / "runs")}


def test_notebooks_share_one_skeleton():
    headings = []
    for name in notebooks.NOTEBOOKS:
        nb = nbformat.read(str(notebooks.notebook_dir() / f"{name}.ipynb"), as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.metadata.get("tags") == ["parameters"], name
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code"), f"{name}: outputs not cleared"
        assert nb.metadata["kernelspec"]["name"] == "python3"
        headings.append([line for c in nb.cells if c.cell_type == "markdown"
                         for line in c.source.splitlines() if line.startswith("## ")])
    assert all(h == headings[0] for h in headings)
    assert headings[0] == ["## Parameters", "## Setup", "## Data", "## Model", "## Train",
                           "## Evaluate", "## Quantize", "## Export", "## Synthesize",
                           "## Summary"]


@pytest.mark.parametrize("name", notebooks.NOTEBOOKS)
def test_notebook_runs_and_exports(results, name):
    result = results[name]
    assert result.ok, f"{name} failed at In [{result.error_cell}]: {result.error} " \
                      f"(see {result.output_notebook})"
    summary = result.summary
    assert summary["dataset"] == name
    assert summary["samples_per_split"] == TINY["limit"]
    for key in ("float_accuracy", "fake_quant_accuracy", "integer_accuracy",
                "tflite_int8_accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    # Both targets of the one trained model, side by side in the summary.
    assert summary["tflite_arena_bytes"] > 0 and summary["tflite_model_bytes"] > 0
    # The accelerator's latency as the synthesis tool estimates it (check_model).
    assert summary["latency_cycles"] > 0 and summary["latency_us"] > 0
    if os.environ.get("MAXIM_PATH") and summary["synthesis"] == "PASS":
        assert 0 < summary["firmware_flash_bytes"] <= 512 * 1024
        assert 0 < summary["firmware_ram_bytes"] <= 128 * 1024
    export = Path(result.export_dir)
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["dataset"] == name and manifest["device"] == "MAX78000"
    assert manifest["run_dir"] == summary["run_dir"]  # which run made this export
    for role in ("synthesis_weights", "synthesis_yaml", "sample_input"):
        assert (export / manifest["artifacts"][role]).is_file(), role
    assert "ai8xize.py" in manifest["ai8xize_command"]
    # With the synthesis tool configured (CI), the Synthesize cell ran it: PASS, recorded.
    if os.environ.get("AI8X_SYNTHESIS_DIR") and os.environ.get("AI8X_SYNTHESIS_PYTHON"):
        assert summary["synthesis"] == "PASS"
        assert manifest["synthesis"]["verdict"] == "PASS"
        assert manifest["synthesis"]["mismatches"] == 0
    else:
        assert summary["synthesis"] == "not configured"
    # The executed notebook kept the static figures (editor fallback, live plot, plots).
    nb = nbformat.read(str(result.output_notebook), as_version=4)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    text = result.output_notebook.read_text()
    assert "ESP32-S3 (int8 TFLite): accuracy" in text and "MAX78000: accuracy" in text
    if name == FINE_TUNED:  # started from the trained model: no editor, a new 10-class head
        assert "fine-tuning" in text and "(its trained layers; no layer editor)" in text
        config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
        assert config["init_from"].endswith("start.keras")  # part of the run's plan
        assert images >= 6, f"{name}: only {images} figures in {result.output_notebook}"
        return
    # The editor's picture holds the memory bars (the Model cell draws them only without one).
    assert images >= 6, f"{name}: only {images} figures in {result.output_notebook}"
    # The layer editor's cell shows its static figure: no stateless widget view hides it.
    editor = next(c for c in nb.cells if c.cell_type == "code" and "LayerEditor(" in c.source)
    kinds = [set(o.get("data", {})) for o in editor.get("outputs", [])]
    assert any("image/png" in k for k in kinds), f"{name}: editor cell has no figure"
    assert not any(notebooks.WIDGET_VIEW in k for k in kinds)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "limit = 128" in injected[0].source


def test_cifar100_notebook_trains_the_residual_model_by_name(tmp_path, notebook_parameters):
    """`model_name="ressimplenet"`: the notebook skips the editor, builds the registry's
    residual network, trains, quantizes, exports and (with the tool configured) synthesizes it."""
    params = {**TINY, "limit": 64, "model_name": "ressimplenet",
              **notebook_parameters("cifar100", tmp_path)}
    result = notebooks.run_notebook("cifar100", params, out_dir=tmp_path / "runs")
    assert result.ok, f"failed at In [{result.error_cell}]: {result.error} " \
                      f"(see {result.output_notebook})"
    assert result.summary["model"] == "ressimplenet"
    manifest = json.loads((Path(result.export_dir) / "manifest.json").read_text())
    network = (Path(result.export_dir) / manifest["artifacts"]["synthesis_yaml"]).read_text()
    assert "eltwise: add" in network.lower() or "operation: add" in network.lower()
    if os.environ.get("AI8X_SYNTHESIS_DIR") and os.environ.get("AI8X_SYNTHESIS_PYTHON"):
        assert result.summary["synthesis"] == "PASS"


def test_model_name_for_another_dataset_is_refused_by_name():
    from ai8x_nb.models import UnknownModelError, get_model_for

    with pytest.raises(UnknownModelError, match=r"'ressimplenet' is made for the cifar100 "
                                                r"dataset, not mnist.*model_name"):
        get_model_for("ressimplenet", "mnist")
