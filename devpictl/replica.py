"""devpi replication: a cache that follows another one (`up --replica-of`), and what status says of it.

devpi does the work (devpi-server --primary-url); devpictl hands the replica the
primary's secret (they sign replication requests with it), waits until it has caught
up, refuses on a replica what only the primary may do, and tells replicas' front
servers when the primary's pages changed. docs/scale-out.md says how to use it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devpictl import layout, probe
from devpictl.cache import Cache
from devpictl.container import last_line
from devpictl.devpi import DevpiClient
from devpictl.errors import (
    BadInput,
    CacheNotFound,
    CacheUnreachable,
    Conflict,
    DevpictlError,
    DevpiError,
    LoginRefused,
    ReadinessTimeout,
)
from devpictl.files import write_atomic
from devpictl.mirrors import MalformedURL, parse_index_url, redact
from devpictl.settings import Instance, read_root_password, read_secret_file

MIN_SECRET_BYTES = 32  # devpi refuses a shorter secret
PAGES_GENERATION = "devpictl_pages_generation"  # declared by devpictl's devpi plugin (templates/)
FILES_WAITING_METRIC = "devpi_server_replica_file_download_queue_size"
PRIMARY = "primary"
REPLICA = "replica"


def check_primary_url(url: str) -> str:
    """The primary's root URL (http(s)://HOST[:PORT]), without a trailing slash; one clear error otherwise."""
    try:
        checked = parse_index_url(url)
    except MalformedURL:
        raise MalformedURL(
            f"--replica-of {redact(url)!r} is not a cache's URL: give http(s)://HOST[:PORT] of the primary, e.g. http://cache-a:3141"
        ) from None
    parts = urlsplit(checked)
    if parts.username or parts.password:
        raise BadInput(
            "--replica-of carries a user or password: give the URL without them; a replica proves itself with the primary's secret (--replica-secret)"
        )
    if parts.path not in ("", "/"):
        raise BadInput(f"--replica-of {checked!r} has a path: give the primary's root URL, http(s)://HOST[:PORT], not an index URL")
    return checked


def refuse_on_replica(cache: Cache, command: str) -> None:
    """One line saying where ``command`` belongs, when the cache is a replica."""
    primary = cache.primary_url
    if primary is not None:
        raise Conflict(
            f"cache {cache.instance.name!r} is a replica of {primary}: run `devpictl {command}` on the primary; its replicas follow"
        )


def check_login(instance: Instance) -> None:
    """A replica with --read-auth: devpictl reads its progress logged in as root, with the primary's root password.

    A replica has no users of its own (they come from the primary), so devpictl's
    Cache.client logs in with the password the primary's devpictl keeps, copied here.
    """
    if read_root_password(instance) is None:
        raise BadInput(
            f"a replica with --read-auth needs the primary's root password for devpictl's own login: copy the primary's "
            f"root-password file (`devpictl status` there names it) to {instance.password_file} (0600), or drop --read-auth"
        )


def read_replica_secret(path: Path) -> bytes:
    """The primary's secret from the file `password --replica-secret` wrote; one clear error otherwise."""
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise BadInput(
            f"cannot read --replica-secret {path} ({exc.strerror}): write it with `devpictl password --replica-secret FILE` on the primary"
        ) from None
    if len(data) < MIN_SECRET_BYTES:
        raise BadInput(
            f"--replica-secret {path} holds no devpi secret ({len(data)} bytes): write it with `devpictl password --replica-secret FILE` on the primary"
        )
    return data


def store_replica_secret(instance: Instance, data: bytes) -> None:
    """Keep the primary's secret (0600) for every new container of the replica."""
    write_atomic(instance.replica_secret_file, data + b"\n", 0o600, durable=True)


def stored_replica_secret(instance: Instance) -> bytes | None:
    text = read_secret_file(instance.replica_secret_file)
    return text.encode() if text else None


@dataclass
class SecretExported:
    """`password --replica-secret --json`: where the primary's devpi secret went."""

    name: str
    secret_file: Path

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "secret_file": str(self.secret_file)}


def export_secret(engine, instance: Instance, path: Path) -> SecretExported:
    """Write the running primary's devpi secret into ``path`` (0600), for `up --replica-of` elsewhere."""
    with Cache.running(engine, instance) as cache:
        refuse_on_replica(cache, "password --replica-secret")
        text = cache.read_text(layout.SERVER_SECRET)
    secret = (text or "").strip().encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise CacheNotFound(
            f"cache {instance.name!r} has no devpi secret yet: wait until `devpictl up --name {instance.name}` has finished"
        )
    write_atomic(path, secret + b"\n", 0o600)
    return SecretExported(instance.name, path)


@dataclass
class Replication:
    """A cache's place in replication, as `status` shows it."""

    role: str  # PRIMARY or REPLICA
    primary_url: str | None = None  # what a replica follows
    serial: int | None = None  # the last change this devpi holds
    primary_serial: int | None = None  # the last change the primary announced (replica)
    lag: int | None = None  # changes still to apply (replica)
    # devpi's file download queue (replica): every file entry replication brought, mirror
    # links the primary never stored included; each is checked, and fetched if the primary has it
    files_waiting: int | None = None
    replicas: list[dict] = field(default_factory=list)  # replicas that polled this primary lately

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def replication(server_status: Mapping, primary_url: str | None) -> Replication:
    """Read devpi's /+status answer."""
    serial = server_status.get("serial")
    if primary_url is None:
        now = time.time()
        replicas = [
            {
                "address": info.get("remote-ip"),
                "serial": info.get("serial"),
                "lag": max(0, serial - info["serial"]) if isinstance(serial, int) and isinstance(info.get("serial"), int) else None,
                "seconds_since_contact": round(now - info["last-request"], 1) if info.get("last-request") else None,
            }
            for info in (server_status.get("polling_replicas") or {}).values()
        ]
        return Replication(PRIMARY, serial=serial, replicas=replicas)
    primary_serial = server_status.get("primary-serial")
    lag = max(0, primary_serial - serial) if isinstance(primary_serial, int) and isinstance(serial, int) else None
    waiting = next((m[2] for m in server_status.get("metrics") or [] if m and m[0] == FILES_WAITING_METRIC), None)
    return Replication(REPLICA, primary_url, serial, primary_serial, lag, waiting)


def replication_state(cache: Cache) -> Replication:
    """Where a running cache stands; only its role when devpi does not answer."""
    primary = cache.primary_url
    try:
        return replication(cache.client.server_status(), primary)
    except DevpictlError:
        return Replication(REPLICA if primary else PRIMARY, primary)


def wait_until_caught_up(cache: Cache, primary_url: str, timeout: float, reporter) -> Replication:
    """Wait until the replica has applied every change the primary announced (files may follow on demand)."""
    deadline = time.monotonic() + timeout
    state = Replication(REPLICA, primary_url)
    refused: LoginRefused | None = None
    with reporter.waiting(f"Waiting until the replica has caught up with {primary_url} (up to {timeout:.0f} s)"):
        while True:
            try:
                state = replication(cache.client.server_status(), primary_url)
                refused = None
            except CacheUnreachable:
                pass
            except LoginRefused as exc:  # --read-auth: root's login works once root has come by replication
                refused = exc
            if state.lag == 0:
                return state
            if time.monotonic() > deadline:
                if refused is not None:
                    raise LoginRefused(
                        f"the replica refused devpictl's login as root within {timeout:.0f} s: put the primary's root password "
                        f"in {cache.instance.password_file}, and check that --replica-secret holds the primary's secret"
                    )
                where = f"{state.lag} changes behind" if state.lag is not None else "no answer from the primary yet"
                raise ReadinessTimeout(
                    f"the replica did not catch up with {primary_url} within {timeout:.0f} s ({where}; its log ends: "
                    f"{last_line(cache.logs_tail(20))}): check that the primary runs this devpictl's image "
                    "with its front server, and that --replica-secret holds its secret"
                )
            time.sleep(1.0)


def check_primary_answers(cache: Cache, primary_url: str) -> None:
    """Refuse a primary that does not answer from inside the replica's container."""
    # Any HTTP answer will do (the check asks for HTML, which /+api answers 404): whether
    # the primary takes this replica shows while it catches up.
    answer, problem = probe.fetch_in_container(cache, primary_url + "/+api", 10.0, digest=True)
    if answer is None:
        trust = ", and --ca-bundle FILE with its CA (a self-signed primary's tls/trust.pem)" if primary_url.startswith("https:") else ""
        raise CacheUnreachable(
            f"the primary {primary_url} does not answer from inside the replica ({problem}): check the URL, and --network when it runs on this engine{trust}"
        )


def announce_new_pages(client: DevpiClient) -> None:
    """Tell the replicas' front servers that the primary's pages changed (follow-primary.py watches this).

    An image built before devpictl had replicas lacks the setting (devpi answers 400);
    it has no replicas either.
    """
    try:
        client.patch_index([f"{PAGES_GENERATION}={time.time_ns()}"])
    except DevpiError as exc:
        if "unexpected keyword" not in str(exc):
            raise
