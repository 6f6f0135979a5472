"""Restoring a backup: devpi-import in a one-off container of the image, the old data kept until the import worked."""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from devpictl import carryover, layout
from devpictl import container as ctr
from devpictl.backup import EXPORT_DIR, MANIFEST, ArchiveUnusable, checked_members, read_manifest
from devpictl.cache import Cache, Helper
from devpictl.errors import BadInput, Conflict, DevpictlError, EngineError, Interrupted
from devpictl.precedence import load_remembered
from devpictl.settings import Instance, ensure_root_password, forget_root_password

if TYPE_CHECKING:
    from docker import DockerClient

STAGE_DIR = f"{layout.DATA_DIR}/.devpictl-restore"


@dataclass
class RestoreResult:
    name: str
    actions: list[str]
    restart: bool  # the cache was running and devpictl knows how it was made
    index_url: str | None = None  # once the restored cache is up again

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "actions": self.actions, "index_url": self.index_url}


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
    cache = Cache.find(engine, instance)
    if cache is None or cache.status != "running":
        raise Conflict(
            f"cache {instance.name!r} has data but is not running, so devpictl cannot check it is empty: "
            f"start it with `devpictl up --name {instance.name}`, or pass --force to overwrite it"
        )
    with cache:
        users = cache.client.users()
        projects = cache.client.list_projects()
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
    cache = Cache.find(engine, instance)
    was_running = cache is not None and cache.status == "running"
    fresh_volume = ctr.ensure_volume(engine, instance)
    password, new_password = ensure_root_password(instance)
    swapped = removed = False
    # A one-off container of the image, without network, does the import.
    helper = Helper(engine, image, instance)
    try:
        helper.start()
        # Left by an earlier restore that was killed: start over.
        helper.run(["rm", "-rf", STAGE_DIR], "cleanup", user="root")
        helper.run(["mkdir", "-p", STAGE_DIR], "mkdir")
        with reporter.transfer(f"Copying {path.name} into {instance.volume}") as advance, tempfile.TemporaryFile() as clean:
            export_tar(path, clean)
            advance(clean.tell())
            clean.seek(0)
            if not helper.put_archive(STAGE_DIR, clean):
                raise EngineError(f"could not copy {path} into the volume: check the engine's logs")
        helper.hand_in_files({layout.ROOT_PASSWORD: (password + "\n").encode()})
        with reporter.waiting("Importing with devpi-import"):
            helper.run(["devpi-import", "--serverdir", f"{STAGE_DIR}/server", "--no-events", f"{STAGE_DIR}/{EXPORT_DIR}"], "devpi-import")
        # The archive brings its root's password hash; the password devpictl stores stays the one that works.
        handed_in = f"{layout.RUN_DIR}/{layout.ROOT_PASSWORD}"
        helper.run(
            ["sh", "-c", f"cat {handed_in} {handed_in} | devpi-passwd --serverdir {STAGE_DIR}/server root"],
            "devpi-passwd",
        )
        # The import worked: only now does the old cache go.
        if cache is not None:
            cache.remove()
            removed = True
            actions.append(f"removed container {instance.container}")
        helper.run(["sh", "-c", SWAP], "swapping in the imported data")
        swapped = True
        if not fresh_volume:
            actions.append(f"replaced the old data in {instance.volume}")
        try:  # as root: whatever the engine extracted, the stage goes; the restore is done either way
            helper.run(["rm", "-rf", STAGE_DIR], "removing the imported archive", user="root")
        except DevpictlError as exc:
            actions.append(f"left {STAGE_DIR} in the volume: {exc}")
    except BaseException as exc:
        if not swapped:
            with contextlib.suppress(Exception):
                helper.run(["rm", "-rf", STAGE_DIR], "cleanup", user="root")
        helper.remove()
        if fresh_volume:
            ctr.remove_volume(engine, instance)
        if new_password:
            forget_root_password(instance)
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(interrupted_message(instance, fresh_volume, swapped, cache is not None)) from None
        if isinstance(exc, DevpictlError):
            exc.args = (f"{exc} ({changed_so_far(instance, removed)})",)
        raise
    helper.remove()
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
