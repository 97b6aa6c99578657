"""The vendor's old TensorFlow `train_*.sh` lines run verbatim with `ai8x-nb train`.

The lines are those of ai8x-training's TensorFlow folder (archive-tf branch), `train.py`
replaced by `ai8x-nb train`; the scripts' `$@` is where the tests append their own flags
(argparse: a later flag wins).
"""

import shlex

import numpy as np
import pytest

from ai8x_nb import datasets, models
from ai8x_nb.cli import build_parser, main

from support import SHARED_DATA as DATA

SEED_LINES = {
    "mnist": "--epochs 100 --batch_size 256 --optimizer Adam --lr 0.001 --model mnist_model "
             "--dataset mnist --save-sample 1 --save-sample-per-class",
    "fashionmnist": "--epochs 100 --batch_size 256 --optimizer Adam --lr 0.001 --model "
                    "fashionmnist_model --dataset fashionmnist --save-sample 1234 "
                    "--save-sample-per-class",
    "cifar10": "--epochs 100 --batch_size 64 --optimizer Adam --lr 0.0003 --model cifar10_model "
               "--dataset cifar10 --save-sample 1431 --save-sample-per-class --channel-first",
    "cifar100": "--epochs 100 --batch_size 32 --optimizer Adam --lr 0.0003 --model "
                "cifar100_model --dataset cifar100 --save-sample 1193 --save-sample-per-class",
    "kws20": "--epochs 100 --batch_size 128 --optimizer Adam --lr 0.0003 --model kws20_model "
             "--dataset kws20 --save-sample 7528 --save-sample-per-class",
    "rock": "--epochs 100 --batch_size 32 --optimizer Adam --lr 0.001 --model rock_model "
            "--dataset rock --save-sample 101",
}
# The line of the issue: the program renamed, the model named as the seed model.
ISSUE_LINE = ("train --epochs 100 --batch_size 256 --optimizer Adam --lr 0.001 --model mnist "
              "--dataset mnist --save-sample 1")


@pytest.mark.parametrize("name", sorted(SEED_LINES))
def test_every_seed_line_parses_with_the_seed_values(name):
    line = SEED_LINES[name]
    args = build_parser().parse_args(["train", *shlex.split(line)])
    info = models.get_info(args.model)  # "<name>_model" is the seed model <name>
    assert info.name == name == args.dataset
    assert args.optimizer == "adam" and args.epochs == 100
    assert args.batch_size == info.batch_size and args.lr == pytest.approx(info.lr)
    assert args.save_sample == int(line.split("--save-sample ")[1].split()[0])
    assert args.save_sample_per_class == ("--save-sample-per-class" in line)
    assert args.channel_first == ("--channel-first" in line)


def test_seed_aliases_and_case():
    args = build_parser().parse_args(["train", "--optimizer", "SGD", "--swap-hw", "--dataset",
                                      "MNIST", "--schedule", "Cosine", "--metrics", "accuracy"])
    assert (args.optimizer, args.swap, args.dataset, args.schedule) == ("sgd", True, "mnist",
                                                                        "cosine")
    assert args.metrics == ["accuracy"]
    args = build_parser().parse_args(shlex.split(ISSUE_LINE))
    assert (args.model, args.batch_size, args.optimizer, args.save_sample) == ("mnist", 256,
                                                                               "adam", 1)


@pytest.mark.usefixtures("mnist_data")
def test_issue_line_runs_verbatim_and_writes_export_sampledata(tmp_path, capsys):
    extra = ["--epochs", "1", "--limit", "256", "--data-dir", str(DATA), "--out",
             str(tmp_path / "logs"), "--export-dir", str(tmp_path / "export")]
    code = main([*shlex.split(ISSUE_LINE), "--save-sample-per-class", *extra])
    assert code == 0
    (run,) = (tmp_path / "logs").iterdir()
    ds = datasets.load("mnist", DATA, limit=256)
    sample = np.load(tmp_path / "export" / "mnist" / "sampledata.npy", allow_pickle=False)
    assert sample.dtype == np.int64 and sample.shape == (1, 28, 28)  # what ai8xize.py reads
    assert np.array_equal(sample[0], ds.test.x[1, :, :, 0])
    assert (run / "sample_mnist_1.npy").is_file()
    assert len(list((run / "samples").glob("sample_*.npy"))) == len(np.unique(ds.test.y))
    config = (run / "config.json").read_text()
    assert '"optimizer": "adam"' in config and '"batch_size": 256' in config
    out = capsys.readouterr().out
    assert "sampledata.npy" in out and "test accuracy:" in out


@pytest.mark.usefixtures("kws_data")
def test_seed_sample_index_out_of_range_fails_before_training(tmp_path, capsys):
    line = shlex.split(SEED_LINES["kws20"])  # --save-sample 7528: the synthetic set has 20
    code = main(["train", *line, "--dataset-folder", "kws-espeak", "--data-dir", str(DATA),
                 "--out", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "export")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--save-sample 7528 is out of range: the test split of 'kws20' has 20 samples" in err
    assert not (tmp_path / "logs").exists() and not (tmp_path / "export").exists()
