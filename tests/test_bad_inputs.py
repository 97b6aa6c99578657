"""Bad values, corrupt files and wrong folders: a named error (exit 2), never a silent run.

Every case here was a silent wrong run or a raw traceback once: a negative learning rate that
trained, 0 taken as "not given", orphan run folders, "File not found" for a truncated file
that exists, exit 1 (`check`'s "does not fit") for a crash.
"""

import json
import stat
import zipfile

import pytest

from ai8x_nb.modelio.keras_file import load_keras_file
from ai8x_nb.cli import main
from ai8x_nb.errors import DatasetError, ModelFileError
from ai8x_nb.models import get_model
from ai8x_nb.runs import RunDir, RunDirError
from ai8x_nb.training import TrainingError, train

from support import SHARED_DATA as DATA

needs_mnist = pytest.mark.usefixtures("mnist_data")


# ------------------------------------------------------------------ bad values
@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -1}, r"lr=-1 is invalid: expected a finite learning rate > 0"),
    ({"lr": 0}, r"lr=0 is invalid"),
    ({"lr": float("nan")}, r"lr=nan is invalid"),
    ({"batch_size": 0}, r"batch_size=0 is invalid: expected an int >= 1"),
    ({"batch_size": -5}, r"batch_size=-5 is invalid"),
    ({"batch_size": 2.5}, r"batch_size=2.5 is invalid"),
    ({"epochs": 0}, r"epochs=0 is invalid"),
    ({"optimizer": "rmsprop"}, r"optimizer='rmsprop' is invalid: expected one of 'adam', 'sgd'"),
    ({"metrics": ["foo"]}, r"metrics='foo' is invalid: expected a Keras metric name"),
    ({"schedule": "linear"}, r"schedule='linear' is invalid"),
    ({"warmup_epochs": -1}, r"warmup_epochs=-1 is invalid"),
    ({"seed": -3}, r"seed=-3 is invalid"),
    ({"dataset_kwargs": "limit=5"}, r"dataset_kwargs='limit=5' is invalid"),
])
def test_bad_train_values_are_refused_before_any_folder(tmp_path, kwargs, message):
    args = {"epochs": 1, **kwargs}
    with pytest.raises(TrainingError, match=message):
        train("mnist", "mnist", out=tmp_path / "logs", run_dir=None, **args)
    assert not (tmp_path / "logs").exists()


@needs_mnist
def test_zero_limit_and_unusable_metric_are_refused_before_any_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"limit must be a positive int or None, got 0"):
        train("mnist", "mnist", epochs=1, out=tmp_path / "logs", data_dir=DATA,
              dataset_kwargs={"limit": 0})
    with pytest.raises(TrainingError, match=r"metrics='mse' cannot be computed on class labels"):
        train("mnist", "mnist", epochs=1, out=tmp_path / "logs", data_dir=DATA,
              dataset_kwargs={"limit": 8}, metrics=["mse"])
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("flags, message", [
    (["--lr", "-1"], "lr=-1.0 is invalid"),
    (["--batch-size", "0"], "batch_size=0 is invalid"),
    (["--batch_size", "-5"], "batch_size=-5 is invalid"),
    (["--limit", "0"], "limit=0 is invalid: expected an int >= 1"),
    (["--metrics", "foo"], "metrics='foo' is invalid"),
    (["--epochs", "0"], "epochs=0 is invalid"),
    (["--warmup-epochs", "-0.5"], "warmup_epochs=-0.5 is invalid"),
    (["--save-sample", "-1"], "--save-sample=-1 is invalid: expected an int >= 0"),
])
def test_cli_train_bad_values_exit_2_without_a_run_folder(tmp_path, capsys, flags, message):
    code = main(["train", "--dataset", "mnist", "--out", str(tmp_path / "logs"),
                 "--data-dir", str(tmp_path / "no-data"), *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "logs").exists() and not (tmp_path / "no-data").exists()


def test_cli_choice_errors_are_the_tables_errors(capsys):
    assert main(["train", "--dataset", "mnist", "--optimizer", "rmsprop"]) == 2
    assert ("error: optimizer='rmsprop' is invalid: expected one of 'adam', 'sgd' or None"
            in capsys.readouterr().err)


# ----------------------------------------------------------------- corrupt files
def _keras_file_variants(folder):
    """name -> path of a broken .keras file, and the words its error must contain."""
    good = folder / "good.keras"
    get_model("mnist").save(good)
    data = good.read_bytes()
    broken = {
        "garbage": (b"this is not a model at all\n" * 10, "is not a zip archive"),
        "truncated": (data[: len(data) // 2], "is not a zip archive"),
        "empty": (b"", "is empty"),
    }
    out = {}
    for name, (content, words) in broken.items():
        path = folder / f"{name}.keras"
        path.write_bytes(content)
        out[name] = (path, words)
    no_config = folder / "noconfig.keras"
    with zipfile.ZipFile(no_config, "w") as archive:
        archive.writestr("model.weights.h5", b"x")
    out["noconfig"] = (no_config, "without config.json and metadata.json")
    return good, out


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    return _keras_file_variants(tmp_path_factory.mktemp("keras"))


def test_load_keras_file_names_the_file_and_the_problem(keras_files):
    good, broken = keras_files
    assert load_keras_file(good).count_params() == 71158
    for path, words in broken.values():
        with pytest.raises(ModelFileError, match=rf"'{path}' .*{words}.*Save the model again"):
            load_keras_file(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_keras_file(good.parent / "missing.keras")


def test_load_keras_file_uses_safe_mode(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelFileError, match="lambda.keras.*Python lambda"):
        load_keras_file(tmp_path / "lambda.keras")


def test_cli_check_on_a_corrupt_file_exits_2_not_1(keras_files, capsys):
    _, broken = keras_files
    for path, words in broken.values():
        assert main(["check", str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and words in err and "File not found" not in err


def _hand_made_run(folder, *, model_file="best.keras", content=None, state=None):
    folder.mkdir(parents=True)
    config = {"dataset": "mnist", "model": "mnist", "device": "MAX78000", "epochs": 2,
              "batch_size": 16, "optimizer": "adam", "lr": 0.001, "seed": 42,
              "dataset_kwargs": {"data_dir": str(folder.parent / "moved-data"), "limit": 20,
                                 "download": False}}
    (folder / "config.json").write_text(json.dumps(config))
    if content is None:
        get_model("mnist").save(folder / model_file)
    else:
        (folder / model_file).write_bytes(content)
    if state is not None:
        (folder / "state.json").write_text(state)
    return RunDir(folder)


@needs_mnist
def test_cli_evaluate_export_resume_on_a_corrupt_checkpoint_exit_2(tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("AI8X_NB_DATA", str(DATA))
    bad = b"PK\x03\x04 truncated"
    run = _hand_made_run(tmp_path / "run", content=bad)
    for argv in (["evaluate", str(run.path), "--limit", "4"],
                 ["export", str(run.path), "--out", str(tmp_path / "x"), "--targets", "synthesis"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "best.keras" in err and "is not a zip archive" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    resumable = _hand_made_run(tmp_path / "resume", model_file="last.keras", content=bad,
                               state=json.dumps({"epochs_completed": 1}))
    assert main(["train", "--run-dir", str(resumable.path)]) == 2
    assert "last.keras" in capsys.readouterr().err
    with pytest.raises(ModelFileError, match="last.keras"):
        train(run_dir=resumable.path, epochs=2, verbose=0)


@pytest.mark.parametrize("state, words", [
    ("{not json", "state.json' is not readable JSON"),
    ('{"epochs_completed": "two"}', "epochs_completed='two'; expected an int >= 0"),
    ("[1, 2]", "holds a JSON list, expected an object"),
])
def test_bad_state_json_is_named(tmp_path, capsys, state, words):
    run = _hand_made_run(tmp_path / "run", model_file="last.keras", state=state)
    with pytest.raises(RunDirError, match=words.replace("[", r"\[")):
        run.state  # noqa: B018
    assert main(["train", "--run-dir", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "state.json" in err and "Traceback" not in err


def test_bad_config_json_is_named(tmp_path, capsys):
    run = _hand_made_run(tmp_path / "run")
    run.file("config.json").write_text('{"dataset": "mni')
    assert main(["evaluate", str(run.path)]) == 2
    assert "config.json' is not readable JSON" in capsys.readouterr().err


def test_evaluate_and_export_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    for argv in (["evaluate", str(tmp_path / "notes")], ["export", str(tmp_path / "notes")],
                 ["evaluate", str(tmp_path / "missing")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "did not finish an epoch" not in err
        assert "is not a training run folder" in err or "does not exist" in err


# ------------------------------------------------------------------ data folder
@needs_mnist
def test_data_dir_precedence_for_a_moved_data_folder(tmp_path, monkeypatch, capsys):
    run = _hand_made_run(tmp_path / "run")
    monkeypatch.delenv("AI8X_NB_DATA", raising=False)
    with pytest.raises(DatasetError, match="moved-data"):
        run.load_dataset()  # only the saved (moved) path: a named error
    assert not (tmp_path / "moved-data").exists()
    assert len(run.load_dataset(data_dir=DATA).test) == 20
    monkeypatch.setenv("AI8X_NB_DATA", str(DATA))
    assert len(run.load_dataset().test) == 20  # the environment wins over config.json
    monkeypatch.delenv("AI8X_NB_DATA")
    assert main(["evaluate", str(run.path), "--limit", "4", "--data-dir", str(DATA)]) == 0
    assert "float" in capsys.readouterr().out
    out = tmp_path / "exported"
    assert main(["export", str(run.path), "--out", str(out), "--targets", "synthesis",
                 "--data-dir", str(DATA), "--eval-limit", "4"]) == 0
    assert (out / "sampledata.npy").is_file()


# ------------------------------------------------------------------ file modes
def test_checkpoints_and_run_files_are_0644(tmp_path):
    from ai8x_nb import _atomic
    from ai8x_nb.training.callbacks import atomic_save_model

    atomic_save_model(get_model("mnist"), tmp_path / "best.keras")
    with _atomic.atomic_path(tmp_path / "history.csv") as tmp:
        tmp.write_text("epoch\n0\n")
    _atomic.write_json(tmp_path / "state.json", {"epochs_completed": 1})
    for name in ("best.keras", "history.csv", "state.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "history.csv",
                                                          "state.json"]


# ------------------------------------------------------------- wrong samples
def test_samples_of_another_dataset_give_one_error_in_export_and_evaluate(tmp_path):
    import numpy as np

    from ai8x_nb.datasets import Dataset, Split
    from ai8x_nb.errors import InputShapeError
    from ai8x_nb.evaluate import evaluate_quantized
    from ai8x_nb.export import export_model

    model = get_model("mnist")
    x = np.zeros((4, 32, 32, 3), dtype=np.int8)
    y = np.zeros((4,), dtype=np.int64)
    message = r"Model 'mnist' takes inputs of shape \(28, 28\) but the samples have shape " \
              r"\(32, 32, 3\)"
    with pytest.raises(InputShapeError, match=message):
        evaluate_quantized(model, (x, y))
    splits = [Split(name, x, y) for name in ("train", "valid", "test")]
    dataset = Dataset("cifar10", *splits, class_names=[str(i) for i in range(10)])
    with pytest.raises(InputShapeError, match=message):
        export_model(model, tmp_path / "export", dataset=dataset, targets=("synthesis",))
    assert not (tmp_path / "export").exists()
