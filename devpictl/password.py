"""The cache's root password: show the stored one, or rotate it in devpi and in the store together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devpictl import container as ctr
from devpictl.cache import running_container
from devpictl.devpi import DevpiClient
from devpictl.errors import CacheNotFound, CacheUnreachable, DevpictlError, LoginRefused
from devpictl.settings import (
    Instance,
    commit_root_password,
    new_root_password,
    read_root_password,
    stage_root_password,
)


def stored_password(instance: Instance) -> str:
    """The root password devpictl keeps for the cache; needs no engine."""
    password = read_root_password(instance)
    if password is None:
        raise CacheNotFound(
            f"devpictl keeps no root password for cache {instance.name!r} (none in {instance.password_file}): "
            f"`devpictl up --name {instance.name}` makes one"
        )
    return password


@dataclass
class Rotation:
    name: str
    password_file: Path


def rotate(engine, instance: Instance, *, client: DevpiClient | None = None) -> Rotation:
    """Give root a new password in devpi, then in the store; a refusal changes neither.

    The new password is written beside the stored one first and renamed over it
    only once devpi accepted it, so the store never holds a password devpi does
    not know, and a failed write cannot lose the working one.
    ``client`` is the seam tests use to fake devpi.
    """
    old = stored_password(instance)
    container = running_container(engine, instance)
    own_client = client is None
    client = client or DevpiClient(ctr.local_base_url(container))
    new = new_root_password()
    staged = stage_root_password(instance, new)
    try:
        client.login("root", old)
        try:
            client.set_password("root", new)
        except CacheUnreachable:
            # devpi may have taken it and then failed to answer: ask which one works.
            verdict = accepts(client, new)
            if verdict is None:
                raise unconfirmed(instance, staged) from None
            if not verdict:
                raise
        commit_root_password(instance, staged)
    except BaseException as exc:
        if staged.exists():
            staged.unlink()
            if isinstance(exc, DevpictlError):
                exc.args = (f"{exc} (the root password was not changed: {instance.password_file} still holds it)",)
        raise
    finally:
        if own_client:
            client.close()
    return Rotation(instance.name, instance.password_file)


def accepts(client: DevpiClient, password: str) -> bool | None:
    """Whether devpi takes ``password`` for root; None when it cannot be asked."""
    try:
        client.login("root", password)
    except LoginRefused:
        return False
    except CacheUnreachable:
        return None
    return True


def unconfirmed(instance: Instance, staged: Path) -> CacheUnreachable:
    """Keep the new password where the user finds it: devpi may hold it already."""
    pending = instance.state_dir / "root-password.pending"
    staged.replace(pending)
    return CacheUnreachable(
        f"devpi stopped answering while it changed the root password, so which one it holds is unknown: "
        f"{instance.password_file} keeps the old one, {pending} holds the new one; "
        f"if `devpictl up --name {instance.name}` later fails to log in, move {pending} to {instance.password_file}"
    )
