"""Training run folders: what a run wrote and how to reopen it.

A run folder `logs/<YYYYmmdd-HHMMSS>-<name>/` holds:

- `config.json`: dataset name and load arguments, model (seed name or spec), device, epochs,
  batch size, optimizer, learning rate, seed, QAT policy.
- `best.keras`: best validation accuracy over the float phase.
- `qat_best.keras`: best validation accuracy since QAT started (when QAT ran).
- `last.keras` + `state.json`: the model, optimizer and callback state after the last
  completed epoch (for resuming). They are one commit: the model is written first as
  `.last-<epoch>.keras`, then `state.json`, which names that file, is moved into place (the
  commit point); `last.keras` is a hard link to the committed file. A resume reads the pair
  `state.json` names, so a kill at any moment resumes from one consistent epoch.
- `history.csv`: one row per epoch; `tensorboard/`: TensorBoard logs.
- `results.json`: accuracy on the TEST split, confusion matrix, class names.
- `.lock`: locked by the process training the run (`RunDir.lock`), so two processes never
  train one run folder at the same time. Symbolic links among these files are refused.

Example:

>>> run = RunDir("logs/20250101-120000-mnist")  # doctest: +SKIP
>>> run.results["test_accuracy"]  # doctest: +SKIP
0.991
>>> model = run.load_model()  # doctest: +SKIP
"""

import contextlib
import json
import logging
import os
import re
import time
from pathlib import Path

from ai8x_nb import _atomic
from ai8x_nb.errors import Ai8xNbError

__all__ = ["RunDir", "RunDirError", "new_run_dir"]

logger = logging.getLogger(__name__)

CONFIG = "config.json"
BEST = "best.keras"
QAT_BEST = "qat_best.keras"
LAST = "last.keras"
STATE = "state.json"
HISTORY = "history.csv"
TENSORBOARD = "tensorboard"
RESULTS = "results.json"
LOCK = ".lock"
GENERATION = re.compile(r"^\.last-(\d{4,})\.keras$")
"""Name of a committed checkpoint file: `.last-<epochs completed, 4+ digits>.keras`."""
FILES = (CONFIG, BEST, QAT_BEST, LAST, STATE, HISTORY, RESULTS, LOCK)
DATA_ENV = "AI8X_NB_DATA"


class RunDirError(Ai8xNbError, ValueError):
    """A run folder that does not exist or lacks the file asked for."""


def _safe_name(name):
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
    return keep.strip("._") or "run"


def new_run_dir(out="logs", name="run"):
    """Create a fresh run folder `<out>/<YYYYmmdd-HHMMSS>-<name>/` and return its `RunDir`.

    Two runs started in the same second get `-2`, `-3`, ... suffixes instead of sharing a folder.

    Args:
        out: parent folder (created if missing).
        name: short run name, usually the model name.

    Returns:
        A `RunDir` for the new, empty folder.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{_safe_name(name)}"
    path, n = out / stem, 1
    while True:
        try:
            path.mkdir()
            return RunDir(path)
        except FileExistsError:
            n += 1
            path = out / f"{stem}-{n}"


class RunDir:
    """A training run folder (see the module docstring for its contents).

    Args:
        path: the folder.

    Example:

    >>> run = RunDir("logs/20250101-120000-mnist")  # doctest: +SKIP
    >>> run.model_path().name  # doctest: +SKIP
    'qat_best.keras'
    """

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self):
        return str(self.path)

    def file(self, name):
        """Path of a file in the run folder."""
        return self.path / name

    @property
    def exists(self):
        """True when the folder exists."""
        return self.path.is_dir()

    @property
    def can_resume(self):
        """True when the run has a last checkpoint and its state."""
        return self.file(LAST).is_file() and self.file(STATE).is_file()

    def _read_json(self, name, required=True):
        path = self.file(name)
        _atomic.refuse_symlink(path)
        if not path.is_file():
            if required:
                raise RunDirError(
                    f"Run folder {str(self.path)!r} has no {name}. Pass the folder of a "
                    f"training run (created by ai8x_nb.training.train / `ai8x-nb train`).")
            return None
        try:
            data = json.loads(_atomic.read_bytes(path))
        except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError too
            raise RunDirError(
                f"{str(path)!r} is not readable JSON ({type(err).__name__}: {err}); the file "
                f"is truncated or was edited by hand. Restore it, or start a new run.") from err
        if not isinstance(data, dict):
            raise RunDirError(f"{str(path)!r} holds a JSON {type(data).__name__}, expected an "
                              f"object. Restore it, or start a new run.")
        return data

    @property
    def config(self):
        """The run configuration (dict from config.json).

        Raises:
            RunDirError: config.json is missing, not JSON, or a field has a wrong type.
        """
        config = self._read_json(CONFIG)
        _check_config(self.file(CONFIG), config)
        return config

    @property
    def results(self):
        """The test results (dict from results.json), or None before training finished."""
        return self._read_json(RESULTS, required=False)

    @property
    def state(self):
        """The resume state (dict from state.json), or None.

        Raises:
            RunDirError: state.json is not JSON or lacks a valid `epochs_completed`.
        """
        state = self._read_json(STATE, required=False)
        if state is None:
            return None
        done = state.get("epochs_completed")
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise RunDirError(
                f"{str(self.file(STATE))!r} has epochs_completed={done!r}; expected an int >= 0. "
                f"Restore the file, or start a new run.")
        _check_state(self.file(STATE), state)
        return state

    def resume_checkpoint(self, state=None):
        """The model file the committed `state.json` belongs to.

        Runs of earlier versions name none: their `last.keras`.

        Raises:
            RunDirError: state.json names a file that is not a checkpoint name or is missing.
        """
        state = self.state if state is None else state
        name = (state or {}).get("checkpoint")
        if name is None:
            return self.file(LAST)
        match = GENERATION.match(name) if isinstance(name, str) else None
        if match is None or int(match.group(1)) != state["epochs_completed"]:
            raise RunDirError(
                f"{str(self.file(STATE))!r} names the checkpoint {name!r}; expected "
                f"'.last-{state['epochs_completed']:04d}.keras'. Restore the file, or start a "
                f"new run.")
        path = _atomic.refuse_symlink(self.file(name))
        if not path.is_file():
            raise RunDirError(
                f"{str(self.file(STATE))!r} names the checkpoint {name!r}, which is missing "
                f"from the run folder. Restore it, or start a new run.")
        return path

    @property
    def is_run(self):
        """True when the folder holds a run's config.json."""
        return self.file(CONFIG).is_file()

    def require_run(self):
        """Raise a `RunDirError` unless the folder exists and holds a training run."""
        if not self.exists:
            raise RunDirError(f"Run folder {str(self.path)!r} does not exist. Pass the folder of "
                              f"a training run (logs/<time>-<name>).")
        if not self.is_run:
            raise RunDirError(
                f"{str(self.path)!r} is not a training run folder: it has no {CONFIG}. Pass a "
                f"folder created by ai8x_nb.training.train / `ai8x-nb train` "
                f"(logs/<time>-<name>).")

    def write_config(self, config):
        """Write config.json atomically."""
        _atomic.write_json(self.file(CONFIG), config)

    def write_results(self, results):
        """Write results.json atomically."""
        _atomic.write_json(self.file(RESULTS), results)

    def model_path(self):
        """The model to evaluate or export: `qat_best.keras` if QAT ran, else `best.keras`.

        Falls back to `last.keras` when no best checkpoint was written.

        Raises:
            RunDirError: the folder is not a run, or holds no model.
        """
        self.require_run()
        for name in (QAT_BEST, BEST, LAST):
            if self.file(name).is_file():
                return self.file(name)
        raise RunDirError(
            f"Run folder {str(self.path)!r} holds no model ({QAT_BEST}, {BEST} or {LAST}); "
            f"the run did not finish an epoch. Train (or resume) it first.")

    def load_model(self, name=None, compile=True):
        """Load a model of the run (with `safe_mode=True`).

        Args:
            name: file name in the run folder (default: `model_path()`).
            compile: restore the compiled state (loss, metrics, optimizer).

        Returns:
            The `keras.Model`.

        Raises:
            RunDirError: the folder is not a run or lacks the file.
            ai8x_nb.errors.ModelFileError: the file is truncated, corrupt or not a model.
        """
        from ai8x_nb.modelio.keras_file import load_keras_file

        path = self.model_path() if name is None else self.file(name)
        if not path.is_file():
            raise RunDirError(f"Run folder {str(self.path)!r} has no {path.name}.")
        return load_keras_file(path, compile=compile)

    def load_dataset(self, data_dir=None, **overrides):
        """Load the run's dataset with the arguments it was trained with.

        The data folder is, in this order: `data_dir`, the `AI8X_NB_DATA` environment
        variable, the folder saved in config.json, `./data`. So a moved data folder is found
        again by setting `AI8X_NB_DATA` (or passing `data_dir` / `--data-dir`).

        Args:
            data_dir: the folder holding the datasets (None: see above).
            **overrides: other arguments of `ai8x_nb.datasets.load` to change (e.g.
                `limit=100`).

        Returns:
            An `ai8x_nb.datasets.Dataset`.

        Raises:
            RunDirError: config.json is missing or unreadable.
            ai8x_nb.errors.DatasetError: the data cannot be read.
        """
        from ai8x_nb import datasets

        config = self.config
        kwargs = {**(config.get("dataset_kwargs") or {}), **overrides}
        saved = kwargs.pop("data_dir", None)
        chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or saved
        if saved is not None and chosen is not None and os.fspath(chosen) != saved:
            logger.info("Run %s was trained on data in %s; reading it from %s.", self.path,
                        saved, os.fspath(chosen))
        if chosen is not None:
            kwargs["data_dir"] = os.fspath(chosen)
        if "dataset" not in config:
            raise RunDirError(f"{str(self.file(CONFIG))!r} names no dataset. Restore the file, "
                              f"or start a new run.")
        return datasets.load(config["dataset"], **kwargs)

    @contextlib.contextmanager
    def lock(self):
        """Hold the run folder's lock (`.lock`) for the block: one process per run at a time.

        The lock is released when the block ends or the process dies (kill -9 included).

        Raises:
            RunDirError: another process holds it (the message names its pid and start time).
        """
        from ai8x_nb._lock import FolderLock, LockedError

        lock = FolderLock(self.file(LOCK))
        try:
            lock.acquire()  # a symbolic link there is refused, never opened
        except LockedError as err:
            raise RunDirError(
                f"Run folder {str(self.path)!r} is in use by another process ({err}). Wait for "
                f"it to finish (or stop it) before resuming: two runs in one folder would "
                f"overwrite each other's checkpoints and history.") from None
        try:
            for name in FILES[:-1] + (TENSORBOARD,):
                _atomic.refuse_symlink(self.file(name))
            for path in _atomic.remove_leftovers(self.path, FILES, (".last-*.keras",)):
                logger.info("Removed %s, left by a process killed while writing it.", path)
            yield self
        finally:
            lock.release()


_STATE_TYPES = {"best": (int, float), "qat_best": (int, float), "qat": (bool,),
                "learning_rate": (int, float), "plateau": (dict,), "seed_generators": (list,),
                "checkpoint": (str,)}


def _check_state(path, state):
    """Raise `RunDirError` when a state.json field has a wrong type (edited by hand)."""
    def bad(key, value, expected):
        raise RunDirError(f"{str(path)!r} has {key}={value!r}; expected {expected}. Restore "
                          f"the file, or start a new run.")

    for key, types in _STATE_TYPES.items():
        value = state.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (types != (bool,) and isinstance(value, bool)):
            bad(key, value, " or ".join(t.__name__ for t in types) + " or null")
    plateau = state.get("plateau") or {}
    for key in ("wait", "best", "cooldown_counter"):
        if plateau and key not in plateau:
            bad("plateau", plateau, f"an object with {key!r}")
    for key, value in plateau.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(f"plateau.{key}", value, "a number")
    for value in state.get("seed_generators") or []:
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            bad("seed_generators", value, "lists of ints")


def _check_config(path, config):
    """Raise `RunDirError` when a config.json field has a wrong type (edited by hand)."""
    def whole(low, high=None):
        return lambda v: (isinstance(v, int) and not isinstance(v, bool) and v >= low
                          and (high is None or v <= high))

    number = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
              and v == v and abs(v) != float("inf"))
    checks = {"epochs": (whole(0), "an int >= 0"), "batch_size": (whole(1), "an int >= 1"),
              "seed": (whole(0, 2**32 - 1), "an int from 0 to 2**32 - 1"),
              "lr": (number, "a finite number"), "warmup_epochs": (number, "a finite number"),
              "dataset": (lambda v: isinstance(v, str), "a dataset name"),
              "dataset_kwargs": (lambda v: isinstance(v, dict), "an object"),
              "optimizer": (lambda v: isinstance(v, str), "an optimizer name"),
              "device": (lambda v: isinstance(v, str), "a device name")}
    for key, (ok, expected) in checks.items():
        value = config.get(key)
        if value is not None and not ok(value):
            raise RunDirError(f"{str(path)!r} has {key}={value!r}; expected {expected}. Restore "
                              f"the file, or start a new run.")
