"""Find the vendor's synthesis tool (`ai8xize.py`) and build its command line.

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

import numpy as np

from ai8x_nb.errors import SynthesisError

__all__ = ["DIR_VARIABLE", "PYTHON_VARIABLE", "SynthesisTool", "find_tool", "tool_arguments",
           "SETUP_HINT", "streams", "wants_softmax"]

DIR_VARIABLE = "AI8X_SYNTHESIS_DIR"
PYTHON_VARIABLE = "AI8X_SYNTHESIS_PYTHON"
SCRIPT = "ai8xize.py"

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


def tool_arguments(*, prefix, device, checkpoint, config, sample, test_dir, verbose=True,
                   softmax=True, fifo=False, deduplicate=True):
    """The arguments of `ai8xize.py` for one export (absolute paths).

    Args:
        prefix: the C project's name (`--prefix`); the project lands in `test_dir/prefix`.
        device: "MAX78000" or "MAX78002".
        checkpoint, config, sample: the weights (`.pth.tar`), network YAML and sample input.
        test_dir: where the tool writes (`--test-dir`).
        verbose: log every layer's output (the known answer is read from that log).
        softmax: have `main.c` run a softmax over the output (`--softmax`). Pass False for an
            8-bit output: the tool's softmax then calls CMSIS-NN's `arm_softmax_q7_q15`
            without declaring `q7_t`, and that `main.c` does not compile.
        fifo: load the input through the FIFOs (`--fifo`), as streaming layers need.
        deduplicate: let the tool share identical kernels and biases between layers (its
            default). False adds `--no-deduplicate-weights`, which depthwise networks need
            (see `depthwise`).

    Returns:
        A list of strings, starting with `ai8xize.py`.
    """
    args = [SCRIPT, "--no-version-check", "--overwrite", "--test-dir", str(test_dir),
            "--prefix", str(prefix), "--checkpoint-file", str(checkpoint),
            "--config-file", str(config), "--sample-input", str(sample), "--device", str(device),
            "--compact-data", "--mexpress", "--timer", "0", "--display-checkpoint",
            "--no-progress"]
    if softmax:
        args.insert(args.index("--compact-data"), "--softmax")
    if fifo:
        args.insert(args.index("--compact-data"), "--fifo")
    if not deduplicate:
        args.insert(args.index("--compact-data"), "--no-deduplicate-weights")
    if verbose:
        args.append("--verbose")
    return args


def streams(layers):
    """True when a network YAML's layers (a list of dicts) stream: the tool needs `--fifo`."""
    return any(bool(layer.get("streaming")) for layer in layers or ())


def depthwise(layers):
    """True when a network YAML's layers (a list of dicts) have a depthwise convolution.

    The tool (ab4f4c0) then needs `--no-deduplicate-weights`: it keeps a depthwise layer's
    bias in every quadrant (its bias group is the string 'all'), and when another layer's
    bias has the same integer values it shares that entry and stops with a TypeError
    (`1 << bias_group[ll]`); measured on generated depthwise models with many layers.
    """
    return any(int(layer.get("groups", layer.get("conv_groups", 1)) or 1) > 1
               for layer in layers or ())


def wants_softmax(wide, output_shape):
    """True when the C project should run the tool's softmax (`--softmax`): the last layer is
    wide (32-bit) and its output is one score per class (`output_shape` channel-first, e.g.
    (10, 1, 1)). Otherwise the tool's `main.c` does not compile (8-bit output) or its softmax
    buffers can exceed the Arm core's SRAM (a feature map)."""
    return bool(wide) and int(np.prod(tuple(output_shape)[1:])) == 1
