"""Team indexes: private indexes beside the mirror, the users who upload to them, and those users' passwords.

Everything goes through devpi's HTTP API with the root login devpictl holds. A
user devpictl creates gets a generated password, kept as the root password is
(0600, in the cache's state dir) and never printed unless asked for.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from devpictl.devpi import MIRROR_INDEX, DevpiClient, index_url
from devpictl.errors import BadInput, Conflict, DevpictlError
from devpictl.settings import Instance, new_root_password, read_secret_file, write_durably

# devpi allows more (it only refuses a few characters); these names also work in URLs, file names and .pypirc sections.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ANONYMOUS = ":ANONYMOUS:"
ROOT = "root"


def check_user(user: str, source: str = "user name") -> str:
    if user == ANONYMOUS or user.lower() == "anonymous":
        raise BadInput("anonymous uploads are never allowed: name the users who may upload, e.g. --upload-by ci")
    if not NAME.fullmatch(user):
        raise BadInput(f"{source} {user!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return user


def check_index(name: str) -> str:
    """``USER/INDEX``, checked."""
    user, sep, index = name.strip("/").partition("/")
    if not sep or not user or not index:
        raise BadInput(f"index name {name!r} has no user part: write USER/INDEX, e.g. team/dev")
    check_user(user, "the user part of")
    if not NAME.fullmatch(index) or "/" in index:
        raise BadInput(f"index name {name!r} is not allowed: after the user, use 1-64 letters, digits, '.', '_' or '-'")
    return f"{user}/{index}"


def user_password_file(instance: Instance, user: str) -> Path:
    return instance.state_dir / "users" / f"{user}.password"


def read_user_password(instance: Instance, user: str) -> str | None:
    if user == ROOT:
        return read_secret_file(instance.password_file)
    return read_secret_file(user_password_file(instance, user))


def forget_user_password(instance: Instance, user: str) -> None:
    user_password_file(instance, user).unlink(missing_ok=True)


@dataclass(frozen=True)
class Session:
    """A devpi client for one cache (logged in as root for changes) and the cache's base URL."""

    client: DevpiClient
    base_url: str
    cache: str
    https: bool = False  # the cache's facts installers' URLs depend on (readauth.installer_url)
    read_auth: bool = False


@contextlib.contextmanager
def session(instance: Instance, command: str | None = None) -> Iterator[Session]:
    """A session with the running cache; ``command`` (a change) refuses a replica and logs in as root first."""
    from devpictl import password, replica
    from devpictl.cache import Cache
    from devpictl.container import connect

    with Cache.running(connect(), instance) as cache:
        if command is not None:
            replica.refuse_on_replica(cache, command)
            password.login_root(cache.client, instance)
        yield Session(cache.client, cache.local_base_url, instance.name, cache.tls is not None, cache.read_auth)


@dataclass
class IndexInfo:
    index: str
    type: str
    bases: list[str]
    volatile: bool
    upload_by: list[str]
    index_url: str  # what installers use
    upload_url: str  # what twine and uv publish use
    projects: list[str] | None = None  # with `index show`: the projects uploaded to it

    @classmethod
    def of(cls, name: str, config: dict, base_url: str) -> IndexInfo:
        mirror = config.get("type") == "mirror"
        return cls(
            name,
            str(config.get("type", "stage")),
            list(config.get("bases", [])),
            bool(config.get("volatile", True)),
            [] if mirror else list(config.get("acl_upload", [])),
            index_url(base_url, name),
            "" if mirror else f"{base_url}/{name}/",
        )

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "index": self.index,
            "type": self.type,
            "bases": self.bases,
            "volatile": self.volatile,
            "upload_by": self.upload_by,
            "index_url": self.index_url,
            "upload_url": self.upload_url or None,
        }
        if self.projects is not None:
            data["projects"] = self.projects
        return data


def all_indexes(users: dict[str, dict]) -> dict[str, dict]:
    """``USER/INDEX`` -> its config, from devpi's user list (GET /)."""
    return {f"{user}/{name}": config for user, data in users.items() for name, config in (data.get("indexes") or {}).items()}


def find_index(indexes: dict[str, dict], name: str, cache: str) -> dict:
    config = indexes.get(name)
    if config is None:
        raise BadInput(f"cache {cache!r} has no index {name}: `devpictl index ls` lists them, `devpictl index create {name}` makes it")
    return config


def team_index(indexes: dict[str, dict], name: str, cache: str) -> dict:
    config = find_index(indexes, name, cache)
    if config.get("type") == "mirror":
        raise BadInput(f"{name} is the cache's mirror, which takes no uploads: name a team index (`devpictl index ls` lists them)")
    return config


@dataclass
class IndexList:
    name: str
    indexes: list[IndexInfo]

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "indexes": [i.as_dict() for i in self.indexes]}


def list_indexes(s: Session) -> IndexList:
    indexes = all_indexes(s.client.users())
    return IndexList(s.cache, [IndexInfo.of(name, config, s.base_url) for name, config in sorted(indexes.items())])


@dataclass
class ShownIndex:
    name: str
    index: IndexInfo

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, **self.index.as_dict()}


def show_index(s: Session, name: str) -> ShownIndex:
    name = check_index(name)
    config = find_index(all_indexes(s.client.users()), name, s.cache)
    info = IndexInfo.of(name, config, s.base_url)
    if config.get("type") != "mirror":  # a mirror's list is its upstream's, hundreds of thousands of names
        info.projects = sorted(s.client.list_projects(name))
    return ShownIndex(s.cache, info)


@dataclass
class IndexCreated:
    name: str
    index: IndexInfo
    user_created: str | None  # the index's user, made with a generated password
    password_file: Path | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            **self.index.as_dict(),
            "user_created": self.user_created,
            "password_file": str(self.password_file) if self.password_file else None,
        }


def create_index(
    s: Session,
    instance: Instance,
    name: str,
    *,
    bases: Sequence[str] = (MIRROR_INDEX,),
    volatile: bool = False,
    upload_by: Sequence[str] = (),
) -> IndexCreated:
    """Create ``USER/INDEX`` (and USER, if new); a refusal changes nothing."""
    name = check_index(name)
    owner = name.split("/")[0]
    bases = [check_index(base) for base in bases]
    uploaders = list(dict.fromkeys(check_user(user, "--upload-by user") for user in upload_by)) or [owner]
    users = s.client.users()
    indexes = all_indexes(users)
    if name in indexes:
        raise Conflict(f"index {name} exists already: `devpictl index show {name}` shows it; pick another name to make a new one")
    for base in bases:
        if base == name:
            raise BadInput(f"{name} cannot be a base of itself: give other --bases, e.g. --bases {MIRROR_INDEX}")
        if base not in indexes:
            raise BadInput(f"unknown base {base}: the cache has {', '.join(sorted(indexes))}; create it first or leave it out of --bases")
    for user in uploaders:
        if user != owner and user not in users:
            raise BadInput(f"--upload-by {user}: no such user in cache {s.cache!r}; create it first with `devpictl user create {user}`")
    created = None
    if owner not in users:
        new_user(s, instance, owner)
        created = owner
    config = {
        "type": "stage",
        "bases": bases,
        "volatile": volatile,
        "acl_upload": uploaders,
        "acl_toxresult_upload": uploaders,  # devpi's default lets anyone upload test results
    }
    try:
        result = s.client.create_index(name, config)
    except (DevpictlError, KeyboardInterrupt):
        if created:
            drop_user(s, instance, created)
        raise
    return IndexCreated(
        s.cache, IndexInfo.of(name, result, s.base_url), created, user_password_file(instance, created) if created else None
    )


def new_user(s: Session, instance: Instance, user: str) -> Path:
    """Create ``user`` in devpi with a generated password, kept (0600) before devpi hears of it."""
    path = user_password_file(instance, user)
    password = new_root_password()
    write_durably(path, password + "\n")
    try:
        s.client.create_user(user, password)
    except (DevpictlError, KeyboardInterrupt):
        path.unlink(missing_ok=True)
        raise
    return path


def drop_user(s: Session, instance: Instance, user: str) -> None:
    s.client.delete_user(user)
    forget_user_password(instance, user)


@dataclass
class IndexRemoved:
    name: str
    index: str
    projects: int  # how many projects were uploaded to it

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "index": self.index, "removed": True, "projects": self.projects}


def index_to_remove(s: Session, name: str) -> tuple[str, dict, list[str]]:
    """The index ``name``, its config and its projects, once checked that it can go (for the question before)."""
    name = check_index(name)
    if name == MIRROR_INDEX:
        raise BadInput(f"{MIRROR_INDEX} is the cache itself: to remove the cache, use `devpictl down --volumes`")
    indexes = all_indexes(s.client.users())
    config = find_index(indexes, name, s.cache)
    based = sorted(other for other, cfg in indexes.items() if name in (cfg.get("bases") or []))
    if based:
        raise Conflict(f"{', '.join(based)} has {name} as a base: remove {based[0]} first (`devpictl index rm {based[0]}`)")
    return name, config, s.client.list_projects(name)


def remove_index(s: Session, name: str) -> IndexRemoved:
    name, config, projects = index_to_remove(s, name)
    if not config.get("volatile", True):
        s.client.patch_index(["volatile=True"], name)  # devpi deletes only volatile indexes
    s.client.delete_index(name)
    return IndexRemoved(s.cache, name, len(projects))
