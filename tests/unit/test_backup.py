"""Backup and restore with a fake engine: the archive is checked whole, and --force keeps the old data until the import worked."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from devpictl import backup as bkp
from devpictl import restore as rst
from devpictl.errors import BadInput, DevpictlError, DevpiError, Interrupted
from devpictl.image import DEFAULT_IMAGE
from devpictl.layout import DEVPI_UID
from devpictl.reporter import QuietReporter
from devpictl.settings import Instance, ensure_root_password, read_root_password
from tests.unit.fakes import FakeContainer, FakeEngine, backup_archive


class RestoreEngine(FakeEngine):
    """An engine where the restore container runs: its execs answer through ``answer`` and land in ``calls``."""

    def __init__(self, answer, **kwargs):
        super().__init__(images=(DEFAULT_IMAGE,), **kwargs)
        self.answer = answer
        self.archives: list[bytes] = []
        self.containers.create = self.create_helper
        self.volumes.create = lambda name, **kw: (self.calls.append("volumes.create"), self.volume_names.add(name))
        self.removed_volumes: list[str] = []

    def create_helper(self, image, **kwargs):
        self.calls.append("containers.create")
        self.helper_kwargs = kwargs
        engine = self

        class Helper(FakeContainer):
            def put_archive(self, path, data):
                engine.archives.append(data if isinstance(data, bytes) else data.read())
                return super().put_archive(path, data)

            def remove(self, **kw):
                engine.calls.append("helper.remove")

        def answer(cmd, env):
            self.calls.append(f"exec {cmd[0]} {cmd[-1] if cmd[0] == 'sh' else ''}".strip())
            return self.answer(cmd)

        return Helper(self, "restore-helper", exec_answers=answer)

    def _get_volume(self, name):
        volume = super()._get_volume(name)
        volume.remove = lambda: (self.calls.append("volume.remove"), self.volume_names.discard(name))
        return volume


def ok(cmd):
    return 0, b""


def failing(program: str, answer=(1, b"devpi-import: fatal: something broke\n")):
    def handle(cmd):
        if program in cmd[0] or program in " ".join(cmd):
            if isinstance(answer, type) and issubclass(answer, BaseException):
                raise answer()
            return answer
        return 0, b""

    return handle


@pytest.fixture
def archive(tmp_path):
    return backup_archive(tmp_path / "backup.tar.gz")


def running_cache(engine: RestoreEngine) -> FakeContainer:
    ensure_root_password(Instance("default"))
    return engine.add("default")


def cache_container_removed(engine) -> bool:
    return "container.stop" in engine.calls  # ctr.remove stops the cache; the helper is only removed


class TestRestoreForce:
    def test_the_old_container_goes_only_after_the_import_and_the_password_worked(self, archive):
        engine = RestoreEngine(ok)
        running_cache(engine)
        result = rst.restore(engine, Instance("default"), archive, DEFAULT_IMAGE, force=True, reporter=QuietReporter())
        calls = engine.calls
        assert calls.index("exec devpi-import") < calls.index("container.stop")
        assert calls.index("exec devpi-import") < calls.index("exec sh " + rst.SWAP)
        assert [c for c in calls if "devpi-passwd" in c][0] and calls.index("container.stop") < calls.index("exec sh " + rst.SWAP)
        assert "volume.remove" not in calls  # the data is swapped inside the volume, never deleted first
        assert result.restart is False  # nothing remembered: the user starts it
        # The import container has no network and the cache's volume at /data.
        assert engine.helper_kwargs["network_mode"] == "none"
        assert engine.helper_kwargs["volumes"] == {"devpictl-default-data": {"bind": "/data", "mode": "rw"}}

    @pytest.mark.parametrize("status, restart", [("running", True), ("exited", False)])
    def test_a_running_cache_with_remembered_settings_is_started_again(self, archive, status, restart):
        from devpictl.precedence import save_remembered

        engine = RestoreEngine(ok)
        running_cache(engine).status = status
        save_remembered(Instance("default"), {"port": 3141})
        result = rst.restore(engine, Instance("default"), archive, DEFAULT_IMAGE, force=True, reporter=QuietReporter())
        assert result.restart is restart

    @pytest.mark.parametrize("program", ["devpi-import", "devpi-passwd"])
    def test_a_failed_import_keeps_the_old_data_and_container(self, archive, program):
        engine = RestoreEngine(failing(program))
        running_cache(engine)
        before = read_root_password(Instance("default"))
        with pytest.raises(DevpiError, match="nothing was changed"):
            rst.restore(engine, Instance("default"), archive, DEFAULT_IMAGE, force=True, reporter=QuietReporter())
        assert not cache_container_removed(engine)
        assert "volume.remove" not in engine.calls
        assert not any(rst.SWAP in c for c in engine.calls)
        assert engine.calls.count("exec rm") == 2  # the stage dir: emptied before, removed after
        assert read_root_password(Instance("default")) == before

    def test_an_interrupted_import_keeps_the_old_data_and_says_so(self, archive):
        engine = RestoreEngine(failing("devpi-import", KeyboardInterrupt))
        running_cache(engine)
        with pytest.raises(Interrupted, match="data of cache 'default' is unchanged"):
            rst.restore(engine, Instance("default"), archive, DEFAULT_IMAGE, force=True, reporter=QuietReporter())
        assert not cache_container_removed(engine)
        assert "volume.remove" not in engine.calls

    def test_a_failed_restore_into_a_new_cache_leaves_no_volume_and_no_password(self, archive):
        engine = RestoreEngine(failing("devpi-import"))
        with pytest.raises(DevpiError):
            rst.restore(engine, Instance("fresh"), archive, DEFAULT_IMAGE, force=False, reporter=QuietReporter())
        assert "volumes.create" in engine.calls and "volume.remove" in engine.calls
        assert not Instance("fresh").password_file.exists()


class TestWhatTheEngineExtracts:
    def test_only_files_and_directories_owned_by_devpi_without_special_bits(self, archive):
        engine = RestoreEngine(ok)
        rst.restore(engine, Instance("fresh"), archive, DEFAULT_IMAGE, force=False, reporter=QuietReporter())
        [handed] = [a for a in engine.archives if b"dataindex.json" in a]
        with tarfile.open(fileobj=io.BytesIO(handed)) as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            assert bkp.MANIFEST not in names
            assert all(m.name.startswith(bkp.EXPORT_DIR) for m in members)
            assert all(m.isreg() or m.isdir() for m in members)
            assert all(m.uid == DEVPI_UID and m.gid == DEVPI_UID for m in members)
            # Every directory is in the tar, before its files: the engine makes none of them itself (as root).
            dirs = [(m.name, m.type, m.mode) for m in members if m.isdir()]
            assert dirs == [(d, tarfile.DIRTYPE, 0o700) for d in (bkp.EXPORT_DIR, f"{bkp.EXPORT_DIR}/root", f"{bkp.EXPORT_DIR}/root/dev")]
            assert all(names.index(str(PurePosixPath(n).parent)) < names.index(n) for n in names if n != bkp.EXPORT_DIR)
            assert all(m.mode == 0o600 for m in members if not m.isdir())
            wheel = tar.extractfile(f"{bkp.EXPORT_DIR}/root/dev/six-1.16.0-py2.py3-none-any.whl").read()
        assert wheel == b"wheel bytes " * 100


class TestReadManifest:
    def test_an_archive_without_export_data(self, tmp_path):
        path = tmp_path / "only-manifest.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            data = b'{"format": 1}'
            info = tarfile.TarInfo(bkp.MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        with pytest.raises(Exception, match="no devpi-export data in it") as info:
            bkp.read_manifest(path)
        assert str(path) in str(info.value)

    @pytest.mark.parametrize("manifest", [None, b'{"format": 2}', b"[1]"], ids=["missing", "other-format", "not-an-object"])
    def test_the_manifest_is_checked(self, tmp_path, manifest):
        path = tmp_path / "m.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            members = [(f"{bkp.EXPORT_DIR}/dataindex.json", b'{"dumpversion": "2", "users": {}, "indexes": {}}')]
            if manifest is not None:
                members.append((bkp.MANIFEST, manifest))
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        with pytest.raises(Exception, match=f"no {bkp.MANIFEST} of format 1"):
            bkp.read_manifest(path)

    @pytest.mark.parametrize(
        "dataindex, fragment",
        [
            ({"dumpversion": "2", "users": [], "indexes": {}}, "lists no users and indexes"),
            ({"dumpversion": "1", "users": {}, "indexes": {}}, None),
            ({"dumpversion": 2, "users": {}, "indexes": {}}, "dump version 1 or 2"),
        ],
    )
    def test_dataindex_is_checked(self, tmp_path, dataindex, fragment):
        path = backup_archive(tmp_path / "a.tar.gz", dataindex=dataindex)
        if fragment is None:
            assert bkp.read_manifest(path)["format"] == bkp.FORMAT
            return
        with pytest.raises(Exception, match=fragment) as info:
            bkp.read_manifest(path)
        assert str(path) in str(info.value)


class TestBackupExportDir:
    def test_each_backup_exports_to_its_own_directory(self, tmp_path):
        engine = FakeEngine()
        cache = engine.add("default").cache
        cache.export_error = DevpiError("devpi-export failed (stop here): see `devpictl logs`")
        for n in range(2):
            with pytest.raises(DevpiError):
                bkp.backup(engine, Instance("default"), tmp_path / f"b{n}.tar.gz", include_files=False, reporter=QuietReporter())
        seen = [workdir for workdir, _ in cache.exported]
        assert len(set(seen)) == 2 and all(s.startswith("/data/.devpictl-export-") for s in seen)
        assert cache.removed_paths == seen  # each export goes, failed or not


class TestTheSwap:
    """bkp.swap_script, run by a real shell on directories made here."""

    @staticmethod
    def run(tmp_path, *, imported: bool) -> int:
        import subprocess

        server, stage = tmp_path / "server", tmp_path / "stage"
        (server / "old.txt").parent.mkdir(parents=True)
        (server / "old.txt").write_text("old data")
        stage.mkdir()
        if imported:
            (stage / "server").mkdir()
            (stage / "server" / "new.txt").write_text("imported")
        return subprocess.run(["sh", "-c", rst.swap_script(str(server), str(stage))], capture_output=True).returncode

    def test_the_imported_dir_takes_the_old_ones_place(self, tmp_path):
        assert self.run(tmp_path, imported=True) == 0
        assert (tmp_path / "server" / "new.txt").read_text() == "imported"
        assert (tmp_path / "stage" / "old" / "old.txt").exists()  # removed by the cleanup after

    def test_a_swap_that_fails_puts_the_old_data_back(self, tmp_path):
        assert self.run(tmp_path, imported=False) != 0
        assert (tmp_path / "server" / "old.txt").read_text() == "old data"

    def test_a_failed_swap_says_the_data_is_unchanged_and_how_to_start_the_cache(self, archive):
        engine = RestoreEngine(swap_fails)
        running_cache(engine)
        with pytest.raises(DevpiError) as info:
            rst.restore(engine, Instance("default"), archive, DEFAULT_IMAGE, force=True, reporter=QuietReporter())
        assert "the data of cache 'default' is unchanged; its container was removed: `devpictl up --name default` starts it again" in str(
            info.value
        )

    def test_an_archive_of_files_only_gets_every_directory(self, tmp_path):
        """Tools that list only files make such archives; the engine would make the directories root's."""
        path = tmp_path / "files-only.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for name, data in [(bkp.MANIFEST, b'{"format": 1}'), (f"{bkp.EXPORT_DIR}/root/dev/x-1.0.tar.gz", b"x")]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        out = io.BytesIO()
        rst.export_tar(path, out)
        out.seek(0)
        with tarfile.open(fileobj=out) as clean:
            assert [(m.name, m.isdir(), m.mode, m.uid) for m in clean] == [
                (bkp.EXPORT_DIR, True, 0o700, DEVPI_UID),
                (f"{bkp.EXPORT_DIR}/root", True, 0o700, DEVPI_UID),
                (f"{bkp.EXPORT_DIR}/root/dev", True, 0o700, DEVPI_UID),
                (f"{bkp.EXPORT_DIR}/root/dev/x-1.0.tar.gz", False, 0o600, DEVPI_UID),
            ]


def swap_fails(cmd):
    return (1, b"mv: cannot move '/data/.devpictl-restore/server'\n") if cmd[0] == "sh" and cmd[-1] == rst.SWAP else (0, b"")


class TestBounds:
    """An archive is refused at the first header that would take more disk or memory than is there."""

    def test_an_archive_expanding_beyond_the_free_space_is_refused(self, archive, monkeypatch):
        import shutil
        from types import SimpleNamespace

        monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
        with pytest.raises(BadInput, match="expands to more than the 0 MiB free"):
            bkp.read_manifest(archive)

    def test_a_huge_dataindex_is_refused_before_it_is_read(self, tmp_path, monkeypatch):
        monkeypatch.setitem(bkp.MAX_READ_BYTES, f"{bkp.EXPORT_DIR}/dataindex.json", 10)
        path = backup_archive(tmp_path / "big.tar.gz", dataindex={"dumpversion": "2", "users": {}, "indexes": {}, "pad": "x" * 100})
        with pytest.raises(BadInput, match="dataindex.json is 0 MiB, more than devpictl reads"):
            bkp.read_manifest(path)


LONG_WHEEL = "root/pypi/charset-normalizer/3.5.3/charset_normalizer-3.5.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def engine_export(workdir: str, *, fmt: int = tarfile.PAX_FORMAT, extra: tuple = ()) -> bytes:
    """What the engine's get_archive hands back for devpi-export's directory: PAX headers for long names, as Docker writes."""
    top = workdir.rsplit("/", 1)[-1]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        directory = tarfile.TarInfo(top)
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        members = [("dataindex.json", b'{"dumpversion": "2", "users": {"root": {}}, "indexes": {}}'), (LONG_WHEEL, b"wheel" * 50), *extra]
        for name, data in members:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def exporting_cache(engine: FakeEngine, **archive_kwargs) -> FakeContainer:
    container = engine.add("default")
    exported = container.cache.exported
    container.get_archive = lambda path: ([engine_export(exported[-1][0], **archive_kwargs)], {})
    return container


class TestBackupWritesWhatRestoreTakes:
    @pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu"])
    def test_a_long_name_lands_under_the_export_dir(self, tmp_path, fmt):
        exporting_cache(engine := FakeEngine(), fmt=fmt)
        path = tmp_path / "b.tar.gz"
        bkp.backup(engine, Instance("default"), path, include_files=True, reporter=QuietReporter())
        assert bkp.read_manifest(path)["include_files"] is True
        with tarfile.open(path) as tar:
            assert tar.extractfile(f"{bkp.EXPORT_DIR}/{LONG_WHEEL}").read() == b"wheel" * 50

    def test_an_archive_restore_would_refuse_is_not_kept(self, tmp_path, monkeypatch):
        exporting_cache(engine := FakeEngine())
        monkeypatch.setattr(bkp, "check_archive", lambda path: (_ for _ in ()).throw(bkp.ArchiveUnusable("no manifest")))
        (tmp_path / "out").mkdir()
        with pytest.raises(DevpictlError, match="failed the check `devpictl restore` makes \\(no manifest\\)"):
            bkp.backup(engine, Instance("default"), tmp_path / "out" / "b.tar.gz", include_files=True, reporter=QuietReporter())
        assert list((tmp_path / "out").iterdir()) == []  # neither the archive nor its partial file

    def test_a_path_that_cannot_be_written_is_one_line_before_anything_runs(self, monkeypatch):
        from devpictl import container as ctr
        from tests.unit.clihelp import invoke

        exporting_cache(engine := FakeEngine())
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        result = invoke("backup", "/proc/x.tar.gz")
        assert result.exit_code == 2
        assert result.stderr.startswith("error: cannot write /proc/x.tar.gz (") and result.stderr.count("\n") == 1, result.stderr
        assert "give a PATH in a directory you can write" in result.stderr
        assert engine.by_name["devpictl-default"].cache.exported == []  # devpi-export never ran


class TestSettingsCarryOver:
    def backup_of(self, tmp_path, settings: dict, ca_text: str | None = "PEM") -> Path:
        from devpictl.precedence import save_remembered

        if ca_text is not None:
            (tmp_path / "ca.pem").write_text(ca_text)
        save_remembered(Instance("default"), settings)
        exporting_cache(engine := FakeEngine())
        path = tmp_path / "b.tar.gz"
        bkp.backup(engine, Instance("default"), path, include_files=True, reporter=QuietReporter())
        return path

    def test_a_new_cache_gets_every_remembered_setting_and_the_ca_bundle(self, tmp_path):
        from devpictl.precedence import FIELDS, load_remembered

        ca = tmp_path / "ca.pem"
        settings = {
            "host": "0.0.0.0",
            "port": 3150,
            "image": DEFAULT_IMAGE,
            "network": "corp",
            "ca_bundle": ca,
            "probe_project": "six",
            "front": False,
            "offline": True,
            "memory": "1g",
            "pids_limit": 256,
            "max_bytes": 10**9,
            "replica_of": "http://primary:3141",
            "min_release_age": 604800,
            "allow_newer": ("six==1.17.0",),
            "deny": ("evil",),
            "allow_only": ("six", "pip"),
            "tls": "self-signed",
            "tls_names": ("cache.lan",),
            "http": "refuse",
            "read_auth": True,
            "fallback": ["tuna"],
        }
        assert set(settings) == set(FIELDS) | {"fallback"}  # a new setting must be carried too: add it here
        path = self.backup_of(tmp_path, settings)
        result = rst.restore(
            RestoreEngine(ok, networks=("corp",)), Instance("copy"), path, DEFAULT_IMAGE, force=False, reporter=QuietReporter()
        )
        assert load_remembered(Instance("copy")) == settings
        assert any("kept the settings of cache 'default'" in a for a in result.actions)

    def test_a_ca_bundle_gone_from_this_machine_comes_from_the_archive(self, tmp_path):
        from devpictl.precedence import load_remembered

        path = self.backup_of(tmp_path, {"ca_bundle": tmp_path / "ca.pem"}, ca_text="-----BEGIN CERTIFICATE-----\n")
        (tmp_path / "ca.pem").unlink()
        rst.restore(RestoreEngine(ok), Instance("copy"), path, DEFAULT_IMAGE, force=False, reporter=QuietReporter())
        copy = load_remembered(Instance("copy"))["ca_bundle"]
        assert copy == Instance("copy").ca_bundle_copy and copy.read_text() == "-----BEGIN CERTIFICATE-----\n"

    def test_the_image_is_the_one_restore_used_and_a_taken_port_is_left(self, tmp_path):
        from devpictl.precedence import load_remembered

        path = self.backup_of(tmp_path, {"image": "old:1", "port": 3141}, ca_text=None)
        engine = RestoreEngine(ok)
        engine.add("default", port=3141)  # the cache backed up, still running here
        result = rst.restore(engine, Instance("copy"), path, DEFAULT_IMAGE, force=False, reporter=QuietReporter())
        assert load_remembered(Instance("copy")) == {"image": DEFAULT_IMAGE}
        assert any("port 3141 belongs to another cache" in a and "--port" in a for a in result.actions)

    def test_a_network_this_engine_lacks_is_left_for_up(self, tmp_path):
        from devpictl.precedence import load_remembered

        path = self.backup_of(tmp_path, {"network": "corp", "probe_project": "six"}, ca_text=None)
        result = rst.restore(RestoreEngine(ok), Instance("copy"), path, DEFAULT_IMAGE, force=False, reporter=QuietReporter())
        assert load_remembered(Instance("copy")) == {"probe_project": "six"}
        assert any("network 'corp' is not on this engine" in a and "--network" in a for a in result.actions)

    def test_a_cache_keeps_its_own_settings(self, tmp_path):
        from devpictl.precedence import load_remembered, save_remembered

        path = self.backup_of(tmp_path, {"probe_project": "six"}, ca_text=None)
        engine = RestoreEngine(ok)
        running_cache(engine)
        save_remembered(Instance("default"), {"probe_project": "pip"})
        rst.restore(engine, Instance("default"), path, DEFAULT_IMAGE, force=True, reporter=QuietReporter())
        assert load_remembered(Instance("default")) == {"probe_project": "pip"}
