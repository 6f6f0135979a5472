"""Planning, recording and undoing pip-config's changes: byte-exact undo, and a write that fails changes nothing."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest

from devpictl.clientconfig import manifest as mf
from devpictl.clientconfig import registry
from devpictl.errors import Conflict, DevpictlError
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL


class TestManifestAndUndo:
    @pytest.fixture
    def manifest(self, tmp_path):
        return mf.Manifest(tmp_path / "data" / "clientconfig")

    def write(self, manifest, path, url, tool="pip"):
        change = mf.plan_change(registry.get(tool), path, url, manifest=manifest)
        return change, mf.apply_change(change, manifest)

    def test_keeps_the_first_original_and_restores_it_exactly(self, tmp_path, manifest):
        (tmp_path / "conf").mkdir()
        path = tmp_path / "conf" / "pip.conf"
        original = b"# mine\r\n[global]\r\ntimeout = 60\r\n"
        path.write_bytes(original)
        path.chmod(0o640)
        _, applied = self.write(manifest, path, HTTP_URL)
        assert applied.first and applied.backup.read_bytes() == original
        assert stat.S_IMODE(applied.backup.stat().st_mode) == 0o600
        assert path.read_bytes() == (
            b"# mine\r\n[global]\r\ntimeout = 60\r\nindex-url = " + HTTP_URL.encode() + b"\r\ntrusted-host = 127.0.0.1\r\n"
        )
        _, again = self.write(manifest, path, HTTPS_URL)
        assert not again.first and again.backup.read_bytes() == original
        assert [p.name for p in path.parent.iterdir()] == ["pip.conf"]  # nothing left beside the file

        path.chmod(0o600)
        (restore,) = mf.plan_undo(manifest, ("pip",))
        mf.apply_restore(restore, manifest)
        assert path.read_bytes() == original
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert manifest.entries() == {} and list(manifest.backups.iterdir()) == []

    def test_a_file_that_did_not_exist_is_deleted_by_undo(self, tmp_path, manifest):
        path = tmp_path / "uv" / "uv.toml"
        self.write(manifest, path, HTTP_URL, "uv")
        assert manifest.get(path)["backup"] is None
        self.write(manifest, path, HTTPS_URL, "uv")  # still remembered as absent
        (restore,) = mf.plan_undo(manifest)
        assert restore.original is None
        mf.apply_restore(restore, manifest)
        assert not path.exists()

    def test_writes_keep_the_mode(self, tmp_path, manifest):
        path = tmp_path / "config.toml"
        path.write_text('[repository.private]\npassword = "s3cret"\n')
        path.chmod(0o600)
        self.write(manifest, path, HTTP_URL, "pdm")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert tomllib.loads(path.read_text())["repository"]["private"]["password"] == "s3cret"

    def test_undo_refuses_a_file_changed_since(self, tmp_path, manifest):
        path = tmp_path / "pip.conf"
        self.write(manifest, path, HTTP_URL)
        path.write_text(path.read_text() + "timeout = 5\n")
        with pytest.raises(Conflict, match=r"pip.conf changed since devpictl wrote it.*--force"):
            mf.plan_undo(manifest)
        (restore,) = mf.plan_undo(manifest, force=True)
        mf.apply_restore(restore, manifest)
        assert not path.exists()

    def test_nothing_to_undo(self, manifest):
        assert mf.plan_undo(manifest, ("uv",)) == []

    def test_adopts_an_older_devpictls_backup(self, tmp_path, manifest):
        path = tmp_path / "pip.conf"
        (tmp_path / "pip.conf.devpictl-backup").write_bytes(b"[global]\ntimeout = 1\n")
        path.write_text(f"[global]\ntimeout = 1\nindex-url = {HTTP_URL}\n")
        self.write(manifest, path, HTTPS_URL)
        mf.apply_restore(mf.plan_undo(manifest)[0], manifest)
        assert path.read_bytes() == b"[global]\ntimeout = 1\n"

    def test_writes_through_a_symlink(self, tmp_path, manifest):
        target = tmp_path / "dotfiles" / "pip.conf"
        target.parent.mkdir()
        target.write_text("[global]\ntimeout = 60\n")
        link = tmp_path / "pip.conf"
        link.symlink_to(target)
        self.write(manifest, link, HTTP_URL)
        assert link.is_symlink()
        assert HTTP_URL in target.read_text()
        mf.apply_restore(mf.plan_undo(manifest, paths=[link])[0], manifest)
        assert link.is_symlink() and target.read_text() == "[global]\ntimeout = 60\n"

    def test_a_failed_write_forgets_the_record(self, tmp_path, manifest, monkeypatch):
        path = tmp_path / "pip.conf"
        change = mf.plan_change(registry.get("pip"), path, HTTP_URL, manifest=manifest)

        real_replace = os.replace

        def replace(src, dst):
            if dst == path:
                raise PermissionError(13, "Permission denied")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(DevpictlError, match=r"cannot write .*pip.conf \(Permission denied\)"):
            mf.apply_change(change, manifest)
        monkeypatch.undo()
        assert manifest.entries() == {} and not path.exists()

    def test_diff(self, tmp_path, manifest):
        path = tmp_path / "pip.conf"
        path.write_text("[global]\ntimeout = 60\n")
        change = mf.plan_change(registry.get("pip"), path, HTTP_URL, manifest=manifest)
        assert change.diff() == (
            f"--- {path}\n+++ {path}\n@@ -1,2 +1,4 @@\n [global]\n timeout = 60\n+index-url = {HTTP_URL}\n+trusted-host = 127.0.0.1\n"
        )
