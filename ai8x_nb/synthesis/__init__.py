"""Run the vendor's synthesis tool (`ai8xize.py`) on an export and verify its known answer.

Example:

>>> from ai8x_nb.synthesis import synthesize  # doctest: +SKIP
>>> result = synthesize("runs/export/mnist")  # doctest: +SKIP
>>> result.ok, result.project_dir  # doctest: +SKIP
(True, PosixPath('runs/export/mnist/sdk/mnist'))
>>> firmware = build_firmware(result.project_dir)  # doctest: +SKIP
>>> firmware.ok, firmware.flash_bytes  # doctest: +SKIP
(True, 117300)
"""

from ai8x_nb.synthesis.firmware import build_firmware, firmware_skip_reason, firmware_tools
from ai8x_nb.synthesis.firmware_result import FirmwareResult
from ai8x_nb.synthesis.msdk import MSDK_VARIABLE
from ai8x_nb.synthesis.result import SynthesisResult
from ai8x_nb.synthesis.run import KNOWN_ANSWER, synthesize
from ai8x_nb.export.tool_command import tool_arguments
from ai8x_nb.synthesis.tool import DIR_VARIABLE, PYTHON_VARIABLE, SynthesisTool, find_tool

__all__ = ["synthesize", "SynthesisResult", "SynthesisTool", "find_tool", "tool_arguments",
           "DIR_VARIABLE", "PYTHON_VARIABLE", "KNOWN_ANSWER", "build_firmware", "FirmwareResult",
           "firmware_tools", "firmware_skip_reason", "MSDK_VARIABLE"]
