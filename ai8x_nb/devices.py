"""Hardware limits of the MAX78000 and MAX78002 CNN accelerators, as frozen data.

There is no "current device": every function that needs limits takes a `Device` (or a
device name) explicitly. Numbers follow the ai8x reference, sections 3-4.

Example:

>>> from ai8x_nb.devices import get_device
>>> dev = get_device("max78000")
>>> dev.max_layers, dev.weight_memory_bytes // 1024
(32, 432)
"""

import dataclasses

from ai8x_nb.errors import UnknownDeviceError

__all__ = ["DEFAULT_DEVICE", "Device", "MAX78000", "MAX78002", "DEVICES", "get_device"]

DEFAULT_DEVICE = "MAX78000"
"""Device models are built and checked for when none is given (`device=None`)."""

WEIGHT_WORD_BITS = 72
"""One weight-memory word: a 3x3 kernel of 8-bit weights."""


@dataclasses.dataclass(frozen=True)
class Device:
    """Limits of one accelerator.

    Attributes are plain numbers and tuples; instances are immutable and hashable.
    """

    name: str
    processors: int
    processors_per_quadrant: int
    processors_per_memory: int
    max_layers: int
    max_channels: int
    weight_words: tuple  # 72-bit words of weight memory, per processor
    bias_bytes_per_quadrant: int
    max_bias_outputs: int
    data_memory_bytes: int
    data_memory_instances: int
    max_pixels_hwc: int
    max_pixels_chw: int
    max_rows: int
    max_cols: int
    conv2d_kernels: tuple = (1, 3)
    conv1d_kernels: tuple = tuple(range(1, 10))
    conv_transpose_kernels: tuple = (3,)
    conv_transpose_stride: int = 2
    paddings: tuple = (0, 1, 2)
    pool_range: tuple = (1, 16)
    pool_stride_range: tuple = (1, 16)
    max_dense_in: int = 1024
    max_dense_out: int = 1024
    max_flatten_values: int = 16384
    max_flatten_pixels: int = 256
    output_shift_range: tuple = (-15, 15)
    weight_bits: tuple = (8, 4, 2, 1)
    max_eltwise_operands: int = 16
    conv2d_dilation: bool = False
    depthwise: bool = False
    max_pool_dilation: int = 1
    binary_weights: bool = False
    # +-1 weights (`weight_bits="binary"`, the tool's `quantization: bin`,
    # `SUPPORT_BINARY_WEIGHTS`); a network cannot mix them with 1-bit weights.
    # Pooling dilation (`pool_dilation`): the tool's MAX_POOL_DILATION is 16 on the MAX78002,
    # but its pooling row counter holds (pool - 1) * dilation < 16, so 15 with pool size 2.
    max_pool_only_passes: int = 1
    # Passes a pool-only layer may take when it does not pool down to 1x1 (ai8x-synthesis
    # `MAX_POOL_PASSES`): one on the MAX78000, so at most 64 channels.
    padded_conv1d_multipass: bool = True
    # A Conv1D with padding may read more than 64 channels (several passes).
    flatten_bias_first: bool = False
    # The synthesis tool places the biases of a flattening linear layer before all others.
    avg_pool_reset_after_eltwise: bool = False
    # The synthesis tool adds a hidden layer before an average pool that follows an
    # element-wise layer (it counts toward `max_layers`).
    eltwise_conv_bias: bool = True
    # A convolution that adds its inputs first (`eltwise`) may have a bias
    # (`SUPPORT_MULTIPASS_ELTWISE_CONV_BIAS`).
    eltwise_multipass_conv: bool = True
    # An element-wise operation over several passes may run inside a convolution or pool;
    # the MAX78000 emulates it (`EMULATE_ELTWISE_MP`) unless operands * passes equals
    # operands + passes, and then only in a layer of its own.
    max_padded_rows: int = 0
    # Rows (and columns) plus both paddings must stay within this count register limit
    # (0: no limit beyond `max_rows`).
    max_stream_layers: int = 8
    # Streaming layers (`streaming: true`, the first layers in a row; `MAX_STREAM_LAYERS`).
    stream_frame_max: int = 2**21
    # A layer's rows x columns x passes stay below this (`FRAME_SIZE_MAX`).
    stream_nonpad_final: bool = False
    # The last streaming layer may have padding 0 (`SUPPORT_STREAM_NONPAD_FINAL`).
    new_streaming: bool = False
    # The MAX78002's streaming registers (`REQUIRE_NEW_STREAMING`): another rollover formula.
    flash_bytes: int = None
    sram_bytes: int = None
    cnn_clock_mhz: float = 50.0
    # The accelerator clock latency figures are converted at (the MSDK examples' default:
    # the 100 MHz peripheral clock divided by 2 on the MAX78000).
    latency_model: bool = True
    # The synthesis tool has a latency model for this device (`SUPPORT_LATENCY_CALC`); where
    # it has none, `check_model` shows the MAX78000 formula's figure labelled an estimate.
    # The Arm core's flash and SRAM (the firmware's code and variables; the MSDK's linker
    # script regions), or None where not recorded here.

    @property
    def quadrants(self):
        """Number of processor quadrants."""
        return self.processors // self.processors_per_quadrant

    @property
    def weight_memory_bytes(self):
        """Total weight memory in bytes (72-bit words)."""
        return sum(self.weight_words) * WEIGHT_WORD_BITS // 8

    @property
    def bias_memory_bytes(self):
        """Total bias memory in bytes."""
        return self.bias_bytes_per_quadrant * self.quadrants

    @property
    def data_instance_bytes(self):
        """Bytes of one data-memory instance (shared by `processors_per_memory` processors)."""
        return self.data_memory_bytes // self.data_memory_instances

    @property
    def out_offset_half(self):
        """The ping-pong output offset: half of one data-memory instance, in bytes."""
        return self.data_instance_bytes // 2

    def __str__(self):
        return self.name


MAX78000 = Device(
    name="MAX78000",
    processors=64,
    processors_per_quadrant=16,
    processors_per_memory=4,
    max_layers=32,
    max_channels=1024,
    weight_words=(768,) * 64,
    bias_bytes_per_quadrant=512,
    max_bias_outputs=512,
    data_memory_bytes=512 * 1024,
    data_memory_instances=16,
    max_pixels_hwc=8192,
    max_pixels_chw=32768,
    # ai8x-synthesis MAX_ROW_COL (the reference's 1023 is one short); with padding, the row
    # counter allows rows + 2 * padding <= 1024 (`max_padded_rows`).
    max_rows=1024,
    max_cols=1024,
    flatten_bias_first=True,
    max_padded_rows=1024,
    eltwise_multipass_conv=False,
    flash_bytes=512 * 1024,
    sram_bytes=128 * 1024,
)

MAX78002 = Device(
    name="MAX78002",
    processors=64,
    processors_per_quadrant=16,
    processors_per_memory=4,
    max_layers=128,
    # ADI's README says 2048; the synthesis tool allows 16 passes of 64 (MAX_CHANNELS).
    max_channels=1024,
    # 2,340 KiB in all: the first processor of each quadrant has 5120 words, the others 4096.
    weight_words=tuple(5120 if p % 16 == 0 else 4096 for p in range(64)),
    bias_bytes_per_quadrant=2048,
    max_bias_outputs=2048,
    data_memory_bytes=1280 * 1024,
    data_memory_instances=16,
    max_pixels_hwc=20480,
    max_pixels_chw=81920,
    max_rows=2048,
    max_cols=2048,
    # ADI's README lists Conv2D dilation for the MAX78002, but the synthesis tool (ab4f4c0)
    # keeps MAX_DILATION = 1 on every device and dilates Conv1d only: the tool wins.
    conv2d_dilation=False,
    depthwise=True,
    max_pool_dilation=15,
    binary_weights=True,
    max_pool_only_passes=2**16,
    padded_conv1d_multipass=False,
    avg_pool_reset_after_eltwise=True,
    eltwise_conv_bias=False,
    stream_nonpad_final=True,
    new_streaming=True,
    latency_model=False,
    # flash_bytes / sram_bytes not recorded: no MAX78002 linker script was at hand to read.
)

DEVICES = {dev.name: dev for dev in (MAX78000, MAX78002)}


def get_device(device=None):
    """Return the limits of a device: the one place a `device=None` default is resolved.

    Args:
        device: a `Device`, or its name, case-insensitive ("MAX78000", "max78002").
            The vendor's short names "ai85" / "85" and "ai87" / "87" are accepted too.
            None: `DEFAULT_DEVICE`.

    Returns:
        The frozen `Device`.

    Raises:
        UnknownDeviceError: for any other name.
    """
    if isinstance(device, Device):
        return device
    if device is None:
        return DEVICES[DEFAULT_DEVICE]
    key = str(device).strip().upper()
    aliases = {"AI85": "MAX78000", "85": "MAX78000", "AI87": "MAX78002", "87": "MAX78002"}
    key = aliases.get(key, key)
    if key not in DEVICES:
        raise UnknownDeviceError(
            f"Unknown device {device!r}; supported devices are {', '.join(DEVICES)}. "
            f"Pass device='MAX78000' or device='MAX78002'."
        )
    return DEVICES[key]
