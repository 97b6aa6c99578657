"""The export folder: written into a hidden temporary sibling, moved into place at the end.

A reader never sees a half-written export: `staging_folder` yields a temporary folder next
to the final one (`.<name>.partial-<pid>-XXXX`), and only when the body finished without an
error renames it to the final name (replacing an older export of that name at that moment).
On an error the temporary folder is removed and the older export, if any, stays untouched.
Folders left by a process that died mid-export are removed by the next export of that name;
exporters of one name take turns for the final rename (`.<name>.lock`).
`Manifest` is the `manifest.json` that describes what the folder holds.
"""

import contextlib
import dataclasses
import datetime
import errno
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from ai8x_nb import _atomic
from ai8x_nb._lock import FolderLock
from ai8x_nb.errors import ExportError

__all__ = ["Manifest", "staging_folder", "MANIFEST_NAME", "ROLES"]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
STALE_SECONDS = 3600
"""Age after which a staging folder without an owner pid (older versions) counts as stale."""

ROLES = ("savedmodel", "onnx", "synthesis_weights", "synthesis_yaml", "sample_input",
         "sample_output", "sample_layers", "tflite", "tflite_int8", "ai8xize_command", "esp32s3")
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

        Raises:
            ExportError: the folder has no readable manifest.
        """
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ExportError(f"Cannot read the export manifest {str(path)!r}: {err}. Export "
                              f"the model again with ai8x_nb.export.export_model.") from err
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(folder=Path(folder), **{k: v for k, v in data.items() if k in fields})


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

    Staging folders of `final_dir` left by dead processes are removed first.

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
    _remove_stale(parent, final_dir.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.partial-{os.getpid()}-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        yield tmp
        _move_into_place(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _owner_alive(path):
    """False when the staging folder's owner process is gone (or, unnamed, it is old)."""
    tail = path.name.rsplit(".", 1)[-1]  # "partial-<pid>-XXXX" or "old-<pid>-XXXX"
    parts = tail.split("-")
    if len(parts) >= 3 and parts[1].isdigit():
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


def _remove_stale(parent, name):
    for pattern in (f".{name}.partial-*", f".{name}.old-*"):
        for path in parent.glob(pattern):
            if path.is_dir() and not _owner_alive(path):
                logger.info("Removing %s, left by an export that did not finish.", path)
                shutil.rmtree(path, ignore_errors=True)


def _move_into_place(tmp, final_dir):
    # Exporters of one name take turns: between moving the old export aside and moving the new
    # one in, another exporter must not do the same (it would find the name missing or taken).
    with FolderLock(final_dir.parent / f".{final_dir.name}.lock").acquire(blocking=True):
        try:
            os.rename(tmp, final_dir)  # no export of that name yet (or an empty folder)
            logger.debug("export written to %s", final_dir)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: "
                                  f"{err}.") from err
        # A directory cannot be renamed over a non-empty one: move the old export aside first.
        old = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.old-{os.getpid()}-",
                                    dir=final_dir.parent))
        try:
            try:
                os.replace(final_dir, old / "previous")
            except FileNotFoundError:
                pass  # removed meanwhile by someone else: nothing to keep
            try:
                os.replace(tmp, final_dir)
            except OSError as err:
                if (old / "previous").exists() and not final_dir.exists():
                    os.replace(old / "previous", final_dir)
                raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: "
                                  f"{err}.") from err
        finally:
            shutil.rmtree(old, ignore_errors=True)
    logger.debug("export written to %s", final_dir)
