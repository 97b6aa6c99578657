"""`zoo.network.read_network` on small YAMLs: what `in_sequences` and `write_gap` become."""

import pytest

from ai8x_nb.errors import ZooImportError
from ai8x_nb.zoo.network import read_network

HEAD = "arch: net\ndataset: data\nlayers:\n"
CONV = "  - processors: 0xff\n    out_offset: 0\n"


def _read(tmp_path, text):
    path = tmp_path / "net.yaml"
    path.write_text(HEAD + text)
    return read_network(path)


def test_in_sequences_branch_and_concatenation(tmp_path):
    network = _read(tmp_path, CONV + CONV + "    name: second\n"
                    + CONV + "    in_sequences: [0]\n    write_gap: 1\n"
                    + CONV + "    in_sequences: [second, 2]\n    write_gap: 1\n"
                    + CONV + "    in_sequences: [3, 2]\n"
                    + CONV + "    in_sequences: [input]\n    in_dim: [4, 4]\n")
    assert [layer.inputs for layer in network.layers] == [None, None, (0,), (1, 2), (3, 2),
                                                          (-1,)]
    assert [layer.write_gap for layer in network.layers] == [0, 0, 1, 1, 0, 0]


def test_write_gap_is_refused_unless_a_concatenation_reads_the_layer(tmp_path):
    with pytest.raises(ZooImportError, match=r"`write_gap` \(layer 1: 1\): the workbench has no "
                                             r"interleaved outputs other than a concatenation"):
        _read(tmp_path, CONV + CONV + "    write_gap: 1\n" + CONV)


def test_in_sequences_refusals(tmp_path):
    with pytest.raises(ZooImportError, match=r"`in_sequences` \(layer 1: \['later'\]\): the "
                                             r"workbench has no inputs other than earlier"):
        _read(tmp_path, CONV + CONV + "    in_sequences: [later]\n" + CONV + "    name: later\n")
    with pytest.raises(ZooImportError, match=r"`eltwise` \(layer 2: add\): the workbench has "
                                             r"no element-wise operations fused"):
        _read(tmp_path, CONV + CONV + CONV + "    in_sequences: [0, 1]\n    eltwise: add\n")
    with pytest.raises(ZooImportError, match=r"`in_sequences` \(layer 2: \[0, 1\]\): the "
                                             r"workbench has no concatenated inputs on a layer"):
        _read(tmp_path, CONV + CONV + "  - op: passthrough\n    max_pool: 2\n"
                        "    in_sequences: [0, 1]\n")
