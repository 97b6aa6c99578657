"""The synthesis tool's weights: `<name>-q.pth.tar` (`ai8xize.py --checkpoint-file`).

The vendor's checkpoint loader (`izer/checkpoint.py`, ai8x reference section 6) walks the
state dict in order and hands each `<layer>.op.weight` to the next YAML layer that has
weights (pool-only and element-wise layers have none). Per weighted layer we write:

- `<layer>.op.weight`: the integer weights as float32, PyTorch layout: Conv2d
  (out, in, kh, kw), Conv1d (out, in, k), ConvTranspose2d (in, out, kh, kw) (the loader flips
  and transposes it), Linear (out, in) with the input columns in the device's channel-first
  order when the layer follows a Flatten;
- `<layer>.op.bias`: `bias_int * 2^(bits - 1)` (the loader divides by that), when present;
- `<layer>.weight_bits` and `<layer>.output_shift`: one-element tensors, as ai8x-training
  stores them.

The file is written by `ai8x_nb.export.torchfile` (PyTorch is not needed).
"""

import collections
import logging
import re

import numpy as np

from ai8x_nb.errors import ExportError
from ai8x_nb.export import torchfile

__all__ = ["WEIGHTED_OPS", "checkpoint_name", "chw_columns", "device_weight", "device_bias",
           "state_dict", "write_checkpoint"]

logger = logging.getLogger(__name__)

WEIGHTED_OPS = ("conv2d", "conv1d", "convtranspose2d", "linear")


def checkpoint_name(name):
    """The checkpoint file name of an export named `name` (`mnist` -> `mnist-q.pth.tar`)."""
    return f"{name}-q.pth.tar"


def chw_columns(kernel, flatten_from):
    """Reorder a Dense kernel's input rows from Keras' HWC flatten order to CHW order.

    Args:
        kernel: (features, out) array, features in Keras order (H, W, C) / (L, C).
        flatten_from: the shape that was flattened, channels last.

    Returns:
        (features, out) array with the rows in channels-first order.
    """
    out = kernel.shape[-1]
    spatial_axes = tuple(range(len(flatten_from) - 1))
    k = kernel.reshape(tuple(flatten_from) + (out,))
    # (spatial..., C, out) -> (C, spatial..., out)
    k = np.transpose(k, (len(flatten_from) - 1,) + spatial_axes + (len(flatten_from),))
    return k.reshape(-1, out)


def device_weight(qlayer):
    """Integer weights of one quantized layer in the PyTorch layout the tool reads (int64).

    Raises:
        ExportError: a weight outside the layer's bit width, or a layer without weights.
    """
    hw = qlayer.hw
    if hw.op not in WEIGHTED_OPS or qlayer.weights is None:
        raise ExportError(f"Layer '{hw.name}' ({hw.op}) has no weights for the synthesis tool.")
    w = np.asarray(qlayer.weights, dtype=np.int64)
    bits = int(qlayer.weight_bits)
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if getattr(qlayer, "binary", False):  # +-1, never 0 (the tool tells binary by |w| == 1)
        low, high = -1, 1
        if w.size and np.any(w == 0):
            raise ExportError(f"Layer '{hw.name}': binary weights must be +-1, found 0. "
                              f"Re-run ai8x_nb.quantize.convert; this is a bug if it persists.")
    if w.size and (w.min() < low or w.max() > high):
        raise ExportError(
            f"Layer '{hw.name}': integer weights span [{w.min()}, {w.max()}], outside the "
            f"{bits}-bit range [{low}, {high}]. Re-run ai8x_nb.quantize.convert; this is a bug "
            f"if it persists.")
    if hw.op == "conv2d":
        return np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)))
    if hw.op == "conv1d":
        return np.ascontiguousarray(np.transpose(w, (2, 1, 0)))
    if hw.op == "convtranspose2d":
        return np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1)))
    if hw.flatten_from is not None:
        w = chw_columns(w, hw.flatten_from)
    return np.ascontiguousarray(w.T)


def device_bias(qlayer):
    """The layer's 8-bit integer bias (int64), or None.

    Raises:
        ExportError: a bias outside [-128, 127].
    """
    if qlayer.bias is None:
        return None
    b = np.asarray(qlayer.bias, dtype=np.int64)
    if b.size and (b.min() < -128 or b.max() > 127):
        raise ExportError(f"Layer '{qlayer.hw.name}': integer bias spans [{b.min()}, {b.max()}], "
                          f"outside [-128, 127].")
    return b


def _key(name, used):
    """A state-dict prefix for a Keras layer name: no dots (the loader splits on them)."""
    key = re.sub(r"[^0-9A-Za-z_]", "_", str(name)) or "layer"
    base, n = key, 1
    while key in used:
        n += 1
        key = f"{base}_{n}"
    used.add(key)
    return key


def state_dict(qmodel):
    """The ordered state dict of a `QuantizedModel`, numpy arrays as values.

    Returns:
        `collections.OrderedDict` of `<layer>.op.weight`, `<layer>.op.bias`,
        `<layer>.weight_bits`, `<layer>.output_shift`, weighted layers in device order.

    Raises:
        ExportError: no layer has weights, or weights/biases out of range.
    """
    sd = collections.OrderedDict()
    used = set()
    for ql in qmodel.layers:
        if ql.hw.op not in WEIGHTED_OPS or ql.weights is None:
            continue
        key = _key(ql.name, used)
        bits = int(ql.weight_bits)
        sd[f"{key}.op.weight"] = device_weight(ql).astype(np.float32)
        bias = device_bias(ql)
        if bias is not None:
            sd[f"{key}.op.bias"] = (bias * 2 ** (bits - 1)).astype(np.float32)
        sd[f"{key}.weight_bits"] = np.array([bits], dtype=np.float32)
        sd[f"{key}.output_shift"] = np.array([int(ql.output_shift)], dtype=np.float32)
    if not sd:
        raise ExportError("The model has no layer with weights; the synthesis tool needs at "
                          "least one convolution or linear layer.")
    return sd


def write_checkpoint(qmodel, path, *, arch, epoch=0):
    """Write the synthesis checkpoint of a `QuantizedModel`.

    Args:
        qmodel: the `QuantizedModel` (`ai8x_nb.quantize.convert`).
        path: the file to write (`<name>-q.pth.tar`).
        arch: the `arch` value; must equal the YAML's `arch` (the tool compares them).
        epoch: the training epoch the weights come from (the tool requires the key).

    Returns:
        The state dict that was written.
    """
    sd = state_dict(qmodel)
    torchfile.save_checkpoint({"arch": str(arch), "epoch": int(epoch), "state_dict": sd}, path,
                              archive_name=str(path).rsplit("/", 1)[-1].split(".")[0] or "archive")
    logger.debug("synthesis checkpoint written: %s (%d weighted layers)", path,
              sum(k.endswith(".op.weight") for k in sd))
    return sd
