"""Your own data: folders of class sub-folders made by the tests (PIL shapes, tone "words").

Bad folders stop or skip with a message that names the folder, the value and the fix; each
case pins its message. A run records its folder and content hash in config.json, so resume
refuses a changed folder and evaluate warns. The same folders train from `ai8x-nb train
--data-folder` and from the images/keywords notebooks headless (train, export, synthesize).
"""

import json
import logging
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from folder_data import tone, write_shapes, write_tones, write_wav

from ai8x_nb import datasets, parameters, notebooks
from ai8x_nb.cli import main
from ai8x_nb.datasets import folders
from ai8x_nb.errors import DatasetError
from ai8x_nb.training import train
from ai8x_nb.training.arguments import TrainingError

FOLDER_NOTEBOOKS = ("images", "keywords")


# ------------------------------------------------------------------ bad folders
def test_not_a_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"'.*nowhere' is not a folder: expected one "
                                           r"sub-folder of images per class"):
        datasets.load("images", data_folder=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"Dataset 'keywords' is a folder of your own: pass "
                                           r"data_folder= \(the folder of class sub-folders; "
                                           r"ai8x-nb train --data-folder PATH\)"):
        datasets.load("keywords")


def test_no_class_subfolders(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"has no class sub-folders \(3 loose files\): put the "
                                           r"images of each class in its own sub-folder"):
        datasets.load_folder(tmp_path, "images")


def test_one_class(tmp_path):
    write_shapes(tmp_path, per_class=3, classes=("circle",))
    with pytest.raises(DatasetError, match=r"has one class sub-folder \('circle'\): a "
                                           r"classifier needs at least 2 classes"):
        datasets.load_folder(tmp_path, "images")


def test_empty_class(tmp_path):
    write_shapes(tmp_path, per_class=3, classes=("circle", "square"))
    (tmp_path / "triangle").mkdir()
    (tmp_path / "triangle" / "notes.txt").write_text("todo")
    with pytest.raises(DatasetError, match=r"class sub-folder\(s\) 'triangle' hold no usable "
                                           r"images \(1 file\(s\) skipped: triangle/notes.txt "
                                           r"\(not a PNG/JPG/JPEG/BMP/GIF file\)\)"):
        datasets.load_folder(tmp_path, "images")


def test_unreadable_files_are_skipped_and_named(tmp_path, caplog):
    write_shapes(tmp_path, per_class=4, classes=("circle", "square"))
    (tmp_path / "circle" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "square" / "readme.md").write_text("shapes")
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.datasets.folders"):
        ds = datasets.load_folder(tmp_path, "images", image_size=8)
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 8  # the 8 good PNGs, no more
    assert re.search(r"2 file\(s\) skipped \(the others are used\) \(2 file\(s\) skipped: "
                     r"circle/broken.png \(not a readable image: UnidentifiedImageError\), "
                     r"square/readme.md \(not a PNG/JPG/JPEG/BMP/GIF file\)\)", caplog.text)


def test_too_few_samples_for_the_splits(tmp_path):
    write_shapes(tmp_path, per_class=5, classes=("circle",))
    write_shapes(tmp_path, per_class=2, classes=("square",))
    with pytest.raises(DatasetError, match=r"too few samples for the train/valid/test split: "
                                           r"'square' has 2; each class needs at least 3 "
                                           r"\(1 train, and valid/test samples\)"):
        datasets.load_folder(tmp_path, "images")


def test_wav_not_16k_mono_is_resampled_and_mixed(tmp_path, caplog):
    """A 48 kHz stereo clip is resampled and mixed (said in a warning), giving what the same
    tone recorded at 16 kHz mono gives."""
    t16, t48 = np.arange(16000) / 16000, np.arange(48000) / 48000
    for word, freq in (("low", 300.0), ("high", 2000.0)):
        (tmp_path / "a" / word).mkdir(parents=True)
        (tmp_path / "b" / word).mkdir(parents=True)
        for i in range(3):
            level = 8000 * (i + 1)
            write_wav(tmp_path / "a" / word / f"{i}.wav",
                      np.rint(level * np.sin(2 * np.pi * freq * t16)))
            stereo = np.rint(level * np.sin(2 * np.pi * freq * t48))
            write_wav(tmp_path / "b" / word / f"{i}.wav", np.stack([stereo, stereo], 1),
                      rate=48000, channels=2)
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.datasets.folders"):
        native = datasets.load_folder(tmp_path / "a", "audio")
        converted = datasets.load_folder(tmp_path / "b", "audio")
    assert "6 of 6 WAV clips were not 16000 Hz and were resampled to 16000 Hz (linear " \
           "interpolation) (not refused)" in caplog.text
    assert "6 of 6 WAV clips were not mono and were mixed to mono (mean of the channels) " \
           "(not refused)" in caplog.text
    for a, b in zip(native.splits, converted.splits):
        np.testing.assert_array_equal(a.y, b.y)
        assert np.abs(a.x.astype(int) - b.x.astype(int)).max() <= 2  # int8 steps


def test_unreadable_wav_is_skipped(tmp_path, caplog):
    write_tones(tmp_path, per_class=3, words={"low": 300.0, "high": 2000.0})
    (tmp_path / "low" / "cut.wav").write_bytes(b"RIFF")
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.datasets.folders"):
        ds = datasets.load("keywords", data_folder=tmp_path)
    assert sum(len(s) for s in ds.splits) == 6
    assert "low/cut.wav (not a readable PCM WAV:" in caplog.text


def test_a_speaker_says_a_word_in_one_split_only(tmp_path, caplog):
    """Speech Commands names (`<speaker>_nohash_<n>.wav`): each speaker's clips of a word go to
    one split; with too few speakers the split goes clip by clip, with a warning."""
    from ai8x_nb.datasets.kws import speaker_of

    rng = np.random.default_rng(1)
    for word, freq, speakers in (("yes", 400.0, "abcde"), ("no", 1500.0, "xy")):
        (tmp_path / word).mkdir()
        for speaker in speakers:
            for k in range(3):
                write_wav(tmp_path / word / f"{speaker}_nohash_{k}.wav", tone(freq, rng))
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.datasets.folders"):
        ds = datasets.load_folder(tmp_path, "audio")
    files = [f for fs in folders.scan_folder(tmp_path, "audio").files for f in fs]
    where = {}
    for split in ds.splits:
        for i in split.index:
            where.setdefault((files[i].parent.name, speaker_of(files[i].name)), set()).add(
                split.name)
    assert all(len(where[("yes", s)]) == 1 for s in "abcde")
    assert datasets.describe(ds).splitlines()[1:3] == ["no          4      1      1",
                                                         "yes         9      3      3"]
    assert "Class 'no': its 2 speakers cannot fill train, valid and test without one speaker " \
           "in two splits; split clip by clip instead." in caplog.text
    assert "Class 'yes'" not in caplog.text


def test_warnings_name_small_and_imbalanced_classes(tmp_path):
    write_shapes(tmp_path, per_class=40, classes=("circle",), size=8)
    write_shapes(tmp_path, per_class=5, classes=("square",), size=8)
    text = datasets.describe(datasets.load_folder(tmp_path, "images", image_size=8))
    assert text.splitlines()[:4] == ["class    train  valid   test",
                                     "circle      32      4      4",
                                     "square       3      1      1",
                                     "all         35      5      5"]
    assert "WARNING: Too few samples: 'square' (5) have fewer than 20" in text
    assert "WARNING: Class imbalance: 'circle' has 40 samples, 'square' only 5 (8.0x, " \
           "above 3x)" in text


def test_bad_parameters_and_flags(tmp_path, capsys):
    values = {**parameters.defaults(table=parameters.folder_table("images")), "model_spec": []}
    with pytest.raises(parameters.ParameterError,
                       match=r"data_folder=None is invalid: expected your folder of class "
                             r"sub-folders"):
        parameters.check_parameters(values)
    with pytest.raises(parameters.ParameterError,
                       match=r"image_size='64 by 64' is invalid: expected HEIGHTxWIDTH"):
        parameters.check_parameters({**values, "data_folder": str(tmp_path),
                                     "image_size": "64 by 64"})
    derived = parameters.check_parameters({**values, "data_folder": str(tmp_path),
                                           "image_size": "48x32"})
    assert derived["image_size"] == (48, 32) and derived["data_folder"] == str(tmp_path)
    assert main(["train", "--image-size", "32x32", "--dataset", "mnist"]) == 2
    assert "--image-size 32x32 needs --data-folder PATH" in capsys.readouterr().err
    assert main(["train", "--data-folder", str(tmp_path), "--kind", "audio",
                 "--image-size", "32x32"]) == 2
    assert "--image-size 32x32 is for images; audio clips are always 128x128" in \
           capsys.readouterr().err
    words = write_tones(tmp_path / "words", per_class=1)
    assert main(["train", "--data-folder", str(words), "--image-size", "32x32"]) == 2
    assert f"--image-size 32x32: {words} holds WAV clips (audio), always 128x128" in \
           capsys.readouterr().err


def test_content_hash_refuses_or_warns(tmp_path, caplog):
    data = write_shapes(tmp_path / "data", per_class=3, classes=("circle", "square"), size=8)
    recorded = datasets.load_folder(data, "images", image_size=8).source["folder_hash"]
    assert datasets.load("images", data_folder=data, image_size=8,
                         folder_hash=recorded).source["folder_hash"] == recorded
    write_shapes(tmp_path / "x", per_class=1, classes=("circle",), size=8, seed=5)
    (tmp_path / "x" / "circle" / "000.png").replace(data / "circle" / "000.png")  # an edit
    with pytest.raises(DatasetError, match=r"changed since the run was trained on it: its "
                                           r"content hash is [0-9a-f]{12}\.\.\., the run "
                                           r"recorded [0-9a-f]{12}\.\.\. .*Restore the folder"):
        datasets.load("images", data_folder=data, image_size=8, folder_hash=recorded)
    with caplog.at_level(logging.WARNING, logger="ai8x_nb.datasets.folders"):
        datasets.load("images", data_folder=data, image_size=8, folder_hash=recorded,
                      on_folder_change="warn")
    assert "Using the folder as it is now: the numbers are not the run's." in caplog.text


# ------------------------------------------------------------------ the same folders, trained
@pytest.fixture(scope="module")
def folders_made(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    return write_shapes(root / "shapes", per_class=8, size=32), write_tones(root / "words",
                                                                            per_class=6)


@pytest.mark.slow
def test_cli_train_records_the_folder_then_resume_and_evaluate_notice_changes(
        folders_made, tmp_path, capsys, caplog):
    shapes, words = folders_made
    assert main(["train", "--data-folder", str(shapes), "--image-size", "16x16", "--epochs",
                 "1", "--out", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    assert "circle         6      1      1" in out
    run = Path(re.search(r"run dir: (\S+)", out).group(1))
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "images" and run.name.endswith("-images")
    assert config["dataset_kwargs"]["data_folder"] == str(shapes)
    assert config["dataset_kwargs"]["image_size"] == [16, 16]
    assert config["dataset_kwargs"]["folder_hash"] == folders.folder_hash(
        folders.scan_folder(shapes, "images"))
    assert config["model"][-1]["units"] == 3  # the rock seed's layers, 3 classes
    moved = shapes / "square" / "007.png"
    moved.rename(shapes / "square.png")  # the folder changes: one square less
    try:
        assert main(["train", "--run-dir", str(run), "--epochs", "2"]) == 2
        assert "changed since the run was trained on it" in capsys.readouterr().err
        # From Python (as a notebook would): the changed folder, given as a Dataset, is refused.
        changed = datasets.load_folder(shapes, "images", image_size=16)
        with pytest.raises(TrainingError, match=r"Cannot continue run .* with other settings: "
                                                r"folder_hash='[0-9a-f]{64}' \(the run has "):
            train(None, changed, run_dir=run, epochs=2)
        with caplog.at_level(logging.WARNING):
            assert main(["evaluate", str(run)]) == 0
            assert "Using the folder as it is now" in caplog.text
            caplog.clear()
            assert main(["export", str(run), "--out", str(tmp_path / "export"), "--targets",
                         "synthesis"]) == 0
            assert "Using the folder as it is now" in caplog.text
    finally:
        (shapes / "square.png").rename(moved)
    assert main(["train", "--data-folder", str(words), "--epochs", "1", "--out",
                 str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    assert "high        4      1      1" in out and "keywords" in out


# ------------------------------------------------------------------ the notebooks
def test_folder_notebooks_share_the_skeleton():
    def headings(name):
        nb = nbformat.read(str(notebooks.notebook_dir() / f"{name}.ipynb"), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].metadata.get("tags") == ["parameters"], name
        assert code[0].source.startswith("data_folder = None") == (name != "mnist"), name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
        return [line for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]

    assert headings("images") == headings("keywords") == headings("mnist")


@pytest.mark.slow
def test_folder_notebooks_train_export_synthesize(folders_made, tmp_path, monkeypatch):
    shapes, words = folders_made
    monkeypatch.chdir(shapes.parent)  # folders named relative to here; the kernels run elsewhere
    tiny = {"epochs": 1, "limit": 64, "qat_policy": {"start_epoch": 0, "weight_bits": 8}}
    results = notebooks.run_all(
        FOLDER_NOTEBOOKS, tiny, parallel=2, out_dir=tmp_path / "runs",
        per_notebook={"images": {"data_folder": "shapes", "image_size": "16x16"},
                      "keywords": {"data_folder": "words"}})
    for result in results:
        assert result.ok, f"{result.name} failed at In [{result.error_cell}]: {result.error} " \
                          f"(see {result.output_notebook})"
        summary = result.summary
        assert summary["dataset"] == result.name
        manifest = json.loads((Path(result.export_dir) / "manifest.json").read_text())
        if os.environ.get("AI8X_SYNTHESIS_DIR") and os.environ.get("AI8X_SYNTHESIS_PYTHON"):
            assert summary["synthesis"] == "PASS", result.output_notebook
            assert manifest["synthesis"]["mismatches"] == 0
        config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
        folder = shapes if result.name == "images" else words
        assert config["dataset_kwargs"]["data_folder"] == str(folder)
        assert len(config["dataset_kwargs"]["folder_hash"]) == 64
        text = result.output_notebook.read_text()
        assert "WARNING: Too few samples" in text  # the Data section's warnings
