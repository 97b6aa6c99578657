"""Data-parallel training: `train(distribute=...)` / `ai8x-nb train --distribute`.

The checks of the setting run in this process. Training runs in subprocesses
(`tests/distribute_job.py`), because the devices must be made before TensorFlow or JAX
starts: two logical CPUs for TensorFlow, `--xla_force_host_platform_device_count=2` for JAX,
and two worker processes on localhost ports (a `TF_CONFIG` cluster) for the multi-worker
strategy. Each trains a small MNIST model (512 samples per split, batch 64) for three epochs,
float then QAT, with SGD; the distributed runs must give the single-device run's loss curve
within float tolerance (`LOSS_RTOL`) and the same exported integers (weights, biases,
output shifts) and synthesis checkpoint, byte for byte. A distributed run stopped after two
epochs and continued by a second `train` call (which must use the run's saved `distribute`)
must give the same too, on two logical CPUs and on the two workers (which resume from worker
0's folder). `ai8x-nb train --distribute mirrored` runs and resumes by `--run-dir`
in the same process.

A BatchNorm model is trained too (the QAT switch folds BatchNorm under the strategy). Under
JAX it must match one device like the others. On TensorFlow it must fold and train, but its
curve is not compared: Keras' synchronized BatchNorm computes the variance as
E[x^2] - E[x]^2, which loses digits against the one-device formula, and the runs drift apart
by a few percent within three epochs (see `ai8x_nb.training.distribute`).

Plain SGD keeps rounding differences at rounding size; Adam divides by the root of tiny
second moments and can blow a 1e-7 difference up to 1e-4 within an epoch, which would test
Adam, not the distribution.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from ai8x_nb import parameters
from ai8x_nb.cli import build_parser
from ai8x_nb.runs import RunDir
from ai8x_nb.training import TrainingError, train
from ai8x_nb.training import cluster
from ai8x_nb.training import distribute as dist

from support import SHARED_DATA as DATA

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
JOB = TESTS / "distribute_job.py"

RUN = {"data_dir": str(DATA), "limit": 512, "epochs": 3, "batch_size": 64, "qat_start": 1,
       "stop": 2, "lr": 0.05, "optimizer": "sgd"}
"""The runs of every training job: 512 samples per split, float epoch 0, QAT epochs 1-2."""

LOSS_RTOL = 1e-5
"""Largest relative difference of a distributed run's per-epoch losses from one device's."""

JOB_TIMEOUT = 900

needs_mnist = pytest.mark.usefixtures("mnist_data")


# ----------------------------------------------------------------- the setting, in process
def test_distribute_values_are_checked():
    assert dist.check_distribute(None) is None
    assert dist.check_distribute(" Mirrored ") == "mirrored"
    assert dist.check_distribute("MULTIWORKER") == "multiworker"
    with pytest.raises(parameters.ParameterError,
                       match=r"distribute='horovod' is invalid: expected one of 'mirrored', "
                             r"'multiworker' or None: None: one device; 'mirrored'"):
        dist.check_distribute("horovod")
    with pytest.raises(parameters.ParameterError, match="distribute=2 is invalid"):
        dist.check_distribute(2)


def test_train_refuses_a_bad_distribute_before_making_a_folder(tmp_path):
    with pytest.raises(TrainingError, match="distribute='gpu' is invalid"):
        train("mnist", epochs=1, distribute="gpu", out=tmp_path)
    assert list(tmp_path.iterdir()) == []


WORKERS = {"worker": ["localhost:1111", "localhost:2222"]}


@pytest.mark.parametrize("config, message", [
    (None, r"needs the TF_CONFIG environment variable, which is not set.*index 0 on the first"),
    ("{cluster", r"TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', r"TF_CONFIG has no 'cluster' mapping"),
    ({"cluster": {**WORKERS, "ps": ["localhost:3333"]}, "task": {"type": "worker", "index": 0}},
     r"task type\(s\) 'ps'; MultiWorkerMirroredStrategy trains with 'worker'"),
    ({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}},
     r"cluster\['worker'\]=\['localhost'\] is invalid: expected a list of 'host:port'"),
    ({"cluster": WORKERS}, r"has no 'task' mapping"),
    ({"cluster": WORKERS, "task": {"type": "chief", "index": 0}},
     r"task type 'chief' is invalid: expected one of \['worker'\]"),
    ({"cluster": WORKERS, "task": {"type": "worker", "index": 2}},
     r"task index 2 is invalid: the cluster has 2 worker\(s\), so expected 0..1"),
])
def test_tf_config_errors_name_the_field_and_the_fix(config, message):
    text = config if config is None or isinstance(config, str) else json.dumps(config)
    with pytest.raises(dist.DistributeError, match=message):
        cluster.parse_tf_config(text)


def test_tf_config_chief_is_the_chief_task_or_worker_zero():
    def parse(config):
        return cluster.parse_tf_config(json.dumps(config))

    first = parse({"cluster": WORKERS, "task": {"type": "worker", "index": 0}})
    assert first["chief"] and first["num_workers"] == 2
    assert not parse({"cluster": WORKERS, "task": {"type": "worker", "index": 1}})["chief"]
    with_chief = {"cluster": {**WORKERS, "chief": ["localhost:4444"]}}
    assert parse({**with_chief, "task": {"type": "chief", "index": 0}})["chief"]
    assert not parse({**with_chief, "task": {"type": "worker", "index": 0}})["chief"]
    assert parse({**with_chief, "task": {"type": "chief"}})["num_workers"] == 3


def test_multiworker_without_tf_config_is_refused():
    with pytest.raises(dist.DistributeError, match="needs the TF_CONFIG environment variable"):
        dist.make_distribution("multiworker", environ={})


def test_backends_that_cannot_distribute_are_named(monkeypatch):
    monkeypatch.setattr(dist, "_backend", lambda: "torch")
    with pytest.raises(dist.DistributeError, match=r"distribute='mirrored' is not available on "
                       r"the Keras backend 'torch'.*KERAS_BACKEND=tensorflow or jax"):
        dist.make_distribution("mirrored")
    monkeypatch.setattr(dist, "_backend", lambda: "jax")
    with pytest.raises(dist.DistributeError, match=r"'multiworker' is not available under "
                       r"KERAS_BACKEND=jax.*distribute='mirrored' \(DataParallel"):
        dist.make_distribution("multiworker")


def test_batches_must_split_evenly_over_the_replicas():
    tf_two = dist.Distribution("mirrored", "tensorflow", engine=None, replicas=2)
    with pytest.raises(dist.DistributeError, match=r"batch_size=63 is invalid with "
                       r"distribute='mirrored': .* over 2 replicas.* Pass batch_size=62 or 64"):
        tf_two.check_batches(63, {"train": 512})
    tf_two.check_batches(64, {"train": 501})  # tf.distribute splits an uneven last batch
    jax_two = dist.Distribution("mirrored", "jax", engine=None, replicas=2)
    jax_two.check_batches(64, {"train": 512, "validation": 0})
    with pytest.raises(dist.DistributeError, match=r"The validation split has 501 samples: "
                       r"under JAX.* last batch of 53 samples cannot be.* limit=500"):
        jax_two.check_batches(64, {"train": 512, "validation": 501})


def test_a_resume_keeps_the_runs_distribute():
    assert dist.resume_distribute({"distribute": "mirrored"}, None) == "mirrored"
    assert dist.resume_distribute({}, None) is None
    with pytest.raises(dist.DistributeError, match=r"distribute='mirrored' differs from the "
                       r"run's distribute=None.*Drop distribute"):
        dist.resume_distribute({"distribute": None}, "mirrored")


def test_a_non_chief_worker_writes_a_scratch_copy(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config({"epochs": 2})
    worker = dist.Distribution("multiworker", "tensorflow", None, 2, chief=False,
                               worker="worker:1")
    # The chief's new run (no epoch saved yet): the worker starts its own, in scratch.
    fresh, out = cluster.worker_run(worker, run, tmp_path / "logs")
    assert fresh.path.parent == Path(out) and fresh.path.name == "run"
    assert not fresh.exists and Path(out).parent == scratch
    # A run with a saved epoch: the worker resumes from a copy of the chief's folder.
    (run.path / "last.keras").write_bytes(b"model")
    (run.path / "state.json").write_text('{"epochs_completed": 1}')
    (run.path / ".lock").write_text("chief")
    copy, out = cluster.worker_run(worker, run, tmp_path / "logs")
    assert copy.path.parent == Path(out) and copy.path != run.path
    assert copy.config == {"epochs": 2} and copy.state == {"epochs_completed": 1}
    assert not (copy.path / ".lock").exists()
    chief = dist.Distribution("multiworker", "tensorflow", None, 2, worker="worker:0")
    assert cluster.worker_run(chief, run, "logs") == (run, "logs")
    assert cluster.worker_run(None, None, "logs") == (None, "logs")


def test_cli_and_notebook_take_distribute(capsys):
    from ai8x_nb.cli import main

    args = build_parser().parse_args(["train", "--model", "mnist", "--distribute", "Mirrored"])
    assert args.distribute == "mirrored"
    assert main(["train", "--distribute", "horovod"]) == 2
    assert "error: distribute='horovod' is invalid" in capsys.readouterr().err
    assert parameters.get_parameter("distribute").default is None
    spec = [{"type": "flatten"}]
    for value in (None, "mirrored", "MultiWorker"):
        parameters.check_parameters({**parameters.defaults(), "model_spec": spec,
                                     "distribute": value})
    with pytest.raises(parameters.ParameterError, match="distribute='gpu' is invalid"):
        parameters.check_parameters({**parameters.defaults(), "model_spec": spec,
                                     "distribute": "gpu"})


# ------------------------------------------------------------------ training, in subprocesses
def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return env


def _start(out, modes, env, **args):
    job = {**RUN, "out": str(out), "modes": list(modes), **args}
    return subprocess.Popen([sys.executable, str(JOB), json.dumps(job)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, what):
    try:
        output, _ = proc.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"{what} did not finish in {JOB_TIMEOUT} s:\n{output[-4000:]}")
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{output[-6000:]}"


def _reports(out, names):
    return {name: json.loads((out / f"{name}.json").read_text()) for name in names}


def _loss_difference(single, other):
    """The largest relative difference of the per-epoch losses (train and validation)."""
    worst = 0.0
    for key in ("loss", "val_loss"):
        a, b = np.asarray(single["history"][key]), np.asarray(other["history"][key])
        assert a.shape == b.shape == (RUN["epochs"],), (key, a, b)
        worst = max(worst, float(np.max(np.abs(b - a) / np.abs(a))))
    return worst


def _assert_same_run(single, other, name):
    difference = _loss_difference(single, other)
    assert difference <= LOSS_RTOL, (
        f"{name}: losses differ from one device's by up to {difference:.2e} (relative); "
        f"one device {single['history']}, {name} {other['history']}")
    for key in ("accuracy", "val_accuracy"):
        np.testing.assert_allclose(other["history"][key], single["history"][key], rtol=0,
                                   atol=1.5 / RUN["limit"], err_msg=f"{name} {key}")
    assert other["integers"].keys() == single["integers"].keys()
    for key, value in single["integers"].items():
        assert other["integers"][key] == value, f"{name}: exported {key} differs"
    assert other["checkpoint_sha256"] == single["checkpoint_sha256"], (
        f"{name}: the synthesis checkpoint differs from one device's")
    return difference


def _report_line(capsys, text):
    with capsys.disabled():
        print(f"\n[test_distribute] {text}")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
@needs_mnist
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="starts its TensorFlow subprocesses from the TensorFlow session")
def test_tensorflow_strategies_train_as_one_device(tmp_path, capsys):
    """MirroredStrategy on 2 logical CPUs and a 2-worker cluster on localhost vs one device."""
    start = time.monotonic()
    local = _start(tmp_path, ["single", "mirrored_resume", "mirrored_bn", "cli"], _env(),
                   logical_cpus=2)
    _finish(local, "the single-device and mirrored runs")
    ports = _free_ports(2)
    scratch = tmp_path / "scratch"  # worker 1's copy of the run, kept out of the system /tmp
    scratch.mkdir()
    addresses = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for i in range(2):
        task = json.dumps({"cluster": addresses, "task": {"type": "worker", "index": i}})
        workers.append(_start(tmp_path, ["multiworker_resume"],
                              _env(TMPDIR=str(scratch), TF_CONFIG=task), tag=f"-{i}"))
    for i, proc in enumerate(workers):
        _finish(proc, f"multi-worker worker {i}")
    seconds = time.monotonic() - start

    runs = _reports(tmp_path, ["single", "mirrored_resume", "mirrored_bn",
                               "multiworker_resume-0", "multiworker_resume-1"])
    single = runs["single"]
    assert runs["mirrored_resume"]["replicas"] == 2
    differences = {name: _assert_same_run(single, runs[name], name)
                   for name in ("mirrored_resume", "multiworker_resume-0",
                                "multiworker_resume-1")}
    for name in ("mirrored_resume", "mirrored_bn", "multiworker_resume-0"):
        assert runs[name]["config_distribute"] == name.split("_")[0]
    # Worker 0 wrote the run folder; worker 1 trained the same steps into a scratch copy,
    # and resumed from a copy of worker 0's folder.
    assert runs["multiworker_resume-0"]["run_dir"] == str(tmp_path / "multiworker_resume")
    assert Path(runs["multiworker_resume-1"]["run_dir"]).parent.parent == scratch
    # The command line: --distribute mirrored, then a resume by --run-dir that keeps it.
    cli = json.loads((tmp_path / "cli.json").read_text())
    assert cli == {"config_distribute": "mirrored", "epochs": 2, "replicas": 2}
    # BatchNorm: synchronized, folded at the QAT switch under the strategy, then trained on
    # in QAT (its curve is compared with one device's under JAX, where it is exact).
    bn = runs["mirrored_bn"]
    assert bn["batch_norm_folded"] == [True, True]
    assert bn["history"]["val_loss"][-1] < 0.7 * bn["history"]["val_loss"][0], bn["history"]
    _report_line(capsys, "TensorFlow: max relative loss difference from one device: " + ", ".join(
        f"{name} {value:.1e}" for name, value in differences.items())
        + f"; integers and synthesis checkpoint equal; BatchNorm model trains and folds under "
          f"MirroredStrategy; {seconds:.0f} s")


@pytest.mark.slow
@needs_mnist
def test_jax_data_parallel_trains_as_one_device(tmp_path, capsys):
    """keras.distribution.DataParallel over 2 host devices vs one device, under JAX."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        pytest.skip('jax is not installed; pip install -e ".[jax]"')
    start = time.monotonic()
    # XLA aborts a collective that waits 40 s for a device thread; on a loaded CI machine
    # the two host "devices" (threads) can drift further apart than that.
    env = _env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2 "
               "--xla_cpu_collective_call_terminate_timeout_seconds=600")
    modes = ["single_bn", "mirrored_resume_bn"]
    proc = _start(tmp_path, modes, env)
    _finish(proc, "the JAX runs")
    seconds = time.monotonic() - start
    runs = _reports(tmp_path, modes)
    distributed = runs["mirrored_resume_bn"]
    assert distributed["replicas"] == 2 and distributed["config_distribute"] == "mirrored"
    # One global program: BatchNorm sees the global batch as on one device.
    difference = _assert_same_run(runs["single_bn"], distributed, "mirrored_resume_bn")
    assert distributed["batch_norm_folded"] == [True, True]
    _report_line(capsys, f"JAX DataParallel (BatchNorm model, stopped and resumed): max "
                         f"relative loss difference from one device {difference:.1e}; integers "
                         f"and synthesis checkpoint equal; {seconds:.0f} s")


def test_the_keras_private_members_of_multiworker_training_are_there(monkeypatch):
    """The one module that swaps Keras private members fails loudly when Keras changes them."""
    from ai8x_nb.training import keras_private

    keras_private.check_keras_private()  # Keras as installed: every member, same parameters
    monkeypatch.setattr(keras.Model, "_maybe_symbolic_build", None)
    monkeypatch.setattr(keras.Model, "_flatten_layers", lambda self, recursive=True: [])
    with pytest.raises(keras_private.KerasPrivateError,
                       match=rf"Keras {keras.__version__} changed .*_maybe_symbolic_build is "
                             r"gone; .*_flatten_layers takes \('self', 'recursive'\)"):
        keras_private.check_keras_private()
