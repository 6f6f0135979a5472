"""Backups of a cache with devpi-export, and restoring them with devpi-import.

An archive is a gzipped tar holding ``devpictl-backup.json`` (what it is) and
``devpi-export/`` (devpi-export's directory). devpi-export reads the database in
one read transaction, so the archive is consistent while the cache keeps serving.
"""

from __future__ import annotations

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
from devpictl.cache import Cache
from devpictl.errors import (
    BadInput,
    Conflict,
    DevpictlError,
)
from devpictl.image import add_bytes
from devpictl.settings import Instance

if TYPE_CHECKING:
    from docker import DockerClient

MANIFEST = "devpictl-backup.json"
EXPORT_DIR = "devpi-export"
FORMAT = 1


# devpi-import fills a server dir here, beside the cache's own, which it replaces only once the import worked.
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
    with Cache.running(engine, instance) as cache:
        return export(cache, instance, path, include_files=include_files, reporter=reporter)


def export(cache: Cache, instance: Instance, path: Path, *, include_files: bool, reporter) -> BackupResult:
    """devpi-export in the cache, its directory streamed into the archive at ``path``; the export removed after."""
    # Unique per run: two backups at once must not share (and delete) each other's export.
    workdir = f"{layout.DATA_DIR}/.devpictl-export-{secrets.token_hex(8)}"
    try:
        with reporter.waiting("Exporting with devpi-export"):
            cache.devpi_export(workdir, include_files=include_files)
        version = cache.devpi_server_version()
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
                chunks = cache.get_archive(workdir)
                with tarfile.open(fileobj=raw, mode="w:gz") as out:
                    add_bytes(out, MANIFEST, json.dumps(manifest, indent=2).encode())
                    with tarfile.open(fileobj=StreamReader(chunks, advance), mode="r|") as export:
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
        cache.remove_path(workdir)
    return BackupResult(instance.name, path, path.stat().st_size, include_files)


def renamed(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """A header for ``member`` under ``name``, with nothing of the engine's (PAX) headers but what a file is."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if member.isdir() else member.type
    info.mode, info.mtime, info.size = member.mode, member.mtime, member.size
    info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, member.uname, member.gname
    info.linkname = member.linkname
    return info


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
