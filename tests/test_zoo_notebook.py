"""notebooks/zoo.ipynb headless: a vendor network imported, synthesized, fine-tuned, synthesized."""

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

from ai8x_nb import notebooks

TOOL = os.environ.get("AI8X_SYNTHESIS_DIR") and os.environ.get("AI8X_SYNTHESIS_PYTHON")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.synthesis,
    pytest.mark.skipif(not TOOL, reason="the synthesis tool is not configured: set "
                       "AI8X_SYNTHESIS_DIR and AI8X_SYNTHESIS_PYTHON (the vendor's networks "
                       "and the tool live there)"),
]


def test_zoo_notebook_is_generated_and_committed_clean():
    script = Path(__file__).resolve().parents[1] / "tools" / "make_zoo_notebook.py"
    spec = importlib.util.spec_from_file_location("make_zoo_notebook", script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    build_notebook = tool.build_notebook
    committed = nbformat.read(str(notebooks.notebook_dir() / "zoo.ipynb"), as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in build_notebook().cells]
    assert "parameters" in committed.cells[2].metadata.get("tags", [])
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in committed.cells if c.cell_type == "code")


def test_zoo_notebook_imports_fine_tunes_and_synthesizes(tmp_path, kws_data):
    result = notebooks.run_notebook(
        "zoo", {"network": "kws20_v3", "fine_tune_epochs": 1, "dataset_folder": "kws-espeak",
                "data_dir": str(kws_data)}, out_dir=tmp_path)
    assert result.ok, result.error
    summary = result.summary
    assert summary["check_ok"] is True and summary["synthesis"] == "PASS"
    assert 0.0 <= summary["fine_tuned_accuracy"] <= 1.0
    assert summary["export_dir"].endswith("zoo-kws20_v3-tuned")
    text = result.output_notebook.read_text()
    assert "integer test accuracy on kws20" in text and "PASS: ai8xize.py" in text
