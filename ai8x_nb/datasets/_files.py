"""File helpers for the dataset loaders.

Data-dir resolution, checksums, downloads with a progress bar, archive
extraction and atomic writes. Nothing here knows about a particular dataset.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ai8x_nb import _atomic

from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)

ENV_VAR = "AI8X_NB_DATA"
DEFAULT_DATA_DIR = "data"
CACHE_NAME = "ai8x-nb"
DOWNLOAD_TIMEOUT_S = 20.0
_CHUNK = 1 << 20

FIX_HINT = f"set {ENV_VAR}, or pass data_dir= (ai8x-nb: --data-dir), to a folder that holds it"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the folder that holds the datasets.

    Precedence: the `data_dir` argument, then the environment variable
    `AI8X_NB_DATA`, then `./data` (relative to the current directory).

    Args:
        data_dir: explicit folder, or `None`.

    Returns:
        The folder as an absolute `Path` (it may not exist yet).

    Example:
        >>> resolve_data_dir("/tmp/data")
        PosixPath('/tmp/data')
    """
    if data_dir is None:
        data_dir = os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser().resolve()


def cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the folder for processed-data caches (never inside a data folder).

    Precedence: the `cache_dir` argument, then `$XDG_CACHE_HOME/ai8x-nb`, then
    `~/.cache/ai8x-nb`.

    Example:
        >>> cache_dir("/tmp/c")
        PosixPath('/tmp/c')
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / CACHE_NAME


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Return the hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check_checksum(
    path: Path,
    expected: str,
    *,
    algorithm: str = "md5",
    expected_size: int | None = None,
) -> None:
    """Raise `DatasetError` if `path` does not have the expected digest.

    Args:
        path: file to check.
        expected: expected hex digest.
        algorithm: `"md5"` or `"sha256"`.
        expected_size: optional size in bytes, only used to make the message
            say "truncated" when the file is shorter than it should be.

    Raises:
        DatasetError: the digest differs; the message names the file, both
            digests and the sizes.
    """
    got = file_digest(path, algorithm)
    if got == expected.lower():
        return
    size = path.stat().st_size
    what = "corrupt"
    if expected_size is not None and size < expected_size:
        what = f"truncated or corrupt ({size} bytes, expected {expected_size})"
    elif expected_size is not None and size != expected_size:
        what = f"corrupt ({size} bytes, expected {expected_size})"
    raise DatasetError(
        f"{path} is {what}: {algorithm} {got}, expected {expected}. "
        f"Delete it and download it again, or {FIX_HINT}."
    )


def missing_error(paths: Iterable[Path], url: str | None, reason: str = "") -> DatasetError:
    """Build the error for files that are absent and could not be downloaded."""
    names = ", ".join(str(p) for p in paths)
    msg = f"Missing dataset file(s): {names}."
    if url:
        msg += f" Download from {url}"
        msg += f" failed ({reason})." if reason else " was not attempted (download=False)."
    msg += f" To fix: {FIX_HINT}."
    return DatasetError(msg)


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest` atomically, with a tqdm progress bar.

    The data go to a temporary file in `dest`'s folder, are checked, and only
    then renamed to `dest`, so an interrupted download never leaves a partial
    file under the final name.

    Args:
        url: source URL (`http(s)://` or `file://`).
        dest: final path.
        md5: expected md5 of the file, or `None` to skip the check (then the
            loaders check the file's structure only).
        timeout: socket timeout in seconds.
        progress: show a tqdm progress bar.

    Returns:
        `dest`.

    Raises:
        DatasetError: the download failed (names `dest`, `url` and the fix) or
            the downloaded file has the wrong md5.
    """
    from tqdm.auto import tqdm  # imported lazily: only needed when downloading

    dest = Path(dest)
    logger.info("Downloading %s -> %s", url, dest)
    tmp_name = None
    created = []
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed official URLs
            total = int(response.headers.get("Content-Length") or 0) or None
            created = make_parents(dest)
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            with os.fdopen(fd, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        if md5 is not None:
            got = file_digest(Path(tmp_name), "md5")
            if got != md5:
                raise DatasetError(
                    f"Downloaded {url} to {dest} but its md5 is {got}, expected {md5}; "
                    f"the file was discarded. Try again, or {FIX_HINT}."
                )
        os.replace(tmp_name, dest)
        tmp_name = None
        created = []
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise missing_error([dest], url, f"{type(exc).__name__}: {exc}") from exc
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
        remove_empty(created)
    return dest


def make_parents(path: Path) -> list[Path]:
    """Create the missing parent folders of `path`; return them, deepest first."""
    missing = []
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove the folders (deepest first) that are still empty: a failed download leaves none."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break  # not empty (another writer), or already gone


def _common_top(names: list[str]) -> str | None:
    tops = {n.split("/", 1)[0] for n in names if n and not n.startswith("__MACOSX")}
    if len(tops) == 1:
        top = tops.pop()
        if all(n == top or n.startswith(top + "/") or n.startswith("__MACOSX") for n in names):
            return top
    return None


def _safe_target(dest: Path, name: str, top: str | None) -> Path | None:
    """Map an archive member to a path under `dest`, or None to skip it."""
    if name.startswith("__MACOSX"):
        return None
    if top is not None:
        name = name[len(top) :].lstrip("/")
    if not name:
        return None
    target = (dest / name).resolve()
    if dest.resolve() not in target.parents:
        raise DatasetError(f"Archive member {name!r} would be written outside {dest}; refusing to extract.")
    return target


def extract(archive: Path, dest: Path, *, strip_top: bool = True) -> Path:
    """Extract a `.tar.gz` or `.zip` archive into `dest`.

    Args:
        archive: the archive file.
        dest: target folder (created).
        strip_top: when every member sits under one top-level folder (as in
            `cifar-10-python.tar.gz` or `rps.zip`), drop that folder so the
            content lands directly in `dest`, whatever `dest` is called.

    Returns:
        `dest`.

    Raises:
        DatasetError: the archive is unreadable or has unsafe member paths.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                top = _common_top([i.filename for i in infos]) if strip_top else None
                for info in infos:
                    target = _safe_target(dest, info.filename, top)
                    if target is None or info.is_dir():
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                top = _common_top([m.name for m in members]) if strip_top else None
                for m in members:
                    target = _safe_target(dest, m.name, top)
                    if target is None or not m.isfile():
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(m)
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DatasetError(f"Cannot extract {archive}: {type(exc).__name__}: {exc}. Delete it and retry.") from exc
    logger.info("Extracted %s -> %s", archive, dest)
    return dest


def is_writable_dir(path: Path) -> bool:
    """True if files may be created in `path` (or in its nearest existing parent).

    A folder without any write permission bit counts as read-only even for
    root, so shared read-only data folders are never written to.
    """
    path = Path(path)
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK)


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> Path:
    """Save arrays as an uncompressed `.npz`, atomically (no partial file on failure)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return _atomic.write_bytes(path, buf.getvalue())


def atomic_save_npy(path: Path, array: np.ndarray) -> Path:
    """Save one array as `.npy`, atomically, without pickling."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return _atomic.write_bytes(path, buf.getvalue())
