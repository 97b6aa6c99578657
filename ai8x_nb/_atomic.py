"""Atomic file writes: a temporary file in the target's folder, moved into place on success.

A process killed at any moment leaves either the previous file or the new one, never a
half-written file under the final name. Every move into place is a named write point
(`ai8x_nb._faults`), so the fault-injection tests can kill the process at each of them.
Files are opened without following symbolic links: a link planted in a run or export folder
is refused, never written through.
"""

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path

from ai8x_nb import _faults
from ai8x_nb.errors import Ai8xNbError

__all__ = ["atomic_path", "write_bytes", "write_json", "replace", "open_append",
           "read_bytes", "refuse_symlink", "remove_leftovers", "SymlinkError"]


class SymlinkError(Ai8xNbError, ValueError):
    """A file the package writes or reads in its own folders is a symbolic link."""


def refuse_symlink(path):
    """Raise `SymlinkError` when `path` is a symbolic link (a missing path is fine)."""
    path = Path(path)
    if path.is_symlink():
        raise SymlinkError(
            f"{str(path)!r} is a symbolic link (to {os.readlink(path)!r}); ai8x-nb never "
            f"writes or reads through links in its run and export folders. Remove the link "
            f"(rm {str(path)!r}) and run again.")
    return path


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp", mode=0o644, point=None):
    """Yield a temporary path beside `path`; replace `path` with it when the block succeeds.

    Args:
        path: the final file.
        suffix: suffix of the temporary name (some writers insist on one, e.g. ".keras").
        mode: permissions of the final file (mkstemp creates it 0600, and writers that
            reopen the path keep that).
        point: the write point's name (default: the file's name).

    Example:

    >>> with atomic_path("model.keras", suffix=".keras") as tmp:
    ...     model.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        replace(tmp, path, point or path.name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def replace(source, target, point):
    """`os.replace(source, target)` as the write point `point` (before and after)."""
    with _faults.around(point):
        os.replace(source, target)


def write_bytes(path, data, mode=0o644, point=None):
    """Write bytes atomically; the file gets `mode` (mkstemp would leave it 0600)."""
    with atomic_path(path, mode=mode, point=point) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path, data, point=None):
    """Write JSON (indented, sorted keys) atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_bytes(path, text.encode(), point=point)


def open_append(path, point=None):
    """Open `path` for appending text (created if missing), never through a symbolic link.

    Raises:
        SymlinkError: `path` is a symbolic link.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            refuse_symlink(path)
        raise
    _faults.point(f"{point or Path(path).name}:open")
    return os.fdopen(fd, "a", newline="")


def read_bytes(path):
    """The bytes of `path`, refusing a symbolic link (`SymlinkError`)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as err:
        if err.errno == errno.ELOOP:
            refuse_symlink(path)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LEFTOVER = re.compile(r"^\..+\.[A-Za-z0-9_]{8}(\.tmp|\.keras)$")


def remove_leftovers(folder, names, patterns=()):
    """Remove temporary files `atomic_path` left in `folder` for the files `names` (a kill
    between writing and moving into place). Call it only while holding the folder's lock.

    Args:
        folder: the folder.
        names: file names whose temporaries to remove.
        patterns: more file names as glob patterns (e.g. ".last-*.keras").

    Returns:
        The removed paths.
    """
    removed = []
    globs = [glob_escape(name) for name in names] + list(patterns)
    for name in globs:
        for path in Path(folder).glob(f".{name}.*"):
            if _LEFTOVER.match(path.name) and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed.append(path)
    return removed


def glob_escape(text):
    """`text` with glob wildcards escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)
