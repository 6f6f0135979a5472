"""Backups of a cache with devpi-export, and restoring them with devpi-import.

An archive is a gzipped tar holding ``devpictl-backup.json`` (what it is) and
``devpi-export/`` (devpi-export's directory). devpi-export reads the database in
one read transaction, so the archive is consistent while the cache keeps serving.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from devpictl import __version__
from devpictl import cache as cch
from devpictl import container as ctr
from devpictl.devpi import DevpiClient
from devpictl.errors import BadInput, Conflict, DevpiError, EngineError
from devpictl.image import add_bytes
from devpictl.settings import Instance, ensure_root_password, load_remembered

MANIFEST = "devpictl-backup.json"
EXPORT_DIR = "devpi-export"
FORMAT = 1
IMPORT_DIR = "/data/.devpictl-import"


@dataclass
class RestoreResult:
    actions: list[str]
    restart: bool  # the cache was running and devpictl knows how it was made


@dataclass
class BackupResult:
    path: Path
    size: int
    include_files: bool


def default_path(instance: Instance) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"devpictl-{instance.name}-{stamp}.tar.gz"


class StreamReader(io.RawIOBase):
    """A file object over docker-py's chunk iterator, counting what passes."""

    def __init__(self, chunks: Iterator[bytes], on_bytes) -> None:
        self.chunks = chunks
        self.buffer = b""
        self.on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self.buffer:
            try:
                self.buffer = next(self.chunks)
            except StopIteration:
                return 0
            self.on_bytes(len(self.buffer))
        size = min(len(target), len(self.buffer))
        target[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        return size


def backup_path(instance: Instance, path: Path | None) -> Path:
    """Where the archive goes; refused before anything runs when it cannot be written there."""
    path = path or default_path(instance)
    if path.exists():
        raise Conflict(f"{path} already exists: give another PATH, or move it away")
    if not path.parent.is_dir():
        raise BadInput(f"directory {path.parent} does not exist: create it or give another PATH")
    return path


def backup(engine, instance: Instance, path: Path, *, include_files: bool, reporter) -> BackupResult:
    """Write the archive to ``path`` (checked with backup_path)."""
    container = cch.running_container(engine, instance)
    workdir = f"/data/.devpictl-export-{int(time.time())}"
    command = ["devpi-export", "--serverdir", "/data/server"]
    if include_files:
        command.append("--include-mirrored-files")
    with reporter.waiting("Exporting with devpi-export"):
        code, output = ctr.exec_output(container, [*command, workdir])
    try:
        if code != 0:
            raise DevpiError(f"devpi-export failed ({cch.last_line(output)}): see `devpictl logs`")
        version = image_devpi_version(container)
        manifest = {
            "format": FORMAT,
            "cache": instance.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "devpictl": __version__,
            "devpi_server": version,
            "include_files": include_files,
        }
        partial = path.with_name(path.name + ".partial")
        try:
            with reporter.transfer(f"Writing {path.name}") as advance:
                chunks, _stat = container.get_archive(workdir)
                with tarfile.open(partial, "w:gz") as out:
                    add_bytes(out, MANIFEST, json.dumps(manifest, indent=2).encode())
                    with tarfile.open(fileobj=StreamReader(iter(chunks), advance), mode="r|") as export:
                        top = workdir.rsplit("/", 1)[-1]
                        for member in export:
                            member.name = EXPORT_DIR + member.name[len(top):]
                            out.addfile(member, export.extractfile(member) if member.isfile() else None)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        ctr.exec_output(container, ["rm", "-rf", workdir])
    return BackupResult(path, path.stat().st_size, include_files)


def image_devpi_version(container) -> str | None:
    code, output = ctr.exec_output(container, ["devpi-server", "--version"])
    return cch.last_line(output) if code == 0 else None


def read_manifest(path: Path) -> dict:
    """Check that ``path`` is a devpictl backup before anything is touched; return its manifest."""
    def corrupt(why: str) -> BadInput:
        return BadInput(f"{path} is not a usable devpictl backup ({why}): give an archive `devpictl backup` wrote")

    if not path.is_file():
        raise BadInput(f"backup {path} does not exist: give the path of an archive `devpictl backup` wrote")
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = set()
            manifest = None
            for member in tar:  # reads the whole archive: a truncated one fails here
                names.add(member.name)
                if member.name == MANIFEST:
                    manifest = json.loads(tar.extractfile(member).read())
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise corrupt(f"unsafe member {member.name!r}")
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise corrupt(type(exc).__name__ + (f": {exc}" if str(exc) else "")) from None
    if manifest is None or not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise corrupt(f"no {MANIFEST} of format {FORMAT}")
    if f"{EXPORT_DIR}/dataindex.json" not in names:
        raise corrupt("no devpi-export data in it")
    return manifest


def cache_is_empty(engine, instance: Instance) -> bool:
    """True when the cache has no volume, or only root, root/pypi and nothing cached."""
    if not ctr.volume_exists(engine, instance):
        return True
    container = ctr.find_container(engine, instance)
    if container is None or container.status != "running":
        raise Conflict(
            f"cache {instance.name!r} has data but is not running, so devpictl cannot check it is empty: "
            f"start it with `devpictl up --name {instance.name}`, or pass --force to overwrite it"
        )
    with DevpiClient(ctr.local_base_url(container)) as client:
        users = client.users()
        projects = client.list_projects()
    only_defaults = set(users) == {"root"} and set(users["root"].get("indexes", {})) == {"pypi"}
    return only_defaults and not projects


def restore(engine, instance: Instance, path: Path, image: str, *, force: bool, reporter) -> RestoreResult:
    """Bring the archive at ``path`` into the cache ``instance`` (new, empty, or with --force any)."""
    manifest = read_manifest(path)
    if not force and not cache_is_empty(engine, instance):
        raise Conflict(
            f"cache {instance.name!r} is not empty: restore into a new --name, or pass --force to replace its data"
        )
    if not ctr.image_exists(engine, image):
        raise BadInput(f"image {image} does not exist: build it with `devpictl build --image {image}` first")
    actions = []
    container = ctr.find_container(engine, instance)
    was_running = container is not None and container.status == "running"
    if container is not None:
        ctr.remove(container)
        actions.append(f"removed container {instance.container}")
    if ctr.volume_exists(engine, instance):
        ctr.remove_volume(engine, instance)
        actions.append(f"deleted the old data in {instance.volume}")
    ctr.ensure_volume(engine, instance)
    password, _ = ensure_root_password(instance)
    # A one-off container of the image, without network, does the import.
    helper = engine.containers.create(
        image,
        entrypoint=["sleep", "3600"],
        detach=True,
        labels=instance.labels(),
        volumes={instance.volume: {"bind": "/data", "mode": "rw"}},
        network_mode="none",
    )
    try:
        helper.start()
        run(helper, ["mkdir", "-p", IMPORT_DIR], "mkdir", user="root")
        with reporter.transfer(f"Copying {path.name} into {instance.volume}") as advance:
            data = path.read_bytes()
            if not helper.put_archive(IMPORT_DIR, data):
                raise EngineError(f"could not copy {path} into the volume: check the engine's logs")
            advance(len(data))
        ctr.hand_in_files(helper, {"root-password": (password + "\n").encode()})
        with reporter.waiting("Importing with devpi-import"):
            run(helper, ["devpi-import", "--serverdir", "/data/server", "--no-events", f"{IMPORT_DIR}/{EXPORT_DIR}"], "devpi-import")
        # The archive brings its root's password hash; the password devpictl stores stays the one that works.
        run(helper, ["sh", "-c", f"cat {ctr.RUN_DIR}/root-password {ctr.RUN_DIR}/root-password | devpi-passwd --serverdir /data/server root"], "devpi-passwd")
        run(helper, ["rm", "-rf", IMPORT_DIR, f"{ctr.RUN_DIR}/root-password"], "cleanup", user="root")
    except BaseException:
        helper.remove(force=True)
        ctr.remove_volume(engine, instance)
        raise
    helper.remove(force=True)
    actions.append(f"restored {path.name} (cache {manifest.get('cache')!r}, {manifest.get('created')}) into {instance.volume}")
    return RestoreResult(actions, restart=was_running and bool(load_remembered(instance)))


def run(container, command: list[str], what: str, user: str = "") -> None:
    code, output = ctr.exec_output(container, command, user=user)
    if code != 0:
        raise DevpiError(f"{what} failed in the restore container ({cch.last_line(output)})")
