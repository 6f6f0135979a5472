"""Backups, restores and a devpi upgrade on a real engine keep every user, index, upload and file."""

from __future__ import annotations

import hashlib
import json
import tarfile

import httpx
import pytest

from tests.integration.support import RUN_ID, file_url, free_port, one_error_line, pip_install, remove_cache, run_cli
from tests.unit.fakes import backup_archive

OLD_DEVPI = "6.17.0"  # the oldest devpi-server devpictl supports
ORIGINAL = f"orig{RUN_ID}"
COPY = f"copy{RUN_ID}"
BUSY = f"busy{RUN_ID}"


@pytest.fixture(scope="module")
def old_image(engine, base_image, ca_bundle):
    """The image of an older pinned devpi-server, built from the same template."""
    tag = f"devpictl-test/devpi-old:{RUN_ID}"
    result = run_cli("build", "--image", tag, "--devpi-server-version", OLD_DEVPI, "--base-image", base_image, "--ca-bundle", ca_bundle)
    assert result.exit_code == 0, result.output
    yield tag
    engine.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def state(engine, old_image, devpi_image, test_upstream, ca_bundle, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devpictl-data")
    info = {
        "env": {"DEVPICTL_DATA_DIR": str(data_dir)},
        "common": ["--ca-bundle", ca_bundle, "--network", test_upstream["network"], "--probe-project", "six"],
        "dir": tmp_path_factory.mktemp("backups"),
        "data_dir": data_dir,
    }
    yield info
    for name in (ORIGINAL, COPY, BUSY):
        remove_cache(engine, name, info["env"])


def password(state, name: str) -> str:
    return (state["data_dir"] / "caches" / name / "root-password").read_text().strip()


def served_file(index_url: str, project: str, filename: str) -> bytes:
    response = httpx.get(file_url(index_url, project, filename)[0], trust_env=False)
    response.raise_for_status()
    return response.content


def test_old_devpi_cache_with_a_mirrored_file_and_an_upload(state, old_image, test_upstream, upstream_root, tmp_path):
    result = run_cli(
        "up",
        "--name",
        ORIGINAL,
        "--image",
        old_image,
        "--port",
        str(free_port()),
        "--mirror",
        test_upstream["url"],
        *state["common"],
        "--json",
        env=state["env"],
    )
    assert result.exit_code == 0, result.output
    state["url"] = json.loads(result.stdout)["index_url"]
    installed = pip_install(state["url"], "six", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    wheel = next((upstream_root / "files").glob("six-*.whl"))
    state["wheel"] = wheel
    state["sha256"] = hashlib.sha256(served_file(state["url"], "six", wheel.name)).hexdigest()
    assert state["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()

    base = state["url"].split("/root/pypi/")[0]
    auth = ("root", password(state, ORIGINAL))
    headers = {"Accept": "application/json"}
    assert httpx.put(f"{base}/root/dev", json={"type": "stage", "bases": []}, auth=auth, headers=headers, trust_env=False).status_code in (
        200,
        201,
    )
    upload = httpx.post(
        f"{base}/root/dev/",
        data={":action": "file_upload", "name": "six", "version": "1.16.0"},
        files={"content": (wheel.name, wheel.read_bytes())},
        auth=auth,
        trust_env=False,
    )
    assert upload.status_code == 200, upload.text
    status = json.loads(run_cli("status", "--name", ORIGINAL, "--json", env=state["env"]).stdout)
    assert status["devpi_version"] == OLD_DEVPI


def test_backup_writes_consistent_archives(state):
    for include_files, name in ((False, "meta.tar.gz"), (True, "full.tar.gz")):
        args = ["backup", str(state["dir"] / name), "--name", ORIGINAL, "--json"] + (["--include-files"] if include_files else [])
        result = run_cli(*args, env=state["env"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["include_files"] is include_files
    with tarfile.open(state["dir"] / "full.tar.gz") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("devpictl-backup.json").read())
    assert manifest["devpi_server"] == OLD_DEVPI and manifest["include_files"] is True
    assert "devpi-export/dataindex.json" in names
    # the upload is in every backup; the mirrored file only with --include-files
    assert any(n.endswith(state["wheel"].name) and "/root/dev/" in n for n in names), names
    assert any(n.endswith(state["wheel"].name) and "/root/pypi/" in n for n in names), names
    with tarfile.open(state["dir"] / "meta.tar.gz") as tar:
        assert not any("/root/pypi/" in n and n.endswith(".whl") for n in tar.getnames())
    # a backup never overwrites a file
    again = run_cli("backup", str(state["dir"] / "full.tar.gz"), "--name", ORIGINAL, env=state["env"])
    assert again.exit_code == 4, again.output


def test_restore_refuses_a_corrupt_archive_and_a_cache_with_data(state, engine):
    broken = state["dir"] / "broken.tar.gz"
    broken.write_bytes((state["dir"] / "full.tar.gz").read_bytes()[:2000])
    result = run_cli("restore", str(broken), "--name", COPY, env=state["env"])
    assert result.exit_code == 2, result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")], result.output
    assert not engine.volumes.list(filters={"label": f"devpictl.instance={COPY}"})

    before = engine.containers.get(f"devpictl-{ORIGINAL}").id
    result = run_cli("restore", str(state["dir"] / "full.tar.gz"), "--name", ORIGINAL, env=state["env"])
    assert result.exit_code == 4, result.output
    assert "--force" in result.stderr
    assert engine.containers.get(f"devpictl-{ORIGINAL}").id == before  # untouched


def test_restore_refuses_links_and_foreign_exports_before_touching_the_cache(state, engine, tmp_path):
    symlink = tarfile.TarInfo("devpi-export/x")
    symlink.type, symlink.linkname = tarfile.SYMTYPE, "/data"
    secret = tarfile.TarInfo("devpi-export/x/secret")
    secret.size = 40
    hostile = backup_archive(tmp_path / "hostile.tar.gz", extra=((symlink, None), (secret, b"s" * 40)))
    foreign = backup_archive(tmp_path / "foreign.tar.gz", dataindex={"hello": "world"})
    before = engine.containers.get(f"devpictl-{ORIGINAL}")
    for archive, fragment in ((hostile, "is a symlink"), (foreign, "is not a devpi export")):
        result = run_cli("restore", "--force", str(archive), "--name", ORIGINAL, env=state["env"])
        assert result.exit_code == 2, result.output
        assert fragment in one_error_line(result)
        after = engine.containers.get(f"devpictl-{ORIGINAL}")
        assert (after.id, after.status) == (before.id, "running")
    assert hashlib.sha256(served_file(state["url"], "six", state["wheel"].name)).hexdigest() == state["sha256"]


def test_restore_into_a_new_cache_brings_users_indexes_uploads_and_files(state, engine, devpi_image, test_upstream, tmp_path):
    result = run_cli("restore", str(state["dir"] / "full.tar.gz"), "--name", COPY, "--image", devpi_image, env=state["env"])
    assert result.exit_code == 0, result.output
    result = run_cli("up", "--name", COPY, "--image", devpi_image, "--port", str(free_port()), *state["common"], "--json", env=state["env"])
    assert result.exit_code == 0, result.output  # logging in with the copy's own stored password worked
    # The mirrored file came with the archive: it is on disk before anyone asked the copy for it.
    stored = engine.containers.get(f"devpictl-{COPY}").exec_run(["find", "/data/server/+files/root/pypi", "-name", state["wheel"].name])
    assert stored.output.decode().strip().endswith(state["wheel"].name), stored.output
    url = json.loads(result.stdout)["index_url"]
    assert json.loads(result.stdout)["upstream"]["url"] == test_upstream["url"]  # the index config came along
    base = url.split("/root/pypi/")[0]
    assert hashlib.sha256(served_file(f"{base}/root/dev/+simple/", "six", state["wheel"].name)).hexdigest() == state["sha256"]
    installed = pip_install(f"{base}/root/dev/+simple/", "six==1.16.0", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr


def test_restore_force_replaces_the_data_of_a_running_cache(state, engine, test_upstream):
    """--force on a running cache: the import lands beside the old data, then takes its place, and up brings it back."""
    base = json.loads(run_cli("status", "--name", COPY, "--json", env=state["env"]).stdout)["index_url"].split("/root/pypi/")[0]
    auth = ("root", password(state, COPY))
    made = httpx.put(
        f"{base}/root/scratch", json={"type": "stage", "bases": []}, auth=auth, headers={"Accept": "application/json"}, trust_env=False
    )
    assert made.status_code in (200, 201), made.text
    result = run_cli("restore", "--force", str(state["dir"] / "meta.tar.gz"), "--name", COPY, env=state["env"])
    assert result.exit_code == 0, result.output
    indexes = httpx.get(f"{base}/root", headers={"Accept": "application/json"}, trust_env=False).json()["result"]["indexes"]
    assert "dev" in indexes and "scratch" not in indexes  # the archive's data, not the old
    assert hashlib.sha256(served_file(f"{base}/root/dev/+simple/", "six", state["wheel"].name)).hexdigest() == state["sha256"]
    login = httpx.post(
        f"{base}/+login", json={"user": "root", "password": password(state, COPY)}, headers={"Accept": "application/json"}, trust_env=False
    )
    assert login.status_code == 200
    leftovers = engine.containers.get(f"devpictl-{COPY}").exec_run(["ls", "-A", "/data"]).output.decode().split()
    assert ".devpictl-restore" not in leftovers, leftovers


def test_a_backup_taken_while_uploads_land_restores_whole(state, devpi_image, tmp_path):
    """devpi-export reads in one transaction: an upload that lands during the backup is in the
    archive with its file, or not at all. devpi-import checks every file the export lists."""
    import threading

    base = json.loads(run_cli("status", "--name", COPY, "--json", env=state["env"]).stdout)["index_url"].split("/root/pypi/")[0]
    auth = ("root", password(state, COPY))
    stop = threading.Event()
    uploaded: list[int] = []

    def keep_uploading() -> None:
        with httpx.Client(auth=auth, trust_env=False, timeout=30) as http:
            while not stop.is_set():
                n = len(uploaded) + 1
                answer = http.post(
                    f"{base}/root/dev/",
                    data={":action": "file_upload", "name": f"busy{n}", "version": "1.0"},
                    files={"content": (f"busy{n}-1.0-py3-none-any.whl", b"uploaded while the backup ran " * 40)},
                )
                assert answer.status_code == 200, answer.text
                uploaded.append(n)

    writer = threading.Thread(target=keep_uploading)
    writer.start()
    try:
        while not uploaded:  # the writes are under way before the backup starts
            stop.wait(0.1)
        result = run_cli("backup", str(tmp_path / "busy.tar.gz"), "--name", COPY, "--include-files", env=state["env"])
        during = len(uploaded)
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert during > 1, "no upload landed while the backup ran"
    restored = run_cli("restore", str(tmp_path / "busy.tar.gz"), "--name", BUSY, "--image", devpi_image, env=state["env"])
    assert restored.exit_code == 0, restored.output  # devpi-import found every file its export lists


def test_upgrading_devpi_keeps_everything(state, engine, devpi_image, tmp_path):
    result = run_cli("up", "--name", ORIGINAL, "--image", devpi_image, "--json", env=state["env"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert any("replaced the container" in a for a in out["actions"]), out
    status = json.loads(run_cli("status", "--name", ORIGINAL, "--json", env=state["env"]).stdout)
    assert status["devpi_version"] == "6.20.3"
    assert hashlib.sha256(served_file(state["url"], "six", state["wheel"].name)).hexdigest() == state["sha256"]
    base = state["url"].split("/root/pypi/")[0]
    assert hashlib.sha256(served_file(f"{base}/root/dev/+simple/", "six", state["wheel"].name)).hexdigest() == state["sha256"]
    login = httpx.post(
        f"{base}/+login",
        json={"user": "root", "password": password(state, ORIGINAL)},
        headers={"Accept": "application/json"},
        trust_env=False,
    )
    assert login.status_code == 200
