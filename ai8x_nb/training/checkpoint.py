"""The resume checkpoint as one commit: a model file and the `state.json` that names it.

`commit` writes the model to a new file `.last-<epochs>.keras` first, then moves `state.json`
(which names that file) into place: that replace is the commit. Only then is `last.keras`
pointed at the new file (a hard link) and the older generation removed. A kill at any moment
leaves a `state.json` whose named model file is whole and of the same epoch; `tidy` (called
by a resume, under the run's lock) removes what a kill left and points `last.keras` again.
"""

import logging
import os
import shutil

from ai8x_nb import _atomic, _faults
from ai8x_nb.runs import GENERATION, LAST, STATE

__all__ = ["commit", "tidy", "generation_name"]

logger = logging.getLogger(__name__)


def generation_name(epochs):
    """The checkpoint file name of the state after `epochs` completed epochs."""
    return f".last-{int(epochs):04d}.keras"


def commit(run, model, state):
    """Save `model` and `state` (a dict with `epochs_completed`) as the run's resume point."""
    name = generation_name(state["epochs_completed"])
    with _atomic.atomic_path(run.file(name), suffix=".keras", point="checkpoint") as tmp:
        model.save(tmp)
    _atomic.write_json(run.file(STATE), {**state, "checkpoint": name}, point="state")
    _link_last(run, name)
    _prune(run, keep=name)


def tidy(run, state):
    """After a kill: drop uncommitted checkpoint files and point `last.keras` again.

    Args:
        run: the locked `RunDir`.
        state: its committed state.json content, or None.
    """
    keep = (state or {}).get("checkpoint")
    _prune(run, keep=keep)
    if keep is not None:
        _link_last(run, keep)


def _link_last(run, name):
    last = run.file(LAST)
    if _same_file(last, run.file(name)):
        return
    with _atomic.atomic_path(last, suffix=".keras", point="last") as tmp:
        os.unlink(tmp)
        try:
            os.link(run.file(name), tmp)
        except OSError:  # a file system without hard links: a copy
            shutil.copyfile(run.file(name), tmp)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _prune(run, keep):
    for path in sorted(run.path.glob(".last-*.keras")):
        if GENERATION.match(path.name) and path.name != keep:
            with _faults.around("prune"):
                path.unlink()
            logger.debug("Removed the older checkpoint %s", path)
