"""Keyword spotting: Google Speech Commands (kws20) and folders of WAV clips.

Layout read: `<root>/<word>/<file>.wav` (16 kHz, 16-bit PCM; the first channel
is used), with optional `validation_list.txt` / `testing_list.txt` holding
`<word>/<file>.wav` lines as in Speech Commands v0.02. `_background_noise_`
and any folder starting with `_` or `.` are ignored.

Each clip becomes one `(128, 128)` int8 sample: its first 16,384 samples (zero
padded) as 128 rows of 128 consecutive samples (row = time chunk = Conv1D step,
column = Conv1D channel). Encoding: an int16 sample `s` becomes
`round(s / 256)` clipped to [-128, 127]; no normalisation unless asked.

Split: the list files when present; otherwise by speaker (the file name before
`_nohash_`, or the whole stem): speakers are ranked by the sha1 of their name,
the first `valid_fraction` of them go to valid, the next `test_fraction` to
test, the rest to train. The split is therefore identical on every machine and
every run, and no speaker is in two splits. Each split is then put in a seeded
random order, so `limit=` keeps a mix of classes.

Augmentation (train split only, `augment=True`): `AUG_COPIES` extra copies of
each training clip with a random time stretch (0.8..1.3, linear resampling via
`np.interp`), shift (+-0.1 s) and white noise, vectorised and seeded.

The processed arrays are cached as `<cache>/kws/<name>_<key>.npz`, written
atomically, where `<cache>` is `cache_dir=`, else `$XDG_CACHE_HOME/ai8x-nb`, else
`~/.cache/ai8x-nb`: never inside the data folder, which stays as it was shipped.
The key hashes the folder's path, the settings and the file list (names, sizes,
mtimes), so a changed folder is processed again. A cache folder that cannot be
written is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import wave
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ai8x_nb.datasets import _files
from ai8x_nb.datasets.base import Dataset, audio_to_int8, check_fractions, make_dataset
from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)

KWS20_KEYWORDS = (
    "up", "down", "left", "right", "stop", "go", "yes", "no", "on", "off",
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero",
)  # fmt: skip
KWS20_CLASS_NAMES = KWS20_KEYWORDS + ("unknown",)
SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"

SAMPLE_RATE = 16000
CLIP_SAMPLES = 128 * 128
AUG_COPIES = 2
AUG_STRETCH = (0.8, 1.3)
AUG_SHIFT_S = 0.1
AUG_NOISE_STD = (0.0, 0.02)  # fraction of int16 full scale
_CACHE_VERSION = 1
_CHUNK = 512


def read_wav(path: Path) -> np.ndarray:
    """Read a 16 kHz 16-bit PCM WAV and return its first channel as int16.

    Raises:
        DatasetError: unreadable file, other sample rate or sample width.
    """
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise DatasetError(f"{path} is not a readable PCM WAV file ({type(exc).__name__}: {exc}).") from exc
    if rate != SAMPLE_RATE or width != 2:
        raise DatasetError(
            f"{path}: {rate} Hz, {8 * width}-bit; expected {SAMPLE_RATE} Hz 16-bit PCM. "
            f"Convert it, e.g. `sox in.wav -r 16000 -b 16 out.wav`."
        )
    data = np.frombuffer(frames, dtype="<i2")
    return data[: len(data) - len(data) % channels : channels] if channels > 1 else data


def speaker_of(file_name: str) -> str:
    """Return the speaker part of a Speech Commands file name (`<speaker>_nohash_<n>.wav`)."""
    stem = Path(file_name).name
    return re.sub(r"_nohash_.*$", "", stem.rsplit(".", 1)[0])


def scan_folder(root: Path) -> list[tuple[str, str]]:
    """Return sorted `(relative path, word)` pairs for every `<word>/*.wav` under `root`."""
    items = []
    for word_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        if word_dir.name.startswith(("_", ".")) or word_dir.name == "processed":
            continue
        items.extend(
            (f"{word_dir.name}/{f.name}", word_dir.name)
            for f in sorted(word_dir.iterdir())
            if f.suffix.lower() == ".wav" and f.is_file()
        )
    return items


def assign_splits(
    root: Path, rel_paths: Sequence[str], *, valid_fraction: float, test_fraction: float
) -> np.ndarray:
    """Return, per file, 0 (train), 1 (valid) or 2 (test).

    Uses `validation_list.txt` / `testing_list.txt` when either exists,
    otherwise the speaker-hash ranking described in the module docstring.
    """
    root = Path(root)
    lists = [root / "validation_list.txt", root / "testing_list.txt"]
    if any(p.is_file() for p in lists):
        which = np.zeros(len(rel_paths), dtype=np.int8)
        pos = {p: i for i, p in enumerate(rel_paths)}
        for code, path in ((1, lists[0]), (2, lists[1])):
            if path.is_file():
                for line in path.read_text().split():
                    if line in pos:
                        which[pos[line]] = code
        return which
    speakers = [speaker_of(p) for p in rel_paths]
    ranked = sorted(set(speakers), key=lambda s: (hashlib.sha1(s.encode()).hexdigest(), s))
    n = len(ranked)
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    if n >= 3:  # keep every requested split non-empty on small folders
        n_valid = max(n_valid, 1 if valid_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    code = {s: 1 for s in ranked[:n_valid]} | {s: 2 for s in ranked[n_valid : n_valid + n_test]}
    return np.array([code.get(s, 0) for s in speakers], dtype=np.int8)


def to_rows(raw: np.ndarray) -> np.ndarray:
    """Lay out `(n, 16384)` audio (int16 scale) as `(n, 128, 128)` int8."""
    return audio_to_int8(raw).reshape(len(raw), 128, 128)


def augment_batch(raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly stretch, shift and add noise to a batch of clips, vectorised.

    Args:
        raw: `(n, L)` float32 or int16 audio (int16 scale).
        rng: random generator (seeded by the caller).

    Returns:
        `(n, L)` float32 augmented audio, int16 scale (not clipped).
    """
    n, length = raw.shape
    rate = rng.uniform(*AUG_STRETCH, size=(n, 1))
    max_shift = int(AUG_SHIFT_S * SAMPLE_RATE)
    shift = rng.integers(-max_shift, max_shift + 1, size=(n, 1))
    noise_std = rng.uniform(*AUG_NOISE_STD, size=(n, 1)) * 32768.0
    # output[j] = input[j * rate - shift]; all clips resampled by one np.interp
    # over the concatenated signal, positions outside a clip become silence.
    pos = np.arange(length)[None, :] * rate - shift
    inside = (pos >= 0) & (pos <= length - 1)
    flat_pos = np.clip(pos, 0, length - 1) + (np.arange(n) * length)[:, None]
    out = np.interp(flat_pos.ravel(), np.arange(n * length), raw.astype(np.float32).ravel())
    out = out.reshape(n, length).astype(np.float32)
    out[~inside] = 0.0
    out += rng.standard_normal((n, length), dtype=np.float32) * noise_std.astype(np.float32)
    return out


def _read_clips(root: Path, rel_paths: Sequence[str], normalize: bool) -> np.ndarray:
    raw = np.zeros((len(rel_paths), CLIP_SAMPLES), dtype=np.float32)
    for i, rel in enumerate(rel_paths):
        clip = read_wav(root / rel)[:CLIP_SAMPLES]
        raw[i, : len(clip)] = clip
    if normalize:
        peak = np.abs(raw).max(axis=1, keepdims=True)
        raw *= np.where(peak > 0, 32767.0 / np.maximum(peak, 1.0), 1.0)
    return raw


def _cache_key(root: Path, items, settings: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for rel, _ in items:
        st = (root / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for name in ("validation_list.txt", "testing_list.txt"):
        p = root / name
        h.update(p.read_bytes() if p.is_file() else b"-")
    return h.hexdigest()[:16]


def _read_cache(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        # A corrupt cache is rebuilt (and rewritten) from the data, never a dead end.
        logger.warning("Ignoring unreadable cache %s (%s); processing again.", path, exc)
        return None


def load_audio_folder(
    root: Path,
    *,
    name: str,
    class_of: Callable[[str], int] | None = None,
    class_names: Sequence[str] | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    augment: bool = False,
    seed: int = 42,
    normalize: bool = False,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load a folder of keyword clips (see the module docstring for the layout and encoding).

    Args:
        root: folder with one sub-folder per word.
        name: dataset name (also the cache file prefix).
        class_of: maps a word (folder name) to its class index; default: the
            index of the word in `class_names`.
        class_names: class names; default: the sorted word folders.
        valid_fraction: share of speakers in valid (ignored with list files).
        test_fraction: share of speakers in test (ignored with list files).
        augment: add `AUG_COPIES` augmented copies of each train clip.
        seed: seed of the augmentation and of the order inside each split.
        normalize: peak-normalise each clip to full scale before encoding.
        cache: read/write the processed `.npz` cache.
        cache_dir: folder of the cache (default: `$XDG_CACHE_HOME/ai8x-nb`, else
            `~/.cache/ai8x-nb`); never the data folder.

    Returns:
        A `Dataset` of `(n, 128, 128)` int8 samples. `Split.index` holds each
        sample's position in the sorted file list (augmented copies carry their
        source clip's position).

    Raises:
        DatasetError: no clips, bad fractions, or an unreadable/invalid WAV.
    """
    root = Path(root)
    check_fractions(valid_fraction, test_fraction)
    items = scan_folder(root)
    if not items:
        raise DatasetError(f"{root} holds no <word>/*.wav clips.")
    if class_names is None:
        class_names = sorted({w for _, w in items})
    class_names = list(class_names)
    if class_of is None:
        lookup = {w: i for i, w in enumerate(class_names)}
        class_of = lookup.__getitem__
    rel_paths = [rel for rel, _ in items]
    labels = np.array([class_of(w) for _, w in items], dtype=np.int64)

    settings = {
        "version": _CACHE_VERSION, "name": name, "classes": class_names,
        "word_classes": sorted({(w, int(class_of(w))) for _, w in items}),
        "valid_fraction": valid_fraction, "test_fraction": test_fraction,
        "augment": augment, "seed": seed, "normalize": normalize,
        "aug": [AUG_COPIES, AUG_STRETCH, AUG_SHIFT_S, AUG_NOISE_STD],
    }  # fmt: skip
    settings["root"] = str(root.resolve())  # two folders of one name get two caches
    cache_path = _files.cache_dir(cache_dir) / "kws" / f"{name}_{_cache_key(root, items, settings)}.npz"
    arrays = _read_cache(cache_path) if cache and cache_path.is_file() else None
    if arrays is None:
        arrays = _process(root, rel_paths, labels, valid_fraction, test_fraction, augment, seed, normalize)
        if cache and not _files.is_writable_dir(cache_path.parent):
            logger.info("Not caching %s: %s is read-only.", name, cache_path.parent)
        elif cache:
            try:
                _files.atomic_save_npz(cache_path, **arrays)
                logger.info("Cached %s to %s", name, cache_path)
            except OSError as exc:
                logger.info("Not caching %s: cannot write %s (%s).", name, cache_path, exc)
    else:
        logger.info("Loaded %s from cache %s", name, cache_path)
    return make_dataset(
        name,
        class_names,
        *[(arrays[f"x_{s}"], arrays[f"y_{s}"], arrays[f"i_{s}"]) for s in ("train", "valid", "test")],
    )


def _process(root, rel_paths, labels, valid_fraction, test_fraction, augment, seed, normalize) -> dict:
    which = assign_splits(root, rel_paths, valid_fraction=valid_fraction, test_fraction=test_fraction)
    rng = np.random.default_rng(seed)
    arrays = {}
    for code, split in enumerate(("train", "valid", "test")):
        idx = np.flatnonzero(which == code)
        xs, ids = [], []
        for start in range(0, len(idx), _CHUNK):
            chunk = idx[start : start + _CHUNK]
            raw = _read_clips(root, [rel_paths[i] for i in chunk], normalize)
            xs.append(to_rows(raw))
            ids.append(chunk)
            if augment and split == "train":
                for _ in range(AUG_COPIES):
                    xs.append(to_rows(augment_batch(raw, rng)))
                    ids.append(chunk)
        x = np.concatenate(xs) if xs else np.zeros((0, 128, 128), np.int8)
        index = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
        order = rng.permutation(len(index))
        arrays[f"x_{split}"], arrays[f"i_{split}"] = x[order], index[order]
        arrays[f"y_{split}"] = labels[index[order]]
    return arrays


def load_kws20(
    root: Path,
    *,
    name: str = "kws20",
    download: bool = True,
    seed: int = 42,
    augment: bool = True,
    allow_partial: bool = False,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load kws20: 20 keywords (classes 0..19) and every other word as 20 "unknown".

    Args:
        root: Speech Commands folder (`speech_commands_v0.02`), or any folder
            in its layout (e.g. synthetic clips).
        name: dataset name.
        download: fetch and extract the official archive when `root` holds no
            clips (no published checksum: checked for structure only).
        seed: augmentation and split-order seed.
        augment: add augmented copies of the train clips.
        allow_partial: unused (a folder of clips is taken as it is).
        cache_dir: folder of the processed-data cache (see the module docstring).

    Returns:
        A `Dataset` with 21 classes, samples `(128, 128)` int8, 80/10/10 split.

    Raises:
        DatasetError: no clips and no download, or a bad WAV.
    """
    del allow_partial
    root = Path(root)
    if not root.is_dir() or not scan_folder(root):
        if not download:
            raise _files.missing_error([root], SPEECH_COMMANDS_URL)
        archive = root.parent / "speech_commands_v0.02.tar.gz"
        if not archive.is_file():
            _files.download(SPEECH_COMMANDS_URL, archive)
        _files.extract(archive, root, strip_top=True)
    keyword_index = {w: i for i, w in enumerate(KWS20_KEYWORDS)}
    return load_audio_folder(
        root,
        name=name,
        class_of=lambda w: keyword_index.get(w, len(KWS20_KEYWORDS)),
        class_names=KWS20_CLASS_NAMES,
        valid_fraction=0.1,
        test_fraction=0.1,
        augment=augment,
        seed=seed,
        cache_dir=cache_dir,
    )


def audio_folder(
    path: str | Path,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    augment: bool = False,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load a folder of 16 kHz keyword WAVs laid out like Speech Commands.

    `path/<word>/*.wav`; classes are the sorted word folders (no "unknown"
    class). Samples, encoding, split and cache are as described in this
    module's docstring (list files win over the fractions).

    Args:
        path: the folder.
        valid_fraction: share of speakers in valid.
        test_fraction: share of speakers in test.
        augment: add augmented copies of the train clips (seed 42).
        cache_dir: folder of the processed-data cache (see the module docstring).

    Returns:
        A `Dataset` of `(n, 128, 128)` int8 samples, named after the folder.

    Raises:
        DatasetError: not a folder, no clips, bad fractions or a bad WAV.

    Example:
        >>> ds = audio_folder("my_words")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} is not a folder: expected one sub-folder of WAV clips per class.")
    return load_audio_folder(
        path,
        name=path.name,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        augment=augment,
        cache_dir=cache_dir,
    )
