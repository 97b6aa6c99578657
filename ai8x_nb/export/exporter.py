"""`export_model` / `export_run`: orchestrate the targets into one atomic export folder."""

import logging
import shlex
from pathlib import Path

import numpy as np

from ai8x_nb.modelio.inputs import (model_device, model_input_shape, predict, to_model_input,
                                    top1_accuracy)
from ai8x_nb.datasets import to_float
from ai8x_nb.devices import get_device
from ai8x_nb.errors import ExportError
from ai8x_nb.export import package, samples, savedmodel, synthesis_checkpoint, synthesis_yaml
from ai8x_nb.export import tflite as tfl
from ai8x_nb.export import tflite_micro as micro
from ai8x_nb.export.tool_command import tool_arguments, wants_softmax

__all__ = ["TARGETS", "export_model", "export_run", "ai8xize_command"]

logger = logging.getLogger(__name__)

TARGETS = ("savedmodel", "onnx", "synthesis", "tflite", "tflite_int8")
"""Valid export targets."""

SAVED_MODEL = "saved_model"
FLOAT_ONNX = "saved_model.onnx"
TFLITE_FLOAT = "model_float.tflite"
TFLITE_INT8 = "model_int8.tflite"
PORTABLE_SAVED_MODEL = "portable_saved_model"
"""The portable form's SavedModel, converted to TFLite and then removed."""
MICRO_CHECK_SAMPLES = 32
"""Test samples run through TFLite Micro and compared with LiteRT at export."""
SAMPLE_INPUT = "sampledata.npy"
SAMPLE_OUTPUT = "sampleoutput.npy"
SAMPLE_OUTPUTS = "sampleoutputs.npz"
"""Every output of a model with several (`layer<i>`: channel-first), for the known answer."""
SAMPLE_LAYERS = "samplelayers.npz"
"""Every hardware layer's output for the sample (`synthesize(..., trace=True)`)."""
COMMAND_FILE = "ai8xize_command.txt"


def ai8xize_command(name, device, export_dir, *, out=None, softmax=True, fifo=False,
                    deduplicate=True):
    """The synthesis command for an export folder, to run from the tool's own folder.

    Args:
        name: the export name (`--prefix`, `<name>-q.pth.tar`, `<name>.yaml`).
        device: device name.
        export_dir: the export folder (made absolute).
        out: the `--test-dir` the tool writes the C project into; default `<export_dir>/sdk`.
        softmax: ask for the C project's softmax (`--softmax`; only for one wide score per
            class, see `ai8x_nb.export.tool_command.wants_softmax`).
        fifo: load the input through the FIFOs (`--fifo`): the model has streaming layers.
        deduplicate: False adds `--no-deduplicate-weights` (depthwise models, see
            `ai8x_nb.export.tool_command.depthwise`).

    Returns:
        The shell command line as a string: `cd` into `$AI8X_SYNTHESIS_DIR`, then the
        tool with the environment's Python (`$AI8X_SYNTHESIS_PYTHON`, else `python`).
    """
    export_dir = Path(export_dir).resolve()
    args = tool_arguments(
        prefix=name, device=get_device(device).name,
        checkpoint=export_dir / synthesis_checkpoint.checkpoint_name(name),
        config=export_dir / f"{name}.yaml", sample=export_dir / SAMPLE_INPUT,
        test_dir=Path(out).resolve() if out else export_dir / "sdk", verbose=False,
        softmax=softmax, fifo=fifo, deduplicate=deduplicate)
    return ('cd "${AI8X_SYNTHESIS_DIR:?set AI8X_SYNTHESIS_DIR to your ai8x-synthesis folder}" '
            '&& "${AI8X_SYNTHESIS_PYTHON:-python}" ' + " ".join(shlex.quote(a) for a in args))


def _check_targets(targets):
    if isinstance(targets, str):
        targets = [t for t in targets.replace(",", " ").split() if t]
    targets = [str(t).lower() for t in targets]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ExportError(f"Unknown export target(s) {unknown or targets!r}; valid targets are "
                          f"{', '.join(TARGETS)}.")
    return [t for t in TARGETS if t in targets]


def _check_summary(report):
    return {"ok": bool(report.ok), "errors": list(report.errors),
            "warnings": list(report.warnings),
            "totals": {k: (v.item() if hasattr(v, "item") else v)
                       for k, v in dict(getattr(report, "totals", {}) or {}).items()},
            # Per hardware layer: cycles and operations as the synthesis tool counts them.
            "layers": [{"name": r.name, "op": r.op, "cycles": int(r.cycles),
                        **{k: int(getattr(r, k)) for k in ("macc", "comp", "add", "mul",
                                                           "bitwise")}}
                       for r in getattr(report, "rows", [])]}


def export_model(model, out_dir, *, dataset=None, name=None, device=None, sample_index=0,
                 sample=None, targets=None, representative_samples=100, eval_limit=None, epoch=0,
                 run_dir=None, _force_synthesis=False):
    """Export a trained model to every target into one folder.

    Args:
        model: a built `keras.Model` made of `ai8x_nb.layers` (trained, possibly with QAT).
        out_dir: the export folder to create (replaced atomically if it exists).
        dataset: an `ai8x_nb.datasets.Dataset`; its test split gives the synthesis sample and
            the accuracies, its training split the TFLite int8 representative samples.
            Without it the sample is random and no accuracy is measured.
        name: export name (synthesis prefix, `arch`); default: the model name.
        device: "MAX78000" / "MAX78002"; default: the device of the model's layers.
        sample_index: test sample used for `sampledata.npy`.
        sample: an explicit sample for `sampledata.npy` instead (the model's input layout,
            integers in [-128, 127]), e.g. the vendor's own sample of an imported network.
        targets: any of `TARGETS` ("savedmodel", "onnx", "synthesis", "tflite",
            "tflite_int8"); a string may list them separated by commas. None (default):
            every target the running Keras backend can write; the others are listed in
            `manifest.skipped` with the reason. Targets named explicitly are all written, or
            refused up front.
        representative_samples: training samples used to calibrate the int8 TFLite model.
        eval_limit: evaluate accuracies on at most this many test samples (None: all).
        epoch: the training epoch of the weights, stored in the synthesis checkpoint.
        run_dir: the training run folder the model comes from, recorded in the manifest
            (`export_run` fills it in).

    Returns:
        The `Manifest` (also written as `manifest.json`).

    Raises:
        ExportError: unknown target, a target the running Keras backend cannot write
            (checked first, see `savedmodel.check_backend`), or a target failed (nothing is
            left behind then).

    Example:

    >>> manifest = export_model(model, "export/mnist", dataset=ds)  # doctest: +SKIP
    >>> manifest.path("synthesis_yaml")  # doctest: +SKIP
    PosixPath('export/mnist/mnist.yaml')
    """
    backend_skipped = {}
    if targets is None:
        backend_skipped = savedmodel.backend_limits(model, TARGETS)
        targets = [t for t in TARGETS if t not in backend_skipped]
    targets = _check_targets(targets)
    savedmodel.check_backend(model, targets)
    dev = get_device(device) if device is not None else model_device(model)
    name = str(name or model.name)
    out_dir = Path(out_dir)
    manifest = package.Manifest(name=name, device=dev.name,
                                dataset=getattr(dataset, "name", None))
    if run_dir is not None:
        manifest.run_dir = str(Path(run_dir).resolve())
    manifest.versions = _versions()
    for target, reason in backend_skipped.items():
        manifest.skipped[target] = (f"{reason} Export it with KERAS_BACKEND=tensorflow (the "
                                    f".keras file loads there unchanged).")
    test_x = test_y = None
    if dataset is not None:
        split = dataset.test.head(eval_limit) if eval_limit else dataset.test
        test_x, test_y = to_model_input(model, split.x), split.y
        manifest.evaluated_samples = int(len(test_y))
        manifest.accuracy["keras_float"] = top1_accuracy(predict(model, to_float(test_x)),
                                                         test_y)
    with package.staging_folder(out_dir) as tmp:
        if "synthesis" in targets:
            _export_synthesis(model, tmp, manifest, dev, sample_index, test_x, test_y,
                              sample=sample, epoch=epoch, final_dir=out_dir, force=_force_synthesis)
        if "onnx" in targets:
            check = _check_inputs(model, test_x)
            diff = savedmodel.export_float_onnx(model, tmp / FLOAT_ONNX, check)
            manifest.artifacts["onnx"] = FLOAT_ONNX
            manifest.details["onnx_max_abs_diff"] = diff
        if "savedmodel" in targets:
            savedmodel.export_savedmodel(model, tmp / SAVED_MODEL)
            manifest.artifacts["savedmodel"] = SAVED_MODEL
        if {"tflite", "tflite_int8"} & set(targets):
            _export_tflite(model, tmp, manifest, targets, dataset, representative_samples,
                           test_x, test_y)
        manifest.finished = package.now_iso()
        manifest.save(tmp)
    manifest.folder = out_dir
    logger.info("exported '%s' to %s: %s", name, out_dir, ", ".join(manifest.artifacts))
    return manifest


def _versions():
    import keras
    import tensorflow as tf

    return {"keras": keras.__version__, "keras_backend": keras.backend.backend(),
            "tensorflow": tf.__version__}


def _check_inputs(model, test_x, count=8):
    if test_x is not None and len(test_x):
        return to_float(test_x[:count])
    shape = model_input_shape(model)
    rng = np.random.default_rng(0)
    return to_float(rng.integers(-128, 128, size=(count,) + shape))


def _export_synthesis(model, tmp, manifest, dev, sample_index, test_x, test_y, *, epoch,
                      final_dir, force=False, sample=None):
    from ai8x_nb.check import check_model

    report = check_model(model, dev)
    manifest.check = _check_summary(report)
    # `force` (tests only) writes the package anyway, to ask the synthesis tool itself.
    if not report.ok and not force:
        reason = (f"The model cannot run on {dev.name}; synthesis package not written.\n"
                  f"{report}")
        logger.warning(reason)
        manifest.skipped["synthesis"] = reason
        return
    from ai8x_nb.quantize import convert
    from ai8x_nb.simulate import simulate

    qmodel = convert(model)
    name = manifest.name
    weights_file = synthesis_checkpoint.checkpoint_name(name)
    synthesis_checkpoint.write_checkpoint(qmodel, tmp / weights_file, arch=name,
                                          epoch=epoch)
    _, warnings = synthesis_yaml.write_network_yaml(
        qmodel, tmp / f"{name}.yaml", arch=name,
        dataset=(manifest.dataset or name).upper(), device=dev)
    manifest.warnings.extend(warnings)
    if not any(getattr(l.layer, "qat", False) for l in qmodel.graph.layers):
        manifest.warnings.append(
            "The model was not trained with QAT; the synthesis weights are post-training "
            "quantized and may lose accuracy (see integer_simulation accuracy).")
    # The sample: one test sample (or a seeded random one without a dataset).
    graph = qmodel.graph
    if sample is not None:
        raw, label = np.asarray(sample, dtype=np.int64), None
    elif test_x is not None:
        if not 0 <= sample_index < len(test_x):
            raise ExportError(f"sample_index={sample_index} is outside the evaluated test "
                              f"split (0..{len(test_x) - 1}); pass a smaller index.")
        raw = np.asarray(test_x[sample_index], dtype=np.int64)
        label = int(test_y[sample_index])
    else:
        rng = np.random.default_rng(sample_index)
        raw = rng.integers(-128, 128, size=graph.raw_input_shape).astype(np.int64)
        label = None
        manifest.warnings.append("No dataset given: sampledata.npy is a seeded random input.")
    x_in = samples.sample_input(raw, graph)
    samples.save_npy(tmp / SAMPLE_INPUT, x_in)
    y_outs = samples.sample_outputs(qmodel, raw.reshape(graph.raw_input_shape), simulate)
    y_out = y_outs[graph.output_index]
    samples.save_npy(tmp / SAMPLE_OUTPUT, y_out)
    if graph.several_outputs:
        np.savez(tmp / SAMPLE_OUTPUTS, **{f"layer{i}": y for i, y in y_outs.items()})
        manifest.artifacts["sample_outputs"] = SAMPLE_OUTPUTS
    samples.sample_layers(qmodel, raw.reshape(graph.raw_input_shape), tmp / SAMPLE_LAYERS)

    command = ai8xize_command(name, dev.name, final_dir,
                              softmax=wants_softmax(getattr(graph.layers[-1].layer, "wide", False),
                                                    y_out.shape),
                              fifo=any(hw.streaming for hw in graph.layers),
                              deduplicate=not any(getattr(hw.layer, "groups", 1) > 1
                                                  for hw in graph.layers))
    (tmp / COMMAND_FILE).write_text(command + "\n")
    manifest.ai8xize_command = command
    manifest.artifacts.update({
        "synthesis_weights": weights_file, "synthesis_yaml": f"{name}.yaml",
        "sample_input": SAMPLE_INPUT, "sample_output": SAMPLE_OUTPUT,
        "sample_layers": SAMPLE_LAYERS, "ai8xize_command": COMMAND_FILE})
    manifest.sample = {"index": int(sample_index) if test_x is not None and sample is None
                       else None,
                       "label": label, "input_shape": list(x_in.shape),
                       "output_shape": list(y_out.shape),
                       "integer_prediction": int(np.argmax(y_out.reshape(-1)))}
    if test_x is not None and not graph.several_outputs:
        y_int = simulate(qmodel, np.asarray(test_x, dtype=np.int64))
        manifest.accuracy["integer_simulation"] = top1_accuracy(y_int, test_y)


def _export_tflite(model, tmp, manifest, targets, dataset, representative_samples, test_x,
                   test_y):
    from ai8x_nb.export.portable import portable_model

    try:
        plain = portable_model(model)
    except ExportError as err:
        for target in ("tflite", "tflite_int8"):
            if target in targets:
                manifest.skipped[target] = str(err)
        logger.warning("TFLite targets skipped: %s", err)
        return
    saved = tmp / PORTABLE_SAVED_MODEL
    tfl.export_portable_savedmodel(model, saved, plain)
    try:
        if "tflite" in targets:
            tfl.convert_float(saved, tmp / TFLITE_FLOAT)
            manifest.artifacts["tflite"] = TFLITE_FLOAT
            if test_x is not None:
                manifest.accuracy["tflite_float"] = tfl.evaluate_tflite(
                    tmp / TFLITE_FLOAT, to_float(test_x), test_y)
        if "tflite_int8" in targets:
            _export_tflite_int8(model, tmp, manifest, dataset, representative_samples,
                                test_x, test_y)
    finally:
        import shutil

        shutil.rmtree(saved, ignore_errors=True)


def _export_tflite_int8(model, tmp, manifest, dataset, representative_samples, test_x,
                        test_y):
    if dataset is None:
        manifest.skipped["tflite_int8"] = (
            "Full-int8 TFLite needs real representative samples; export with dataset=.")
        logger.warning(manifest.skipped["tflite_int8"])
        return
    train_x = to_model_input(model, dataset.train.x[:representative_samples])
    tfl.convert_int8(tmp / PORTABLE_SAVED_MODEL, tmp / TFLITE_INT8, to_float(train_x))
    manifest.artifacts["tflite_int8"] = TFLITE_INT8
    io = tfl.tflite_io_details(tmp / TFLITE_INT8)
    manifest.details["tflite_int8_io"] = io
    manifest.details["tflite_int8_representative_samples"] = int(len(train_x))
    if test_x is not None:
        manifest.accuracy["tflite_int8"] = tfl.evaluate_tflite(
            tmp / TFLITE_INT8, to_float(test_x), test_y)
    _check_tflite_micro(model, tmp, manifest, io, test_x)


def _check_tflite_micro(model, tmp, manifest, io, test_x, samples=MICRO_CHECK_SAMPLES):
    """TFLite Micro loads the int8 model and agrees with LiteRT; write the ESP32-S3 files."""
    if not micro.micro_available():
        manifest.skipped[micro.FIRMWARE_FOLDER] = (
            "TFLite Micro is not installed, so the int8 model was not checked in the "
            "microcontroller runtime; pip install tflite-micro.")
        return
    if test_x is not None and len(test_x):
        x = to_float(test_x[:samples])
    else:
        x = _check_inputs(model, None, samples)
    quantized = tfl.quantize_input(x, io["input"])
    report = micro.micro_report(tmp / TFLITE_INT8, quantized)
    outputs = report.pop("outputs", None)
    if report["loads"]:
        litert = tfl.predict_tflite(tmp / TFLITE_INT8, x, reference=True).astype(np.int64)
        diff = np.abs(litert - outputs.astype(np.int64))
        report.update({"checked_samples": int(len(x)),
                       "outputs_equal_litert": int(np.sum(np.all(
                           diff.reshape(len(x), -1) == 0, axis=1))),
                       "max_abs_diff_litert": int(diff.max()) if diff.size else 0,
                       "top1_equal_litert": int(np.sum(
                           np.argmax(litert.reshape(len(x), -1), 1)
                           == np.argmax(outputs.reshape(len(x), -1), 1)))})
    manifest.details["tflite_micro"] = report
    problems = []
    if not report["loads"]:
        problems.append(f"TFLite Micro cannot load it: {report['error']}")
    if report["float_tensors"]:
        problems.append("it holds float tensors between ops (float islands): "
                        + ", ".join(report["float_tensors"][:5]))
    if problems:
        reason = (f"The int8 TFLite model of '{manifest.name}' is not microcontroller-clean: "
                  + "; ".join(problems) + ". Ops: " + ", ".join(report["ops"]) + ".")
        manifest.skipped[micro.FIRMWARE_FOLDER] = reason
        manifest.warnings.append(reason)
        logger.warning(reason)
        return
    files = micro.write_firmware_files(
        tmp / TFLITE_INT8, tmp / micro.FIRMWARE_FOLDER, name=manifest.name,
        arena_bytes=report["arena_bytes"], input_details=io["input"])
    report.update(files)
    manifest.artifacts[micro.FIRMWARE_FOLDER] = micro.FIRMWARE_FOLDER


def export_run(run_dir, out=None, **kwargs):
    """Export the model of a training run folder.

    Args:
        run_dir: a run folder (`ai8x_nb.runs.RunDir`): its best (QAT) model, dataset and
            device are used.
        out: the export folder; default `export/<run folder name>/`.
        **kwargs: passed to `export_model` (targets, sample_index, eval_limit, dataset, ...).

    Returns:
        The `Manifest`.

    Example:

    >>> export_run("logs/20250101-120000-mnist", targets=("synthesis",))  # doctest: +SKIP
    """
    from ai8x_nb.runs import RunDir

    run = RunDir(run_dir)
    config = run.config
    model = run.load_model(compile=False)
    if "dataset" not in kwargs:
        # A folder of your own that changed since training: a warning, not a refusal.
        kwargs["dataset"] = run.load_dataset(on_folder_change="warn")
    kwargs.setdefault("device", config.get("device"))
    kwargs.setdefault("epoch", int((run.state or {}).get("epochs_completed", 0)))
    out = Path(out) if out is not None else Path("export") / run.path.name
    kwargs.setdefault("run_dir", run.path)
    return export_model(model, out, **kwargs)
