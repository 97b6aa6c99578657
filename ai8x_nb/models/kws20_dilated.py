"""A dilated keyword-spotting model (KWS20), MAX78000: the seed's layout with a temporal front end.

The seed's Conv1D front end is four 1-tap (pointwise) layers: each time step is read alone.
Here three of them look across time with dilated kernels (`Conv1D(dilation=...)`, both
devices), so the front end sees 1 + 3 * (2 * 2) = 13 time steps of 128 samples before the
Reshape; padding keeps the 128 steps the Reshape needs ((k - 1) * dilation == 2 * padding, and
padding must stay below the kernel's 3 taps).

Input (128, 128) -> Conv1D 100 k1 -> Conv1D 100 k3 d2 p2 -> Conv1D 50 k3 d2 p2 ->
Conv1D 16 k3 d2 p2 -> Reshape (8, 16, 16) -> 5 x Conv2D 3x3 p1 (32, 64, 64, 30, 7) ->
Flatten -> Dense 21 wide. No bias; L2 1e-4 on every kernel, as the seed.

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
158090
"""

from ai8x_nb.models.base import ModelInfo
from ai8x_nb.models.kws20 import L2, SPEC as SEED_SPEC

FRONT = (
    {"type": "conv1d", "filters": 100, "kernel_size": 1, "padding": 0},
    {"type": "conv1d", "filters": 100, "kernel_size": 3, "padding": 2, "dilation": 2},
    {"type": "conv1d", "filters": 50, "kernel_size": 3, "padding": 2, "dilation": 2},
    {"type": "conv1d", "filters": 16, "kernel_size": 3, "padding": 2, "dilation": 2},
)

SPEC = tuple(dict(row, use_bias=False, l2=L2) for row in FRONT) + SEED_SPEC[4:]
"""The layers: the dilated front end, then the seed's Reshape, Conv2D stack and head."""

INFO = ModelInfo(
    name="kws20_dilated", spec=SPEC, dataset="kws20", num_classes=21, input_shape=(128, 128),
    batch_size=128, lr=3e-4, params=158_090,
    description="KWS20 with a dilated Conv1D front end (13 time steps); MAX78000 (the "
                "MAX78002 pads a Conv1D over at most 64 channels)", device="MAX78000")
