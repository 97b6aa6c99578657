"""`import_synthesis`: a trained checkpoint plus its network YAML as a quantized Keras model.

The checkpoint's weights are matched to the YAML's layers as the synthesis tool matches them
(`izer/checkpoint.py`): state-dict keys in order, each `<layer>[.op].weight` to the next YAML
layer that has weights; `<layer>.weight_bits`, `<layer>.output_shift` and `<layer>[.op].bias`
(divided by 2^(weight_bits - 1), floored) belong to it; a YAML `quantization` or
`output_shift` overrides the checkpoint's. The Keras layers carry exactly these integers: each
kernel is stored as `W_int * 2^shift / 2^(bits-1)` with the layer's `output_shift` fixed to
`shift` and fake quantization on, so `convert` gives back `W_int`, `b_int` and `shift` bit for
bit, and `simulate`, `check_model`, `export_model` and `synthesize` work on it unchanged.
"""

import logging
import re

import keras
import numpy as np

from ai8x_nb import layers as L
from ai8x_nb.devices import get_device
from ai8x_nb.errors import ZooImportError
from ai8x_nb.zoo.network import read_network, sample_file
from ai8x_nb.zoo.pthfile import read_checkpoint

__all__ = ["import_synthesis", "match_weights", "input_shape_of"]

logger = logging.getLogger(__name__)

_KERNEL_RANK = {"conv2d": 4, "convtranspose2d": 4, "conv1d": 3, "linear": 2}


class _Weights:
    """One weighted layer's integers, as the tool reads them from the checkpoint."""

    def __init__(self, prefix, weight, bias, bits, shift):
        self.prefix, self.weight, self.bias, self.bits, self.shift = (prefix, weight, bias,
                                                                      bits, shift)


def _scalar(state, key, default):
    value = state.get(key)
    if value is None:
        return default
    return int(np.asarray(value).reshape(-1)[0])


def match_weights(state, network, source):
    """The integers of every weighted YAML layer, matched as the synthesis tool matches them.

    Args:
        state: the checkpoint's state dict (NumPy arrays).
        network: the `Network`.
        source: the checkpoint file, for messages.

    Returns:
        A list of `_Weights`, one per YAML layer that has weights, in layer order.

    Raises:
        ZooImportError: fewer weights than layers, unfolded BatchNorm weights, a kernel that
            does not fit its layer, or a weight outside its bit width.
    """
    weighted = [layer for layer in network.layers if layer.has_weights]
    found = []
    for key in state:
        parts = key.rsplit(".", 2)
        if len(parts) < 2 or parts[-1] != "weight" or len(found) >= len(weighted):
            continue
        prefix, op = (parts[0], parts[1]) if len(parts) == 3 else (parts[0], None)
        layer = weighted[len(found)]
        w = np.floor(np.asarray(state[key], dtype=np.float64)).astype(np.int64)
        where = f"{source}: `{key}` (YAML layer {layer.index}, {layer.op})"
        if w.ndim != _KERNEL_RANK[layer.op]:
            hint = " Fold the BatchNorm layers first." if w.ndim == 1 else ""
            raise ZooImportError(f"{where} has shape {w.shape}; a {layer.op} layer needs a "
                                 f"{_KERNEL_RANK[layer.op]}-D weight.{hint}")
        if w.ndim > 2 and any(k != layer.kernel_size for k in w.shape[2:]):
            raise ZooImportError(f"{where} has a {'x'.join(map(str, w.shape[2:]))} kernel; the "
                                 f"YAML says kernel_size {layer.kernel_size}.")
        stored_bits = _scalar(state, f"{prefix}.weight_bits", 8) or 8
        bits = layer.weight_bits or (1 if not w.any() else stored_bits)
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if w.size and (w.min() < low or w.max() > high):
            raise ZooImportError(f"{where}: weights span [{w.min()}, {w.max()}], outside "
                                 f"{bits}-bit [{low}, {high}]; is the checkpoint quantized "
                                 f"(ai8x-training's quantize.py)?")
        bias_key = f"{prefix}.bias" if op is None else f"{prefix}.{op}.bias"
        bias = None
        if bias_key in state:
            b = np.asarray(state[bias_key], dtype=np.float64) / 2 ** (stored_bits - 1)
            bias = np.floor(b).astype(np.int64)
            if bias.size and (bias.min() < -128 or bias.max() > 127):
                raise ZooImportError(f"{source}: `{bias_key}` spans [{bias.min()}, "
                                     f"{bias.max()}] after dividing by 2^{stored_bits - 1}; "
                                     f"an 8-bit bias is [-128, 127].")
        shift = layer.output_shift
        if shift is None:
            shift = _scalar(state, f"{prefix}.output_shift", 0)
        found.append(_Weights(prefix, w, bias, bits, shift))
    if len(found) < len(weighted):
        missing = weighted[len(found)]
        raise ZooImportError(f"{source}: {len(found)} weight tensors for {len(weighted)} YAML "
                             f"layers with weights; none left for YAML layer {missing.index} "
                             f"({missing.op}). Is it the checkpoint of {network.path.name}?")
    return found


def input_shape_of(network, input_shape=None):
    """The network's input, channel-first as the tool's samples: (C, H, W) or (C, L)."""
    if input_shape is not None:
        return tuple(int(s) for s in input_shape)
    path = sample_file(network)
    return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)


def _keras_names(weights):
    used, names = set(), []
    for item in weights:
        prefix = re.sub(r"^module\.", "", item.prefix)  # torch.nn.DataParallel's prefix
        name = re.sub(r"[^0-9A-Za-z_]", "_", prefix) or "layer"
        base, n = name, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names.append(name)
    return names


def _keras_kernel(layer, w, flatten_from):
    """The Keras kernel layout of a PyTorch weight."""
    if layer.op == "conv2d":
        return np.transpose(w, (2, 3, 1, 0))
    if layer.op == "conv1d":
        return np.transpose(w, (2, 1, 0))
    if layer.op == "convtranspose2d":
        return np.transpose(w, (2, 3, 0, 1))
    kernel = w.T  # (in, out), inputs in the device's channel-first order
    if flatten_from is not None:
        out = kernel.shape[-1]
        k = kernel.reshape((flatten_from[-1],) + tuple(flatten_from[:-1]) + (out,))
        kernel = np.moveaxis(k, 0, -2).reshape(-1, out)  # -> Keras' channels-last Flatten
    return kernel


def _fit_rank(x, layer, source):
    """Relabel the data for the layer: `in_dim`, or a change between 1D and 2D."""
    shape = tuple(x.shape[1:])
    if layer.in_dim is not None:
        dims = tuple(int(d) for d in layer.in_dim)
        if layer.op == "conv1d" and len(dims) == 2 and dims[1] == 1:
            dims = dims[:1]
        if int(np.prod(dims)) != int(np.prod(shape[:-1])):
            raise ZooImportError(f"{source}: layer {layer.index} has in_dim {list(dims)}, but "
                                 f"its input is {shape[:-1]} per channel.")
        return keras.layers.Reshape(dims + (shape[-1],))(x)
    rank = {"conv2d": 2, "convtranspose2d": 2, "conv1d": 1}.get(layer.op)
    if layer.op == "passthrough":
        rank = len(layer.pool_size)
    if rank is None or rank == len(shape) - 1:
        return x
    if rank == 1:
        return keras.layers.Reshape((int(np.prod(shape[:-1])), shape[-1]))(x)
    return keras.layers.Reshape((shape[0], 1, shape[-1]))(x)


def _hardware_layer(layer, weights, name, device):
    common = dict(name=name, device=device, qat=True, streaming=layer.streaming)
    if layer.op == "passthrough":
        cls = {("max", 1): L.MaxPool1D, ("max", 2): L.MaxPool2D, ("avg", 1): L.AvgPool1D,
               ("avg", 2): L.AvgPool2D}[(layer.pooling, len(layer.pool_size))]
        return cls(layer.pool_size, layer.pool_strides, **common)
    args = dict(activation=layer.activation, wide=layer.wide, use_bias=weights.bias is not None,
                weight_bits=weights.bits, output_shift=weights.shift, **common)
    if layer.pooling is not None:
        args.update(pooling=layer.pooling, pool_size=layer.pool_size,
                    pool_strides=layer.pool_strides)
    out_channels = weights.weight.shape[1 if layer.op == "convtranspose2d" else 0]
    if layer.op == "linear":
        return L.Dense(out_channels, **args)
    cls = {"conv2d": L.Conv2D, "conv1d": L.Conv1D, "convtranspose2d": L.ConvTranspose2D}
    return cls[layer.op](out_channels, layer.kernel_size, padding=layer.padding, **args)


def _build(network, found, shape, device, source):
    first = network.layers[0]
    if first.op == "linear":
        raise ZooImportError(f"{source}: layer 0 is a linear layer; the importer needs a "
                             f"convolution or pooling first.")
    inputs = keras.Input(tuple(shape[1:]) + (shape[0],), name="input")
    x = inputs
    outputs = {-1: inputs}
    weights = iter(found)
    names = iter(_keras_names(found))
    assigned = []
    for layer in network.layers:
        item = next(weights) if layer.has_weights else None
        name = next(names) if layer.has_weights else f"pool_{layer.index}"
        if layer.inputs is not None:
            read = [outputs[i] for i in layer.inputs]
            x = read[0] if len(read) == 1 else L.Concatenate(
                device=device, name=f"concat_{layer.index}")(read)
        flatten_from = None
        if layer.op == "linear":
            if len(x.shape) > 2:
                flatten_from = tuple(x.shape[1:])
                if not layer.flatten and int(np.prod(flatten_from[:-1])) != 1:
                    raise ZooImportError(f"{source}: layer {layer.index} is linear on "
                                         f"{flatten_from[:-1]} data without `flatten: true`.")
                x = keras.layers.Flatten(name=f"flatten_{layer.index}")(x)
        else:
            x = _fit_rank(x, layer, source)
        hw = _hardware_layer(layer, item, name, device)
        x = hw(x)
        outputs[layer.index] = x
        if item is not None:
            assigned.append((hw, layer, item, flatten_from))
    marked = [outputs[layer.index] for layer in network.layers if layer.output]
    if marked and network.layers[-1].output is False and marked[-1] is not x:
        marked.append(x)  # the tool's last layer is always an output (its terminating layer)
    model = keras.Model(inputs, marked if len(marked) > 1 else x, name=network.arch)
    for hw, layer, item, flatten_from in assigned:
        kernel = _keras_kernel(layer, item.weight, flatten_from)
        if tuple(kernel.shape) != tuple(hw.kernel.shape):
            raise ZooImportError(f"{source}: `{item.prefix}` has shape {item.weight.shape}, "
                                 f"which does not fit YAML layer {layer.index}'s input (Keras "
                                 f"kernel {tuple(hw.kernel.shape)}).")
        scale = 2.0 ** item.shift / 2 ** (item.bits - 1)
        hw.kernel.assign((kernel * scale).astype(np.float32))
        if item.bias is not None:
            hw.bias.assign((item.bias * scale).astype(np.float32))
    return model


def import_synthesis(checkpoint, yaml, device=None, *, input_shape=None):
    """Import a trained network of the synthesis tool as a quantized Keras model.

    Args:
        checkpoint: the quantized checkpoint (`trained/*-q.pth.tar`), read without torch and
            without running anything in it (`read_checkpoint`).
        yaml: the network description (`networks/*.yaml`).
        device: "MAX78000" (default) or "MAX78002".
        input_shape: the input, channel-first as the tool's samples ((C, H, W) or (C, L));
            default: the shape of the vendor's sample, `tests/sample_<dataset>.npy` beside the
            YAML's `networks/` folder.

    Returns:
        A built functional `keras.Model` named after the YAML's `arch`, one `ai8x_nb.layers`
        layer per YAML layer, named after the checkpoint's layers, with fake quantization on
        and every weighted layer's `output_shift` fixed to the trained one.

    Raises:
        ZooImportError: the YAML uses something the workbench cannot represent yet (the
            message names each layer, YAML key and what is missing), the checkpoint does not
            match the YAML, or no sample gives the input shape.
        UnsafeCheckpointError: the checkpoint's pickle asks for more than a state dict.
        DeviceLimitError: a layer the device cannot run.

    Example:

    >>> model = import_synthesis("trained/ai85-mnist-qat8-q.pth.tar",
    ...                          "networks/mnist-chw-ai85.yaml")  # doctest: +SKIP
    >>> ai8x_nb.simulate(ai8x_nb.convert(model), x_int)  # doctest: +SKIP
    """
    dev = get_device(device)
    network = read_network(yaml)
    source = str(checkpoint)
    saved = read_checkpoint(checkpoint)
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        raise ZooImportError(f"{source}: no `state_dict` in the checkpoint.")
    arch = saved.get("arch")
    if isinstance(arch, str) and arch.lower() != network.arch.lower():
        raise ZooImportError(f"{source} holds arch {arch!r}; {network.path.name} describes "
                             f"{network.arch!r}. Pass the matching pair.")
    found = match_weights(saved["state_dict"], network, source)
    shape = input_shape_of(network, input_shape)
    if len(shape) not in (2, 3):
        raise ZooImportError(f"input_shape {shape}: expected (C, H, W) or (C, L).")
    model = _build(network, found, shape, dev.name, source)
    logger.info("imported %s (%s): %d layers from %s", network.arch, network.path.name,
                len(network.layers), source)
    return model
