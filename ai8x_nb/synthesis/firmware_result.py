"""What one firmware build gave: the verdict, section sizes against the chip, diagnostics."""

import dataclasses
import re
from pathlib import Path

__all__ = ["FirmwareResult"]

SHOWN = 12
"""Warnings and errors listed one per line in `summary()`; the rest are counted."""
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


@dataclasses.dataclass
class FirmwareResult:
    """The outcome of `build_firmware`.

    Attributes:
        ok: every project file compiled and the firmware linked.
        project_dir: the C project.
        device: the device built for.
        elf: the linked firmware (`<build_dir>/<project>.elf`), or None.
        text: bytes of code and constants (`arm-none-eabi-size`), or None.
        data: bytes of initialised data (stored in flash, copied to SRAM), or None.
        bss: bytes of zeroed data (SRAM), or None.
        flash_limit: the chip's flash in bytes (`Device.flash_bytes`).
        ram_limit: the chip's SRAM in bytes (`Device.sram_bytes`).
        warnings: the compiler's and linker's warnings about the project (`Diagnostic`s,
            `str()` gives "cnn.c:12: message [-Wflag]").
        errors: the compiler's or linker's errors, as text lines.
        seconds: wall time of the whole build.
        library_cached: the MSDK side came from the cache (False: compiled by this build).
        library_seconds: time spent on the MSDK side.
        build_dir: where the objects, the map file and the ELF went.
        compiler: the compiler's version line.
        msdk: the MSDK folder.
    """

    ok: bool
    project_dir: Path
    device: str
    elf: Path = None
    text: int = None
    data: int = None
    bss: int = None
    flash_limit: int = None
    ram_limit: int = None
    warnings: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    library_cached: bool = None
    library_seconds: float = 0.0
    build_dir: Path = None
    compiler: str = None
    msdk: Path = None

    @property
    def flash_bytes(self):
        """Flash the firmware takes: code, constants and the initial values of data."""
        return None if self.text is None else self.text + self.data

    @property
    def ram_bytes(self):
        """SRAM the firmware's variables take (data + bss; the stack and heap come on top)."""
        return None if self.data is None else self.data + self.bss

    @property
    def overflow(self):
        """Bytes by which the firmware exceeds each memory region the linker named, e.g.
        `{"SRAM": 59992}`; `{"stack": None}` when only the stack is left without room (the
        linker script's check gives no number); empty when nothing overflowed."""
        found = {}
        for line in self.errors:
            m = _OVERFLOW.search(line)
            if m:
                found[m.group(1)] = int(m.group(2))
        if not found and any("overflowed with stack" in line for line in self.errors):
            found["stack"] = None
        return found

    def to_dict(self):
        """JSON-able summary (stored in `manifest.json` under `firmware`)."""
        return {"ok": bool(self.ok), "device": self.device,
                "project_dir": str(self.project_dir),
                "elf": str(self.elf) if self.elf else None,
                "text": self.text, "data": self.data, "bss": self.bss,
                "flash_bytes": self.flash_bytes, "flash_limit": self.flash_limit,
                "ram_bytes": self.ram_bytes, "ram_limit": self.ram_limit,
                "warnings": [str(w) for w in self.warnings], "errors": list(self.errors),
                "overflow": self.overflow,
                "seconds": round(float(self.seconds), 2),
                "library_cached": self.library_cached,
                "compiler": self.compiler, "msdk": str(self.msdk) if self.msdk else None}

    def summary(self):
        """A few lines for a person: sizes against the chip, then the warnings or errors."""
        if not self.ok:
            count, overflow = len(self.errors), self.overflow
            what = (f"does not fit the {self.device}: " + ", ".join(
                f"{region} overflowed by {n:,} bytes" if n is not None else
                "no room left for the stack in SRAM" for region, n in overflow.items())
                    if overflow else
                    f"FAILED to build {self.project_dir} for {self.device}; {count} "
                    f"error{'s' if count != 1 else ''}")
            return "\n".join([f"firmware: {what} [{self.seconds:.1f} s]:"]
                             + _listed(self.errors))
        count = len(self.warnings)
        tail = (f"; {count} compiler warning{'s' if count != 1 else ''}:" if count else
                "; no compiler warnings")
        lines = [f"firmware: flash {_share(self.flash_bytes, self.flash_limit)}, "
                 f"RAM {_share(self.ram_bytes, self.ram_limit)}{tail}"]
        lines += _listed([str(w) for w in self.warnings])
        cache = "MSDK drivers cached" if self.library_cached else \
            f"MSDK drivers compiled in {self.library_seconds:.1f} s"
        lines.append(f"firmware ELF: {self.elf} (text {self.text:,}, data {self.data:,}, "
                     f"bss {self.bss:,} bytes) [{self.seconds:.1f} s, {cache}]")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def _share(used, limit):
    if not limit:
        return f"{used:,} bytes"
    return f"{used:,} of {limit:,} bytes ({100 * used / limit:.1f} %)"


def _listed(items):
    lines = [f"  {item}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"  ... and {len(items) - SHOWN} more")
    return lines
