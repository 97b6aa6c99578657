"""The vendor's trained networks imported into the workbench, bit-exact with the vendor's tool.

For each network the workbench can represent (mnist, kws20_v3, cifar10 and the camvid and
aisegment UNets, whose skip connections are `in_sequences` concatenations): (a) our simulator
on the imported model and the vendor's sample equals the known answer the tool computes from
the ORIGINAL checkpoint and YAML (with the options of the vendor's demo); (b) the imported
model exported by `export_model` and synthesized passes (the tool's known answer equals ours).
The tool's run on its own files overlaps our export and synthesis. Networks the workbench
cannot represent yet are refused with the layer, YAML key and what is missing.

Needs the tool (AI8X_SYNTHESIS_DIR, AI8X_SYNTHESIS_PYTHON); skips without it. Run with `-s`
to see the table.
"""

import os
import subprocess
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from ai8x_nb.errors import DeviceLimitError, ZooImportError
from ai8x_nb.export import export_model
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate
from ai8x_nb.synthesis.known_answer import (compare_memory, expected_bytes, output_layouts,
                                            parse_sample_output)
from ai8x_nb.zoo import import_synthesis
from ai8x_nb.zoo.network import read_network, sample_file

TOOL_DIR = os.environ.get("AI8X_SYNTHESIS_DIR")
TOOL_PYTHON = os.environ.get("AI8X_SYNTHESIS_PYTHON")
pytestmark = [
    pytest.mark.synthesis,
    pytest.mark.skipif(not (TOOL_DIR and TOOL_PYTHON),
                       reason="the synthesis tool is not configured: set AI8X_SYNTHESIS_DIR and "
                              "AI8X_SYNTHESIS_PYTHON (../shared/vendor/setup-synthesis.sh)"),
]

DEMO_OPTIONS = ("--softmax", "--compact-data", "--mexpress", "--timer", "0",
                "--display-checkpoint")
"""The options of the vendor's gen-demos-max78000.sh for mnist, kws20_v3 and cifar10."""
UNET_OPTIONS = ("--timer", "0", "--display-checkpoint", "--overlap-data", "--mlator",
                "--no-unload", "--max-checklines", "8192")
"""The options of the vendor's UNet demos (the MAX78000's adds --new-kernel-loader)."""
NETWORKS = {
    "mnist": ("ai85-mnist-qat8-q.pth.tar", "mnist-chw-ai85.yaml", DEMO_OPTIONS),
    "kws20_v3": ("ai85-kws20_v3-qat8-q.pth.tar", "kws20-v3-hwc.yaml", DEMO_OPTIONS),
    "cifar10": ("ai85-cifar10-qat8-q.pth.tar", "cifar10-nas.yaml", DEMO_OPTIONS),
    "camvid": ("ai85-camvid-unet-large-fakept-q.pth.tar", "camvid-unet-large-fakept.yaml",
               UNET_OPTIONS),
    "aisegment": ("ai85-aisegment-unet-large-fakept-q.pth.tar",
                  "aisegment-unet-large-fakept.yaml", UNET_OPTIONS),
    "catsdogs": ("ai85-catsdogs-qat8-q.pth.tar", "cats-dogs-hwc.yaml",
                 DEMO_OPTIONS + ("--fifo",)),
    "svhn": ("ai85-svhn-tinierssd-qat8-q.pth.tar", "svhn-tinierssd.yaml",
             ("--timer", "0", "--display-checkpoint", "--overlap-data", "--compact-data")),
    "facedet": ("ai85-facedet-tinierssd-qat8-q.pth.tar", "ai85-facedet-tinierssd.yaml",
                ("--timer", "0", "--display-checkpoint", "--fifo", "--compact-data")),
}
"""Per network: checkpoint, YAML, and the options of the vendor's demo (gen-demos-max78000.sh;
the detectors' --compact-data only makes the tool write its known answer to sampleoutput.h,
which holds every output layer)."""
KNOWN_ANSWER = "known_answer.npy"


def _files(key):
    checkpoint, yaml, _ = NETWORKS[key]
    tool = Path(TOOL_DIR)
    return tool / "trained" / checkpoint, tool / "networks" / yaml


def _sample(key):
    return sample_file(read_network(_files(key)[1]))


def _start_vendor_known_answer(key, out, device="MAX78000"):
    """Start the tool on its own checkpoint, YAML and sample (it runs while we export)."""
    checkpoint, yaml = _files(key)
    options = NETWORKS[key][2]
    if options is UNET_OPTIONS and device == "MAX78000":
        options += ("--new-kernel-loader",)
    # The vendor's checkpoints also pickle the optimizer class, which torch >= 2.6 refuses
    # under weights_only; these are the vendor's own files, loaded by the vendor's tool.
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONDONTWRITEBYTECODE="1")
    args = [TOOL_PYTHON, "ai8xize.py", "--no-version-check", "--overwrite", "--no-progress",
            "--test-dir", str(out), "--prefix", key, "--checkpoint-file", str(checkpoint),
            "--config-file", str(yaml), "--sample-input", str(_sample(key)),
            "--device", device, "--sample-numpy-filename", KNOWN_ANSWER, *options]
    return subprocess.Popen(args, cwd=TOOL_DIR, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _vendor_known_answer(process, key, out):
    """The tool's known answer (its last layer) and its C known-answer test (every output
    layer, byte by byte), once the process started above has finished."""
    output, _ = process.communicate()
    assert process.returncode == 0, output[-4000:]
    header = out / key / "sampleoutput.h"
    memory = parse_sample_output(header.read_text()) if header.is_file() else None
    return np.load(out / key / KNOWN_ANSWER), memory


def _every_output_in_memory(graph, ys, key, device):
    """Our outputs laid out in data memory where the vendor's YAML puts them."""
    layers = yaml.safe_load(_files(key)[1].read_text())["layers"]
    outputs = {i: np.moveaxis(y[0], -1, 0) for i, y in zip(graph.output_indices, ys)}
    layouts = output_layouts(layers, {i: y.shape[0] for i, y in outputs.items()})
    ours = {}
    for index, layout in layouts.items():
        ours.update(expected_bytes(outputs[index], device=device, **layout))
    return ours


@pytest.fixture(scope="module")
def table(request):
    rows = {}
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not rows:
        return
    reporter.write_line("")
    reporter.write_line(f"{'network':<10} {'device':<9} {'(a) simulate vs tool':<22} "
                        f"{'(b) export+synthesize':<22} {'seconds':>7}")
    for (key, device), row in rows.items():
        reporter.write_line(f"{key:<10} {device:<9} {row.get('a', '-'):<22} "
                            f"{row.get('b', '-'):<22} {row.get('seconds', 0.0):>7.1f}")


FULL = os.environ.get("AI8X_NB_ZOO_FULL") == "1"
"""AI8X_NB_ZOO_FULL=1 also runs, by hand, the MAX78002 cases CI leaves out to stay cheap
(cats-dogs, svhn, facedet, aisegment: about 3 min more)."""
MAX78002_CI = ("mnist", "cifar10", "camvid")


@pytest.mark.parametrize("key, device", [(key, "MAX78000") for key in NETWORKS]
                         + [(key, "MAX78002") for key in NETWORKS
                            if key in MAX78002_CI or FULL and key != "kws20_v3"])
def test_imported_network_is_bit_exact_with_the_tool(key, device, tmp_path, table):
    started = time.monotonic()
    row = table.setdefault((key, device), {})
    vendor = _start_vendor_known_answer(key, tmp_path / "vendor", device=device)
    try:
        checkpoint, yaml = _files(key)
        model = import_synthesis(checkpoint, yaml, device=device)
        sample = np.load(_sample(key))
        x = np.moveaxis(sample, 0, -1)  # channel-first (the tool's) -> channels-last (Keras)
        qmodel = convert(model)
        ys = simulate(qmodel, x[None])
        graph = qmodel.graph
        if graph.several_outputs:
            ours = ys[graph.output_indices.index(graph.output_index)][0]
        else:
            ours = ys[0]
        # (b) the imported model through the workbench's own export and the tool: PASS
        from ai8x_nb.synthesis import synthesize

        export_model(model, tmp_path / "export", targets=("synthesis",), sample=x,
                     device=device)
        result = synthesize(tmp_path / "export", out=tmp_path / "sdk")
    except BaseException:
        vendor.kill()
        vendor.communicate()
        raise
    # (a) our simulator on the imported model == the tool on the original files
    known, memory = _vendor_known_answer(vendor, key, tmp_path / "vendor")
    assert ours.size == known.size
    np.testing.assert_array_equal(np.moveaxis(ours, -1, 0).reshape(-1), known.reshape(-1))
    row["a"] = f"PASS ({known.size} values)"
    if graph.several_outputs:  # every output, as the tool's C known-answer test holds them
        wrong, checked, first = compare_memory(_every_output_in_memory(graph, ys, key, device),
                                               memory)
        assert wrong == 0, f"{wrong} of {checked} bytes differ; first: {first}"
        row["a"] = f"PASS ({len(graph.output_indices)} outputs, {checked} bytes)"
    assert result.ok, result.summary()
    row["b"] = f"PASS ({result.values} values)"
    row["seconds"] = time.monotonic() - started


def test_kws20_v3_is_refused_on_max78002_as_by_the_tool(table):
    """The tool refuses this YAML on the MAX78002 too ("padded Conv1d with input expansion > 1")."""
    with pytest.raises(DeviceLimitError, match=r"Conv1D 'voice_conv3': padding=1 is not "
                                               r"supported by MAX78002 .*got 96"):
        import_synthesis(*_files("kws20_v3"), device="MAX78002")
    table[("kws20_v3", "MAX78002")] = {"a": "refused (as the tool)", "b": "refused"}


def test_imported_layers_carry_the_checkpoint(tmp_path):
    """Layer names, fixed shifts, biases and a .keras round trip of the imported model."""
    model = import_synthesis(*_files("kws20_v3"))
    names = [layer.name for layer in model.layers if hasattr(layer, "output_shift")]
    assert names == ["voice_conv1", "voice_conv2", "voice_conv3", "voice_conv4", "kws_conv1",
                     "kws_conv2", "kws_conv3", "kws_conv4", "fc"]
    # The tool gives the first nine weights (the `module.` copies, which have no bias) to the
    # nine layers; their shifts come from the checkpoint (no output_shift in this YAML).
    assert [model.get_layer(n).output_shift for n in names] == [1, 2, 2, 2, 1, 2, 2, 2, 3]
    assert not any(model.get_layer(n).use_bias for n in names)
    qmodel = convert(model)
    assert [ql.output_shift for ql in qmodel.layers] == [1, 2, 2, 2, 1, 2, 2, 2, 0]
    path = tmp_path / "kws.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.moveaxis(np.load(_sample("kws20_v3")), 0, -1)[None]
    np.testing.assert_array_equal(simulate(convert(loaded), x), simulate(qmodel, x))


def test_cli_import(tmp_path):
    from ai8x_nb.cli import main

    out = tmp_path / "mnist.keras"
    assert main(["import", *map(str, _files("mnist")), "--out", str(out)]) == 0
    model = keras.models.load_model(out)
    assert model.name == "ai85net5"
    assert [layer.output_shift for layer in model.layers[1:] if hasattr(layer, "output_shift")] \
        == [-1, -2, -2, -1, 0]


def test_mismatched_pair_is_refused():
    tool = Path(TOOL_DIR)
    with pytest.raises(ZooImportError, match=r"holds arch 'ai85net5'; cifar10-nas\.yaml "
                                             r"describes 'ai85nascifarnet'"):
        import_synthesis(tool / "trained" / NETWORKS["mnist"][0],
                         tool / "networks" / NETWORKS["cifar10"][1])


def test_sample_found_as_the_tool_finds_it():
    """`dataset: MNIST` -> tests/sample_mnist.npy; `CIFAR10` -> the vendor's sample_cifar-10.npy."""
    assert _sample("mnist").name == "sample_mnist.npy"
    assert _sample("kws20_v3").name == "sample_kws_20.npy"
    assert _sample("cifar10").name == "sample_cifar-10.npy"
