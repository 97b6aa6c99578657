"""Writers of small datasets in their real on-disk formats (IDX, CIFAR pickles, WAV, image folders).

Plain functions called with arguments (and by `conftest.notebook_parameters`), not fixtures.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import wave
from pathlib import Path

import numpy as np


def write_idx_gz(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as a gzip-compressed IDX file."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.tobytes()))
    return path


def _pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(root: Path, *, rows: dict[str, int], n_test: int = 20) -> Path:
    """Write `batches.meta`, `test_batch` and the given `data_batch_k` files with `rows[name]` rows."""
    _pickle(root / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                    b"num_cases_per_batch": 10000, b"num_vis": 3072})
    for i, (name, n) in enumerate({**rows, "test_batch": n_test}.items()):
        _pickle(root / name, {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in np.arange(n) % 10],
            b"data": cifar_rows(n, i),
            b"filenames": [f"{name}_{j}.png".encode() for j in range(n)],
        })
    return root


def write_cifar100(root: Path, *, n_train: int = 50, n_test: int = 20) -> Path:
    """Write a tiny `cifar-100-python` folder: `train`, `test`, `meta` (fine + coarse labels)."""
    _pickle(root / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    for seed, (name, n) in enumerate((("train", n_train), ("test", n_test))):
        fine = (np.arange(n) * 7) % 100
        _pickle(root / name, {
            b"batch_label": name.encode(),
            b"fine_labels": [int(v) for v in fine],
            b"coarse_labels": [int(v) // 5 for v in fine],
            b"data": cifar_rows(n, 10 + seed),
            b"filenames": [f"{name}_{j}.png".encode() for j in range(n)],
        })
    return root


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Write int16 mono PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def tone(seed: int, n: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    return (8000 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)).astype(np.int16)


def write_speech_commands(root: Path, *, words=("up", "down", "bed"), speakers=8, lists=True) -> Path:
    """Write a Speech Commands v0.02-like tree with list files and `_background_noise_`."""
    k = 0
    for word in words:
        for s in range(speakers):
            write_wav(root / word / f"{s:04x}beef_nohash_0.wav", tone(k))
            k += 1
    write_wav(root / "_background_noise_" / "white_noise.wav", tone(999, 48000))
    if lists:
        (root / "validation_list.txt").write_text("".join(f"{w}/0000beef_nohash_0.wav\n" for w in words))
        (root / "testing_list.txt").write_text("".join(f"{w}/0001beef_nohash_0.wav\n" for w in words))
    return root


def write_images(root: Path, classes, per_class: int, *, size=(40, 30), mode="RGB", fmt="PNG") -> Path:
    """Write `root/<class>/<i>.png` images (deterministic content)."""
    from PIL import Image

    rng = np.random.default_rng(len(classes) * 100 + per_class)
    ext = {"PNG": "png", "JPEG": "jpg"}[fmt]
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            channels = 4 if mode == "RGBA" else 3
            arr = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / cls / f"{cls}{i:02d}.{ext}", fmt)
    return root


def write_rps(data_dir: Path, *, train_per_class=10, test_per_class=4) -> Path:
    """Write `rps/` and `rps-test-set/` as the official zips extract (RGBA PNGs)."""
    classes = ("rock", "paper", "scissors")
    write_images(data_dir / "rps", classes, train_per_class, mode="RGBA")
    write_images(data_dir / "rps-test-set", classes, test_per_class, mode="RGB", size=(300, 300))
    return data_dir
