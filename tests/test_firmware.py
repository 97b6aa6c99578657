"""Compiling and linking the C project the vendor's ai8xize.py writes (`build_firmware`).

The projects come from the real tool (AI8X_SYNTHESIS_DIR, AI8X_SYNTHESIS_PYTHON); the build
needs arm-none-eabi-gcc with newlib and the MSDK (MAXIM_PATH). Without them these tests skip
with the reason; the error messages and the diagnostics parser are tested without them.
"""

import json
import os
import re
import shutil

import pytest

from ai8x_nb.errors import SynthesisError
from ai8x_nb.synthesis import build_firmware, firmware_skip_reason
from ai8x_nb.synthesis.msdk import TARGETS, find_msdk
from ai8x_nb.synthesis.toolchain import Diagnostic, find_toolchain, parse_diagnostics

from firmware_support import FIRMWARE_SKIP, FIRMWARE_SKIP_REASON, build_and_check, session_cache
from support import random_dataset, set_deterministic_weights

TOOL = bool(os.environ.get("AI8X_SYNTHESIS_DIR") and os.environ.get("AI8X_SYNTHESIS_PYTHON"))
needs_build = pytest.mark.skipif(FIRMWARE_SKIP is not None, reason=FIRMWARE_SKIP_REASON)

GCC_STDERR = """\
In file included from cnn.c:40:
cnn.c: In function 'cnn_start':
cnn.h:46:27: warning: implicit declaration of function 'LED_On' [-Wimplicit-function-declaration]
   46 | #define CNN_START LED_On(K4)
      |                   ^~~~~~
cnn.c:120:3: note: in expansion of macro 'CNN_START'
cnn.c:98:12: error: expected ';' before 'int'
main.c:7: warning: "TARGET" redefined
/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: build/obj/main.o: in function `main':
main.c:(.text.startup.main+0x34): undefined reference to `cnn_init2'
/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: region `FLASH' overflowed by 1024 bytes
collect2: error: ld returned 1 exit status
"""


# ------------------------------------------------------------------ without the tools
def test_diagnostics_are_parsed_from_gcc_and_linker_output():
    found = parse_diagnostics(GCC_STDERR + GCC_STDERR)  # repeats are dropped
    assert found == [
        Diagnostic("cnn.h", 46, "warning", "implicit declaration of function 'LED_On' "
                                           "[-Wimplicit-function-declaration]"),
        Diagnostic("cnn.c", 98, "error", "expected ';' before 'int'"),
        Diagnostic("main.c", 7, "warning", '"TARGET" redefined'),
        Diagnostic("main.c", 0, "error", "undefined reference to `cnn_init2'"),
        Diagnostic("ld", 0, "error", "region `FLASH' overflowed by 1024 bytes"),
    ]
    assert str(found[0]).startswith("cnn.h:46: implicit declaration of function 'LED_On'")
    assert str(found[3]) == "main.c: undefined reference to `cnn_init2'"


def test_a_firmware_past_the_chips_memory_says_by_how_much():
    from ai8x_nb.synthesis import FirmwareResult

    result = FirmwareResult(ok=False, project_dir="p", device="MAX78000", errors=[
        "ld: p/build/p.elf section `.bss' will not fit in region `SRAM'",
        "ld: region RAM overflowed with stack", "ld: region `SRAM' overflowed by 59992 bytes"])
    assert result.overflow == {"SRAM": 59992} and result.to_dict()["overflow"] == {"SRAM": 59992}
    assert result.summary().startswith("firmware: does not fit the MAX78000: SRAM overflowed by "
                                       "59,992 bytes [")
    result.errors = ["ld: region RAM overflowed with stack"]  # .bss fits, the stack does not
    assert result.overflow == {"stack": None}
    assert "does not fit the MAX78000: no room left for the stack in SRAM" in result.summary()


def test_missing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SynthesisError, match=r"'arm-none-eabi-gcc' was not found on PATH.*"
                                             r"apt-get install gcc-arm-none-eabi "
                                             r"libnewlib-arm-none-eabi"):
        build_firmware(tmp_path, maxim_path=tmp_path)
    with pytest.raises(SynthesisError, match="'/no/such/gcc' was not found"):
        find_toolchain("/no/such/gcc")
    assert firmware_skip_reason(maxim_path=tmp_path).startswith("arm-none-eabi-gcc is not on "
                                                                "PATH")


def test_missing_msdk_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MAXIM_PATH", raising=False)
    with pytest.raises(SynthesisError, match=r"no maxim_path given and MAXIM_PATH is not set.*"
                                             r"export MAXIM_PATH=/path/to/msdk"):
        find_msdk()
    assert firmware_skip_reason() == "MAXIM_PATH is not set (the MSDK folder)"
    with pytest.raises(SynthesisError, match="'/no/msdk' .*does not exist"):
        find_msdk("/no/msdk")
    with pytest.raises(SynthesisError, match=r"is not an MSDK with MAX78000 support: "
                                             r"Libraries/CMSIS/Device/Maxim/MAX78000 is missing"):
        find_msdk(tmp_path)
    (tmp_path / "Libraries/CMSIS/Device/Maxim/MAX78000").mkdir(parents=True)
    with pytest.raises(SynthesisError, match=r"lacks \d+ file\(s\) a MAX78000 build needs, "
                                             r"e.g. Libraries/PeriphDrivers/Source/ADC"):
        find_msdk(tmp_path)


def test_max78002_and_non_projects_are_refused_with_the_reason(tmp_path):
    assert "MAX78002" not in TARGETS
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    with pytest.raises(SynthesisError, match=r"cannot build MAX78002 firmware: .*MAX78000 only "
                                             r"\(the trimmed MSDK .* has no MAX78002 files"):
        build_firmware(tmp_path, device="MAX78002")
    assert firmware_skip_reason("MAX78002", maxim_path=tmp_path, compiler="sh") \
        .startswith("ai8x-nb cannot build MAX78002 firmware")
    with pytest.raises(SynthesisError, match="is not a C project \\(no .c files\\)"):
        build_firmware(tmp_path / "nothing")


# ------------------------------------------------------------------ real projects
@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    return session_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def mnist_export(tmp_path_factory):
    """The seed MNIST model (post-training quantized) exported and synthesized once."""
    if not TOOL:
        pytest.skip("the synthesis tool is not configured (AI8X_SYNTHESIS_DIR, "
                    "AI8X_SYNTHESIS_PYTHON)")
    from ai8x_nb.export import export_model
    from ai8x_nb.models import get_model
    from ai8x_nb.synthesis import synthesize

    folder = tmp_path_factory.mktemp("firmware") / "mnist"
    model = set_deterministic_weights(get_model("mnist"), seed=7, scale=0.15)
    data = random_dataset("mnist", (28, 28, 1), 10, n_test=4, seed=1)
    export_model(model, folder, dataset=data, targets=("synthesis",), sample_index=1,
                 name="mnist")
    result = synthesize(folder, progress=lambda line: None)
    assert result.ok, result.summary()
    assert "--softmax" in result.command  # ten wide class scores: main.c's softmax is kept
    return folder


@needs_build
@pytest.mark.synthesis
def test_mnist_project_compiles_links_and_fits(mnist_export, cache_home, capsys):
    project = mnist_export / "sdk" / "mnist"
    first = build_and_check(project, cache_home)
    assert first.elf == project / "build" / "mnist.elf" and first.elf.is_file()
    assert (project / "build" / "mnist.map").is_file()
    assert first.text > 71148  # the kernels (weights.h) are in flash
    assert first.flash_limit == 512 * 1024 and first.ram_limit == 128 * 1024
    assert first.flash_bytes == first.text + first.data
    assert first.ram_bytes == first.data + first.bss
    for warning in first.warnings:  # file:line: message [-Wflag], about the project's files
        assert warning.kind == "warning" and warning.line > 0, warning
        assert warning.file in {p.name for p in project.iterdir()}, warning
        assert "[-W" in warning.message, warning
    # The second build takes the compiled MSDK side from the cache.
    second = build_and_check(project, cache_home)
    assert second.library_cached and (second.text, second.data, second.bss) == \
        (first.text, first.data, first.bss)
    assert second.seconds < 5, second.summary()
    entries = sorted(e.name for e in (cache_home / "ai8x-nb" / "firmware").iterdir())
    assert len(entries) == 2 and re.fullmatch(r"MAX78000-[0-9a-f]{16}", entries[1]), entries
    assert entries[0] == f".{entries[1]}.lock"  # and no half-built (.partial-) entry
    assert not list(second.msdk.rglob("*.o"))  # nothing written into the MSDK
    data = json.loads(json.dumps(second.to_dict()))
    assert data["ok"] and data["flash_bytes"] == second.flash_bytes and data["errors"] == []
    assert data["warnings"] == [str(w) for w in second.warnings]
    summary = second.summary()
    assert summary.startswith(f"firmware: flash {second.flash_bytes:,} of 524,288 bytes (")
    assert f"RAM {second.ram_bytes:,} of 131,072 bytes" in summary
    with capsys.disabled():
        print(f"\nmnist firmware: text {second.text:,}, data {second.data:,}, bss "
              f"{second.bss:,} B; {len(second.warnings)} warnings; cold "
              f"{first.seconds:.2f} s (library cached: {first.library_cached}), warm "
              f"{second.seconds:.2f} s")


@needs_build
@pytest.mark.synthesis
def test_a_broken_project_gives_the_compiler_error(mnist_export, cache_home, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(mnist_export / "sdk" / "mnist", broken, ignore=shutil.ignore_patterns("build"))
    source = (broken / "cnn.c").read_text().splitlines()
    at = next(i for i, line in enumerate(source) if line.startswith("int cnn_load_weights"))
    source.insert(at, "int broken syntax here")
    (broken / "cnn.c").write_text("\n".join(source) + "\n")
    result = build_firmware(broken, cache_dir=cache_home / "ai8x-nb")
    assert not result.ok and result.elf is None and result.text is None
    assert f"cnn.c:{at + 1}: unknown type name 'syntax'" in result.errors
    summary = result.summary()
    assert summary.startswith(f"firmware: FAILED to build {broken} for MAX78000; ")
    assert f"cnn.c:{at + 1}: " in summary
    assert json.loads(json.dumps(result.to_dict()))["errors"] == result.errors
    # A link error (a function main.c calls that no file defines) names the symbol.
    main_c = (broken / "main.c").read_text()
    (broken / "cnn.c").write_text("\n".join(source[:at] + source[at + 1:]) + "\n")
    (broken / "main.c").write_text(main_c.replace("cnn_init()", "cnn_init_missing()"))
    result = build_firmware(broken, cache_dir=cache_home / "ai8x-nb")
    assert not result.ok
    assert "main.c: undefined reference to `cnn_init_missing'" in result.errors


# ------------------------------------------------------------------ the command line
def _tiny_export(tmp_path, wide=True, name="tiny"):
    import keras

    from ai8x_nb import layers
    from ai8x_nb.export import export_model

    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding=1, activation="relu", name="c1")(inp)
    x = layers.Dense(5, wide=wide, name="fc")(keras.layers.Flatten()(x))
    model = set_deterministic_weights(keras.Model(inp, x, name=name), seed=3, scale=0.3)
    export_model(model, tmp_path / name, targets=("synthesis",))
    return tmp_path / name


@needs_build
@pytest.mark.synthesis
def test_an_8bit_output_gets_no_softmax_and_compiles(tmp_path, cache_home):
    """The tool's softmax over 8-bit outputs calls CMSIS-NN without declaring q7_t: main.c
    would not compile, so `synthesize` asks for the softmax only over wide class scores."""
    from ai8x_nb.synthesis import synthesize

    if not TOOL:
        pytest.skip("the synthesis tool is not configured")
    result = synthesize(_tiny_export(tmp_path, wide=False, name="narrow"),
                        progress=lambda line: None)
    assert result.ok and "--softmax" not in result.command, result.summary()
    build_and_check(result.project_dir, cache_home)


@needs_build
@pytest.mark.synthesis
def test_cli_build_output_exit_codes_and_manifest(mnist_export, cache_home, tmp_path,
                                                  monkeypatch, capsys):
    from ai8x_nb.cli import main
    from ai8x_nb.export import Manifest

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    folder = _tiny_export(tmp_path)
    assert main(["synthesize", str(folder), "--build"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS") and "\nfirmware: flash " in out and " of 524,288 bytes (" in out
    assert "firmware ELF: " in out and "MSDK drivers cached" in out
    manifest = Manifest.load(folder)
    assert manifest.firmware["ok"] and manifest.firmware["errors"] == []
    assert manifest.firmware["flash_limit"] == 524288 and "firmware" not in manifest.synthesis

    # A file of the project that does not compile: the synthesis passes, the build fails.
    (folder / "sdk" / "tiny" / "zz_user.c").write_text("int x = ;\n")
    assert main(["synthesize", str(folder), "--build", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "PASS" and data["firmware"]["ok"] is False
    assert data["firmware"]["errors"] == ["zz_user.c:1: expected expression before ';' token"]
    assert Manifest.load(folder).firmware["ok"] is False

    # Without --build, nothing is built and the old firmware entry is cleared.
    assert main(["synthesize", str(folder)]) == 0
    assert "firmware" not in capsys.readouterr().out
    assert Manifest.load(folder).firmware is None

    # A missing MSDK stops before the tool runs (exit 2, the variable named); --maxim-path
    # stands in for the variable.
    maxim = os.environ["MAXIM_PATH"]
    monkeypatch.delenv("MAXIM_PATH")
    assert main(["synthesize", str(folder), "--build", "--out", str(tmp_path / "c")]) == 2
    assert "MAXIM_PATH is not set" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    assert main(["synthesize", str(folder), "--build", "--maxim-path", maxim]) == 1  # zz_user.c
    assert "zz_user.c:1: expected expression" in capsys.readouterr().out
