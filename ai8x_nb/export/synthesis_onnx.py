"""Integer-weight ONNX for the synthesis tool (`ai8xize.py --checkpoint-file NAME.onnx`).

The vendor's loader (`izer/onnxcp.py`, ai8x reference section 6) first runs the file in
onnxruntime on a random input (to learn the data shapes), then walks the `Conv`,
`ConvTranspose` and `Gemm` nodes in order, casts their initializers to int64 and reads the
kernel size from the `kernel_shape` attribute. So the file is a runnable graph of the
device's data flow, with integer weights:

- fused pooling and pool-only layers: `MaxPool` / `AveragePool` nodes (the loader counts a
  pool node as a layer only when the YAML says `operation: None`);
- Conv2D: `Conv`, weight (out, in, kh, kw) from the Keras kernel (kh, kw, in, out);
- Conv1D: `Conv` with `kernel_shape` [k], weight (out, in, k) (the loader reads it as k x 1);
- ConvTranspose2D: `ConvTranspose` (stride 2, output padding 1) with the standard ONNX weight
  (in, out, kh, kw); the loader flips and transposes it;
- Dense: `Gemm` with `transB=1`, weight (out, in); after a channels-first `Flatten`, so the
  input columns are in the device's CHW order (reordered from Keras' HWC flatten order);
- a Reshape between layers (1D <-> 2D, `in_dim` in the YAML) is a `Reshape` node;
- element-wise Add: an `Add` node of the operands.

Biases are stored multiplied by 128 (the loader divides by 128). Values are float32 tensors
that hold integers, exact for every 8-bit weight and bias * 128. Without the device's
output_shift, rounding and clamps the graph's numbers are not the device's outputs (use
`saved_model.onnx` to run the float model, `ai8x_nb.simulate` for the integer one).
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
        An `onnx.ModelProto` that `onnx.checker.check_model` accepts and onnxruntime runs.

    Raises:
        ExportError: the model has no layer with weights, or weights out of range.
    """
    import onnx
    from onnx import TensorProto, helper

    graph = qmodel.graph
    builder = _GraphBuilder()
    tensors = {-1: ("input", _channels_first(graph.input_shape))}
    for ql in qmodel.layers:
        tensors[ql.hw.index] = builder.add_layer(ql, tensors)
    if not builder.weighted:
        raise ExportError(f"Model '{name}' has no layer with weights; the synthesis tool needs "
                          f"at least one convolution or linear layer.")
    out_name, out_shape = tensors[graph.output_index]
    batch = ["N"]  # symbolic: the loader feeds one sample, tests feed batches
    g = helper.make_graph(
        builder.nodes, str(name),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       batch + list(_channels_first(graph.input_shape))[1:])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT,
                                       batch + list(out_shape)[1:])],
        builder.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ai8x_nb",
                              doc_string="Integer weights for ai8xize.py (device data flow).")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model


class _GraphBuilder:
    """Collects nodes and initializers, one hardware layer at a time, channels-first."""

    def __init__(self):
        self.nodes, self.inits, self.weighted = [], [], 0

    def _node(self, op, inputs, output, **attrs):
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def _init(self, array, name):
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def add_layer(self, ql, tensors):
        """Append the nodes of one layer; returns (output name, channels-first shape)."""
        hw = ql.hw
        lname = hw.name
        out_shape = _channels_first(hw.out_shape)
        srcs = [tensors[i][0] for i in hw.inputs]
        if hw.reshaped_from is not None:
            shape = self._init(np.array((-1,) + _channels_first(hw.in_shape)[1:], dtype=np.int64),
                               f"{lname}.in_dim")
            srcs[0] = self._node("Reshape", [srcs[0], shape], f"{lname}.reshape")
        if hw.op == "add":
            total = srcs[0]
            for i, other in enumerate(srcs[1:]):
                total = self._node("Add", [total, other], f"{lname}.add{i}")
            return total, out_shape
        x = srcs[0]
        layer = hw.layer
        if layer.pooling is not None:
            op = "MaxPool" if layer.pooling == "max" else "AveragePool"
            x = self._node(op, [x], f"{lname}.pool", kernel_shape=list(layer.pool_size),
                           strides=list(layer.pool_strides))
        if hw.op == "passthrough":
            return x, out_shape
        if hw.op not in WEIGHTED_OPS or ql.weights is None:
            raise ExportError(f"Layer '{lname}' ({hw.op}) cannot go into the synthesis ONNX; "
                              f"run ai8x_nb.check_model for the reason.")
        weight, bias = onnx_layout(ql)
        inputs = [x, self._init(weight, f"{lname}.weight")]
        if bias is not None:
            inputs.append(self._init(bias, f"{lname}.bias"))
        self.weighted += 1
        k, doc = None, _doc(hw)
        if hw.op == "linear":
            if hw.flatten_from is not None or len(tensors[hw.inputs[0]][1]) > 2:
                inputs[0] = self._node("Flatten", [x], f"{lname}.flatten", axis=1)
            self._node("Gemm", inputs, lname, transB=1, doc_string=doc)
            return lname, out_shape
        k, p = int(layer.kernel_size), int(layer.padding)
        if hw.op == "conv1d":
            self._node("Conv", inputs, lname, kernel_shape=[k], pads=[p, p], doc_string=doc)
        elif hw.op == "conv2d":
            self._node("Conv", inputs, lname, kernel_shape=[k, k], pads=[p] * 4,
                       doc_string=doc)
        else:
            self._node("ConvTranspose", inputs, lname, kernel_shape=[k, k], pads=[p] * 4,
                       strides=[2, 2], output_padding=[1, 1], doc_string=doc)
        return lname, out_shape


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
