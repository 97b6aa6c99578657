"""Tests of ai8x_nb.datasets on images: MNIST/Fashion (real files), CIFAR, RPS, folders, errors, samples."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from dataset_files import (
    write_cifar10,
    write_cifar100,
    write_idx_gz,
    write_images,
    write_rps,
)

from ai8x_nb.datasets import (
    DATASETS,
    Dataset,
    Split,
    image_folder,
    load,
    resolve_data_dir,
    save_sample,
    save_samples_per_class,
    to_float,
)
from ai8x_nb.datasets import _files, cifar, idx
from ai8x_nb.errors import Ai8xNbError, DatasetError

IDX_NAMES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(scope="module")
def mnist(mnist_data) -> Dataset:
    return load("mnist", mnist_data)


def _mirror(src: Path, dst: Path, skip=()) -> Path:
    """Symlink every file of `src` into `dst` except `skip` (real data stays in place)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name not in skip:
            (dst / f.name).symlink_to(f)
    return dst


# ---------------------------------------------------------------- registry, encoding


def test_registry_and_error_type():
    assert set(DATASETS) == {"mnist", "fashionmnist", "cifar10", "cifar100", "kws20", "rock"}
    assert DATASETS["fashionmnist"].folder == "fashion-mnist"
    assert DATASETS["kws20"].folder == "speech_commands_v0.02"
    with pytest.raises(TypeError):
        DATASETS["x"] = DATASETS["mnist"]  # read-only mapping
    assert issubclass(DatasetError, Ai8xNbError) and issubclass(DatasetError, ValueError)
    with pytest.raises(DatasetError, match="Unknown dataset 'imagenet'"):
        load("imagenet")


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("AI8X_NB_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("AI8X_NB_DATA")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir() == tmp_path / "data"


def test_to_float_range():
    x = np.array([-128, 0, 127], dtype=np.int8)
    f = to_float(x)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, [-1.0, 0.0, 127 / 128])


def test_split_validates_dtypes():
    with pytest.raises(DatasetError, match="x must be int8"):
        Split("train", np.zeros((2, 3), np.float32), np.zeros(2, np.int64))
    with pytest.raises(DatasetError, match="y must be int64"):
        Split("train", np.zeros((2, 3), np.int8), np.zeros(3, np.int64))


# ---------------------------------------------------------------- MNIST / Fashion (real files)


def test_mnist_real(mnist, mnist_data):
    ds = mnist
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (54000, 6000, 10000)
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.class_names == [str(i) for i in range(10)]
    for s in ds.splits:
        assert s.x.dtype == np.int8 and s.y.dtype == np.int64
        assert s.x.min() == -128 and s.x.max() == 127
        assert set(np.unique(s.y)) == set(range(10))
    # train and valid partition the official training set; test is the official test set
    assert len(np.intersect1d(ds.train.index, ds.valid.index)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.train.index, ds.valid.index])), np.arange(60000))
    raw_train = idx.read_idx(mnist_data / "mnist" / IDX_NAMES[0])
    raw_test = idx.read_idx(mnist_data / "mnist" / IDX_NAMES[2])
    np.testing.assert_array_equal(ds.valid.x[..., 0], raw_train[ds.valid.index].astype(np.int16) - 128)
    np.testing.assert_array_equal(ds.test.x[..., 0], raw_test.astype(np.int16) - 128)
    # no image of valid is in test (valid is not the test set)
    test_rows = {r.tobytes() for r in ds.test.x[:2000]}
    assert not any(r.tobytes() in test_rows for r in ds.valid.x[:2000])
    assert ds.test.y[:5].tolist() == [7, 2, 1, 0, 4]


def test_fashionmnist_real(mnist_data):
    ds = load("fashionmnist", mnist_data, limit=500)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (500, 500, 500)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.train.x.dtype == np.int8 and ds.input_shape == (28, 28, 1)


def test_split_is_seeded(mnist, mnist_data):
    again = load("mnist", mnist_data, limit=100)
    np.testing.assert_array_equal(again.train.index, mnist.train.index[:100])
    np.testing.assert_array_equal(again.train.x, mnist.train.x[:100])
    other = load("mnist", mnist_data, seed=7, limit=100)
    assert not np.array_equal(other.valid.index, again.valid.index)


def test_limit_validated(mnist_data):
    with pytest.raises(DatasetError, match="limit must be a positive int"):
        load("mnist", mnist_data, limit=0)


# ---------------------------------------------------------------- missing / corrupt files


def test_missing_offline_names_file_url_and_env(tmp_path):
    with pytest.raises(DatasetError) as err:
        load("mnist", tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz" in msg
    assert "AI8X_NB_DATA" in msg and "data_dir=" in msg


def test_unreachable_download_names_file_url_and_env(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(_files.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError, match=r"fashion-mnist/train-images-idx3-ubyte\.gz.*failed.*AI8X_NB_DATA"):
        load("fashionmnist", tmp_path)
    assert not list((tmp_path / "fashion-mnist").glob("*"))  # nothing partial left behind


def test_download_file_url_with_md5(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello" * 1000)
    md5 = _files.file_digest(src)
    dest = _files.download(src.as_uri(), tmp_path / "out" / "a.bin", md5=md5, progress=False)
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(DatasetError, match=r"b\.bin but its md5 is .* expected 0+"):
        _files.download(src.as_uri(), tmp_path / "out" / "b.bin", md5="0" * 32, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin"]
    with pytest.raises(DatasetError, match=r"c\.bin.*127\.0\.0\.1:9.*AI8X_NB_DATA"):
        _files.download("http://127.0.0.1:9/c.bin", tmp_path / "out" / "c.bin", timeout=2, progress=False)


def test_truncated_gz_is_named(tmp_path, mnist_data):
    root = _mirror(mnist_data / "mnist", tmp_path / "mnist", skip={"t10k-labels-idx1-ubyte.gz"})
    real = (mnist_data / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(real[:2000])
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz is truncated or corrupt \(2000 bytes, expected 4542\): md5"):
        load("mnist", tmp_path, download=False)
    # structure check alone (allow_partial skips the md5 verdict) still names it
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz is truncated or not a valid gzip"):
        idx.read_idx(root / "t10k-labels-idx1-ubyte.gz")


def test_bad_md5_is_named_and_allow_partial_checks_structure(tmp_path, mnist_data, caplog):
    root = _mirror(mnist_data / "mnist", tmp_path / "mnist", skip={"t10k-labels-idx1-ubyte.gz"})
    labels = idx.read_idx(mnist_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    write_idx_gz(root / "t10k-labels-idx1-ubyte.gz", labels)  # same content, other gzip bytes
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz is truncated or corrupt .*md5 .* expected ec29112d"):
        load("mnist", tmp_path, download=False)
    with caplog.at_level(logging.WARNING):
        ds = load("mnist", tmp_path, allow_partial=True, limit=10)
    assert "t10k-labels-idx1-ubyte.gz" in caplog.text
    assert ds.test.y.tolist()[:5] == [7, 2, 1, 0, 4]


def test_idx_structure_errors(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + b"\x01" * 5))
    with pytest.raises(DatasetError, match=r"x\.gz is truncated or corrupt: header declares shape \(9,\)"):
        idx.read_idx(p)
    p.write_bytes(gzip.compress(b"\x12\x34\x56\x78"))
    with pytest.raises(DatasetError, match="bad magic number 12345678"):
        idx.read_idx(p)
    write_idx_gz(p, np.zeros((3, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"magic number 00000802 declares 2 dimensions, "
                                           r"expected 1\. Delete it"):
        idx.read_idx(p, (3,))
    with pytest.raises(DatasetError, match=r"has shape \(3, 2\), expected \(3, 4\)"):
        idx.read_idx(p, (3, 4))


# ---------------------------------------------------------------- CIFAR


def test_cifar10_subset_partial(mnist_data, caplog):
    with caplog.at_level(logging.WARNING):
        ds = load("cifar10", mnist_data, allow_partial=True)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (3600, 400, 1000)
    assert ds.input_shape == (32, 32, 3) and ds.class_names[0] == "airplane" and ds.num_classes == 10
    assert "data_batch_2" in caplog.text and "data_batch_1 has 4000 rows" in caplog.text
    assert ds.test.y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.train.index, ds.valid.index])), np.arange(4000))
    first = ds.train.y[np.argsort(ds.train.index)][:3]
    assert first.tolist() == [6, 9, 9]


def test_cifar10_subset_strict_rejects(mnist_data):
    with pytest.raises(DatasetError, match=r"cifar-10-batches-py/data_batch_2.*AI8X_NB_DATA"):
        load("cifar10", mnist_data, download=False)


def test_cifar10_strict_names_short_batch(tmp_path, mnist_data):
    root = _mirror(mnist_data / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    write_cifar10(tmp_path / "extra", rows={f"data_batch_{i}": 10 for i in range(2, 6)})
    for i in range(2, 6):
        (root / f"data_batch_{i}").symlink_to(tmp_path / "extra" / f"data_batch_{i}")
    with pytest.raises(DatasetError, match=r"data_batch_1 is truncated or corrupt: 4000 rows, expected 10000"):
        load("cifar10", tmp_path)


def test_cifar_bad_pickles(tmp_path):
    write_cifar10(tmp_path / "c", rows={"data_batch_1": 30})
    raw = (tmp_path / "c" / "data_batch_1").read_bytes()
    (tmp_path / "c" / "data_batch_1").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"data_batch_1 is truncated or corrupt: cannot unpickle"):
        load("cifar10", tmp_path, folder="c", allow_partial=True)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "c" / "data_batch_1").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DatasetError, match=r"builtins\.print is not allowed"):
        load("cifar10", tmp_path, folder="c", allow_partial=True)


def test_cifar100_fixture(tmp_path):
    write_cifar100(tmp_path / "cifar-100-python", n_train=50, n_test=20)
    ds = load("cifar100", tmp_path, allow_partial=True)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (45, 5, 20)
    assert ds.num_classes == 100 and ds.class_names[3] == "fine3"
    assert ds.input_shape == (32, 32, 3)
    assert ds.test.y.tolist()[:4] == [0, 7, 14, 21]  # fine labels, not coarse
    # channel planes: row = 1024 R, 1024 G, 1024 B
    raw = cifar.read_pickle(tmp_path / "cifar-100-python" / "test")[b"data"]
    assert ds.test.x[0, 0, 1, 0] == raw[0, 1].astype(np.int16) - 128
    assert ds.test.x[0, 0, 0, 2] == raw[0, 2048].astype(np.int16) - 128
    with pytest.raises(DatasetError, match=r"cifar-100-python/train is truncated or corrupt: 50 rows, expected 50000"):
        load("cifar100", tmp_path, download=False)
    # the same code in strict mode when the fixture holds the declared row counts
    small = dataclasses.replace(cifar.CIFAR100, train_files=(("train", 50),), test_file=("test", 20))
    strict = cifar.load_cifar(small, tmp_path / "cifar-100-python", name="cifar100", download=False)
    np.testing.assert_array_equal(strict.test.x, ds.test.x)


def test_cifar100_missing_offline(tmp_path):
    with pytest.raises(DatasetError, match=r"cifar-100-python/train.*cifar-100-python\.tar\.gz.*AI8X_NB_DATA"):
        load("cifar100", tmp_path, download=False)


# ---------------------------------------------------------------- RPS and image folders


def test_rock_fixture(tmp_path):
    write_rps(tmp_path, train_per_class=10, test_per_class=4)
    ds = load("rock", tmp_path)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (27, 3, 12)
    assert ds.input_shape == (64, 64, 3) and ds.class_names == ["rock", "paper", "scissors"]
    assert sorted(np.bincount(ds.test.y).tolist()) == [4, 4, 4]
    assert ds.train.x.dtype == np.int8
    write_images(tmp_path / "mine", ["rock", "paper", "scissors"], 2)
    with pytest.raises(DatasetError, match=r"mine-test-set.*rps-test-set\.zip.*AI8X_NB_DATA"):
        load("rock", tmp_path, folder="mine", download=False)
    with pytest.raises(DatasetError, match=r"empty/rps\. Download from .*rps\.zip"):
        load("rock", tmp_path / "empty", download=False)


def test_image_folder(tmp_path):
    write_images(tmp_path / "shapes", ["b_circle", "a_square"], 10)
    write_images(tmp_path / "shapes", ["c_tri"], 10, fmt="JPEG")
    ds = image_folder(tmp_path / "shapes", image_size=(16, 24))
    assert ds.name == "shapes" and ds.class_names == ["a_square", "b_circle", "c_tri"]
    assert ds.input_shape == (16, 24, 3)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (24, 3, 3)
    assert np.bincount(ds.test.y).tolist() == [1, 1, 1]  # stratified
    all_idx = np.concatenate([s.index for s in ds.splits])
    assert sorted(all_idx.tolist()) == list(range(30))
    again = image_folder(tmp_path / "shapes", image_size=(16, 24))
    np.testing.assert_array_equal(again.test.index, ds.test.index)
    np.testing.assert_array_equal(again.train.x, ds.train.x)
    with pytest.raises(DatasetError, match="valid_fraction must be in"):
        image_folder(tmp_path / "shapes", valid_fraction=1.5)
    with pytest.raises(DatasetError, match="is not a folder"):
        image_folder(tmp_path / "nope")


# ---------------------------------------------------------------- samples


def test_save_sample_mnist(mnist, tmp_path):
    arr = save_sample(mnist, 0, tmp_path / "s.npy")
    loaded = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert loaded.dtype == np.int64 and loaded.shape == (1, 28, 28)
    np.testing.assert_array_equal(loaded, arr)
    np.testing.assert_array_equal(loaded[0], mnist.test.x[0, :, :, 0])
    assert loaded.min() >= -128 and loaded.max() <= 127
    hwc = save_sample(mnist.valid, 3, tmp_path / "hwc.npy", channel_first=False)
    assert hwc.shape == (28, 28, 1)
    swapped = save_sample(mnist.test, 0, tmp_path / "sw.npy", swap=True)
    np.testing.assert_array_equal(swapped[0], mnist.test.x[0, :, :, 0].T)
    with pytest.raises(DatasetError, match=r"index must be in \[0, 10000\)"):
        save_sample(mnist, 10000, tmp_path / "x.npy")
    assert not list(tmp_path.glob(".*"))  # atomic write leaves no temp files


def test_save_sample_cifar_and_per_class(tmp_path):
    write_cifar100(tmp_path / "cifar-100-python", n_train=10, n_test=20)
    ds = load("cifar100", tmp_path, allow_partial=True)
    arr = save_sample(ds.test, 0, tmp_path / "c.npy")
    assert arr.shape == (3, 32, 32) and arr.dtype == np.int64
    np.testing.assert_array_equal(arr, np.transpose(ds.test.x[0], (2, 0, 1)))
    paths = save_samples_per_class(ds.test, tmp_path / "per")
    assert len(paths) == len(np.unique(ds.test.y)) and paths[0].name == "sample_0.npy"
    named = save_samples_per_class(ds, tmp_path / "named")
    assert [p.name for p in named[:3]] == ["sample_fine0.npy", "sample_fine5.npy", "sample_fine7.npy"]
    assert np.load(named[1], allow_pickle=False).shape == (3, 32, 32)


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "a.npz"
    _files.atomic_save_npz(target, x=np.arange(3))
    with np.load(target) as z:
        np.testing.assert_array_equal(z["x"], np.arange(3))

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _files.atomic_save_npz(target, x=np.arange(5))
    with np.load(target) as z:  # old content intact, no temp file left
        np.testing.assert_array_equal(z["x"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


# ---------------------------------------------------------------- tf.data


def test_make_tf_dataset(mnist):
    from ai8x_nb.datasets import make_tf_dataset

    split = mnist.test.head(100)
    data = make_tf_dataset(split, 32)
    batches = list(data.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [32, 32, 32, 4]
    x, y = batches[0]
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (32, 28, 28, 1)
    assert x.min() >= -1.0 and x.max() <= 127 / 128
    np.testing.assert_array_equal(x, to_float(split.x[:32]))
    shuffled = make_tf_dataset(split, 100, shuffle=True, seed=1)
    xs, ys = next(iter(shuffled.as_numpy_iterator()))
    assert sorted(ys.tolist()) == sorted(split.y.tolist()) and not np.array_equal(ys, split.y)
    assert len(list(make_tf_dataset(split, 50, repeat=True).take(5))) == 5
    with pytest.raises(DatasetError, match="batch_size must be a positive int"):
        make_tf_dataset(split, 0)


# ---------------------------------------------------------------- download + extract (file:// URLs, no network)


def test_cifar_download_md5_and_extract(tmp_path):
    import tarfile

    src = write_cifar10(tmp_path / "build" / "cifar-10-batches-py", rows={f"data_batch_{i}": 10 for i in range(1, 6)})
    archive = tmp_path / "build" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="cifar-10-batches-py")
    spec = dataclasses.replace(
        cifar.CIFAR10,
        url=archive.as_uri(),
        archive_md5=_files.file_digest(archive),
        train_files=tuple((f"data_batch_{i}", 10) for i in range(1, 6)),
        test_file=("test_batch", 20),
    )
    data = tmp_path / "data"
    ds = cifar.load_cifar(spec, data / "mycifar", name="cifar10")  # folder name differs from the archive's
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (45, 5, 20)
    assert (data / "cifar-10-python.tar.gz").is_file() and (data / "mycifar" / "data_batch_5").is_file()
    bad = dataclasses.replace(spec, archive_md5="0" * 32)
    with pytest.raises(DatasetError, match=r"cifar-10-python\.tar\.gz is corrupt: md5"):
        cifar.load_cifar(bad, data / "other", name="cifar10")


def test_rock_download_zip_and_extract(tmp_path, monkeypatch):
    import types
    import zipfile

    from ai8x_nb.datasets import rock

    build = write_rps(tmp_path / "build", train_per_class=4, test_per_class=2)
    urls = {}
    for which, top in (("train", "rps"), ("test", "rps-test-set")):
        archive = build / f"{top}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for f in sorted((build / top).rglob("*.png")):
                zf.write(f, f.relative_to(build).as_posix())
            zf.writestr(f"__MACOSX/{top}/._junk", b"x")
        urls[which] = archive.as_uri()
    monkeypatch.setattr(rock, "RPS_URLS", types.MappingProxyType(urls))
    ds = load("rock", tmp_path / "data")
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (11, 1, 6)
    assert not (tmp_path / "data" / "rps" / "__MACOSX").exists()
    assert sorted(p.name for p in (tmp_path / "data" / "rps").iterdir()) == ["paper", "rock", "scissors"]


def test_extract_refuses_path_traversal(tmp_path):
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/ok.txt", b"ok")
        zf.writestr("../evil.txt", b"bad")
    with pytest.raises(DatasetError, match="outside"):
        _files.extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_failed_download_leaves_no_empty_folders(tmp_path):
    target = tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz.*--data-dir"):
        _files.download((tmp_path / "nowhere.gz").as_uri(), target, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither data/ nor data/mnist/ was left behind
