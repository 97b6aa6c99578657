"""The safe checkpoint reader: the vendor's eight checkpoints as torch reads them, hostile files refused.

The comparison with real torch needs the synthesis tool's environment (AI8X_SYNTHESIS_DIR for
the vendor's files, AI8X_SYNTHESIS_PYTHON for torch); the hostile-file tests need nothing.
"""

import collections
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ai8x_nb.errors import UnsafeCheckpointError, ZooImportError
from ai8x_nb.export.torchfile import save_checkpoint
from ai8x_nb.zoo import read_checkpoint
from ai8x_nb.zoo.pthfile import GlobalReference

TOOL_DIR = os.environ.get("AI8X_SYNTHESIS_DIR")
TOOL_PYTHON = os.environ.get("AI8X_SYNTHESIS_PYTHON")
VENDOR_CHECKPOINTS = sorted((Path(TOOL_DIR) / "trained").glob("*.pth.tar")) if TOOL_DIR else []

needs_vendor = pytest.mark.skipif(
    not (TOOL_DIR and TOOL_PYTHON and VENDOR_CHECKPOINTS),
    reason="the vendor's checkpoints and torch: set AI8X_SYNTHESIS_DIR and AI8X_SYNTHESIS_PYTHON")

_TORCH_DUMP = """
import sys, numpy as np, torch
refs = [torch.optim.SGD, torch.optim.Adam]
for source, target in zip(sys.argv[1::2], sys.argv[2::2]):
    with torch.serialization.safe_globals(refs):
        c = torch.load(source, map_location="cpu", weights_only=True)
    arrays = {f"{i:04d}": v.numpy() for i, v in enumerate(c["state_dict"].values())}
    np.savez(target, keys=np.array(list(c["state_dict"])), **arrays)
    t = c["optimizer_type"]
    print(c["arch"], c["epoch"], t.__module__, t.__name__)
"""


@needs_vendor
def test_vendor_checkpoints_equal_torch(tmp_path):
    """All eight vendor checkpoints: same keys, order, dtypes, shapes and values as torch.load."""
    assert len(VENDOR_CHECKPOINTS) == 8
    dumps = [tmp_path / f"{path.name}.npz" for path in VENDOR_CHECKPOINTS]
    pairs = [str(p) for pair in zip(VENDOR_CHECKPOINTS, dumps) for p in pair]
    out = subprocess.run([TOOL_PYTHON, "-c", _TORCH_DUMP] + pairs, capture_output=True,
                         text=True, check=True)
    for path, dump, line in zip(VENDOR_CHECKPOINTS, dumps, out.stdout.splitlines()):
        arch, epoch, opt_module, opt_name = line.split()
        ours = read_checkpoint(path)
        assert (ours["arch"], ours["epoch"]) == (arch, int(epoch))
        assert ours["optimizer_type"] == GlobalReference(opt_module, opt_name)
        sd = ours["state_dict"]
        assert isinstance(sd, collections.OrderedDict)
        with np.load(dump) as theirs:
            assert list(sd) == list(theirs["keys"])
            for i, (key, value) in enumerate(sd.items()):
                expected = theirs[f"{i:04d}"]
                assert value.dtype == expected.dtype and value.shape == expected.shape, key
                np.testing.assert_array_equal(value, expected, err_msg=key)


def test_round_trip_of_our_writer(tmp_path):
    sd = collections.OrderedDict([("a.op.weight", np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
                                  ("a.output_shift", np.array([-2], dtype=np.float32)),
                                  ("n", np.array([7, -8], dtype=np.int64))])
    save_checkpoint({"arch": "net", "epoch": 3, "state_dict": sd}, tmp_path / "x.pth.tar")
    got = read_checkpoint(tmp_path / "x.pth.tar")
    assert (got["arch"], got["epoch"]) == ("net", 3)
    assert list(got["state_dict"]) == list(sd)
    for key, value in sd.items():
        np.testing.assert_array_equal(got["state_dict"][key], value)
        assert got["state_dict"][key].dtype == value.dtype


# ------------------------------------------------------------------ hostile files
def _archive(path, payload, extra=()):
    """A torch-style zip archive around a hand-made pickle."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", b"3\n")
        for name, data in extra:
            zf.writestr(name, data)
    return path


class _SystemCall:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Eval:
    def __reduce__(self):
        import builtins

        return (builtins.eval, ("__import__('os').getcwd()",))


def test_pickled_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": _SystemCall(f"touch {marker}")}, protocol=2)
    path = _archive(tmp_path / "evil.pth.tar", payload)
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pth\.tar: refused to load the "
                                                    r"global (posix|os|nt)\.system"):
        read_checkpoint(path)
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    path = _archive(tmp_path / "eval.pth.tar", pickle.dumps(_Eval(), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"the global (builtins|__builtin__)\.eval"):
        read_checkpoint(path)


def test_unknown_global_is_refused(tmp_path):
    payload = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00."
    path = _archive(tmp_path / "unknown.pth.tar", payload)
    with pytest.raises(UnsafeCheckpointError,
                       match=r"refused to load the global numpy\.core\.multiarray\._reconstruct"):
        read_checkpoint(path)


def test_a_referenced_optimizer_class_cannot_be_called(tmp_path):
    # GLOBAL torch.optim.sgd SGD, then REDUCE it with (): a call of an allowed reference.
    payload = b"\x80\x02ctorch.optim.sgd\nSGD\n)R."
    path = _archive(tmp_path / "call.pth.tar", payload)
    with pytest.raises(UnsafeCheckpointError, match=r"a call of torch\.optim\.sgd\.SGD"):
        read_checkpoint(path)


def test_storage_type_cannot_be_called(tmp_path):
    payload = b"\x80\x02ctorch\nFloatStorage\nK\x05\x85R."
    path = _archive(tmp_path / "storage.pth.tar", payload)
    with pytest.raises(UnsafeCheckpointError, match=r"a call of torch\.FloatStorage"):
        read_checkpoint(path)


def test_forged_persistent_id_is_refused(tmp_path):
    payload = b"\x80\x02X\x04\x00\x00\x00evilQ."
    path = _archive(tmp_path / "pid.pth.tar", payload)
    with pytest.raises(UnsafeCheckpointError, match=r"persistent id 'evil'"):
        read_checkpoint(path)


def test_corrupt_and_legacy_files_are_refused(tmp_path):
    good = tmp_path / "good.pth.tar"
    save_checkpoint({"arch": "n", "epoch": 0,
                     "state_dict": {"w": np.ones((4, 4), np.float32)}}, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooImportError, match=r"truncated\.pth\.tar: not a PyTorch >= 1\.6 zip"):
        read_checkpoint(truncated)
    flipped = bytearray(data)
    start = data.index(b"archive/data/0") + len(b"archive/data/0")
    flipped[start + 40] ^= 0xFF  # inside the stored tensor bytes: the CRC no longer matches
    corrupt = tmp_path / "corrupt.pth.tar"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(ZooImportError, match=r"corrupt\.pth\.tar: the checkpoint is corrupt"):
        read_checkpoint(corrupt)
    legacy = tmp_path / "legacy.pth.tar"
    legacy.write_bytes(pickle.dumps({"state_dict": {}}, protocol=2))
    with pytest.raises(ZooImportError, match=r"legacy pickle file"):
        read_checkpoint(legacy)
    short = _archive(tmp_path / "short.pth.tar", pickle.dumps({}, protocol=2)[:-1])
    with pytest.raises(ZooImportError, match=r"short\.pth\.tar: the checkpoint is corrupt"):
        read_checkpoint(short)
    with pytest.raises(ZooImportError, match=r"cannot read the checkpoint"):
        read_checkpoint(tmp_path / "missing.pth.tar")


def test_missing_storage_record_is_refused(tmp_path):
    good = tmp_path / "good.pth.tar"
    save_checkpoint({"state_dict": {"w": np.ones(3, np.float32)}}, good)
    with zipfile.ZipFile(good) as zf:
        payload = zf.read("archive/data.pkl")
    path = _archive(tmp_path / "nostorage.pth.tar", payload)  # the pickle without its storage
    with pytest.raises(ZooImportError, match=r"storage record 'archive/data/0' is missing"):
        read_checkpoint(path)


def test_the_error_is_a_value_error():
    assert issubclass(UnsafeCheckpointError, ValueError)
    assert issubclass(UnsafeCheckpointError, ZooImportError)
