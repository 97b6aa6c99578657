"""One process of the distributed-training test (`tests/test_distribute.py`).

`python tests/distribute_job.py '<json>'` trains a small BatchNorm model on an MNIST subset
(float epochs, then QAT) with `ai8x_nb.training.train` in the modes the JSON lists, and
writes what the parent compares to `<out>/<mode>.json`: the per-epoch history, the integer
weights, biases and output shifts of `ai8x_nb.quantize.convert`, and the SHA-256 of the
synthesis checkpoint `export_model` writes.

The devices must exist before TensorFlow or JAX starts, so this runs in its own process:
`{"logical_cpus": 2}` splits the CPU into two TensorFlow logical devices; under JAX the parent
sets `XLA_FLAGS=--xla_force_host_platform_device_count=2`.

Modes (a `_bn` suffix trains the model with BatchNorm in two layers):
    single: one device.
    mirrored: `distribute="mirrored"`, all epochs in one call.
    mirrored_resume: `distribute="mirrored"`, stopped after `stop` epochs, then continued to
        the end by a second `train` call on the same run folder that passes no `distribute`
        (the run's saved value must be used).
    multiworker: `distribute="multiworker"` (TF_CONFIG set by the parent; `"tag"` names
        this worker's report).
    multiworker_resume: the same, stopped after `stop` epochs, then continued from worker 0's
        run folder by a second call without `distribute` on every worker.
    cli: `ai8x-nb train --model mnist --distribute mirrored` for one epoch on 64 samples,
        then `ai8x-nb train --run-dir RUN --epochs 2` (reports the run's distribute).
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

ARGS = json.loads(sys.argv[1])

if ARGS.get("logical_cpus"):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(ARGS["logical_cpus"]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ai8x_nb import datasets  # noqa: E402
from ai8x_nb import layers as L  # noqa: E402
from ai8x_nb.export import export_model  # noqa: E402
from ai8x_nb.quantize import convert, hardware_layers, is_qat  # noqa: E402
from ai8x_nb.training import train  # noqa: E402
from ai8x_nb.training.distribute import make_distribution  # noqa: E402

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def build_model(batch_norm=False):
    """Three convolutions and a wide linear layer; with `batch_norm`, two have BatchNorm
    (folded at the QAT switch)."""
    keras.utils.set_random_seed(3)
    bn = "affine" if batch_norm else None
    inputs = keras.Input((28, 28), name="input")
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = L.Conv2D(8, 3, padding=1, activation="relu", batch_norm=bn, name="conv1")(x)
    x = L.Conv2D(12, 3, padding=1, activation="relu", batch_norm=bn, pooling="max",
                 pool_size=2, name="conv2")(x)
    x = L.Conv2D(8, 3, padding=1, activation="relu", pooling="avg", pool_size=2,
                 name="conv3")(x)
    x = keras.layers.Flatten()(x)
    outputs = L.Dense(10, wide=True, name="fc")(x)
    return keras.Model(inputs, outputs, name="dist")


def run(mode, out):
    ds = datasets.load("mnist", data_dir=ARGS["data_dir"], limit=ARGS["limit"])
    common = dict(epochs=ARGS["epochs"], batch_size=ARGS["batch_size"], lr=ARGS["lr"],
                  optimizer=ARGS["optimizer"],
                  schedule="constant", seed=11, verbose=0,
                  qat_policy={"start_epoch": ARGS["qat_start"], "weight_bits": 8})
    run_dir = out / mode
    kind = mode.removesuffix("_bn")
    model = build_model(batch_norm=mode.endswith("_bn"))
    if kind == "single":
        result = train(model, ds, run_dir=run_dir, **common)
    elif kind in ("mirrored", "multiworker"):
        result = train(model, ds, run_dir=run_dir, distribute=kind, **common)
    elif kind in ("mirrored_resume", "multiworker_resume"):
        distribute = kind.removesuffix("_resume")
        train(model, ds, run_dir=run_dir, distribute=distribute,
              **{**common, "epochs": ARGS["stop"]})
        if distribute == "multiworker":
            _wait_for_the_chief(run_dir)
        result = train(None, ds, run_dir=run_dir, **common)  # the run's distribute
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    model = result.model
    assert is_qat(model), "the returned model is the QAT checkpoint"
    folded = [layer.batch_norm_folded for layer in hardware_layers(model)
              if layer.batch_norm is not None]
    qmodel = convert(model)
    ints = {}
    for layer in qmodel.layers:
        ints[f"{layer.name}/weights"] = np.asarray(layer.weights).tolist()
        if layer.bias is not None:
            ints[f"{layer.name}/bias"] = np.asarray(layer.bias).tolist()
        ints[f"{layer.name}/output_shift"] = int(layer.output_shift)
    tag = mode + ARGS.get("tag", "")  # several workers of one cluster share `out`
    export = out / f"{tag}-export"
    export_model(model, export, dataset=ds, targets=("synthesis",), name="dist",
                 epoch=ARGS["epochs"], eval_limit=32)
    checkpoint = export / "dist-q.pth.tar"
    report = {
        "mode": mode,
        "history": {k: result.history.get(k) for k in HISTORY_KEYS},
        "config_distribute": result.run_dir.config.get("distribute"),
        "run_dir": str(result.run_dir.path),
        "integers": ints,
        "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "replicas": _replicas(),
        "batch_norm_folded": folded,
    }
    (out / f"{tag}.json").write_text(json.dumps(report))


def _wait_for_the_chief(run_dir, timeout=600):
    """Let worker 0 finish its run folder before another worker resumes from it.

    A resume happens after a stop, when every worker has finished; here the second `train`
    call follows at once, and worker 1 must not copy the folder while worker 0 still writes
    it.
    """
    results = run_dir / "results.json"
    deadline = time.monotonic() + timeout
    while not results.is_file():
        if time.monotonic() > deadline:
            raise SystemExit(f"worker 0 wrote no {results} in {timeout} s")
        time.sleep(0.2)


def run_cli(out):
    """`ai8x-nb train --distribute mirrored`, then a resume by `--run-dir` alone."""
    from ai8x_nb.cli import main

    folder = out / "cli"
    common = ["--data-dir", ARGS["data_dir"], "--limit", "64", "--schedule", "constant"]
    code = main(["train", "--model", "mnist", "--batch_size", "32", "--epochs", "1",
                 "--distribute", "mirrored", "--out", str(folder), *common])
    assert code == 0, code
    (run_dir,) = folder.iterdir()
    assert main(["train", "--run-dir", str(run_dir), "--epochs", "2", *common]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    history = (run_dir / "history.csv").read_text().strip().splitlines()
    report = {"config_distribute": config["distribute"], "epochs": len(history) - 1,
              "replicas": _replicas()}
    (out / "cli.json").write_text(json.dumps(report))


def _replicas():
    if keras.backend.backend() == "jax":
        import jax

        return len(jax.devices())
    import tensorflow as tf

    return len(tf.config.list_logical_devices("CPU"))


if __name__ == "__main__":
    if any(mode.startswith("multiworker") for mode in ARGS["modes"]):
        # TensorFlow joins a cluster before its first operation (building the model is one).
        make_distribution("multiworker")
    folder = Path(ARGS["out"])
    folder.mkdir(parents=True, exist_ok=True)
    for name in ARGS["modes"]:
        if name == "cli":
            run_cli(folder)
        else:
            run(name, folder)
    os._exit(0)  # skip TensorFlow's slow teardown of the collective runtime
