"""The Arm GNU toolchain (`arm-none-eabi-gcc`): find it, run it, read its diagnostics.

The firmware of a synthesized C project is built with the compiler a user builds it with:
Debian's `gcc-arm-none-eabi` with `libnewlib-arm-none-eabi` (the C library), or the one that
comes with ADI's MSDK, found on PATH or passed by path.
"""

import dataclasses
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ai8x_nb.errors import SynthesisError

__all__ = ["Toolchain", "Diagnostic", "CompileStep", "find_toolchain", "compile_all", "link",
           "make_archive", "section_sizes", "parse_diagnostics", "TOOLCHAIN_HINT", "COMPILER"]

logger = logging.getLogger(__name__)

COMPILER = "arm-none-eabi-gcc"
TOOLCHAIN_HINT = (
    "Install the Arm GNU toolchain and its C library: sudo apt-get install gcc-arm-none-eabi "
    "libnewlib-arm-none-eabi (Debian/Ubuntu), or put the MSDK's toolchain "
    "(Tools/GNUTools/.../bin) on PATH, or pass build_firmware(..., "
    "compiler='/path/to/arm-none-eabi-gcc').")


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """The compiler and its binutils.

    Attributes:
        gcc: the compiler (absolute path).
        size: `arm-none-eabi-size` beside it.
        ar: `arm-none-eabi-ar` beside it.
        version: the first line of `gcc --version`, e.g.
            "arm-none-eabi-gcc (15:12.2.rel1-1) 12.2.1 20221205".
    """

    gcc: str
    size: str
    ar: str
    version: str


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    """One warning or error gcc printed.

    Attributes:
        file: the file as gcc names it (relative to the folder it ran in).
        line: the line number (0 when gcc gave none, e.g. the linker).
        kind: "warning" or "error".
        message: the message, with its `[-Wflag]`.
    """

    file: str
    line: int
    kind: str
    message: str

    def __str__(self):
        return f"{self.file}:{self.line}: {self.message}" if self.line else \
            f"{self.file}: {self.message}"


@dataclasses.dataclass
class CompileStep:
    """One compiler run: what it compiled or linked, its exit status and its stderr."""

    target: str
    returncode: int
    output: str

    @property
    def ok(self):
        return self.returncode == 0


def find_toolchain(compiler=None):
    """Locate `arm-none-eabi-gcc`, its `size` and `ar`, and check that it has a C library.

    Args:
        compiler: the compiler's name or path; default `arm-none-eabi-gcc` on PATH.

    Returns:
        A `Toolchain`.

    Raises:
        SynthesisError: the compiler, `size` / `ar` beside it, or newlib (its C library) is
            missing; the message says how to install them.

    Example:

    >>> find_toolchain().version  # doctest: +SKIP
    'arm-none-eabi-gcc (15:12.2.rel1-1) 12.2.1 20221205'
    """
    name = str(compiler or COMPILER)
    gcc = shutil.which(name)
    if gcc is None:
        where = "on PATH" if compiler is None else "(from the compiler argument)"
        raise SynthesisError(f"The Arm compiler {name!r} was not found {where}; it builds the "
                             f"firmware of the synthesized C project. {TOOLCHAIN_HINT}")
    gcc = str(Path(gcc).absolute())
    if not gcc.endswith("gcc"):
        raise SynthesisError(f"The compiler {gcc!r} does not end in 'gcc', so its size and ar "
                             f"tools cannot be found beside it. Pass the path of "
                             f"arm-none-eabi-gcc.")
    tools = {}
    for tool in ("size", "ar"):
        path = gcc[:-3] + tool
        if shutil.which(path) is None:
            raise SynthesisError(f"{Path(path).name!r} is missing beside the compiler {gcc!r}. "
                                 f"{TOOLCHAIN_HINT}")
        tools[tool] = path
    version = (_run([gcc, "--version"]).stdout.splitlines() or [gcc])[0].strip()
    libc = _run([gcc, "-print-file-name=libc.a"]).stdout.strip()
    if not os.path.isabs(libc):  # gcc echoes the bare name when it has no such file
        raise SynthesisError(f"The compiler {gcc!r} has no C library (libc.a not found): "
                             f"newlib is not installed. {TOOLCHAIN_HINT}")
    return Toolchain(gcc=gcc, size=tools["size"], ar=tools["ar"], version=version)


def _run(command, cwd=None):
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              errors="replace")
    except OSError as err:
        raise SynthesisError(f"Cannot run {command[0]!r}: {err}. {TOOLCHAIN_HINT}") from err


def compile_all(toolchain, jobs, *, sources, out_dir, flags, cwd=None):
    """Compile sources to `out_dir/<stem>.o`, `jobs` compiler processes at a time.

    Args:
        toolchain: the `Toolchain`.
        jobs: parallel compiler processes.
        sources: the `.c` / `.S` files (paths; relative ones are relative to `cwd`).
        out_dir: the folder for the objects (created).
        flags: the compiler flags (without `-c -o`).
        cwd: the folder the compiler runs in (gcc names files relative to it).

    Returns:
        `(objects, steps)`: the object paths in the order of `sources`, and one `CompileStep`
        per source.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    objects = [out_dir / (Path(s).stem + ".o") for s in sources]
    if len(set(objects)) != len(objects):
        raise SynthesisError(f"Two of the sources {[str(s) for s in sources]} have the same "
                             f"name; their objects in {str(out_dir)!r} would overwrite each "
                             f"other. Rename one.")

    def one(source, obj):
        done = _run([toolchain.gcc, *flags, "-c", "-o", str(obj), str(source)], cwd=cwd)
        return CompileStep(target=str(source), returncode=done.returncode, output=done.stderr)

    with ThreadPoolExecutor(max(1, int(jobs))) as pool:
        steps = list(pool.map(one, sources, objects))
    return objects, steps


def link(toolchain, command, cwd=None):
    """Run the compiler as the linker with `command` (its arguments); returns a `CompileStep`."""
    done = _run([toolchain.gcc, *command], cwd=cwd)
    return CompileStep(target="link", returncode=done.returncode, output=done.stderr)


def make_archive(toolchain, path, objects):
    """Pack objects into the static library `path` with `ar`."""
    done = _run([toolchain.ar, "-cr", str(path), *map(str, objects)])
    if done.returncode != 0:
        raise SynthesisError(f"{toolchain.ar} could not write {str(path)!r}: "
                             f"{done.stderr.strip()}")
    return Path(path)


def section_sizes(toolchain, elf):
    """`(text, data, bss)` bytes of an ELF file, from `arm-none-eabi-size` (Berkeley format)."""
    done = _run([toolchain.size, "--format=berkeley", str(elf)])
    rows = done.stdout.splitlines()
    if done.returncode != 0 or len(rows) < 2:
        raise SynthesisError(f"{toolchain.size} could not read {str(elf)!r}: "
                             f"{done.stderr.strip() or done.stdout.strip()}")
    text, data, bss = (int(v) for v in rows[1].split()[:3])
    return text, data, bss


_COMPILER_LINE = re.compile(r"^(?P<file>[^\s:][^:]*?):(?:(?P<line>\d+):(?:\d+:)?)? "
                            r"(?P<kind>warning|error|fatal error): (?P<message>.*)$")
_LINKER_AT = re.compile(r"^(?P<file>[^\s:]+):\([^)]*\): (?P<message>.*)$")
"""The linker about a place in an object: `main.c:(.text.main+0x34): undefined reference ...`."""
_LINKER = re.compile(r"^(?:\S*/)?ld(?:\.bfd)?: (?P<message>.*)$")
"""The linker itself: `.../ld: region `FLASH' overflowed by 1024 bytes`."""


def _diagnostic(line):
    m = _COMPILER_LINE.match(line)
    if m:
        if m.group("file") == "collect2":  # "ld returned 1 exit status": the errors came before
            return None
        kind = "error" if "error" in m.group("kind") else "warning"
        return Diagnostic(file=m.group("file"), line=int(m.group("line") or 0), kind=kind,
                          message=m.group("message").strip())
    m = _LINKER_AT.match(line) or _LINKER.match(line)
    if not m or "in function" in m.group("message"):
        return None
    message = m.group("message").strip()
    kind = "warning" if message.startswith("warning:") else "error"
    return Diagnostic(file=m.groupdict().get("file") or "ld", line=0, kind=kind,
                      message=message.removeprefix("warning:").strip())


def parse_diagnostics(text):
    """The warnings and errors in gcc's (or the linker's) stderr, in order, without repeats.

    Args:
        text: what gcc printed to stderr.

    Returns:
        A list of `Diagnostic`; notes and "In function" context lines are left out.

    Example:

    >>> parse_diagnostics("cnn.c:12:5: warning: unused variable 'x' [-Wunused-variable]")
    [Diagnostic(file='cnn.c', line=12, kind='warning', message="unused variable 'x' [-Wunused-variable]")]
    """
    found = []
    for line in text.splitlines():
        item = _diagnostic(line.strip())
        if item is not None and item not in found:
            found.append(item)
    return found
