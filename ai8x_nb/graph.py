"""Map a Keras model onto the accelerator's sequence of hardware layers.

Keras layers that vanish on the device (InputLayer, Reshape, Flatten, Dropout) are folded
into the hardware layer that follows them; every `HardwareLayer` / `Eltwise` becomes one
`HwLayer`. Anything else is kept as an `unsupported` entry so that `check_model` can say what
to replace it with. This is the one place that walks a Keras graph: the model check, the
YAML generator, the integer converter and the simulator all use its result.

Residual graphs (`Add`, `Sub`, `Xor`, `Or`) take the synthesis tool's element-wise form
(`ai8x_nb.eltwise_layout`): an element-wise layer read only by a 2D convolution runs inside it
(`eltwise: add` / `sub` / `xor` / `or`), and operands that
cannot be written straight into the interleaved buffer the element-wise layer reads are
copied there by a passthrough layer. A `Concatenate` runs inside the `Conv2D` reading it
(`ai8x_nb.concat_layout`: the tool's `in_sequences: [a, b]`).
"""

import dataclasses
import math

import keras

from ai8x_nb.layers import ELTWISE_OPS, Concatenate, Eltwise, HardwareLayer
from ai8x_nb.layers.conv import Conv1D, Conv2D, ConvTranspose2D
from ai8x_nb.layers.dense import Dense

__all__ = ["HwLayer", "ModelGraph", "trace_model", "FOLDED_LAYERS", "ELTWISE_OPS", "is_subclassed",
           "shape_size"]

FOLDED_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
)
"""Keras layers that do nothing at inference on the device (or only relabel memory)."""

MODEL_INPUT = -1


@dataclasses.dataclass
class HwLayer:
    """One hardware layer.

    Attributes:
        index: position in the device's layer sequence.
        layer: the Keras layer.
        op: "conv2d", "conv1d", "convtranspose2d", "linear", "passthrough", an element-wise
            operation ("add", "sub", "xor", "or", `ELTWISE_OPS`) or "unsupported" (a
            `Concatenate` is "concat" only while tracing: `concat_layout` moves it into its
            reader).
        inputs: indices of the hardware layers feeding it (`MODEL_INPUT` = -1 for the model input).
        in_shape: channels-last input shape without batch, as the operator sees it (before the
            fused pooling), e.g. (H, W, C), (L, C) or (features,).
        out_shape: channels-last output shape without batch.
        flatten_from: for a linear layer after a Flatten, the (H, W, C) / (L, C) shape that was
            flattened; else None.
        reshaped_from: when a Reshape relabels the input (e.g. 1D -> 2D), the producer's shape.
        problems: reasons the layer cannot run (filled for unsupported layers).
        eltwise: the element-wise operation ("add", "sub", "xor", "or") of a layer that first
            combines its inputs (a fused convolution or a stand-alone element-wise layer),
            else None.
        add_layer: the Keras `Eltwise` layer (`Add`, `Sub`, ...) fused into this convolution,
            or None.
        write_gap: the layer writes its output interleaved with `write_gap` other operands of
            an element-wise layer (0: plain).
        gap_slot: its position among those operands (the output goes to `4 * gap_slot` bytes
            past the buffer start).
        copy_of: for a passthrough layer inserted to copy an operand: the index of the layer
            whose output it copies, else None.
        concat_layer: the Keras `Concatenate` this convolution reads (its `inputs` are the
            concatenated layers, channels in that order), or None.
        model_output: its position in the Keras model's outputs when it produces one of
            several (the tool's `output: true`), else None.
    """

    index: int
    layer: object
    op: str
    inputs: tuple
    in_shape: tuple
    out_shape: tuple
    flatten_from: tuple = None
    reshaped_from: tuple = None
    problems: list = dataclasses.field(default_factory=list)
    eltwise: str = None
    add_layer: object = None
    write_gap: int = 0
    gap_slot: int = 0
    copy_of: int = None
    concat_layer: object = None
    model_output: int = None

    @property
    def operands(self):
        """Tensors the layer reads at once: its inputs for an element-wise layer, else 1."""
        return len(self.inputs) if self.eltwise else 1

    @property
    def interleaves(self):
        """A concatenation of more channels than processors: the reader takes its inputs as
        its passes, from one buffer they write into interleaved (`write_gap`)."""
        return (self.concat_layer is not None
                and self.in_channels > self.concat_layer.device.processors)

    @property
    def name(self):
        return self.layer.name

    @property
    def streaming(self):
        """The layer streams (`HardwareLayer(streaming=True)`, the tool's `streaming`)."""
        return bool(getattr(self.layer, "streaming", False))

    @property
    def in_channels(self):
        if self.flatten_from is not None:
            return self.flatten_from[-1]
        return self.in_shape[-1]

    @property
    def out_channels(self):
        return self.out_shape[-1]

    @property
    def is_hardware(self):
        return self.op != "unsupported"


@dataclasses.dataclass
class ModelGraph:
    """The hardware view of a Keras model.

    Attributes:
        layers: the `HwLayer`s in device order.
        input_shape: channels-last input shape as the first hardware layer sees it.
        raw_input_shape: the Keras model's input shape (before any folded Reshape).
        output_index: index of the layer producing the model output (of a model with several
            outputs, the last of them in device order: the tool's terminating layer).
        folded: names of the Keras layers that vanish on the device.
        problems: model-level problems (subclassed model, layer reused, ...).
        output_indices: the layers producing the model's outputs, in the Keras model's
            output order (one entry for a single-output model).
    """

    layers: list
    input_shape: tuple
    raw_input_shape: tuple
    output_index: int
    folded: list
    problems: list
    output_indices: tuple = None

    def __post_init__(self):
        if self.output_indices is None:
            self.output_indices = (self.output_index,)

    @property
    def several_outputs(self):
        """The model has several outputs (each written with `output: true`)."""
        return len(self.output_indices) > 1


@dataclasses.dataclass
class _Source:
    index: int
    shape: tuple
    flatten_from: tuple = None
    reshaped_from: tuple = None


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _shape(tensor):
    return tuple(tensor.shape[1:])


def is_subclassed(model):
    """True for a subclassed `keras.Model` (neither Sequential nor functional)."""
    from keras.src.models.functional import Functional

    return not isinstance(model, (keras.Sequential, Functional))


def _op_name(layer):
    if isinstance(layer, Eltwise):
        return layer.op
    if isinstance(layer, Concatenate):
        return "concat"
    if isinstance(layer, ConvTranspose2D):
        return "convtranspose2d"
    if isinstance(layer, Conv2D):
        return "conv2d"
    if isinstance(layer, Conv1D):
        return "conv1d"
    if isinstance(layer, Dense):
        return "linear"
    if isinstance(layer, HardwareLayer) and not layer.has_operator:
        return "passthrough"
    return "unsupported"


def _unsupported_reason(layer):
    name = type(layer).__name__
    cfg = layer.get_config() if hasattr(layer, "get_config") else {}
    if isinstance(layer, keras.layers.Conv2D) and cfg.get("strides") not in (1, (1, 1), [1, 1]):
        return (f"Keras {name} with strides={cfg.get('strides')} cannot run on the device "
                f"(stride 1 only); use ai8x_nb.layers.Conv2D and downsample with pooling "
                f"(pooling='max', pool_size=1, pool_strides=2).")
    hints = {
        "Conv2D": "use ai8x_nb.layers.Conv2D (kernel 1 or 3, padding 0..2)",
        "Conv1D": "use ai8x_nb.layers.Conv1D",
        "Conv2DTranspose": "use ai8x_nb.layers.ConvTranspose2D",
        "Dense": "use ai8x_nb.layers.Dense",
        "MaxPooling2D": "use ai8x_nb.layers.MaxPool2D or a fused pooling= argument",
        "AveragePooling2D": "use ai8x_nb.layers.AvgPool2D or a fused pooling= argument",
        "MaxPooling1D": "use ai8x_nb.layers.MaxPool1D",
        "AveragePooling1D": "use ai8x_nb.layers.AvgPool1D",
        "ReLU": "use activation='relu' on the layer before",
        "Activation": "use activation='relu' or 'abs' on the layer before",
        "BatchNormalization": "use batch_norm='affine' on the convolution before",
        "Add": "use ai8x_nb.layers.Add",
        "Subtract": "use ai8x_nb.layers.Sub",
    }
    hint = hints.get(name, "the device runs only ai8x_nb.layers layers")
    return f"Keras layer {name} '{layer.name}' cannot run on the device: {hint}."


def trace_model(model):
    """Build the hardware view of a built Sequential or functional Keras model.

    Args:
        model: a built `keras.Sequential` or functional `keras.Model`.

    Returns:
        A `ModelGraph`. Problems are recorded, not raised; `check_model` reports them.
    """
    problems = []
    if is_subclassed(model):
        problems.append(
            f"Model '{model.name}' is a subclassed keras.Model: its graph cannot be read. "
            f"Rewrite it with the functional API (keras.Input -> layers -> keras.Model(inputs, "
            f"outputs)) or keras.Sequential; the same layers work unchanged.")
        return ModelGraph([], (), (), MODEL_INPUT, [], problems)
    if len(model.inputs) != 1:
        problems.append(f"Model '{model.name}' has {len(model.inputs)} inputs; the device runs "
                        f"one input. Build the model on one keras.Input.")
    raw_input = _shape(model.inputs[0])
    sources = {id(model.inputs[0]): _Source(MODEL_INPUT, raw_input)}
    hw_layers, folded = [], []
    input_shape = raw_input
    for layer in model.layers:
        if len(getattr(layer, "_inbound_nodes", [])) > 1:
            problems.append(
                f"Layer '{layer.name}' is used {len(layer._inbound_nodes)} times; every call "
                f"needs its own weights on the device. Create one layer instance per use.")
        if isinstance(layer, keras.layers.InputLayer):
            folded.append(layer.name)
            continue
        inputs, outputs = _as_list(layer.input), _as_list(layer.output)
        srcs = [sources.get(id(t)) for t in inputs]
        if any(s is None for s in srcs):
            problems.append(f"Layer '{layer.name}' takes an input the tracer cannot follow.")
            srcs = [s or _Source(MODEL_INPUT, _shape(t)) for s, t in zip(srcs, inputs)]
        src = srcs[0]
        if isinstance(layer, FOLDED_LAYERS):
            folded.append(layer.name)
            out = _shape(outputs[0])
            if isinstance(layer, keras.layers.Flatten):
                new = _Source(src.index, out, flatten_from=src.flatten_from or src.shape)
            elif isinstance(layer, keras.layers.Reshape):
                if src.index == MODEL_INPUT:
                    input_shape = out  # a reshape of the model input is just the input layout
                    new = _Source(MODEL_INPUT, out)
                else:
                    new = _Source(src.index, out, reshaped_from=src.reshaped_from or src.shape)
                    if out[-1] != src.shape[-1] and len(out) > 1:
                        problems.append(
                            f"Reshape '{layer.name}' changes the channel count "
                            f"({src.shape} -> {out}); the device can only relabel the length "
                            f"of each channel (keep the last dimension).")
            else:
                new = dataclasses.replace(src, shape=out)
            sources[id(outputs[0])] = new
            continue
        op = _op_name(layer)
        hw = HwLayer(
            index=len(hw_layers), layer=layer, op=op,
            inputs=tuple(s.index for s in srcs),
            in_shape=src.shape, out_shape=_shape(outputs[0]),
            flatten_from=src.flatten_from if op == "linear" else None,
            reshaped_from=src.reshaped_from)
        if op == "unsupported":
            hw.problems.append(_unsupported_reason(layer))
        elif src.flatten_from is not None and op != "linear":
            hw.problems.append(f"Layer '{layer.name}' follows a Flatten; only a Dense layer "
                               f"can take a flattened input on the device.")
        hw_layers.append(hw)
        sources[id(outputs[0])] = _Source(hw.index, hw.out_shape)
    out_srcs = [sources.get(id(t)) for t in model.outputs]
    output_index = max((s.index for s in out_srcs if s is not None), default=len(hw_layers) - 1)
    if len(out_srcs) > 1:
        _mark_outputs(model, out_srcs, hw_layers, problems)
    if any(hw.op == "concat" for hw in hw_layers):
        from ai8x_nb.concat_layout import concat_layout

        hw_layers, output_index = concat_layout(hw_layers, output_index)
    if any(hw.op in ELTWISE_OPS or hw.interleaves for hw in hw_layers) and all(hw.is_hardware for hw in hw_layers):
        from ai8x_nb.eltwise_layout import eltwise_layout

        hw_layers, output_index = eltwise_layout(hw_layers, output_index)
    outputs = sorted((hw.model_output, hw.index) for hw in hw_layers
                     if hw.model_output is not None)
    output_indices = tuple(i for _, i in outputs) if len(outputs) > 1 else None
    if output_indices:
        output_index = max(output_indices)
    return ModelGraph(hw_layers, input_shape, raw_input, output_index, folded, problems,
                      output_indices)


def _mark_outputs(model, out_srcs, hw_layers, problems):
    """Mark the layers producing a model's several outputs (`HwLayer.model_output`)."""
    seen = set()
    for position, (src, tensor) in enumerate(zip(out_srcs, model.outputs)):
        if src is None or src.index == MODEL_INPUT:
            problems.append(f"Output {position} of model '{model.name}' is not a layer's "
                            f"output; every output of a model with several outputs is a "
                            f"hardware layer's.")
            continue
        hw = hw_layers[src.index]
        if src.index in seen:
            problems.append(f"Layer '{hw.name}' is output {position} of model '{model.name}' "
                            f"and an earlier one too; list each output once.")
            continue
        seen.add(src.index)
        if src.flatten_from is not None or src.reshaped_from is not None \
                or tuple(src.shape) != tuple(hw.out_shape):
            problems.append(f"Output {position} of model '{model.name}' is a Flatten or "
                            f"Reshape of layer '{hw.name}'; with several outputs each is a "
                            f"layer's own output (the device writes it in that layout). "
                            f"Return '{hw.name}' itself.")
        if hw.op in ELTWISE_OPS or hw.op == "concat":
            problems.append(f"Layer '{hw.name}' ({type(hw.layer).__name__}) is output "
                            f"{position} of model '{model.name}'; with several outputs the "
                            f"outputs are convolution, linear or pooling layers. Add a layer "
                            f"after it.")
        hw.model_output = position


def shape_size(shape):
    """The number of values of a shape: the product of its dimensions (1 for `()`)."""
    return int(math.prod(int(v) for v in shape))
