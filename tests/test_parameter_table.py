"""One table of parameter rules: the notebooks, `train` and `ai8x-nb train` refuse the same bad
value with the same text (one error type, `ParameterError`; exit 2 on the command line)."""

import pytest

from ai8x_nb import parameters
from ai8x_nb.cli import main
from ai8x_nb.errors import ParameterError
from ai8x_nb.training import train

# One bad value per parameter of the table, and the flag that gives it on the command line
# (None: the command line cannot express that value, e.g. a path flag always holds a str).
BAD = {
    "epochs": (0, "--epochs"),
    "batch_size": (0, "--batch-size"),
    "lr": (-1.0, "--lr"),
    "schedule": ("linear", "--schedule"),
    "recipe": ("quick", "--recipe"),
    "optimizer": ("rmsprop", "--optimizer"),
    "qat_policy": (3, None),
    "device": ("MAX99", "--device"),
    "data_dir": (7, None),
    "dataset_folder": (7, None),
    "allow_partial": ("yes", None),
    "export_dir": ("", None),
    "fast": ("yes", None),
    "limit": (0, "--limit"),
    "seed": (-1, "--seed"),
    "distribute": ("gpu", "--distribute"),
    "model_name": (3, None),
    "init_from": (7, None),
    "model_spec": ([{"type": "conv3d"}], None),
    "warmup_epochs": (-0.5, "--warmup-epochs"),
}
TRAIN_ARGUMENTS = ("epochs", "batch_size", "lr", "schedule", "recipe", "optimizer", "qat_policy",
                   "device", "data_dir", "seed", "distribute", "warmup_epochs")
"""The parameters `train` takes under the same name."""


def test_every_parameter_has_a_bad_value_here():
    table = parameters.PARAMETERS + parameters.TRAIN_PARAMETERS
    assert sorted(BAD) == sorted(p.name for p in table)


def _notebook_error(name, value):
    params = {**parameters.defaults(), "model_spec": [{"type": "flatten"}], name: value}
    with pytest.raises(ParameterError) as info:
        parameters.check_parameters(params)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(BAD))
def test_one_bad_value_one_error_text_everywhere(name, tmp_path, capsys):
    value, flag = BAD[name]
    with pytest.raises(ParameterError) as info:
        parameters.check_value(name, value)
    text = str(info.value)
    assert text.startswith(f"{name}={value!r}" if name != "model_spec" else name), text
    if name in parameters.NAMES:
        assert _notebook_error(name, value) == text
    if name in TRAIN_ARGUMENTS:
        given = {"epochs": 1, name: value}
        with pytest.raises(ParameterError) as info:
            train("mnist", epochs=given.pop("epochs"), out=str(tmp_path / "logs"), **given)
        assert str(info.value) == text
    if flag is not None:
        assert main(["train", "--dataset", "mnist", "--out", str(tmp_path / "logs"),
                     "--data-dir", str(tmp_path / "no-data"), flag, str(value)]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {text}"
    assert not (tmp_path / "logs").exists()


def test_cli_flags_take_type_metavar_and_help_from_the_table():
    from ai8x_nb.cli import build_parser

    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train_parser._actions}
    for name in ("epochs", "batch_size", "lr", "schedule", "recipe", "optimizer", "device",
                 "limit", "seed", "distribute", "warmup_epochs"):
        options = parameters.cli_options(name)
        assert actions[name].type == options["type"] and actions[name].help == options["help"]
        assert actions[name].choices is None  # checked by the table, not by argparse
    assert actions["schedule"].metavar == "{seed,cosine,constant}"
    assert actions["optimizer"].type("Adam") == "adam"  # the vendor's scripts' spelling
    assert actions["schedule"].type(" Auto") == "seed" and actions["recipe"].type("X") == "X"
