"""Float vs fake-quantized vs integer accuracy of a model, side by side.

`evaluate_quantized` answers the question QAT exists for: does the model compute the same on
the chip? It measures, on one split, the float view of the weights, the fake-quantized Keras
model and the integer simulation of the converted model, how often the last two agree, and
per layer how often the output clamp saturates.
"""

import dataclasses
import logging
import os
from pathlib import Path

import keras
import numpy as np

from ai8x_nb import _atomic
from ai8x_nb.modelio.inputs import predict, to_model_input
from ai8x_nb.datasets import to_float
from ai8x_nb.errors import QuantizationError
from ai8x_nb.layers import HardwareLayer
from ai8x_nb.quantize.convert import convert
from ai8x_nb.quantize.qat import set_fake_quant
from ai8x_nb.simulate import simulate

__all__ = ["QuantReport", "LayerReport", "evaluate_quantized", "evaluate_run", "predict_samples",
           "REPORT_FILE"]

logger = logging.getLogger(__name__)

REPORT_FILE = "quant_report.json"


@dataclasses.dataclass
class LayerReport:
    """Integer parameters and clamp statistics of one hardware layer.

    Attributes:
        index, name, op: the hardware layer.
        weight_bits, output_shift: as converted (output_shift is the YAML value).
        weight_min, weight_max, bias_min, bias_max: integer ranges (None without them).
        outputs, clipped_low, clipped_high: output values seen / clamped at the bottom / top.
        saturation: fraction of outputs clamped.
        wide: 32-bit output.
    """

    index: int
    name: str
    op: str
    weight_bits: int
    output_shift: int
    weight_min: int = None
    weight_max: int = None
    bias_min: int = None
    bias_max: int = None
    outputs: int = 0
    clipped_low: int = 0
    clipped_high: int = 0
    saturation: float = 0.0
    wide: bool = False


@dataclasses.dataclass
class QuantReport:
    """Accuracy of one model three ways on one split.

    Attributes:
        model_name: the Keras model's name.
        split: the split evaluated ("test", "valid", ...).
        samples: number of samples.
        float_accuracy: the float view (same weights, fake quantization off).
        fake_quant_accuracy: the fake-quantized Keras model (QAT forward pass).
        integer_accuracy: the integer simulation of `convert(model)`.
        argmax_agreement: fraction of samples where fake-quant and integer predict the same class.
        exact_agreement: fraction of samples whose fake-quant outputs, on the integer grid,
            equal the integer outputs exactly.
        layers: a `LayerReport` per hardware layer.
    """

    model_name: str
    split: str
    samples: int
    float_accuracy: float
    fake_quant_accuracy: float
    integer_accuracy: float
    argmax_agreement: float
    exact_agreement: float
    layers: list = dataclasses.field(default_factory=list)

    def to_dict(self):
        """A JSON-able dict (what `quant_report.json` holds)."""
        return dataclasses.asdict(self)

    def __str__(self):
        pct = lambda v: f"{100.0 * v:7.2f} %"  # noqa: E731
        lines = [
            f"Quantization report: model '{self.model_name}', {self.split} split, "
            f"{self.samples} samples",
            f"  float (no quantization)  {pct(self.float_accuracy)}",
            f"  fake-quant (Keras QAT)   {pct(self.fake_quant_accuracy)}",
            f"  integer (device sim.)    {pct(self.integer_accuracy)}",
            f"  fake-quant vs integer: same class {pct(self.argmax_agreement).strip()}, "
            f"identical outputs {pct(self.exact_agreement).strip()}",
            "",
            f"{'#':>3}  {'layer':<18} {'op':<15} {'bits':>4} {'shift':>5} {'w min':>6} "
            f"{'w max':>6} {'b min':>6} {'b max':>6} {'saturated':>10}",
        ]
        dash = lambda v: f"{'-':>6}" if v is None else f"{v:>6}"  # noqa: E731
        for row in self.layers:
            op = row.op + (" wide" if row.wide else "")
            lines.append(
                f"{row.index:>3}  {row.name[:18]:<18} {op:<15} {row.weight_bits:>4} "
                f"{row.output_shift:>5} {dash(row.weight_min)} {dash(row.weight_max)} "
                f"{dash(row.bias_min)} {dash(row.bias_max)} {100.0 * row.saturation:>8.2f} %")
        return "\n".join(lines)


def _split_arrays(dataset, split):
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        return np.asarray(dataset[0]), np.asarray(dataset[1]), split
    part = getattr(dataset, split, None) if not hasattr(dataset, "x") else dataset
    if part is None or not hasattr(part, "x") or not hasattr(part, "y"):
        raise QuantizationError(
            f"evaluate_quantized: cannot read split {split!r} from {type(dataset).__name__}; pass "
            f"an ai8x_nb.datasets.Dataset, one of its splits, or an (x_int, y) tuple.")
    return np.asarray(part.x), np.asarray(part.y), getattr(part, "name", split)


def _output_scale(qmodel):
    """Factor from the Keras output to the integer output (128, or the wide accumulator unit)."""
    last = qmodel.layers[qmodel.graph.output_index]
    layer = last.hw.layer
    if isinstance(layer, HardwareLayer) and layer.has_operator and layer.wide:
        return 128.0 * 2.0 ** (last.weight_bits - 1)
    return 128.0


def _layer_reports(qmodel, stats):
    rows = []
    for ql, st in zip(qmodel.layers, stats):
        layer = ql.hw.layer
        w, b = ql.weights, ql.bias
        rows.append(LayerReport(
            index=ql.hw.index, name=ql.name, op=ql.op, weight_bits=ql.weight_bits,
            output_shift=ql.output_shift,
            weight_min=int(w.min()) if w is not None and w.size else None,
            weight_max=int(w.max()) if w is not None and w.size else None,
            bias_min=int(b.min()) if b is not None and b.size else None,
            bias_max=int(b.max()) if b is not None and b.size else None,
            outputs=st.outputs, clipped_low=st.clipped_low, clipped_high=st.clipped_high,
            saturation=st.saturation, wide=bool(getattr(layer, "wide", False))))
    return rows


def predict_samples(model, x_int, *, batch_size=256):
    """The model's outputs on a dataset's int8 samples, laid out as the model's input.

    A dataset stores MNIST as (28, 28, 1) and a seed or imported model may take (28, 28):
    the samples are reshaped (after a check) and divided by 128 before `model.predict`.

    Args:
        model: a built `keras.Model`.
        x_int: int8 samples, batch first (e.g. `dataset.test.x`).
        batch_size: samples per predict batch.

    Returns:
        The outputs as a float64 array, batch first.

    Example:

    >>> predict_samples(model, dataset.test.x).argmax(-1)  # doctest: +SKIP
    """
    return predict(model, to_float(to_model_input(model, x_int)), batch_size)


def evaluate_quantized(model, dataset, *, split="test", batch_size=256, limit=None):
    """Float, fake-quant and integer accuracy of `model` on one split, side by side.

    The model is not modified: the float and fake-quantized views run on a clone (the float
    view of a QAT-trained model is its folded weights without fake quantization; a float
    model's fake-quant view is post-training quantization with each layer's weight bits).

    Args:
        model: a built model of `ai8x_nb.layers` (float or QAT-trained).
        dataset: an `ai8x_nb.datasets.Dataset`, one `Split`, or an `(x_int, y)` tuple with
            x_int in [-128, 127].
        split: the split of a `Dataset` to use.
        batch_size: batch size of the Keras predictions and the simulator.
        limit: use only the first `limit` samples.

    Returns:
        A `QuantReport`; `str(report)` is a table.

    Raises:
        QuantizationError: a model that cannot be converted.
        ai8x_nb.errors.InputShapeError: data of another shape than the model reads.

    Example:

    >>> report = evaluate_quantized(model, load("mnist"), limit=1000)  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    """
    x_int, y, split_name = _split_arrays(dataset, split)
    if limit is not None:
        x_int, y = x_int[:int(limit)], y[:int(limit)]
    if len(x_int) == 0:
        raise QuantizationError(f"evaluate_quantized: split {split_name!r} has no samples.")
    x_int = to_model_input(model, x_int)
    y = y.reshape(-1).astype(np.int64)
    x_float = to_float(x_int)

    view = keras.models.clone_model(model)
    view.set_weights(model.get_weights())
    set_fake_quant(view, False)
    float_out = predict(view, x_float, batch_size)
    set_fake_quant(view, True)
    fake_out = predict(view, x_float, batch_size)

    qmodel = convert(model)
    int_out, stats = simulate(qmodel, x_int, batch_size=batch_size, return_stats=True)
    fake_int = np.floor(fake_out * _output_scale(qmodel) + 0.5).reshape(int_out.shape)
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    float_pred, fake_pred = flat(float_out).argmax(-1), flat(fake_out).argmax(-1)
    int_pred = flat(int_out).argmax(-1)
    report = QuantReport(
        model_name=model.name, split=split_name, samples=int(len(y)),
        float_accuracy=float(np.mean(float_pred == y)),
        fake_quant_accuracy=float(np.mean(fake_pred == y)),
        integer_accuracy=float(np.mean(int_pred == y)),
        argmax_agreement=float(np.mean(fake_pred == int_pred)),
        exact_agreement=float(np.mean(np.all(flat(fake_int) == flat(int_out), axis=1))),
        layers=_layer_reports(qmodel, stats))
    logger.debug("Quantization report for '%s': float %.4f, fake-quant %.4f, integer %.4f.",
                model.name, report.float_accuracy, report.fake_quant_accuracy,
                report.integer_accuracy)
    return report


def evaluate_run(run_dir, *, split="test", batch_size=256, limit=None, data_dir=None):
    """Evaluate a training run's model quantized and write `quant_report.json` into the run.

    Args:
        run_dir: a run folder (`logs/<time>-<name>/`) or an `ai8x_nb.runs.RunDir`.
        split: the dataset split to use ("test" by default).
        batch_size: prediction / simulation batch size.
        limit: use only the first `limit` samples.
        data_dir: folder of the datasets (default: `AI8X_NB_DATA`, else the folder the run
            was trained with, else ./data).

    Returns:
        The `QuantReport` (also written to `<run_dir>/quant_report.json`).

    Raises:
        QuantizationError: when the model cannot be converted.
        ai8x_nb.runs.RunDirError: not a run folder, or one without a model.
        ai8x_nb.errors.ModelFileError: the run's model file is truncated or corrupt.

    Example:

    >>> print(evaluate_run("logs/20250101-120000-mnist"))  # doctest: +SKIP
    """
    from ai8x_nb.runs import RunDir

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    model = run.load_model()
    # A folder of your own that changed since training is evaluated as it is, with a warning.
    dataset = run.load_dataset(data_dir=data_dir, on_folder_change="warn")
    report = evaluate_quantized(model, dataset, split=split, batch_size=batch_size, limit=limit)
    path = Path(os.fspath(run)) / REPORT_FILE
    _atomic.write_json(path, report.to_dict())
    logger.info("Wrote %s", path)
    return report
