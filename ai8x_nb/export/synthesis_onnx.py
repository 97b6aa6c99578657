"""Integer-weight ONNX for the synthesis tool (`ai8xize.py --checkpoint-file NAME.onnx`).

The vendor's loader (`izer/onnxcp.py`, ai8x reference section 6) walks the graph's `Conv` and
`Gemm` nodes in order, casts their initializers to int64 and reads the kernel size from the
`kernel_shape` attribute. So this file is a container of integer weights in layer order, not
an executable model (use `saved_model.onnx` to run the float model):

- Conv2D: `Conv`, weight (out, in, kh, kw) from the Keras kernel (kh, kw, in, out).
- Conv1D: `Conv`, weight (out, in, k); `kernel_shape` is written as [k, 1] because the
  loader compares both entries ([k, 1] is what it expects for 1D layers).
- ConvTranspose2D: a `Conv` node (the loader only walks Conv and Gemm) holding the standard
  ONNX/PyTorch ConvTranspose weight (in, out, kh, kw); the loader flips and transposes it
  because the YAML says `operation: ConvTranspose2d`.
- Dense: `Gemm` with `transB=1`, weight (out, in). After a Flatten the input columns are
  reordered from Keras' HWC flatten order to the device's CHW order.
- Biases are stored multiplied by 128 (the loader divides by 128).
- Pool-only and element-wise layers have no weights and no node; ai8xize.py inserts empty
  weights for them from the YAML.

Values are float32 tensors that hold integers (exact for every 8-bit weight and bias * 128).
"""

import logging

import numpy as np

from ai8x_nb.errors import ExportError

__all__ = ["onnx_layout", "build_synthesis_onnx", "write_synthesis_onnx", "BIAS_SCALE",
           "OPSET"]

log = logging.getLogger(__name__)

BIAS_SCALE = 128
"""The loader divides ONNX biases by this (`tc.dev.BIAS_DIV`)."""
OPSET = 13
WEIGHTED_OPS = ("conv2d", "conv1d", "convtranspose2d", "linear")


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


def onnx_layout(qlayer):
    """Integer weight and bias of one quantized layer in the synthesis ONNX layout.

    Args:
        qlayer: a `QuantizedLayer` with Keras-layout integer `weights`.

    Returns:
        `(weight, bias)`: float32 arrays holding integers; `bias` is `bias_int * 128` or None.

    Raises:
        ExportError: a weight outside the layer's bit width or a bias outside [-128, 127].
    """
    hw = qlayer.hw
    w = np.asarray(qlayer.weights, dtype=np.int64)
    bits = int(qlayer.weight_bits)
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if w.size and (w.min() < low or w.max() > high):
        raise ExportError(
            f"Layer '{hw.name}': integer weights span [{w.min()}, {w.max()}], outside the "
            f"{bits}-bit range [{low}, {high}]. Re-run ai8x_nb.quantize.convert; this is a bug "
            f"if it persists.")
    if hw.op == "conv2d":
        weight = np.transpose(w, (3, 2, 0, 1))
    elif hw.op == "conv1d":
        weight = np.transpose(w, (2, 1, 0))
    elif hw.op == "convtranspose2d":
        weight = np.transpose(w, (2, 3, 0, 1))
    elif hw.op == "linear":
        if hw.flatten_from is not None:
            w = chw_columns(w, hw.flatten_from)
        weight = w.T
    else:
        raise ExportError(f"Layer '{hw.name}' ({hw.op}) has no weights for the synthesis ONNX.")
    bias = None
    if qlayer.bias is not None:
        b = np.asarray(qlayer.bias, dtype=np.int64)
        if b.size and (b.min() < -128 or b.max() > 127):
            raise ExportError(f"Layer '{hw.name}': integer bias spans [{b.min()}, {b.max()}], "
                              f"outside [-128, 127].")
        bias = (b * BIAS_SCALE).astype(np.float32)
    return np.ascontiguousarray(weight, dtype=np.float32), bias


def _channels_first(shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) <= 1:
        return (1,) + shape
    return (1, shape[-1]) + shape[:-1]


def build_synthesis_onnx(qmodel, name):
    """Build the integer-weight ONNX graph of a `QuantizedModel`.

    Args:
        qmodel: the `QuantizedModel` (from `ai8x_nb.quantize.convert`).
        name: graph name (the model name).

    Returns:
        An `onnx.ModelProto` that `onnx.checker.check_model` accepts.

    Raises:
        ExportError: the model has no layer with weights, or weights out of range.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = qmodel.graph
    nodes, inits = [], []
    current = "input"
    last_shape = None
    for ql in qmodel.layers:
        hw = ql.hw
        if hw.op not in WEIGHTED_OPS or ql.weights is None:
            continue
        weight, bias = onnx_layout(ql)
        lname = hw.name
        inits.append(numpy_helper.from_array(weight, f"{lname}.weight"))
        inputs = [current, f"{lname}.weight"]
        if bias is not None:
            inits.append(numpy_helper.from_array(bias, f"{lname}.bias"))
            inputs.append(f"{lname}.bias")
        out = f"{lname}.output"
        if hw.op == "linear":
            if last_shape is None or len(last_shape) > 2:
                nodes.append(helper.make_node("Flatten", [current], [f"{lname}.flat"],
                                              name=f"{lname}.flatten", axis=1))
                inputs[0] = f"{lname}.flat"
            nodes.append(helper.make_node("Gemm", inputs, [out], name=lname, transB=1,
                                          doc_string=_doc(hw)))
        else:
            k = int(hw.layer.kernel_size)
            p = int(hw.layer.padding)
            if hw.op == "conv1d":
                attrs = {"kernel_shape": [k, 1], "pads": [p, p]}
            else:
                attrs = {"kernel_shape": [k, k], "pads": [p, p, p, p]}
            nodes.append(helper.make_node("Conv", inputs, [out], name=lname,
                                          doc_string=_doc(hw), **attrs))
        current = out
        last_shape = _channels_first(hw.out_shape)
    if not nodes:
        raise ExportError(f"Model '{name}' has no layer with weights; the synthesis tool needs "
                          f"at least one convolution or linear layer.")
    g = helper.make_graph(
        nodes, str(name),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       list(_channels_first(graph.input_shape)))],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, list(last_shape))],
        inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ai8x_nb",
                              doc_string="Integer weights for ai8xize.py; not executable.")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model


def _doc(hw):
    if hw.op == "convtranspose2d":
        return "ConvTranspose2d weight (in, out, kh, kw); ai8xize.py flips and transposes it."
    if hw.op == "conv1d":
        return "Conv1d weight (out, in, k)."
    if hw.op == "linear" and hw.flatten_from is not None:
        return f"Linear weight (out, in); input columns in CHW order of {list(hw.flatten_from)}."
    return ""


def write_synthesis_onnx(qmodel, path, name):
    """Build and save the integer-weight ONNX; returns the `onnx.ModelProto`."""
    import onnx

    model = build_synthesis_onnx(qmodel, name)
    onnx.save(model, str(path))
    log.info("synthesis ONNX written: %s (%d weighted layers)", path,
             sum(n.op_type in ("Conv", "Gemm") for n in model.graph.node))
    return model
