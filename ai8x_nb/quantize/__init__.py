"""Quantization: QAT policies, switching a model to fake quantization, integer conversion.

Typical flow:

>>> from ai8x_nb.quantize import QATCallback, convert, load_policy  # doctest: +SKIP
>>> model.fit(train, epochs=20, callbacks=[QATCallback("default")])  # doctest: +SKIP
>>> qmodel = convert(model)  # integer weights, biases and output shifts  # doctest: +SKIP

`ai8x_nb.simulate.simulate(qmodel, x_int)` then runs the integer model as the device does.
"""

from ai8x_nb.quantize.convert import QuantizedLayer, QuantizedModel, convert
from ai8x_nb.quantize.policy import PACKAGED_POLICIES, QATPolicy, load_policy
from ai8x_nb.quantize.qat import (
    QATCallback,
    enable_qat,
    hardware_layers,
    is_qat,
    reset_optimizer_state,
    set_fake_quant,
)

__all__ = [
    "PACKAGED_POLICIES",
    "QATCallback",
    "QATPolicy",
    "QuantizedLayer",
    "QuantizedModel",
    "convert",
    "enable_qat",
    "hardware_layers",
    "is_qat",
    "load_policy",
    "reset_optimizer_state",
    "set_fake_quant",
]
