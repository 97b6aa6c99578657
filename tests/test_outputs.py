"""Models with several outputs (`output: true`): tracing, simulation, YAML, the known answer.

`known_answer` is checked against a hand-made `sampleoutput.h`; with the tool, a two-head model
synthesizes with every output equal, and a wrong inner output is caught. The tool's verdicts on
random multi-output models are in tests/test_synthesis_parity.py; the vendor's detectors in
tests/test_zoo.py.
"""

import os

import keras
import numpy as np
import pytest

from ai8x_nb import layers as L
from ai8x_nb.check import check_model
from ai8x_nb.export.synthesis_yaml import network_description
from ai8x_nb.graph import trace_model
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate
from ai8x_nb.synthesis import known_answer as ka

from support import randomize


def _two_heads(device="MAX78000"):
    x = keras.Input((12, 12, 3))
    a = L.Conv2D(16, 3, padding=1, activation="relu", device=device, name="a")(x)
    b = L.Conv2D(16, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                 device=device, name="b")(a)
    loc = L.Conv2D(8, 3, padding=1, device=device, name="loc")(a)
    cls = L.Conv2D(4, 1, padding=0, device=device, name="cls")(b)
    return keras.Model(x, [cls, loc, b], name="heads")


def test_several_outputs_are_traced_and_simulated():
    model = _two_heads()
    randomize(model, 0)
    graph = trace_model(model)
    names = [hw.name for hw in graph.layers]
    assert [names[i] for i in graph.output_indices] == ["cls", "loc", "b"]
    assert graph.several_outputs and graph.output_index == len(graph.layers) - 1
    x = np.random.default_rng(0).integers(-128, 128, size=(3, 12, 12, 3))
    ys = simulate(convert(model), x)
    assert isinstance(ys, list) and [y.shape for y in ys] == [(3, 6, 6, 4), (3, 12, 12, 8),
                                                              (3, 6, 6, 16)]
    single = keras.Model(model.inputs, model.get_layer("loc").output)
    np.testing.assert_array_equal(simulate(convert(single), x), ys[1])


def test_outputs_are_marked_in_the_yaml():
    model = _two_heads()
    randomize(model, 1)
    report = check_model(model)
    assert report.ok, report.errors
    desc, warnings = network_description(convert(model), arch="h", dataset="H")
    assert not warnings
    marked = [n for n, e in zip(desc["names"], desc["layers"]) if e.get("output")]
    assert sorted(marked) == ["b", "cls", "loc"]


def test_an_output_that_is_a_flatten_is_refused():
    x = keras.Input((4, 4, 3))
    a = L.Conv2D(4, 3, padding=1, name="a")(x)
    b = L.Conv2D(4, 3, padding=1, name="b")(a)
    model = keras.Model(x, [keras.layers.Flatten()(a), b])
    assert any("Output 0 of model" in e and "is a Flatten or Reshape of layer 'a'" in e
               for e in check_model(model).errors)


def test_known_answer_layout_and_header():
    values = np.arange(2 * 2 * 6, dtype=np.int64).reshape(6, 2, 2) - 10  # (C, H, W)
    found = ka.expected_bytes(values, device="MAX78000", processors=0x3F0, out_offset=0x100)
    # channel 0 on processor 4: instance 1 (32 KiB on), lane 0; pixel 1 one word further
    base = 0x50400000 + 0x100 + 0x8000
    assert found[base] == values[0, 0, 0] & 0xFF and found[base + 4] == values[0, 0, 1] & 0xFF
    assert found[base + 3] == values[3, 0, 0] & 0xFF  # processor 7: lane 3
    assert found[base + 0x8000] == values[4, 0, 0] & 0xFF  # processor 8: the next instance
    words = {}
    for addr, value in found.items():
        word = addr & ~3
        mask, data = words.get(word, (0, 0))
        words[word] = (mask | 0xFF << 8 * (addr % 4), data | value << 8 * (addr % 4))
    blocks = []
    for word in sorted(words):
        blocks += [word, words[word][0], 1, words[word][1]]
    text = "#define SAMPLE_OUTPUT { \\\n  " + ", ".join(f"0x{v:08x}" for v in blocks + [0]) + " }"
    assert ka.parse_sample_output(text) == found
    assert ka.compare_memory(found, ka.parse_sample_output(text)) == (0, len(found), None)
    wrong = dict(found)
    wrong[base] = (found[base] + 1) & 0xFF
    assert ka.compare_memory(wrong, found)[0] == 1


@pytest.mark.synthesis
@pytest.mark.skipif(not (os.environ.get("AI8X_SYNTHESIS_DIR")
                         and os.environ.get("AI8X_SYNTHESIS_PYTHON")),
                    reason="the synthesis tool is not configured")
@pytest.mark.parametrize("device", ["MAX78000", "MAX78002"])
def test_every_output_is_compared_with_the_tool(tmp_path, device, warm_synthesis_python):
    from ai8x_nb.export import export_model
    from ai8x_nb.synthesis import synthesize

    model = _two_heads(device)
    randomize(model, 2)
    x = np.random.default_rng(3).integers(-128, 128, size=(12, 12, 3))
    manifest = export_model(model, tmp_path / "e", targets=("synthesis",), sample=x,
                            device=device)
    result = synthesize(manifest.folder, python=warm_synthesis_python)
    assert result.ok, result.summary()
    sizes = 6 * 6 * 4 + 12 * 12 * 8 + 6 * 6 * 16
    assert result.values == 12 * 12 * 8 + sizes  # the last layer (loc), then every output byte
    # A wrong inner output (not the tool's NumPy answer, which holds the last layer only)
    path = manifest.path("sample_outputs")
    with np.load(path) as saved:
        outputs = {k: saved[k].copy() for k in saved.files}
    key = next(k for k, v in outputs.items() if v.shape == (8, 12, 12))
    outputs[key][0, 0, 0] ^= 1
    np.savez(path, **outputs)
    result = synthesize(manifest.folder, python=warm_synthesis_python)
    assert not result.ok and result.mismatches == 1
