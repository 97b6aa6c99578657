"""`build_firmware`: compile and link the C project `ai8xize.py` wrote, as a user would.

The project's own `.c` files are compiled with `arm-none-eabi-gcc -Wall` and the flags of the
MSDK's makefiles, then linked with the MSDK's PeriphDrivers library, the EvKit_V1 board
files, the startup code and the MSDK's linker script; `arm-none-eabi-size` gives the section
sizes, compared with the chip's flash and SRAM. The MSDK side is compiled once and cached
(`ai8x_nb.synthesis.driverlib`), so a build costs about the project's own files.
"""

import logging
import os
import shutil
import time
from pathlib import Path

from ai8x_nb.devices import get_device
from ai8x_nb.errors import SynthesisError
from ai8x_nb.synthesis import toolchain as tc
from ai8x_nb.synthesis.driverlib import driver_library
from ai8x_nb.synthesis.firmware_result import FirmwareResult
from ai8x_nb.synthesis.msdk import ARCH_FLAGS, MSDK_VARIABLE, find_msdk, msdk_target

__all__ = ["build_firmware", "firmware_tools", "firmware_skip_reason"]

logger = logging.getLogger(__name__)

ERROR_LINES = 40
"""Error lines kept from a failed build (the first ones: later errors follow from them)."""


def firmware_tools(device=None, *, maxim_path=None, compiler=None):
    """Check that a firmware build for `device` can run: the compiler, newlib and the MSDK.

    Args:
        device: the device to build for.
        maxim_path: the MSDK folder; default `$MAXIM_PATH`.
        compiler: the compiler; default `arm-none-eabi-gcc` on PATH.

    Returns:
        `(toolchain, msdk)`.

    Raises:
        SynthesisError: something is missing or the device is not supported; the message
            says what and how to install it.
    """
    msdk_target(device)  # an unsupported device is the first thing to say
    return tc.find_toolchain(compiler), find_msdk(maxim_path, device)


def firmware_skip_reason(device=None, *, maxim_path=None, compiler=None):
    """Why a firmware build cannot run here, in a few words, or None when it can.

    For a notebook or a test that builds only when it can, instead of catching the error.

    Args:
        device: the device to build for.
        maxim_path: the MSDK folder; default `$MAXIM_PATH`.
        compiler: the compiler; default `arm-none-eabi-gcc` on PATH.

    Returns:
        None, or the first sentence of what is missing (`firmware_tools` raises the whole
        message, with how to install it).

    Example:

    >>> firmware_skip_reason()  # doctest: +SKIP
    'MAXIM_PATH is not set (the MSDK folder)'
    """
    try:
        msdk_target(device)
        if not (maxim_path or os.environ.get(MSDK_VARIABLE)):
            return f"{MSDK_VARIABLE} is not set (the MSDK folder)"
        if shutil.which(str(compiler or tc.COMPILER)) is None:
            return f"{compiler or tc.COMPILER} is not on PATH (apt-get install " \
                   f"gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        firmware_tools(device, maxim_path=maxim_path, compiler=compiler)
    except SynthesisError as err:
        return str(err).split(". ")[0]  # the first sentence says what is missing
    return None


def build_firmware(project_dir, *, maxim_path=None, device=None, build_dir=None,
                   compiler=None, cache_dir=None, jobs=None):
    """Compile and link a synthesized C project and measure it against the chip.

    Args:
        project_dir: the C project (`EXPORT_DIR/sdk/<name>`, `SynthesisResult.project_dir`).
        maxim_path: the MSDK folder; default `$MAXIM_PATH`.
        device: the device the project was synthesized for ("MAX78000"; the MAX78002 is
            refused: its MSDK files are not known here).
        build_dir: where objects, the map file and the ELF go; default
            `<project_dir>/build` (where the MSDK's make puts them).
        compiler: the compiler; default `arm-none-eabi-gcc` on PATH.
        cache_dir: the cache of the compiled MSDK side; default `$XDG_CACHE_HOME/ai8x-nb`,
            else `~/.cache/ai8x-nb`.
        jobs: parallel compiler processes; default the number of CPUs.

    Returns:
        A `FirmwareResult`: `ok` is False when a project file does not compile or the
        firmware does not link (the compiler's errors are in `errors`).

    Raises:
        SynthesisError: the project folder holds no `.c` files, the compiler, newlib or the
            MSDK is missing, the device is not supported, or an MSDK file does not compile.

    Example:

    >>> fw = build_firmware("runs/export/mnist/sdk/mnist")  # doctest: +SKIP
    >>> print(fw.summary())  # doctest: +SKIP
    firmware: flash 117,300 of 524,288 bytes (22.4 %), RAM 5,188 of 131,072 bytes (4.0 %); ...
    """
    started = time.monotonic()
    project_dir = Path(project_dir).resolve()
    sources = sorted(p.name for p in project_dir.glob("*.c")) if project_dir.is_dir() else []
    if not sources:
        raise SynthesisError(f"{str(project_dir)!r} is not a C project (no .c files). Pass the "
                             f"folder ai8x-nb synthesize wrote: EXPORT_DIR/sdk/<name>.")
    toolchain, msdk = firmware_tools(device, maxim_path=maxim_path, compiler=compiler)
    chip = get_device(device)
    jobs = jobs or os.cpu_count() or 1
    library = driver_library(msdk, toolchain, cache_dir=cache_dir, jobs=jobs)
    build_dir = Path(build_dir).resolve() if build_dir is not None else project_dir / "build"
    elf = build_dir / f"{project_dir.name}.elf"
    result = FirmwareResult(ok=False, project_dir=project_dir, device=chip.name,
                            flash_limit=chip.flash_bytes, ram_limit=chip.sram_bytes,
                            library_cached=library.cached, library_seconds=library.seconds,
                            build_dir=build_dir, compiler=toolchain.version, msdk=msdk.folder)
    if elf.exists():
        elf.unlink()  # never report the sizes of an earlier build

    flags = [*msdk.target.cflags(), f"-I{project_dir}", f"-I{project_dir / 'include'}",
             *msdk.include_flags()]
    logger.info("Compiling %s (%s) for %s", project_dir.name, ", ".join(sources), chip.name)
    objects, steps = tc.compile_all(toolchain, jobs, sources=sources,
                                    out_dir=build_dir / "obj", flags=flags, cwd=project_dir)
    if all(s.ok for s in steps):
        steps.append(tc.link(toolchain, _link_arguments(msdk, library, objects, elf),
                             cwd=project_dir))
    diagnostics = [d for s in steps for d in tc.parse_diagnostics(s.output)]
    result.warnings = [d for d in diagnostics if d.kind == "warning"]
    failed = [s for s in steps if not s.ok]
    if failed:
        result.errors = _error_lines(failed, diagnostics)
    else:
        result.elf = elf
        result.text, result.data, result.bss = tc.section_sizes(toolchain, elf)
        result.ok = True
    result.seconds = time.monotonic() - started
    logger.debug("%s", result.summary())
    return result


def _link_arguments(msdk, library, objects, elf):
    """The link rule of the MSDK's `gcc.mk`: its linker script, unused sections dropped."""
    return ["-T", str(msdk.path(msdk.target.linker_script)), "--entry", "Reset_Handler",
            *ARCH_FLAGS, "-Xlinker", "--gc-sections", "-Xlinker", "-Map",
            "-Xlinker", str(elf.with_suffix(".map")), "-o", str(elf),
            *map(str, objects), *map(str, library.objects),
            "-Xlinker", "--start-group", str(library.archive), "-lc", "-lm", "-lnosys",
            "-Xlinker", "--end-group"]


def _error_lines(failed, diagnostics):
    """The errors gcc or the linker named, else the last lines of what a failed step printed."""
    lines = [str(d) for d in diagnostics if d.kind == "error"]
    for step in failed:
        named = any(d.kind == "error" for d in tc.parse_diagnostics(step.output))
        if not named:
            tail = [l.strip() for l in step.output.splitlines() if l.strip()][-8:]
            lines += tail or [f"{step.target}: the compiler exited with status "
                              f"{step.returncode}"]
    return lines[:ERROR_LINES]
