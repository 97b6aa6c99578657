"""Notebooks as independent jobs: `ai8x-nb run all --print-commands` for any job notebooks.

Each printed command runs one notebook with its parameters into its own folder
`<out>/<notebook>` (executed notebook, `logs/`, `export/`). The slow test starts two of them
at once as separate processes, as a Slurm array or GNU parallel would, and checks that both
succeed and that each wrote into its own folder only.
"""

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai8x_nb import notebooks
from ai8x_nb.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]

TINY = {"epochs": 1, "fast": True, "limit": 128,
        "qat_policy": {"start_epoch": 0, "weight_bits": 8}, "lr": 1e-3}
"""Cheap notebook parameters: one QAT epoch on 128 samples per split."""


def _printed(capsys, argv):
    assert main(["run", *argv, "--print-commands"]) == 0
    return capsys.readouterr().out.strip().splitlines()


def test_print_commands_gives_one_self_contained_command_per_notebook(capsys, tmp_path):
    out = tmp_path / "jobs"
    argv = ["all", "--out", str(out)]
    for name, value in TINY.items():
        argv += ["-p", name, notebooks.format_value(value)]
    argv += ["-p", "data_dir", "/data with space", "-p", "schedule", "cosine"]
    lines = _printed(capsys, argv)
    assert len(lines) == len(notebooks.NOTEBOOKS)
    expected = {**TINY, "data_dir": "/data with space", "schedule": "cosine"}
    for name, line in zip(notebooks.NOTEBOOKS, lines):
        words = shlex.split(line)
        assert words[:2] == ["ai8x-nb", "run"]
        args = build_parser().parse_args(words[1:])
        assert args.notebooks == [name]
        assert {k: notebooks.parse_value(v) for k, v in args.parameter} == expected
        assert Path(args.out) == out / name  # its own folder; the kernel's cwd too
        assert args.cwd is None and not args.print_commands
    assert not out.exists()  # printing runs nothing and creates nothing


def test_print_commands_checks_names_and_parameters_first(capsys):
    assert main(["run", "mnist", "-p", "epoch", "2", "--print-commands"]) == 2
    assert "Notebook 'mnist' has no parameter(s) epoch; its parameters are epochs" in \
        capsys.readouterr().err
    assert main(["run", "mnst", "--print-commands"]) == 2
    assert "No notebook named 'mnst'" in capsys.readouterr().err


@pytest.mark.parametrize("value", [0.001, 3, None, True, "cosine", "3", "None", "a b",
                                   {"start_epoch": 1, "weight_bits": 8}, [1, 2]])
def test_format_value_reads_back(value):
    assert notebooks.parse_value(notebooks.format_value(value)) == value


def _snapshot(folder):
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.slow
def test_two_job_commands_run_at_once_each_in_its_own_folder(capsys, tmp_path,
                                                             notebook_parameters):
    names = ["mnist", "fashionmnist"]
    out = tmp_path / "jobs"
    argv = [*names, "--out", str(out)]
    for name, value in {**TINY, **notebook_parameters("mnist", tmp_path)}.items():
        argv += ["-p", name, notebooks.format_value(value)]
    commands = _printed(capsys, argv)
    assert len(commands) == 2
    # The job runner's view: a shell command, run in some folder, with no other context.
    elsewhere = tmp_path / "job-cwd"
    elsewhere.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    start = time.monotonic()
    procs = [subprocess.Popen(command, shell=True, cwd=elsewhere, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for command in commands]
    outputs = [proc.communicate(timeout=1200)[0] for proc in procs]
    seconds = time.monotonic() - start
    for command, proc, output in zip(commands, procs, outputs):
        assert proc.returncode == 0, f"{command}\nexit {proc.returncode}:\n{output[-4000:]}"
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert list(elsewhere.iterdir()) == []  # nothing written where the job was started
    for name, output in zip(names, outputs):
        folder = out / name
        files = _snapshot(folder)
        executed = [f for f in files if f.suffix == ".ipynb" and len(f.parts) == 1]
        assert len(executed) == 1 and executed[0].name.endswith(f"-{name}.ipynb"), files
        summary = notebooks.read_summary(folder / executed[0])
        assert summary["dataset"] == name
        export = Path(summary["export_dir"])
        export = export if export.is_absolute() else folder / export
        assert export.resolve().is_relative_to(folder.resolve()), export
        assert (export / "manifest.json").is_file()
        runs = [f for f in files if f.parts[0] == "logs" and len(f.parts) == 2]
        assert len(runs) == 1 and runs[0].name.endswith(name), runs
        other = next(n for n in names if n != name)
        tokens = {t for f in files for part in f.parts for t in re.split(r"[-_.]", part)}
        assert other not in tokens, f"{name} wrote {other}'s files: {sorted(files)}"
        assert f"{name}: ok" in output
    with capsys.disabled():
        print(f"\n[test_jobs] two notebook jobs at once: both ok, each in its own folder, "
              f"{seconds:.0f} s")
