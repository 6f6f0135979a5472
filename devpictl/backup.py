"""Backups of a cache with devpi-export, and restoring them with devpi-import.

An archive is a gzipped tar holding ``devpictl-backup.json`` (what it is) and
``devpi-export/`` (devpi-export's directory). devpi-export reads the database in
one read transaction, so the archive is consistent while the cache keeps serving.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from devpictl import __version__, carryover, layout
from devpictl import container as ctr
from devpictl.devpi import DevpiClient
from devpictl.errors import (
    BadInput,
    Conflict,
    DevpictlError,
    DevpiError,
    EngineError,
    Interrupted,
)
from devpictl.image import add_bytes
from devpictl.precedence import load_remembered
from devpictl.settings import Instance, ensure_root_password, forget_root_password

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

MANIFEST = "devpictl-backup.json"
EXPORT_DIR = "devpi-export"
FORMAT = 1
# devpi-import fills a server dir here, beside the cache's own, which it replaces only once the import worked.
STAGE_DIR = f"{layout.DATA_DIR}/.devpictl-restore"


@dataclass
class RestoreResult:
    name: str
    actions: list[str]
    restart: bool  # the cache was running and devpictl knows how it was made
    index_url: str | None = None  # once the restored cache is up again

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "actions": self.actions, "index_url": self.index_url}


@dataclass
class BackupResult:
    name: str
    path: Path
    size: int
    include_files: bool

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "bytes": self.size, "include_files": self.include_files}


def default_path(instance: Instance) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
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
    try:
        partial_file(path)[1].unlink()
    except OSError as exc:
        raise BadInput(f"cannot write {path} ({exc.strerror or exc}): give a PATH in a directory you can write") from None
    return path


def partial_file(path: Path) -> tuple[int, Path]:
    """A new file beside ``path`` that becomes it once complete: (its descriptor, its path)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    return fd, Path(name)


def backup(engine: DockerClient, instance: Instance, path: Path, *, include_files: bool, reporter) -> BackupResult:
    """Write the archive to ``path`` (checked with backup_path)."""
    container = ctr.running_container(engine, instance)
    # Unique per run: two backups at once must not share (and delete) each other's export.
    workdir = f"{layout.DATA_DIR}/.devpictl-export-{secrets.token_hex(8)}"
    command = ["devpi-export", "--serverdir", layout.SERVER_DIR]
    if include_files:
        command.append("--include-mirrored-files")
    with reporter.waiting("Exporting with devpi-export"):
        code, output = ctr.exec_output(container, [*command, workdir])
    try:
        if code != 0:
            raise DevpiError(f"devpi-export failed ({ctr.last_line(output)}): see `devpictl logs`")
        version = image_devpi_version(container)
        manifest = {
            "format": FORMAT,
            "cache": instance.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "devpictl": __version__,
            "devpi_server": version,
            "include_files": include_files,
            **carryover.carried_settings(instance),
        }
        try:
            fd, partial = partial_file(path)
        except OSError as exc:
            raise BadInput(f"cannot write {path} ({exc.strerror or exc}): give a PATH in a directory you can write") from None
        try:
            with reporter.transfer(f"Writing {path.name}") as advance, os.fdopen(fd, "wb") as raw:
                chunks, _stat = container.get_archive(workdir)
                with tarfile.open(fileobj=raw, mode="w:gz") as out:
                    add_bytes(out, MANIFEST, json.dumps(manifest, indent=2).encode())
                    with tarfile.open(fileobj=StreamReader(iter(chunks), advance), mode="r|") as export:
                        top = workdir.rsplit("/", 1)[-1]
                        for member in export:
                            # A fresh header: the engine's PAX header of a long name would carry the old path over.
                            out.addfile(
                                renamed(member, EXPORT_DIR + member.name[len(top) :]),
                                export.extractfile(member) if member.isfile() else None,
                            )
            try:
                check_archive(partial)  # the check restore makes, so a backup that reports success restores
            except ArchiveUnusable as exc:
                raise DevpictlError(
                    f"the archive failed the check `devpictl restore` makes ({exc}), so it was not kept: report this as a bug"
                ) from None
            try:
                os.link(partial, path)  # unlike a rename, never replaces a file that appeared meanwhile
            except FileExistsError:
                raise Conflict(f"{path} appeared while the backup ran: give another PATH") from None
        except OSError as exc:  # a full disk, a directory that went read-only
            raise DevpictlError(f"could not write {path} ({exc.strerror or exc}): make room, or give another PATH") from None
        finally:
            partial.unlink(missing_ok=True)
    finally:
        ctr.exec_output(container, ["rm", "-rf", workdir])
    return BackupResult(instance.name, path, path.stat().st_size, include_files)


def renamed(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """A header for ``member`` under ``name``, with nothing of the engine's (PAX) headers but what a file is."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if member.isdir() else member.type
    info.mode, info.mtime, info.size = member.mode, member.mtime, member.size
    info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, member.uname, member.gname
    info.linkname = member.linkname
    return info


def image_devpi_version(container: Container) -> str | None:
    code, output = ctr.exec_output(container, ["devpi-server", "--version"])
    return ctr.last_line(output) if code == 0 else None


# devpi-import refuses other dump versions; devpi-export writes "2" (devpi-server 6).
DUMP_VERSIONS = ("1", "2")


class ArchiveUnusable(Exception):
    """Why an archive is not a backup restore takes."""


def read_manifest(path: Path) -> dict:
    """Check the whole archive before anything is touched; return its manifest."""
    if not path.is_file():
        raise BadInput(f"backup {path} does not exist: give the path of an archive `devpictl backup` wrote")
    try:
        return check_archive(path)
    except ArchiveUnusable as exc:
        raise BadInput(f"{path} is not a usable devpictl backup ({exc}): give an archive `devpictl backup` wrote") from None


def check_archive(path: Path) -> dict:
    """The manifest of the archive at ``path``, read whole; ArchiveUnusable says why restore would refuse it.

    Every member must be a regular file or a directory under ``devpi-export/``
    (or the manifest), and ``dataindex.json`` must be a devpi export.
    """
    manifest = dataindex = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in checked_members(tar):  # reads the whole archive: a truncated one fails here
                if member.name == MANIFEST:
                    manifest = json.loads(member_bytes(tar, member))
                elif member.name == f"{EXPORT_DIR}/dataindex.json":
                    dataindex = json.loads(member_bytes(tar, member))
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise ArchiveUnusable(type(exc).__name__ + (f": {exc}" if str(exc) else "")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveUnusable(f"no {MANIFEST} of format {FORMAT}")
    if dataindex is None:
        raise ArchiveUnusable("no devpi-export data in it")
    if not isinstance(dataindex, dict) or dataindex.get("dumpversion") not in DUMP_VERSIONS:
        raise ArchiveUnusable(f"{EXPORT_DIR}/dataindex.json is not a devpi export of dump version {' or '.join(DUMP_VERSIONS)}")
    if not isinstance(dataindex.get("users"), dict) or not isinstance(dataindex.get("indexes"), dict):
        raise ArchiveUnusable(f"{EXPORT_DIR}/dataindex.json lists no users and indexes")
    return manifest


def member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The content of a regular file in ``tar`` (checked_members lets only regular files and directories through)."""
    handle = tar.extractfile(member)
    if handle is None:
        raise ValueError(f"{member.name} is not a regular file")
    return handle.read()


# What devpictl reads into memory from an archive: the manifest and devpi's dataindex.json.
MAX_READ_BYTES = {MANIFEST: 1 << 20, f"{EXPORT_DIR}/dataindex.json": 1 << 30}


def checked_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The archive's members, refusing any that could reach outside the import directory.

    Each header is checked before its data is read: an archive that would expand beyond
    the free space where restore unpacks it (a gzip bomb), or whose manifest or index
    would not fit in memory, is refused at the first member that says so.
    """
    room = shutil.disk_usage(tempfile.gettempdir()).free
    expanded = 0
    for member in tar:
        expanded += member.size
        if expanded > room:
            raise ArchiveUnusable(f"it expands to more than the {room // (1 << 20)} MiB free in {tempfile.gettempdir()}")
        if member.size > MAX_READ_BYTES.get(member.name, member.size):
            raise ArchiveUnusable(f"its {member.name} is {member.size // (1 << 20)} MiB, more than devpictl reads")
        name = member.name
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or not parts:
            raise ArchiveUnusable(f"unsafe member name {name!r}")
        if name != MANIFEST and parts[0] != EXPORT_DIR:
            raise ArchiveUnusable(f"member {name!r} is neither {MANIFEST} nor under {EXPORT_DIR}/")
        if not (member.isreg() or member.isdir()):
            kind = "a symlink" if member.issym() else "a hardlink" if member.islnk() else "a device or special file"
            raise ArchiveUnusable(f"member {name!r} is {kind}; a backup holds only files and directories")
        yield member


def export_tar(path: Path, out) -> None:
    """Write the export of the archive at ``path`` to ``out`` as a plain tar that holds only files and directories.

    The engine extracts as root and would follow what it is given, so devpictl hands
    it a new tar made from checked members: owned by devpi, no special mode bits. An
    archive that lists files only (as some tools write them) gets each missing
    directory before its first file, so the engine makes none of them root's.
    """
    try:
        copy_checked(path, out)
    except ArchiveUnusable as exc:  # read_manifest passed it: the file changed since
        raise BadInput(f"{path} changed while restore read it ({exc}): give an archive `devpictl backup` wrote") from None


def copy_checked(path: Path, out) -> None:
    made: set[str] = set()

    def directory(name: str, mtime: float) -> tarfile.TarInfo:
        made.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, mtime
        info.uid = info.gid = layout.DEVPI_UID
        return info

    with tarfile.open(path, "r:gz") as tar, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as clean:
        for member in checked_members(tar):
            if member.name == MANIFEST:
                continue
            name = member.name.rstrip("/")
            for parent in reversed(PurePosixPath(name).parents[:-1]):
                if str(parent) not in made:
                    clean.addfile(directory(str(parent), member.mtime))
            if member.isdir():
                if name not in made:
                    clean.addfile(directory(name, member.mtime))
                continue
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.size = tarfile.REGTYPE, 0o600, member.mtime, member.size
            info.uid = info.gid = layout.DEVPI_UID
            clean.addfile(info, tar.extractfile(member))


def cache_is_empty(engine: DockerClient, instance: Instance) -> bool:
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


def restore(engine: DockerClient, instance: Instance, path: Path, image: str, *, force: bool, reporter) -> RestoreResult:
    """Bring the archive at ``path`` into the cache ``instance`` (new, empty, or with --force any).

    devpi-import fills a new server dir beside the old one; only once it and the
    password succeeded does the old container go and the new dir take the old
    one's place. Until then a failure or an interrupt leaves the old data as it was.
    """
    manifest = read_manifest(path)
    if not force and not cache_is_empty(engine, instance):
        raise Conflict(f"cache {instance.name!r} is not empty: restore into a new --name, or pass --force to replace its data")
    if not ctr.image_exists(engine, image):
        raise BadInput(f"image {image} does not exist: build it with `devpictl build --image {image}` first")
    actions = []
    container = ctr.find_container(engine, instance)
    was_running = container is not None and container.status == "running"
    fresh_volume = ctr.ensure_volume(engine, instance)
    password, new_password = ensure_root_password(instance)
    swapped = removed = False
    # A one-off container of the image, without network, does the import.
    helper = ctr.create_offline_helper(engine, image, instance)
    try:
        helper.start()
        # Left by an earlier restore that was killed: start over.
        run(helper, ["rm", "-rf", STAGE_DIR], "cleanup", user="root")
        run(helper, ["mkdir", "-p", STAGE_DIR], "mkdir")
        with reporter.transfer(f"Copying {path.name} into {instance.volume}") as advance, tempfile.TemporaryFile() as clean:
            export_tar(path, clean)
            advance(clean.tell())
            clean.seek(0)
            if not helper.put_archive(STAGE_DIR, clean):
                raise EngineError(f"could not copy {path} into the volume: check the engine's logs")
        ctr.hand_in_files(helper, {layout.ROOT_PASSWORD: (password + "\n").encode()})
        with reporter.waiting("Importing with devpi-import"):
            run(helper, ["devpi-import", "--serverdir", f"{STAGE_DIR}/server", "--no-events", f"{STAGE_DIR}/{EXPORT_DIR}"], "devpi-import")
        # The archive brings its root's password hash; the password devpictl stores stays the one that works.
        handed_in = f"{layout.RUN_DIR}/{layout.ROOT_PASSWORD}"
        run(
            helper,
            ["sh", "-c", f"cat {handed_in} {handed_in} | devpi-passwd --serverdir {STAGE_DIR}/server root"],
            "devpi-passwd",
        )
        # The import worked: only now does the old cache go.
        if container is not None:
            ctr.remove(container)
            removed = True
            actions.append(f"removed container {instance.container}")
        run(helper, ["sh", "-c", SWAP], "swapping in the imported data")
        swapped = True
        if not fresh_volume:
            actions.append(f"replaced the old data in {instance.volume}")
        try:  # as root: whatever the engine extracted, the stage goes; the restore is done either way
            run(helper, ["rm", "-rf", STAGE_DIR], "removing the imported archive", user="root")
        except DevpictlError as exc:
            actions.append(f"left {STAGE_DIR} in the volume: {exc}")
    except BaseException as exc:
        if not swapped:
            with contextlib.suppress(Exception):
                run(helper, ["rm", "-rf", STAGE_DIR], "cleanup", user="root")
        helper.remove(force=True)
        if fresh_volume:
            ctr.remove_volume(engine, instance)
        if new_password:
            forget_root_password(instance)
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(interrupted_message(instance, fresh_volume, swapped, container is not None)) from None
        if isinstance(exc, DevpictlError):
            exc.args = (f"{exc} ({changed_so_far(instance, removed)})",)
        raise
    helper.remove(force=True)
    run_after = was_running and bool(load_remembered(instance))
    actions.append(f"restored {path.name} (cache {manifest.get('cache')!r}, {manifest.get('created')}) into {instance.volume}")
    actions.extend(carryover.carry_over_settings(engine, instance, manifest, image))
    return RestoreResult(instance.name, actions, restart=run_after)


def swap_script(server_dir: str, stage_dir: str) -> str:
    """The shell that puts the imported server dir in place of the old one, or the old one back.

    Runs in the restore container once devpi-import succeeded. Each mv is one rename
    inside the volume; the old server dir stays beside it until the new one is in place,
    and goes back where it was when that fails.
    """
    return (
        f"set -e; rm -rf {stage_dir}/old; "
        f"if [ -e {server_dir} ]; then mv {server_dir} {stage_dir}/old; fi; "
        f"if ! mv {stage_dir}/server {server_dir}; then if [ -e {stage_dir}/old ]; then mv {stage_dir}/old {server_dir}; fi; exit 1; fi"
    )


SWAP = swap_script(layout.SERVER_DIR, STAGE_DIR)


def changed_so_far(instance: Instance, removed_container: bool) -> str:
    """What a failed restore changed, for its error line: the data never (a failed swap puts it back)."""
    if not removed_container:
        return "nothing was changed"
    return (
        f"the data of cache {instance.name!r} is unchanged; its container was removed: `devpictl up --name {instance.name}` starts it again"
    )


def interrupted_message(instance: Instance, fresh_volume: bool, swapped: bool, had_container: bool) -> str:
    if fresh_volume:
        return f"restore interrupted: nothing was kept; cache {instance.name!r} does not exist"
    if swapped:
        return (
            f"restore interrupted while the imported data replaced the old: check it with `devpictl up --name {instance.name}`, "
            "or run the same restore again"
        )
    start = f"; start it again with `devpictl up --name {instance.name}`" if had_container else ""
    return f"restore interrupted before the import finished: the data of cache {instance.name!r} is unchanged{start}"


def run(container: Container, command: list[str], what: str, user: str = "") -> None:
    code, output = ctr.exec_output(container, command, user=user)
    if code != 0:
        raise DevpiError(f"{what} failed in the restore container ({ctr.last_line(output)})")
