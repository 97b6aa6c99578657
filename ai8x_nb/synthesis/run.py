"""`synthesize`: run the vendor's `ai8xize.py` on an export folder and check its known answer.

The tool is the judge of the export: it reads the checkpoint, the YAML and the sample input,
checks them against the device, writes the C project and computes the known answer that
the C code verifies on the chip. `synthesize` asks it to also save that known answer as
NumPy (`--sample-numpy-filename`) and compares it, value by value, with the answer of our
own integer simulator (`sampleoutput.npy`).
"""

import logging
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import yaml

from ai8x_nb.errors import SynthesisError
from ai8x_nb.export.package import MANIFEST_NAME, Manifest
from ai8x_nb.synthesis import result as res
from ai8x_nb.synthesis.toollog import parse_latency, parse_ops
from ai8x_nb.synthesis.trace import LayerTrace, parse_layer_outputs, trace_layers
from ai8x_nb.synthesis.firmware import build_firmware, firmware_tools
from ai8x_nb.synthesis.tool import find_tool, tool_arguments, wants_softmax

__all__ = ["synthesize", "KNOWN_ANSWER", "REQUIRED_ROLES"]

logger = logging.getLogger(__name__)

KNOWN_ANSWER = "known_answer.npy"
"""The tool's known answer, saved by the tool into the C project folder."""
REQUIRED_ROLES = ("synthesis_weights", "synthesis_yaml", "sample_input", "sample_output")
_QUIET = ("Cannot run \"yamllint\"",)


def _package(export_dir):
    export_dir = Path(export_dir)
    if not (export_dir / MANIFEST_NAME).is_file():
        raise SynthesisError(f"{str(export_dir)!r} is not an export folder (no {MANIFEST_NAME}). "
                             f"Export a model first: ai8x-nb export RUN_DIR, or "
                             f"ai8x_nb.export.export_model(model, folder, targets='synthesis').")
    manifest = Manifest.load(export_dir)
    missing = [r for r in REQUIRED_ROLES if r not in manifest.artifacts]
    if missing:
        why = manifest.skipped.get("synthesis")
        raise SynthesisError(
            f"The export {str(export_dir)!r} has no synthesis package (missing: "
            f"{', '.join(missing)}). "
            + (f"It was skipped at export: {why.splitlines()[0]}" if why else
               "Export again with the 'synthesis' target (this version writes the checkpoint "
               "the tool needs)."))
    for role in REQUIRED_ROLES:
        if not manifest.path(role).is_file():
            raise SynthesisError(f"The export's {role} file {str(manifest.path(role))!r} is "
                                 f"missing; export the model again.")
    return manifest


_STAGES = ("Configuring device", "Configuring data set", "Arranging weights",
           "Storing weights", "Creating network")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _show(line):
    """Default progress: the tool's stage lines at INFO, everything else at DEBUG."""
    if not line or any(q in line for q in _QUIET):
        return
    if line.startswith(_STAGES):
        logger.info("ai8xize.py: %s", line[:160])
    else:
        logger.debug("ai8xize.py: %s", line[:300])


def _run_tool(tool, args, progress, timeout):
    """Run the tool from its folder, streaming its output; returns (returncode, text)."""
    # Unbuffered for live progress; no bytecode caches written into the tool's folder.
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1",
               TERM="dumb")
    started = time.monotonic()
    lines = []
    try:
        proc = subprocess.Popen([tool.python] + args, cwd=tool.folder, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
    except OSError as err:
        raise SynthesisError(f"Cannot start the synthesis tool's Python {tool.python!r}: {err}. "
                             f"Check AI8X_SYNTHESIS_PYTHON.") from err
    try:
        for raw in proc.stdout:
            line = _ANSI.sub("", raw.rstrip("\r\n").split("\r")[-1]).strip()
            lines.append(line)
            progress(line)
            if time.monotonic() - started > timeout:
                proc.kill()
                raise SynthesisError(f"ai8xize.py took longer than {timeout} s and was stopped; "
                                     f"pass a larger timeout.")
        returncode = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired as err:
        proc.kill()
        raise SynthesisError(f"ai8xize.py took longer than {timeout} s and was stopped; pass a "
                             f"larger timeout.") from err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    return returncode, "\n".join(lines)


def synthesize(export_dir, *, out=None, synthesis_dir=None, python=None, progress=None,
               timeout=900, extra_args=(), build=False, maxim_path=None, trace=False):
    """Run the vendor's synthesis tool on an export folder and verify its known answer.

    Args:
        export_dir: a folder written by `export_model` / `ai8x-nb export` with the
            synthesis package (`<name>-q.pth.tar`, `<name>.yaml`, `sampledata.npy`,
            `sampleoutput.npy`).
        out: where the tool writes (`--test-dir`); the C project lands in `out/<name>/`.
            Default: `<export_dir>/sdk`.
        synthesis_dir: the `ai8x-synthesis` folder; default `$AI8X_SYNTHESIS_DIR`.
        python: the tool environment's Python; default `$AI8X_SYNTHESIS_PYTHON`.
        progress: called with each line the tool prints; default: logged at INFO.
        timeout: seconds before the tool is stopped.
        extra_args: more `ai8xize.py` arguments passed through as they are, e.g.
            `["--energy"]`, `["--fifo"]`, `["--riscv"]`, `["--boost", "2.5"]`; recorded in
            `manifest.json` (`synthesis.command`). The options `synthesize` sets itself
            (`--test-dir`, `--prefix`, `--config-file`, ...) are refused.
        build: after a PASS, also compile and link the C project (`build_firmware`); the
            outcome is `result.firmware`.
        maxim_path: the MSDK folder for `build`; default `$MAXIM_PATH`.
        trace: have the tool log every layer's output and compare it, layer by layer, with
            our simulator's (`samplelayers.npz` of the export): `result.trace` names the first
            differing layer, channel and position with both values, or says all are equal.
            Slower: the tool prints every layer's data.

    Returns:
        A `SynthesisResult`; `result.ok` is True only when the tool succeeded and its known
        answer equals `sampleoutput.npy` (a failed firmware build shows in
        `result.firmware.ok`). The result is also stored in the export's `manifest.json`
        under `synthesis`, the firmware build under `firmware`.

    Raises:
        SynthesisError: `extra_args` sets an option `synthesize` manages; the folder holds
            no synthesis package, the tool cannot be found or
            started, or it ran past `timeout`; with `build`, the compiler or the MSDK is
            missing (checked before the tool runs) or the device is not supported.

    Example:

    >>> result = synthesize("runs/export/mnist")  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
    PASS: ai8xize.py accepted the export and its known answer equals sampleoutput.npy ...
    """
    export_dir = Path(export_dir).resolve()
    extra_args = _checked_options(extra_args)
    manifest = _package(export_dir)
    tool = find_tool(synthesis_dir, python)
    if build:
        firmware_tools(manifest.device, maxim_path=maxim_path)
    out = Path(out).resolve() if out is not None else export_dir / "sdk"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SynthesisError(f"Cannot create the synthesis output folder {str(out)!r}: {err}.") \
            from err
    project = out / manifest.name
    known = project / KNOWN_ANSWER
    if known.exists():
        known.unlink()  # never compare against an answer of an earlier run
    args = tool_arguments(prefix=manifest.name, device=manifest.device,
                          checkpoint=manifest.path("synthesis_weights"),
                          config=manifest.path("synthesis_yaml"),
                          sample=manifest.path("sample_input"), test_dir=out, verbose=True,
                          softmax=_classifier_output(manifest))
    # --verbose for the latency table; the data of every layer only for a trace.
    args += ([] if trace else ["--short-log"])
    args += ["--sample-numpy-filename", KNOWN_ANSWER] + [str(a) for a in extra_args]
    logger.info("synthesizing %s for %s with %s", manifest.name, manifest.device, tool.script)
    started = time.monotonic()
    returncode, text = _run_tool(tool, args, progress or _show, timeout)
    result = res.SynthesisResult(ok=False, export_dir=export_dir, returncode=returncode,
                                 seconds=time.monotonic() - started, command=args,
                                 tool_dir=tool.folder, check=dict((manifest.check or {})
                                                                  .get("totals") or {}))
    log_text = text
    if (project / "log.txt").is_file():
        log_text = text + "\n" + (project / "log.txt").read_text(errors="replace")
    result.resources = res.parse_resources(log_text)
    result.latency, result.ops = parse_latency(log_text), parse_ops(log_text)
    if returncode == 0 and known.is_file():
        result.project_dir = project
        result.files = sorted(p.name for p in project.iterdir() if p.is_file()
                              and p.name != KNOWN_ANSWER)
        ours = np.load(manifest.path("sample_output"), allow_pickle=False)
        tools = np.load(known, allow_pickle=False)
        result.mismatches, result.values, result.first_mismatch = res.compare_answers(ours, tools)
        result.ok = result.mismatches == 0
        if not result.ok:
            result.diagnosis = (
                "the tool computes another network than our simulator for this export: please "
                "report it with the export folder (a layer the YAML describes differently "
                "from the model, or a device rule the simulator does not follow).")
    else:
        result.error = res.tool_errors(text) or (
            "ai8xize.py did not write its known answer" if returncode == 0 else
            f"ai8xize.py exited with status {returncode}")
        result.diagnosis = res.diagnose(text)
    if trace:
        result.trace = _trace(manifest, log_text)
    if build and result.ok:
        result.firmware = build_firmware(project, maxim_path=maxim_path, device=manifest.device)
    _record(manifest, result)
    logger.debug("%s", result.summary())
    return result


_MANAGED = ("--test-dir", "--prefix", "--checkpoint-file", "--config-file", "--sample-input",
            "--device", "--sample-numpy-filename", "--short-log", "--log-filename", "--no-log")
"""Options `synthesize` sets itself: another value would break the comparison."""


def _checked_options(extra_args):
    """The extra tool arguments as strings; refuses the ones `synthesize` manages."""
    if isinstance(extra_args, str):
        raise SynthesisError(f"extra_args={extra_args!r} is a string; pass a list of "
                             f"arguments, e.g. ['--energy', '--boost', '2.5'].")
    args = [str(a) for a in extra_args]
    for arg in args:
        if arg.split("=", 1)[0] in _MANAGED:
            raise SynthesisError(f"extra_args has {arg!r}; synthesize sets that option itself "
                                 f"(from the export folder and `out`). Leave it out, or pass "
                                 f"`out=` for another output folder.")
    return args


_YAML_NAME = re.compile(r"^\s*# Layer (\d+): (.+)$", re.MULTILINE)


def _trace(manifest, log_text):
    """Compare the export's per-layer outputs (`samplelayers.npz`) with the tool's log."""
    if "sample_layers" not in manifest.artifacts or not manifest.path("sample_layers").is_file():
        return LayerTrace(note="the export has no samplelayers.npz (every layer's output); "
                               "export the model again with this version to trace it.")
    with np.load(manifest.path("sample_layers"), allow_pickle=False) as saved:
        ours = [saved[f"layer_{i}"] for i in range(len(saved.files))]
    names = [f"layer {i}" for i in range(len(ours))]
    try:
        for number, name in _YAML_NAME.findall(manifest.path("synthesis_yaml").read_text()):
            if int(number) < len(names):
                names[int(number)] = name.strip()
    except OSError:
        pass
    trace = trace_layers(ours, parse_layer_outputs(log_text), names)
    logger.info("%s", trace.summary())
    return trace


def _classifier_output(manifest):
    """True when `main.c` should run the tool's softmax: the output is one wide (32-bit) score
    per class.

    The softmax is the C project's classification layer. For an 8-bit output the tool calls
    CMSIS-NN's `arm_softmax_q7_q15` without declaring `q7_t`, and `main.c` does not compile;
    over a feature map it means nothing, and its buffers (6 bytes a value) can exceed the Arm
    core's SRAM, so the firmware does not link.
    """
    config = manifest.path("synthesis_yaml")
    try:
        layers = (yaml.safe_load(config.read_text()) or {}).get("layers") or []
        shape = np.load(manifest.path("sample_output"), mmap_mode="r").shape
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise SynthesisError(f"Cannot read the export's network YAML {str(config)!r} or its "
                             f"sample output: {err}. Export the model again.") from err
    return wants_softmax(bool(layers) and int(layers[-1].get("output_width", 8)) == 32, shape)


def _record(manifest, result):
    manifest.synthesis = result.to_dict()
    # The firmware entry describes the C project this run wrote: cleared when not built.
    manifest.firmware = manifest.synthesis.pop("firmware")
    manifest.save(manifest.folder)
