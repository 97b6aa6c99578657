"""Whole-model check against a device: layer count, processors, weight/bias/data memory.

Example:

>>> from ai8x_nb.check import check_model, allocate_processors
>>> report = check_model(model, device="MAX78000")
>>> report.ok, report.totals["weight_bytes"]
"""

from ai8x_nb.check.model import check_model
from ai8x_nb.placement.processors import allocate_processors, channels_per_processor, uses_chw
from ai8x_nb.check.report import CheckReport, LayerRow

__all__ = ["check_model", "CheckReport", "LayerRow", "allocate_processors", "uses_chw",
           "channels_per_processor"]
