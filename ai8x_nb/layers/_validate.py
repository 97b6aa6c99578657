"""Argument checks shared by the layers: each failure names layer, argument, value, limit and fix."""

from ai8x_nb.errors import DeviceLimitError

POOLINGS = (None, "max", "avg")
ACTIVATIONS = (None, "relu", "abs")


def fail(layer, argument, value, limit, fix):
    """Raise a `DeviceLimitError` in the project's standard wording."""
    raise DeviceLimitError(
        f"{type(layer).__name__} '{layer.name}': {argument}={value!r} is not supported by "
        f"{layer.device.name} ({limit}). {fix}"
    )


def normalize_choice(layer, argument, value, choices, fix):
    """Lower-case a string option ("Max" -> "max", "ReLU" -> "relu") and check it."""
    norm = value.lower() if isinstance(value, str) else value
    if norm in ("none", ""):
        norm = None
    if norm not in choices:
        shown = ", ".join(repr(c) for c in choices)
        fail(layer, argument, value, f"one of {shown}", fix)
    return norm


def as_tuple(layer, argument, value, rank):
    """Turn an int or a sequence into a `rank`-tuple of ints."""
    if isinstance(value, int):
        return (value,) * rank
    try:
        values = tuple(int(v) for v in value)
    except TypeError:
        values = ()
    if len(values) != rank:
        fail(layer, argument, value, f"an int or {rank} ints", f"Pass e.g. {argument}=2.")
    return values


def check_range(layer, argument, value, low, high, fix, shown=None):
    """Check that every entry of an int or tuple lies in [low, high].

    `shown` is the value as the user passed it (defaults to `value`), for the message.
    """
    for v in value if isinstance(value, tuple) else (value,):
        if not low <= v <= high:
            fail(layer, argument, value if shown is None else shown, f"{low}..{high}", fix)


def check_pooling(layer, pool_size, pool_strides, rank):
    """Validate pool_size / pool_strides against the device; returns both as tuples."""
    dev = layer.device
    size = as_tuple(layer, "pool_size", pool_size, rank)
    strides = size if pool_strides is None else as_tuple(layer, "pool_strides", pool_strides, rank)
    low, high = dev.pool_range
    check_range(layer, "pool_size", size, low, high,
                "Use a pool size from 1 to 16, or pool in two layers.", shown=pool_size)
    low, high = dev.pool_stride_range
    shown = pool_size if pool_strides is None else pool_strides
    check_range(layer, "pool_strides", strides, low, high,
                "Use a pool stride from 1 to 16.", shown=shown)
    if len(set(strides)) > 1:
        fail(layer, "pool_strides", shown, "the same stride in both dimensions",
             f"Use pool_strides={strides[0]} (pool_size may differ per dimension).")
    return size, strides


def check_pool_dilation(layer, pool_dilation, rank):
    """Validate pool_dilation; returns None (no dilation) or a `rank`-tuple with a value > 1.

    The synthesis tool (ab4f4c0) dilates pooling on the MAX78002 only (`MAX_POOL_DILATION`
    16 there, 1 on the MAX78000). Its pooled size, `(n + stride - pool - dilation + 1) //
    stride`, is the true one, `(n - (pool - 1) * dilation - 1) // stride + 1`, only for a
    pool of 2 in each dilated dimension (larger pools get windows that run past the input);
    its row / column counter holds `(pool - 1) * dilation < 16`, so 15 at most; its known
    answer ignores the dilation of 1D max pooling, so 2D pooling only.
    """
    values = as_tuple(layer, "pool_dilation", pool_dilation, rank)
    if set(values) == {1}:
        return None
    dev = layer.device
    if dev.max_pool_dilation == 1:
        fail(layer, "pool_dilation", pool_dilation,
             "pool_dilation 1 only; the MAX78002 dilates pooling",
             "Use pool_dilation=1, or device='MAX78002'.")
    if layer.pooling is None:
        fail(layer, "pool_dilation", pool_dilation, "pool_dilation needs pooling",
             "Set pooling='max' or 'avg' with pool_size=2, or use pool_dilation=1.")
    if rank != 2:
        fail(layer, "pool_dilation", pool_dilation,
             "pool_dilation on 2D pooling only (the synthesis tool's known answer ignores "
             "the dilation of 1D max pooling)",
             "Use pool_dilation=1 on 1D layers, or a dilated Conv1D (dilation=...).")
    check_range(layer, "pool_dilation", values, 1, dev.max_pool_dilation,
                f"Use a pool_dilation from 1 to {dev.max_pool_dilation}.", shown=pool_dilation)
    for k, d in zip(layer.pool_size, values):
        if d > 1 and k != 2:
            fail(layer, "pool_dilation", pool_dilation,
                 f"a dilated dimension needs pool_size 2 (got pool_size={layer.pool_size}); "
                 f"the synthesis tool sizes larger dilated pools wrongly",
                 "Use pool_size=2 with pool_dilation, or pool_dilation=1.")
    return values


def check_channels(layer, argument, value):
    """Check a channel count against the device maximum."""
    limit = layer.device.max_channels
    if not 1 <= value <= limit:
        fix = ("Use at least 1 channel (a layer needs outputs)." if value < 1
               else f"Use at most {limit} channels, or split the layer.")
        fail(layer, argument, value, f"1..{limit} channels", fix)


def check_spatial(layer, shape, what):
    """Check that every spatial size is >= 1 and within the device's row/column limit."""
    for size in shape:
        if size is None:
            continue
        if size < 1:
            fail(layer, "input_shape", shape,
                 f"{what} must be at least 1 pixel",
                 "Use a larger input, a smaller pool, or less pooling before this layer.")
        if size > layer.device.max_rows:
            fail(layer, "input_shape", shape, f"at most {layer.device.max_rows} rows/columns",
                 "Downsample the input before the accelerator.")
