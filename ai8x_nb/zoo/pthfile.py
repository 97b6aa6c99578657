"""Read PyTorch checkpoints (`.pth.tar`) safely, without PyTorch: tensors become NumPy arrays.

A checkpoint is a pickle, and unpickling runs whatever callables the file names. This reader
unpickles through an allow-list: `find_class` hands out only what a state dict needs
(`collections.OrderedDict` and our own NumPy versions of `torch._utils._rebuild_tensor_v2` /
`_rebuild_parameter`), the `torch.<Type>Storage` names become inert dtype markers that only
`persistent_load` accepts, and the optimizer class an ai8x-training checkpoint stores under
`optimizer_type` becomes an inert reference. Calling any marker, and naming any other global
(`os.system`, `builtins.eval`, `copyreg._reconstructor`, ...), raises `UnsafeCheckpointError`
naming the file and the global; nothing of the file is ever executed.

The format is the one `ai8x_nb.export.torchfile` writes (PyTorch >= 1.6, a zip archive of
`<folder>/data.pkl` and `<folder>/data/<key>` storages). The vendor's eight trained networks
use it, with these globals only: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
`torch.FloatStorage`, `torch.LongStorage` and `torch.optim.adam.Adam` / `torch.optim.sgd.SGD`.
The pre-1.6 (non-zip) format is refused with a message saying how to re-save the file.
"""

import collections
import dataclasses
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ai8x_nb.errors import UnsafeCheckpointError, ZooImportError
from ai8x_nb.export import torchfile

__all__ = ["read_checkpoint", "GlobalReference", "STORAGE_DTYPES"]

STORAGE_DTYPES = {name: dtype for dtype, name in torchfile.STORAGES.items()} | {
    "DoubleStorage": np.dtype(np.float64), "HalfStorage": np.dtype(np.float16),
    "IntStorage": np.dtype(np.int32), "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8), "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_)}
"""`torch.<Type>Storage` names and the NumPy dtype of their elements."""

OPTIMIZER_REFERENCES = frozenset({
    ("torch.optim.adam", "Adam"), ("torch.optim.adamw", "AdamW"), ("torch.optim.sgd", "SGD"),
    ("torch.optim.rmsprop", "RMSprop"), ("torch.optim.adagrad", "Adagrad"),
    ("torch.optim.adadelta", "Adadelta"), ("torch.optim.adamax", "Adamax"),
    ("torch.optim.nadam", "NAdam"), ("torch.optim.radam", "RAdam")})
"""Optimizer classes ai8x-training stores as a plain reference (`optimizer_type`)."""


def _refuse(source, what):
    raise UnsafeCheckpointError(
        f"{source}: refused to load {what}; a checkpoint's state dict needs only tensors, "
        f"dicts and numbers, so nothing of the file was run. Load only checkpoints you trust "
        f"with torch itself, or re-save the state dict alone (torch.save({{'state_dict': ...}})).")


@dataclasses.dataclass(frozen=True)
class GlobalReference:
    """An inert stand-in for a global the checkpoint names but must never call.

    Attributes:
        module: the module the pickle names (e.g. `torch.optim.adam`).
        name: the global's name (e.g. `Adam`).
        source: the file, for the error message.
    """

    module: str
    name: str
    source: str = dataclasses.field(default="", compare=False, repr=False)

    def __call__(self, *args, **kwargs):
        _refuse(self.source, f"a call of {self.module}.{self.name}")

    def __setstate__(self, state):
        _refuse(self.source, f"state set on {self.module}.{self.name}")

    def __str__(self):
        return f"{self.module}.{self.name}"


@dataclasses.dataclass(frozen=True)
class _StorageType(GlobalReference):
    dtype: np.dtype = None


@dataclasses.dataclass(frozen=True)
class _Storage:
    key: str
    array: np.ndarray


def _rebuild_tensor(source, storage, offset, size, stride, *_):
    """`torch._utils._rebuild_tensor_v2` for NumPy: a strided view of the storage, copied."""
    if not isinstance(storage, _Storage):
        _refuse(source, f"a tensor built from a {type(storage).__name__} (not a storage)")
    try:
        offset = int(offset)
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
    except (TypeError, ValueError):
        _refuse(source, "a tensor with a malformed offset, size or stride")
    data = storage.array
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise ZooImportError(f"{source}: tensor in storage {storage.key} has size {size}, stride "
                             f"{stride}, offset {offset}; the file is corrupt.")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if last >= data.size:
        raise ZooImportError(f"{source}: tensor in storage {storage.key} reaches element {last} "
                             f"of {data.size}; the file is corrupt or truncated.")
    if not all(size):
        return np.zeros(size, dtype=data.dtype)
    view = np.lib.stride_tricks.as_strided(
        data[offset:], shape=size, strides=tuple(s * data.itemsize for s in stride),
        writeable=False)
    return np.array(view, dtype=data.dtype.newbyteorder("="))


def _rebuild_parameter(source, data, *_):
    """`torch._utils._rebuild_parameter`: a Parameter is its data here."""
    if not isinstance(data, np.ndarray):
        _refuse(source, f"a parameter built from a {type(data).__name__}")
    return data


class _Unpickler(pickle.Unpickler):
    """Unpickles a state dict: only allow-listed globals, storages from the archive."""

    def __init__(self, data, archive, folder, source, byteorder):
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._folder = folder
        self._source = source
        self._byteorder = byteorder
        self._storages = {}

    def find_class(self, module, name):
        source = self._source
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda *args: _rebuild_tensor(source, *args)
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda *args: _rebuild_parameter(source, *args)
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(module, name, source, STORAGE_DTYPES[name])
        if (module, name) in OPTIMIZER_REFERENCES:
            return GlobalReference(module, name, source)
        _refuse(source, f"the global {module}.{name}")

    def persistent_load(self, pid):
        source = self._source
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int)):
            _refuse(source, f"the persistent id {pid!r:.80} (not a tensor storage)")
        _, kind, key, _location, numel = pid
        cached = self._storages.get(key)
        if cached is not None:
            return cached
        record = f"{self._folder}/{torchfile.STORAGE_FOLDER}/{key}"
        try:
            raw = self._archive.read(record)
        except KeyError:
            raise ZooImportError(f"{source}: storage record {record!r} is missing; the file is "
                                 f"truncated or corrupt.") from None
        dtype = kind.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        if len(raw) != numel * dtype.itemsize:
            raise ZooImportError(f"{source}: storage {key} holds {len(raw)} bytes; {numel} "
                                 f"{kind.name} elements need {numel * dtype.itemsize}.")
        storage = _Storage(key, np.frombuffer(raw, dtype=dtype))
        self._storages[key] = storage
        return storage


def _pickle_record(archive, source):
    names = [n for n in archive.namelist()
             if n.count("/") == 1 and n.endswith("/" + torchfile.PICKLE_RECORD)]
    if len(names) != 1:
        raise ZooImportError(f"{source}: a PyTorch checkpoint archive has one "
                             f"<folder>/{torchfile.PICKLE_RECORD}; found {len(names)}.")
    return names[0].split("/")[0]


def read_checkpoint(path):
    """Read a PyTorch checkpoint into plain Python objects and NumPy arrays, running nothing.

    Args:
        path: a `.pth.tar` / `.pth` file written by `torch.save` (PyTorch >= 1.6 format).

    Returns:
        The saved object (for ai8x-training checkpoints a dict with `arch`, `epoch`,
        `state_dict`, ...): tensors as NumPy arrays (copies, native byte order), ordered dicts
        as `collections.OrderedDict`, the optimizer class as a `GlobalReference`.

    Raises:
        UnsafeCheckpointError: the pickle names a global outside the allow-list, or tries to
            call one that is only referenced; nothing was executed.
        ZooImportError: the file is missing, not a checkpoint, in the legacy format, or corrupt.

    Example:

    >>> ckpt = read_checkpoint("trained/ai85-mnist-qat8-q.pth.tar")  # doctest: +SKIP
    >>> ckpt["state_dict"]["conv1.op.weight"].shape  # doctest: +SKIP
    (60, 1, 3, 3)
    """
    path = Path(path)
    source = str(path)
    try:
        head = path.read_bytes()[:4]
    except OSError as err:
        raise ZooImportError(f"{source}: cannot read the checkpoint: {err}.") from err
    if not zipfile.is_zipfile(path):
        if head[:1] == b"\x80" or head[:2] == b"PK":
            raise ZooImportError(
                f"{source}: not a PyTorch >= 1.6 zip checkpoint (a legacy pickle file or a "
                f"damaged archive). Re-save it with a current torch.save, which writes the zip "
                f"format.")
        raise ZooImportError(f"{source}: not a PyTorch checkpoint (no zip archive).")
    try:
        with zipfile.ZipFile(path) as archive:
            folder = _pickle_record(archive, source)
            data = archive.read(f"{folder}/{torchfile.PICKLE_RECORD}")
            names = set(archive.namelist())
            byteorder = "little"
            if f"{folder}/byteorder" in names:
                byteorder = archive.read(f"{folder}/byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise ZooImportError(f"{source}: unknown byte order {byteorder!r}.")
            return _Unpickler(data, archive, folder, source, byteorder).load()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, pickle.UnpicklingError,
            ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        if isinstance(err, ZooImportError):
            raise
        raise ZooImportError(f"{source}: the checkpoint is corrupt ({type(err).__name__}: "
                             f"{err}).") from err
