"""What each embedded target gets from one trained model: accuracy and memory, side by side.

Read from an export's `Manifest`: the MAX78000/MAX78002 integer simulation (and, once
`synthesize(build=True)` ran, the firmware's flash and RAM), and the int8 TFLite model as
TensorFlow Lite for Microcontrollers runs it (ESP32-S3): accuracy, model bytes, arena bytes.
The CLI prints `targets_text`; the notebooks show `targets_rows` as a table.
"""

__all__ = ["targets_rows", "targets_text"]

COLUMNS = ("target", "runtime", "accuracy", "model / flash", "RAM / arena", "status")


def _bytes(value, limit=None):
    if value is None:
        return ""
    text = f"{value:,} B"
    if limit:
        text += f" of {limit:,} ({100.0 * value / limit:.1f} %)"
    return text


def _accuracy(manifest, key):
    value = manifest.accuracy.get(key)
    return "" if value is None else f"{100.0 * value:.2f} %"


def targets_rows(manifest):
    """One row per target of an export, as dicts keyed by `COLUMNS`.

    Args:
        manifest: an `ai8x_nb.export.Manifest`.

    Returns:
        A list of dicts (empty strings where a figure is not known).

    Example:

    >>> for row in targets_rows(Manifest.load("export/mnist")):  # doctest: +SKIP
    ...     print(row["target"], row["accuracy"])
    """
    rows = []
    if "synthesis_yaml" in manifest.artifacts or "synthesis" in manifest.skipped:
        firmware = manifest.firmware or {}
        verdict = (manifest.synthesis or {}).get("verdict")
        status = ("not written: " + manifest.skipped["synthesis"].splitlines()[0]
                  if "synthesis" in manifest.skipped else
                  f"ai8xize.py {verdict}" if verdict else "not synthesized yet")
        if firmware:
            status += ("; firmware built" if firmware.get("ok") else "; firmware build FAILED")
            if firmware.get("warnings"):
                status += f" ({len(firmware['warnings'])} compiler warnings)"
        rows.append({"target": manifest.device, "runtime": "integer simulation (bit-exact)",
                     "accuracy": _accuracy(manifest, "integer_simulation"),
                     "model / flash": _bytes(firmware.get("flash_bytes"),
                                             firmware.get("flash_limit")),
                     "RAM / arena": _bytes(firmware.get("ram_bytes"), firmware.get("ram_limit")),
                     "status": status})
    if "tflite_int8" in manifest.artifacts or "tflite_int8" in manifest.skipped:
        micro = manifest.details.get("tflite_micro") or {}
        if "tflite_int8" in manifest.skipped:
            status = "not written: " + manifest.skipped["tflite_int8"].splitlines()[0]
        elif "esp32s3" in manifest.skipped:
            status = manifest.skipped["esp32s3"].splitlines()[0]
        else:
            status = (f"TFLite Micro runs it ({', '.join(micro.get('ops', {}))}); "
                      f"{micro.get('outputs_equal_litert')} of {micro.get('checked_samples')} "
                      f"outputs equal to LiteRT's reference kernels")
        rows.append({"target": "ESP32-S3 (int8 TFLite)", "runtime": "LiteRT int8 kernels",
                     "accuracy": _accuracy(manifest, "tflite_int8"),
                     "model / flash": _bytes(micro.get("model_bytes")),
                     "RAM / arena": _bytes(micro.get("arena_bytes")), "status": status})
    return rows


def targets_text(manifest):
    """`targets_rows` as aligned text lines (one per target), for the command line."""
    rows = targets_rows(manifest)
    if not rows:
        return ""
    lines = []
    for row in rows:
        parts = [f"{row['target']}: accuracy {row['accuracy'] or 'n/a'} ({row['runtime']})"]
        if row["model / flash"]:
            parts.append(("flash " if "of" in row["model / flash"] else "model ")
                         + row["model / flash"])
        if row["RAM / arena"]:
            parts.append(("RAM " if "of" in row["RAM / arena"] else "arena ")
                         + row["RAM / arena"])
        lines.append("  " + ", ".join(parts) + f"; {row['status']}")
    return "\n".join(lines)
