"""Placement: the tool's kernel and bias allocators replayed, masks, offsets, one source."""

import keras
import pytest
import yaml

from ai8x_nb import layers as L
from ai8x_nb.check import check_model
from ai8x_nb.devices import MAX78000, MAX78002
from ai8x_nb.export import synthesis_yaml
from ai8x_nb.graph import trace_model
from ai8x_nb.models import get_model, model_names
from ai8x_nb.placement import kernel_words, layer_demands, packed_mask, place_model
from ai8x_nb.placement.bias import place_biases
from ai8x_nb.placement.data import choose_offset, instances
from ai8x_nb.placement.kernels import KernelMemory
from ai8x_nb.quantize import convert
from support import registry_device


# -------------------------------------------------------------------- kernel memory
def test_kernel_memory_first_fit_on_multiples_of_4():
    memory = KernelMemory(MAX78000)
    assert memory.allocate(0xF, 60) == 0
    assert memory.allocate(0x3C, 10) == 60   # processors 2, 3 are busy up to 59
    assert memory.allocate(0xF0, 5) == 0     # processors 4..7 are free at 0..4 ...
    assert memory.allocate(0x30, 3) == 8     # 4, 5 are busy at 0..4: next multiple of 4
    assert list(memory.top()[:8]) == [60, 60, 70, 70, 70, 70, 5, 5]


def test_kernel_memory_runs_out_like_the_tool():
    memory = KernelMemory(MAX78000)
    assert memory.allocate(0x1, 765) == 0
    assert memory.allocate(0x1, 1) is None   # 765 rounds up to 768: nothing left
    assert memory.allocate(0x2, 769) is None  # longer than a processor's memory


def test_max78002_large_processors_fill_from_the_top():
    memory = KernelMemory(MAX78002)
    assert memory.allocate(0x1, 10) == 5108      # processor 0 alone: 5120 words, from the top
    # Processors 0 and 16, both large: the tool steps down past the busy columns and rounds
    # the start down to a multiple of 4.
    assert memory.allocate(0x1_0001, 4) == 5100
    assert memory.allocate(0x3, 10) == 0         # processor 1 is small: from the bottom
    assert memory.allocate(0x2, 4097) is None


@pytest.mark.parametrize("kwargs,words", [
    (dict(kernel_values=9, bits=8, out_span=60, out_passes=1, in_passes=1), 60),
    (dict(kernel_values=1, bits=8, out_span=64, out_passes=8, in_passes=2), 114),  # cifar100
    (dict(kernel_values=1, bits=8, out_span=10, out_passes=1, in_passes=1), 2),
    (dict(kernel_values=9, bits=4, out_span=5, out_passes=1, in_passes=1), 3),  # odd: padded
    (dict(kernel_values=9, bits=1, out_span=16, out_passes=1, in_passes=1), 2),
    (dict(kernel_values=5, bits=2, out_span=7, out_passes=1, in_passes=2), 3),
    (dict(kernel_values=1, bits=8, out_span=10, out_passes=1, in_passes=1,
          flatten_pixels=16, out_channels=10), 18),  # MNIST's linear layer
])
def test_kernel_words_as_the_tool_counts_them(kwargs, words):
    assert kernel_words(**kwargs) == words


# ------------------------------------------------------------------ masks and memory
def test_packed_mask_of_layers_without_an_operator():
    assert packed_mask(0xFFF0, MAX78000) == 0xFFF0      # contiguous: unchanged
    assert packed_mask(0x111, MAX78000) == 0x7          # CHW input: packed per quadrant
    assert packed_mask(0x11111, MAX78000) == 0x1000F


def test_instances_and_offsets():
    assert instances(0x111, MAX78000) == 0b111
    assert instances(0xFFFFFFFFFFFFFFF0, MAX78000) == 0xFFFE
    live = [(0x2000, 0x1000)]
    assert choose_offset(0x800, live, MAX78000, preferred=[0]) == 0
    assert choose_offset(0x3000, live, MAX78000, preferred=[0x2000]) == 0x3000
    assert choose_offset(0x7000, live, MAX78000) is None


def _demand(index, bias, flatten=None):
    class D:
        pass
    d = D()
    d.index, d.bias_bytes, d.flatten_pixels = index, bias, flatten
    return d


def test_biases_go_largest_first_into_the_emptiest_used_quadrant():
    demands = [_demand(0, 100), _demand(1, 300), _demand(2, 200), _demand(3, 0)]
    masks = [0xF, 0xFFFF_0000, 0xF, 0xF]
    placed = place_biases(demands, masks, 0x3FF, MAX78000)
    assert placed.quadrants == [0, 1]  # the last layer writes to 0..9: quadrants 0 and 1 only
    assert placed.quadrant == [1, 0, 1, None] and placed.used == [300, 300, 0, 0]
    # MAX78000: a flattening linear layer's biases go first of all.
    demands[0].flatten_pixels = 16
    assert place_biases(demands, masks, 0x3FF, MAX78000).quadrant == [0, 1, 0, None]
    too_much = [_demand(0, 300), _demand(1, 300)]
    assert place_biases(too_much, [0xF, 0xF], 0xF, MAX78000).failed == 1


# ----------------------------------------------------------------- whole models
def test_seed_cifar100_fits_as_the_tool_allocates():
    placement = place_model(trace_model(get_model("cifar100")), MAX78000)
    assert placement.ok, placement.errors
    processor, top = placement.fullest_processor
    assert top <= 768
    # The three layers on all 64 processors are placed first, from column 0 (114, 256, 24).
    assert [lp.kernel_offset for lp in placement.layers[11:]] == [0, 116, 372]


def _seq(shape, *layers):
    return keras.Sequential([keras.Input(shape), *layers])


def test_kernel_exhaustion_names_layer_processor_words_and_fix():
    model = _seq((4, 4, 48), *[L.Conv2D(48, 3, padding=1, use_bias=False) for _ in range(17)])
    placement = place_model(trace_model(model), MAX78000)
    assert not placement.ok
    kind = {k for _, k, _ in placement.problems}
    assert kind == {"kernels"}
    message = placement.errors[0]
    assert message.startswith("Layer 'conv2d_")
    assert "need 48 free words on each of its 48 processors" in message
    assert "processor " in message and " of 768 words" in message
    assert "weight_bits=4/2/1" in message and "MAX78002" in message
    assert place_model(trace_model(model), MAX78002).ok


def test_output_that_does_not_fit_its_instance():
    model = _seq((100, 100, 3), L.Conv2D(4, 3, padding=1, wide=True))
    placement = place_model(trace_model(model), MAX78000)
    assert [k for _, k, _ in placement.problems] == ["data"]
    assert "needs 160000 bytes in each data-memory instance" in placement.errors[0]


@pytest.mark.parametrize("name", model_names())
def test_the_yaml_gets_what_check_model_reports(name):
    model = get_model(name, device=registry_device(name))
    report = check_model(model, registry_device(name))
    desc, _ = synthesis_yaml.network_description(convert(model), arch=name, dataset="X")
    parsed = yaml.safe_load(synthesis_yaml.to_yaml(desc))["layers"]
    assert [e["processors"] for e in parsed] == [r.processor_mask for r in report.rows]
    assert [e["out_offset"] for e in parsed] == [r.out_offset for r in report.rows]
    for e, r in zip(parsed, report.rows):
        assert r.out_offset + r.out_instance_bytes <= MAX78000.data_instance_bytes


def test_the_tool_writes_past_its_block_for_unused_output_slots():
    # 100 outputs on 2 passes of 52 processors: the 4 unused slots still get a zero byte
    # each, so the flattening layer writes 401 words where it reserved 400 (36 pixels x 100
    # outputs x 8 bits / 72), and the next layer starts after them (as the tool's cnn.c shows).
    model = _seq((6, 6, 3), L.Conv2D(16, 1, padding=0), keras.layers.Flatten(), L.Dense(100),
                 L.Dense(21, wide=True))
    demands = layer_demands(trace_model(model), MAX78000)
    assert demands[1].words == 400 and set(demands[1].written) == {401}
    # Sub-8-bit weights over two output passes: 14 groups of 8 slots, 13 words reserved.
    one_bit = _seq((2, 2, 8), L.Conv2D(100, 3, padding=1, weight_bits=1), L.Conv2D(4, 1,
                                                                                   padding=0))
    demands = layer_demands(trace_model(one_bit), MAX78000)
    assert demands[0].words == 13 and set(demands[0].written) == {14}


# ------------------------------------------------------------------ branching networks
def _replay_data_memory(report, graph, device):
    """Replay every layer's writes word by word; return the reads that find foreign data.

    Independent of the planner: layer i writes `out_instance_bytes` (interleaved with
    `write_gap` other operands) at `out_offset` in the instances of its output processors, and
    must find, at `in_offset` in the instances of its input processors, only words written by
    the layers it reads (the model input counts as layer -1, loaded at 0).
    """
    import numpy as np

    words = device.data_instance_bytes // 4
    owner = np.full((device.data_memory_instances, words), -2)
    first = report.rows[0]
    for inst in range(device.data_memory_instances):
        if instances(first.processor_mask, device) >> inst & 1:
            owner[inst, :-(-first.in_instance_bytes // 4)] = -1
    bad = []
    for row, hw in zip(report.rows, graph.layers):
        n_in = -(-row.in_instance_bytes // 4)
        for inst in range(device.data_memory_instances):
            if instances(row.processor_mask, device) >> inst & 1:
                found = set(owner[inst, row.in_offset // 4:row.in_offset // 4 + n_in].tolist())
                if not found <= set(hw.inputs):
                    bad.append((row.index, inst, sorted(found)))
        n_out, k = row.out_instance_bytes // 4, row.write_gap + 1
        for inst in range(device.data_memory_instances):
            if instances(row.output_mask, device) >> inst & 1:
                start = row.out_offset // 4
                owner[inst, start:start + n_out * k:k] = row.index
    return bad


@pytest.mark.parametrize("device", [MAX78000, MAX78002])
def test_residual_model_operands_interleave_and_nothing_live_is_overwritten(device):
    model = get_model("ressimplenet", device=device.name)
    graph = trace_model(model)
    report = check_model(model, device)
    assert report.ok, report.errors
    rows = report.rows
    fused = [r for r in rows if r.eltwise]
    assert [r.name for r in fused] == ["conv4", "conv7", "conv10"]
    for r in fused:
        hw = graph.layers[r.index]
        producers = [rows[i] for i in hw.inputs]
        assert [p.out_offset for p in producers] == [r.in_offset, r.in_offset + 4]
        assert {p.output_mask for p in producers} == {r.processor_mask}
        assert all(p.write_gap == 1 for p in producers)
    assert _replay_data_memory(report, graph, device) == []
