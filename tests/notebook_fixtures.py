"""Helpers for the notebook, runner and browser tests: data dirs and tiny notebooks.

CIFAR-100 and Rock-Paper-Scissors are not available offline, so their notebooks run on
small fixture copies written in the real on-disk formats (`tests/fixtures_data.py`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import nbformat

from fixtures_data import shared_data_dir, write_cifar100, write_rps

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
FIXTURE_DATASETS = ("cifar100", "rock")
"""Datasets whose notebooks need a fixture data dir (no real copy offline)."""


def write_fixture_data(name: str, data_dir: Path) -> Path:
    """Write a small copy of `name` ("cifar100" or "rock") under `data_dir`; returns data_dir."""
    data_dir = Path(data_dir)
    if name == "cifar100":
        write_cifar100(data_dir / "cifar-100-python", n_train=300, n_test=60)
    elif name == "rock":
        write_rps(data_dir, train_per_class=20, test_per_class=6)
    else:
        raise ValueError(f"no fixture data for {name!r}; use one of {FIXTURE_DATASETS}")
    return data_dir


def data_dir_for(name: str, tmp_root: Path) -> Path:
    """The data dir a dataset notebook should use in tests: the shared real data, or a fixture."""
    if name in FIXTURE_DATASETS:
        return write_fixture_data(name, Path(tmp_root) / f"data-{name}")
    return shared_data_dir()


def notebook_parameters_for(name: str, tmp_root: Path) -> dict:
    """Papermill parameters pointing a dataset notebook at its test data.

    Fixture copies are small, so the loaders must accept them as partial copies.
    """
    params = {"data_dir": str(data_dir_for(name, tmp_root))}
    if name in FIXTURE_DATASETS:
        params["allow_partial"] = True
    return params


def tiny_notebook(path: Path, cells: list[str], parameters: str = "x = 1") -> Path:
    """Write a small notebook: a `parameters` cell, then one code cell per source string."""
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))
    return Path(path)


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kernel_env(**extra) -> dict:
    """The environment for notebook kernels in tests: AI8X_NB_DATA set, TF quiet."""
    env = dict(os.environ)
    env.setdefault("AI8X_NB_DATA", str(shared_data_dir()))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env
