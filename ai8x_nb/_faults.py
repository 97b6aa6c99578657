"""Named write points: every file the package commits passes one, so tests can kill it there.

Each atomic write, rename or swap the package does calls `point(name)` right before and right
after its `os.replace` / `os.rename` ("<name>:before", "<name>:after"). Normally nothing
happens. Two test seams use them:

- the environment variable `AI8X_NB_FAULT=<point>[#<n>]` SIGKILLs the process at the `n`-th
  (default first) time it reaches `<point>`: a real kill, with no clean-up, as a crash or an
  out-of-memory killer would;
- `observe(callback)` (a context manager) calls `callback(point)` at every point of this
  process, e.g. to count the points or to copy the folder as a kill there would leave it.

Example:

>>> with observe(seen.append):  # doctest: +SKIP
...     train(...)
"""

import contextlib
import os
import signal

__all__ = ["ENV", "point", "observe"]

ENV = "AI8X_NB_FAULT"
_observers = []
_counts = {}


def point(name):
    """Pass the write point `name` (see the module docstring)."""
    for callback in list(_observers):
        callback(name)
    target = os.environ.get(ENV)
    if not target:
        return
    wanted, _, nth = target.partition("#")
    if name != wanted:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def observe(callback):
    """Call `callback(point_name)` at every write point passed inside the block."""
    _observers.append(callback)
    try:
        yield
    finally:
        _observers.remove(callback)


@contextlib.contextmanager
def around(name):
    """Mark the block (one replace or rename) as write point `name`: before and after."""
    point(f"{name}:before")
    yield
    point(f"{name}:after")
