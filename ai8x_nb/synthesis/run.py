"""`synthesize`: run the vendor's `ai8xize.py` on an export folder and check its known answer.

The tool is the judge of the export: it reads the checkpoint, the YAML and the sample input,
checks them against the device, writes the C project and computes the known answer that
the C code verifies on the chip. `synthesize` asks it to also save that known answer as
NumPy (`--sample-numpy-filename`) and compares it, value by value, with the answer of our
own integer simulator (`sampleoutput.npy`).
"""

import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from ai8x_nb.errors import SynthesisError
from ai8x_nb import _atomic
from ai8x_nb._lock import LockedError
from ai8x_nb.export.package import MANIFEST_NAME, Manifest, export_lock, recover
from ai8x_nb.synthesis import result as res
from ai8x_nb.synthesis.toollog import parse_latency, parse_ops
from ai8x_nb.synthesis.trace import LayerTrace, parse_layer_outputs, trace_layers
from ai8x_nb.synthesis.firmware import build_firmware, firmware_tools
from ai8x_nb.export.tool_command import depthwise, streams, tool_arguments, wants_softmax
from ai8x_nb.synthesis.tool import find_tool

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
    """Run the tool from its folder, streaming its output; returns (returncode, text).

    The tool runs in its own process group, stopped as a whole at `timeout` (also when it
    prints nothing) or when this call ends by an error; on Linux the kernel also stops it
    when this process dies (a kill -9 of `ai8x-nb` leaves no `ai8xize.py` behind).
    """
    # Unbuffered for live progress; no bytecode caches written into the tool's folder.
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1",
               TERM="dumb")
    deadline = time.monotonic() + timeout
    lines = []
    try:
        proc = subprocess.Popen([tool.python] + args, cwd=tool.folder, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True,
                                preexec_fn=_death_signal())
    except OSError as err:
        raise SynthesisError(f"Cannot start the synthesis tool's Python {tool.python!r}: {err}. "
                             f"Check AI8X_SYNTHESIS_PYTHON.") from err
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines, progress),
                              daemon=True)
    reader.start()
    try:
        try:
            returncode = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as err:
            raise SynthesisError(f"ai8xize.py took longer than {timeout:g} s and was stopped; "
                                 f"pass a larger timeout (--timeout).") from err
        reader.join(timeout=5)
    finally:
        _stop_group(proc)
        reader.join(timeout=5)
        proc.stdout.close()
    return returncode, "\n".join(lines)


def _read_lines(stream, lines, progress):
    try:
        for raw in stream:
            line = _ANSI.sub("", raw.rstrip("\r\n").split("\r")[-1]).strip()
            lines.append(line)
            progress(line)
    except (OSError, ValueError):  # the pipe was closed under it: the tool was stopped
        pass


def _stop_group(proc):
    """Kill the tool's whole process group (it may have started children), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
        logger.warning("ai8xize.py (pid %d) did not stop.", proc.pid)


def _death_signal():
    """A `preexec_fn` asking Linux to SIGKILL the child when its parent dies, or None.

    `prctl` is looked up here, in the parent: the child between fork and exec only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def check_timeout(timeout):
    """Raise `SynthesisError` unless `timeout` is a finite number of seconds > 0."""
    try:
        ok = isinstance(timeout, (int, float)) and not isinstance(timeout, bool) \
            and math.isfinite(timeout) and timeout > 0
    except TypeError:
        ok = False
    if not ok:
        raise SynthesisError(f"timeout={timeout!r} is invalid: expected a number of seconds > 0 "
                             f"(default 900). Pass e.g. --timeout 900.")
    return float(timeout)


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
    timeout = check_timeout(timeout)
    export_dir = Path(export_dir).resolve()
    extra_args = _checked_options(extra_args)
    recover(export_dir)
    lock = export_lock(export_dir)
    try:
        lock.acquire()
    except LockedError as err:
        raise SynthesisError(
            f"The export {str(export_dir)!r} is being written by another process ({err}): an "
            f"export replacing it or another synthesize. Wait for it to finish, then run "
            f"synthesize again.") from None
    except OSError as err:
        raise SynthesisError(f"Cannot lock the export {str(export_dir)!r} ({lock.path}: "
                             f"{err}). Make its parent folder writable.") from err
    with lock:
        return _synthesize_locked(export_dir, out, synthesis_dir, python, progress, timeout,
                                  extra_args, build, maxim_path, trace)


def _synthesize_locked(export_dir, out, synthesis_dir, python, progress, timeout, extra_args,
                       build, maxim_path, trace):
    """`synthesize` while holding the export's lock: no export replaces the folder meanwhile."""
    _atomic.remove_leftovers(export_dir, (MANIFEST_NAME,))  # a manifest write a kill stopped
    manifest = _package(export_dir)
    tool = find_tool(synthesis_dir, python)
    if build:
        firmware_tools(manifest.device, maxim_path=maxim_path)
    if out is None:
        _atomic.refuse_symlink(export_dir / "sdk")
    out = Path(out).resolve() if out is not None else export_dir / "sdk"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SynthesisError(f"Cannot create the synthesis output folder {str(out)!r}: {err}.") \
            from err
    project = out / manifest.name
    _atomic.refuse_symlink(project)
    known = project / KNOWN_ANSWER
    if known.exists() or known.is_symlink():
        known.unlink()  # never compare against an answer of an earlier run
    args = tool_arguments(prefix=manifest.name, device=manifest.device,
                          checkpoint=manifest.path("synthesis_weights"),
                          config=manifest.path("synthesis_yaml"),
                          sample=manifest.path("sample_input"), test_dir=out, verbose=True,
                          softmax=_classifier_output(manifest), fifo=_streams(manifest),
                          deduplicate=not _depthwise(manifest))
    # --verbose for the latency table; the data of every layer only for a trace.
    args += ([] if trace else ["--short-log"])
    if "--fifo" in args:  # the export streams: asked for already
        extra_args = [a for a in extra_args if a != "--fifo"]
    args += ["--sample-numpy-filename", KNOWN_ANSWER] + extra_args
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
        ours = _load_answer(manifest.path("sample_output"), "the export's sample output")
        tools = _load_answer(known, "the tool's known answer")
        result.mismatches, result.values, result.first_mismatch = res.compare_answers(ours, tools)
        if "sample_outputs" in manifest.artifacts:
            # Several outputs: the tool's NumPy answer holds the last one only; its C
            # known-answer test (sampleoutput.h) holds every output layer.
            wrong, checked, first = _every_output(manifest, project)
            result.mismatches += wrong
            result.values += checked
            if wrong and result.first_mismatch is None:
                result.first_mismatch = (first["address"], first["ours"], first["tool"])
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
    _record(export_dir, result)
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


def _load_answer(path, what):
    """A numeric array from a .npy file, or a `SynthesisError` naming the file."""
    try:
        array = np.load(_atomic.refuse_symlink(path), allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise SynthesisError(f"Cannot read {what} {str(path)!r} ({type(err).__name__}: {err}); "
                             f"the file is truncated or not a numeric array. Export the model "
                             f"again.") from err
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise SynthesisError(f"{what.capitalize()} {str(path)!r} holds {array.dtype} values, "
                             f"expected numbers. Export the model again.")
    return array


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


def _every_output(manifest, project):
    """`(mismatching bytes, bytes, first)`: every output of the export against the tool's
    `sampleoutput.h`, in data memory (`known_answer`)."""
    from ai8x_nb.synthesis import known_answer as ka

    layers = (yaml.safe_load(manifest.path("synthesis_yaml").read_text()) or {})["layers"]
    with np.load(manifest.path("sample_outputs"), allow_pickle=False) as saved:
        outputs = {int(k[len("layer"):]): saved[k] for k in saved.files}
    header = project / "sampleoutput.h"
    if not header.is_file():
        return 1, 0, {"address": "sampleoutput.h missing", "ours": None, "tool": None}
    tools = ka.parse_sample_output(header.read_text())
    ours = {}
    layouts = ka.output_layouts(layers, {i: y.shape[0] for i, y in outputs.items()})
    for index, layout in layouts.items():
        ours.update(ka.expected_bytes(outputs[index], device=manifest.device, **layout))
    return ka.compare_memory(ours, tools)


def _yaml_layers(manifest):
    config = manifest.path("synthesis_yaml")
    try:
        return (yaml.safe_load(config.read_text()) or {}).get("layers") or []
    except (OSError, yaml.YAMLError) as err:
        raise SynthesisError(f"Cannot read the export's network YAML {str(config)!r}: {err}. "
                             f"Export the model again.") from err


def _streams(manifest):
    """True when the export's network YAML has streaming layers: the tool needs `--fifo`."""
    return streams(_yaml_layers(manifest))


def _depthwise(manifest):
    """True when the export has depthwise layers: the tool needs `--no-deduplicate-weights`."""
    return depthwise(_yaml_layers(manifest))


def _record(export_dir, result):
    # Under the export's lock: the manifest read again, so nothing written meanwhile is lost.
    manifest = Manifest.load(export_dir)
    manifest.synthesis = result.to_dict()
    # The firmware entry describes the C project this run wrote: cleared when not built.
    manifest.firmware = manifest.synthesis.pop("firmware")
    manifest.save(manifest.folder)
