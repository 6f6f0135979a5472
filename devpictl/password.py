"""The cache's root password: log in with it, show the stored one, or rotate it in devpi and in the store together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devpictl import replica
from devpictl.cache import Cache
from devpictl.devpi import DevpiClient
from devpictl.errors import (
    CacheNotFound,
    CacheUnreachable,
    DevpictlError,
    Interrupted,
    LoginRefused,
    PasswordUnconfirmed,
    interrupts_deferred,
)
from devpictl.settings import (
    Instance,
    commit_root_password,
    drop_pending_root_password,
    new_root_password,
    read_root_password,
    read_secret_file,
    stage_root_password,
)

if TYPE_CHECKING:
    from docker import DockerClient


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
    settled: str | None = None  # what an earlier, interrupted rotation left and this one settled

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "rotated": True, "password_file": str(self.password_file)}


@dataclass
class ShownPassword:
    """`password --show --json`: the stored root password and the file it is kept in."""

    name: str
    password: str
    password_file: Path

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "password": self.password, "password_file": str(self.password_file)}


def rotate(engine: DockerClient, instance: Instance, *, client: DevpiClient | None = None) -> Rotation:
    """Give root a new password in devpi, then in the store; a refusal changes neither.

    The new password is written durably to the pending file before devpi hears of
    it, and moved over the stored one once devpi took it. Whatever stops this
    (a refusal, a lost answer, SIGINT, SIGTERM, SIGKILL), one of the two files
    holds the password devpi has; the next command that logs in asks devpi which.
    ``client`` is the seam tests use to fake devpi.
    """
    cache = Cache.running(engine, instance)
    replica.refuse_on_replica(cache, "password --rotate")
    stored_password(instance)
    own_client = client is None
    client = client or cache.client
    try:
        try:
            settled = login_root(client, instance)
            new = new_root_password()
            stage_root_password(instance, new)  # a pending file devpi never heard of: the next login drops it
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted before devpi was asked to change the root password: {instance.password_file} still holds it"
            ) from None
        try:
            change(client, instance, new)
        except PasswordUnconfirmed:
            raise  # both files stay
        except DevpictlError as exc:  # devpi refused: it holds the old one
            drop_pending_root_password(instance)
            exc.args = (f"{exc} (the root password was not changed: {instance.password_file} still holds it)",)
            raise
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted while devpi changed the root password: {instance.password_file} keeps the old one, "
                f"{instance.pending_password_file} the new one; the next `devpictl password --rotate` or "
                f"`devpictl up --name {instance.name}` asks devpi which one it holds and keeps that"
            ) from None
        # devpi holds the new password: the store must follow, whatever arrives meanwhile.
        with interrupts_deferred() as arrived:
            commit_root_password(instance)
            if own_client:
                cache.close()  # here, not left to a Ctrl-C's mercy below (closing twice is harmless)
        if arrived:
            raise Interrupted(
                f"interrupted as the rotation ended; it is complete: devpi and {instance.password_file} hold the new root password"
            )
    finally:
        if own_client:
            cache.close()
    return Rotation(instance.name, instance.password_file, settled)


def change(client: DevpiClient, instance: Instance, new: str) -> None:
    """PATCH root's password; when the answer is lost, ask devpi whether it took it."""
    try:
        client.set_password("root", new)
    except CacheUnreachable:
        verdict = accepts(client, new)
        if verdict is None:
            raise PasswordUnconfirmed(
                f"devpi stopped answering while it changed the root password, so which one it holds is unknown: "
                f"{instance.password_file} keeps the old one, {instance.pending_password_file} the new one; "
                f"the next `devpictl password --rotate` or `devpictl up --name {instance.name}` asks devpi which one works and keeps it"
            ) from None
        if not verdict:
            raise


def accepts(client: DevpiClient, password: str) -> bool | None:
    """Whether devpi takes ``password`` for root; None when it cannot be asked."""
    try:
        client.login("root", password)
    except LoginRefused:
        return False
    except CacheUnreachable:
        return None
    return True


def login_root(client: DevpiClient, instance: Instance) -> str | None:
    """Log in as root, first settling a password rotation that was interrupted; returns what was settled.

    ``password --rotate`` writes the pending file before it asks devpi to change
    the password, so after any interruption (even SIGKILL) one of the two files
    holds devpi's password: devpi itself says which.
    """
    settled = None
    pending = read_secret_file(instance.pending_password_file)
    if pending is not None:
        try:
            client.login("root", pending)
        except LoginRefused:
            drop_pending_root_password(instance)
            settled = f"dropped {instance.pending_password_file}: devpi never took the password of an interrupted rotation"
        else:
            commit_root_password(instance)
            return f"devpi took the password of an interrupted rotation: moved {instance.pending_password_file} to {instance.password_file}"
    password = read_root_password(instance)
    if password is None:
        raise LoginRefused(f"devpictl has no root password for cache {instance.name!r}: put it in {instance.password_file}")
    client.login("root", password)
    return settled
