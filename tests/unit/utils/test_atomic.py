"""Atomic outputs: written whole or not at all, flushed, and without walking what lies beside them."""

from __future__ import annotations

import os

import pytest

from hybridir_utils.utils import atomic


@pytest.fixture
def fsyncs(monkeypatch):
    """The paths os.fsync was called on."""
    seen = []
    real_open = os.open

    def fake_fsync(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(atomic.os, "fsync", fake_fsync)
    monkeypatch.setattr(atomic.os, "open", real_open)
    return seen


def test_a_file_write_flushes_the_file_and_its_folders_entries_only(tmp_path, fsyncs):
    """Writing one table beside 40 trained-model files flushed all 40 (a build folder: minutes per write)."""
    for k in range(40):
        (tmp_path / f"model-{k}.bin").write_bytes(b"x")
    atomic.write_text(tmp_path / "runs.csv", "a\n1\n")
    assert (tmp_path / "runs.csv").read_text() == "a\n1\n"
    assert len(fsyncs) == 2 and fsyncs[1] == str(tmp_path)  # the temporary file, then the folder's entries


def test_a_folder_replacement_flushes_every_new_file(tmp_path, fsyncs):
    with atomic.atomic_dir(tmp_path / "out") as tmp:
        for k in range(3):
            (tmp / f"t{k}.csv").write_text("x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t0.csv", "t1.csv", "t2.csv"]
    assert len(fsyncs) == 3 + 1 + 1  # three files, the new folder, then the parent's entries


def test_a_failed_write_leaves_the_old_file(tmp_path):
    atomic.write_text(tmp_path / "t.csv", "old")

    def boom(path):
        path.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.atomic_write(tmp_path / "t.csv", boom)
    assert (tmp_path / "t.csv").read_text() == "old" and len(list(tmp_path.iterdir())) == 1
