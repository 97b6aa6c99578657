"""An advisory, non-blocking lock on a file: one process at a time in a run folder.

`fcntl.flock` locks belong to the open file, so the operating system releases them when the
process ends, also on `kill -9`: a crashed run never leaves a stale lock. The file records
the holder's pid and start time, for the message another process gets. A lock file that is a
symbolic link is refused (`ai8x_nb._atomic.SymlinkError`), never opened.
"""

import errno
import json
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not locked
    fcntl = None

__all__ = ["FolderLock", "LockedError"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class LockedError(OSError):
    """The lock is held by another process; `str()` names the holder."""


class FolderLock:
    """A non-blocking exclusive lock on `path` (created if missing, never deleted).

    Args:
        path: the lock file.

    Example:

    >>> lock = FolderLock("logs/run/.lock")  # doctest: +SKIP
    >>> lock.acquire()  # raises LockedError when another process holds it  # doctest: +SKIP
    >>> lock.release()  # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None

    def acquire(self, blocking=False):
        """Take the lock, or raise `LockedError` naming the holder.

        Args:
            blocking: wait for the holder to release it instead of raising.
        """
        if fcntl is None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as err:
            if err.errno == errno.ELOOP:  # a planted link: never lock (or truncate) its target
                from ai8x_nb._atomic import refuse_symlink

                refuse_symlink(self.path)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockedError(holder) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(),
                                      "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        except OSError as err:  # a full disk: name the file
            os.close(fd)
            raise OSError(err.errno, err.strerror, str(self.path)) from None
        self._fd = fd
        return self

    def release(self):
        """Release the lock (the file stays, empty of meaning until the next holder)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self):
        """True while this object holds the lock."""
        return self._fd is not None

    def __enter__(self):
        return self if self.held else self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd):
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']}, since {info['since']}"
    except (ValueError, KeyError, TypeError, OSError):
        return "holder unknown"
