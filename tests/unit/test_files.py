"""write_atomic, the one way devpictl writes a file: all of it or none of it, with the mode asked for."""

from __future__ import annotations

import os
import stat

import pytest

from devpictl import files
from devpictl.files import write_atomic


def test_new_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a" / "f", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "f").stat().st_mode) == 0o640
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f"]


def test_a_new_directory_is_private(tmp_path):
    write_atomic(tmp_path / "state" / "f", b"x")
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_replaces_the_file_with_the_mode_asked_for(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"old, and longer than the new one")
    path.chmod(0o644)
    write_atomic(path, b"new", mode=0o600)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_bytes(b"old")

    def replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError):
        write_atomic(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


@pytest.mark.parametrize("durable", [True, False])
def test_durable_also_syncs_the_directory(tmp_path, monkeypatch, durable):
    synced: list = []
    monkeypatch.setattr(files, "sync_directory", synced.append)
    write_atomic(tmp_path / "f", b"x", durable=durable)
    assert synced == ([tmp_path] if durable else [])


def test_sync_directory_needs_a_directory_that_exists(tmp_path):
    files.sync_directory(tmp_path)
    with pytest.raises(FileNotFoundError):
        files.sync_directory(tmp_path / "gone")
