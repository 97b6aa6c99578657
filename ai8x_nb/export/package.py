"""The export folder: written into a hidden temporary sibling, moved into place at the end.

A reader never sees a half-written export: `staging_folder` yields a temporary folder next
to the final one (`.<name>.partial-XXXX`), and only when the body finished without an error
renames it to the final name (replacing an older export of that name at that moment). On an
error the temporary folder is removed and the older export, if any, stays untouched.
`Manifest` is the `manifest.json` that describes what the folder holds.
"""

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ai8x_nb import _atomic
from ai8x_nb.errors import ExportError

__all__ = ["Manifest", "staging_folder", "MANIFEST_NAME", "ROLES"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"

ROLES = ("savedmodel", "onnx", "synthesis_weights", "synthesis_yaml", "sample_input",
         "sample_output", "tflite", "tflite_int8", "ai8xize_command")
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.partial-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        yield tmp
        _move_into_place(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into_place(tmp, final_dir):
    old = None
    if final_dir.exists():
        # A directory cannot be renamed over a non-empty one: move the old export aside first.
        old = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.old-", dir=final_dir.parent))
        os.replace(final_dir, old / "previous")
    try:
        os.replace(tmp, final_dir)
    except OSError as err:
        if old is not None:
            os.replace(old / "previous", final_dir)
            shutil.rmtree(old, ignore_errors=True)
        raise ExportError(f"Cannot move the finished export to {str(final_dir)!r}: {err}.") \
            from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.debug("export written to %s", final_dir)
