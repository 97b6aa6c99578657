"""Find the vendor's synthesis tool (`ai8xize.py`); its command line is
`ai8x_nb.export.tool_command`.

The tool is not a dependency of the package: a user installs ADI's `ai8x-synthesis` with its
own Python environment and tells ai8x-nb where both are, by argument or by the environment
variables `AI8X_SYNTHESIS_DIR` (the folder holding `ai8xize.py`) and `AI8X_SYNTHESIS_PYTHON`
(that environment's interpreter). The tool runs only from its own folder (it reads `assets/`
relative to the working directory).
"""

import dataclasses
import os
import shutil
import sys
from pathlib import Path

from ai8x_nb.errors import SynthesisError
from ai8x_nb.export.tool_command import SCRIPT

__all__ = ["DIR_VARIABLE", "PYTHON_VARIABLE", "SynthesisTool", "find_tool", "SETUP_HINT"]

DIR_VARIABLE = "AI8X_SYNTHESIS_DIR"
PYTHON_VARIABLE = "AI8X_SYNTHESIS_PYTHON"

SETUP_HINT = (
    "Get the tool from https://github.com/analogdevicesinc/ai8x-synthesis (git clone; then "
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt in that folder), and "
    f"point ai8x-nb at it: export {DIR_VARIABLE}=/path/to/ai8x-synthesis "
    f"{PYTHON_VARIABLE}=/path/to/ai8x-synthesis/.venv/bin/python (or pass synthesis_dir= and "
    "python=, or --synthesis-dir and --python on the command line).")


@dataclasses.dataclass(frozen=True)
class SynthesisTool:
    """Where the synthesis tool is.

    Attributes:
        folder: the `ai8x-synthesis` folder (holds `ai8xize.py` and `assets/`).
        python: the interpreter of the tool's environment.
    """

    folder: Path
    python: str

    @property
    def script(self):
        return self.folder / SCRIPT


def find_tool(synthesis_dir=None, python=None, *, environ=None):
    """Locate the synthesis tool and its Python.

    Args:
        synthesis_dir: the `ai8x-synthesis` folder; default `$AI8X_SYNTHESIS_DIR`.
        python: the tool environment's interpreter; default `$AI8X_SYNTHESIS_PYTHON`, else
            `<synthesis_dir>/.venv/bin/python` when it exists, else this interpreter.
        environ: the environment to read (default `os.environ`).

    Returns:
        A `SynthesisTool`.

    Raises:
        SynthesisError: the folder is not given, does not exist or holds no `ai8xize.py`, or
            the interpreter does not exist. The message says how to set the tool up.
    """
    environ = os.environ if environ is None else environ
    folder = synthesis_dir or environ.get(DIR_VARIABLE)
    if not folder:
        raise SynthesisError(f"The synthesis tool ai8xize.py is not configured: no synthesis "
                             f"folder given and {DIR_VARIABLE} is not set. {SETUP_HINT}")
    folder = Path(folder).expanduser().resolve()
    if not (folder / SCRIPT).is_file():
        raise SynthesisError(f"No {SCRIPT} in the synthesis folder {str(folder)!r} (from "
                             f"{'the argument' if synthesis_dir else DIR_VARIABLE}). {SETUP_HINT}")
    python = python or environ.get(PYTHON_VARIABLE)
    if not python:
        venv = folder / ".venv" / "bin" / "python"
        python = str(venv) if venv.is_file() else sys.executable
    resolved = shutil.which(str(python)) or (str(python) if Path(python).is_file() else None)
    if resolved is None:
        raise SynthesisError(f"The synthesis tool's Python {python!r} (from "
                             f"{'the argument' if python else PYTHON_VARIABLE}) does not exist. "
                             f"{SETUP_HINT}")
    return SynthesisTool(folder=folder, python=str(Path(resolved).absolute()))
