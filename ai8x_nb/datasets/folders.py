"""Your own data: a folder of class sub-folders holding images or keyword recordings.

Layout: `<folder>/<class>/<file>`, one sub-folder per class (hidden and `_`-prefixed
sub-folders are ignored); the classes are the sorted sub-folder names.

- kind "images": PNG, JPEG, BMP or GIF files, converted to RGB, resized bilinearly to
  `image_size` (H, W) and encoded `int8 = uint8 - 128`, giving `(n, H, W, 3)` samples.
- kind "audio": WAV files (8/16/24/32-bit PCM), laid out as the kws20 samples: the first
  16,384 samples at 16 kHz as `(128, 128)` int8. Clips at another rate are RESAMPLED to
  16 kHz (linear interpolation) and clips with several channels are MIXED to mono; both are
  logged with their count, nothing is refused for its rate or channels.

Files that cannot be used (another suffix, or an image/WAV that does not read) are SKIPPED,
never silently: `scan_folder` returns them and the loader logs a warning naming them with
their count. Folders that cannot be trained on STOP with a `DatasetError` naming the folder,
the value, the limit and the fix: no class sub-folders, one class only, a class with no
usable file, fewer samples in a class than the train/valid/test split needs.

The split is stratified and deterministic: within each class a permutation seeded by
`seed` picks `max(1, round(n * test_fraction))` test and as many valid samples (fraction
`valid_fraction`), the rest train; each split is then put in a seeded random order. Audio
clips named as in Speech Commands (`<speaker>_nohash_<n>.wav`) keep each speaker's clips of a
word in one split (test and valid grow to whole speakers); other names split clip by clip.

`folder_hash` is the sha256 of the used files' relative paths and bytes: a run records it
(with the folder) in its config.json, so `RunDir.load_dataset` notices when the folder
changed since training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import wave
from pathlib import Path

import numpy as np

from ai8x_nb.datasets.base import check_fractions, make_dataset, pixels_to_int8
from ai8x_nb.datasets.kws import CLIP_SAMPLES, SAMPLE_RATE, speaker_of, to_rows
from ai8x_nb.errors import DatasetError

logger = logging.getLogger(__name__)

FOLDER_DATASETS = {"images": "images", "keywords": "audio"}
"""Dataset name -> kind of the folder datasets (`datasets.load("images", data_folder=...)`)."""

KINDS = ("images", "audio")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
AUDIO_SUFFIXES = (".wav",)
DEFAULT_IMAGE_SIZE = (64, 64)
CHANGED_ACTIONS = ("refuse", "warn")


@dataclasses.dataclass(frozen=True)
class FolderScan:
    """The usable files of a data folder, by class.

    Attributes:
        root: the folder (absolute).
        kind: "images" or "audio".
        class_names: sorted class sub-folder names.
        files: per class, its usable files (sorted).
        skipped: `(file, reason)` of every file not used.
    """

    root: Path
    kind: str
    class_names: list
    files: list
    skipped: list

    @property
    def counts(self):
        """Usable files per class, in class order."""
        return [len(f) for f in self.files]


def check_kind(kind):
    """Return `kind` ("images" or "audio"), or raise `DatasetError` naming the choices."""
    if kind not in KINDS:
        raise DatasetError(f"Folder kind {kind!r} is unknown: expected one of {', '.join(KINDS)}.")
    return kind


def guess_kind(path):
    """"audio" when the class sub-folders of `path` hold more WAV files than images, else
    "images"."""
    wavs = images = 0
    for sub in _class_dirs(Path(path)):
        for f in sub.iterdir():
            wavs += f.suffix.lower() in AUDIO_SUFFIXES
            images += f.suffix.lower() in IMAGE_SUFFIXES
    return "audio" if wavs > images else "images"


def parse_image_size(value):
    """`(height, width)` from "64x64", 64, or a pair; raises `DatasetError` when not positive ints.

    Example:
        >>> parse_image_size("48x32"), parse_image_size(32)
        ((48, 32), (32, 32))
    """
    pair = value
    if isinstance(value, str):
        pair = value.lower().replace(" ", "").split("x")
        if len(pair) == 1:
            pair = pair * 2
    elif isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    try:
        h, w = (int(v) for v in pair)
        ok = h >= 1 and w >= 1 and len(tuple(pair)) == 2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DatasetError(f"image_size={value!r} is invalid: expected HEIGHTxWIDTH such as "
                           f"'64x64' (or one int for a square).")
    return h, w


def _class_dirs(root):
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def scan_folder(path, kind):
    """List the usable files of `path/<class>/*` and the ones skipped.

    Images are opened (not decoded in full) to find unreadable ones; WAV headers are read.

    Args:
        path: the folder.
        kind: "images" or "audio".

    Returns:
        A `FolderScan`.

    Raises:
        DatasetError: not a folder, no class sub-folders, one class only, or a class without
            a usable file.
    """
    kind = check_kind(kind)
    root = Path(path).expanduser().resolve()
    what = "images" if kind == "images" else "WAV clips"
    if not root.is_dir():
        raise DatasetError(f"Data folder {str(path)!r} is not a folder: expected one sub-folder "
                           f"of {what} per class, e.g. {path}/cat/*, {path}/dog/*.")
    classes = _class_dirs(root)
    if not classes:
        loose = sum(1 for p in root.iterdir() if p.is_file())
        raise DatasetError(
            f"Data folder {str(root)!r} has no class sub-folders ({loose} loose files): put the "
            f"{what} of each class in its own sub-folder, e.g. {root}/cat/*, {root}/dog/*.")
    if len(classes) == 1:
        raise DatasetError(
            f"Data folder {str(root)!r} has one class sub-folder ({classes[0].name!r}): a "
            f"classifier needs at least 2 classes. Add a sub-folder per class.")
    suffixes = IMAGE_SUFFIXES if kind == "images" else AUDIO_SUFFIXES
    probe = _probe_image if kind == "images" else _probe_wav
    files, skipped = [], []
    for folder in classes:
        used = []
        for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            if f.suffix.lower() not in suffixes:
                skipped.append((f, f"not a {'/'.join(s[1:].upper() for s in suffixes)} file"))
                continue
            reason = probe(f)
            if reason:
                skipped.append((f, reason))
            else:
                used.append(f)
        files.append(used)
    empty = [c.name for c, used in zip(classes, files) if not used]
    if empty:
        raise DatasetError(
            f"Data folder {str(root)!r}: class sub-folder(s) {', '.join(map(repr, empty))} hold "
            f"no usable {what}{_skipped_text(skipped, root)}. Add {what} to them or remove "
            f"them.")
    return FolderScan(root, kind, [c.name for c in classes], files, skipped)


def _skipped_text(skipped, root, n=5):
    if not skipped:
        return ""
    names = ", ".join(f"{p.relative_to(root)} ({why})" for p, why in skipped[:n])
    more = f", and {len(skipped) - n} more" if len(skipped) > n else ""
    return f" ({len(skipped)} file(s) skipped: {names}{more})"


def _probe_image(path):
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        return f"not a readable image: {type(exc).__name__}"
    return None


def _probe_wav(path):
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() not in (1, 2, 3, 4):
                return f"{8 * w.getsampwidth()}-bit samples"
    except (wave.Error, EOFError, OSError) as exc:
        return f"not a readable PCM WAV: {exc}"
    return None


def folder_hash(scan):
    """sha256 (hex) of the used files' class-relative paths and bytes."""
    digest = hashlib.sha256()
    for files in scan.files:
        for f in files:
            digest.update(f.relative_to(scan.root).as_posix().encode() + b"\0")
            digest.update(f.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def split_plan(counts, valid_fraction, test_fraction):
    """`(n_valid, n_test)` per class; raises `DatasetError` when a class is too small to split."""
    plan = []
    for n in counts:
        n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
        n_valid = max(1, round(n * valid_fraction)) if valid_fraction > 0 else 0
        plan.append((n_valid, n_test))
    return plan


def _check_sizes(scan, plan):
    small = [(c, n, v + t + 1) for c, n, (v, t) in zip(scan.class_names, scan.counts, plan)
             if n < v + t + 1]
    if small:
        need = max(m for _, _, m in small)
        listed = ", ".join(f"{c!r} has {n}" for c, n, _ in small)
        raise DatasetError(
            f"Data folder {str(scan.root)!r}: too few samples for the train/valid/test split: "
            f"{listed}; each class needs at least {need} (1 train, and valid/test samples). "
            f"Add samples to these classes.")


def _speakers_together(idx, speakers, n_test, n_valid, class_name):
    """One class's shuffled clips with each speaker's clips in one split.

    A speaker is the file name before `_nohash_` (as in Speech Commands); a name without it
    is a speaker of its own, so such folders split clip by clip. The clips are grouped by
    speaker in the order their speakers first appear, and test and valid grow to whole
    speakers (at least `n_test` / `n_valid` clips). When that would leave train empty, the
    clip order is kept (a speaker may then be in two splits) and a warning says so.

    Returns:
        `(idx, n_test, n_valid)`: the order and the test and valid counts to cut it with.
    """
    order = list(dict.fromkeys(speakers))
    if len(order) == len(speakers):
        return idx, n_test, n_valid
    speakers = np.asarray(speakers)
    grouped = np.concatenate([idx[speakers == k] for k in order])
    cuts = np.cumsum([int(np.sum(speakers == k)) for k in order])

    def whole(n):
        return 0 if n == 0 else int(cuts[np.searchsorted(cuts, n)])

    test_end = whole(n_test)
    valid_end = whole(test_end + n_valid) if n_valid else test_end
    if valid_end < len(idx) and (n_test == 0 or test_end > 0) \
            and (n_valid == 0 or valid_end > test_end):
        return grouped, test_end, valid_end - test_end
    logger.warning("Class %r: its %d speakers cannot fill train, valid and test without one "
                   "speaker in two splits; split clip by clip instead.", class_name, len(order))
    return idx, n_test, n_valid


def read_image(path, image_size):
    """uint8 RGB `(H, W, 3)` of an image file, resized bilinearly to `image_size` (H, W)."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (image_size[1], image_size[0]):
            img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def read_clip(path):
    """A WAV file as float32 mono at 16 kHz (int16 scale) and what was converted.

    Returns:
        `(samples, converted)`, `converted` a set of "resampled" / "mixed".
    """
    with wave.open(str(path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) * 256.0
    elif width == 3:
        raw = np.frombuffer(frames[: len(frames) - len(frames) % 3], np.uint8).reshape(-1, 3)
        data = (raw[:, 0].astype(np.int32) | raw[:, 1].astype(np.int32) << 8
                | raw[:, 2].astype(np.int8).astype(np.int32) << 16).astype(np.float32) / 256.0
    else:
        dtype = "<i2" if width == 2 else "<i4"
        data = np.frombuffer(frames, dtype).astype(np.float32) / (1 if width == 2 else 65536.0)
    converted = set()
    if channels > 1:
        data = data[: len(data) - len(data) % channels].reshape(-1, channels).mean(axis=1)
        converted.add("mixed")
    if rate != SAMPLE_RATE:
        n_out = int(round(len(data) * SAMPLE_RATE / rate))
        data = np.interp(np.arange(n_out) * (rate / SAMPLE_RATE), np.arange(len(data)), data)
        converted.add("resampled")
    return data.astype(np.float32), converted


def _read_images(files, image_size):
    out = np.empty((len(files), *image_size, 3), dtype=np.uint8)
    for i, f in enumerate(files):
        out[i] = read_image(f, image_size)
    return pixels_to_int8(out)


def _read_audio(files, root):
    raw = np.zeros((len(files), CLIP_SAMPLES), dtype=np.float32)
    conversions = {"resampled": [], "mixed": []}
    for i, f in enumerate(files):
        clip, converted = read_clip(f)
        clip = clip[:CLIP_SAMPLES]
        raw[i, : len(clip)] = clip
        for what in converted:
            conversions[what].append(f.relative_to(root).as_posix())
    for what, text in (("resampled", f"resampled to {SAMPLE_RATE} Hz (linear interpolation)"),
                       ("mixed", "mixed to mono (mean of the channels)")):
        names = conversions[what]
        if names:
            logger.warning("%d of %d WAV clips were not %s and were %s (not refused): %s%s",
                           len(names), len(files),
                           f"{SAMPLE_RATE} Hz" if what == "resampled" else "mono", text,
                           ", ".join(names[:5]), " ..." if len(names) > 5 else "")
    return to_rows(raw)


def load_folder(
    path,
    kind=None,
    *,
    image_size=DEFAULT_IMAGE_SIZE,
    valid_fraction=0.1,
    test_fraction=0.1,
    seed=42,
    folder_hash_expected=None,
    on_change="refuse",
):
    """Load a data folder of your own as a `Dataset` (see the module docstring).

    Args:
        path: the folder of class sub-folders.
        kind: "images" or "audio"; None guesses from the files (WAV: audio).
        image_size: images only: `(height, width)`, an int or "HxW".
        valid_fraction: share of each class in valid (at least 1 sample).
        test_fraction: share of each class in test (at least 1 sample).
        seed: split seed.
        folder_hash_expected: the `folder_hash` a run recorded; when the folder's differs,
            `on_change` says what happens.
        on_change: "refuse" (raise `DatasetError`: resuming on other data is refused) or
            "warn" (log a warning and read the folder as it is now, e.g. to evaluate).

    Returns:
        A `Dataset` named "images" or "keywords" whose `source` holds `data_folder`,
        `kind`, `image_size` (images) and `folder_hash`: the `datasets.load` arguments that
        read it again.

    Raises:
        DatasetError: a bad folder (see the module docstring), bad fractions or image size,
            or (on_change="refuse") a folder that changed since `folder_hash_expected`.

    Example:
        >>> ds = load_folder("shapes", "images", image_size="32x32")  # doctest: +SKIP
    """
    check_fractions(valid_fraction, test_fraction)
    if on_change not in CHANGED_ACTIONS:
        raise DatasetError(f"on_change={on_change!r} is invalid: expected 'refuse' or 'warn'.")
    if kind is None:
        kind = guess_kind(path) if Path(path).expanduser().is_dir() else "images"
    if kind == "images":
        image_size = parse_image_size(image_size)  # a bad size stops before any file is read
    scan = scan_folder(path, kind)
    if scan.skipped:
        logger.warning("Data folder %s: %d file(s) skipped (the others are used)%s", scan.root,
                       len(scan.skipped), _skipped_text(scan.skipped, scan.root, n=10))
    plan = split_plan(scan.counts, valid_fraction, test_fraction)
    _check_sizes(scan, plan)
    digest = folder_hash(scan)
    if folder_hash_expected is not None and digest != folder_hash_expected:
        message = (f"Data folder {str(scan.root)!r} changed since the run was trained on it: its "
                   f"content hash is {digest[:12]}..., the run recorded "
                   f"{folder_hash_expected[:12]}... (files added, removed or edited).")
        if on_change == "refuse":
            raise DatasetError(message + " Restore the folder, or start a new run on it.")
        logger.warning("%s Using the folder as it is now: the numbers are not the run's.", message)
    name = "images" if kind == "images" else "keywords"
    paths = [f for files in scan.files for f in files]
    labels = np.concatenate([np.full(len(f), i, np.int64) for i, f in enumerate(scan.files)])
    if kind == "images":
        x = _read_images(paths, image_size)
    else:
        x = _read_audio(paths, scan.root)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "valid": [], "test": []}
    for label, (n_valid, n_test) in enumerate(plan):
        idx = rng.permutation(np.flatnonzero(labels == label))
        if kind == "audio":
            idx, n_test, n_valid = _speakers_together(
                idx, [speaker_of(paths[i].name) for i in idx], n_test, n_valid,
                scan.class_names[label])
        parts["test"].append(idx[:n_test])
        parts["valid"].append(idx[n_test:n_test + n_valid])
        parts["train"].append(idx[n_test + n_valid:])
    triples = []
    for split in ("train", "valid", "test"):
        idx = rng.permutation(np.concatenate(parts[split]).astype(np.int64))
        triples.append((x[idx], labels[idx], idx))
    source = {"data_folder": str(scan.root), "kind": kind, "folder_hash": digest}
    if kind == "images":
        source["image_size"] = list(image_size)
    ds = make_dataset(name, scan.class_names, *triples)
    logger.info("%s: %d classes, %d samples from %s", name, len(scan.class_names), len(paths),
                scan.root)
    return dataclasses.replace(ds, source=source)


def load_named(name, *, data_folder=None, image_size=None, folder_hash=None,
               on_change="refuse", seed=42):
    """`datasets.load` for the folder datasets "images" and "keywords".

    Raises:
        DatasetError: no `data_folder`, or any error of `load_folder`.
    """
    if data_folder is None:
        raise DatasetError(f"Dataset {name!r} is a folder of your own: pass data_folder= (the "
                           f"folder of class sub-folders; ai8x-nb train --data-folder PATH).")
    kind = FOLDER_DATASETS[name]
    return load_folder(os.fspath(data_folder), kind, seed=seed,
                       image_size=DEFAULT_IMAGE_SIZE if image_size is None else image_size,
                       folder_hash_expected=folder_hash, on_change=on_change)
