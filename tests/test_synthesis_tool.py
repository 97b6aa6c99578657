"""The synthesis package through the vendor's real ai8xize.py (its known answer vs ours).

These tests need the tool: AI8X_SYNTHESIS_DIR (the ai8x-synthesis folder) and
AI8X_SYNTHESIS_PYTHON (its environment's Python, which has the real torch). CI creates both
with ../shared/vendor/setup-synthesis.sh. Without them the tests skip with that reason.
Every MAX78000 C project the seed models give is also compiled and linked (0 errors, within
the chip) when arm-none-eabi-gcc and the MSDK (MAXIM_PATH) are there.
"""

import json
import os
import subprocess

import keras
import numpy as np
import pytest

from ai8x_nb import layers
from ai8x_nb.errors import SynthesisError
from ai8x_nb.export import Manifest, export_model
from ai8x_nb.models import get_model, model_names

from firmware_support import FIRMWARE_SKIP, build_and_check, session_cache
from support import random_dataset, registry_device, set_deterministic_weights

TOOL_DIR = os.environ.get("AI8X_SYNTHESIS_DIR")
TOOL_PYTHON = os.environ.get("AI8X_SYNTHESIS_PYTHON")
pytestmark = [
    pytest.mark.synthesis,
    pytest.mark.skipif(not (TOOL_DIR and TOOL_PYTHON),
                       reason="the synthesis tool is not configured: set AI8X_SYNTHESIS_DIR and "
                              "AI8X_SYNTHESIS_PYTHON (../shared/vendor/setup-synthesis.sh)"),
]

DATA_SHAPES = {"mnist": (28, 28, 1), "fashionmnist": (28, 28, 1), "cifar10": (32, 32, 3),
               "cifar100": (32, 32, 3), "kws20": (128, 128), "rock": (64, 64, 3),
               "ressimplenet": (32, 32, 3), "kws20_dilated": (128, 128),
               "mobilenetv2_cifar10": (32, 32, 3)}


def _synthesize(folder):
    from ai8x_nb.synthesis import synthesize

    return synthesize(folder)


@pytest.fixture(scope="module")
def firmware_cache(tmp_path_factory):
    return session_cache(tmp_path_factory)


def test_checkpoint_loads_in_real_torch(tmp_path):
    """torch.load(weights_only=True) of the tool's environment reads our file exactly."""
    model = set_deterministic_weights(get_model("kws20"), seed=5)
    export_model(model, tmp_path / "k", targets=("synthesis",), epoch=3)
    path = tmp_path / "k" / "kws20-q.pth.tar"
    script = (
        "import sys, json, torch\n"
        "c = torch.load(sys.argv[1], map_location='cpu', weights_only=True)\n"
        "sd = c['state_dict']\n"
        "print(json.dumps({'arch': c['arch'], 'epoch': c['epoch'], 'type': type(sd).__name__,"
        " 'keys': list(sd), 'shapes': [list(v.shape) for v in sd.values()],"
        " 'dtypes': [str(v.dtype) for v in sd.values()],"
        " 'sums': [float(v.double().sum()) for v in sd.values()]}))\n")
    out = subprocess.run([TOOL_PYTHON, "-c", script, str(path)], capture_output=True,
                         text=True, check=True, env=dict(os.environ, PYTHONWARNINGS="error"))
    got = json.loads(out.stdout)
    from ai8x_nb.export.synthesis_checkpoint import state_dict
    from ai8x_nb.quantize import convert

    want = state_dict(convert(model))
    assert got["arch"] == "kws20" and got["epoch"] == 3 and got["type"] == "OrderedDict"
    assert got["keys"] == list(want)
    assert got["shapes"] == [list(v.shape) for v in want.values()]
    assert set(got["dtypes"]) == {"torch.float32"}
    assert got["sums"] == [float(v.astype(np.float64).sum()) for v in want.values()]


def _briefly_trained_mnist(tmp_path, data_dir):
    """The seed MNIST model after one float and one QAT epoch on 512 real images."""
    from ai8x_nb.datasets import load
    from ai8x_nb.training import train

    ds = load("mnist", data_dir=data_dir, limit=512, download=False)
    result = train("mnist", ds, epochs=2, batch_size=64, lr=2e-3, schedule="cosine",
                   qat_policy={"start_epoch": 1, "weight_bits": 8}, out=tmp_path / "logs",
                   verbose=0)
    return result.model, ds


@pytest.mark.parametrize("name", model_names())
def test_seed_models_pass_the_tool(tmp_path, name, request, firmware_cache, capsys):
    if name == "mnist":
        model, ds = _briefly_trained_mnist(tmp_path, request.getfixturevalue("mnist_data"))
    else:  # post-training quantized, weights at a scale that gives shifts of several sizes
        model = set_deterministic_weights(get_model(name, device=registry_device(name)),
                                          seed=7, scale=0.15)
        ds = random_dataset(name, DATA_SHAPES[name], int(model.outputs[0].shape[-1]),
                            n_test=4, seed=1)
    manifest = export_model(model, tmp_path / name, dataset=ds, targets=("synthesis",),
                            sample_index=1, name=name)
    assert not manifest.skipped, manifest.skipped
    result = _synthesize(tmp_path / name)
    assert result.ok, result.summary()
    assert result.mismatches == 0 and result.values == int(model.outputs[0].shape[-1])
    assert (result.project_dir / "sampleoutput.h").is_file()
    assert {"cnn.c", "main.c", "weights.h", "sampledata.h"} <= set(result.files)
    assert result.resources["weight_bytes"] > 0
    recorded = Manifest.load(tmp_path / name).synthesis
    assert recorded["verdict"] == "PASS" and recorded["mismatches"] == 0
    # check_model's cycles and operations per layer are the tool's (its log of this run).
    rows = Manifest.load(tmp_path / name).check["layers"]
    assert [{k: layer[k] for k in ("macc", "comp", "add", "mul", "bitwise")}
            for layer in result.ops] == [
        {k: row[k] for k in ("macc", "comp", "add", "mul", "bitwise")} for row in rows]
    if registry_device(name) != "MAX78000":
        return  # the tool has no MAX78002 latency model; its MSDK files are not known here
    assert result.latency["layers"] == [row["cycles"] for row in rows]
    if FIRMWARE_SKIP is None:  # the C project compiles and links (warnings are shown)
        firmware = build_and_check(result.project_dir, firmware_cache)
        with capsys.disabled():
            print(f"\n{name} {firmware.summary().splitlines()[0]}")


def test_residual_model_briefly_trained_passes_the_tool_on_max78002(tmp_path):
    """ressimplenet (three Adds inside convolutions) after one float and one QAT epoch on a
    tiny CIFAR-100 folder in the official format; the MAX78000 run is the PTQ case above."""
    from ai8x_nb.datasets import load
    from ai8x_nb.training import train

    from dataset_files import write_cifar100

    write_cifar100(tmp_path / "data" / "cifar-100-python", n_train=96, n_test=8)
    ds = load("cifar100", data_dir=tmp_path / "data", download=False, allow_partial=True)
    result = train("ressimplenet", ds, epochs=2, batch_size=32, lr=1e-3, device="MAX78002",
                   qat_policy={"start_epoch": 1, "weight_bits": 8}, out=tmp_path / "logs",
                   verbose=0)
    manifest = export_model(result.model, tmp_path / "res", dataset=ds, targets=("synthesis",),
                            sample_index=2, name="ressimplenet", device="MAX78002")
    assert not manifest.skipped, manifest.skipped
    yaml_text = (tmp_path / "res" / "ressimplenet.yaml").read_text()
    assert yaml_text.count("eltwise: add") == 3 and yaml_text.count("write_gap: 1") == 6
    result = _synthesize(tmp_path / "res")
    assert result.ok, result.summary()
    assert result.mismatches == 0 and result.values == 100
    from ai8x_nb.synthesis import build_firmware

    with pytest.raises(SynthesisError, match="cannot build MAX78002 firmware"):
        build_firmware(result.project_dir, device="MAX78002")  # its MSDK files are not known


def _small_export(tmp_path, name="tiny"):
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                      pool_strides=2, name="c1")(inp)
    x = layers.Conv2D(6, 3, padding=1, activation="abs", weight_bits=4, name="c2")(x)
    x = layers.Dense(5, wide=True, name="fc")(keras.layers.Flatten()(x))
    model = set_deterministic_weights(keras.Model(inp, x, name=name), seed=3, scale=0.3)
    export_model(model, tmp_path / name, targets=("synthesis",))
    return tmp_path / name


def test_cli_exit_codes_and_a_wrong_known_answer_is_caught(tmp_path, capsys):
    from ai8x_nb.cli import main

    folder = _small_export(tmp_path)
    assert main(["synthesize", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS") and "C project:" in out and "weight memory:" in out
    # Our known answer altered by one code: the comparison must fail, value by value.
    y = np.load(folder / "sampleoutput.npy")
    y.reshape(-1)[2] += 1
    np.save(folder / "sampleoutput.npy", y)
    assert main(["synthesize", str(folder), "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "differs from sampleoutput.npy in 1 of 5 values" in out
    assert Manifest.load(folder).synthesis["verdict"] == "FAIL"
    assert (tmp_path / "c" / "tiny" / "cnn.c").is_file()  # --out is where the C project goes


def test_tool_rejection_shows_the_tools_error(tmp_path, capsys):
    from ai8x_nb.cli import main

    folder = _small_export(tmp_path, "bad")
    text = (folder / "bad.yaml").read_text()
    (folder / "bad.yaml").write_text(text.replace("operation: MLP", "operation: MLP\n    kernel_size: 3x3"))
    assert main(["synthesize", str(folder), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "FAIL" and result["returncode"] != 0
    assert "kernel_size" in result["error"]
    assert "MLP" in result["diagnosis"] or "linear" in result["diagnosis"]


def test_missing_tool_or_package_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from ai8x_nb.cli import main
    from ai8x_nb.synthesis import synthesize

    folder = _small_export(tmp_path)
    monkeypatch.delenv("AI8X_SYNTHESIS_DIR")
    with pytest.raises(SynthesisError, match="AI8X_SYNTHESIS_DIR is not set.*ai8x-synthesis"):
        synthesize(folder)
    assert main(["synthesize", str(folder)]) == 2
    assert "AI8X_SYNTHESIS_PYTHON" in capsys.readouterr().err
    with pytest.raises(SynthesisError, match="No ai8xize.py in the synthesis folder"):
        synthesize(folder, synthesis_dir=tmp_path)
    with pytest.raises(SynthesisError, match="does not exist"):
        synthesize(folder, synthesis_dir=TOOL_DIR, python=str(tmp_path / "nopython"))
    with pytest.raises(SynthesisError, match="is not an export folder"):
        synthesize(tmp_path / "nothing", synthesis_dir=TOOL_DIR)
    (folder / "sampledata.npy").unlink()
    with pytest.raises(SynthesisError, match="sample_input file .* is missing"):
        synthesize(folder, synthesis_dir=TOOL_DIR)


def test_trace_names_the_layer_whose_shift_was_changed(tmp_path, capsys):
    """`--trace` compares every layer with the tool's log; tool options pass through."""
    from ai8x_nb.cli import main

    folder = _small_export(tmp_path, "tr")
    assert main(["synthesize", str(folder), "--trace", "--energy", "--", "--no-unload"]) == 0
    out = capsys.readouterr().out
    assert "trace: all 3 layers equal" in out, out
    recorded = Manifest.load(folder)
    assert {"--energy", "--no-unload", "--verbose"} <= set(recorded.synthesis["command"])
    # The tool's latency table and operation count, the same as check_model's.
    totals = recorded.check["totals"]
    assert recorded.synthesis["latency"]["total"] == totals["latency_cycles"]
    assert sum(layer["ops"] for layer in recorded.synthesis["ops"]) == totals["ops"]["total"]
    # One output shift changed in the YAML: the tool now computes another layer 1.
    yaml_path = folder / "tr.yaml"
    head, tail = yaml_path.read_text().split("# Layer 1:")
    shift = next(l for l in tail.splitlines() if "output_shift:" in l)
    value = int(shift.split(":")[1])
    yaml_path.write_text(head + "# Layer 1:" + tail.replace(
        shift, shift.replace(str(value), str(value + 1)), 1))
    assert main(["synthesize", str(folder), "--trace"]) == 1
    out = capsys.readouterr().out
    assert "trace: first difference at layer 1 (c2), channel " in out, out
    with capsys.disabled():
        print("\n" + next(l for l in out.splitlines() if l.startswith("trace:")))


def test_options_synthesize_sets_itself_are_refused(tmp_path, capsys):
    from ai8x_nb.cli import main
    from ai8x_nb.synthesis import synthesize

    with pytest.raises(SynthesisError, match="'--prefix'.*sets that option itself"):
        synthesize(tmp_path, extra_args=["--prefix", "other"])
    with pytest.raises(SynthesisError, match="is a string; pass a list"):
        synthesize(tmp_path, extra_args="--energy")
    with pytest.raises(SystemExit):
        main(["check", "mnist", "--", "--energy"])
    assert "only for `ai8x-nb synthesize`" in capsys.readouterr().err
