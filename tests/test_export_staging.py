"""The export folder's staging: stale partial folders are cleaned, the final rename never races."""

import os
import subprocess
import sys
import threading
import time

import pytest

from ai8x_nb.errors import ExportError
from ai8x_nb.export.package import staging_folder


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partials_of_dead_exports_are_removed(tmp_path):
    dead = _dead_pid()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stale = [tmp_path / f".mnist.partial-{dead}-ab12", tmp_path / f".mnist.old-{dead}-cd34",
             tmp_path / ".mnist.partial-wmdoy71i"]  # an older version's name, no pid
    live = [tmp_path / f".mnist.partial-{other.pid}-ef56",  # a live (older) exporter's
            tmp_path / ".mnist.partial-fresh123",  # recent, owner unknown
            tmp_path / f".cifar10.partial-{dead}-gh78"]  # another export's
    for folder in stale + live:
        folder.mkdir()
        (folder / "half.bin").write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(stale[2], (old, old))
    try:
        with staging_folder(tmp_path / "mnist") as tmp:
            (tmp / "manifest.json").write_text("{}")
    finally:
        other.kill()
        other.wait()
    assert (tmp_path / "mnist" / "manifest.json").is_file()
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in live)


def test_failed_export_leaves_the_old_one_and_no_partial(tmp_path):
    with staging_folder(tmp_path / "m") as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staging_folder(tmp_path / "m") as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("boom")
    assert (tmp_path / "m" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]


def test_concurrent_exports_and_deletions_never_crash_the_rename(tmp_path):
    """Two exporters of one name plus someone deleting it: every export ends complete."""
    final = tmp_path / "mnist"
    errors, stop = [], threading.Event()

    def export(tag):
        try:
            for i in range(15):
                with staging_folder(final) as tmp:
                    (tmp / "a.txt").write_text(f"{tag}{i}")
                    (tmp / "b.txt").write_text(f"{tag}{i}")
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    def delete():
        import shutil

        while not stop.is_set():
            shutil.rmtree(final, ignore_errors=True)

    threads = [threading.Thread(target=export, args=(t,)) for t in "xy"]
    deleter = threading.Thread(target=delete)
    deleter.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    deleter.join()
    assert errors == []
    with staging_folder(final) as tmp:
        (tmp / "a.txt").write_text("last")
    assert (final / "a.txt").read_text() == "last"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mnist.lock", "mnist"]


def test_final_name_taken_by_a_file_is_a_named_error(tmp_path):
    (tmp_path / "m").write_text("not a folder")
    with pytest.raises(ExportError, match="Cannot move the finished export to"):
        with staging_folder(tmp_path / "m") as tmp:
            (tmp / "a.txt").write_text("x")
    assert (tmp_path / "m").read_text() == "not a folder"
    assert not list(tmp_path.glob(".m.partial-*"))
