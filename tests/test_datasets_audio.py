"""Tests of the keyword-spotting loaders: kws20 (synthetic espeak clips, Speech Commands fixture), audio_folder."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_files import tone, write_speech_commands, write_wav

from ai8x_nb.datasets import audio_folder, load, save_sample
from ai8x_nb.datasets import kws
from ai8x_nb.errors import DatasetError


@pytest.fixture(scope="module")
def espeak(kws_data):
    return load("kws20", kws_data, folder="kws-espeak", augment=False)


def test_kws20_espeak(espeak, kws_data):
    ds = espeak
    assert ds.num_classes == 21 and ds.class_names[:3] == ["up", "down", "left"]
    assert ds.class_names[19] == "zero" and ds.class_names[20] == "unknown"
    assert ds.input_shape == (128, 128)
    assert sum(len(s) for s in ds.splits) == 200
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (160, 20, 20)
    for s in ds.splits:
        assert s.x.dtype == np.int8 and s.y.dtype == np.int64
        assert s.y.max() < 20  # no unknown words in this folder
    # split by speaker (voice): no voice in two splits
    items = kws.scan_folder(kws_data / "kws-espeak")
    voices = [{kws.speaker_of(items[i][0]) for i in s.index} for s in ds.splits]
    assert not (voices[0] & voices[1]) and not (voices[0] & voices[2]) and not (voices[1] & voices[2])
    # layout: first 16384 samples (zero padded), 128 rows of 128 consecutive samples, round(s / 256)
    rel, word = items[ds.test.index[0]]
    assert ds.test.y[0] == kws.KWS20_KEYWORDS.index(word)
    raw = np.zeros(16384)
    clip = kws.read_wav(kws_data / "kws-espeak" / rel)
    raw[: len(clip)] = clip
    expected = np.clip(np.rint(raw / 256), -128, 127).reshape(128, 128)
    np.testing.assert_array_equal(ds.test.x[0], expected)
    assert not (kws_data / "kws-espeak" / "processed").exists()  # read-only shared folder untouched


def test_kws20_espeak_deterministic_and_augment(espeak, kws_data):
    again = load("kws20", kws_data, folder="kws-espeak", augment=False)
    for a, b in zip(espeak.splits, again.splits):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.index, b.index)
    aug = load("kws20", kws_data, folder="kws-espeak", augment=True)
    assert len(aug.train) == 160 * (1 + kws.AUG_COPIES)
    assert sorted(aug.valid.index.tolist()) == sorted(espeak.valid.index.tolist())
    assert sorted(aug.test.index.tolist()) == sorted(espeak.test.index.tolist())
    assert np.bincount(aug.train.index).max() == 1 + kws.AUG_COPIES
    limited = load("kws20", kws_data, folder="kws-espeak", augment=False, limit=30)
    assert len(limited.train) == 30 and len(np.unique(limited.train.y)) > 5  # mixed classes


def test_augment_batch_is_seeded_and_vectorised():
    raw = np.stack([tone(1, 16384), tone(2, 16384)]).astype(np.float32)
    a = kws.augment_batch(raw, np.random.default_rng(0))
    b = kws.augment_batch(raw, np.random.default_rng(0))
    assert a.shape == raw.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, raw)


def test_speech_commands_fixture_lists_unknown_and_cache(tmp_path, monkeypatch):
    root = write_speech_commands(tmp_path / "speech_commands_v0.02")
    shipped = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    cache = tmp_path.parent / f"{tmp_path.name}-cache"
    ds = load("kws20", tmp_path, augment=False, cache_dir=cache)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (18, 3, 3)  # lists honoured
    assert sorted(ds.valid.y.tolist()) == [0, 1, 20] and sorted(ds.test.y.tolist()) == [0, 1, 20]
    assert ds.num_classes == 21
    items = kws.scan_folder(root)
    assert not any(rel.startswith("_background_noise_") for rel, _ in items)
    assert {items[i][0].split("/")[1] for i in ds.valid.index} == {"0000beef_nohash_0.wav"}
    # The data folder is writable, yet stays as shipped: the cache is in the cache folder.
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == shipped
    caches = list((cache / "kws").glob("kws20_*.npz"))
    assert len(caches) == 1
    assert not [p for p in (cache / "kws").iterdir() if p.suffix != ".npz"]  # no temp files left

    def no_reading(path):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(kws, "read_wav", no_reading)
    cached = load("kws20", tmp_path, augment=False, cache_dir=cache)
    np.testing.assert_array_equal(cached.train.x, ds.train.x)
    monkeypatch.undo()
    write_wav(root / "up" / "0007cafe_nohash_1.wav", tone(77))  # the folder changed: processed again
    changed = load("kws20", tmp_path, augment=False, cache_dir=cache)
    assert len(changed.train) == 19
    assert len(list((cache / "kws").glob("kws20_*.npz"))) == 2


def test_cache_goes_to_xdg_cache_home_never_the_data_folder(tmp_path, monkeypatch):
    root = write_speech_commands(tmp_path / "data" / "words", words=("bird", "cat"), speakers=3,
                                 lists=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    audio_folder(root)
    assert len(list((tmp_path / "xdg" / "ai8x-nb" / "kws").glob("words_*.npz"))) == 1
    assert not (root / "processed").exists()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    audio_folder(root)
    assert len(list((tmp_path / "home" / ".cache" / "ai8x-nb" / "kws").glob("words_*.npz"))) == 1
    assert sorted(p.name for p in root.iterdir()) == ["_background_noise_", "bird", "cat"]


def test_kws_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"speech_commands_v0\.02.*speech_commands_v0\.02\.tar\.gz.*AI8X_NB_DATA"):
        load("kws20", tmp_path, download=False)
    write_wav(tmp_path / "words" / "up" / "a_nohash_0.wav", tone(1, 8000), rate=8000)
    with pytest.raises(DatasetError, match=r"up/a_nohash_0\.wav: 8000 Hz, 16-bit; expected 16000 Hz"):
        audio_folder(tmp_path / "words")
    (tmp_path / "words" / "up" / "a_nohash_0.wav").write_bytes(b"RIFF0000")
    with pytest.raises(DatasetError, match=r"a_nohash_0\.wav is not a readable PCM WAV"):
        audio_folder(tmp_path / "words")


def test_audio_folder_hash_split(tmp_path):
    root = write_speech_commands(tmp_path / "mywords", words=("bird", "cat", "dog"), speakers=10, lists=False)
    ds = audio_folder(root)
    assert ds.name == "mywords" and ds.class_names == ["bird", "cat", "dog"]  # no unknown class
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (24, 3, 3)  # 8/1/1 speakers
    speakers = [{kws.speaker_of(kws.scan_folder(root)[i][0]) for i in s.index} for s in ds.splits]
    assert [len(s) for s in speakers] == [8, 1, 1] and not (speakers[1] & speakers[2])
    aug = audio_folder(root, augment=True, valid_fraction=0.2, test_fraction=0.2)
    assert (len(aug.train), len(aug.valid), len(aug.test)) == (18 * (1 + kws.AUG_COPIES), 6, 6)


def test_save_sample_kws(espeak, tmp_path):
    arr = save_sample(espeak.test, 0, tmp_path / "kws.npy")
    loaded = np.load(tmp_path / "kws.npy", allow_pickle=False)
    assert loaded.shape == (128, 128) and loaded.dtype == np.int64
    np.testing.assert_array_equal(loaded, espeak.test.x[0].T)  # axis 0 = channel = column within a row
    np.testing.assert_array_equal(arr, loaded)
    rows = save_sample(espeak.test, 0, tmp_path / "rows.npy", channel_first=False)
    np.testing.assert_array_equal(rows, espeak.test.x[0])
    swapped = save_sample(espeak.test, 0, tmp_path / "sw.npy", swap=True)
    np.testing.assert_array_equal(swapped, espeak.test.x[0])
