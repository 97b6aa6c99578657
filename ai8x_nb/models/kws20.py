"""The seed keyword-spotting model (KWS20): Conv1D front end, Conv2D back end (126,490 params).

Input (128, 128): 128 time steps (rows) of 128 consecutive audio samples (channels).
4 x Conv1D k1 (100, 100, 50, 16) -> Reshape (8, 16, 16) -> 5 x Conv2D 3x3 p1
(32, 64, 64, 30, 7) -> Flatten -> Dense 21 wide. No bias anywhere; L2 1e-4 on every kernel.

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
126490
"""

from ai8x_nb.models.base import ModelInfo

L2 = 1e-4

SPEC = tuple(
    {"type": "conv1d", "filters": filters, "kernel_size": 1, "padding": 0, "use_bias": False,
     "l2": L2}
    for filters in (100, 100, 50, 16)
) + ({"type": "reshape", "target_shape": [8, 16, 16]},) + tuple(
    {"type": "conv2d", "filters": filters, "use_bias": False, "l2": L2}
    for filters in (32, 64, 64, 30, 7)
) + (
    {"type": "flatten"},
    {"type": "dense", "units": 21, "wide": True, "use_bias": False, "l2": L2},
)
"""The layers (`ai8x_nb.spec` rows; fields not given have the spec's defaults)."""

INFO = ModelInfo(
    name="kws20", spec=SPEC, dataset="kws20", num_classes=21, input_shape=(128, 128),
    batch_size=128, lr=3e-4, params=126_490,
    description="KWS20: 4 Conv1D + 5 Conv2D + wide linear, 85.14 % in the seed")
