"""`up --read-auth`: the devpi user pip-config logs this machine's user in as, and its password (0600, never shown).

Each user of the machine gets a devpi user of their own (``pip-LOGIN``), made by root,
so an installer's config never holds root's password.
"""

from __future__ import annotations

import getpass
import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from devpictl.files import write_atomic
from devpictl.settings import Instance, read_secret_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from devpictl.devpi import DevpiClient

PREFIX = "pip-"


def reader_name() -> str:
    """The devpi user of the machine's current user: pip-LOGIN, in the characters devpi allows."""
    login = re.sub(r"[^A-Za-z0-9_.-]", "-", getpass.getuser()) or "user"
    return PREFIX + login


def password_file(instance: Instance, user: str):
    return instance.readers_dir / user


def stored_password(instance: Instance, user: str) -> str | None:
    return read_secret_file(password_file(instance, user))


def ensure_reader(client: DevpiClient, instance: Instance) -> tuple[str, str]:
    """(user, password) of this machine's user on the cache: the stored ones, else a new devpi user (or a new password)
    made by ``client``, logged in as root."""
    user = reader_name()
    password = stored_password(instance, user)
    if password is not None:
        return user, password
    password = secrets.token_urlsafe(24)  # URL-safe: it goes into index URLs as it is
    if user in client.users():
        client.set_password(user, password)  # made by an earlier devpictl whose password is gone
    else:
        client.create_user(user, password)
    write_atomic(password_file(instance, user), password.encode(), 0o600)
    return user, password


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


def installer_url(
    index_url: str, instance: Instance, *, https: bool, read_auth: bool, root_client: Callable[[], DevpiClient], create_login: bool
) -> str:
    """``index_url`` as installers use it: with this machine's user's login on a --read-auth cache (made by
    ``root_client()`` when ``create_login``, else a stand-in, since it is only shown), and the trust bundle of
    an HTTPS cache with devpictl's CA."""
    from devpictl import tls
    from devpictl.clientconfig.base import IndexURL

    if read_auth:
        if create_login:
            user, password = ensure_reader(root_client(), instance)
        else:
            user, password = reader_name(), stored_password(instance, reader_name()) or "PASSWORD"
        index_url = with_credentials(index_url, user, password)
    bundle = tls.trust_bundle_file(instance)
    return IndexURL(index_url, str(bundle) if https and bundle.is_file() else None)
