"""Plain helpers for tests that compile and link the C projects the synthesis tool writes.

A build needs `arm-none-eabi-gcc` with newlib and the MSDK (`MAXIM_PATH`; CI points it at
../shared/vendor/msdk-max78000). `FIRMWARE_SKIP` is the reason a build cannot run here, or
None. Every test of a session shares one cache folder under pytest's session temporary folder
(`session_cache`), so the MSDK's drivers are compiled once per session, whatever the user's
own cache holds.
"""

import collections

from ai8x_nb.synthesis import firmware_skip_reason

FIRMWARE_SKIP = firmware_skip_reason()
"""Why firmware cannot be built here (no compiler, no newlib, no MSDK), or None."""
FIRMWARE_SKIP_REASON = (f"cannot build firmware: {FIRMWARE_SKIP} (CI installs gcc-arm-none-eabi "
                        f"libnewlib-arm-none-eabi and sets MAXIM_PATH)")


def session_cache(tmp_path_factory):
    """The `XDG_CACHE_HOME` of this session's builds (the cache is `<it>/ai8x-nb`)."""
    return tmp_path_factory.getbasetemp() / "firmware-cache"


def build_and_check(project_dir, cache_home, device="MAX78000"):
    """Build a synthesized project; assert it compiled and linked within the chip.

    Returns:
        The `FirmwareResult`.
    """
    from ai8x_nb.synthesis import build_firmware

    result = build_firmware(project_dir, device=device, cache_dir=cache_home / "ai8x-nb")
    assert result.ok and not result.errors, result.summary()
    assert 0 < result.flash_bytes <= result.flash_limit, result.summary()
    assert 0 < result.ram_bytes <= result.ram_limit, result.summary()
    return result


def warnings_table(results):
    """One line per distinct compiler warning (without its line number), with its count."""
    counts = collections.Counter(f"{w.file}: {w.message}" for r in results for w in r.warnings)
    return "\n".join(f"  {n:>4} x {text}" for text, n in counts.most_common())
