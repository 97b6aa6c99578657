"""The export folder: written into a hidden temporary sibling, moved into place at the end.

A reader never sees a half-written export: `staging_folder` yields a temporary folder next
to the final one (`.<name>.partial-<pid>-XXXX`), and only when the body finished without an
error renames it to the final name (replacing an older export of that name at that moment).
On an error the temporary folder is removed and the older export, if any, stays untouched.
The replacement is one atomic exchange of the two folders where the system has one (Linux
`renameat2`); elsewhere the old export is moved aside first, and an export a kill left moved
aside is put back by the next command that opens the folder (`recover`). Folders left by a
process that died mid-export are removed by the next export of that name; exporters of one
name and `synthesize` take turns (`.<name>.lock`).
`Manifest` is the `manifest.json` that describes what the folder holds.
"""

import contextlib
import dataclasses
import datetime
import errno
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None

from ai8x_nb import _atomic, _faults
from ai8x_nb._lock import FolderLock, LockedError
from ai8x_nb.errors import ExportError

__all__ = ["Manifest", "staging_folder", "recover", "export_lock", "MANIFEST_NAME", "ROLES"]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
STALE_SECONDS = 3600
"""Age after which a staging folder without an owner pid (older versions) counts as stale."""

ROLES = ("savedmodel", "onnx", "synthesis_weights", "synthesis_yaml", "sample_input",
         "sample_output", "sample_outputs", "sample_layers", "tflite", "tflite_int8",
         "ai8xize_command", "esp32s3")
"""Artifact roles a manifest can list, each mapped to a path relative to the folder."""


def now_iso():
    """The current local time as an ISO-8601 string with the UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclasses.dataclass
class Manifest:
    """What an export folder holds (`manifest.json`).

    Attributes:
        name: the model / export name (also the synthesis file prefix).
        device: target accelerator name.
        dataset: dataset name, or None when exported without data.
        folder: the export folder (not stored in the JSON).
        artifacts: role -> path relative to the folder (roles in `ROLES`).
        accuracy: accuracies measured at export, e.g. {"keras_float": 0.99,
            "tflite_float": 0.99, "tflite_int8": 0.988, "integer_simulation": 0.989}.
        evaluated_samples: number of test samples behind `accuracy`.
        skipped: target -> the reason it was not exported.
        warnings: remarks that do not stop the export.
        check: summary of the model check (ok, errors, warnings, totals).
        ai8xize_command: the synthesis command (it changes into the tool's folder first).
        sample: index, label and predictions of the synthesis sample.
        details: per-target extra facts (float ONNX max difference, TFLite int8 input
            quantization, ...).
        started / finished: ISO timestamps.
        versions: library versions used.
        synthesis: the last `ai8x_nb.synthesize` result for this folder (verdict, known
            answer comparison, the tool's memory figures), or None.
        firmware: the build of the C project that synthesis wrote (`synthesize(build=True)`:
            sizes, compiler warnings, errors), or None.
        run_dir: the training run folder the exported model comes from, or None.
    """

    name: str
    device: str
    dataset: str = None
    folder: Path = None
    artifacts: dict = dataclasses.field(default_factory=dict)
    accuracy: dict = dataclasses.field(default_factory=dict)
    evaluated_samples: int = None
    skipped: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    check: dict = None
    ai8xize_command: str = None
    sample: dict = None
    details: dict = dataclasses.field(default_factory=dict)
    started: str = dataclasses.field(default_factory=now_iso)
    finished: str = None
    versions: dict = dataclasses.field(default_factory=dict)
    synthesis: dict = None
    run_dir: str = None
    firmware: dict = None

    def path(self, role):
        """Absolute path of the artifact with `role`.

        Raises:
            KeyError: the export has no artifact with that role.
        """
        return Path(self.folder) / self.artifacts[role]

    def to_dict(self):
        """The JSON-able content of `manifest.json`."""
        data = dataclasses.asdict(self)
        data.pop("folder")
        return data

    def save(self, folder):
        """Write `manifest.json` into `folder`."""
        text = json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n"
        return _atomic.write_bytes(Path(folder) / MANIFEST_NAME, text.encode())

    @classmethod
    def load(cls, folder):
        """Read the manifest of an export folder.

        The names in it are data: the export's `name` must be a plain file name and every
        artifact path must stay inside the folder.

        Raises:
            ExportError: the folder has no readable manifest, or one with unsafe or missing
                names.
        """
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(_atomic.read_bytes(path))
        except (OSError, ValueError) as err:
            raise ExportError(f"Cannot read the export manifest {str(path)!r}: {err}. Export "
                              f"the model again with ai8x_nb.export.export_model.") from err
        _check_manifest(path, data)
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(folder=Path(folder), **{k: v for k, v in data.items() if k in fields})


SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
"""A name a manifest may give its export: a plain file name (it prefixes the synthesis files
and names the C project folder)."""


def _check_manifest(path, data):
    def bad(what):
        raise ExportError(f"The export manifest {str(path)!r} {what}. Export the model again "
                          f"(ai8x-nb export RUN_DIR) instead of editing the manifest.")

    if not isinstance(data, dict):
        bad(f"holds a JSON {type(data).__name__}, expected an object")
    for key in ("name", "device"):
        if not isinstance(data.get(key), str):
            bad(f"has {key}={data.get(key)!r}; expected a string")
    if not SAFE_NAME.match(data["name"]) or data["name"] in (".", ".."):
        bad(f"has name={data['name']!r}; expected a plain file name (letters, digits, '_', "
            f"'-', '.', '+'; no '/' or '..')")
    artifacts = data.get("artifacts", {})
    if not isinstance(artifacts, dict):
        bad(f"has artifacts={artifacts!r}; expected an object")
    for role, rel in artifacts.items():
        parts = Path(rel).parts if isinstance(rel, str) else ()
        if not parts or Path(rel).is_absolute() or ".." in parts:
            bad(f"has artifacts.{role}={rel!r}; expected a path inside the export folder")
    for key in ("accuracy", "skipped", "details"):
        if not isinstance(data.get(key, {}), dict):
            bad(f"has {key}={data.get(key)!r}; expected an object")


def _json_default(value):
    """Turn numpy scalars and paths into plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@contextlib.contextmanager
def staging_folder(final_dir):
    """Yield a temporary sibling of `final_dir`; move it to `final_dir` if the body succeeds.

    An export a kill interrupted is first put back whole (`recover`), then staging folders
    of `final_dir` left by dead processes are removed.

    Args:
        final_dir: where the finished folder must appear.

    Yields:
        The `Path` of the temporary folder to write into.

    Raises:
        ExportError: the parent folder cannot be created or the final move fails.

    Example:

    >>> with staging_folder("export/mnist") as tmp:  # doctest: +SKIP
    ...     (tmp / "a.txt").write_text("hello")
    """
    final_dir = Path(final_dir)
    parent = final_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"Cannot create the export folder {str(parent)!r}: {err}.") from err
    _atomic.refuse_symlink(final_dir)
    _atomic.refuse_symlink(export_lock(final_dir).path)  # before any work, not at the swap
    recover(final_dir)
    _remove_stale(parent, final_dir.name)
    try:
        tmp, owner = _new_owned_folder(parent, f".{final_dir.name}.partial-{os.getpid()}-")
    except OSError as err:
        raise ExportError(f"Cannot write the export into {str(parent)!r}: {err}. Pass a "
                          f"writable folder with free space.") from err
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
        yield tmp
        _move_into_place(tmp, final_dir)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        raise ExportError(f"Cannot write the export into {str(parent)!r}: {err}. The previous "
                          f"export (if any) is intact; free some space or pass another "
                          f"folder.") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(owner)


def export_lock(final_dir):
    """The `FolderLock` the writers of the export folder `final_dir` take turns with: the
    exporter's final swap and `synthesize` (for its whole run)."""
    final_dir = Path(final_dir)
    return FolderLock(final_dir.parent / f".{final_dir.name}.lock")


_CREATING = threading.Lock()
"""Held while this process creates and locks a folder, and while it judges folders named with
its own pid: a thread never takes another thread's brand-new folder for a dead one's."""


def _new_owned_folder(parent, prefix):
    """A new folder `parent/<prefix>XXXX`, flocked by this process: (path, fd to close)."""
    with _CREATING:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        return path, _hold(path)


def _hold(folder):
    """Open `folder` and flock it: its owner is alive exactly as long as the lock is held."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _owner_alive(path):
    """False when the staging folder's owner process is gone.

    An owner holds an flock on the folder (released by the kernel when it dies). Folders of
    older versions hold none: they count as alive while the pid in their name runs (another
    process) or, unnamed, while they are younger than `STALE_SECONDS`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    except OSError:
        return True  # gone, or not ours to judge
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
    finally:
        os.close(fd)
    tail = path.name.rsplit(".", 1)[-1]  # "partial-<pid>-XXXX" or "old-<pid>-XXXX"
    parts = tail.split("-")
    if len(parts) >= 3 and parts[1].isdigit():
        if int(parts[1]) == os.getpid():
            return False  # this process holds the locks of its own live folders
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's live process
        return True
    try:
        return time.time() - path.stat().st_mtime < STALE_SECONDS
    except FileNotFoundError:
        return True  # already gone


def recover(final_dir):
    """Put back an export a kill left moved aside (`.<name>.old-*/previous`) with nothing
    under its name. Harmless when there is nothing to recover.

    Returns:
        True when an export was put back.
    """
    final_dir = Path(final_dir)
    parent = final_dir.parent
    pattern = f".{_atomic.glob_escape(final_dir.name)}.old-*"
    candidates = [p for p in parent.glob(pattern) if (p / "previous").is_dir()]
    if not candidates or os.path.lexists(final_dir):
        return False
    with export_lock(final_dir).acquire(blocking=True):
        for old in candidates:
            if os.path.lexists(final_dir):
                break
            if (old / "previous").is_dir() and not _owner_alive(old):
                _atomic.replace(old / "previous", final_dir, "export-restore")
                logger.warning("Restored the export %s, moved aside by an export that was "
                               "stopped before it finished.", final_dir)
                shutil.rmtree(old, ignore_errors=True)
                return True
    return False


def _remove_stale(parent, name):
    with _CREATING:
        _remove_stale_locked(parent, name)


def _remove_stale_locked(parent, name):
    for pattern in (f".{_atomic.glob_escape(name)}.partial-*",
                    f".{_atomic.glob_escape(name)}.old-*"):
        for path in parent.glob(pattern):
            if path.is_dir() and not path.is_symlink() and not _owner_alive(path):
                logger.info("Removing %s, left by an export that did not finish.", path)
                shutil.rmtree(path, ignore_errors=True)


def _move_into_place(tmp, final_dir):
    # Writers of one name take turns: the swap and a running synthesize hold this lock.
    lock = export_lock(final_dir)
    try:
        lock.acquire()
    except LockedError as err:
        logger.info("Waiting for %s to be released (%s) before replacing %s.", lock.path, err,
                    final_dir)
        lock.acquire(blocking=True)
    with lock:
        for _ in range(10):  # someone removing the old export meanwhile: try again
            if _swap(tmp, final_dir):
                logger.debug("export written to %s", final_dir)
                return
        raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: the folder "
                          f"kept changing under it. Stop whatever removes it, then export again.")


def _swap(tmp, final_dir):
    """Put `tmp` under `final_dir` (the old export dropped); False when `final_dir` vanished
    or appeared in between (try again)."""
    if not os.path.lexists(final_dir):
        try:
            with _faults.around("export-rename"):
                os.rename(tmp, final_dir)  # no export of that name yet
            return True
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: "
                              f"{err}.") from err
    if not final_dir.is_dir() or final_dir.is_symlink():
        if not os.path.lexists(final_dir):
            return False
        raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: it exists "
                          f"and is not a folder. Remove it, or export elsewhere.")
    done = _exchange(tmp, final_dir)
    if done is None:
        return False
    if done:
        # One atomic step: the new export under the name, the old one in `tmp`.
        with _faults.around("export-drop-old"):
            shutil.rmtree(tmp, ignore_errors=True)
        return True
    _swap_in_two_steps(tmp, final_dir)
    return True


def _swap_in_two_steps(tmp, final_dir):
    """Without an atomic exchange: move the old export aside, the new one in. A kill in
    between leaves the old one in `.<name>.old-*/previous`, which `recover` puts back."""
    old, owner = _new_owned_folder(final_dir.parent, f".{final_dir.name}.old-{os.getpid()}-")
    try:
        try:
            _atomic.replace(final_dir, old / "previous", "export-aside")
        except FileNotFoundError:
            pass  # removed meanwhile by someone else: nothing to keep
        try:
            _atomic.replace(tmp, final_dir, "export-in")
        except OSError as err:
            if (old / "previous").exists() and not final_dir.exists():
                os.replace(old / "previous", final_dir)
            raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: "
                              f"{err}.") from err
        with _faults.around("export-drop-old"):
            shutil.rmtree(old, ignore_errors=True)
    finally:
        os.close(owner)


_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap the names of `a` and `b` atomically (Linux `renameat2(RENAME_EXCHANGE)`).

    Returns:
        True when swapped; False when the system or the file system cannot (then nothing
        changed); None when `b` vanished meanwhile.
    """
    if not EXCHANGE_SUPPORTED:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    with _faults.around("export-exchange"):
        done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
                         _RENAME_EXCHANGE) == 0
    if done:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    if code == errno.ENOENT:
        return None  # the old export was removed meanwhile
    raise ExportError(f"Cannot move the finished export to {str(b)!r}: "
                      f"{os.strerror(code)}.")


EXCHANGE_SUPPORTED = sys.platform.startswith("linux")
"""Whether `_move_into_place` tries the atomic exchange (tests turn it off to check the
two-step fallback)."""
