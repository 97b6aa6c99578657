"""Continuing runs: kill-and-resume is bit-identical, first-epoch restarts, conflicts, locks."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from ai8x_nb.datasets.pipeline import epoch_order, make_epoch_dataset
from ai8x_nb.runs import RunDir, RunDirError
from ai8x_nb.training import TrainingError, train

from support import SHARED_DATA as DATA
from support import keras_file_weights

pytestmark = pytest.mark.usefixtures("mnist_data")

# A small model with Dropout: its random masks must also repeat after a resume.
TINY = textwrap.dedent("""
    import keras
    from ai8x_nb import layers

    def build_tiny():
        keras.utils.set_random_seed(7)
        inp = keras.Input((28, 28, 1))
        x = layers.Conv2D(8, 3, padding=1, activation="relu")(inp)
        x = keras.layers.Dropout(0.3)(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(inp, layers.Dense(10, wide=True)(x), name="tiny")
""")
RUN = dict(epochs=3, batch_size=64, seed=5, schedule="cosine", verbose=0,
           data_dir=str(DATA), dataset_kwargs={"limit": 256})


def _tiny():
    scope = {}
    exec(TINY, scope)  # noqa: S102 - the same source the killed subprocess runs
    return scope["build_tiny"]()


def _history(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "epoch_time"} for row in csv.DictReader(f)]


def _train_killed_in_epoch_1(run_dir, settings, model="build_tiny()", dataset="mnist"):
    """Train `model` (Python source: the tiny model, or a seed model's name) on `dataset` into
    `run_dir` in a subprocess that os._exit(17)s (no clean-up) after the 2nd batch of epoch 1."""
    script = TINY + textwrap.dedent(f"""
        import os
        from ai8x_nb.training import train

        class Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 1:
                    os._exit(17)

        train({model}, {dataset!r}, run_dir={str(run_dir)!r}, callbacks=[Kill()], **{settings!r})
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 17, proc.stderr[-3000:]


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = epoch_order(5, 2, 100)
    assert sorted(a.tolist()) == list(range(100))
    assert np.array_equal(a, epoch_order(5, 2, 100))
    assert not np.array_equal(a, epoch_order(5, 3, 100))
    assert not np.array_equal(a, epoch_order(6, 2, 100))


def test_epoch_dataset_starts_anywhere_with_the_same_batches(mnist_small):
    split = mnist_small.train.head(40)
    whole = [y.numpy() for _, y in make_epoch_dataset(split, 16, seed=3, first_epoch=0, epochs=3)]
    tail = [y.numpy() for _, y in make_epoch_dataset(split, 16, seed=3, first_epoch=1, epochs=3)]
    assert len(whole) == 9 and len(tail) == 6  # 3 batches per epoch, the last one of 8
    assert all(np.array_equal(a, b) for a, b in zip(whole[3:], tail))
    assert np.array_equal(np.concatenate(whole[:3]), split.y[epoch_order(3, 0, 40)])


@pytest.fixture(scope="module")
def mnist_small():
    from ai8x_nb import datasets

    return datasets.load("mnist", DATA, limit=256)


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
    """A run killed (os._exit, no clean-up) in its 2nd epoch, resumed from --run-dir alone."""
    killed = tmp_path / "killed"
    _train_killed_in_epoch_1(killed, RUN)
    assert RunDir(killed).state["epochs_completed"] == 1
    # The killed process held the run's lock: the OS released it, the resume may go on.
    from ai8x_nb.cli import main

    assert main(["train", "--run-dir", str(killed)]) == 0

    whole = train(_tiny(), "mnist", run_dir=tmp_path / "whole", **RUN)
    resumed = RunDir(killed)
    for name in ("last.keras", "best.keras"):
        a = keras_file_weights(whole.run_dir.file(name))
        b = keras_file_weights(resumed.file(name))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    assert _history(whole.run_dir.file("history.csv")) == _history(resumed.file("history.csv"))
    assert whole.run_dir.results["test_accuracy"] == resumed.results["test_accuracy"]
    assert whole.run_dir.results["confusion_matrix"] == resumed.results["confusion_matrix"]
    assert resumed.config["epochs"] == 3 and resumed.results["epochs_completed"] == 3


@pytest.mark.slow
def test_run_stopped_in_its_first_epoch_restarts_from_run_dir_alone(tmp_path, capsys):
    from ai8x_nb.cli import main

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt  # in epoch 0: no checkpoint, no state.json yet

    settings = dict(RUN, epochs=2)
    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        train("mnist", "mnist", run_dir=stopped, callbacks=[Stop()], **settings)
    run = RunDir(stopped)
    assert run.is_run and run.state is None and not run.can_resume
    assert main(["train", "--run-dir", str(stopped)]) == 0  # no --dataset needed
    assert "test accuracy:" in capsys.readouterr().out
    whole = train("mnist", "mnist", run_dir=tmp_path / "whole", **settings)
    a = keras_file_weights(whole.run_dir.file("last.keras"))
    b = keras_file_weights(run.file("last.keras"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [r["epoch"] for r in _history(run.file("history.csv"))] == ["0", "1"]


def test_an_existing_empty_folder_gets_a_new_run(tmp_path):
    (tmp_path / "run").mkdir()
    result = train("mnist", "mnist", epochs=1, run_dir=tmp_path / "run", verbose=0,
                   data_dir=str(DATA), dataset_kwargs={"limit": 32})
    assert result.run_dir.path == tmp_path / "run" and result.run_dir.results is not None


@pytest.fixture
def one_epoch_run(tmp_path):
    return train("mnist", "mnist", epochs=1, run_dir=tmp_path / "run", verbose=0,
                 data_dir=str(DATA), dataset_kwargs={"limit": 64}).run_dir


@pytest.mark.slow
def test_resume_with_other_settings_is_refused_per_flag(one_epoch_run):
    from ai8x_nb.cli import main

    before = one_epoch_run.file("history.csv").read_text()
    with pytest.raises(TrainingError, match=r"dataset='fashionmnist' \(the run has 'mnist'\)"
                                            r".*lr=0\.5 \(the run has 0\.001\)"):
        train(dataset_or_name="fashionmnist", run_dir=one_epoch_run.path, epochs=2, lr=0.5)
    with pytest.raises(TrainingError, match=r"limit=32 \(the run has 64\)"):
        train(run_dir=one_epoch_run.path, epochs=2, dataset_kwargs={"limit": 32})
    code = main(["train", "--run-dir", str(one_epoch_run.path), "--dataset", "fashionmnist",
                 "--lr", "0.5", "--epochs", "2"])
    assert code == 2
    # The same values as the run's are not conflicts, and nothing was trained above.
    assert one_epoch_run.file("history.csv").read_text() == before
    assert main(["train", "--run-dir", str(one_epoch_run.path), "--dataset", "MNIST",
                 "--model", "mnist_model", "--optimizer", "Adam", "--epochs", "2"]) == 0
    assert one_epoch_run.results["epochs_completed"] == 2
    with pytest.raises(TrainingError, match="already completed 2 epochs"):
        train(run_dir=one_epoch_run.path, epochs=1)


@pytest.mark.slow
def test_concurrent_resume_is_refused(one_epoch_run, capsys):
    """Another process holds the run folder: a second resume must not touch it."""
    from ai8x_nb.cli import main

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ai8x_nb._lock import FolderLock; "
         f"lock = FolderLock({str(one_epoch_run.file('.lock'))!r}).acquire(); "
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = {p.name: p.read_bytes() for p in one_epoch_run.path.iterdir() if p.is_file()}
        with pytest.raises(RunDirError, match=rf"in use by another process \(pid {holder.pid}"):
            train(run_dir=one_epoch_run.path, epochs=2, verbose=0)
        assert main(["train", "--run-dir", str(one_epoch_run.path), "--epochs", "2"]) == 2
        assert "in use by another process" in capsys.readouterr().err
        after = {p.name: p.read_bytes() for p in one_epoch_run.path.iterdir() if p.is_file()}
        assert after == before  # history, state and checkpoints untouched
    finally:
        holder.kill()
        holder.wait()
    assert json.loads(one_epoch_run.file("results.json").read_text())["epochs_completed"] == 1


@pytest.mark.slow
def test_fast_recipe_killed_and_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
    """Augmented batches, weight decay, label smoothing and the QAT switch all resume exactly."""
    fast = {**RUN, "recipe": "fast", "qat_policy": "default"}
    killed = tmp_path / "killed"
    _train_killed_in_epoch_1(killed, fast)
    assert RunDir(killed).state["epochs_completed"] == 1
    resumed = train(None, None, epochs=3, run_dir=killed, data_dir=str(DATA), verbose=0)

    whole = train(_tiny(), "mnist", run_dir=tmp_path / "whole", **fast)
    assert whole.run_dir.config["recipe"] == "fast"
    assert whole.run_dir.config["qat_policy"]["start_epoch"] == 2  # the last fifth, >= 1 epoch
    for name in ("last.keras", "best.keras", "qat_best.keras"):
        a = keras_file_weights(whole.run_dir.file(name))
        b = keras_file_weights(resumed.run_dir.file(name))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    assert _history(whole.run_dir.file("history.csv")) == _history(resumed.run_dir.file("history.csv"))
    assert whole.run_dir.results["test_accuracy"] == resumed.run_dir.results["test_accuracy"]


@pytest.mark.slow
def test_fast_recipe_with_dataset_settings_resumes_bit_for_bit(tmp_path):
    """Fashion-MNIST's own settings (BatchNorm in the float phase, no augmentation, QAT for
    the last half) are applied again on resume: killed in the first QAT epoch, after the
    BatchNorm fold, the resumed run equals an uninterrupted one."""
    fashion = {**RUN, "epochs": 2, "recipe": "fast", "qat_policy": "default"}
    killed = tmp_path / "killed"
    _train_killed_in_epoch_1(killed, fashion, model="'fashionmnist'", dataset="fashionmnist")
    resumed = train(None, None, epochs=2, run_dir=killed, data_dir=str(DATA), verbose=0)

    whole = train("fashionmnist", "fashionmnist", run_dir=tmp_path / "whole", **fashion)
    assert whole.run_dir.config["qat_policy"]["start_epoch"] == 1  # the last half
    assert "recipe_settings" not in whole.run_dir.config  # the registered recipe, by name
    float_weights = keras_file_weights(whole.run_dir.file("best.keras"))
    assert any("batch_normalization" in key or "/bn" in key for key in float_weights), (
        sorted(float_weights)[:8])
    for name in ("last.keras", "best.keras", "qat_best.keras"):
        a = keras_file_weights(whole.run_dir.file(name))
        b = keras_file_weights(resumed.run_dir.file(name))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    assert _history(whole.run_dir.file("history.csv")) == _history(resumed.run_dir.file("history.csv"))


@pytest.mark.slow
def test_resume_with_another_recipe_is_refused(one_epoch_run):
    with pytest.raises(TrainingError, match=r"recipe='fast' \(the run has 'seed'\)"):
        train(run_dir=one_epoch_run.path, epochs=2, recipe="fast", verbose=0)
