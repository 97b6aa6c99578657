"""Training pipeline: run folders, test-split results, resume after a kill, QAT, the CLI."""

import csv
import json
import logging
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from ai8x_nb import datasets
from ai8x_nb.runs import RunDir, new_run_dir
from ai8x_nb.training import TrainingError, make_optimizer, train
from ai8x_nb.training.progress import auto_verbose

from support import SHARED_DATA as DATA

LIMIT = 512

pytestmark = pytest.mark.usefixtures("mnist_data")


def _quantize_or_skip():
    try:
        from ai8x_nb import quantize
        quantize.QATCallback, quantize.load_policy  # noqa: B018
    except (ImportError, AttributeError) as err:
        pytest.skip(f"ai8x_nb.quantize not available yet ({err})")
    return quantize


@pytest.fixture(scope="module")
def mnist():
    return datasets.load("mnist", DATA, limit=LIMIT)


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train("mnist", mnist, epochs=1, out=out, verbose=0,
                 dataset_kwargs={"data_dir": str(DATA), "limit": LIMIT})


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_folder_contents(trained):
    run = trained.run_dir
    assert run.path.name.endswith("-mnist")
    names = set(os.listdir(run.path))
    assert {"config.json", "best.keras", "last.keras", "state.json", "history.csv",
            "results.json", "tensorboard"} <= names
    assert any((run.path / "tensorboard").rglob("events.out.tfevents.*"))
    assert not any(n.endswith(".tmp") or ".tmp." in n for n in names)
    config = run.config
    assert config["dataset"] == "mnist" and config["model"] == "mnist"
    assert config["dataset_kwargs"] == {"data_dir": str(DATA), "limit": LIMIT}
    assert (config["batch_size"], config["lr"], config["optimizer"]) == (256, 1e-3, "adam")
    assert config["epochs"] == 1 and config["qat_policy"] is None
    assert json.loads((run.path / "state.json").read_text())["epochs_completed"] == 1
    rows = _csv_rows(run.path / "history.csv")
    assert [r["epoch"] for r in rows] == ["0"]
    assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(rows[0])


def test_results_are_on_the_test_split(trained, mnist):
    results = trained.run_dir.results
    assert {"test_accuracy", "test_loss", "confusion_matrix", "class_names", "checkpoint"} <= set(
        results)
    cm = np.asarray(results["confusion_matrix"])
    assert cm.shape == (10, 10)
    # Row sums are the label counts of the TEST split (not the validation split).
    assert np.array_equal(cm.sum(axis=1), np.bincount(mnist.test.y, minlength=10))
    assert not np.array_equal(cm.sum(axis=1), np.bincount(mnist.valid.y, minlength=10))
    assert results["test_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert trained.test_accuracy == pytest.approx(results["test_accuracy"])
    assert np.array_equal(trained.confusion_matrix, cm)
    assert results["checkpoint"] == "best.keras"
    assert trained.class_names == mnist.class_names == results["class_names"]
    # Independent recomputation from the returned model.
    x = datasets.to_float(mnist.test.x)
    pred = np.argmax(trained.model.predict(x, verbose=0), axis=1)
    assert np.mean(pred == mnist.test.y) == pytest.approx(results["test_accuracy"])
    assert trained.history["epoch"] == [0]


def test_rundir_reopens_model_and_dataset(trained):
    run = RunDir(trained.run_dir.path)
    assert run.model_path().name == "best.keras"
    model = run.load_model()
    x = datasets.to_float(trained.run_dir.load_dataset(limit=4).test.x)  # dataset layout (N, 28, 28, 1)
    assert np.allclose(model.predict(x, verbose=0), trained.model.predict(x, verbose=0))
    ds = run.load_dataset(limit=10)
    assert ds.name == "mnist" and len(ds.train) == 10


def test_new_run_dir_names_and_never_reuses(tmp_path):
    a, b = new_run_dir(tmp_path, "my model"), new_run_dir(tmp_path, "my model")
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()
    assert a.path.name[:15].replace("-", "").isdigit() and a.path.name.endswith("my_model")


def test_resume_after_kill_loses_and_repeats_no_epoch(tmp_path):
    run_dir = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, keras
        from ai8x_nb.training import train

        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    os._exit(17)

        train("mnist", "mnist", epochs=2, run_dir={str(run_dir)!r}, verbose=0,
              data_dir={str(DATA)!r}, dataset_kwargs={{"limit": 256}}, callbacks=[Kill()])
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 17, proc.stderr[-2000:]
    run = RunDir(run_dir)
    assert run.can_resume and run.state["epochs_completed"] == 1
    assert run.results is None
    before = _csv_rows(run_dir / "history.csv")
    assert [r["epoch"] for r in before] == ["0"]

    result = train(run_dir=run_dir, epochs=2, verbose=0)
    rows = _csv_rows(run_dir / "history.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert rows[0] == before[0]  # epoch 0 was not redone
    assert result.history["epoch"] == [0, 1]
    assert run.state["epochs_completed"] == 2
    # The optimizer state came back: Adam's step counter covers both epochs (1 batch each).
    last = run.load_model("last.keras")
    assert int(last.optimizer.iterations) == 2
    assert run.results["test_samples"] == 256


def test_qat_run_writes_qat_best(mnist, tmp_path):
    _quantize_or_skip()
    result = train("mnist", mnist, epochs=2, out=tmp_path, verbose=0,
                   qat_policy={"start_epoch": 1, "weight_bits": 8})
    run = result.run_dir
    assert run.file("best.keras").is_file() and run.file("qat_best.keras").is_file()
    assert run.model_path().name == "qat_best.keras"
    assert run.results["checkpoint"] == "qat_best.keras"
    assert run.config["qat_policy"]["start_epoch"] == 1
    reloaded = run.load_model()
    assert any(getattr(l, "qat", False) for l in reloaded.layers)
    float_model = run.load_model("best.keras")
    assert not any(getattr(l, "qat", False) for l in float_model.layers)


def test_qat_start_epoch_that_does_not_fit_is_clamped(caplog):
    _quantize_or_skip()
    from ai8x_nb.training.plan import resolve_policy

    with caplog.at_level(logging.WARNING):
        policy = resolve_policy({"start_epoch": 30, "weight_bits": 8}, 2)
    assert policy.start_epoch == 1
    assert "start_epoch=30" in caplog.text
    assert resolve_policy({"start_epoch": 3, "weight_bits": 8}, 10).start_epoch == 3


def test_cli_train_saves_a_channel_first_sample(tmp_path, capsys):
    from ai8x_nb.cli import main

    code = main(["train", "--dataset", "mnist", "--epochs", "1", "--limit", "256", "--out",
                 str(tmp_path), "--save-sample", "0", "--channel-first", "--data-dir", str(DATA)])
    assert code == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    sample = np.load(folder / "sample_mnist_0.npy")
    assert sample.shape == (1, 28, 28) and sample.dtype == np.int64
    assert sample.min() >= -128 and sample.max() <= 127
    ds = datasets.load("mnist", DATA, limit=1)
    assert np.array_equal(sample[0], ds.test.x[0, :, :, 0])
    out = capsys.readouterr().out
    assert str(folder) in out and "test accuracy:" in out


def test_bad_arguments_raise_named_errors(mnist):
    with pytest.raises(TrainingError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", 1e-3)
    sgd = make_optimizer("sgd", 0.01)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    with pytest.raises(TrainingError, match=r"shape \(32, 32, 3\).*\(28, 28, 1\)"):
        train("cifar10", mnist, epochs=1, out="unused-never-created")
    with pytest.raises(TrainingError, match="epochs=0 is invalid: expected an int >= 1"):
        train("mnist", mnist, epochs=0)


def test_ready_model_keeps_its_device(mnist, tmp_path, caplog):
    from ai8x_nb.models import get_model

    model = get_model("mnist", device="MAX78000")
    with pytest.raises(TrainingError, match=r"device='MAX78002'.*built for MAX78000.*"
                                            r"device=None"):
        train(model, mnist, epochs=1, device="MAX78002", out=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()
    plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.training"):
        from ai8x_nb.training.assemble import plan_device

        assert plan_device(plain, "MAX78002") == "MAX78002"
    assert "train(device='MAX78002') is ignored" in caplog.text


def test_verbose_is_one_line_per_epoch_headless(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert auto_verbose() == 2
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys, "stdout", open(os.devnull, "w"))
    assert auto_verbose() == 2


def test_cosine_schedule_curve():
    from ai8x_nb.models.schedules import CosineSchedule

    s = CosineSchedule(2e-3, epochs=3, warmup_epochs=0.5, steps_per_epoch=10)
    rates = [s.rate(step) for step in range(30)]
    assert rates[:5] == pytest.approx([4e-4, 8e-4, 1.2e-3, 1.6e-3, 2e-3])  # linear warm-up
    assert max(rates) == pytest.approx(2e-3) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))  # then never rises
    assert rates[5 + 12] == pytest.approx(1e-3)  # decay over steps 5..29: half way at 17
    with pytest.raises(ValueError, match="warmup_epochs=3"):
        CosineSchedule(1e-3, epochs=3, warmup_epochs=3)
    with pytest.raises(ValueError, match="steps per epoch"):
        CosineSchedule(1e-3, epochs=3).rate(0)


def test_schedule_names_and_errors():
    from ai8x_nb import models
    from ai8x_nb.models.schedules import CosineSchedule
    from ai8x_nb.training import make_schedule

    info = models.get_info("mnist")
    assert isinstance(make_schedule("seed", info, 1e-3, 3), keras.callbacks.ReduceLROnPlateau)
    assert isinstance(make_schedule("auto", info, 1e-3, 3), keras.callbacks.ReduceLROnPlateau)
    assert isinstance(make_schedule("cosine", info, 1e-3, 3), CosineSchedule)
    assert make_schedule("constant", info, 1e-3, 3) is None
    with pytest.raises(TrainingError, match="schedule='linear'.*'cosine'"):
        make_schedule("linear", info, 1e-3, 3)
    with pytest.raises(TrainingError, match="warmup_epochs=5"):
        make_schedule("cosine", info, 1e-3, 3, warmup_epochs=5)


def test_cosine_run_resumes_on_the_same_curve(mnist, tmp_path):
    from ai8x_nb.models.schedules import CosineSchedule

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # after last.keras + state.json of epoch 0 are written

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("mnist", mnist, epochs=3, run_dir=run_dir, verbose=0, schedule="cosine",
              warmup_epochs=0.5, lr=2e-3, callbacks=[Stop()],
              dataset_kwargs={"data_dir": str(DATA), "limit": LIMIT})
    assert RunDir(run_dir).state["epochs_completed"] == 1
    assert RunDir(run_dir).config["schedule"] == "cosine"
    result = train(run_dir=run_dir, epochs=3, verbose=0)
    steps = -(-len(mnist.train) // 256)
    curve = CosineSchedule(2e-3, epochs=3, warmup_epochs=0.5, steps_per_epoch=steps)
    logged = [float(r["learning_rate"]) for r in _csv_rows(run_dir / "history.csv")]
    assert logged == pytest.approx([curve.rate(e * steps + steps - 1) for e in range(3)],
                                   rel=1e-5, abs=1e-9)
    assert result.history["epoch"] == [0, 1, 2]


def test_cli_train_accepts_a_schedule(tmp_path):
    from ai8x_nb.cli import main

    code = main(["train", "--dataset", "mnist", "--epochs", "2", "--limit", "256", "--out",
                 str(tmp_path), "--schedule", "cosine", "--warmup-epochs", "0.5",
                 "--data-dir", str(DATA)])
    assert code == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    config = json.loads((folder / "config.json").read_text())
    assert config["schedule"] == "cosine" and config["warmup_epochs"] == 0.5
    rates = [float(r["learning_rate"]) for r in _csv_rows(folder / "history.csv")]
    assert rates[0] > rates[1] and rates[1] == pytest.approx(0.0, abs=1e-9)
