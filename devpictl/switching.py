"""Switching root/pypi's upstream safely: credentials, core metadata, refreshing cached pages."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from devpictl import coremetadata, failover, layout, password, precedence, probe, refresh, replica
from devpictl.cache import Cache
from devpictl.devpi import DevpiClient, ExpiredPages
from devpictl.errors import BadInput, Conflict, DevpictlError, Interrupted
from devpictl.front import Front
from devpictl.mirrors import Upstream, effective_url, find_by_url
from devpictl.network import is_loopback
from devpictl.reporter import Reporter
from devpictl.settings import Instance, read_secret_file, write_durably

if TYPE_CHECKING:
    from docker import DockerClient


@dataclass
class SwitchResult:
    """What a switch did: `up` and `set-upstream` report it."""

    name: str
    previous: Upstream  # what root/pypi fetched from before
    upstream: Upstream  # the primary it fetches from now
    actions: list[str]
    core_metadata: bool = False  # whether the mirror's pages announce core metadata now
    fallbacks: tuple[Upstream, ...] = ()
    chain: failover.Chain | None = None  # the failover chain devpi fetches through; None without fallbacks

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "previous": self.previous.public_dict(),
            "upstream": self.upstream.public_dict(),
            "fallbacks": [f.public_dict() for f in self.fallbacks],
            "changed": bool(self.actions),
            "actions": self.actions,
            "core_metadata": self.core_metadata,
        }


@dataclass(frozen=True)
class Target:
    """Where a switch goes: what configure_upstream needs to know besides devpi."""

    wanted: Upstream | None  # None: keep root/pypi's upstream
    official: str  # the official index's URL, as devpi knows it
    current: Upstream | None = None  # what root/pypi fetches from now; None: read it from devpi
    core_metadata: Callable[[str], coremetadata.MetadataCheck] | None = None  # measures an upstream URL; None: nothing measured


def switch(cache: Cache, opts: precedence.SwitchOptions, wanted: Upstream | None, reporter: Reporter) -> SwitchResult:
    """Log in and point root/pypi at ``wanted`` and its fallbacks (None: keep what it has): the one switch of `up` and set-upstream.

    Nothing changes before every check passed: the cache is not its own upstream, the
    new upstreams answer, the chain's server block loads.
    """
    instance, online = opts.instance, not opts.offline
    official = cache.official_url()
    actions: list[str] = []
    if wanted is not None and online:
        check_not_itself(cache, wanted, official)  # before anything changes, the login's settling included
    measure = core_metadata_measurement(cache, reporter, probe_project=opts.probe_project, check=opts.check, offline=opts.offline)
    actions += login(cache.client, instance)
    front = Front(cache)
    current, wanted, chain = plan_failover(cache.client, front, instance, wanted, opts.fallbacks, official)
    if wanted is not None and online:
        keep_credentials(cache, instance, wanted, official)
    if chain is not None and online:
        actions += front.prepare(chain, official, upstream_checker(cache, opts.probe_project, reporter) if opts.check else None)
    if wanted is not None and (opts.check or opts.offline):
        if opts.offline and effective_url(wanted, official) != effective_url(current, official):
            raise Conflict(offline_switch_message(instance))
        check_switch(cache, current, wanted, official, opts.probe_project, reporter)
    flush = functools.partial(flush_front_caches, cache.client, front)
    target = Target(wanted, official, current, measure)
    upstream, configured = configure_upstream(
        cache.client, target, reporter, flush, instance.unfinished_switch_file, refresh_pages=opts.refresh_pages
    )
    actions += configured
    if chain is None and online and front.enabled:
        actions += front.drop()
    primary, fallbacks = failover.primary_and_fallbacks(upstream, chain)
    return SwitchResult(instance.name, current, primary, actions, core_metadata_state(cache), fallbacks, chain)


def login(client: DevpiClient, instance: Instance) -> list[str]:
    """Log in as root (password.login_root); what settling an interrupted rotation did."""
    settled = password.login_root(client, instance)
    return [settled] if settled else []


def plan_failover(
    client: DevpiClient, front: Front, instance: Instance, wanted: Upstream | None, fallbacks: tuple[Upstream, ...] | None, official: str
) -> tuple[Upstream, Upstream | None, failover.Chain | None]:
    """(what root/pypi fetches from now, what it should fetch from, the chain to install) (failover.plan)."""
    mirror_url = client.get_index().get("mirror_url")
    running = front.running(mirror_url)
    current = failover.current(running, mirror_url, official)
    wanted, chain = failover.plan(running, wanted, fallbacks, failover.remembered(instance), mirror_url, official)
    return current, wanted, chain


def upstream_changes(upstream: Upstream, ixconfig: Mapping[str, object], official_url: str) -> list[str]:
    """The PATCH items that make root/pypi fetch from ``upstream``; empty when it already does."""
    wanted: dict[str, object] = {
        "mirror_url": upstream.public_url or official_url,
        # Without PyPI's serial header devpi would reject the pages of an upstream
        # that is "older" than what it cached before (and most mirrors send none).
        "mirror_ignore_serial_header": not upstream.sends_serial_header,
        # Don't load the upstream's ~1e6-name project list: it delays the first
        # install on a fresh cache, and with it off the index lists what it cached.
        "mirror_no_project_list": True,
    }
    changes = []
    for key, want in wanted.items():
        have = ixconfig.get(key)
        if isinstance(want, bool):
            if bool(have) != want:
                changes.append(f"{key}={'true' if want else 'false'}")
        elif have is None or str(have).rstrip("/") != str(want).rstrip("/"):
            changes.append(f"{key}={want}")
    return changes


def stored_credentials(instance: Instance) -> dict[str, str]:
    text = read_secret_file(instance.upstream_auth_file)
    try:
        entries = json.loads(text) if text else {}
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        raise BadInput(
            f"{instance.upstream_auth_file} is not devpictl's JSON: delete it and give the upstream URL with its credentials again"
        )
    return entries


def check_not_itself(cache: Cache, upstream: Upstream, official: str) -> None:
    """Refuse the cache as its own upstream: every project it lacks would loop until devpi gives up (502)."""
    parts = urlsplit(effective_url(upstream, official))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    local = host in ("localhost", cache.name.lower()) or is_loopback(host)
    published_host, published_port = cache.host, cache.port
    # From inside the container, loopback reaches the front server and devpi; the
    # published port reaches the cache from anywhere that can see its address.
    inside = local and port in (layout.CONTAINER_PORT, layout.DEVPI_PORT)
    outside = port == published_port and (local or host == published_host)
    if inside or outside:
        raise BadInput(f"{upstream.display_url} is this cache itself: give the index it should fetch from, e.g. `--mirror pypi`")


def keep_credentials(cache: Cache, instance: Instance, upstream: Upstream, official: str) -> None:
    """Keep the upstream's user and password out of devpi's readable config: in devpictl's 0600 store and the container's run dir."""
    if upstream.credentials is None:
        return
    user, password = upstream.credentials
    entries = stored_credentials(instance)
    entries[effective_url(upstream, official)] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    data = json.dumps(entries)
    write_durably(instance.upstream_auth_file, data)
    cache.hand_in_files({layout.UPSTREAM_AUTH: data.encode()})


def configure_upstream(
    client: DevpiClient, plan: Target, reporter: Reporter, flush: Callable[[], None], unfinished: Path, *, refresh_pages: bool = False
) -> tuple[Upstream, list[str]]:
    """Point root/pypi at ``plan.wanted`` (None: keep its upstream) and renew what it cached; (its upstream now, what was done).

    ``flush`` empties the front server's page cache after any change. The file
    ``unfinished`` exists from just before a switch's PATCH until its pages are
    renewed (renew_cached_pages), so a run that was stopped in between is finished
    by the next one, even when that one has nothing to PATCH.

    ``plan.core_metadata`` measures whether an upstream URL serves core metadata;
    mirror_provides_core_metadata follows it. Without a verdict (None: nothing
    measured; or the upstream did not answer) the option stays as it is, unless the
    upstream changes, which turns it off. The option goes off before a switch (no
    page may announce a metadata file the new upstream lacks) and on only after the
    cached pages list the new upstream's files.
    """
    official, core_metadata = plan.official, plan.core_metadata
    actions: list[str] = []
    ixconfig = client.get_index()
    current = plan.current or find_by_url(ixconfig.get("mirror_url"), official)
    target = plan.wanted or current
    changes = upstream_changes(target, ixconfig, official)
    switching = effective_url(target, official) != effective_url(current, official)
    have = bool(ixconfig.get(coremetadata.INDEX_OPTION))
    check = core_metadata(effective_url(target, official)) if core_metadata is not None else coremetadata.NOT_MEASURED
    want = (have and not switching) if check.served is None else check.served
    finishing = not changes and unfinished.exists()
    if not changes and want == have and not finishing:
        return target, actions
    if have and not want:
        client.patch_index([f"{coremetadata.INDEX_OPTION}=false"])
        flush()
        actions.append(f"stopped announcing core metadata: {check.detail}")
    if changes:
        reporter.step(f"Setting upstream to {target.name} {target.display_url}")
        if switching:
            write_durably(unfinished, effective_url(target, official) + "\n")
        client.patch_index(changes)
        if switching:
            actions.append(f"switched upstream from {current.name} to {target.name}")
        else:
            actions.append("updated the mirror options of root/pypi")
    elif finishing:
        switching = True
        actions.append(f"finishing the switch to {target.name} that an earlier run left unfinished")
    announce = want and not have
    if not switching:
        if announce:
            client.patch_index([f"{coremetadata.INDEX_OPTION}=true"])
            actions.append(f"announcing core metadata: {check.detail}")
        flush()
        return target, actions
    try:
        renewed = renew_cached_pages(client, reporter, unfinished, refresh_pages)
        # Metadata is announced only once no page lists the old upstream's files.
        if announce:
            client.patch_index([f"{coremetadata.INDEX_OPTION}=true"])
        flush()
    except DevpictlError as exc:
        exc.args = (
            f"the upstream was switched to {target.name}, but its cached pages were not all renewed ({exc}); run the same command again to finish",
        )
        raise
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after the upstream was switched to {target.name}, before its cached pages were renewed: run the same command again to finish"
        ) from None
    unfinished.unlink(missing_ok=True)
    actions.extend(renewed)
    if announce:
        actions.append(f"announcing core metadata: {check.detail}")
    return target, actions


def core_metadata_measurement(
    cache: Cache, reporter: Reporter, *, probe_project: str, check: bool, offline: bool
) -> Callable[[str], coremetadata.MetadataCheck] | None:
    """What configure_upstream uses to decide mirror_provides_core_metadata; None: measure nothing."""
    if not cache.serves_core_metadata():
        return None  # devpi < 6.20, or an image built before devpictl enabled it: nothing to decide
    if offline:
        # Offline, devpi lists only the files it stored, and reads their metadata out of them.
        return lambda url: coremetadata.MetadataCheck(True, "offline mode lists only stored wheels, whose metadata devpi reads from them")
    if not check:
        return None

    def measure(url: str) -> coremetadata.MetadataCheck:
        with probe.checking(reporter, url, "serves core metadata"):
            return probe.measure_core_metadata(cache, url, probe_project)

    return measure


def core_metadata_state(cache: Cache) -> bool:
    """Whether the cache announces core metadata for its mirror now."""
    return cache.serves_core_metadata() and bool(cache.client.get_index().get(coremetadata.INDEX_OPTION))


def offline_switch_message(instance: Instance) -> str:
    return (
        f"cache {instance.name!r} runs in offline mode and asks no upstream, so it cannot switch to another: "
        f"run `devpictl down --name {instance.name}` and `devpictl up --name {instance.name} --online` first"
    )


def flush_front_caches(client: DevpiClient, front: Front) -> None:
    """Make cached pages misses in this cache's front server, then in its replicas' (replica.announce_new_pages)."""
    front.flush()
    replica.announce_new_pages(client)


def renew_cached_pages(client: DevpiClient, reporter: Reporter, unfinished: Path, refresh_pages: bool) -> list[str]:
    """After a switch, make every cached page come from the new upstream; what was done, as actions.

    First, at once: devpi marks every cached page stale in one transaction. Each is
    fetched from the new upstream on its next request, as when mirror_cache_expiry
    passes (seconds, however many there are); until then, and while the new upstream
    fails, devpi serves it listing the files the cache holds. ``refresh_pages``, or a
    devpi without devpictl's plugin request: then each page is fetched again now
    (refresh_cached_projects), which takes minutes on a large cache but tells which
    projects the new upstream lacks; a page whose refresh fails stays as marked.
    """
    resumed_refresh = refresh_pages and bool(refresh.already_done(unfinished))
    expired = None
    if not resumed_refresh:  # a resumed refresh marked every page before its first refresh
        with reporter.waiting("Marking the pages cached from the old upstream stale"):
            expired = client.expire_pages()
    if expired is not None and not refresh_pages:
        return [describe_expired(expired)] if expired.pages else []
    refreshed, missing = refresh_cached_projects(client, reporter, unfinished)
    actions = [f"refreshed {len(refreshed)} cached project pages from the new upstream"] if refreshed else []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        actions.append(f"{len(missing)} cached projects are not on the new upstream: {shown}")
    return actions


def describe_expired(expired: ExpiredPages) -> str:
    if expired.kept is None:  # an image whose plugin forgets the pages
        return f"forgot {expired.pages} cached project pages: each comes from the new upstream at its next request"
    return (
        f"marked {expired.pages} cached project pages stale: each comes from the new upstream at its next request; "
        f"{expired.kept} with stored files are served as they are while that upstream fails"
    )


def refresh_cached_projects(client: DevpiClient, reporter: Reporter, unfinished: Path) -> tuple[list[str], list[str]]:
    """Make pages cached from the old upstream list the new upstream's files now (devpictl/refresh.py).

    Files already downloaded stay in the cache. Returns (refreshed, not upstream).
    """
    projects = sorted(client.list_projects())
    done = refresh.already_done(unfinished)
    todo = sum(1 for project in projects if project not in done)
    resumed = f" ({len(projects) - todo} done before)" if todo < len(projects) else ""
    with reporter.counting(f"Refreshing cached project pages{resumed}", todo) as advance:
        return refresh.refresh(projects, client.refresh_project, unfinished, advance)


def check_switch(cache: Cache, current: Upstream, wanted: Upstream, official: str, project: str, reporter: Reporter) -> None:
    """Before a switch, refuse a ``wanted`` upstream that does not answer; the cache's own upstream needs no check."""
    url = effective_url(wanted, official)
    if url != effective_url(current, official):
        with probe.checking(reporter, url):
            probe.check_upstream(cache, url, project)


def set_upstream(
    engine: DockerClient,
    instance: Instance,
    upstream: Upstream,
    *,
    check: bool,
    probe_project: str | None,
    reporter: Reporter,
    fallbacks: tuple[Upstream, ...] | None = None,
    refresh_pages: bool = False,
) -> SwitchResult:
    """`set-upstream`: the switch on a running cache that is neither a replica nor offline; its fallbacks remembered."""
    with Cache.running(engine, instance) as cache:
        replica.refuse_on_replica(cache, "set-upstream")
        if cache.offline:
            raise Conflict(offline_switch_message(instance))
        opts = precedence.SwitchOptions(
            instance, precedence.probe_project(instance, probe_project), fallbacks, check=check, refresh_pages=refresh_pages
        )
        result = switch(cache, opts, upstream, reporter)
    failover.remember(instance, result.chain)
    return result


def upstream_checker(cache: Cache, probe_project: str, reporter: Reporter) -> Callable[[str], None]:
    """check_upstream for ``probe_project``, with a spinner: how failover checks a chain's new upstreams."""

    def check(url: str) -> None:
        with probe.checking(reporter, url):
            probe.check_upstream(cache, url, probe_project)

    return check
