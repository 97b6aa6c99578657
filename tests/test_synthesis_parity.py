"""Parity with the vendor's synthesis tool: `check_model`'s verdict is the tool's verdict.

The seeded generators (`hardware_model_generator` and `residual_model_generator`,
tests/conftest.py) build small models, valid and invalid, for both devices; the residual ones
add `Add` graphs of several shapes (the tool's element-wise layers). Each is exported with the private `_force_synthesis=True`
(the synthesis package is written even when the check fails, so the tool itself can be asked)
and run through `synthesize`, which runs ai8xize.py. For every model `check_model(model).ok`
must equal the tool's acceptance, every accepted model's known answer must equal ours, the
tool must have put every layer's kernels at the kernel-memory offset `check_model`
reports (read back from the generated cnn.c), and `check_model`'s cycles per layer (MAX78000)
and operation counts per layer (both devices) must equal the tool's `ESTIMATED LATENCY` table
and `SUMMARY OF OPS` from the log of the same run. The counts per device are printed. A sample of
the accepted MAX78000 models' C projects (every `FIRMWARE_EVERY`-th) is compiled and linked
when arm-none-eabi-gcc and the MSDK (MAXIM_PATH) are there: 0 errors, within the chip; their
warnings are printed.

Needs the tool: AI8X_SYNTHESIS_DIR and AI8X_SYNTHESIS_PYTHON (../shared/vendor/setup-synthesis.sh).
"""

import collections
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from firmware_support import FIRMWARE_SKIP, session_cache, warnings_table

SEEDS = range(*(int(v) for v in os.environ.get("AI8X_NB_PARITY_SEEDS", "0:200").split(":")))
"""Generated models: seeds 0..199 in CI (about 1 s of tool time each with the warm tool; the
largest test of the suite). To look further, set AI8X_NB_PARITY_SEEDS=START:STOP (0:400 on
2026-12-07: MAX78000 157 accepted / 43 rejected, MAX78002 167 / 33; 0 disagreements, 0 answer
mismatches, 0 kernel placement differences)."""
RESIDUAL_SEEDS = range(*(int(v) for v in os.environ.get("AI8X_NB_PARITY_RESIDUAL_SEEDS",
                                                        "0:48").split(":")))
"""Generated residual models (`random_residual_model`): seeds 0..47 (about 1.5 min: a residual
model takes longer to build and export than a chain). To look further, set
AI8X_NB_PARITY_RESIDUAL_SEEDS=START:STOP (0:200: 0 disagreements, 0 answer mismatches)."""
MIN_EACH_RESIDUAL = 5
CONCAT_SEEDS = range(*(int(v) for v in os.environ.get("AI8X_NB_PARITY_CONCAT_SEEDS",
                                                      "0:32").split(":")))
"""Generated channel-concatenation models (`random_concat_model`): seeds 0..31 (about 1 min).
To look further, set AI8X_NB_PARITY_CONCAT_SEEDS=START:STOP (0:120: 0 disagreements, 0 answer
mismatches)."""
MIN_EACH_CONCAT = 2
STREAMING_SEEDS = range(*(int(v) for v in os.environ.get("AI8X_NB_PARITY_STREAMING_SEEDS",
                                                         "0:8").split(":")))
"""Generated streaming models (`random_streaming_model`): seeds 0..7 in CI (about 30 s). To
look further, set AI8X_NB_PARITY_STREAMING_SEEDS=START:STOP (0:160: 0 disagreements, 0 answer
mismatches; MAX78000 48 accepted / 32 rejected, MAX78002 66 / 14)."""
MIN_EACH_STREAMING = 2
OUTPUTS_SEEDS = range(*(int(v) for v in os.environ.get("AI8X_NB_PARITY_OUTPUTS_SEEDS",
                                                       "0:8").split(":")))
"""Generated models with several outputs (`random_multi_output_model`): seeds 0..7 in CI
(about 35 s); every output is compared with the tool's sampleoutput.h. To look further, set
AI8X_NB_PARITY_OUTPUTS_SEEDS=START:STOP (0:100: 0 disagreements, 0 answer mismatches; MAX78000
37 accepted / 13 rejected, MAX78002 39 / 11)."""
DILATED_SEEDS = range(*(int(v) for v in os.environ.get("AI8X_NB_PARITY_DILATED_SEEDS",
                                                       "0:8").split(":")))
"""Generated dilated Conv1D models (`random_dilated_model`): seeds 0..7 in CI (both devices).
To look further, set AI8X_NB_PARITY_DILATED_SEEDS=START:STOP (0:100 on 2026-12-07: MAX78000
38 accepted / 12 rejected, MAX78002 43 / 7; 0 disagreements, 0 answer mismatches, 0 kernel
placement or cost differences)."""
POOL_DILATED_SEEDS = range(*(int(v) for v in os.environ.get(
    "AI8X_NB_PARITY_POOL_DILATED_SEEDS", "0:8").split(":")))
"""Generated dilated-pooling models (`random_pool_dilated_model`, MAX78002): seeds 0..7 in
CI. To look further, set AI8X_NB_PARITY_POOL_DILATED_SEEDS=START:STOP (0:100: 83 accepted /
17 rejected, 0 disagreements, 0 answer mismatches)."""
DEPTHWISE_SEEDS = range(*(int(v) for v in os.environ.get(
    "AI8X_NB_PARITY_DEPTHWISE_SEEDS", "0:8").split(":")))
"""Generated depthwise-separable models (`random_depthwise_model`, MAX78002): seeds 0..7 in
CI. To look further, set AI8X_NB_PARITY_DEPTHWISE_SEEDS=START:STOP (0:150: 137 accepted / 13
rejected, 0 disagreements, 0 answer mismatches, 0 kernel placement differences)."""
BINARY_SEEDS = range(*(int(v) for v in os.environ.get(
    "AI8X_NB_PARITY_BINARY_SEEDS", "0:8").split(":")))
"""Generated binary-weight models (`random_binary_model`, MAX78002): seeds 0..7 in CI. To
look further, set AI8X_NB_PARITY_BINARY_SEEDS=START:STOP (0:100: 77 accepted / 23 rejected,
0 disagreements, 0 answer mismatches)."""
WORKERS = 2
"""Tool processes run side by side (CI has two cores; exporting is cheap next to them)."""
MIN_EACH = 10
"""Both verdicts must occur at least this often on each device, or the test proves little (seeds
0..199 give MAX78000 76 accepted / 24 rejected, MAX78002 86 / 14)."""
FIRMWARE_EVERY = int(os.environ.get("AI8X_NB_PARITY_FIRMWARE_EVERY", "4"))
"""Every n-th accepted MAX78000 model's C project is built (about 0.3 s each). The MAX78002's
are not: ai8x-nb does not know its MSDK files."""

pytestmark = [
    pytest.mark.synthesis,
    pytest.mark.skipif(not (os.environ.get("AI8X_SYNTHESIS_DIR")
                            and os.environ.get("AI8X_SYNTHESIS_PYTHON")),
                       reason="the synthesis tool is not configured: set AI8X_SYNTHESIS_DIR and "
                              "AI8X_SYNTHESIS_PYTHON (../shared/vendor/setup-synthesis.sh)"),
]


def _ask_tool(generated, report, folder, python):
    from ai8x_nb.synthesis import synthesize

    result = synthesize(folder, python=python, progress=lambda line: None, timeout=300)
    accepted = result.returncode == 0 and result.mismatches is not None
    return generated, report, result, accepted


_MASK_REGISTER = re.compile(r"\(\(volatile uint32_t \*\) 0x([0-9a-f]+)\) = 0x([0-9a-f]+); "
                            r"// Mask offset")


def _tool_kernel_offsets(cnn_c, device):
    """Per hardware layer, the kernel-memory offset register the tool wrote into cnn.c.

    MAX78000: LREG_MCNT (0x610 + 4 * layer) holds it in its upper 16 bits; MAX78002:
    LREG_MCNT2 (0x3c + 0x100 * layer). The tool writes it in kernels of the layer's size
    times 8, and leaves out zero values.
    """
    found = {}
    for address, value in _MASK_REGISTER.findall(cnn_c):
        address, value = int(address, 16) & 0xFFFFF, int(value, 16)
        if device == "MAX78000":
            layer, offset = (address - 0x610) // 4, value >> 16
        else:
            layer, offset = (address - 0x3C) >> 8, value
        found.setdefault(layer, offset)
    return found


def _tool_layer_numbers(report):
    """Our layer index -> the tool's: on the MAX78002 the tool inserts a layer of its own
    before an average pool that follows an element-wise layer (the one `check_model` counts)."""
    numbers, inserted = {}, 0
    for prev, row in zip([None] + report.rows[:-1], report.rows):
        if (report.device.avg_pool_reset_after_eltwise and prev is not None and prev.eltwise
                and row.pooling.startswith("avg")):
            inserted += 1
        numbers[row.index] = row.index + inserted
    return numbers


def _kernel_offset_problems(report, result, device):
    """Layers whose kernels the tool placed elsewhere than `check_model` says."""
    tool = _tool_kernel_offsets((result.project_dir / "cnn.c").read_text(), device)
    numbers = _tool_layer_numbers(report)
    wrong = []
    for lp in report.placement.layers:
        if lp.kernel_offset is None or not lp.kernel_values:
            continue
        expected = 9 * lp.kernel_offset // lp.kernel_values * 8
        got = tool.get(numbers[lp.index], 0)
        if got != expected:
            wrong.append(f"layer {lp.index} (tool layer {numbers[lp.index]}): tool {got}, "
                         f"ours {expected}")
    return wrong


_OPS = ("macc", "comp", "add", "mul", "bitwise")


def _cost_problems(report, result, device):
    """Where `check_model`'s cycles or operation counts differ from the tool's log.

    The tool prints its latency table (`--verbose`, MAX78000 only) and its operation count
    per layer of the YAML (the MAX78002's hidden average-pool reset layers are not listed).
    """
    wrong = []
    tool_ops = result.ops
    for row in report.rows:
        n = row.index
        ours = {k: getattr(row, k) for k in _OPS}
        theirs = {k: tool_ops[n][k] for k in _OPS} if n < len(tool_ops) else None
        if ours != theirs:
            wrong.append(f"layer {row.index} ops: tool {theirs}, ours {ours}")
    if device == "MAX78000":
        latency = result.latency
        if latency is None:
            wrong.append("the tool printed no latency table")
        else:
            ours = [row.cycles for row in report.rows]
            if latency["layers"] != ours or latency["total"] != report.totals["latency_cycles"]:
                wrong.append(f"cycles: tool {latency['layers']} (total {latency['total']}), "
                             f"ours {ours} (total {report.totals['latency_cycles']})")
    return wrong


def _counts_table(counts):
    lines = ["device     accepted  rejected  disagreements  answer mismatches  kernel placement"
             "  cost compared  cost differences"]
    for device in sorted(counts):
        c = counts[device]
        lines.append(f"{device:<10} {c['accepted']:>8}  {c['rejected']:>8}  "
                     f"{c['disagreements']:>13}  {c['mismatches']:>17}  "
                     f"{c['kernel placement']:>16}  {c['cost compared']:>13}  "
                     f"{c['cost differences']:>16}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def firmware_cache(tmp_path_factory):
    return session_cache(tmp_path_factory)


def _build_sample(outcomes, cache_home):
    """Compile and link every `FIRMWARE_EVERY`-th accepted MAX78000 C project.

    A project must compile without errors. One that links only past the Arm core's flash or
    SRAM (the tool's test `main.c` holds the sample input and expected output, which a large
    input or output outgrows) is counted and named, not failed: the tool accepts such models.

    Returns:
        `(text, problems)`: a summary with the distinct warnings, and the projects that did
        not build for another reason.
    """
    from ai8x_nb.synthesis import build_firmware

    accepted = [(generated, result) for generated, _, result, ok in outcomes
                if ok and result.ok and generated.device == "MAX78000"]
    chosen = accepted[::FIRMWARE_EVERY]
    built, too_large, problems = [], [], []
    for generated, result in chosen:
        firmware = build_firmware(result.project_dir, cache_dir=cache_home / "ai8x-nb")
        built.append(firmware)
        if firmware.ok:
            continue
        if firmware.overflow and all(e.startswith("ld: ") for e in firmware.errors):
            over = ", ".join(f"{region} +{n:,} B" if n is not None else region
                             for region, n in firmware.overflow.items())
            too_large.append(f"seed {generated.seed}: {over}")
        else:
            problems.append(f"{generated.label}: the C project does not build:\n    "
                            + "\n    ".join(firmware.errors))
    flash = [f.flash_bytes for f in built if f.ok]
    text = (f"firmware: {len(flash)} of {len(chosen)} sampled MAX78000 C projects (every "
            f"{FIRMWARE_EVERY}th of {len(accepted)} accepted) compiled and linked"
            + (f", flash {min(flash):,}..{max(flash):,} bytes" if flash else "")
            + f"; {len(problems)} with errors; {len(too_large)} past the Arm core's memory"
            + (f" ({'; '.join(too_large)})" if too_large else "")
            + f"; {sum(len(f.warnings) for f in built)} warnings")
    table = warnings_table(built)
    return text + (":\n" + table if table else ""), problems


def _parity(generator, seeds, tmp_path, python, capsys, what, firmware_cache):
    """Ask the tool about every generated model; returns `(counts, problems, table)`."""
    from ai8x_nb.check import check_model
    from ai8x_nb.export import export_model

    futures = []
    with ThreadPoolExecutor(WORKERS) as pool:
        for seed in seeds:
            generated = generator(seed)
            report = check_model(generated.model, generated.device)
            folder = tmp_path / generated.model.name
            export_model(generated.model, folder, device=generated.device,
                         targets=("synthesis",), _force_synthesis=True)
            futures.append(pool.submit(_ask_tool, generated, report, folder, python))
        outcomes = [f.result() for f in futures]

    counts = collections.defaultdict(collections.Counter)
    problems = []
    for generated, report, result, accepted in outcomes:
        c = counts[generated.device]
        c["accepted" if accepted else "rejected"] += 1
        if report.ok != accepted:
            c["disagreements"] += 1
            problems.append(
                f"{generated.label}: check_model ok={report.ok}, tool accepted={accepted}\n"
                f"    check: {' | '.join(report.errors) or '-'}\n"
                f"    tool:  {result.error or '-'}")
        elif accepted and not result.ok:
            c["mismatches"] += 1
            problems.append(f"{generated.label}: accepted, but {result.summary()}")
        elif accepted:
            wrong = _kernel_offset_problems(report, result, generated.device)
            if wrong:
                c["kernel placement"] += 1
                problems.append(f"{generated.label}: kernels placed elsewhere by the tool: "
                                f"{'; '.join(wrong)}")
            c["cost compared"] += 1
            wrong = _cost_problems(report, result, generated.device)
            if wrong:
                c["cost differences"] += 1
                problems.append(f"{generated.label}: cycles or operations differ from the "
                                f"tool's: {'; '.join(wrong)}")
    table = _counts_table(counts)
    if FIRMWARE_SKIP is None:
        line, failed = _build_sample(outcomes, firmware_cache)
        table += "\n" + line
        problems += failed
    else:
        table += f"\nfirmware: not built ({FIRMWARE_SKIP})"
    with capsys.disabled():
        print(f"\nsynthesis parity over {len(seeds)} generated {what} (seeds {seeds.start}.."
              f"{seeds.stop - 1}):\n{table}")
    return counts, problems, table


def _assert_both_verdicts(counts, seeds, minimum, at_least):
    if len(seeds) < at_least:
        return
    for device, c in counts.items():
        assert c["accepted"] >= minimum and c["rejected"] >= minimum, (
            f"{device}: the generator gave {c['accepted']} accepted and {c['rejected']} "
            f"rejected models; it should give both verdicts at least {minimum} times")


def _assert_parity(generator, seeds, what, minimum, full, tmp_path, python, capsys,
                   firmware_cache):
    """One generated family through the tool: no problem, and both verdicts on each device
    at least `minimum` times once `full` seeds run (see `_assert_both_verdicts`)."""
    counts, problems, table = _parity(generator, seeds, tmp_path, python, capsys, what,
                                      firmware_cache)
    assert not problems, table + "\n" + "\n".join(problems)
    _assert_both_verdicts(counts, seeds, minimum, full)


def test_check_model_verdict_equals_the_tool(tmp_path, hardware_model_generator,
                                             warm_synthesis_python, capsys, firmware_cache):
    _assert_parity(hardware_model_generator, SEEDS, "models",
                   MIN_EACH, 200, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_residual_models_verdict_equals_the_tool(tmp_path, residual_model_generator,
                                                 warm_synthesis_python, capsys, firmware_cache):
    """Residual (`Add`) graphs: fused element-wise convolutions, operand copies, write gaps."""
    _assert_parity(residual_model_generator, RESIDUAL_SEEDS, "residual models",
                   MIN_EACH_RESIDUAL, 40, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_concat_models_verdict_equals_the_tool(tmp_path, concat_model_generator,
                                               warm_synthesis_python, capsys, firmware_cache):
    """Channel concatenation (`in_sequences: [a, b]` on a convolution), UNet-like skips."""
    _assert_parity(concat_model_generator, CONCAT_SEEDS, "concatenation models",
                   MIN_EACH_CONCAT, 32, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_streaming_models_verdict_equals_the_tool(tmp_path, streaming_model_generator,
                                                  warm_synthesis_python, capsys,
                                                  firmware_cache):
    """Streaming layers (`streaming: true`, `--fifo`): large inputs through circular buffers."""
    _assert_parity(streaming_model_generator, STREAMING_SEEDS, "streaming models",
                   MIN_EACH_STREAMING, 16, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_multi_output_models_verdict_equals_the_tool(tmp_path, multi_output_model_generator,
                                                    warm_synthesis_python, capsys,
                                                    firmware_cache):
    """Several outputs (`output: true`): every output in the tool's known answer equals ours."""
    _assert_parity(multi_output_model_generator, OUTPUTS_SEEDS, "multi-output models",
                   MIN_EACH_STREAMING, 16, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_dilated_conv1d_models_verdict_equals_the_tool(tmp_path, dilated_model_generator,
                                                      warm_synthesis_python, capsys,
                                                      firmware_cache):
    """Dilated Conv1D (`dilation`, both devices): the tool's stretched kernels in kernel
    memory, its known answer, cycles and operation counts."""
    _assert_parity(dilated_model_generator, DILATED_SEEDS, "dilated Conv1D models",
                   MIN_EACH_STREAMING, 32, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_dilated_pooling_models_verdict_equals_the_tool(tmp_path, pool_dilated_model_generator,
                                                       warm_synthesis_python, capsys,
                                                       firmware_cache):
    """Dilated pooling (`pool_dilation`, MAX78002): fused and pool-only layers."""
    _assert_parity(pool_dilated_model_generator, POOL_DILATED_SEEDS, "dilated-pooling models",
                   MIN_EACH_STREAMING, 32, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_depthwise_models_verdict_equals_the_tool(tmp_path, depthwise_model_generator,
                                                 warm_synthesis_python, capsys, firmware_cache):
    """Depthwise convolutions (`groups`, MAX78002): their kernel memory, passes, answer."""
    _assert_parity(depthwise_model_generator, DEPTHWISE_SEEDS, "depthwise models",
                   MIN_EACH_STREAMING, 32, tmp_path, warm_synthesis_python, capsys, firmware_cache)


def test_binary_weight_models_verdict_equals_the_tool(tmp_path, binary_model_generator,
                                                     warm_synthesis_python, capsys,
                                                     firmware_cache):
    """+-1 weights (`weight_bits="binary"`, `quantization: bin`, MAX78002)."""
    _assert_parity(binary_model_generator, BINARY_SEEDS, "binary-weight models",
                   MIN_EACH_STREAMING, 32, tmp_path, warm_synthesis_python, capsys, firmware_cache)
