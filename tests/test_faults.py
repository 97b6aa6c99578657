"""Fault injection: nothing lost, nothing escapes.

Every file train, export and synthesize commit passes a named write point
(`ai8x_nb._faults`), before and after its replace. A kill leaves on disk exactly what was
there when the process reached the point, so each case here copies the folder at every point
of one uninterrupted command (`_faults.observe`): each copy is what a kill there leaves. Each
copy must hold the old state or the new one, whole, and the next command on it must give
the bit-identical result of the uninterrupted one. Real SIGKILLs (`AI8X_NB_FAULT`) in train
and in export's swap, and a killed synthesize, check that the copies are what a kill leaves. Then: a full and a
read-only file system (a tmpfs, when root), planted symbolic links and hostile names, and the
writers raced pairwise.
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from ai8x_nb import _atomic, _faults, layers
from ai8x_nb.errors import ExportError, SynthesisError
from ai8x_nb.export import Manifest, export_model
from ai8x_nb.export import package
from ai8x_nb.runs import RunDir
from ai8x_nb.training import train

from support import SHARED_DATA as DATA
from support import keras_file_weights, set_deterministic_weights

pytestmark = pytest.mark.usefixtures("mnist_data")

# Layers named: weights are compared by their paths, and Keras numbers unnamed layers per
# process.
TINY = textwrap.dedent("""
    import keras
    from ai8x_nb import layers

    def build_tiny():
        keras.utils.set_random_seed(7)
        inp = keras.Input((28, 28, 1))
        x = layers.Conv2D(4, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                          pool_strides=2, name="c1")(inp)
        x = keras.layers.Dropout(0.3, name="drop")(x)
        x = keras.layers.Flatten(name="flat")(x)
        return keras.Model(inp, layers.Dense(10, wide=True, name="fc")(x), name="tiny")
""")
RUN = dict(epochs=2, batch_size=32, seed=5, schedule="cosine", verbose=0,
           data_dir=str(DATA), dataset_kwargs={"limit": 64})
SKIP = {"tensorboard", ".lock"}


def _tiny():
    scope = {}
    exec(TINY, scope)  # noqa: S102 - the same source the killed subprocess runs
    return scope["build_tiny"]()


def _same_weights(a, b):
    a, b = keras_file_weights(a), keras_file_weights(b)
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _history(path):
    import csv

    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "epoch_time"} for row in csv.DictReader(f)]


def _is_leftover(name):
    return bool(_atomic._LEFTOVER.match(name))


def _durable(folder):
    """A digest of what a resume can see: every file but locks, logs and temporaries."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] in SKIP or _is_leftover(path.name) or not path.is_file():
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _snapshots(folder, into, ignore=("tensorboard",)):
    """Copy `folder` at every write point passed in the block; yields the list of
    (point, copy) it fills."""
    taken = []

    def snap(point):
        dest = Path(into) / f"{len(taken):03d}-{point.replace(':', '-')}"
        if Path(folder).exists():
            shutil.copytree(folder, dest, symlinks=True, ignore=shutil.ignore_patterns(*ignore))
            taken.append((point, dest))

    with _faults.observe(snap):
        yield taken


# ------------------------------------------------------------------ train: every write point
@pytest.fixture(scope="module")
def train_points(tmp_path_factory):
    """The uninterrupted run, and a copy of its folder at every write point it passed."""
    root = tmp_path_factory.mktemp("train-points")
    run = root / "whole"
    model = _tiny()
    initial = [keras.ops.convert_to_numpy(v) for v in model.variables]
    with _snapshots(run, root / "snaps") as taken:
        whole = train(model, "mnist", run_dir=run, **RUN)
    return whole.run_dir, taken, initial


def _again(initial):
    """The run's model passed again, as a restarted process would build it: Keras draws
    initial weights (and dropout generator seeds) from a process-wide generator, so a second
    build in this process differs; its variables are set to the first build's."""
    model = _tiny()
    assert len(model.variables) == len(initial)
    for variable, value in zip(model.variables, initial):
        variable.assign(value)
    return model


def _check_whole(folder):
    """What a kill left is one consistent state: the committed pair and whole files."""
    run = RunDir(folder)
    for name in ("config.json", "results.json", "state.json"):
        if run.file(name).exists():
            json.loads(run.file(name).read_bytes())
    for path in folder.glob("*.keras"):
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None, path
    state = run.state
    if state is not None:
        committed = run.resume_checkpoint(state)
        assert committed.name == f".last-{state['epochs_completed']:04d}.keras"
        return state["epochs_completed"]
    assert not run.file("last.keras").exists()
    return 0


def test_train_every_write_point_resumes_bit_identical(train_points):
    """Kill train at each of its write points: the folder holds one committed epoch, and the
    resume gives the uninterrupted run's weights, history and test result."""
    whole, taken, initial = train_points
    points = [p for p, _ in taken]
    # Every write train does, per epoch: best model, checkpoint, state (the commit), the
    # last.keras link, pruning the older generation, the history row; then results.json.
    for name in ("config.json", "best.keras", "checkpoint", "state", "last", "prune",
                 "history", "results.json"):
        assert any(p.startswith(name) for p in points), (name, points)
    epochs = [_check_whole(folder) for _, folder in taken]
    assert epochs == sorted(epochs) and epochs[-1] == RUN["epochs"]
    groups = {}
    for point, folder in taken:  # copies a resume cannot tell apart are resumed once
        groups.setdefault(_durable(folder), []).append(folder)
    for folders in groups.values():
        folder = folders[-1]
        if not (folder / "config.json").exists():
            continue  # killed before the run existed: nothing to resume
        restart = RunDir(folder).state is None
        resumed = train(_again(initial), None, run_dir=folder, epochs=RUN["epochs"],
                        data_dir=str(DATA), verbose=0)
        run = resumed.run_dir
        if restart:
            # Killed in epoch 1, before any checkpoint: the run starts again from its
            # config. For a custom keras.Model given again in the same process, that is not
            # bit-identical (seed models are: test_resume); a known gap, see issue 23's note.
            assert len(_history(run.file("history.csv"))) == RUN["epochs"]
            continue
        assert _same_weights(whole.file("last.keras"), run.file("last.keras")), folder.name
        assert _history(whole.file("history.csv")) == _history(run.file("history.csv"))
        assert run.results["test_accuracy"] == whole.results["test_accuracy"]
        names = sorted(p.name for p in folder.iterdir() if p.name not in SKIP)
        assert not [n for n in names if _is_leftover(n)], names
        assert [n for n in names if n.startswith(".last-")] == [".last-0002.keras"]
        assert os.path.samefile(run.file("last.keras"), run.file(".last-0002.keras"))
    print(f"train: {len(points)} write points, {len(groups)} distinct states resumed")


def _train_in_subprocess(run_dir, fault, settings=RUN):
    script = TINY + textwrap.dedent(f"""
        from ai8x_nb.training import train

        train(build_tiny(), "mnist", run_dir={str(run_dir)!r}, **{settings!r})
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(sys.path),
           _faults.ENV: fault}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_real_kill_between_model_and_state_resumes_bit_identical(tmp_path, train_points):
    """The issue's case: SIGKILL right after epoch 2's model file is written, before its
    state.json. The resume must redo epoch 2 once (it trained it twice before)."""
    whole = train_points[0]
    killed = tmp_path / "killed"
    proc = _train_in_subprocess(killed, "checkpoint:after#2")
    assert proc.returncode == -9, proc.stderr[-2000:]
    run = RunDir(killed)
    assert run.state["epochs_completed"] == 1 and (killed / ".last-0002.keras").exists()
    from ai8x_nb.cli import main

    assert main(["train", "--run-dir", str(killed)]) == 0
    assert _same_weights(whole.file("last.keras"), run.file("last.keras"))
    assert _history(whole.file("history.csv")) == _history(run.file("history.csv"))
    assert len(_history(run.file("history.csv"))) == 2


# ------------------------------------------------------------------ export: every write point
def _tiny_export_model(seed):
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                      pool_strides=2, name="c1")(inp)
    x = layers.Dense(5, wide=True, name="fc")(keras.layers.Flatten()(x))
    return set_deterministic_weights(keras.Model(inp, x, name="tiny"), seed=seed, scale=0.3)


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


def _without_times(tree, folder):
    """The export's files with its own folder's path and the manifest's times taken out."""
    here = str(folder).encode()
    tree = {k: v.replace(here, b"<FOLDER>") for k, v in tree.items()}
    manifest = json.loads(tree.pop("manifest.json"))
    for key in ("started", "finished"):
        manifest.pop(key)
    return tree, manifest


@pytest.fixture(scope="module")
def export_models():
    return _tiny_export_model(3), _tiny_export_model(4)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-step"])
def test_export_every_write_point_leaves_old_or_new_whole(tmp_path, export_models, exchange,
                                                          monkeypatch):
    """Kill export (replacing an older export) at each write point: after the next command's
    recovery the folder is the old export or the new one, whole; exporting again gives the
    uninterrupted export and leaves no staging folder behind."""
    monkeypatch.setattr(package, "EXCHANGE_SUPPORTED", exchange)
    old_model, new_model = export_models
    parent = tmp_path / "out"
    export_model(old_model, parent / "tiny", targets=("synthesis",))
    old = _tree(parent / "tiny")
    with _snapshots(parent, tmp_path / "snaps", ignore=()) as taken:
        export_model(new_model, parent / "tiny", targets=("synthesis",))
    new = _tree(parent / "tiny")
    points = [p for p, _ in taken]
    swap = ["export-exchange", "export-drop-old"] if exchange else [
        "export-aside", "export-in", "export-drop-old"]
    assert [p.rsplit(":", 1)[0] for p in points] == [
        "manifest.json", "manifest.json"] + [s for s in swap for _ in (0, 1)], points
    seen = set()
    for point, copy in taken:
        package.recover(copy / "tiny")  # what the next export or synthesize does first
        tree = _tree(copy / "tiny")
        assert tree in (old, new), point
        seen.add("new" if tree == new else "old")
        again = export_model(new_model, copy / "tiny", targets=("synthesis",))
        assert again.folder == copy / "tiny"
        assert (_without_times(_tree(copy / "tiny"), copy / "tiny")
                == _without_times(new, parent / "tiny")), point
        assert sorted(p.name for p in copy.iterdir()) == [".tiny.lock", "tiny"], point
    assert seen == {"old", "new"}
    print(f"export ({'exchange' if exchange else 'two-step'}): {len(points)} write points")


@pytest.mark.slow
def test_real_kill_inside_the_export_swap_is_recovered(tmp_path, export_models):
    """The issue's case: SIGKILL after the old export was moved aside, before the new one
    was moved in (the two-step swap, where the system has no atomic exchange). Nothing is
    under the name; the next export (or synthesize) puts the old one back before anything."""
    parent = tmp_path / "out"
    export_model(export_models[0], parent / "tiny", targets=("synthesis",))
    old = _tree(parent / "tiny")
    script = textwrap.dedent(f"""
        import keras
        from ai8x_nb import layers
        from ai8x_nb.export import export_model, package

        package.EXCHANGE_SUPPORTED = False
        inp = keras.Input((8, 8, 3))
        x = layers.Conv2D(8, 3, padding=1, activation="relu", pooling="max", pool_size=2,
                          pool_strides=2, name="c1")(inp)
        x = layers.Dense(5, wide=True, name="fc")(keras.layers.Flatten()(x))
        export_model(keras.Model(inp, x, name="tiny"), {str(parent / "tiny")!r},
                     targets=("synthesis",))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(sys.path),
           _faults.ENV: "export-aside:after"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (parent / "tiny").exists()
    assert package.recover(parent / "tiny")
    assert _tree(parent / "tiny") == old
    export_model(export_models[1], parent / "tiny", targets=("synthesis",))
    assert sorted(p.name for p in parent.iterdir()) == [".tiny.lock", "tiny"]


# ------------------------------------------------------------------ synthesize (a stand-in tool)
FAKE_TOOL = textwrap.dedent("""
    import os, shutil, sys, time

    args = sys.argv[1:]
    value = lambda flag: args[args.index(flag) + 1]
    hold = os.environ.get("FAKE_TOOL_HOLD")
    if hold:
        open(hold, "w").write(str(os.getpid()))
        time.sleep(float(os.environ.get("FAKE_TOOL_SLEEP", "60")))
    project = os.path.join(value("--test-dir"), value("--prefix"))
    os.makedirs(project, exist_ok=True)
    open(os.path.join(project, "cnn.c"), "w").write("/* stand-in */\\n")
    sample = os.path.join(os.path.dirname(value("--sample-input")), "sampleoutput.npy")
    shutil.copyfile(sample, os.path.join(project, value("--sample-numpy-filename")))
    print("Creating network")
""")


@pytest.fixture(scope="module")
def fake_tool(tmp_path_factory):
    """A stand-in for ai8xize.py that answers with sampleoutput.npy (a PASS) in ~50 ms; with
    FAKE_TOOL_HOLD set it writes its pid there and sleeps silently first."""
    folder = tmp_path_factory.mktemp("fake-tool")
    (folder / "ai8xize.py").write_text(FAKE_TOOL)
    return dict(synthesis_dir=str(folder), python=sys.executable)


@pytest.fixture
def small_export(tmp_path, export_models):
    export_model(export_models[0], tmp_path / "tiny", targets=("synthesis",))
    return tmp_path / "tiny"


def test_synthesize_every_write_point_leaves_old_or_new_manifest(tmp_path, small_export,
                                                                 fake_tool):
    from ai8x_nb.synthesis import synthesize

    before = (small_export / "manifest.json").read_bytes()
    with _snapshots(small_export, tmp_path / "snaps", ignore=("sdk",)) as taken:
        assert synthesize(small_export, **fake_tool).ok
    after = (small_export / "manifest.json").read_bytes()
    assert [p for p, _ in taken] == ["manifest.json:before", "manifest.json:after"]
    for point, copy in taken:
        assert (copy / "manifest.json").read_bytes() in (before, after), point
        result = synthesize(copy, **fake_tool)
        assert result.ok and Manifest.load(copy).synthesis["verdict"] == "PASS"
        assert not [p for p in copy.iterdir() if _is_leftover(p.name)], point


def test_synthesize_timeout_stops_a_silent_tool_and_its_group(tmp_path, small_export,
                                                             fake_tool, monkeypatch):
    from ai8x_nb.synthesis import synthesize

    hold = tmp_path / "pid"
    monkeypatch.setenv("FAKE_TOOL_HOLD", str(hold))
    started = time.monotonic()
    with pytest.raises(SynthesisError, match="longer than 1 s and was stopped"):
        synthesize(small_export, timeout=1, **fake_tool)
    assert time.monotonic() - started < 10
    pid = int(hold.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped, not left running
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(SynthesisError, match="timeout=.* is invalid"):
            synthesize(small_export, timeout=bad, **fake_tool)


def test_killed_synthesize_leaves_no_tool_running(tmp_path, small_export, fake_tool):
    hold = tmp_path / "pid"
    env = {**os.environ, "FAKE_TOOL_HOLD": str(hold), "PYTHONPATH": os.pathsep.join(sys.path)}
    script = (f"from ai8x_nb.synthesis import synthesize; synthesize({str(small_export)!r}, "
              f"synthesis_dir={fake_tool['synthesis_dir']!r}, python={sys.executable!r})")
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        for _ in range(600):
            if hold.exists() and hold.read_text():
                break
            time.sleep(0.05)
        pid = int(hold.read_text())
        os.kill(parent.pid, 9)
        parent.wait()
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break  # dead, waiting for init to reap it
            time.sleep(0.05)
        else:
            pytest.fail(f"ai8xize.py (pid {pid}) outlived the killed synthesize")
    finally:
        parent.kill()


# ------------------------------------------------------------------ races
def test_export_while_synthesize_runs_waits_and_keeps_both_whole(tmp_path, small_export,
                                                                 fake_tool, export_models,
                                                                 monkeypatch):
    """The issue's case: synthesize wrote back the manifest it read at its start over a new
    export's. Now the export waits for synthesize; the result is the new export, whole, and
    a second synthesize meanwhile is refused."""
    from ai8x_nb.synthesis import synthesize

    hold = tmp_path / "pid"
    monkeypatch.setenv("FAKE_TOOL_HOLD", str(hold))
    monkeypatch.setenv("FAKE_TOOL_SLEEP", "1.5")
    results = {}
    first = threading.Thread(target=lambda: results.setdefault(
        "synth", synthesize(small_export, **fake_tool)))
    first.start()
    while not hold.exists():
        time.sleep(0.02)
    with pytest.raises(SynthesisError, match="being written by another process"):
        synthesize(small_export, **fake_tool)
    manifest = export_model(export_models[1], small_export, targets=("synthesis",))
    first.join()
    assert results["synth"].ok
    on_disk = Manifest.load(small_export)
    assert on_disk.started == manifest.started and on_disk.synthesis is None
    assert set(on_disk.artifacts) == set(manifest.artifacts)
    assert not (small_export / "sdk").exists()  # the C project belonged to the old export


def test_two_runs_of_one_notebook_in_one_folder_the_second_is_refused(tmp_path, tiny_notebook,
                                                                      capsys):
    from ai8x_nb import notebooks
    from ai8x_nb._lock import FolderLock
    from ai8x_nb.cli import main

    notebook = tmp_path / "nb" / "mnist.ipynb"
    notebook.parent.mkdir()
    tiny_notebook(notebook, ["print('hello')"])
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out / ".run-mnist.lock").acquire():  # the first run, still running
        with pytest.raises(notebooks.NotebookError, match="already running in"):
            notebooks.run_notebook(notebook, out_dir=out)
        assert main(["run", str(notebook), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already running" in err and "--out" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [".run-mnist.lock"]  # nothing written


# ------------------------------------------------------------------ links and hostile names
def _one_epoch_copy(train_points, dest):
    taken = train_points[1]
    first = next(folder for point, folder in taken
                 if point == "history:append" and RunDir(folder).state is not None)
    shutil.copytree(first, dest, symlinks=True)
    return dest


@pytest.mark.parametrize("name", [".lock", "history.csv", "state.json", "last.keras"])
def test_planted_links_in_a_run_are_refused_never_followed(tmp_path, train_points, name,
                                                           capsys):
    from ai8x_nb.cli import main

    run = _one_epoch_copy(train_points, tmp_path / "run")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    assert main(["train", "--run-dir", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and name in err and "Remove the link" in err
    assert victim.read_text() == "precious\n"


def test_planted_export_lock_link_is_refused(tmp_path, export_models):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / ".tiny.lock").symlink_to(victim)
    with pytest.raises(_atomic.SymlinkError, match="symbolic link"):
        export_model(export_models[0], tmp_path / "tiny", targets=("synthesis",))
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tiny.lock", "victim"]


@pytest.mark.parametrize("edit, message", [
    ({"name": "../../escape"}, "expected a plain file name"),
    ({"name": ".."}, "expected a plain file name"),
    ({"artifacts": {"synthesis_yaml": "../../x.yaml"}}, "inside the export folder"),
    ({"artifacts": {"synthesis_yaml": "/etc/passwd"}}, "inside the export folder"),
    ([1, 2], "holds a JSON list"),
    ({"name": None}, "name=None"),
])
def test_hostile_manifests_are_refused_before_anything_is_written(tmp_path, small_export,
                                                                  fake_tool, edit, message,
                                                                  capsys):
    from ai8x_nb.cli import main

    path = small_export / "manifest.json"
    data = json.loads(path.read_text())
    data = edit if isinstance(edit, list) else {**data, **edit}
    path.write_text(json.dumps(data))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["synthesize", str(small_export), "--synthesis-dir",
                 fake_tool["synthesis_dir"], "--python", sys.executable]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_unreadable_sample_outputs_are_clear_errors(tmp_path, small_export, fake_tool):
    from ai8x_nb.synthesis import synthesize

    path = small_export / "sampleoutput.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SynthesisError, match="sample output|truncated"):
        synthesize(small_export, **fake_tool)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SynthesisError, match="sample output|not a numeric array"):
        synthesize(small_export, **fake_tool)


# ------------------------------------------------------------------ full and read-only disks
@contextlib.contextmanager
def _tmpfs(folder, size):
    if os.geteuid() != 0:
        pytest.skip("a tiny tmpfs needs root (mount); run the suite as root to check a full "
                    "and a read-only file system")
    folder.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder, keep=0):
    """Fill the file system of `folder` to the last byte, then free `keep` bytes."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    if keep:
        os.truncate(folder / "filler", os.path.getsize(folder / "filler") - keep)


def test_full_and_read_only_disks_are_clear_errors_and_keep_the_run(tmp_path, train_points,
                                                                    export_models, capsys):
    from ai8x_nb.cli import main

    with _tmpfs(tmp_path / "fs", "4m") as fs:
        run = _one_epoch_copy(train_points, fs / "run")
        state = (run / "state.json").read_bytes()
        _fill(fs)
        assert main(["train", "--run-dir", str(run), "--epochs", "2"]) == 2
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ") and "No space left on device" in last, err
        assert "Traceback" not in err
        assert (run / "state.json").read_bytes() == state and _check_whole(run) == 1
        assert not [p for p in run.iterdir() if _is_leftover(p.name)]
        _fill(fs)
        with pytest.raises(ExportError, match="No space left"):
            export_model(export_models[0], fs / "tiny", targets=("synthesis",))
        assert not [p.name for p in fs.iterdir() if ".partial-" in p.name]
        (fs / "filler").unlink()
        export_model(export_models[0], fs / "tiny", targets=("synthesis",))
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        assert main(["train", "--run-dir", str(run), "--epochs", "2"]) == 2
        err = capsys.readouterr().err
        assert "Read-only file system" in err.strip().splitlines()[-1], err
        assert _check_whole(run) == 1
        with pytest.raises(ExportError, match="Read-only file system"):
            export_model(export_models[1], fs / "tiny", targets=("synthesis",))
        assert Manifest.load(fs / "tiny").name == "tiny"


# ------------------------------------------------------------------ clean errors, not tracebacks
def _last_error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("file, edit, message", [
    ("config.json", {"seed": "abc"}, "seed='abc'"),
    ("config.json", {"batch_size": "abc"}, "batch_size='abc'"),
    ("config.json", {"dataset_kwargs": [1, 2]}, "dataset_kwargs=[1, 2]"),
    ("state.json", {"plateau": {"best": "q", "wait": 0, "cooldown_counter": 0}},
     "plateau.best='q'"),
    ("state.json", {"checkpoint": "../../victim.keras"}, "names the checkpoint"),
])
def test_hand_edited_run_files_are_clear_errors_before_anything_is_written(
        tmp_path, train_points, file, edit, message, capsys):
    from ai8x_nb.cli import main

    run = _one_epoch_copy(train_points, tmp_path / "run")
    data = json.loads((run / file).read_text())
    (run / file).write_text(json.dumps({**data, **edit}))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert main(["train", "--run-dir", str(run), "--epochs", "2"]) == 2
    last = _last_error(capsys)
    assert message in last and "Restore" in last, last
    assert {p.name: p.read_bytes() for p in run.iterdir()
            if p.is_file() and p.name != ".lock"} == before


def test_other_remaining_tracebacks_are_clear_errors(tmp_path, train_points, capsys):
    from ai8x_nb import notebooks, parameters
    from ai8x_nb.cli import main
    from ai8x_nb.errors import QuantizationError
    from ai8x_nb.quantize import load_policy
    from ai8x_nb.spec import SpecError, load_spec, normalize_spec

    run = _one_epoch_copy(train_points, tmp_path / "run")
    assert main(["train", "--run-dir", str(run / "config.json")]) == 2
    assert "is a file, not a run folder" in _last_error(capsys)
    (run / "history.csv").write_bytes(b"\x00\xff\xfe binary")
    assert main(["train", "--run-dir", str(run), "--epochs", "2"]) == 2
    assert "is not a readable history" in _last_error(capsys)
    assert main(["train", "--dataset", "mnist", "--epochs", "1", "--seed",
                 "99999999999999999999", "--data-dir", str(DATA), "--limit", "32",
                 "--out", str(tmp_path / "logs")]) == 2
    assert "seed=99999999999999999999" in _last_error(capsys)
    assert not (tmp_path / "logs").exists()
    from ai8x_nb.parameters import PARAMETERS

    params = {p.name: p.default for p in PARAMETERS}
    with pytest.raises(parameters.ParameterError, match="and <= 4294967295"):
        parameters.check_parameters({**params, "seed": 99999999999999999999})
    assert notebooks.parse_value("yes") == "yes" and notebooks.parse_value("true") is True
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(b"{not json")
    assert main(["run", str(bad), "--out", str(tmp_path / "nb")]) == 2
    assert "is not a readable Jupyter notebook" in _last_error(capsys)
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(b"start_epoch: \xff\xfe\n")
    with pytest.raises(QuantizationError, match="UTF-8"):
        load_policy(str(policy))
    with pytest.raises(QuantizationError, match="none of which ai8x-nb uses"):
        load_policy({"strat_epoch": 2, "wieght_bits": 8})
    for row, text in [({"type": "conv2d", "filters": "x"}, "filters='x'"),
                      ({"type": "conv2d", "filters": 2.5}, "filters=2.5"),
                      ({"type": "reshape", "target_shape": "abc"}, "target_shape='abc'")]:
        with pytest.raises(SpecError, match=text):
            normalize_spec([row])
    spec = tmp_path / "m.spec.json"
    spec.write_text('[{"type": "conv2d", "filters": NaN}]')
    with pytest.raises(SpecError, match="NaN"):
        load_spec(spec)


def test_a_corrupt_kws_cache_is_rebuilt(tmp_path):
    from ai8x_nb.datasets import kws

    cache = tmp_path / "kws_abc.npz"
    cache.write_bytes(b"PK\x03\x04 not a zip at all")
    assert kws._read_cache(cache) is None  # ignored: the caller processes the data again


def test_a_bad_policy_override_leaves_no_run_folder(tmp_path):
    from ai8x_nb.errors import QuantizationError

    policy = {"start_epoch": 1, "weight_bits": 8, "overrides": {"nope": {"weight_bits": 4}}}
    with pytest.raises(QuantizationError, match="'nope'"):
        train(_tiny(), "mnist", out=str(tmp_path / "logs"), qat_policy=policy, **RUN)
    assert not (tmp_path / "logs").exists()


def test_a_wrong_idx_magic_names_the_dimensions_not_a_long_shape(tmp_path):
    import gzip

    from ai8x_nb.datasets import idx
    from ai8x_nb.errors import DatasetError

    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 150]) + bytes(700)))
    with pytest.raises(DatasetError, match="declares 150 dimensions, expected 1") as err:
        idx.read_idx(path, expected_shape=(100,))
    assert len(str(err.value)) < 300
