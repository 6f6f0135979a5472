"""What a cache is doing, as `status` shows it: state, upstream, devpi version, size, core metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devpictl import container as ctr
from devpictl import coremetadata, devpi, failover, layout, page_policy, policy, precedence, probe, replica, tls
from devpictl.cache import Cache
from devpictl.devpi import PageCounts
from devpictl.errors import CacheNotFound, DevpictlError, ExecFailed
from devpictl.front import Front
from devpictl.mirrors import Upstream, effective_url
from devpictl.settings import Instance

if TYPE_CHECKING:
    from docker import DockerClient

DOWN = "down"  # the state of a cache without a container


@dataclass
class Status:
    name: str
    state: str
    health: str
    index_url: str | None
    upstream: str | None
    upstream_name: str | None
    devpi_version: str | None
    cache_bytes: int | None
    image: str | None
    volume: str
    password_file: str
    front_server: bool
    offline: bool = False
    # Whether the upstream answers the probe project's page from inside the cache;
    # None when nobody asked (offline mode, or the cache is not running).
    upstream_reachable: bool | None = None
    upstream_problem: str | None = None
    next_step: str = ""
    # Whether the mirror's pages announce core metadata (PEP 658); None when not running.
    core_metadata: bool | None = None
    core_metadata_note: str | None = None  # why it is off
    # The upstreams asked when ``upstream`` fails, in order: {name, url, reachable, problem}.
    fallbacks: list[dict] = field(default_factory=list)
    # role (primary or replica), the primary a replica follows, how far behind it is (replica.Replication)
    replication: dict | None = None
    # The mirror's cached pages, and how many of them a switch left from the previous
    # upstream (fetched from the new one at their next request); None: not known.
    cached_pages: int | None = None
    pages_from_previous_upstream: int | None = None
    # The page policy the cache applies now (page_policy.describe, and Policy.to_dict); None when not running.
    # An unreadable policy file: policy says so and policy_settings is None (the cache refuses its pages).
    policy: str | None = None
    policy_settings: dict | None = None
    # HTTPS (tls.py): what plain HTTP on its port gets (redirect, refuse), None for plain HTTP;
    # when its certificate ends (ISO 8601, UTC; None: not known here); whether reading needs a login.
    https: str | None = None
    certificate_expires: str | None = None
    read_auth: bool = False

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class StatusReport:
    """`status --json`: the cache's status, and with --lag how far each upstream is behind ({url: lag keys})."""

    status: Status
    lag: dict[str, dict[str, object]] | None = None  # None: not asked

    def as_dict(self) -> dict[str, object]:
        return {**self.status.as_dict(), **({"lag": self.lag} if self.lag is not None else {})}


# status asks the upstream with this deadline, so it stays quick when the upstream is gone.
STATUS_UPSTREAM_TIMEOUT = 4.0


def upstream_reachability(cache: Cache, url: str | None, project: str, *, offline: bool) -> tuple[bool | None, str | None]:
    """(does the upstream answer?, why not) as `status` reports it; (None, None) when it is not asked."""
    if offline or url is None:
        return None, None
    try:
        answer = probe.probe_upstream(cache, url, project, STATUS_UPSTREAM_TIMEOUT)
    except ExecFailed as exc:  # e.g. the container stopped meanwhile
        return None, f"could not ask from inside the cache: {exc.reason}"
    return answer.answered, answer.problem


def status(engine: DockerClient, instance: Instance) -> Status:
    cache = Cache.find(engine, instance, timeout=10)
    if cache is None:
        option = "" if instance.name == "default" else f" --name {instance.name}"
        if ctr.volume_exists(engine, instance):
            raise CacheNotFound(f"cache {instance.name!r} is down (its data is kept): bring it back with `devpictl up{option}`")
        raise CacheNotFound(
            f"no cache named {instance.name!r}: create it with `devpictl up{option}`, or list the caches with `devpictl ls`"
        )
    with cache:
        return running_status(cache) if cache.status == "running" else status_of(cache)


def running_status(cache: Cache) -> Status:
    """A running cache's status: what its devpi says, whether its upstreams answer, its size."""
    instance = cache.instance
    found: dict[str, object] = {}
    found["policy"], found["policy_settings"] = policy_in_force(cache)
    fallbacks: list[dict] = []
    check_url = None
    served = serving(cache)
    if served is not None:
        found.update(upstream_name=served.upstream.name, upstream=served.upstream.display_url, devpi_version=served.devpi_version)
        check_url, pages = served.check_url, served.pages
        if pages is not None:
            found.update(cached_pages=pages.cached, pages_from_previous_upstream=pages.from_previous_upstream)
        chain, official = served.running, served.official
        if chain:
            found.update(upstream_name=str(chain[0].get("name")), upstream=str(chain[0].get("url") or official))
            check_url = str(found["upstream"])
            fallbacks = [{"name": str(m.get("name")), "url": str(m.get("url") or official)} for m in chain[1:]]
        try:
            found["core_metadata"], found["core_metadata_note"] = describe_core_metadata(cache, served.ixconfig, served.devpi_version)
        except DevpictlError:
            pass
    try:
        project = precedence.probe_project(instance)
    except DevpictlError:  # a broken cache.toml must not break status
        project = precedence.DEFAULT_PROBE_PROJECT
    replication = replica.replication_state(cache)
    if replication.role == replica.REPLICA:
        found.update(upstream_reachable=None, upstream_problem="a replica fetches through its primary")
    else:
        found["upstream_reachable"], found["upstream_problem"] = upstream_reachability(cache, check_url, project, offline=cache.offline)
        for item in fallbacks:
            item["reachable"], item["problem"] = upstream_reachability(cache, item["url"], project, offline=cache.offline)
    return status_of(
        cache,
        index_url=devpi.index_url(cache.local_base_url),
        cache_bytes=cache.disk_usage(layout.DATA_DIR),
        fallbacks=fallbacks,
        replication=replication.as_dict(),
        **found,
    )


def status_of(cache: Cache, **found) -> Status:
    """The Status of ``cache``: its facts, and what was ``found`` asking its devpi and upstreams."""
    instance = cache.instance
    known: dict = {
        "index_url": None,
        "upstream": None,
        "upstream_name": None,
        "devpi_version": None,
        "cache_bytes": None,
        **found,
    }
    return Status(
        name=instance.name,
        state=cache.status,
        health=cache.health,
        image=cache.image_label,
        volume=instance.volume,
        password_file=str(instance.password_file),
        front_server=cache.front,
        offline=cache.offline,
        next_step=next_step(instance.name, cache.status, cache.health, has_volume=True),
        https=cache.tls,
        certificate_expires=expires.isoformat() if cache.tls and (expires := tls.served_expiry(instance)) else None,
        read_auth=cache.read_auth,
        **known,
    )


def policy_in_force(cache: Cache) -> tuple[str, dict | None]:
    """(one line, Policy.to_dict or None) of the page policy the running cache applies."""
    try:
        found = policy.installed(cache) or page_policy.Policy()
    except page_policy.BrokenPolicy as exc:
        return page_policy.broken_reason(str(exc)), None
    return page_policy.describe(found), found.to_dict()


@dataclass
class Serving:
    """What a running cache's devpi says of itself."""

    upstream: Upstream
    check_url: str  # the upstream's URL, the official index's included
    devpi_version: str | None
    ixconfig: Mapping[str, object]  # root/pypi's settings
    official: str  # the official index's URL, as devpi knows it
    running: list[dict]  # the members of the failover chain root/pypi fetches through (Front.running); empty without one
    pages: PageCounts | None = None


def serving(cache: Cache) -> Serving | None:
    """The upstream and devpi version of a running cache; None when its devpi does not answer."""
    try:
        client = cache.client  # logs in as root on a --read-auth cache: devpi may not answer
        ixconfig = client.get_index()
        official = cache.official_url()
        running = Front(cache).running(ixconfig.get("mirror_url"))
        found = failover.current(running, ixconfig.get("mirror_url"), official)
        version = devpi_server_version(client.server_status())
        return Serving(found, effective_url(found, official), version, ixconfig, official, running, client.page_counts())
    except DevpictlError:
        return None


def next_step(name: str, state: str, health: str | None, has_volume: bool) -> str:
    """What to do with a cache in ``state`` (a container state, or DOWN when it has no container)."""
    option = "" if name == "default" else f" --name {name}"
    if state == "running" and health in ("healthy", "none", None):
        return f"devpictl pip-config{option} --write points pip at it"
    if state in ("running", "restarting"):
        return f"not healthy: devpictl logs{option} shows why"
    if state != DOWN:
        return f"stopped: devpictl up{option} starts it"
    if has_volume:
        return f"down, data kept: devpictl up{option} brings it back"
    return f"down, data deleted: devpictl up{option} makes it anew"


def describe_core_metadata(cache: Cache, ixconfig: Mapping[str, object], version: str | None) -> tuple[bool, str | None]:
    """(does the mirror announce core metadata?, why not) as `status` shows it."""
    if not cache.serves_core_metadata():
        if version and not coremetadata.supported_by(version):
            return False, f"devpi-server {version} has no core metadata support (6.20 or newer has)"
        return False, "this image's devpi-server runs without enable-core-metadata: rebuild it with this devpictl"
    if not ixconfig.get(coremetadata.INDEX_OPTION):
        return False, "the upstream was not found to serve .metadata files (by the last `devpictl up` or `set-upstream`)"
    return True, None


def devpi_server_version(server_status: Mapping) -> str | None:
    return server_status.get("versioninfo", {}).get("devpi-server")
