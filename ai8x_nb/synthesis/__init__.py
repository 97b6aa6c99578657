"""Run the vendor's synthesis tool (`ai8xize.py`) on an export and verify its known answer.

Example:

>>> from ai8x_nb.synthesis import synthesize  # doctest: +SKIP
>>> result = synthesize("runs/export/mnist")  # doctest: +SKIP
>>> result.ok, result.project_dir  # doctest: +SKIP
(True, PosixPath('runs/export/mnist/sdk/mnist'))
"""

from ai8x_nb.synthesis.result import SynthesisResult
from ai8x_nb.synthesis.run import KNOWN_ANSWER, synthesize
from ai8x_nb.synthesis.tool import (DIR_VARIABLE, PYTHON_VARIABLE, SynthesisTool, find_tool,
                                    tool_arguments)

__all__ = ["synthesize", "SynthesisResult", "SynthesisTool", "find_tool", "tool_arguments",
           "DIR_VARIABLE", "PYTHON_VARIABLE", "KNOWN_ANSWER"]
