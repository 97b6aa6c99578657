"""ADI's MSDK: where it is, and which of its files and flags build a MAX78000 project.

The MSDK's makefiles (`gcc.mk`, `max78000.mk`, the board's `board.mk`, the PeriphDrivers'
`max78000_files.mk`) decide how a project is built; `MsdkTarget` holds those facts as data
for each device ai8x-nb can build for. Only the MAX78000 is described: the MAX78002's files
were not available when this was written, so its file set and flags are not guessed.
"""

import dataclasses
import os
from pathlib import Path

from ai8x_nb.devices import get_device
from ai8x_nb.errors import SynthesisError

__all__ = ["MSDK_VARIABLE", "MSDK_HINT", "MsdkTarget", "TARGETS", "find_msdk", "msdk_target",
           "Msdk"]

MSDK_VARIABLE = "MAXIM_PATH"
MSDK_HINT = (
    "Get ADI's MSDK (https://github.com/analogdevicesinc/msdk, or the Maxim Micros SDK "
    f"installer) and point ai8x-nb at it: export {MSDK_VARIABLE}=/path/to/msdk (or pass "
    "maxim_path=, or --maxim-path on the command line).")

ARCH_FLAGS = ("-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16")
"""The Cortex-M4F the MSDK compiles and links for (`gcc.mk`)."""
WARNING_FLAGS = ("-Wall", "-Wno-format", "-Wcast-align")


@dataclasses.dataclass(frozen=True)
class MsdkTarget:
    """What the MSDK's makefiles compile and link for one device and board.

    Paths are relative to the MSDK folder.

    Attributes:
        device: the device name ("MAX78000").
        target_rev: the `TARGET_REV` define of the chip revision the MSDK builds for.
        board: the board folder under `Libraries/Boards/<device>/`.
        driver_sources: the PeriphDrivers library's sources (`<device>_files.mk`).
        board_sources: the board support files the board's `board.mk` adds to a project.
        defines: more `-D` flags of the device and board makefiles.
    """

    device: str
    target_rev: str
    board: str
    driver_sources: tuple
    board_sources: tuple
    defines: tuple = ("MXC_ASSERT_ENABLE", "ARM_MATH_CM4", "LIB_BOARD")

    @property
    def device_dir(self):
        return Path("Libraries/CMSIS/Device/Maxim") / self.device

    @property
    def startup_source(self):
        """The vector table and reset handler (assembler), linked into every project."""
        return self.device_dir / "Source" / "GCC" / f"startup_{self.device.lower()}.S"

    @property
    def system_sources(self):
        """System init and heap (C), linked into every project."""
        source = self.device_dir / "Source"
        return (source / f"system_{self.device.lower()}.c", source / "heap.c")

    @property
    def linker_script(self):
        return self.device_dir / "Source" / "GCC" / f"{self.device.lower()}.ld"

    @property
    def include_dirs(self):
        """The MSDK's include folders for this target (the project's own come first)."""
        boards = Path("Libraries/Boards") / self.device
        dirs = [boards / self.board / "Include", boards / "Include", self.device_dir / "Include",
                Path("Libraries/CMSIS/5.9.0/Core/Include"),
                Path("Libraries/PeriphDrivers/Include") / self.device]
        dirs += sorted({Path(s).parent for s in self.driver_sources})
        return tuple(dirs)

    def cflags(self):
        """Compiler flags of `.c` files, without include folders (`gcc.mk` + `<device>.mk`)."""
        return [*ARCH_FLAGS, "-Wa,-mimplicit-it=thumb", "-O2", "-ffunction-sections",
                "-fdata-sections", *WARNING_FLAGS, "-fno-isolate-erroneous-paths-dereference",
                f"-DTARGET={self.device}", f"-DTARGET_REV={self.target_rev}",
                *(f"-D{d}" for d in self.defines)]

    def asflags(self):
        """Flags of the startup file (`.S`)."""
        return ["-mthumb", "-mcpu=cortex-m4"]

    def required_files(self):
        """Every MSDK file a build reads directly (headers aside)."""
        return (*self.driver_sources, *self.board_sources, *self.system_sources,
                self.startup_source, self.linker_script)


_PERIPH = "Libraries/PeriphDrivers/Source/"
_MAX78000_DRIVERS = (
    "ADC/adc_me17.c", "ADC/adc_reva.c", "AES/aes_me17.c", "AES/aes_revb.c",
    "CAMERAIF/cameraif_ai85.c", "CAMERAIF/cameraif_reva.c", "CRC/crc_me17.c", "CRC/crc_reva.c",
    "DMA/dma_me17.c", "DMA/dma_reva.c", "FLC/flc_common.c", "FLC/flc_me17.c", "FLC/flc_reva.c",
    "GPIO/gpio_ai85.c", "GPIO/gpio_common.c", "GPIO/gpio_reva.c", "I2C/i2c_me17.c",
    "I2C/i2c_reva.c", "I2S/i2s_ai85.c", "I2S/i2s_reva.c", "ICC/icc_me17.c", "ICC/icc_reva.c",
    "LP/lp_ai85.c", "LPCMP/lpcmp_ai85.c", "LPCMP/lpcmp_reva.c", "OWM/owm_me17.c",
    "OWM/owm_reva.c", "PT/pt_ai85.c", "PT/pt_reva.c", "RTC/rtc_me17.c", "RTC/rtc_reva.c",
    "SEMA/sema_me17.c", "SEMA/sema_reva.c", "SPI/spi_me17.c", "SPI/spi_reva1.c",
    "SYS/mxc_assert.c", "SYS/mxc_delay.c", "SYS/mxc_lock.c", "SYS/nvic_table.c",
    "SYS/pins_ai85.c", "SYS/sys_ai85.c", "TMR/tmr_ai85.c", "TMR/tmr_common.c", "TMR/tmr_revb.c",
    "TRNG/trng_ai85.c", "TRNG/trng_revb.c", "UART/uart_ai85.c", "UART/uart_common.c",
    "UART/uart_revb.c", "WDT/wdt_common.c", "WDT/wdt_me17.c", "WDT/wdt_revb.c",
    "WUT/wut_ai85.c", "WUT/wut_reva.c")

TARGETS = {
    "MAX78000": MsdkTarget(
        device="MAX78000", target_rev="0x4131", board="EvKit_V1",
        driver_sources=tuple(_PERIPH + s for s in _MAX78000_DRIVERS),
        board_sources=("Libraries/Boards/MAX78000/EvKit_V1/Source/board.c",
                       "Libraries/Boards/MAX78000/Source/led.c",
                       "Libraries/Boards/MAX78000/Source/pb.c",
                       "Libraries/Boards/MAX78000/Source/stdio.c")),
}
"""The devices ai8x-nb builds firmware for, with their MSDK file sets."""


@dataclasses.dataclass(frozen=True)
class Msdk:
    """An MSDK folder checked for one target.

    Attributes:
        folder: the MSDK folder (absolute).
        target: the `MsdkTarget`.
    """

    folder: Path
    target: MsdkTarget

    def path(self, relative):
        return self.folder / relative

    def include_flags(self):
        return [f"-I{self.folder / d}" for d in self.target.include_dirs]


def msdk_target(device):
    """The `MsdkTarget` of a device.

    Raises:
        UnknownDeviceError: not a device name.
        SynthesisError: ai8x-nb does not know the device's MSDK file set (the MAX78002).
    """
    name = get_device(device).name
    if name not in TARGETS:
        raise SynthesisError(
            f"ai8x-nb cannot build {name} firmware: it knows the MSDK files and flags of "
            f"{', '.join(TARGETS)} only (the trimmed MSDK it was developed with has no {name} "
            f"files, so they are not guessed). Build the {name} project with the MSDK's own "
            f"make instead: cd PROJECT_DIR && make (MAXIM_PATH set).")
    return TARGETS[name]


def find_msdk(maxim_path=None, device=None, *, environ=None):
    """Locate the MSDK and check that it holds the files a `device` build needs.

    Args:
        maxim_path: the MSDK folder; default `$MAXIM_PATH`.
        device: the device to build for.
        environ: the environment to read (default `os.environ`).

    Returns:
        An `Msdk`.

    Raises:
        SynthesisError: no folder given and `MAXIM_PATH` unset, the folder does not exist,
            lacks the device's files, or the device is not one ai8x-nb builds for.

    Example:

    >>> find_msdk("/opt/msdk").folder  # doctest: +SKIP
    PosixPath('/opt/msdk')
    """
    target = msdk_target(device)
    environ = os.environ if environ is None else environ
    folder = maxim_path or environ.get(MSDK_VARIABLE)
    origin = "the maxim_path argument" if maxim_path else MSDK_VARIABLE
    if not folder:
        raise SynthesisError(f"The MSDK is not configured: no maxim_path given and "
                             f"{MSDK_VARIABLE} is not set; building the firmware needs its "
                             f"drivers, startup code and linker script. {MSDK_HINT}")
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise SynthesisError(f"The MSDK folder {str(folder)!r} (from {origin}) does not exist. "
                             f"{MSDK_HINT}")
    if not (folder / target.device_dir).is_dir():
        raise SynthesisError(f"{str(folder)!r} (from {origin}) is not an MSDK with "
                             f"{target.device} support: {target.device_dir} is missing. "
                             f"{MSDK_HINT}")
    missing = [str(f) for f in target.required_files() if not (folder / f).is_file()]
    if missing:
        raise SynthesisError(
            f"The MSDK {str(folder)!r} (from {origin}) lacks {len(missing)} file(s) a "
            f"{target.device} build needs, e.g. {', '.join(missing[:3])}. ai8x-nb expects the "
            f"MSDK's Libraries/ layout with the {target.board} board files; use a full MSDK.")
    return Msdk(folder=folder, target=target)
