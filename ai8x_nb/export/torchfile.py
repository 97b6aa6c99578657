"""Write PyTorch's checkpoint file format without PyTorch.

The synthesis tool reads its weights with `torch.load` (`izer/checkpoint.py`). Since PyTorch
1.6, `torch.save` writes a zip archive (stored, not compressed) whose entries all sit under one
top-level folder:

- `data.pkl`: the object, pickled with protocol 2; every tensor is a call of
  `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` whose
  storage is a persistent id `("storage", torch.<Type>Storage, key, "cpu", numel)`;
- `data/<key>`: the storage's raw little-endian bytes, each aligned to 64 bytes in the file;
- `version` (`3`), `.format_version` (`1`), `.storage_alignment` (`64`), `byteorder`.

Only what `torch.load(..., weights_only=True)` accepts is written: dicts (the state dict as
a `collections.OrderedDict`, as PyTorch does), strings, ints, floats, bools and contiguous
float32 / int64 tensors. The pickle is emitted opcode by opcode (no PyTorch globals need to be
importable here).
"""

import collections
import io
import struct
import zipfile

import numpy as np

__all__ = ["save_checkpoint", "ALIGNMENT", "PICKLE_RECORD", "STORAGE_FOLDER", "STORAGES"]

ALIGNMENT = 64
"""Byte alignment of tensor data in the archive (PyTorch's `.storage_alignment`)."""
PICKLE_RECORD = "data.pkl"
"""The archive record holding the pickled object (under the archive's top-level folder)."""
STORAGE_FOLDER = "data"
"""The archive folder holding one record per storage, named by its key."""

STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}
"""The tensor dtypes written, with the `torch.<Type>Storage` each is pickled as."""
_STORAGES = STORAGES
_PADDING_FIELD = 0x4246  # the extra-field id PyTorch pads local headers with ("FB")


class _Pickler:
    """A protocol-2 pickle writer for the few types a checkpoint holds."""

    def __init__(self):
        self.out = io.BytesIO()
        self.storages = []

    def emit(self, obj):
        self.out.write(b"\x80\x02")
        self._save(obj)
        self.out.write(b".")
        return self.out.getvalue()

    def _global(self, module, name):
        self.out.write(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def _save(self, obj):
        w = self.out.write
        if isinstance(obj, bool):
            w(b"\x88" if obj else b"\x89")
        elif isinstance(obj, (int, np.integer)):
            obj = int(obj)
            if -2 ** 31 <= obj < 2 ** 31:
                w(b"J" + struct.pack("<i", obj))
            else:
                raise ValueError(f"integer {obj} does not fit a 32-bit pickle int")
        elif isinstance(obj, (float, np.floating)):
            w(b"G" + struct.pack(">d", float(obj)))
        elif isinstance(obj, str):
            data = obj.encode("utf-8")
            w(b"X" + struct.pack("<I", len(data)) + data)
        elif isinstance(obj, tuple):
            w(b"(")
            for item in obj:
                self._save(item)
            w(b"t")
        elif isinstance(obj, collections.OrderedDict):
            self._global("collections", "OrderedDict")
            w(b")R")
            self._items(obj)
        elif isinstance(obj, dict):
            w(b"}")
            self._items(obj)
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        else:
            raise TypeError(f"cannot write a {type(obj).__name__} into a checkpoint; use dicts, "
                            f"strings, numbers and numpy float32/int64 arrays")

    def _items(self, mapping):
        if not mapping:
            return
        self.out.write(b"(")
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise TypeError(f"checkpoint dict keys must be strings; got {key!r}")
            self._save(key)
            self._save(value)
        self.out.write(b"u")

    def _tensor(self, array):
        if array.dtype not in _STORAGES:
            raise TypeError(f"checkpoint tensors must be float32 or int64; got {array.dtype}")
        array = np.ascontiguousarray(array)
        key = str(len(self.storages))
        self.storages.append((key, array.astype(array.dtype.newbyteorder("<"), copy=False)))
        strides = tuple(s // array.itemsize for s in array.strides) if array.ndim else ()
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out.write(b"(")
        self.out.write(b"(")  # the persistent id of the storage
        self._save("storage")
        self._global("torch", _STORAGES[array.dtype])
        self._save(key)
        self._save("cpu")
        self._save(int(array.size))
        self.out.write(b"tQ")
        self._save(0)
        self._save(tuple(int(s) for s in array.shape))
        self._save(strides)
        self._save(False)
        self._global("collections", "OrderedDict")
        self.out.write(b")R")
        self.out.write(b"tR")


def _aligned_info(zf, name, offset_hint):
    """A ZipInfo whose data starts on an `ALIGNMENT` boundary of the file."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = 30 + len(name.encode())
    pad = (-(offset_hint + header + 4)) % ALIGNMENT
    info.extra = struct.pack("<HH", _PADDING_FIELD, pad) + b"Z" * pad
    return info


def save_checkpoint(obj, path, *, archive_name="archive"):
    """Write `obj` to `path` in the format `torch.save` uses.

    Args:
        obj: a dict of strings, numbers, dicts and numpy float32 / int64 arrays (the arrays
            become tensors; a `collections.OrderedDict` stays one).
        path: the file to write (e.g. `mnist-q.pth.tar`).
        archive_name: the top-level folder inside the archive (PyTorch uses the file stem).

    Returns:
        `path`.

    Raises:
        TypeError: a value of another type.

    Example:

    >>> save_checkpoint({"arch": "net", "epoch": 0,
    ...                  "state_dict": {"l.op.weight": np.ones((2, 3), np.float32)}},
    ...                 "/tmp/net.pth.tar")  # doctest: +SKIP
    """
    pickler = _Pickler()
    records = [(PICKLE_RECORD, pickler.emit(obj)), (".format_version", b"1"),
               (".storage_alignment", str(ALIGNMENT).encode()), ("byteorder", b"little")]
    records += [(f"{STORAGE_FOLDER}/{key}", array.tobytes()) for key, array in pickler.storages]
    records.append(("version", b"3\n"))
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records:
            full = f"{archive_name}/{name}"
            zf.writestr(_aligned_info(zf, full, f.tell()), data)
    return path
