"""Integer conversion: a trained Keras model -> integer weights, 8-bit biases, output shifts.

The integers are computed with the same `keras.ops` expressions as the layers' fake
quantization (`HardwareLayer._call_quantized`), so a QAT model's integer weights are exactly
the ones it trained with. For a model trained without QAT this is post-training quantization:
BatchNorm is folded on a clone, the user's model is left untouched.

Per hardware layer with `bits`-bit weights (ai8x reference, section 3):
`shift = output_shift(W, b)` (or the layer's fixed `output_shift`, e.g. an imported checkpoint's); `W_int = clamp(floor(W * 2^-shift * 2^(bits-1) + 0.5),
-2^(bits-1), 2^(bits-1) - 1)`; `b_int = clamp(floor(b * 2^-shift * 2^(bits-1) + 0.5), -128, 127)`
(the accumulator adds `b_int * 128`); the stored output_shift is `shift` (the YAML value; the
synthesis loader adds `8 - bits` itself). A wide (32-bit) layer stores output_shift 0: the device
keeps its raw accumulator, so the weight scale 2^-shift lives only in its integer weights (the
logits are scaled by a power of two, which leaves the argmax unchanged), and a YAML value of 0 is
right whether or not the synthesis tool applies shifts to 32-bit outputs.
"""

import dataclasses
import logging

import keras
import numpy as np
from keras import ops

from ai8x_nb.errors import QuantizationError
from ai8x_nb.graph import trace_model
from ai8x_nb.layers import HardwareLayer, _ops
from ai8x_nb.quantize.qat import hardware_layers

__all__ = ["QuantizedLayer", "QuantizedModel", "convert"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class QuantizedLayer:
    """One hardware layer in integers.

    Attributes:
        hw: the `graph.HwLayer` (layer, op, shapes, inputs).
        weights: int64 array in the Keras kernel layout ((kh, kw, in, out), (k, in, out) or
            (in, out)), values in [-2^(bits-1), 2^(bits-1) - 1]; None for pooling-only and Add.
        bias: int64 array of [-128, 127] (the accumulator adds `bias * 128`), or None.
        weight_bits: 8, 4, 2 or 1 (1 for binary weights).
        binary: +-1 weights (MAX78002, the YAML's `quantization: bin`).
        output_shift: the layer's shift (YAML value, without the loader's `8 - bits`).
    """

    hw: object
    weights: np.ndarray = None
    bias: np.ndarray = None
    weight_bits: int = 8
    output_shift: int = 0
    binary: bool = False

    @property
    def name(self):
        return self.hw.name

    @property
    def op(self):
        return self.hw.op

    @property
    def total_shift(self):
        """The shift the device applies to the accumulator: `output_shift + 8 - weight_bits`."""
        return self.output_shift + 8 - self.weight_bits


@dataclasses.dataclass
class QuantizedModel:
    """The integer model that `ai8x_nb.simulate` runs and the exporter writes.

    Attributes:
        graph: the `graph.ModelGraph` of the converted Keras model.
        layers: one `QuantizedLayer` per hardware layer, in graph order.
        device: the `Device`.
        output_shape: the Keras model's output shape without batch (a Flatten after the last
            layer only relabels memory).
    """

    graph: object
    layers: list
    device: object
    output_shape: tuple = None

    def __str__(self):
        lines = [f"{'#':>3} {'layer':<20} {'op':<16} {'bits':>4} {'shift':>5} {'w min':>6} "
                 f"{'w max':>6} {'b min':>6} {'b max':>6}"]
        for ql in self.layers:
            w = ql.weights if ql.weights is not None else None
            b = ql.bias if ql.bias is not None and ql.bias.size else None
            fmt = (lambda a, f: f"{int(f(a)):>6}" if a is not None else f"{'-':>6}")
            lines.append(f"{ql.hw.index:>3} {ql.name:<20} {ql.op:<16} {ql.weight_bits:>4} "
                         f"{ql.output_shift:>5} {fmt(w, np.min)} {fmt(w, np.max)} "
                         f"{fmt(b, np.min)} {fmt(b, np.max)}")
        return "\n".join(lines)


def _integer_parameters(layer, shift_quantile):
    """(shift, W_int, b_int) computed exactly as the layer's fake-quantized forward pass."""
    bits = layer.weight_bits
    scale = 2.0 ** (bits - 1)
    bias = layer.bias
    shift = layer.output_shift_tensor(shift_quantile)
    weight_scale = ops.power(2.0, -shift)
    kernel = layer.quantized_kernel(layer.kernel * weight_scale) * scale
    w_int = np.rint(np.asarray(ops.convert_to_numpy(kernel), dtype=np.float64)).astype(np.int64)
    b_int = None
    if bias is not None:
        qbias = _ops.quantize_bias(bias * weight_scale, bits) * scale
        b_int = np.rint(np.asarray(ops.convert_to_numpy(qbias), dtype=np.float64)).astype(np.int64)
    return int(ops.convert_to_numpy(shift)), w_int, b_int


def _needs_fold(model):
    return any(layer.bn is not None and not layer.batch_norm_folded
               for layer in hardware_layers(model))


def _folded_clone(model):
    """A clone of `model` with the same weights and every BatchNorm folded."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for layer in hardware_layers(clone):
        layer.fold_batch_norm()
    return clone


def _raise_if_unsupported(graph, model):
    problems = list(graph.problems)
    for hw in graph.layers:
        problems.extend(hw.problems)
    if problems:
        raise QuantizationError(
            f"Model '{model.name}' cannot be converted to integers: " + " ".join(problems)
            + " Run ai8x_nb.check.check_model(model) for the full report.")


def convert(model, *, ptq_quantile=None):
    """Convert a trained model to integer weights, biases and output shifts.

    Works for a QAT-trained model (the integers are exactly those its fake quantization used)
    and for a float model (post-training quantization: BatchNorm is folded on a clone).

    Args:
        model: a built Sequential or functional model of `ai8x_nb.layers`.
        ptq_quantile: shift quantile for layers that were NOT trained with QAT; None uses each
            layer's own `shift_quantile`. QAT layers always keep the quantile they trained with.

    Returns:
        A `QuantizedModel`.

    Raises:
        QuantizationError: for layers the device cannot run (run `check_model` for details),
            or a shift outside the device's range.

    Example:

    >>> qmodel = convert(model)  # doctest: +SKIP
    >>> qmodel.layers[0].output_shift  # doctest: +SKIP
    -1
    """
    graph = trace_model(model)
    _raise_if_unsupported(graph, model)
    if ptq_quantile is not None and not 0.0 < float(ptq_quantile) <= 1.0:
        raise QuantizationError(
            f"ptq_quantile is {ptq_quantile!r}; it must be in (0, 1] (1.0 = the maximum of |W, b|).")
    work = _folded_clone(model) if _needs_fold(model) else model
    work_layers = dict(zip((id(layer) for layer in hardware_layers(model)), hardware_layers(work)))
    device = None
    qlayers = []
    for hw in graph.layers:
        layer = hw.layer
        if not isinstance(layer, HardwareLayer) or not layer.has_operator:
            qlayers.append(QuantizedLayer(hw=hw, weight_bits=8, output_shift=0))
            device = device or getattr(layer, "device", None)
            continue
        device = device or layer.device
        source = work_layers[id(layer)]
        quantile = source.shift_quantile
        if ptq_quantile is not None and not source.qat:
            quantile = float(ptq_quantile)
        shift, w_int, b_int = _integer_parameters(source, quantile)
        total = shift + 8 - source.weight_bits
        low, high = layer.device.output_shift_range
        if not source.wide and not low <= total <= high:
            raise QuantizationError(
                f"Layer '{layer.name}': output_shift {shift} plus {8 - source.weight_bits} for "
                f"{source.weight_bits}-bit weights is {total}, outside the device range "
                f"[{low}, {high}]. Use more weight bits for this layer or keep its weights smaller "
                f"(weight decay).")
        qlayers.append(QuantizedLayer(hw=hw, weights=w_int, bias=b_int,
                                      weight_bits=source.weight_bits,
                                      output_shift=0 if source.wide else shift,
                                      binary=source.binary_weights))
    output_shape = tuple(model.outputs[0].shape[1:])
    logger.debug("Converted model '%s': %d hardware layers.", model.name, len(qlayers))
    return QuantizedModel(graph=graph, layers=qlayers, device=device, output_shape=output_shape)
