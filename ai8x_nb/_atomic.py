"""Atomic file writes: a temporary file in the target's folder, moved into place on success.

A process killed at any moment leaves either the previous file or the new one, never a
half-written file under the final name.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp", mode=0o644):
    """Yield a temporary path beside `path`; replace `path` with it when the block succeeds.

    Args:
        path: the final file.
        suffix: suffix of the temporary name (some writers insist on one, e.g. ".keras").
        mode: permissions of the final file (mkstemp creates it 0600, and writers that
            reopen the path keep that).

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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path, data, mode=0o644):
    """Write bytes atomically; the file gets `mode` (mkstemp would leave it 0600)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path, data):
    """Write JSON (indented, sorted keys) atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_bytes(path, text.encode())
