"""The MSDK side of a firmware build, compiled once and cached.

Every project links the same PeriphDrivers library, board support files, startup code and
system init. They depend only on the MSDK, the compiler and the flags, so they are compiled
once into `<cache>/firmware/<device>-<key>/` (the key hashes the MSDK folder, its files'
sizes and times, the compiler and its version, and the flags) and reused by every later build.
The cache is never inside the MSDK folder. An entry is built in a temporary sibling and
renamed into place when complete, so a reader never sees half of one; builders of one key
take turns (a file lock), so concurrent builds compile it once.

Like the MSDK's own library build, these files are compiled without the project's folder on
the include path: nothing in them reads a project's headers.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from ai8x_nb._lock import FolderLock
from ai8x_nb.datasets._files import cache_dir as default_cache_dir
from ai8x_nb.errors import SynthesisError
from ai8x_nb.synthesis import toolchain as tc

__all__ = ["DriverLibrary", "driver_library", "cache_key"]

logger = logging.getLogger(__name__)

ARCHIVE = "libPeriphDriver.a"
INDEX = "library.json"
FORMAT = 1
"""Bumped when the entry's layout changes, so older entries are not read."""


@dataclasses.dataclass(frozen=True)
class DriverLibrary:
    """A compiled MSDK side, ready to link.

    Attributes:
        folder: the cache entry.
        archive: the PeriphDrivers library (`libPeriphDriver.a`).
        objects: board support, startup, system and heap objects (linked as plain objects,
            as the MSDK's makefiles do).
        cached: True when the entry existed already; False when this call compiled it.
        seconds: time spent (compiling, or finding the entry).
    """

    folder: Path
    archive: Path
    objects: tuple
    cached: bool
    seconds: float


def cache_key(msdk, toolchain):
    """A 16-hex-digit key of everything the compiled files depend on."""
    target = msdk.target
    files = []
    for rel in (*target.driver_sources, *target.board_sources, *target.system_sources,
                target.startup_source):
        st = (msdk.folder / rel).stat()
        files.append([str(rel), st.st_size, st.st_mtime_ns])
    material = {"format": FORMAT, "msdk": str(msdk.folder), "gcc": toolchain.gcc,
                "version": toolchain.version, "cflags": target.cflags(),
                "asflags": target.asflags(), "includes": [str(d) for d in target.include_dirs],
                "files": files}
    text = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def driver_library(msdk, toolchain, *, cache_dir=None, jobs=None):
    """The compiled MSDK side for `msdk.target`: from the cache, or compiled into it now.

    Args:
        msdk: the `Msdk` (folder and target).
        toolchain: the `Toolchain`.
        cache_dir: the cache folder; default `$XDG_CACHE_HOME/ai8x-nb`, else
            `~/.cache/ai8x-nb`.
        jobs: parallel compiler processes (default: the number of CPUs).

    Returns:
        A `DriverLibrary`.

    Raises:
        SynthesisError: an MSDK file does not compile (the compiler's error is quoted), or
            the cache folder cannot be written.
    """
    started = time.monotonic()
    root = default_cache_dir(cache_dir) / "firmware"
    name = f"{msdk.target.device}-{cache_key(msdk, toolchain)}"
    final = root / name
    found = _load(final)
    if found is None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SynthesisError(f"Cannot create the firmware cache folder {str(root)!r}: "
                                 f"{err}. Pass another cache_dir.") from err
        with FolderLock(root / f".{name}.lock").acquire(blocking=True):
            found = _load(final)  # built by another process while this one waited
            if found is None:
                for partial in root.glob(f".{name}.partial-*"):  # left by a killed builder
                    shutil.rmtree(partial, ignore_errors=True)
                _build(final, msdk, toolchain, jobs or os.cpu_count() or 1)
                found = _load(final)
                return dataclasses.replace(found, cached=False,
                                           seconds=time.monotonic() - started)
    return dataclasses.replace(found, seconds=time.monotonic() - started)


def _load(folder):
    """The entry in `folder`, or None when there is none (or it is incomplete)."""
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None
    archive = folder / ARCHIVE
    objects = tuple(folder / name for name in index.get("objects", ()))
    if index.get("format") != FORMAT or not archive.is_file() or \
            not all(o.is_file() for o in objects):
        return None
    return DriverLibrary(folder=folder, archive=archive, objects=objects, cached=True,
                         seconds=0.0)


def _build(final, msdk, toolchain, jobs):
    target = msdk.target
    logger.info("Compiling the MSDK's %s drivers and board files once (cached in %s)",
                target.device, final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        includes = msdk.include_flags()
        c_sources = [msdk.path(s) for s in (*target.driver_sources, *target.board_sources,
                                            *target.system_sources)]
        objects, steps = tc.compile_all(toolchain, jobs, sources=c_sources, out_dir=tmp / "obj",
                                        flags=target.cflags() + includes)
        startup, more = tc.compile_all(toolchain, 1, sources=[msdk.path(target.startup_source)],
                                       out_dir=tmp / "obj", flags=target.asflags() + includes)
        steps += more
        failed = [s for s in steps if not s.ok]
        if failed:
            raise SynthesisError(
                f"The MSDK file {failed[0].target} does not compile with {toolchain.version} "
                f"({len(failed)} file(s) failed):\n{failed[0].output.strip()[-2000:]}\n"
                f"Check that MAXIM_PATH names a complete MSDK and the compiler is "
                f"arm-none-eabi-gcc.")
        for step in steps:
            for d in tc.parse_diagnostics(step.output):
                logger.debug("MSDK %s: %s", d.kind, d)
        n_drivers = len(target.driver_sources)
        archive = tmp / ARCHIVE
        tc.make_archive(toolchain, archive, objects[:n_drivers])
        linked = [o.relative_to(tmp) for o in objects[n_drivers:] + startup]
        for o in objects[:n_drivers]:
            o.unlink()
        index = {"format": FORMAT, "objects": [str(o) for o in linked],
                 "msdk": str(msdk.folder), "compiler": toolchain.version,
                 "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (tmp / INDEX).write_text(json.dumps(index, indent=2) + "\n")
        tmp.chmod(0o755)
        if final.exists():  # an incomplete entry (files deleted by hand): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
