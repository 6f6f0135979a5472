"""Team users: the people and CI jobs that upload to team indexes, their upload rights and their passwords (devpictl/teams.py makes the indexes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devpictl.errors import BadInput, Conflict, DevpictlError
from devpictl.settings import Instance, new_root_password, write_durably
from devpictl.teams import (
    ROOT,
    Session,
    all_indexes,
    check_index,
    check_user,
    drop_user,
    new_user,
    read_user_password,
    team_index,
    user_password_file,
)


@dataclass
class UserInfo:
    user: str
    indexes: list[str]  # the indexes it owns
    upload_to: list[str]  # the indexes it may upload to
    password_file: Path | None  # where devpictl keeps its password; None: devpictl keeps none

    def as_dict(self) -> dict[str, object]:
        return {
            "user": self.user,
            "indexes": self.indexes,
            "upload_to": self.upload_to,
            "password_file": str(self.password_file) if self.password_file else None,
        }


def user_info(instance: Instance, user: str, users: dict[str, dict]) -> UserInfo:
    indexes = all_indexes(users)
    kept = instance.password_file if user == ROOT else user_password_file(instance, user)
    return UserInfo(
        user,
        sorted(f"{user}/{name}" for name in (users.get(user, {}).get("indexes") or {})),
        sorted(name for name, config in indexes.items() if user in (config.get("acl_upload") or [])),
        kept if kept.exists() else None,
    )


@dataclass
class UserList:
    name: str
    users: list[UserInfo]

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "users": [u.as_dict() for u in self.users]}


def list_users(s: Session, instance: Instance) -> UserList:
    users = s.client.users()
    return UserList(s.cache, [user_info(instance, user, users) for user in sorted(users)])


@dataclass
class UserChanged:
    """`user create`, `user allow`, `user rm`: the user as it is afterwards (None once removed)."""

    name: str
    user: str
    action: str  # created, allowed, removed
    info: UserInfo | None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "user": self.user, "action": self.action, **(self.info.as_dict() if self.info else {})}


def _uploaders_patch(config: dict, user: str, op: str) -> list[str]:
    """The PATCH that adds (``+=``) or drops (``-=``) ``user`` in an index's upload lists, where needed."""
    changes = []
    for key in ("acl_upload", "acl_toxresult_upload"):
        present = user in (config.get(key) or [])
        if (op == "+=") != present:
            changes.append(f"{key}{op}{user}")
    return changes


def checked_upload_targets(indexes: dict[str, dict], upload_to: Sequence[str], cache: str) -> list[str]:
    names = [check_index(name) for name in upload_to]
    for name in names:
        team_index(indexes, name, cache)
    return list(dict.fromkeys(names))


def create_user(s: Session, instance: Instance, user: str, upload_to: Sequence[str] = ()) -> UserChanged:
    """A new user with a generated password, allowed to upload to ``upload_to``; a refusal changes nothing."""
    check_user(user)
    users = s.client.users()
    if user in users:
        raise Conflict(f"user {user} exists already: `devpictl user password {user} --rotate` gives it a new password")
    indexes = all_indexes(users)
    targets = checked_upload_targets(indexes, upload_to, s.cache)
    new_user(s, instance, user)
    try:
        allowed = []
        for name in targets:
            s.client.patch_index(_uploaders_patch(indexes[name], user, "+="), name)
            allowed.append(name)
    except (DevpictlError, KeyboardInterrupt):
        for name in allowed:
            s.client.patch_index(_uploaders_patch({"acl_upload": [user], "acl_toxresult_upload": [user]}, user, "-="), name)
        drop_user(s, instance, user)
        raise
    return UserChanged(s.cache, user, "created", user_info(instance, user, s.client.users()))


def allow_user(s: Session, instance: Instance, user: str, upload_to: Sequence[str]) -> UserChanged:
    """Let an existing ``user`` upload to ``upload_to`` as well."""
    check_user(user)
    users = s.client.users()
    if user not in users:
        raise BadInput(f"no user {user} in cache {s.cache!r}: create it with `devpictl user create {user} --upload-to INDEX`")
    indexes = all_indexes(users)
    for name in checked_upload_targets(indexes, upload_to, s.cache):
        changes = _uploaders_patch(indexes[name], user, "+=")
        if changes:
            s.client.patch_index(changes, name)
    return UserChanged(s.cache, user, "allowed", user_info(instance, user, s.client.users()))


def remove_user(s: Session, instance: Instance, user: str) -> UserChanged:
    """Remove ``user`` (not root, nor one that owns an index) and its stored password."""
    check_user(user)
    if user == ROOT:
        raise BadInput("root is the user devpictl itself logs in as: it cannot be removed")
    users = s.client.users()
    if user not in users:
        raise BadInput(f"no user {user} in cache {s.cache!r}: `devpictl user ls` lists them")
    owned = sorted(users[user].get("indexes") or {})
    if owned:
        raise Conflict(
            f"user {user} owns {', '.join(f'{user}/{i}' for i in owned)}: remove it first (`devpictl index rm {user}/{owned[0]}`)"
        )
    for name, config in all_indexes(users).items():
        changes = _uploaders_patch(config, user, "-=")
        if changes:
            s.client.patch_index(changes, name)
    drop_user(s, instance, user)
    return UserChanged(s.cache, user, "removed", None)


@dataclass
class UserPassword:
    """`user password`: where a user's password is kept; the password itself only with --show."""

    name: str
    user: str
    password_file: Path
    rotated: bool
    password: str | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "user": self.user, "password_file": str(self.password_file), "rotated": self.rotated}
        if self.password is not None:
            data["password"] = self.password
        return data


def stored_user_password(instance: Instance, user: str) -> str:
    check_user(user)
    if user == ROOT:
        raise BadInput("that is the root password: use `devpictl password --show` or `devpictl password --rotate`")
    password = read_user_password(instance, user)
    if password is None:
        raise BadInput(
            f"devpictl keeps no password for user {user} of cache {instance.name!r} (none in {user_password_file(instance, user)}): "
            f"`devpictl user password {user} --rotate` gives it one"
        )
    return password


def rotate_user_password(s: Session, instance: Instance, user: str) -> UserPassword:
    """Give ``user`` a new generated password in devpi, then in the store; a refusal changes neither."""
    check_user(user)
    if user == ROOT:
        raise BadInput("that is the root password: use `devpictl password --rotate`")
    if user not in s.client.users():
        raise BadInput(f"no user {user} in cache {s.cache!r}: create it with `devpictl user create {user}`")
    path = user_password_file(instance, user)
    pending = path.with_name(path.name + ".pending")
    new = new_root_password()
    write_durably(pending, new + "\n")
    try:
        s.client.set_password(user, new)
    except DevpictlError:
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, path)
    return UserPassword(s.cache, user, path, rotated=True)


def adopt_user_passwords(source: str, instance: Instance) -> list[str]:
    """After a restore of cache ``source``'s backup: copy the user passwords devpictl keeps here for ``source``.

    The archive carries devpi's password hashes, not the passwords, so the users
    log in as before; this keeps `devpictl user password --show` and
    `upload-config` working for the restored cache on the same machine.
    """
    if not source or source == instance.name:
        return []
    origin = Instance(source).state_dir / "users"
    if not origin.is_dir():
        return []
    copied = []
    for path in sorted(origin.glob("*.password")):
        target = instance.state_dir / "users" / path.name
        if not target.exists():
            write_durably(target, path.read_text("utf-8"))
            copied.append(path.name.removesuffix(".password"))
    return (
        [f"kept the passwords devpictl holds for {', '.join(copied)} (from cache {source!r}) in {instance.state_dir / 'users'}"]
        if copied
        else []
    )
