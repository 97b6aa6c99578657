"""The package surface: lazy public API and a CLI that starts without TensorFlow."""

import subprocess
import sys

import ai8x_nb


def test_public_api_resolves():
    for name in ai8x_nb.__all__:
        assert getattr(ai8x_nb, name) is not None, name
    report = ai8x_nb.check_model(ai8x_nb.get_model("mnist"))
    assert report.ok and report.totals["parameters"] == 71158


def test_cli_parser_does_not_import_tensorflow():
    code = ("import sys; from ai8x_nb.cli import build_parser; build_parser(); "
            "import ai8x_nb; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
